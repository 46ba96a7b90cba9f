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
from operator import attrgetter, itemgetter, le
from typing import Literal, NamedTuple, cast

from pydantic import BaseModel

from src.experiments.registry_index import IndexSnapshot
from src.experiments.session_head import SessionHead
from src.webui.session_profit import (
    DailyPnl,
    MoneyLists,
    MoneyTotal,
    SessionGroups,
    daily_pnl,
    group_sessions,
    money_lists,
    money_order,
    money_totals,
    utc_day,
)
from src.webui.session_query import (
    RecordTime,
    SessionQuery,
    StatusTally,
    cached_view,
    filter_sessions,
    filtered_statuses,
    is_stale,
    status_tally,
)
from src.webui.vocabulary import DEFAULT_REAL_MONEY_MODES

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


_FIRST = itemgetter(0)
# Only for heads already known to have a realized PnL.
_PNL: Callable[[SessionHead], float] = attrgetter("realized_pnl")
_DRAWDOWN: Callable[[SessionHead], float | None] = attrgetter("max_drawdown")
# Through the profile, in C: a head's own property costs a Python-level call more.
_MODE: Callable[[SessionHead], str] = attrgetter("profile.mode")
_HOST: Callable[[SessionHead], str] = attrgetter("profile.host")


class StatsTally(NamedTuple):
    """The counts and sums of a set of sessions, and which of them still run."""

    stats: SessionStats  # with stale=0: staleness moves with the clock
    running: tuple[SessionHead, ...]


def tally_sessions(
    heads: Sequence[SessionHead],
    real_money_modes: Collection[str] = DEFAULT_REAL_MONEY,
    statuses: StatusTally | None = None,
) -> StatsTally:
    """Count and sum the sessions; stale is left to the caller.

    ``statuses`` is ``status_tally(heads)`` when the caller has it already.
    """
    # Few passes, each cheap per head: statuses, modes and hosts are counted
    # in C, one tight loop does the sums, and the money is summed per kind
    # after it (money_lists). At 100,000 sessions one loop doing all of it
    # per head, with a call per head, took ~0.12 s. The sums add in the
    # heads' order, as before, so every figure is the same to the last bit.
    by_status, running = statuses or status_tally(heads)
    by_status = dict(by_status)  # the shared tally stays as it is
    by_mode = Counter(map(_MODE, heads))  # first seen first, as the sort's tie-break
    by_host = Counter(filter(None, map(_HOST, heads)))
    total, duration_sum, drawdown_sum, worst = 0.0, 0.0, 0.0, -math.inf
    durations, drawdowns, priced = 0, 0, 0
    for head in heads:
        if head.profile.ended:
            duration_sum += head.activity - head.started
            durations += 1
        pnl = head.realized_pnl
        if pnl is not None:
            total += pnl
            priced += 1
        drawdown = head.max_drawdown
        if drawdown is not None:
            drawdown_sum += drawdown
            drawdowns += 1
            if drawdown > worst:  # the first of equal values, as max() keeps
                worst = drawdown
    money = money_totals(heads, real_money_modes)
    wins = sum(kind.wins for kind in money)
    ended_count = len(heads) - by_status["started"]
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
        success_rate=by_status["completed"] / ended_count if ended_count else None,
        total_realized_pnl=round(total, 8),
        avg_realized_pnl=round(total / priced, 8) if priced else None,
        worst_drawdown=worst if worst != -math.inf else None,
        running=by_status["started"],
        stale=0,
        money=money,
        win_rate=wins / priced if priced else None,
        avg_duration_seconds=duration_sum / durations if durations else None,
    )
    return StatsTally(stats, running)


def session_stats(
    snapshot: IndexSnapshot,
    query: SessionQuery,
    now: datetime,
    stale_after: timedelta,
    real_money_modes: frozenset[str] = DEFAULT_REAL_MONEY,
) -> SessionStats:
    """Count and sum the filtered set once per snapshot; stale is judged against now."""
    heads = filter_sessions(snapshot, query, now)
    statuses = filtered_statuses(snapshot, query, now)  # not inside a build: one lock
    tally = cached_view(
        snapshot,
        ("stats", real_money_modes, *query.filter_key(now, snapshot)),
        lambda: tally_sessions(heads, real_money_modes, statuses),
    )
    if not tally.running:
        return tally.stats
    # Staleness moves with the clock, so it is judged per call, over the few running.
    stale = sum(1 for head in tally.running if is_stale(head, now, stale_after))
    return tally.stats.model_copy(update={"stale": stale})


def _chart_time(head: SessionHead) -> float:
    if head.ended:
        return head.activity
    return head.started if head.updated is None else head.updated


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
    priced, pnls = _priced_in_activity_order(heads)
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


def _priced_in_activity_order(
    heads: Sequence[SessionHead],
) -> tuple[list[SessionHead], list[float]]:
    """The sessions with a realized PnL, oldest activity first, and their PnLs."""
    # Ended sessions come in activity order already (the index's order is
    # end time, else start time), so only the few running ones need sorting.
    # A running session has realized PnL too, as of its last heartbeat;
    # counting it there makes the line end where the stats strip's total stands.
    priced: list[SessionHead] = []
    pnls: list[float] = []
    running: list[SessionHead] = []
    for head in reversed(heads):  # one pass, oldest activity first
        pnl = head.realized_pnl
        if pnl is not None:
            if head.profile.ended:
                priced.append(head)
                pnls.append(pnl)
            else:
                running.append(head)
    for head in running:
        at = bisect.bisect_right(priced, _chart_time(head), key=_chart_time)
        priced.insert(at, head)
        pnls.insert(at, _PNL(head))
    return priced, pnls


