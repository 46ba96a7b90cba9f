"""Where the templates and static files are, and how a page is rendered.

The repository keeps them at ``templates/peak_trade_dashboard/`` and
``static/`` (the paths the Phase 82 panel spec names, see
``docs/live-track-panel.md``). A wheel maps both into this package at build
time (``[tool.setuptools.package-dir]`` in ``pyproject.toml``), so an installed
``live-track`` finds them beside this module; an editable install or a plain
checkout has them at the repository root, two levels up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from src.webui import glance, presentation
from src.webui.charts import daily_charts, drawdown_chart, pnl_charts
from src.webui.live_track import SessionRules
from src.webui.session_urls import session_api_url

_PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT_DIR = _PACKAGE_DIR.parents[1]


def _shipped(*parts: str) -> Path:
    """The installed copy of a repository directory if there is one, else the checkout's."""
    installed = _PACKAGE_DIR.joinpath(*parts)
    return installed if installed.is_dir() else _CHECKOUT_DIR.joinpath(*parts)


TEMPLATE_DIR = _shipped("templates", "peak_trade_dashboard")
STATIC_DIR = _shipped("static")


def build_templates(rules: SessionRules) -> Jinja2Templates:
    """The Jinja environment with our filters and chart helpers installed."""
    templates = Jinja2Templates(directory=TEMPLATE_DIR)
    presentation.install(templates.env, rules.real_money_modes)
    templates.env.globals.update(
        pnl_charts=pnl_charts, drawdown_chart=drawdown_chart, daily_charts=daily_charts
    )
    templates.env.filters["session_api_url"] = session_api_url
    glance.install(templates.env)
    return templates


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render one template with the app's environment (built once in ``create_app``)."""
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, template, context, status_code=status_code)
