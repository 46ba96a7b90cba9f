"""The cumulative PnL per currency in a real browser: USDT in the thousands and BTC
in 0,00x each on a chart of its own, with its own axis, on desktop and phone.

Screenshots land in tests/e2e/screenshots/ (pnl-currencies-*.png) to be looked at:
the whole page, and the chart area alone (``-charts``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from src.experiments.live_session_registry import register_live_session_run
from tests.e2e._support import TRADER_CONTEXT, PageProblems, chart_text_outside, chart_text_px
from tests.support import LiveServer, make_session, utc_now

pytestmark = pytest.mark.browser

WAIT_MS = 10_000
Screenshot = Callable[[Page, str], Path]
BTC_TICK = re.compile(r"^(0|−?0,\d{1,6})$")  # German decimal comma, BTC's decimals
CAPTIONS = ["Kumulierter Realized PnL · BTC", "Kumulierter Realized PnL · USDT"]
# Per plot: how much of the height between its lowest and highest grid line the
# line of each kind of money spans.
LINE_HEIGHTS = """figure => {
    const grid = [...figure.querySelectorAll('line.grid')].map(l => l.y1.baseVal.value);
    const plot = Math.max(...grid) - Math.min(...grid);
    return [...figure.querySelectorAll('g.series path.line')].map(p => p.getBBox().height / plot);
}"""

# (hours before now, mode, symbol, realized PnL): a week of a trader's bots.
SESSIONS = [
    (160, "live", "BTC/USDT", 420.0),
    (150, "paper", "BTC/USDT", 1800.0),
    (140, "live", "ETH/BTC", 0.00042),
    (120, "paper", "ETH/BTC", -0.00031),
    (110, "live", "BTC/USDT", -130.0),
    (96, "paper", "BTC/USDT", 2400.0),
    (90, "live", "ETH/BTC", 0.00075),
    (72, "live", "BTC/USDT", 980.0),
    (60, "paper", "ETH/BTC", 0.00068),
    (48, "paper", "BTC/USDT", -650.0),
    (30, "live", "ETH/BTC", -0.00018),
    (20, "live", "BTC/USDT", 1240.0),
    (8, "paper", "BTC/USDT", 3100.0),
    (3, "live", "ETH/BTC", 0.00096),
]


def usdt_and_btc(registry: Path) -> None:
    now = utc_now()
    for n, (hours, mode, symbol, pnl) in enumerate(SESSIONS):
        ended = now - timedelta(hours=hours)
        register_live_session_run(
            make_session(
                f"session_pnl_{n:02d}_{mode}",
                mode=mode,
                symbol=symbol,
                started_at=ended - timedelta(hours=1),
                finished_at=ended,
                metrics={"realized_pnl": pnl, "max_drawdown": 0.01 + n / 200},
            ),
            registry,
        )


def _check_pnl_charts(page: Page, viewport_width: int) -> None:
    charts = page.locator(".chart-pnl")
    expect(charts.locator("figcaption")).to_have_text(CAPTIONS, timeout=WAIT_MS)
    btc, usdt = charts.nth(0), charts.nth(1)
    btc_ticks = btc.locator("text.axis:not([data-time])").all_text_contents()
    assert len(btc_ticks) >= 3 and all(BTC_TICK.match(t) for t in btc_ticks), btc_ticks
    assert any(t != "0" for t in btc_ticks), btc_ticks
    assert any("Tsd." in t for t in usdt.locator("text.axis").all_text_contents())
    # Real and simulated money: two lines per chart, each spanning its plot, not flat.
    for chart in (btc, usdt):
        heights = chart.evaluate(LINE_HEIGHTS)
        assert len(heights) == 2 and max(heights) > 0.5, heights
    expect(btc.locator(".chart-legend li")).to_have_text(
        [re.compile(r"^Echtgeld · BTC [+−]0,\d{6} BTC$"), re.compile(r"^Simuliert · BTC ")]
    )
    expect(btc.locator("circle.dot title").first).to_contain_text(" · Echtgeld · BTC: ")
    # Chart text is readable and whole, and the page never scrolls sideways.
    sizes = chart_text_px(page)
    assert sizes and min(sizes) >= 11, f"chart text too small: {min(sizes):.1f}px"
    outside = chart_text_outside(page)
    assert outside == [], f"chart text cut off: {outside}"
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= viewport_width, f"the page scrolls sideways: {width}px"


def _keep(page: Page, keep_screenshot: Screenshot, name: str) -> None:
    path = keep_screenshot(page, f"{name}.png")
    page.locator(".overview").screenshot(path=str(path.with_name(f"{name}-charts.png")))


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_usdt_and_btc_each_get_a_pnl_chart_on_the_desktop(
    browser: Browser,
    live_server: Callable[..., LiveServer],
    problems: PageProblems,
    keep_screenshot: Screenshot,
    scheme: str,
) -> None:
    server = live_server(write=usdt_and_btc)
    context = browser.new_context(
        viewport={"width": 1366, "height": 900}, **{**TRADER_CONTEXT, "color_scheme": scheme}
    )
    page = problems.watch(context.new_page())
    try:
        page.goto(server.url("/"))
        _check_pnl_charts(page, 1366)
        # Side by side with the snapshot tile: three charts wide on a laptop.
        tops = [box["y"] for box in _boxes(page, ".snapshot, .chart-pnl")]
        assert len(set(tops)) == 1, tops
        _keep(page, keep_screenshot, f"pnl-currencies-desktop-{scheme}")
        assert problems.console_errors == [] and problems.page_errors == []
    finally:
        context.close()


def test_usdt_and_btc_pnl_charts_on_the_phone(
    browser: Browser,
    live_server: Callable[..., LiveServer],
    problems: PageProblems,
    keep_screenshot: Screenshot,
) -> None:
    server = live_server(write=usdt_and_btc)
    phone: dict[str, Any] = {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    }
    context = browser.new_context(**{**TRADER_CONTEXT, **phone})
    page = problems.watch(context.new_page())
    try:
        page.goto(server.url("/"))
        _check_pnl_charts(page, 390)
        # One below the other, each as wide as the screen allows.
        boxes = _boxes(page, ".chart-pnl")
        assert boxes[0]["y"] + boxes[0]["height"] <= boxes[1]["y"], boxes
        assert all(box["x"] >= 0 and box["x"] + box["width"] <= 390 for box in boxes), boxes
        _keep(page, keep_screenshot, "pnl-currencies-phone")
        assert problems.console_errors == [] and problems.page_errors == []
    finally:
        context.close()


def _boxes(page: Page, selector: str) -> list[dict[str, float]]:
    boxes: list[dict[str, float]] = page.evaluate(
        """sel => [...document.querySelectorAll(sel)].map(el => {
            const r = el.getBoundingClientRect();
            return {x: r.x, y: r.y + window.scrollY, width: r.width, height: r.height};
        })""",
        selector,
    )
    return boxes
