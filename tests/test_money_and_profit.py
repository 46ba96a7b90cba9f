"""Money kept apart (real / simulated, per currency), profit figures, German formatting."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from src.webui.app import create_app
from src.webui.charts import daily_charts, drawdown_chart, pnl_charts
from src.webui.formatting import (
    fmt_compact,
    fmt_count,
    fmt_duration,
    fmt_money,
    fmt_pct,
    fmt_time,
    german_problems,
)
from src.webui.session_profit import group_sessions, money_totals
from src.webui.session_stats import DRAWDOWN_BARS, chart_series, tally_sessions
from src.webui.settings import Settings
from tests.test_session_stats import START, ended, heads_of

REAL = frozenset({"live", "bounded_pilot"})


def mixed(tmp_path: Path) -> Any:
    """Real and simulated money in USDT, EUR and one session without a currency."""
    return heads_of(
        tmp_path,
        ended("live-usdt-win", 0, mode="live", metrics={"realized_pnl": 100.0}),
        ended("live-usdt-loss", 1, mode="live", metrics={"realized_pnl": -40.0}),
        ended(
            "pilot-eur", 2, mode="bounded_pilot", symbol="BTC/EUR", metrics={"realized_pnl": 7.5}
        ),  # fmt: skip
        ended("shadow-usdt", 3, metrics={"realized_pnl": 1000.0}),
        ended("paper-usd", 4, mode="paper", symbol="BTC/USD", metrics={"realized_pnl": -3.0}),
        ended("no-currency", 5, mode="paper", symbol="XYZ", metrics={"realized_pnl": 2.0}),
        ended("no-pnl", 6, mode="live"),
    )


def test_money_is_summed_per_kind_and_currency_real_first(tmp_path: Path) -> None:
    totals = money_totals(mixed(tmp_path), REAL)
    assert [(t.real_money, t.currency, t.realized_pnl, t.sessions) for t in totals] == [
        (True, "EUR", 7.5, 1),
        (True, "USDT", 60.0, 2),
        (False, "USD", -3.0, 1),
        (False, "USDT", 1000.0, 1),
        (False, "", 2.0, 1),
    ]
    usdt = totals[1]
    assert (usdt.wins, usdt.losses, usdt.win_rate) == (1, 1, 0.5)
    assert usdt.profit_factor == pytest.approx(100 / 40)
    assert (usdt.best.session_id, usdt.worst.session_id) == ("live-usdt-win", "live-usdt-loss")
    assert totals[0].profit_factor is None  # no loss: no ratio to show


def test_stats_carry_the_split_and_keep_the_all_currency_total(tmp_path: Path) -> None:
    stats = tally_sessions(mixed(tmp_path), REAL).stats
    assert stats.total_realized_pnl == pytest.approx(1066.5)  # all currencies, kept
    assert sum(1 for m in stats.money if m.real_money) == 2
    assert stats.win_rate == pytest.approx(4 / 6)
    assert stats.avg_duration_seconds == 3600


def test_pnl_chart_draws_one_line_per_kind_and_currency(tmp_path: Path) -> None:
    charts = chart_series(mixed(tmp_path), REAL)
    keys = [(line.real_money, line.currency) for line in charts.pnl_lines]
    assert keys == [(True, "EUR"), (True, "USDT"), (False, "USD"), (False, "USDT"), (False, "")]
    usdt = charts.pnl_lines[1]
    assert [p.value for p in usdt.points] == [100.0, 60.0]  # never with the 1000 simulated
    drawn = pnl_charts(charts.pnl_lines)
    # One chart per currency, in the daily charts' order; real money first in each.
    assert [c.title for c in drawn] == [
        "Kumulierter Realized PnL · EUR",
        "Kumulierter Realized PnL · USD",
        "Kumulierter Realized PnL · USDT",
        "Kumulierter Realized PnL · ¤",
    ]
    usdt_chart = drawn[2]
    assert [(e.label, e.value) for e in usdt_chart.legend] == [
        ("Echtgeld · USDT", "+60,00 USDT"),
        ("Simuliert · USDT", "+1.000,00 USDT"),
    ]
    assert all(dot.title for chart in drawn for line in chart.lines for dot in line.dots)


def test_groups_by_strategy_symbol_and_environment(tmp_path: Path) -> None:
    heads = heads_of(
        tmp_path,
        ended(
            "a",
            0,
            config={"strategy_name": "ma"},
            metrics={"realized_pnl": 5.0, "max_drawdown": 0.1},
        ),  # fmt: skip
        ended(
            "b",
            1,
            config={"strategy_name": "ma"},
            metrics={"realized_pnl": -1.0, "max_drawdown": 0.3},
        ),  # fmt: skip
        ended("c", 2, config={"strategy_name": "rsi"}, symbol="BTC/EUR", mode="live"),
        ended("d", 3, config={}, metrics={"realized_pnl": 1.0}),
    )
    groups = group_sessions(heads, "strategy", REAL).groups
    assert [(g.key, g.sessions) for g in groups] == [("ma", 2), ("rsi", 1), ("", 1)]
    assert groups[0].win_rate == 0.5 and groups[0].worst_drawdown == 0.3
    assert [(m.real_money, m.currency, m.realized_pnl) for m in groups[0].pnl] == [
        (False, "USDT", 4.0)
    ]
    by_symbol = group_sessions(heads, "symbol", REAL).groups
    assert {g.key for g in by_symbol} == {"BTC/USDT", "BTC/EUR"}


def test_drawdown_covers_every_session_and_buckets_per_day_when_many(tmp_path: Path) -> None:
    records = [
        ended(f"s{i:03d}", i * 5, metrics={"max_drawdown": 0.01 * (i % 7)})
        for i in range(DRAWDOWN_BARS + 20)
    ]
    series = chart_series(heads_of(tmp_path, *records), REAL).drawdown
    assert series.bucket == "day"
    assert sum(bar.sessions for bar in series.bars) == DRAWDOWN_BARS + 20
    first_day = [r for r in records if r.finished_at and r.finished_at.date() == START.date()]
    assert series.bars[0].value == max(r.metrics["max_drawdown"] for r in first_day)
    chart = drawdown_chart(series)
    assert "je Tag" in chart.title
    assert len(chart.x_labels) >= 4 and all(
        re.match(r"\d\d\.\d\d\.", x.text) for x in chart.x_labels
    )
    assert all("Session(s)" in bar.title for bar in chart.bars)


def test_daily_pnl_covers_30_days_per_currency(tmp_path: Path) -> None:
    heads = mixed(tmp_path)
    today = datetime.combine(START.date() + timedelta(days=2), datetime.min.time(), timezone.utc)
    daily = chart_series(heads, REAL, today).daily_pnl
    assert all(len(series.days) == 30 for series in daily)
    usdt_real = next(s for s in daily if s.real_money and s.currency == "USDT")
    booked = [d for d in usdt_real.days if d.sessions]
    assert [(d.day, d.realized_pnl, d.sessions) for d in booked] == [(START.date(), 60.0, 2)]
    charts = daily_charts(daily)
    assert [c.title.split(" · ")[1].split(" ")[0] for c in charts] == ["EUR", "USD", "USDT", "¤"]
    assert all(bar.title for chart in charts for bar in chart.bars)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (fmt_money(1466206.094, "USDT"), "+1.466.206,09 USDT"),
        (fmt_money(-3.5, "EUR"), "−3,50 EUR"),
        (fmt_money(2.0, ""), "+2,00 ¤"),
        (fmt_money(0.001, "BTC"), "+0,001000 BTC"),
        (fmt_pct(0.7999), "79,99 %"),
        (fmt_count(20000), "20.000"),
        (fmt_time(datetime(2026, 11, 25, 3, 48, 12)), "25.11.2026 03:48"),
        (fmt_duration(3 * 3600 + 12 * 60), "3 h 12 min"),
        (fmt_compact(1_500_000, 500_000), "1,5 Mio."),
        (fmt_compact(-250_000, 50_000), "−250 Tsd."),
        (fmt_compact(0.000025, 0.000025, 6), "0,000025"),  # a BTC axis: six decimals
    ],
)
def test_numbers_are_formatted_the_german_way(text: str, expected: str) -> None:
    assert text == expected


def test_validation_errors_become_german_messages_per_field() -> None:
    problems = german_problems(
        [
            {"type": "less_than_equal", "loc": ("query", "limit"), "msg": "x", "ctx": {"le": 100}},
            {"type": "datetime_from_date_parsing", "loc": ("query", "since"), "msg": "x"},
        ]
    )
    assert problems == {
        "limit": "Der Wert darf höchstens 100 sein.",
        "since": "Bitte ein Datum mit Uhrzeit angeben (z. B. 2026-11-25T03:48).",
    }


# --- Through HTTP: the page shows what the API returns -------------------------


@contextmanager
def serve(registry: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(registry_dir=registry, watch=False))) as client:
        yield client


def test_page_and_api_show_money_apart_and_the_strategy_table(tmp_path: Path) -> None:
    mixed(tmp_path)
    with serve(tmp_path) as client:
        stats = client.get("/api/live_sessions/stats").json()
        view = client.get("/api/live_track?group=symbol").json()
        html = client.get("/?group=symbol").text
        bad = client.get("/?group=nonsense")
    assert [(m["real_money"], m["currency"]) for m in stats["money"]][:2] == [
        (True, "EUR"),
        (True, "USDT"),
    ]
    assert view["groups"]["group_by"] == "symbol"
    money = re.search(r'<table class="money-table">.*?</table>', html, re.S)
    assert money and money.group(0).index("+60,00 USDT") < money.group(0).index("+1.000,00 USDT")
    assert "Ohne Fehler beendet" in html and "Gewinnquote" in html
    assert "Nach Symbol" in html and 'href="/?group=symbol&amp;symbol=BTC%2FEUR"' in html
    assert bad.status_code == 422 and "Gruppierung" in bad.text and "Erlaubt sind" in bad.text


def test_a_group_link_filters_to_that_strategy(tmp_path: Path) -> None:
    heads_of(
        tmp_path,
        ended("a", 0, config={"strategy_name": "ma"}),
        ended("b", 1, config={"strategy_name": "rsi"}),
    )
    with serve(tmp_path) as client:
        html = client.get("/").text
        assert 'href="/?strategy=ma"' in html
        rows = client.get("/api/live_sessions?strategy=ma").json()
    assert [row["session_id"] for row in rows] == ["a"]
