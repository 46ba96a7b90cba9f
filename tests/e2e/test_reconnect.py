"""Killing the server loses nothing; the open page notices and reconnects by itself."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from src.experiments.live_session_registry import register_live_session_run
from tests.e2e._support import TRADER_CONTEXT, new_session, unique_id
from tests.support import LiveServer, file_stamps

pytestmark = pytest.mark.browser


@pytest.fixture
def server(tmp_path: Path, live_server: Callable[..., LiveServer]) -> LiveServer:
    registry = tmp_path / "registry"
    register_live_session_run(new_session(unique_id("before"), mode="paper"), registry)
    return live_server(registry=registry)


def test_page_reconnects_after_a_crash_and_catches_up(browser: Browser, server: LiveServer) -> None:
    page = browser.new_page(**TRADER_CONTEXT, viewport={"width": 1366, "height": 900})
    page.goto(server.url("/"))
    indicator = page.locator("#live-indicator")
    expect(indicator).to_have_attribute("data-state", "live", timeout=5000)
    page.evaluate("window.__marker = 'no reload'")

    files = file_stamps(server.registry)
    server.kill()
    assert file_stamps(server.registry) == files  # the crash touched nothing
    expect(indicator).to_have_attribute("data-state", "offline", timeout=8000)
    expect(indicator).to_contain_text("offline")

    written_while_down = unique_id("while_down")
    register_live_session_run(new_session(written_while_down, mode="testnet"), server.registry)
    server.start()
    expect(indicator).to_have_attribute("data-state", "live", timeout=10000)
    row = page.locator(f"tr.session-row[data-session-id='{written_while_down}']")
    expect(row).to_have_count(1, timeout=5000)
    assert page.evaluate("window.__marker") == "no reload"
