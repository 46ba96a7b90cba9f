"""HTML pages and the partials that live refresh swaps in."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from src.webui.dependencies import IndexDep, NowDep, QueryDep, RulesDep, SnapshotDep
from src.webui.live_track import get_session_detail, live_track_view

router = APIRouter(include_in_schema=False)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, template, context, status_code=status_code)


@router.get("/", response_class=HTMLResponse)
def dashboard(
    request: Request,
    query: QueryDep,
    snapshot: SnapshotDep,
    now: NowDep,
    rules: RulesDep,
) -> HTMLResponse:
    """Show the Live-Track panel: snapshot tile, stats, charts and sessions."""
    view = live_track_view(snapshot, query, now, rules)
    return render(request, "index.html", view=view, query=query)


@router.get("/partials/live_track", response_class=HTMLResponse)
def dashboard_panel(
    request: Request,
    query: QueryDep,
    snapshot: SnapshotDep,
    now: NowDep,
    rules: RulesDep,
) -> HTMLResponse:
    """Render the panel alone, for the page's live refresh."""
    view = live_track_view(snapshot, query, now, rules)
    return render(request, "_live_track_panel.html", view=view, query=query)


@router.get("/session/{session_id:session_id}", response_class=HTMLResponse)
def session_page(
    request: Request,
    session_id: str,
    index: IndexDep,
    snapshot: SnapshotDep,
    now: NowDep,
    rules: RulesDep,
) -> HTMLResponse:
    """Show everything stored about one session."""
    detail = get_session_detail(index, snapshot, session_id, now, rules)
    return render(request, "session.html", detail=detail, now=now)


@router.get("/partials/session/{session_id:session_id}", response_class=HTMLResponse)
def session_partial(
    request: Request,
    session_id: str,
    index: IndexDep,
    snapshot: SnapshotDep,
    now: NowDep,
    rules: RulesDep,
) -> HTMLResponse:
    """Render one session's details alone, for click-to-expand rows."""
    detail = get_session_detail(index, snapshot, session_id, now, rules)
    return render(request, "_session_detail.html", detail=detail, now=now)
