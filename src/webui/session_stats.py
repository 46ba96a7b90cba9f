"""Aggregates over the filtered sessions: the stats strip and the chart series."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from itertools import islice

from pydantic import BaseModel

from src.experiments.live_session_registry import utc_instant
from src.experiments.registry_index import IndexSnapshot, SessionHead
from src.webui.session_query import (
    SESSION_STATUSES,
    RecordTime,
    SessionQuery,
    cached_view,
    filter_sessions,
    head_status,
    is_stale,
)

MAX_CHART_POINTS = 400
DRAWDOWN_BARS = 40


class SessionStats(BaseModel):
    """How the filtered sessions went, in numbers."""

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


def session_stats(
    snapshot: IndexSnapshot, query: SessionQuery, now: datetime, stale_after: timedelta
) -> SessionStats:
    """Count and sum the filtered set once per snapshot; stale is judged against now."""
    heads = filter_sessions(snapshot, query, now)

    def build() -> SessionStats:
        by_status = Counter(dict.fromkeys(SESSION_STATUSES, 0))
        by_status.update(head_status(h) for h in heads)
        pnls = [h.realized_pnl for h in heads if h.realized_pnl is not None]
        drawdowns = [h.max_drawdown for h in heads if h.max_drawdown is not None]
        ended = by_status["completed"] + by_status["failed"] + by_status["aborted"]
        return SessionStats(
            sessions=len(heads),
            by_status=dict(by_status),
            by_mode=dict(Counter(h.mode or "unbekannt" for h in heads).most_common()),
            success_rate=by_status["completed"] / ended if ended else None,
            total_realized_pnl=round(sum(pnls), 8),
            avg_realized_pnl=round(sum(pnls) / len(pnls), 8) if pnls else None,
            worst_drawdown=max(drawdowns) if drawdowns else None,
            running=by_status["started"],
            stale=0,
        )

    def running() -> tuple[SessionHead, ...]:
        return tuple(h for h in heads if head_status(h) == "started")

    key = query.filter_key(now)
    stats: SessionStats = cached_view(snapshot, ("stats", *key), build)  # type: ignore[assignment]
    if not stats.running:
        return stats
    # Staleness moves with the clock, so only the running sessions are cached.
    running_heads: tuple[SessionHead, ...] = cached_view(snapshot, ("running", *key), running)  # type: ignore[assignment]
    stale = sum(1 for h in running_heads if is_stale(h, now, stale_after))
    return stats.model_copy(update={"stale": stale})


def _thin(
    points: list[tuple[datetime, float, str]], most: int
) -> list[tuple[datetime, float, str]]:
    """Keep at most ``most`` points, always the first and the last."""
    if len(points) <= most:
        return points
    step = (len(points) - 1) / (most - 1)
    return [points[round(i * step)] for i in range(most)]


def session_charts(snapshot: IndexSnapshot, query: SessionQuery, now: datetime) -> SessionCharts:
    heads = filter_sessions(snapshot, query, now)

    def build() -> SessionCharts:
        # A running session has realized PnL too, as of its last heartbeat; counting
        # it there makes the line end where the stats strip's total stands.
        realized = sorted(
            (
                (utc_instant(h.finished_at or h.updated_at or h.started_at), h.realized_pnl, h)
                for h in heads
                if h.realized_pnl is not None
            ),
            key=lambda item: item[0],
        )
        total = 0.0
        cumulative: list[tuple[datetime, float, str]] = []
        for at, pnl, head in realized:
            total += pnl
            cumulative.append((at, round(total, 8), head.session_id))
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
                ChartPoint(at=at, value=value, session_id=session_id)
                for at, value, session_id in _thin(cumulative, MAX_CHART_POINTS)
            ],
            drawdowns=drawdowns,
        )

    return cached_view(snapshot, ("charts", *query.filter_key(now)), build)  # type: ignore[return-value]
