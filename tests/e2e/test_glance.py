"""The page at a glance in a real browser (issue 13 items 4, 6, 8, 9): charts and
every time follow the UTC / Lokal switch, few sessions still get dated ticks, the
phone never scrolls sideways, and the sessions table fits a laptop screen.

Screenshots land in tests/e2e/screenshots/ (glance-*.png) to be looked at.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from src.experiments.live_session_registry import register_live_session_run
from tests.e2e._support import TRADER_CONTEXT, PageProblems, chart_text_outside, chart_text_px
from tests.support import LiveServer, make_session, utc_now

pytestmark = pytest.mark.browser

WAIT_MS = 10_000
NEW_YORK = "America/New_York"
Screenshot = Callable[[Page, str], Path]

TICKS = """sel => [...document.querySelectorAll(sel + ' text.axis[data-time]')].map(t => ({
    iso: t.getAttribute('data-time'),
    day: t.firstChild.nodeValue,
    clock: t.querySelector('tspan') ? t.querySelector('tspan').textContent : '',
}))"""
DATED = re.compile(r"^\d\d\.\d\d\.$")
# two_sessions: one in EUR, one in USDT, each on a cumulative PnL chart of its own.
PNL_CHARTS = (".chart-pnl:nth-child(1)", ".chart-pnl:nth-child(2)")


def _context(browser: Browser, **options: Any) -> Iterator[BrowserContext]:
    settings = {**TRADER_CONTEXT, "viewport": {"width": 1366, "height": 900}, **options}
    context = browser.new_context(**settings)
    try:
        yield context
    finally:
        context.close()


def two_sessions(registry: Path) -> None:
    """Two ended sessions of this morning: the least a chart draws."""
    now = utc_now()
    for n, (mode, symbol, ended) in enumerate(
        [("paper", "BTC/USDT", now - timedelta(hours=3)), ("live", "BTC/EUR", now)]
    ):
        register_live_session_run(
            make_session(
                f"session_20261125_glance_{mode}_{n}",
                mode=mode,
                symbol=symbol,
                started_at=ended - timedelta(hours=1),
                finished_at=ended,
                metrics={"realized_pnl": 12.5 - 20 * n, "max_drawdown": 0.02 + n / 100},
            ),
            registry,
        )


def local_tick(iso: str, zone: str) -> tuple[str, str]:
    moment = datetime.fromisoformat(iso).astimezone(ZoneInfo(zone))
    return moment.strftime("%d.%m."), moment.strftime("%H:%M")


def ticks(page: Page, chart: str) -> list[dict[str, str]]:
    found: list[dict[str, str]] = page.evaluate(TICKS, chart)
    return found


def test_two_sessions_get_dated_ticks_and_lokal_moves_every_time(
    browser: Browser,
    live_server: Callable[..., LiveServer],
    problems: PageProblems,
    keep_screenshot: Screenshot,
) -> None:
    server = live_server(write=two_sessions)
    for context in _context(browser, timezone_id=NEW_YORK):
        page = problems.watch(context.new_page())
        page.goto(server.url("/"))
        expect(page.locator("#tz-toggle .tz-name")).to_have_text("UTC")
        footer = page.locator("footer")
        expect(footer).to_contain_text("Zeiten in UTC")

        # Two sessions in two currencies: a PnL chart each, on one time axis, and every
        # chart still shows at least four dated ticks, each its own.
        expect(page.locator(".chart-pnl figcaption")).to_have_text(
            ["Kumulierter Realized PnL · EUR", "Kumulierter Realized PnL · USDT"]
        )
        for chart in (*PNL_CHARTS, ".chart-dd"):
            shown = ticks(page, chart)
            assert len(shown) >= 4, (chart, shown)
            assert all(DATED.match(t["day"]) for t in shown), shown
            assert len({(t["day"], t["clock"]) for t in shown}) == len(shown), shown
            expect(page.locator(f"{chart} .axis-zone")).to_have_text("Zeit: UTC")
        assert ticks(page, PNL_CHARTS[0]) == ticks(page, PNL_CHARTS[1])
        utc_ticks = ticks(page, ".chart-pnl")
        dot_title = page.locator(".chart-pnl circle.dot title").first
        expect(dot_title).to_contain_text(" UTC · ")
        started = page.locator("tr.session-row td.col-started").first
        utc_started = started.locator("time").inner_text()
        since_label = page.locator(".tz-label").first
        expect(since_label).to_have_text("(UTC)")

        clock = page.locator("#live-indicator .live-time")
        expect(clock).to_contain_text(" UTC", timeout=WAIT_MS)  # the last update, in UTC
        page.locator("#tz-toggle").click()
        expect(page.locator("#tz-toggle .tz-name")).to_have_text("Lokal")
        zone_name = _assert_shown_in(page, NEW_YORK, utc_ticks, utc_started)
        expect(clock).not_to_contain_text("UTC")
        expect(clock).to_contain_text(f" {zone_name}")
        keep_screenshot(page, "glance-lokal-new-york.png")

        # Remembered: after a reload the page opens in local time again.
        page.reload()
        expect(page.locator("#tz-toggle .tz-name")).to_have_text("Lokal")
        _assert_shown_in(page, NEW_YORK, utc_ticks, utc_started)

        # And back: the server's UTC text, unchanged.
        page.locator("#tz-toggle").click()
        expect(footer).to_contain_text("Zeiten in UTC")
        assert ticks(page, ".chart-pnl") == utc_ticks
        expect(started.locator("time")).to_have_text(utc_started)
        assert problems.console_errors == [] and problems.page_errors == []


def _assert_shown_in(
    page: Page, zone: str, utc_ticks: list[dict[str, str]], utc_started: str
) -> str:
    """Chart ticks, chart titles, the footer, the table and the filter labels all
    show local time and name the zone; returns the zone's short name."""
    footer = page.locator("footer")
    expect(footer).to_contain_text("Zeiten in Lokalzeit (")
    expect(footer).not_to_contain_text("UTC")
    zone_name = page.locator("tr.session-row td.col-started .tz").first.inner_text()
    assert zone_name not in ("", "UTC"), zone_name
    expect(footer).to_contain_text(f"Lokalzeit ({zone_name})")
    for chart in PNL_CHARTS:
        expect(page.locator(f"{chart} .axis-zone")).to_have_text(f"Zeit: {zone_name}")

    shown = ticks(page, ".chart-pnl")
    assert [t["iso"] for t in shown] == [t["iso"] for t in utc_ticks]
    assert [(t["day"], t["clock"]) for t in shown] == [
        local_tick(t["iso"], zone) for t in utc_ticks
    ], shown
    assert shown != utc_ticks
    for t in ticks(page, ".chart-dd"):
        assert (t["day"], t["clock"]) == local_tick(t["iso"], zone), t

    title = page.locator(".chart-pnl circle.dot title").first
    iso = title.get_attribute("data-time") or ""
    moment = datetime.fromisoformat(iso).astimezone(ZoneInfo(zone))
    expect(title).to_contain_text(f"{moment:%d.%m.%Y %H:%M} {zone_name} · ")
    expect(title).not_to_contain_text("UTC")

    started = page.locator("tr.session-row td.col-started").first
    iso = started.locator("time").get_attribute("datetime") or ""
    moment = datetime.fromisoformat(iso).astimezone(ZoneInfo(zone))
    expect(started.locator("time")).to_have_text(f"{moment:%d.%m.%Y %H:%M}")
    assert started.locator("time").inner_text() != utc_started
    expect(page.locator(".tz-label").first).to_have_text(f"({zone_name})")
    return zone_name


