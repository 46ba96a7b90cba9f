"""Real money in the browser: a bounded_pilot session is warned about, and a
real-money session whose heartbeats stop raises a toast and a notification on
an open page, with no change in the registry."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from src.experiments.live_session_registry import register_live_session_run
from tests.e2e._support import TRADER_CONTEXT, PageProblems
from tests.e2e.test_live_explorer import RECORD_NOTIFICATIONS
from tests.support import LiveServer, file_stamps, make_session, settings_env, utc_now

pytestmark = pytest.mark.browser


def test_real_money_session_turning_stale_raises_a_toast_and_a_notification(
    browser: Browser,
    live_server: Callable[..., LiveServer],
    tmp_path: Path,
    problems: PageProblems,
    keep_screenshot: Callable[..., Path],
) -> None:
    registry = tmp_path / "registry"
    now = utc_now()
    pilot = make_session(
        "pilot_20261125_7f3e2a",
        mode="bounded_pilot",
        status="started",
        env_name="bounded_pilot_kraken_live",
        started_at=now - timedelta(minutes=5),
        updated_at=now,  # its writer sends heartbeats, and this is the last one
        metrics={"realized_pnl": 12.5},
    )
    paper = make_session(
        "paper_20261125_0a1b2c",
        mode="paper",
        status="started",
        started_at=now - timedelta(minutes=5),
        updated_at=now,
    )
    for record in (pilot, paper):
        register_live_session_run(record, registry)
    server = live_server(registry=registry, env=settings_env(stale_after_seconds=3))
    context = browser.new_context(**TRADER_CONTEXT, viewport={"width": 1366, "height": 900})
    context.add_init_script(RECORD_NOTIFICATIONS)
    page = problems.watch(context.new_page())
    page.goto(server.url("/"))
    row = page.locator(f"tr.session-row[data-session-id='{pilot.session_id}']")
    expect(row).to_have_class(re.compile(r"\brow-live\b"))  # real money, before anything else
    before = file_stamps(registry)

    toast = page.locator(".toast", has_text=pilot.session_id)
    expect(toast).to_be_visible(timeout=20_000)
    expect(page.locator(".toast", has_text=paper.session_id)).to_have_count(0)
    notes = page.evaluate("window.__notes")
    assert [note for note in notes if pilot.session_id in note["body"]], notes
    assert not [note for note in notes if paper.session_id in note["body"]], notes
    assert file_stamps(registry) == before  # the clock did it, not a write
    keep_screenshot(page, "real-money-stale.png")
    assert problems.console_errors == [] and problems.page_errors == []
    context.close()
