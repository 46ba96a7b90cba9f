"""Aggregates over the filtered sessions: the stats strip and the chart series.

Money is summed per kind (real / simulated) and currency only
(``session_profit``); the all-currency totals stay for compatibility.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta, timezone
from itertools import accumulate, islice
from operator import attrgetter, itemgetter
from typing import Literal, NamedTuple

from pydantic import BaseModel

from src.experiments.live_session_record import utc_instant
from src.experiments.registry_index import IndexSnapshot
from src.experiments.session_head import SessionHead
from src.webui.session_profit import (
    DailyPnl,
    MoneyTotal,
    MoneyTotals,
    SessionGroups,
    daily_pnl,
    group_sessions,
    money_order,
    utc_day,
)
from src.webui.session_query import (
    RecordTime,
    SessionQuery,
    cached_view,
    filter_sessions,
    is_stale,
    normalize_status,
)
from src.webui.vocabulary import DEFAULT_REAL_MONEY_MODES, SESSION_STATUSES

MAX_CHART_POINTS = 400
MIN_LINE_POINTS = 60  # a line of the PnL chart keeps at least this many (if it has them)
DRAWDOWN_BARS = 40
# Above this many sessions the drawdown chart shows the worst value per day,
# and above this many days per week.
MAX_DAY_BUCKETS = 60
DEFAULT_REAL_MONEY = frozenset(DEFAULT_REAL_MONEY_MODES)


class SessionStats(BaseModel):
    """How the filtered sessions went, in numbers.

    ``money`` holds realized PnL, win rate, profit factor and best / worst
    session per kind of money and currency, real money first: the numbers to
    read. ``total_sessions``, ``total_pnl`` and ``avg_drawdown`` are the
    original dashboard's keys, kept for its scripts; ``total_pnl``,
    ``total_realized_pnl`` and ``avg_realized_pnl`` add **all currencies**, real
    and simulated money together, and are kept for compatibility only.
    ``success_rate`` is the share of ended sessions that ended without error
    (completed), not a measure of profit; ``win_rate`` is the share of
    sessions with a realized PnL above zero among those with one.
    """

    total_sessions: int
    total_pnl: float
    avg_drawdown: float
    sessions: int
    by_status: dict[str, int]
    by_mode: dict[str, int]
    by_host: dict[str, int] = {}  # bot hosts of the shared registry; empty for a directory
    success_rate: float | None  # completed / ended sessions
    total_realized_pnl: float
    avg_realized_pnl: float | None
    worst_drawdown: float | None
    running: int
    stale: int
    money: list[MoneyTotal] = []
    win_rate: float | None = None
    avg_duration_seconds: float | None = None  # over the ended sessions


class ChartPoint(BaseModel):
    at: RecordTime
    value: float
    session_id: str


class PnlLine(BaseModel):
    """Cumulative realized PnL of one kind of money in one currency."""

    real_money: bool
    currency: str
    points: list[ChartPoint]


class DrawdownBar(BaseModel):
    """The worst max drawdown of one session, day or week (``start`` to ``end``)."""

    start: RecordTime
    end: RecordTime
    value: float
    sessions: int
    session_id: str  # the session with the worst value


class DrawdownSeries(BaseModel):
    bucket: Literal["session", "day", "week"]
    bars: list[DrawdownBar]


class SessionCharts(BaseModel):
    """The chart series of the filtered set.

    ``pnl_lines`` (one per kind of money and currency) and ``drawdown``
    (every session with a drawdown, bucketed per day or week when many) are
    what the page draws; ``daily_pnl`` the last 30 days per kind and currency.
    ``cumulative_pnl`` adds **all currencies** and real and simulated money
    together, and ``drawdowns`` holds only the latest 40 sessions: both are
    kept for compatibility.
    """

    cumulative_pnl: list[ChartPoint]
    drawdowns: list[ChartPoint]
    pnl_lines: list[PnlLine] = []
    drawdown: DrawdownSeries = DrawdownSeries(bucket="session", bars=[])
    daily_pnl: list[DailyPnl] = []


class StatsTally(NamedTuple):
    """The counts and sums of a set of sessions, and which of them still run."""

    stats: SessionStats  # with stale=0: staleness moves with the clock
    running: tuple[SessionHead, ...]


def tally_sessions(
    heads: Sequence[SessionHead], real_money_modes: Collection[str] = DEFAULT_REAL_MONEY
) -> StatsTally:
    """Count and sum the sessions in one pass; stale is left to the caller."""
    # One pass: at 100,000 sessions each pass over the heads costs ~20 ms
    # of memory traffic alone, more than the arithmetic.
    by_status = dict.fromkeys(SESSION_STATUSES, 0)
    by_mode: dict[str, int] = {}
    by_host: dict[str, int] = {}
    running: list[SessionHead] = []
    total, priced, worst = 0.0, 0, -math.inf
    drawdown_sum, drawdowns = 0.0, 0
    money = MoneyTotals(real_money_modes)
    wins, duration_sum, durations = 0, 0.0, 0
    for head in heads:
        word, mode, finished, pnl, drawdown = _STATS_FIELDS(head)
        status = normalize_status(word, finished is not None)
        by_status[status] += 1
        if status == "started":
            running.append(head)
        by_mode[mode] = by_mode.get(mode, 0) + 1
        if head.host:
            by_host[head.host] = by_host.get(head.host, 0) + 1
        if finished is not None:
            duration_sum += head.activity - head.started
            durations += 1
        if pnl is not None:
            total += pnl
            priced += 1
            wins += pnl > 0
            money.add(head, pnl)
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
        by_host=dict(sorted(by_host.items())),
        success_rate=by_status["completed"] / ended if ended else None,
        total_realized_pnl=round(total, 8),
        avg_realized_pnl=round(total / priced, 8) if priced else None,
        worst_drawdown=worst if worst != -math.inf else None,
        running=by_status["started"],
        stale=0,
        money=money.totals(),
        win_rate=wins / priced if priced else None,
        avg_duration_seconds=duration_sum / durations if durations else None,
    )
    return StatsTally(stats, tuple(running))


def session_stats(
    snapshot: IndexSnapshot,
    query: SessionQuery,
    now: datetime,
    stale_after: timedelta,
    real_money_modes: frozenset[str] = DEFAULT_REAL_MONEY,
) -> SessionStats:
    """Count and sum the filtered set once per snapshot; stale is judged against now."""
    heads = filter_sessions(snapshot, query, now)
    tally = cached_view(
        snapshot,
        ("stats", real_money_modes, *query.filter_key(now, snapshot)),
        lambda: tally_sessions(heads, real_money_modes),
    )
    if not tally.running:
        return tally.stats
    # Staleness moves with the clock, so it is judged per call, over the few running.
    stale = sum(1 for head in tally.running if is_stale(head, now, stale_after))
    return tally.stats.model_copy(update={"stale": stale})


_STATS_FIELDS = attrgetter("status", "mode", "finished_at", "realized_pnl", "max_drawdown")


_FIRST = itemgetter(0)
# Only for heads already known to have a realized PnL.
_PNL: Callable[[SessionHead], float] = attrgetter("realized_pnl")


def _chart_time(head: SessionHead) -> float:
    if head.finished_at is not None:
        return head.activity
    if head.updated_at is None:
        return head.started
    return utc_instant(head.updated_at).timestamp()


def _thin(count: int, most: int) -> list[int]:
    """Indices of at most ``most`` points out of ``count``, always the first and the last."""
    if count <= most:
        return list(range(count))
    step = (count - 1) / (most - 1)
    return [round(i * step) for i in range(most)]


def chart_series(
    heads: Sequence[SessionHead],
    real_money_modes: Collection[str] = DEFAULT_REAL_MONEY,
    today: datetime | None = None,
) -> SessionCharts:
    """Cumulative realized PnL over activity time, drawdowns and PnL per day.

    ``heads`` come newest activity first, as the index and its filters give
    them; ``today`` ends the 30 days of ``daily_pnl`` (none without it).
    """
    priced = _priced_in_activity_order(heads)
    totals = list(accumulate(_PNL(head) for head in priced))
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
        ChartPoint.model_construct(at=at, value=value, session_id=session_id)
        for at, value, session_id in reversed(latest)
    ]
    return SessionCharts(
        cumulative_pnl=[
            ChartPoint.model_construct(
                at=_point_time(priced[i]),
                value=round(totals[i], 8),
                session_id=priced[i].session_id,
            )
            for i in _thin(len(priced), MAX_CHART_POINTS)
        ],
        drawdowns=drawdowns,
        pnl_lines=_pnl_lines(priced, real_money_modes),
        drawdown=drawdown_series(heads),
        daily_pnl=daily_pnl(heads, utc_day(today), real_money_modes) if today else [],
    )


def _point_time(head: SessionHead) -> datetime:
    return head.finished_at or head.updated_at or head.started_at


def _priced_in_activity_order(heads: Sequence[SessionHead]) -> list[SessionHead]:
    """The sessions with a realized PnL, oldest activity first."""
    # Ended sessions come in activity order already (the index's order is
    # end time, else start time), so only the few running ones need sorting.
    # A running session has realized PnL too, as of its last heartbeat;
    # counting it there makes the line end where the stats strip's total stands.
    priced: list[SessionHead] = []
    running: list[SessionHead] = []
    for head in reversed(heads):  # one pass, oldest activity first
        if head.realized_pnl is not None:
            (priced if head.finished_at is not None else running).append(head)
    for head in running:
        priced.insert(bisect.bisect_right(priced, _chart_time(head), key=_chart_time), head)
    return priced


def _pnl_lines(priced: list[SessionHead], real_money_modes: Collection[str]) -> list[PnlLine]:
    """One cumulative line per kind of money and currency, each thinned on its own.

    Points are made only for what is kept: a model per session would cost
    60 MB and a fifth of a second at 100,000 sessions, for 400 points a line.
    """
    shared: dict[tuple[str, str], tuple[bool, str]] = {}  # one key tuple per kind, not per head
    keys = [
        shared.get((head.mode, head.currency))
        or shared.setdefault(
            (head.mode, head.currency), (head.mode in real_money_modes, head.currency)
        )
        for head in priced
    ]
    counts = Counter(keys)
    # One budget for the chart, shared by its lines: eight currencies and kinds
    # at 400 points each drew 3,200 hover targets, 800 KB of page, on 420 px.
    most = max(MIN_LINE_POINTS, MAX_CHART_POINTS // max(1, len(counts)))
    kept = {key: set(_thin(count, most)) for key, count in counts.items()}
    seen = dict.fromkeys(kept, 0)
    sums = dict.fromkeys(kept, 0.0)
    points: dict[tuple[bool, str], list[ChartPoint]] = {key: [] for key in kept}
    for key, head in zip(keys, priced, strict=True):
        sums[key] += _PNL(head)
        if seen[key] in kept[key]:
            points[key].append(_pnl_point(head, sums[key]))
        seen[key] += 1
    return [
        PnlLine(real_money=key[0], currency=key[1], points=points[key])
        for key in sorted(points, key=money_order)
    ]


def _money_key(
    head: SessionHead,
    real_money_modes: Collection[str],
    shared: dict[tuple[str, str], tuple[bool, str]],
) -> tuple[bool, str]:
    kind = (head.mode, head.currency)
    key = shared.get(kind)
    if key is None:
        key = shared[kind] = (head.mode in real_money_modes, head.currency)
    return key


def _pnl_point(head: SessionHead, total: float) -> ChartPoint:
    return ChartPoint.model_construct(
        at=_point_time(head), value=round(total, 8), session_id=head.session_id
    )


def drawdown_series(heads: Sequence[SessionHead]) -> DrawdownSeries:
    """Every session's max drawdown, oldest first; the worst per day or week when many."""
    points = [
        (h.activity if h.finished_at is not None else _chart_time(h), h.max_drawdown, h)
        for h in reversed(heads)
        if h.max_drawdown is not None
    ]
    points.sort(key=_FIRST)  # running sessions sit by start time
    if len(points) <= DRAWDOWN_BARS:
        return DrawdownSeries(
            bucket="session",
            bars=[
                DrawdownBar.model_construct(
                    start=_point_time(h),
                    end=_point_time(h),
                    value=v,
                    sessions=1,
                    session_id=h.session_id,
                )
                for _, v, h in points
            ],
        )
    span_days = (points[-1][0] - points[0][0]) / 86400
    size = 86400 if span_days <= MAX_DAY_BUCKETS else 7 * 86400
    # Weeks start on Monday: 1970-01-01 was a Thursday, so shift by four days.
    offset = 0 if size == 86400 else 4 * 86400
    buckets: dict[int, tuple[float, int, SessionHead]] = {}
    for at, value, head in points:
        slot = int((at - offset) // size)
        found = buckets.get(slot)
        if found is None:
            buckets[slot] = (value, 1, head)
        elif value > found[0]:
            buckets[slot] = (value, found[1] + 1, head)
        else:
            buckets[slot] = (found[0], found[1] + 1, found[2])
    return DrawdownSeries(
        bucket="day" if size == 86400 else "week",
        bars=[
            DrawdownBar.model_construct(
                start=datetime.fromtimestamp(slot * size + offset, timezone.utc),
                end=datetime.fromtimestamp((slot + 1) * size + offset - 1, timezone.utc),
                value=value,
                sessions=count,
                session_id=head.session_id,
            )
            for slot, (value, count, head) in sorted(buckets.items())
        ],
    )


def session_charts(
    snapshot: IndexSnapshot,
    query: SessionQuery,
    now: datetime,
    real_money_modes: frozenset[str] = DEFAULT_REAL_MONEY,
) -> SessionCharts:
    """The chart series of the filtered set, computed once per snapshot (and day)."""
    heads = filter_sessions(snapshot, query, now)
    key = ("charts", utc_day(now), real_money_modes, *query.filter_key(now, snapshot))
    return cached_view(snapshot, key, lambda: chart_series(heads, real_money_modes, now))


def session_groups(
    snapshot: IndexSnapshot,
    query: SessionQuery,
    now: datetime,
    real_money_modes: frozenset[str] = DEFAULT_REAL_MONEY,
) -> SessionGroups:
    """The filtered sessions grouped by ``query.group``, computed once per snapshot."""
    heads = filter_sessions(snapshot, query, now)
    key = ("groups", query.group, real_money_modes, *query.filter_key(now, snapshot))
    return cached_view(snapshot, key, lambda: group_sessions(heads, query.group, real_money_modes))
