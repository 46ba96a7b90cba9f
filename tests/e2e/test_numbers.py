"""Numbers a trader can trust in a real browser: money apart, German formats, charts.

Screenshots land in tests/e2e/screenshots/ (numbers-*.png) to be looked at.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from benchmarks.generate import write_registry
from tests.e2e._support import TRADER_CONTEXT, PageProblems, chart_text_outside
from tests.support import LiveServer

pytestmark = pytest.mark.browser

WAIT_MS = 10_000
BIG_WAIT_MS = 90_000
AMOUNT = re.compile(r"^[+−]?\d{1,3}(\.\d{3})*,\d{2,6} (USDT|EUR|USD|BTC|¤)$")
Screenshot = Callable[[Page, str], Path]


def _nothing_clipped(page: Page) -> None:
    """Stat cards show every digit; chart axis labels stay inside their SVG."""
    cut = page.evaluate(
        """() => [...document.querySelectorAll('.stat-value, .money-table td')]
            .filter(el => el.scrollWidth > el.clientWidth + 1).map(el => el.textContent)"""
    )
    assert cut == [], f"cut off: {cut}"
    outside = chart_text_outside(page)
    assert outside == [], f"outside the chart: {outside}"


def _check_money_and_charts(page: Page) -> None:
    rows = page.locator(".money-table tbody tr")
    expect(rows.first).to_be_visible(timeout=WAIT_MS)
    kinds = rows.locator(".money-kind").all_inner_texts()
    assert "Echtgeld" in kinds and "Simuliert" in kinds
    # Real money first, never after a simulated row.
    assert kinds == sorted(kinds, key=lambda k: k != "Echtgeld"), kinds
    for text in rows.locator(".money-sum").all_inner_texts():
        assert AMOUNT.match(text), text
    expect(page.get_by_text("Ohne Fehler beendet")).to_be_visible()
    expect(page.locator(".stats").get_by_text("Gewinnquote")).to_be_visible()
    legend = page.locator(".chart-pnl .chart-legend li")
    assert legend.count() == rows.count()  # one line per kind of money and currency
    # Every point and bar says its value on hover.
    assert page.locator(".chart-pnl circle.dot title").count() > 0
    assert page.locator(".chart-dd rect.bar title").count() > 0
    ticks = page.locator(".chart-pnl text.axis[text-anchor]").all_text_contents()
    assert sum(1 for t in ticks if re.match(r"\d\d\.\d\d\.", t)) >= 4, ticks
    expect(page.locator(".groups h2")).to_have_text("Nach Strategie")
    _nothing_clipped(page)


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_mixed_currencies_and_modes_on_the_desktop(
    browser: Browser,
    live_server: Callable[..., LiveServer],
    problems: PageProblems,
    keep_screenshot: Screenshot,
    scheme: str,
) -> None:
    server = live_server(count=160)
    context = browser.new_context(
        viewport={"width": 1366, "height": 900}, **{**TRADER_CONTEXT, "color_scheme": scheme}
    )
    page = problems.watch(context.new_page())
    try:
        page.goto(server.url("/"))
        expect(page.locator(".loaded-line")).to_contain_text("160 Session(s)", timeout=WAIT_MS)
        _check_money_and_charts(page)
        expect(page.locator(".chart-daily").first).to_be_visible()
        # The group switch and a group link filter the same page.
        page.locator(".group-switch").get_by_text("Symbol").click()
        expect(page.locator(".groups h2")).to_have_text("Nach Symbol", timeout=WAIT_MS)
        page.locator(".groups-table tbody th a").first.click()
        expect(page.locator(".loaded-line")).to_contain_text("gefiltert aus", timeout=WAIT_MS)
        page.goto(server.url("/"))
        expect(page.locator(".money-table")).to_be_visible(timeout=WAIT_MS)
        keep_screenshot(page, f"numbers-desktop-{scheme}.png")
        assert problems.console_errors == [] and problems.page_errors == []
    finally:
        context.close()


def test_twenty_thousand_sessions_keep_charts_readable(
    browser: Browser,
    live_server: Callable[..., LiveServer],
    problems: PageProblems,
    keep_screenshot: Screenshot,
) -> None:
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    server = live_server(write=lambda registry: write_registry(registry, 20_000, now=now))
    context = browser.new_context(viewport={"width": 1366, "height": 900}, **TRADER_CONTEXT)
    page = problems.watch(context.new_page())
    try:
        page.goto(server.url("/"))
        expect(page.locator(".loaded-line")).to_contain_text(
            "20.000 Session(s)", timeout=BIG_WAIT_MS
        )
        page.reload()
        _check_money_and_charts(page)
        # 20,000 sessions: the drawdown chart shows the worst value per day or week.
        expect(page.locator(".chart-dd figcaption")).to_have_text(re.compile(r"je (Tag|Woche)$"))
        assert page.locator(".chart-dd rect.bar").count() <= 60
        keep_screenshot(page, "numbers-20000.png")
        assert problems.console_errors == [] and problems.page_errors == []
    finally:
        context.close()
