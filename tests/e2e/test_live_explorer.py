"""Live updates, pause, filters, details, hostile ids and the theme, in a real browser."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Locator, Page, expect

from src.experiments.live_session_registry import (
    list_session_records,
    register_live_session_run,
)
from tests.e2e._support import (
    TRADER_CONTEXT,
    PageProblems,
    assert_abbreviates,
    new_session,
    unique_id,
)
from tests.support import LiveServer

pytestmark = pytest.mark.browser

WAIT_MS = 5000
LIVE_UPDATE_MS = 3000  # a new session file must show up this fast, without reloading

Screenshot = Callable[[Page, str], Path]

# Record notifications instead of showing them; permission stays "granted".
RECORD_NOTIFICATIONS = """
(() => {
  window.__notes = [];
  const Real = window.Notification;
  function Recorded(title, options) {
    const opts = options || {};
    window.__notes.push({ title: String(title), body: String(opts.body || "") });
    try { return new Real(title, options); } catch (e) { return { close() {} }; }
  }
  Object.defineProperty(Recorded, "permission", { get: () => "granted" });
  Recorded.requestPermission = (callback) => {
    if (callback) { callback("granted"); }
    return Promise.resolve("granted");
  };
  window.Notification = Recorded;
})();
"""


@pytest.fixture
def server(live_server: Callable[..., LiveServer]) -> LiveServer:
    return live_server()


@pytest.fixture
def context(browser: Browser, server: LiveServer) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, **TRADER_CONTEXT)
    context.grant_permissions(["notifications"], origin=server.base_url)
    context.add_init_script(RECORD_NOTIFICATIONS)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(context: BrowserContext, problems: PageProblems) -> Page:
    return problems.watch(context.new_page())


def open_live(page: Page, url: str) -> None:
    """Open the dashboard and wait until its event stream is connected."""
    page.goto(url)
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live", timeout=WAIT_MS)


def row(page: Page, session_id: str) -> Locator:
    return page.locator(f"tr.session-row[data-session-id={json.dumps(session_id)}]")


def assert_no_browser_errors(problems: PageProblems) -> None:
    assert problems.console_errors == []
    assert problems.page_errors == []


def test_new_session_appears_live_and_notifies(
    page: Page, server: LiveServer, problems: PageProblems
) -> None:
    open_live(page, server.url("/"))
    page.evaluate("window.__marker = 'no reload'")
    session_id = unique_id("e2e_live_new")

    register_live_session_run(
        new_session(session_id, mode="live", realized_pnl=-42.5), server.registry
    )

    new_row = row(page, session_id)
    expect(new_row).to_have_count(1, timeout=LIVE_UPDATE_MS)
    expect(new_row.locator(".status-badge")).to_have_text("OK")
    expect(new_row.locator(".badge.mode-live")).to_have_text("live")
    expect(new_row.locator("td.num").first).to_have_text(re.compile(r"^−42,50 [A-Z]+$"))
    assert page.evaluate("window.__marker") == "no reload"

    page.wait_for_function("window.__notes.length > 0", timeout=LIVE_UPDATE_MS)
    notes = page.evaluate("window.__notes")
    assert len(notes) == 1, notes
    text = notes[0]["title"] + "\n" + notes[0]["body"]
    assert session_id in text
    assert "LIVE" in text.upper() and "Completed" in text
    assert "PnL: −42,50 USDT" in text  # formatted as the page formats amounts

    # A running session that finishes turns from RUN to OK in place.
    running = [r for r in list_session_records(server.registry) if r.status == "started"]
    assert running, "the demo registry has a running session"
    running_id = running[0].session_id
    expect(row(page, running_id).locator(".status-badge")).to_have_text("RUN")
    finished = replace(
        running[0],
        status="completed",
        finished_at=datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0),
    )
    register_live_session_run(finished, server.registry)
    expect(row(page, running_id).locator(".status-badge")).to_have_text(
        "OK", timeout=LIVE_UPDATE_MS
    )
    assert page.evaluate("window.__marker") == "no reload"
    page.wait_for_function("window.__notes.length > 1", timeout=LIVE_UPDATE_MS)
    assert running_id in page.evaluate("window.__notes[1].body")
    assert_no_browser_errors(problems)


def test_pause_holds_updates_until_resumed(
    page: Page, server: LiveServer, problems: PageProblems
) -> None:
    open_live(page, server.url("/"))
    page.evaluate("window.__marker = 'no reload'")
    pause = page.locator("#live-pause")
    pause.click()
    expect(pause).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "paused")

    session_id = unique_id("e2e_paused")
    register_live_session_run(
        new_session(session_id, mode="paper", realized_pnl=12.0), server.registry
    )
    # The page says it holds a change back (an event arrived), and shows nothing of it yet.
    expect(pause).to_have_attribute("data-pending", "1", timeout=LIVE_UPDATE_MS)
    expect(row(page, session_id)).to_have_count(0)

    pause.click()
    expect(pause).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    expect(row(page, session_id)).to_have_count(1, timeout=LIVE_UPDATE_MS)
    assert page.evaluate("window.__marker") == "no reload"
    assert_no_browser_errors(problems)


def test_filters_round_trip_through_the_url(
    page: Page, server: LiveServer, problems: PageProblems, keep_screenshot: Screenshot
) -> None:
    # The demo may hold no failed live session; these make sure the filter has work to do.
    wanted = unique_id("e2e_live_failed")
    unwanted = unique_id("e2e_live_completed")
    register_live_session_run(
        new_session(wanted, status="failed", error="ExchangeError: margin"), server.registry
    )
    register_live_session_run(new_session(unwanted, status="completed"), server.registry)
    open_live(page, server.url("/"))
    expect(row(page, wanted)).to_have_count(1, timeout=LIVE_UPDATE_MS)

    form = page.locator("form.filters")
    form.locator("input[name=mode][value=live]").check()
    form.locator("input[name=status][value=failed]").check()
    form.get_by_role("button", name="Filtern").click()

    page.wait_for_url("**/?*mode=live*", timeout=WAIT_MS)
    assert "mode=live&status=failed" in page.url
    params = parse_qs(urlsplit(page.url).query)
    assert params["mode"] == ["live"]
    assert params["status"] == ["failed"]

    rows = page.locator(".sessions-table tbody tr.session-row")
    expect(row(page, wanted)).to_have_count(1)
    expect(row(page, unwanted)).to_have_count(0)
    if rows.count() == 0:
        expect(page.locator(".sessions-table tbody")).to_contain_text(
            "Keine Sessions für diese Filter."
        )
    for shown in rows.all():
        expect(shown.locator(".badge")).to_have_text("live")
        expect(shown.locator(".status-badge")).to_have_text("FAIL")

    page.reload()
    expect(page.locator("input[name=mode][value=live]")).to_be_checked()
    expect(page.locator("input[name=status][value=failed]")).to_be_checked()
    expect(page.locator("input[name=mode][value=paper]")).not_to_be_checked()
    expect(page.locator("input[name=status][value=completed]")).not_to_be_checked()
    keep_screenshot(page, "explorer-filtered.png")
    assert_no_browser_errors(problems)


def test_row_expands_and_links_to_the_session_page(
    page: Page, server: LiveServer, problems: PageProblems, keep_screenshot: Screenshot
) -> None:
    open_live(page, server.url("/"))
    first = page.locator(".sessions-table tbody tr.session-row").first
    session_id = first.get_attribute("data-session-id")
    assert session_id

    first.locator("button.expand").click()
    expect(first.locator("button.expand")).to_have_attribute("aria-expanded", "true")
    detail = page.locator("tr.detail-row")
    expect(detail).to_have_count(1, timeout=WAIT_MS)
    expect(detail.locator("h3", has_text="Kennzahlen")).to_be_visible()
    expect(detail.locator("h3", has_text="Konfiguration")).to_be_visible()
    expect(detail.locator(".detail")).to_have_attribute("data-session-id", session_id)

    first.locator(".cell-id a").click()
    page.wait_for_url(f"**/session/{quote(session_id, safe='')}", timeout=WAIT_MS)
    facts = page.locator(".detail-facts")
    expect(facts.locator("dd").first).to_have_text(session_id)
    expect(page.get_by_role("heading", name="Kommandozeile")).to_be_visible()
    expect(page.locator(".registry-file")).to_contain_text("Registry-Datei")
    keep_screenshot(page, "session-detail.png")
    assert_no_browser_errors(problems)


def test_hostile_session_id_is_shown_as_text(
    page: Page, server: LiveServer, problems: PageProblems
) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    open_live(page, server.url("/"))
    hostile_id = "<img src=x onerror=alert(1)>\"' " + unique_id("hostile")
    hostile_error = "<script>alert(2)</script>"
    register_live_session_run(
        new_session(hostile_id, status="failed", realized_pnl=-1.0, error=hostile_error),
        server.registry,
    )

    # It arrives by live refresh (innerHTML of a server partial) and as a toast.
    hostile_row = row(page, hostile_id)
    expect(hostile_row).to_have_count(1, timeout=LIVE_UPDATE_MS)
    link = hostile_row.locator(".cell-id a")
    expect(link).to_have_attribute("title", hostile_id)
    assert_abbreviates(link.inner_text().strip(), hostile_id)
    expect(hostile_row.locator(".row-error")).to_have_attribute("title", hostile_error)
    expect(page.locator("#toasts")).to_contain_text(hostile_id, timeout=WAIT_MS)

    hostile_row.locator("button.expand").click()
    detail = page.locator("tr.detail-row")
    expect(detail.locator(".detail-facts dd").first).to_have_text(hostile_id, timeout=WAIT_MS)
    expect(detail.locator(".error-note")).to_have_text("⚠ " + hostile_error)

    page.goto(server.url("/"))
    expect(row(page, hostile_id)).to_have_count(1, timeout=WAIT_MS)

    page.goto(server.url("/session/" + quote(hostile_id, safe="")))
    expect(page.locator(".detail-facts dd").first).to_have_text(hostile_id)
    expect(page.locator(".detail-title")).to_have_attribute("title", hostile_id)
    expect(page.locator(".error-note")).to_have_text("⚠ " + hostile_error)
    assert "<img src" in page.title()

    page.wait_for_timeout(300)  # an onerror handler would fire right after load
    assert dialogs == []
    assert page.locator("img[src=x]").count() == 0
    assert_no_browser_errors(problems)


def test_theme_choice_is_remembered(
    page: Page, server: LiveServer, problems: PageProblems, keep_screenshot: Screenshot
) -> None:
    open_live(page, server.url("/"))
    toggle = page.locator("#theme-toggle")
    html = page.locator("html")
    for _ in range(3):
        if html.get_attribute("data-theme") == "light":
            break
        toggle.click()
    expect(html).to_have_attribute("data-theme", "light")
    expect(toggle).to_have_text("Design: Hell")

    page.reload()
    expect(html).to_have_attribute("data-theme", "light")
    expect(toggle).to_have_text("Design: Hell")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(246, 248, 250)", f"light theme background, got {background}"
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    keep_screenshot(page, "dashboard-light.png")
    assert_no_browser_errors(problems)
