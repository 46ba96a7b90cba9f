"""What the browser tests share beside tests/support.py: the page's complaints, ids."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from playwright.sync_api import ConsoleMessage, Page

from src.experiments.live_session_registry import LiveSessionRecord
from tests.support import make_session, utc_now

# The UI is German: look at it the way a trader in Frankfurt does.
TRADER_CONTEXT: dict[str, Any] = {
    "color_scheme": "dark",
    "locale": "de-DE",
    "timezone_id": "Europe/Berlin",
}


@dataclass
class PageProblems:
    """What the browser complained about while a test ran."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> Page:
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                self.console_errors.append(f"{message.text} @ {message.location}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        return page


def new_session(
    session_id: str,
    *,
    mode: str = "live",
    status: str = "completed",
    realized_pnl: float | None = -42.5,
    error: str | None = None,
) -> LiveSessionRecord:
    """A session that started a minute ago and sends heartbeats, as our own writer does."""
    now = utc_now()
    return make_session(
        session_id,
        mode=mode,
        status=status,
        started_at=now - timedelta(minutes=1),
        finished_at=None if status == "started" else now,
        run_id=f"run_{session_id}",
        env_name="kraken_spot",
        metrics={"realized_pnl": realized_pnl, "max_drawdown": 0.031, "num_orders": 4},
        error=error,
        updated_at=now,
    )


def unique_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def assert_abbreviates(shown: str, full_id: str) -> None:
    """A long id is cut to at most 25 characters with ellipses, keeping its end.

    Every piece between the cuts is part of the id, in order, and the last one
    is its tail, where the distinguishing part (date, hash) sits.
    """
    assert len(full_id) > 25
    assert "…" in shown and len(shown) <= 25, shown
    pieces = shown.split("…")
    assert full_id.endswith(pieces[-1]), (shown, full_id)
    position = 0
    for piece in pieces:
        found = full_id.find(piece, position)
        assert found >= 0, (shown, full_id)
        position = found + len(piece)
    assert sum(len(piece) for piece in pieces) >= 10, f"too little of the id is left: {shown!r}"


def chart_text_outside(page: Page) -> list[str]:
    """The chart texts (axis labels, legends) that stick out of their SVG's box."""
    outside: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('.chart svg')].flatMap(svg => {
            const box = svg.viewBox.baseVal;
            return [...svg.querySelectorAll('text')].filter(t => {
                const b = t.getBBox();
                return b.x < -0.5 || b.x + b.width > box.width + 0.5;
            }).map(t => t.textContent);
        })"""
    )
    return outside


def chart_text_px(page: Page) -> list[float]:
    """The on-screen size of every chart text: its font size times the SVG's scale."""
    sizes: list[float] = page.evaluate(
        """() => [...document.querySelectorAll('.chart svg')].flatMap(svg => {
            const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
            return [...svg.querySelectorAll('text')].map(
                t => parseFloat(getComputedStyle(t).fontSize) * scale);
        })"""
    )
    return sizes
