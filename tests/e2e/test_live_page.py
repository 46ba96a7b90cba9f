"""The page a trader trusts at a glance (issue 13): Jetzt strip, risk, bots apart, calm live.

Each test builds the situation it is about (a failed live bot, a bot whose
heartbeats stop, a red risk light, a bad filter) in a real registry, opens the
real server in Chromium and keeps a screenshot to look at.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from src.experiments.live_session_registry import register_live_session_run
from tests.e2e._support import TRADER_CONTEXT, PageProblems, new_session, unique_id
from tests.support import LiveServer

pytestmark = pytest.mark.browser

WAIT_MS = 8000
STALE_SECONDS = 4  # the server's stale limit in these tests: a bot turns stale quickly
Screenshot = Callable[[Page, str], Path]

RED_LIMITS = [
    {"limit_name": "max_position", "current_value": 1.25, "limit_value": 1.0, "ratio": 1.25,
     "severity": "breach"},
    {"name": "daily_loss", "value": 420.0, "limit": 500.0, "severity": "warning"},
    {"limit_name": "open_orders", "current_value": 3, "limit_value": 20, "ratio": 0.15,
     "severity": "ok"},
]  # fmt: skip


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def scenario(registry: Path) -> dict[str, str]:
    """Write the sessions the tests look at; return their ids by role."""
    ids = {
        "failed_live": unique_id("session_20261125_live_fail"),
        "red_risk": unique_id("session_20261125_paper_red"),
        "running": unique_id("session_20261125_testnet_run"),
        "eth": unique_id("session_20261125_shadow_eth"),
    }
    failed = new_session(
        ids["failed_live"],
        mode="live",
        status="failed",
        realized_pnl=-123.45,
        error="ExchangeError: insufficient margin for order 42 on BTC/USDT – the bot stopped",
    )
    red = new_session(ids["red_risk"], mode="paper", realized_pnl=17.5)
    red = replace(
        red,
        metrics={**red.metrics, "risk_status": "red", "limit_details": RED_LIMITS},
        config={"strategy_name": "breakout_v2", "risk": {"max_position": 1.0, "limits": [1, 2]}},
    )
    running = new_session(ids["running"], mode="testnet", status="started", realized_pnl=5.0)
    running = replace(
        running,
        metrics={**running.metrics, "unrealized_pnl": -2.5, "risk_severity": "warning"},
        config={"strategy_name": "ma_crossover"},
    )
    eth = replace(
        new_session(ids["eth"], mode="shadow", realized_pnl=1.0),
        symbol="ETH/USDT",
        metrics={"realized_pnl": 1.0, "risk_check": {"severity": "ok"}},
    )
    for record in (failed, red, running, eth):
        register_live_session_run(record, registry)
    return ids


@pytest.fixture
def server(live_server: Callable[..., LiveServer]) -> LiveServer:
    return live_server(env={"LIVE_TRACK_STALE_AFTER_SECONDS": str(STALE_SECONDS)})


@pytest.fixture
def ids(server: LiveServer) -> dict[str, str]:
    return scenario(server.registry)


def _context(browser: Browser, **options: object) -> Iterator[BrowserContext]:
    settings = {**TRADER_CONTEXT, "viewport": {"width": 1366, "height": 900}, **options}
    context = browser.new_context(**settings)  # type: ignore[arg-type]
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, problems: PageProblems) -> Iterator[Page]:
    for context in _context(browser):
        yield problems.watch(context.new_page())


def open_live(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live", timeout=WAIT_MS)


def row(page: Page, session_id: str) -> Locator:
    return page.locator(f"tr.session-row[data-session-id={json.dumps(session_id)}]")


def assert_calm(problems: PageProblems) -> None:
    assert problems.console_errors == []
    assert problems.page_errors == []


def test_jetzt_strip_shows_what_needs_me(
    page: Page,
    server: LiveServer,
    ids: dict[str, str],
    problems: PageProblems,
    keep_screenshot: Screenshot,
) -> None:
    open_live(page, server.url("/"))
    strip = page.locator(".now-strip")
    expect(strip.locator("h2")).to_have_text("Jetzt")

    running = strip.locator(
        ".now-running .now-item", has=page.locator(f"a[title='{ids['running']}']")
    )
    expect(running).to_have_count(1)
    expect(running).to_contain_text("BTC/USDT")
    expect(running).to_contain_text("testnet")
    expect(running).to_contain_text("+5,00")
    expect(running).to_contain_text("−2,50 USDT offen")
    expect(running).to_contain_text("USDT")
    expect(running).to_contain_text("Heartbeat vor")
    expect(running.locator(".risk-light.risk-yellow")).to_have_count(1)

    failed = strip.locator(
        ".now-problems .now-item", has=page.locator(f"a[title='{ids['failed_live']}']")
    )
    expect(failed).to_have_count(1)
    expect(failed.locator(".status-badge")).to_have_text("FAIL")
    expect(failed).to_contain_text("insufficient margin")
    failed.locator("a.now-link").click()
    page.wait_for_url(f"**/session/{ids['failed_live']}")
    expect(page.locator(".detail .error-note")).to_contain_text("the bot stopped")
    page.go_back()
    expect(page.locator(".now-strip")).to_be_visible()

    # The tab says how many run and how many failed (the demo adds some of each).
    title = page.title()
    assert title.startswith("(") and "▶" in title and "✖)" in title, title
    # ... the same count as the strip (a bot may turn stale meanwhile: wait for both).
    page.wait_for_function(
        """() => {
          const count = document.querySelector('.now-strip .now-running .now-count');
          return count && document.title.startsWith('(' + count.textContent.trim() + ' ▶ ');
        }""",
        timeout=WAIT_MS,
    )
    keep_screenshot(page, "live-page-jetzt.png")  # the desktop screens are test_screens_...
    assert_calm(problems)


def test_a_bot_that_stops_beating_turns_stale_in_place(
    page: Page,
    server: LiveServer,
    ids: dict[str, str],
    problems: PageProblems,
    keep_screenshot: Screenshot,
) -> None:
    session_id = unique_id("session_20261125_live_beat")
    beating = new_session(session_id, mode="live", status="started", realized_pnl=3.0)
    register_live_session_run(beating, server.registry)
    open_live(page, server.url("/"))
    the_row = row(page, session_id)
    expect(the_row).to_have_count(1, timeout=WAIT_MS)
    the_row.evaluate("node => { node.__kept = 'same node' }")

    # One heartbeat: the writer rewrites the record with a new updated_at.
    register_live_session_run(replace(beating, updated_at=utcnow()), server.registry)
    # Then silence: after the stale limit the row says so, the strip lists it as a problem.
    expect(the_row.locator(".stale-tag")).to_have_text(
        "veraltet", timeout=WAIT_MS + STALE_SECONDS * 1000
    )
    problem = page.locator(
        ".now-problems .now-problem-stale", has=page.locator(f"a[title='{session_id}']")
    )
    expect(problem).to_have_count(1)
    # Rows that did not change are the same DOM nodes as before: only changed rows are swapped.
    untouched = row(page, ids["eth"])
    untouched.evaluate("node => { node.__kept = 'same node' }")
    panel = page.locator("#live-track-panel")
    before = panel.get_attribute("data-refreshes") or "0"
    register_live_session_run(
        new_session(unique_id("session_20261125_paper_more"), mode="paper"), server.registry
    )
    expect(panel).not_to_have_attribute("data-refreshes", before, timeout=WAIT_MS)
    assert untouched.evaluate("node => node.__kept") == "same node"
    keep_screenshot(page, "live-page-stale.png")
    assert_calm(problems)


def test_an_open_row_survives_a_heartbeat_and_rows_open_by_keyboard(
    page: Page, server: LiveServer, ids: dict[str, str], problems: PageProblems
) -> None:
    open_live(page, server.url("/"))
    red = row(page, ids["red_risk"])
    red.locator("td.cell-symbol").click()
    expect(red).to_have_attribute("aria-expanded", "true")
    expect(page.locator(".detail-row .limit")).to_have_count(3, timeout=WAIT_MS)

    eth = row(page, ids["eth"])
    eth.focus()
    page.keyboard.press("Enter")
    expect(eth).to_have_attribute("aria-expanded", "true")
    page.keyboard.press(" ")
    expect(eth).to_have_attribute("aria-expanded", "false")

    before = page.locator("#live-track-panel").get_attribute("data-refreshes") or "0"
    register_live_session_run(
        new_session(unique_id("session_20261125_paper_new"), mode="paper"), server.registry
    )
    panel = page.locator("#live-track-panel")
    expect(panel).not_to_have_attribute("data-refreshes", before, timeout=WAIT_MS)
    expect(red).to_have_attribute("aria-expanded", "true")
    expect(page.locator(".detail-row .limit")).to_have_count(3)
    assert_calm(problems)


def test_red_risk_light_filter_and_limit_bars(
    page: Page,
    server: LiveServer,
    ids: dict[str, str],
    problems: PageProblems,
    keep_screenshot: Screenshot,
) -> None:
    open_live(page, server.url("/?risk=red"))
    rows = page.locator("tr.session-row")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".risk-light")).to_have_attribute("title", "Risiko: rot")
    expect(rows.first.locator(".cell-strategy")).to_have_text("breakout_v2")
    tile = page.locator(".snapshot")
    expect(tile.locator(".risk-light.risk-red")).to_have_count(1)
    expect(page.locator("input[name=risk][value=red]")).to_be_checked()

    # The demo sessions carry no risk data: their risk cell stays empty, never "ok".
    page.goto(server.url("/?mode=shadow&limit=100"))
    no_risk = page.locator("tr.session-row td.col-risk:empty")
    expect(no_risk.first).to_be_attached()

    page.goto(server.url(f"/session/{ids['red_risk']}"))
    bars = page.locator(".limit")
    expect(bars).to_have_count(3)
    expect(bars.first).to_contain_text("max_position")
    expect(bars.first).to_contain_text("125,00 %")
    expect(bars.first.locator(".risk-light.risk-red")).to_have_count(1)
    expect(bars.nth(1)).to_contain_text("84,00 %")  # 420 of 500, ratio computed
    # Config is a nested table, not one line of JSON.
    nested = page.locator(".kv .kv-nested th", has_text="max_position")
    expect(nested).to_have_count(1)
    keep_screenshot(page, "live-page-risk-detail.png")
    assert_calm(problems)


def test_bad_filter_keeps_the_form_with_the_message_beside_the_field(
    page: Page, server: LiveServer, ids: dict[str, str], problems: PageProblems,
    keep_screenshot: Screenshot,
) -> None:  # fmt: skip
    response = page.goto(server.url("/?limit=500&symbol=eth&since=gestern"))
    assert response is not None and response.status == 422
    expect(page.locator("#error-limit")).to_contain_text("höchstens 100")
    expect(page.locator("#error-since")).to_contain_text("Bitte ein Datum mit Uhrzeit angeben")
    # The valid part of the filter still applies: symbol "eth" matches ETH/USDT.
    expect(page.locator("input[name=symbol]")).to_have_value("eth")
    expect(row(page, ids["eth"])).to_have_count(1)
    expect(row(page, ids["red_risk"])).to_have_count(0)
    keep_screenshot(page, "live-page-filter-error.png")

    # Empty fields stay out of the URL, from the form and typed by hand.
    page.goto(server.url("/?symbol=&environment=&mode=paper"))
    assert urlsplit(page.url).query == "mode=paper"
    page.locator("input[name=symbol]").fill("")
    page.locator("form.filters").get_by_role("button", name="Filtern").click()
    page.wait_for_load_state()
    assert "symbol=" not in page.url and "since=" not in page.url
    # The only complaint is the browser noting the 422 of the first page.
    assert all("422" in error for error in problems.console_errors), problems.console_errors
    assert problems.page_errors == []


def test_page_past_the_end_links_to_the_last(page: Page, server: LiveServer) -> None:
    page.goto(server.url("/?page=99"))
    notice = page.locator(".page-past-end")
    expect(notice).to_contain_text("Seite 99 gibt es nicht")
    notice.get_by_role("link").click()
    expect(page.locator(".pager-info")).to_have_text("Seite 3 von 3")


def test_pause_counts_waiting_changes_and_notifications_switch_off(
    browser: Browser, server: LiveServer, problems: PageProblems, keep_screenshot: Screenshot
) -> None:
    for context in _context(browser):
        context.grant_permissions(["notifications"], origin=server.base_url)
        page = problems.watch(context.new_page())
        open_live(page, server.url("/"))
        pause = page.locator("#live-pause")
        pause.click()
        expect(pause).to_have_attribute("data-pending", "0")
        for n in range(2):
            register_live_session_run(
                new_session(unique_id(f"session_20261125_paused{n}"), mode="paper"), server.registry
            )
            expect(pause).to_have_attribute("data-pending", str(n + 1), timeout=WAIT_MS)
        expect(pause).to_contain_text("2 Änderungen")
        pause.click()
        expect(pause).to_have_attribute("data-pending", "0")
        expect(pause).to_have_text("Pause")

        bell = page.locator("#notify-toggle")
        expect(bell).to_have_attribute("aria-pressed", "true")
        bell.click()
        expect(bell).to_have_attribute("aria-pressed", "false")
        expect(bell).to_have_attribute("title", "Benachrichtigungen aus")

        # A finished session lands in the event log (toasts vanish, the log stays).
        register_live_session_run(
            new_session(unique_id("session_20261125_live_done"), status="failed", error="boom"),
            server.registry,
        )
        count = page.locator("#event-log .event-count")
        expect(count).not_to_have_attribute("data-count", "0", timeout=WAIT_MS)
        page.locator("#event-log > summary").click()
        expect(page.locator("#event-log .event").first).to_contain_text("Failed")
        keep_screenshot(page, "live-page-event-log.png")

        # Offline: a banner and dimmed numbers.
        context.set_offline(True)
        server.process.terminate()
        expect(page.locator("#offline-banner")).to_be_visible(timeout=WAIT_MS)
        assert "is-offline" in (page.locator("body").get_attribute("class") or "")
        keep_screenshot(page, "live-page-offline.png")


def test_utc_local_switch_is_remembered(
    page: Page, server: LiveServer, ids: dict[str, str], problems: PageProblems
) -> None:
    open_live(page, server.url("/"))
    started = row(page, ids["eth"]).locator("td.col-started")
    expect(started.locator(".tz")).to_have_text("UTC")
    utc_text = started.locator("time").inner_text()
    page.locator("#tz-toggle").click()
    expect(page.locator("#tz-toggle .tz-name")).to_have_text("Lokal")
    # Berlin is UTC+1 in November: the shown time moves, and says its zone.
    expect(started.locator(".tz")).not_to_have_text("UTC")
    assert started.locator("time").inner_text() != utc_text
    page.reload()
    expect(page.locator("#tz-toggle .tz-name")).to_have_text("Lokal")
    expect(started.locator(".tz")).not_to_have_text("UTC")
    since = page.locator("input[name=since]")
    expect(page.locator(".tz-label").first).not_to_have_text("(UTC)")
    since.fill("2026-11-25T10:00")
    page.locator("form.filters").get_by_role("button", name="Filtern").click()
    page.wait_for_url("**since=*")
    assert "since=2026-11-25T09%3A00" in page.url  # sent back in UTC
    expect(since).to_have_value("2026-11-25T10:00")  # shown in local time again
    assert_calm(problems)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screens_for_a_trader(
    browser: Browser,
    server: LiveServer,
    ids: dict[str, str],
    problems: PageProblems,
    keep_screenshot: Screenshot,
    scheme: str,
) -> None:
    for context in _context(browser, color_scheme=scheme):
        page = problems.watch(context.new_page())
        open_live(page, server.url("/"))
        keep_screenshot(page, f"live-page-desktop-{scheme}.png")
    for context in _context(
        browser,
        color_scheme=scheme,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    ):
        page = problems.watch(context.new_page())
        open_live(page, server.url("/"))
        card = row(page, ids["failed_live"])
        expect(card).to_be_visible()
        for label in ("Mode", "Status", "PnL", "Symbol", "Started"):
            expect(card.locator(f"td[data-label='{label}']")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the phone page scrolls sideways: {width}px"
        keep_screenshot(page, f"live-page-phone-{scheme}.png")
    assert_calm(problems)


def test_detail_of_a_running_session_follows_it(
    page: Page, server: LiveServer, problems: PageProblems
) -> None:
    session_id = unique_id("session_20261125_paper_follow")
    record = new_session(session_id, mode="paper", status="started", realized_pnl=1.0)
    register_live_session_run(record, server.registry)
    open_live(page, server.url("/"))
    expect(row(page, session_id)).to_have_count(1, timeout=WAIT_MS)  # the server knows it
    open_live(page, server.url(f"/session/{session_id}"))
    detail = page.locator("#session-detail")
    expect(detail.locator(".status-pill")).to_have_text("Running")
    register_live_session_run(
        replace(
            record,
            status="completed",
            finished_at=utcnow(),
            metrics={**record.metrics, "realized_pnl": 99.5},
        ),
        server.registry,
    )
    expect(detail.locator(".status-pill")).to_have_text("Completed", timeout=WAIT_MS)
    expect(detail).to_contain_text("+99,50")
    assert_calm(problems)
