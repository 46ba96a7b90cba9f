"""Aggregates over the filtered sessions: the stats strip and the chart series."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from itertools import accumulate, islice
from operator import attrgetter
from typing import NamedTuple

from pydantic import BaseModel

from src.experiments.live_session_record import utc_instant
from src.experiments.registry_index import IndexSnapshot
from src.experiments.session_head import SessionHead
from src.webui.session_query import (
    RecordTime,
    SessionQuery,
    cached_view,
    filter_sessions,
    is_stale,
    normalize_status,
)
from src.webui.vocabulary import SESSION_STATUSES

MAX_CHART_POINTS = 400
DRAWDOWN_BARS = 40


class SessionStats(BaseModel):
    """How the filtered sessions went, in numbers.

    ``total_sessions``, ``total_pnl`` and ``avg_drawdown`` are the original
    dashboard's keys, kept for its scripts; ``total_pnl`` and
    ``total_realized_pnl`` add every currency and mode together.
    """

    total_sessions: int
    total_pnl: float
    avg_drawdown: float
    sessions: int
    by_status: dict[str, int]
    by_mode: dict[str, int]
    success_rate: float | None  # completed / ended sessions
    total_realized_pnl: float
    avg_realized_pnl: float | None
    worst_drawdown: float | None
    running: int
    stale: int


class ChartPoint(BaseModel):
    at: RecordTime
    value: float
    session_id: str


class SessionCharts(BaseModel):
    """Cumulative realized PnL over time, and max drawdown of the latest sessions."""

    cumulative_pnl: list[ChartPoint]
    drawdowns: list[ChartPoint]


class StatsTally(NamedTuple):
    """The counts and sums of a set of sessions, and which of them still run."""

    stats: SessionStats  # with stale=0: staleness moves with the clock
    running: tuple[SessionHead, ...]


def tally_sessions(heads: Sequence[SessionHead]) -> StatsTally:
    """Count and sum the sessions in one pass; stale is left to the caller."""
    # One pass: at 100,000 sessions each pass over the heads costs ~20 ms
    # of memory traffic alone, more than the arithmetic.
    by_status = dict.fromkeys(SESSION_STATUSES, 0)
    by_mode: dict[str, int] = {}
    running: list[SessionHead] = []
    total, priced, worst = 0.0, 0, -math.inf
    drawdown_sum, drawdowns = 0.0, 0
    for head in heads:
        word, mode, finished, pnl, drawdown = _STATS_FIELDS(head)
        status = normalize_status(word, finished is not None)
        by_status[status] += 1
        if status == "started":
            running.append(head)
        by_mode[mode] = by_mode.get(mode, 0) + 1
        if pnl is not None:
            total += pnl
            priced += 1
        if drawdown is not None:
            drawdown_sum += drawdown
            drawdowns += 1
            worst = max(worst, drawdown)
    ended = len(heads) - by_status["started"]
    stats = SessionStats(
        total_sessions=len(heads),
        total_pnl=round(total, 8),
        avg_drawdown=drawdown_sum / drawdowns if drawdowns else 0.0,
        sessions=len(heads),
        by_status=by_status,
        by_mode={
            mode or "unbekannt": n for mode, n in sorted(by_mode.items(), key=lambda item: -item[1])
        },
        success_rate=by_status["completed"] / ended if ended else None,
        total_realized_pnl=round(total, 8),
        avg_realized_pnl=round(total / priced, 8) if priced else None,
        worst_drawdown=worst if worst != -math.inf else None,
        running=by_status["started"],
        stale=0,
    )
    return StatsTally(stats, tuple(running))


def session_stats(
    snapshot: IndexSnapshot, query: SessionQuery, now: datetime, stale_after: timedelta
) -> SessionStats:
    """Count and sum the filtered set once per snapshot; stale is judged against now."""
    heads = filter_sessions(snapshot, query, now)
    tally = cached_view(
        snapshot, ("stats", *query.filter_key(now, snapshot)), lambda: tally_sessions(heads)
    )
    if not tally.running:
        return tally.stats
    # Staleness moves with the clock, so it is judged per call, over the few running.
    stale = sum(1 for head in tally.running if is_stale(head, now, stale_after))
    return tally.stats.model_copy(update={"stale": stale})


_STATS_FIELDS = attrgetter("status", "mode", "finished_at", "realized_pnl", "max_drawdown")


def _chart_time(head: SessionHead) -> float:
    if head.finished_at is not None:
        return head.order_key[0]
    return utc_instant(head.updated_at or head.started_at).timestamp()


def _thin(count: int, most: int) -> list[int]:
    """Indices of at most ``most`` points out of ``count``, always the first and the last."""
    if count <= most:
        return list(range(count))
    step = (count - 1) / (most - 1)
    return [round(i * step) for i in range(most)]


def chart_series(heads: Sequence[SessionHead]) -> SessionCharts:
    """Cumulative realized PnL over activity time, and the latest sessions' drawdowns.

    ``heads`` come newest activity first, as the index and its filters give them.
    """
    # Ended sessions come in activity order already (the index's order is
    # end time, else start time), so only the few running ones need sorting.
    # A running session has realized PnL too, as of its last heartbeat;
    # counting it there makes the line end where the stats strip's total stands.
    priced: list[SessionHead] = []
    pnls: list[float] = []
    running: list[tuple[SessionHead, float]] = []
    for head in reversed(heads):  # one pass, oldest activity first
        pnl = head.realized_pnl
        if pnl is None:
            continue
        if head.finished_at is None:
            running.append((head, pnl))
        else:
            priced.append(head)
            pnls.append(pnl)
    for head, pnl in running:
        at = bisect.bisect_right(priced, _chart_time(head), key=_chart_time)
        priced.insert(at, head)
        pnls.insert(at, pnl)
    totals = list(accumulate(pnls))
    latest = list(
        islice(
            (
                (h.finished_at or h.started_at, h.max_drawdown, h.session_id)
                for h in heads
                if h.max_drawdown is not None
            ),
            DRAWDOWN_BARS,
        )
    )
    drawdowns = [
        ChartPoint(at=at, value=value, session_id=session_id)
        for at, value, session_id in reversed(latest)
    ]
    return SessionCharts(
        cumulative_pnl=[
            ChartPoint(
                at=priced[i].finished_at or priced[i].updated_at or priced[i].started_at,
                value=round(totals[i], 8),
                session_id=priced[i].session_id,
            )
            for i in _thin(len(priced), MAX_CHART_POINTS)
        ],
        drawdowns=drawdowns,
    )


def session_charts(snapshot: IndexSnapshot, query: SessionQuery, now: datetime) -> SessionCharts:
    """The chart series of the filtered set, computed once per snapshot."""
    heads = filter_sessions(snapshot, query, now)
    return cached_view(
        snapshot, ("charts", *query.filter_key(now, snapshot)), lambda: chart_series(heads)
    )
