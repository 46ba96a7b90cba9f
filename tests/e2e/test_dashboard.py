"""The Phase 82 panel as a trader sees it in a real browser (docs/live-track-panel.md)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e._support import TRADER_CONTEXT, PageProblems, assert_abbreviates
from tests.support import LiveServer

pytestmark = pytest.mark.browser

WAIT_MS = 5000
SPEC_COLUMNS = ["Session", "Mode", "Status", "Started", "Ended", "PnL", "Max DD", "Orders"]
STATUS_BADGES = {"OK", "FAIL", "ABORT", "RUN"}
MODE_CLASSES = {"mode-shadow", "mode-testnet", "mode-paper", "mode-live"}
# fmt_money: sign, German thousands separators and decimal comma, a real minus sign for
# losses, then the currency (the demo trades USDT, EUR, USD and BTC pairs).
MONEY = re.compile(r"^[+−]?\d{1,3}(\.\d{3})*,\d{2,6} (USDT|EUR|USD|BTC)$")

Screenshot = Callable[[Page, str], Path]


def computed(page: Page, selector: str, prop: str) -> str:
    return str(
        page.locator(selector)
        .first.evaluate(f"(el) => getComputedStyle(el).getPropertyValue({prop!r})")
        .strip()
    )


def test_dashboard_desktop_shows_the_live_track_panel(
    browser: Browser,
    live_server: Callable[..., LiveServer],
    problems: PageProblems,
    keep_screenshot: Screenshot,
) -> None:
    server = live_server()
    context = browser.new_context(viewport={"width": 1366, "height": 900}, **TRADER_CONTEXT)
    page = problems.watch(context.new_page())
    try:
        page.goto(server.url("/"))

        expect(page.locator("h1")).to_contain_text("Live-Track")
        expect(page.locator(".loaded-line")).to_have_text(
            re.compile(r"^24 Session\(s\) geladen$"), timeout=WAIT_MS
        )

        tile = page.locator(".snapshot")
        expect(tile.locator("h2")).to_have_text("Letzte abgeschlossene Session")
        mode_badge = tile.locator(".snapshot-head .badge")
        expect(mode_badge).to_have_count(1)
        assert set(mode_badge.get_attribute("class").split()) & MODE_CLASSES
        expect(tile.locator(".status-pill")).to_have_text("Completed")
        expect(tile.locator(".pnl-big")).to_have_text(MONEY)
        expect(tile.locator(".drawdown")).to_have_text(re.compile(r"^\d+,\d{2} %$"))

        headers = page.locator(".sessions-table thead th")
        expect(headers).to_have_count(11)
        texts = [h.strip() for h in headers.all_text_contents()]
        assert texts[:8] == SPEC_COLUMNS  # the spec's eight, in order; then Symbol ...
        assert texts[8:] == ["Symbol", "Strategie", "Risiko"]

        rows = page.locator(".sessions-table tbody tr.session-row")
        expect(rows).to_have_count(10)
        badges = page.locator(".sessions-table tbody .status-badge")
        expect(badges).to_have_count(10)
        shown = {text.strip() for text in badges.all_inner_texts()}
        assert shown <= STATUS_BADGES, f"unexpected status badges: {shown - STATUS_BADGES}"
        assert {"OK", "FAIL"} <= shown, "the first page of the demo has OK and FAIL sessions"

        ok_badge = ".sessions-table .status-badge.status-completed"
        fail_badge = ".sessions-table .status-badge.status-failed"
        assert computed(page, ok_badge, "color") != computed(page, fail_badge, "color")
        assert computed(page, ok_badge, "background-color") != computed(
            page, fail_badge, "background-color"
        )

        first_link = rows.first.locator(".cell-id a")
        full_id = first_link.get_attribute("title")
        assert full_id is not None
        assert_abbreviates(first_link.inner_text().strip(), full_id)

        indicator = page.locator("#live-indicator")
        expect(indicator).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        expect(indicator.locator(".live-label")).to_have_text("live")
        expect(indicator).to_be_visible()

        assert problems.console_errors == []
        assert problems.page_errors == []
        keep_screenshot(page, "dashboard-desktop.png")
    finally:
        context.close()


def test_dashboard_fits_a_phone_screen(
    browser: Browser,
    live_server: Callable[..., LiveServer],
    problems: PageProblems,
    keep_screenshot: Screenshot,
) -> None:
    server = live_server()
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        **TRADER_CONTEXT,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    page = problems.watch(context.new_page())
    try:
        page.goto(server.url("/"))
        expect(page.locator(".sessions-table tbody tr.session-row")).to_have_count(
            10, timeout=WAIT_MS
        )
        expect(page.locator("#live-indicator")).to_have_attribute(
            "data-state", "live", timeout=WAIT_MS
        )
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= 390, f"page scrolls sideways on a phone: {scroll_width}px wide"
        assert problems.console_errors == []
        assert problems.page_errors == []
        keep_screenshot(page, "dashboard-phone.png")
    finally:
        context.close()


def test_empty_registry_says_so(
    browser: Browser, live_server: Callable[..., LiveServer], problems: PageProblems
) -> None:
    server = live_server(count=0)
    context = browser.new_context(viewport={"width": 1366, "height": 900}, **TRADER_CONTEXT)
    page = problems.watch(context.new_page())
    try:
        page.goto(server.url("/"))
        empty = page.locator(".empty-state")
        expect(empty.locator(".empty-title")).to_have_text(
            "Keine Live-Sessions gefunden.", timeout=WAIT_MS
        )
        expect(empty).to_contain_text(
            "Sessions werden nach dem ersten Shadow-/Testnet-Run hier angezeigt."
        )
        expect(page.locator(".sessions-table")).to_have_count(0)
        assert problems.console_errors == []
        assert problems.page_errors == []
    finally:
        context.close()