def test_phone_money_and_group_tables_stay_on_the_screen(
    browser: Browser,
    live_server: Callable[..., LiveServer],
    problems: PageProblems,
    keep_screenshot: Screenshot,
) -> None:
    server = live_server(count=160)  # mixed currencies and modes, real and simulated
    for context in _context(
        browser,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    ):
        page = problems.watch(context.new_page())
        page.goto(server.url("/"))
        money = page.locator(".money-table")
        groups = page.locator(".groups-table")
        expect(money.locator("tbody tr").first).to_be_visible(timeout=WAIT_MS)
        expect(groups.locator("tbody tr").first).to_be_visible()
        keep_screenshot(page, "glance-phone-money.png")  # also to look at when this fails
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= 390, f"the phone page scrolls sideways: {width}px"
        # Each table fits its card: no sideways scrolling inside it either, and
        # every amount is whole on the screen.
        for table in (money, groups):
            box = table.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
        cut = page.evaluate(
            """() => [...document.querySelectorAll('.money-table td, .groups-table td')]
                .filter(el => { const r = el.getBoundingClientRect();
                                return r.right > 390 || el.scrollWidth > el.clientWidth + 1; })
                .map(el => el.textContent)"""
        )
        assert cut == [], f"cut off on the phone: {cut}"
        sizes = chart_text_px(page)
        assert sizes and min(sizes) >= 11, f"chart text too small: {min(sizes):.1f}px"
        # The bigger phone text still fits its chart: no axis label cut at the edge.
        outside = chart_text_outside(page)
        assert outside == [], f"chart text cut off on the phone: {outside}"
        assert problems.console_errors == [] and problems.page_errors == []