def _pnl_lines(priced: list[SessionHead], real_money_modes: Collection[str]) -> list[PnlLine]:
    """One cumulative line per kind of money and currency, each thinned on its own.

    Points are made only for what is kept: a model per session would cost
    60 MB and a fifth of a second at 100,000 sessions, for 400 points a line.
    """
    lines = money_lists(priced, real_money_modes)
    # One budget for the chart, shared by its lines: eight currencies and kinds
    # at 400 points each drew 3,200 hover targets, 800 KB of page, on 420 px.
    most = max(MIN_LINE_POINTS, MAX_CHART_POINTS // max(1, len(lines)))
    return [
        PnlLine(real_money=key[0], currency=key[1], points=_line_points(lines[key], most))
        for key in sorted(lines, key=money_order)
    ]


def _line_points(line: MoneyLists, most: int) -> list[ChartPoint]:
    """The kept points of one line; its running total adds in order, from 0.0."""
    pnls, heads = line
    totals = list(accumulate(pnls, initial=0.0))  # totals[i + 1]: through head i
    return [_pnl_point(heads[i], totals[i + 1]) for i in _thin(len(heads), most)]


def _pnl_point(head: SessionHead, total: float) -> ChartPoint:
    return ChartPoint.model_construct(
        at=_point_time(head), value=round(total, 8), session_id=head.session_id
    )


def drawdown_series(heads: Sequence[SessionHead]) -> DrawdownSeries:
    """Every session's max drawdown, oldest first; the worst per day or week when many."""
    times: list[float] = []  # a running session sits at its last heartbeat
    shown: list[SessionHead] = []
    running: list[int] = []  # where the running ones are in shown: few
    for head in reversed(heads):
        if head.max_drawdown is not None:
            if not head.profile.ended:
                running.append(len(shown))
                times.append(_chart_time(head))
            else:
                times.append(head.activity)
            shown.append(head)
    if len(shown) <= DRAWDOWN_BARS:
        return DrawdownSeries(bucket="session", bars=_session_bars(shown))
    _by_time(times, shown, running)
    values = cast(list[float], list(map(_DRAWDOWN, shown)))
    span_days = (times[-1] - times[0]) / 86400
    size = 86400 if span_days <= MAX_DAY_BUCKETS else 7 * 86400
    # Weeks start on Monday: 1970-01-01 was a Thursday, so shift by four days.
    offset = 0 if size == 86400 else 4 * 86400

    def slot_of(at: float) -> int:
        return int((at - offset) // size)

    bars = []
    start = 0
    while start < len(times):
        # A bucket is a run of the sorted times: floor((at - offset) / size),
        # which // computes exactly here, never decreases as at grows.
        slot = slot_of(times[start])
        end = bisect.bisect_right(times, slot, start, key=slot_of)
        run = values[start:end]
        worst = max(run)  # the first of equal values, as "worse than so far" kept
        bars.append(
            DrawdownBar.model_construct(
                start=datetime.fromtimestamp(slot * size + offset, timezone.utc),
                end=datetime.fromtimestamp((slot + 1) * size + offset - 1, timezone.utc),
                value=worst,
                sessions=end - start,
                session_id=shown[start + run.index(worst)].session_id,
            )
        )
        start = end
    return DrawdownSeries(bucket="day" if size == 86400 else "week", bars=bars)


def _by_time(times: list[float], heads: list[SessionHead], running: list[int]) -> None:
    """Put ``heads`` and their ``times`` in a stable sort by time, in place.

    Usually only the few running sessions (at ``running``) are out of place:
    they are taken out, the rest is checked to be in order, and each is put
    back where a stable sort puts it: after the earlier times, and after the
    equal times that came before it. Sorting 100,000 times with their heads
    copied them twice (~10 ms); this moves a few pointers.
    """
    late = [(times[at], heads[at], at - before) for before, at in enumerate(running)]
    for at in reversed(running):
        del times[at], heads[at]
    if not all(map(le, times, islice(times, 1, None))):  # not the index's order
        for at, (time, head, _) in zip(running, late, strict=True):
            times.insert(at, time)
            heads.insert(at, head)
        order = sorted(range(len(times)), key=times.__getitem__)  # stable
        times[:] = map(times.__getitem__, order)
        heads[:] = map(heads.__getitem__, order)
        return
    late.sort(key=_FIRST)  # stable: equal times keep their order
    cuts = [
        min(max(ended_before, bisect.bisect_left(times, time)), bisect.bisect_right(times, time))
        for time, _, ended_before in late
    ]
    for moved, (cut, (time, head, _)) in enumerate(zip(cuts, late, strict=True)):
        times.insert(cut + moved, time)
        heads.insert(cut + moved, head)


def _session_bars(heads: list[SessionHead]) -> list[DrawdownBar]:
    """A bar per session (few), by chart time; a stable sort keeps equal times in order."""
    points = [(_chart_time(h), cast(float, h.max_drawdown), h) for h in heads]
    points.sort(key=_FIRST)
    return [
        DrawdownBar.model_construct(
            start=_point_time(h), end=_point_time(h), value=v, sessions=1, session_id=h.session_id
        )
        for _, v, h in points
    ]


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
