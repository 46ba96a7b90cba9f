"""The stats strip's and the charts' arithmetic, as pure functions of session heads.

The heads come from real registry files read by the index, newest activity
first, exactly as the views hand them to ``tally_sessions`` and ``chart_series``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from src.experiments.live_session_registry import LiveSessionRecord, register_live_session_run
from src.experiments.registry_index import RegistryIndex, SessionHead
from src.webui.session_stats import (
    DRAWDOWN_BARS,
    MAX_CHART_POINTS,
    MIN_LINE_POINTS,
    chart_series,
    tally_sessions,
)
from tests.support import make_session

START = datetime(2025, 12, 1, 8, 0, 0)


def ended(session_id: str, hour: int, **overrides: Any) -> LiveSessionRecord:
    """A session that ran one hour, starting ``hour`` hours after START."""
    fields = {"started_at": START + timedelta(hours=hour), "metrics": {}}
    return make_session(session_id, **{**fields, **overrides})


def heads_of(directory: Path, *records: LiveSessionRecord) -> tuple[SessionHead, ...]:
    """Write the records as a bot would and read them back through the index."""
    for record in records:
        register_live_session_run(record, directory)
    index = RegistryIndex(directory)
    index.reconcile()
    return index.snapshot().newest_first()


# --- tally_sessions ------------------------------------------------------------


def test_tally_of_no_sessions_has_no_rates_or_averages() -> None:
    tally = tally_sessions(())

    assert tally.running == ()
    assert tally.stats.sessions == 0
    assert tally.stats.by_status == {"started": 0, "completed": 0, "failed": 0, "aborted": 0}
    assert tally.stats.by_mode == {}
    assert tally.stats.success_rate is None
    assert tally.stats.total_realized_pnl == 0.0
    assert tally.stats.avg_realized_pnl is None
    assert tally.stats.worst_drawdown is None


def test_tally_counts_statuses_and_modes_most_frequent_first(tmp_path: Path) -> None:
    heads = heads_of(
        tmp_path,
        ended("a", 0, mode="live", status="failed"),
        ended("b", 1, mode="paper"),
        ended("c", 2, mode="paper", status="finished"),  # another writer's word
        ended("d", 3, mode="", run_type="live_session", status="aborted"),  # no mode at all
        ended("e", 4, mode="paper", status="started", finished_at=None),
    )

    stats = tally_sessions(heads).stats

    assert stats.sessions == 5
    assert stats.by_status == {"started": 1, "completed": 2, "failed": 1, "aborted": 1}
    # Ties keep the order of the newest session of each mode.
    assert list(stats.by_mode.items()) == [("paper", 3), ("unbekannt", 1), ("live", 1)]
    assert stats.running == 1


def test_success_rate_counts_only_sessions_that_ended(tmp_path: Path) -> None:
    heads = heads_of(
        tmp_path,
        ended("ok-1", 0),
        ended("ok-2", 1),
        ended("ok-3", 2),
        ended("broke", 3, status="failed"),
        ended("still-running", 4, status="started", finished_at=None),
    )

    assert tally_sessions(heads).stats.success_rate == pytest.approx(0.75)


def test_pnl_sums_and_averages_only_sessions_with_a_number(tmp_path: Path) -> None:
    heads = heads_of(
        tmp_path,
        ended("win", 0, metrics={"realized_pnl": 0.1, "max_drawdown": 0.02}),
        ended("loss", 1, metrics={"realized_pnl": 0.2, "max_drawdown": 0.15}),
        ended("unpriced", 2, metrics={"max_drawdown": 0.04}),
        ended("nothing", 3, metrics={}),
    )

    stats = tally_sessions(heads).stats

    assert stats.total_realized_pnl == 0.3  # rounded: 0.1 + 0.2 is 0.30000000000000004
    assert stats.avg_realized_pnl == 0.15
    assert stats.worst_drawdown == 0.15


def test_tally_hands_back_the_running_sessions_and_leaves_stale_at_zero(tmp_path: Path) -> None:
    heads = heads_of(
        tmp_path,
        ended("done", 0),
        ended("silent-for-years", 1, status="started", finished_at=None),
        ended("running", 2, status="running", finished_at=None),
    )

    tally = tally_sessions(heads)

    assert sorted(head.session_id for head in tally.running) == ["running", "silent-for-years"]
    assert tally.stats.stale == 0  # judged by session_stats against the clock, per call


# --- chart_series -------------------------------------------------------------


def test_cumulative_pnl_runs_oldest_first_and_skips_unpriced_sessions(tmp_path: Path) -> None:
    heads = heads_of(
        tmp_path,
        ended("first", 0, metrics={"realized_pnl": 10.0}),
        ended("unpriced", 1, metrics={}),
        ended("second", 2, metrics={"realized_pnl": -4.0}),
        ended("third", 3, metrics={"realized_pnl": 1.5}),
    )

    line = chart_series(heads).cumulative_pnl

    assert [(p.session_id, p.value, p.at) for p in line] == [
        ("first", 10.0, START + timedelta(hours=1)),
        ("second", 6.0, START + timedelta(hours=3)),
        ("third", 7.5, START + timedelta(hours=4)),
    ]


def test_a_running_session_counts_at_its_last_heartbeat(tmp_path: Path) -> None:
    # Started before "early" ended, last heard of between "early" and "late".
    heads = heads_of(
        tmp_path,
        ended("early", 1, metrics={"realized_pnl": 1.0}),
        ended("late", 5, metrics={"realized_pnl": 100.0}),
        ended(
            "running",
            0,
            status="started",
            finished_at=None,
            updated_at=START + timedelta(hours=3),
            metrics={"realized_pnl": 20.0},
        ),
    )

    line = chart_series(heads).cumulative_pnl

    assert [(p.session_id, p.value, p.at) for p in line] == [
        ("early", 1.0, START + timedelta(hours=2)),
        ("running", 21.0, START + timedelta(hours=3)),
        ("late", 121.0, START + timedelta(hours=6)),
    ]


def test_long_pnl_lines_are_thinned_keeping_the_first_and_the_final_total(
    tmp_path: Path,
) -> None:
    count = MAX_CHART_POINTS + 50
    heads = heads_of(
        tmp_path, *(ended(f"s{i:04d}", i, metrics={"realized_pnl": 1.0}) for i in range(count))
    )

    line = chart_series(heads).cumulative_pnl

    assert len(line) == MAX_CHART_POINTS
    assert (line[0].session_id, line[0].value) == ("s0000", 1.0)
    assert (line[-1].session_id, line[-1].value) == (f"s{count - 1:04d}", float(count))
    assert [p.value for p in line] == sorted(p.value for p in line)


def test_the_pnl_chart_shares_one_point_budget_among_its_lines(tmp_path: Path) -> None:
    currencies = ["USDT", "EUR", "USD", "BTC", "ETH", "GBP", "CHF", "JPY"]
    heads = heads_of(
        tmp_path,
        *(
            ended(f"s{i:04d}", i, metrics={"realized_pnl": 1.0, "currency": currencies[i % 8]})
            for i in range(8 * 200)
        ),
    )

    lines = chart_series(heads).pnl_lines

    assert sorted(line.currency for line in lines) == sorted(currencies)
    assert {len(line.points) for line in lines} == {max(MIN_LINE_POINTS, MAX_CHART_POINTS // 8)}
    for line in lines:  # thinned, the final total is still the line's end
        assert line.points[-1].value == 200.0


def test_drawdown_bars_show_the_latest_sessions_oldest_first(tmp_path: Path) -> None:
    count = DRAWDOWN_BARS + 5
    heads = heads_of(
        tmp_path,
        *(ended(f"s{i:03d}", i, metrics={"max_drawdown": i / 1000}) for i in range(count)),
        ended("no-drawdown", count, metrics={"realized_pnl": 3.0}),
    )

    bars = chart_series(heads).drawdowns

    assert [b.session_id for b in bars] == [f"s{i:03d}" for i in range(5, count)]
    assert bars[-1].value == (count - 1) / 1000
    assert bars[-1].at == START + timedelta(hours=count)


def test_no_sessions_give_empty_charts() -> None:
    charts = chart_series(())

    assert charts.cumulative_pnl == []
    assert charts.drawdowns == []