def running_bots(registry: Path) -> dict[str, str]:
    """Bots on a busy afternoon: three running with heartbeats, one failed live bot
    with a long error, one with a red risk light; long ids, symbols and strategies."""
    now = utc_now()
    started = now - timedelta(minutes=20, seconds=18)
    ids = {
        "pilot": "session_20261125_141500_bounded_pilot_kraken_7f3e2a",
        "testnet": "session_20261125_141502_testnet_binance_futures_0a1b2c",
        "paper": "session_20261125_141504_paper_coinbase_9d8e7f",
        "failed": "session_20261125_120000_live_kraken_spot_deadbeef",
        "red": "session_20261125_110000_paper_bybit_c0ffee",
    }
    running = [
        ("pilot", "bounded_pilot", "BTC/USDT:USDT", "mean_reversion_bollinger_v3"),
        ("testnet", "testnet", "ETH/USDT:USDT", "ma_crossover_fast_slow_v12"),
        ("paper", "paper", "SOL/EUR", "breakout_donchian_channel"),
    ]
    for role, mode, symbol, strategy in running:
        register_live_session_run(
            make_session(
                ids[role],
                mode=mode,
                status="started",
                symbol=symbol,
                env_name=f"{mode}_exchange_account_main",
                started_at=started,
                updated_at=now - timedelta(seconds=51),
                metrics={"realized_pnl": -1234.56, "unrealized_pnl": 99.5, "max_drawdown": 0.0412,
                         "num_orders": 12345, "risk_severity": "warning"},
                config={"strategy_name": strategy},
            ),
            registry,
        )  # fmt: skip
    failed = make_session(
        ids["failed"],
        mode="live",
        status="failed",
        symbol="BTC/USDT",
        started_at=now - timedelta(hours=3, minutes=12),
        finished_at=now - timedelta(hours=1),
        metrics={"realized_pnl": -1466206.09, "max_drawdown": 0.7999, "num_orders": 4321},
        config={"strategy_name": "grid_trading_with_trailing_stop"},
        error=(
            "ExchangeError: kraken {'error': ['EOrder:Insufficient funds']} while placing a "
            "reduce-only stop-loss order for BTC/USDT – position left open, check manually"
        ),
    )
    red = make_session(
        ids["red"],
        mode="paper",
        symbol="ETH/BTC",
        started_at=now - timedelta(hours=5),
        metrics={"realized_pnl": 0.00123, "max_drawdown": 0.12, "num_orders": 7,
                 "risk_status": "red"},
    )  # fmt: skip
    register_live_session_run(failed, registry)
    register_live_session_run(replace(red, finished_at=now - timedelta(hours=4)), registry)
    return ids


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_sessions_table_fits_a_laptop_with_running_bots_and_a_failure(
    browser: Browser,
    live_server: Callable[..., LiveServer],
    problems: PageProblems,
    keep_screenshot: Screenshot,
    scheme: str,
) -> None:
    found: dict[str, str] = {}
    server = live_server(write=lambda registry: found.update(running_bots(registry)))
    for context in _context(browser, viewport={"width": 1366, "height": 768}, color_scheme=scheme):
        page = problems.watch(context.new_page())
        page.goto(server.url("/"))
        pilot = page.locator(f"tr.session-row[data-session-id='{found['pilot']}']")
        liveness = pilot.locator(".running-text")
        expect(liveness).to_have_text(re.compile(r"^läuft seit 20 min · Heartbeat vor \d+ s$"))
        failed = page.locator(f"tr.session-row[data-session-id='{found['failed']}']")
        expect(failed.locator(".row-error")).to_contain_text("EOrder:Insufficient funds")
        red = page.locator(f"tr.session-row[data-session-id='{found['red']}']")
        expect(red.locator(".risk-light.risk-red")).to_have_count(1)
        keep_screenshot(page, f"glance-laptop-running-{scheme}.png")
        sizes_px = chart_text_px(page)
        assert sizes_px and min(sizes_px) >= 11, f"chart text too small: {min(sizes_px):.1f}px"
        sizes = page.locator(".sessions .table-wrap").evaluate(
            """wrap => ({wrap: wrap.clientWidth, content: wrap.scrollWidth,
                        table: wrap.querySelector('.sessions-table').scrollWidth})"""
        )
        assert sizes["content"] <= sizes["wrap"], f"the table scrolls sideways: {sizes}"
        assert sizes["table"] <= sizes["wrap"], sizes
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= 1366, width
        # The failed live bot's page: its whole error, its red money.
        failed.locator(".cell-id a").click()
        page.wait_for_url(f"**/session/{found['failed']}")
        expect(page.locator(".detail .error-note")).to_contain_text("check manually")
        keep_screenshot(page, f"glance-failed-live-detail-{scheme}.png")
        assert problems.console_errors == [] and problems.page_errors == []
