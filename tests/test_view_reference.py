"""The stats, charts, groups and running list against a plain reference.

The views are built column by column and in few passes for speed; here each
is compared with a straightforward per-head loop that says what it means, on
random heads: missing numbers, 0.0 and -0.0, equal timestamps, running
sessions (with and without heartbeats), unknown status words, several modes,
currencies and hosts, sizes around the thinning and bucketing limits, and
heads out of the index's order. The JSON must be equal to the last character,
so every float must have been added in the same order.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from src.experiments.registry_files import file_stamp
from src.experiments.registry_index import IndexSnapshot
from src.experiments.session_head import SessionHead, make_head, order_key
from src.webui.now_view import running_heads
from src.webui.session_profit import (
    DAILY_DAYS,
    GROUPS_SHOWN,
    DailyPnl,
    DayPnl,
    GroupBy,
    GroupMoney,
    MoneyKey,
    MoneyTotal,
    SessionGroup,
    SessionGroups,
    SessionPnl,
    group_sessions,
    money_order,
    money_totals,
)
from src.webui.session_query import head_status, status_tally
from src.webui.session_stats import (
    DRAWDOWN_BARS,
    MAX_CHART_POINTS,
    MAX_DAY_BUCKETS,
    MIN_LINE_POINTS,
    ChartPoint,
    DrawdownBar,
    DrawdownSeries,
    PnlLine,
    SessionCharts,
    SessionStats,
    chart_series,
    tally_sessions,
)
from src.webui.vocabulary import SESSION_STATUSES

REAL = frozenset({"live", "bounded_pilot"})
TODAY = datetime(2026, 1, 20, tzinfo=timezone.utc)
BASE = datetime(2026, 1, 1)
STATUSES = ["completed", "failed", "aborted", "started", "running", " Success", "error", "odd", ""]
MODES = ["shadow", "testnet", "paper", "live", "bounded_pilot", ""]
NUMBERS = [0.0, -0.0, 1.5, -2.25, 0.1, 0.2, -0.3, 1e-9, 123456.789, -7.0]


def random_heads(rng: random.Random, count: int, span_days: float) -> tuple[SessionHead, ...]:
    """Heads newest activity first, as the index hands them out; starts share a
    small pool of instants, so equal times are common."""
    starts = [
        BASE + timedelta(seconds=rng.randrange(int(span_days * 86400) + 1))
        for _ in range(max(1, count // 3))
    ]

    def number() -> float | None:
        if rng.random() < 0.2:
            return None
        if rng.random() < 0.5:
            return rng.choice(NUMBERS)
        return round(rng.uniform(-500, 500), rng.choice([2, 8]))

    heads = []
    for i in range(count):
        status = rng.choice(STATUSES)
        started_at = rng.choice(starts)
        running_word = status in ("started", "running", "odd", "")
        ended = rng.random() < (0.15 if running_word else 0.9)
        finished_at = None
        if ended:
            seconds = rng.choice([0, 60, 3600, rng.randrange(3 * 86400)])
            finished_at = started_at + timedelta(seconds=seconds)
        updated_at = None
        if rng.random() < 0.5:
            if finished_at is not None and rng.random() < 0.5:
                updated_at = finished_at
            else:
                updated_at = started_at + timedelta(seconds=rng.randrange(5 * 86400))
        heads.append(
            make_head(
                file_name=f"f{i:05d}.json",
                stamp=file_stamp(1, i),
                session_id=f"s{i}",
                run_type="live_session_x",
                mode=rng.choice(MODES),
                env_name=rng.choice(["env_a", "env_b", ""]),
                symbol=rng.choice(["BTC/USDT", "ETH/EUR", ""]),
                status=status,
                started_at=started_at,
                finished_at=finished_at,
                updated_at=updated_at,
                realized_pnl=number(),
                unrealized_pnl=None,
                max_drawdown=number(),
                num_orders=None,
                report_path=None,
                error=None,
                currency=rng.choice(["USDT", "EUR", "", "BTC"]),
                strategy_name=rng.choice(["ma", "rsi", "", "bb"]),
                risk=None,
                host=rng.choice(["", "", "bot-a", "bot-b"]),
            )
        )
    heads.sort(key=order_key, reverse=True)
    return tuple(heads)


# --- The reference: one plain loop per figure -----------------------------------


def reference_money(heads: Sequence[SessionHead]) -> list[MoneyTotal]:
    pnls: dict[MoneyKey, list[tuple[float, str]]] = {}
    for head in heads:
        if head.realized_pnl is not None:
            key = (head.mode in REAL, head.currency)
            pnls.setdefault(key, []).append((head.realized_pnl, head.session_id))
    totals = []
    for key in sorted(pnls, key=money_order):
        profit, loss, wins, losses = 0.0, 0.0, 0, 0
        best = worst = pnls[key][0]
        for pnl, session_id in pnls[key]:
            if pnl > 0:
                profit += pnl
                wins += 1
            elif pnl < 0:
                loss -= pnl
                losses += 1
            if pnl > best[0]:
                best = (pnl, session_id)
            if pnl < worst[0]:
                worst = (pnl, session_id)
        count, net = len(pnls[key]), profit - loss
        totals.append(
            MoneyTotal(
                real_money=key[0],
                currency=key[1],
                sessions=count,
                realized_pnl=round(net, 8),
                avg_realized_pnl=round(net / count, 8),
                wins=wins,
                losses=losses,
                win_rate=wins / count,
                gross_profit=round(profit, 8),
                gross_loss=round(loss, 8),
                profit_factor=profit / loss if loss else None,
                best=SessionPnl(session_id=best[1], realized_pnl=best[0]),
                worst=SessionPnl(session_id=worst[1], realized_pnl=worst[0]),
            )
        )
    return totals


def reference_stats(heads: Sequence[SessionHead]) -> SessionStats:
    by_status = dict.fromkeys(SESSION_STATUSES, 0)
    by_mode: dict[str, int] = {}
    by_host: dict[str, int] = {}
    total, wins, priced = 0.0, 0, 0
    drawdown_sum, drawdowns, worst = 0.0, 0, None
    duration_sum, durations = 0.0, 0
    for head in heads:
        by_status[head_status(head)] += 1
        by_mode[head.mode] = by_mode.get(head.mode, 0) + 1
        if head.host:
            by_host[head.host] = by_host.get(head.host, 0) + 1
        if head.finished_at is not None:
            duration_sum += head.activity - head.started
            durations += 1
        if head.realized_pnl is not None:
            total += head.realized_pnl
            priced += 1
            wins += head.realized_pnl > 0
        if head.max_drawdown is not None:
            drawdown_sum += head.max_drawdown
            drawdowns += 1
            if worst is None or head.max_drawdown > worst:
                worst = head.max_drawdown
    ended = len(heads) - by_status["started"]
    return SessionStats(
        total_sessions=len(heads),
        total_pnl=round(total, 8),
        avg_drawdown=drawdown_sum / drawdowns if drawdowns else 0.0,
        sessions=len(heads),
        by_status=by_status,
        by_mode={
            mode or "unbekannt": n for mode, n in sorted(by_mode.items(), key=lambda m: -m[1])
        },
        by_host=dict(sorted(by_host.items())),
        success_rate=by_status["completed"] / ended if ended else None,
        total_realized_pnl=round(total, 8),
        avg_realized_pnl=round(total / priced, 8) if priced else None,
        worst_drawdown=worst,
        running=by_status["started"],
        stale=0,
        money=reference_money(heads),
        win_rate=wins / priced if priced else None,
        avg_duration_seconds=duration_sum / durations if durations else None,
    )


def chart_time(head: SessionHead) -> float:
    if head.finished_at is None and head.updated_at is not None:
        return head.updated_at.replace(tzinfo=timezone.utc).timestamp()
    return head.activity


def point_time(head: SessionHead) -> datetime:
    return head.finished_at or head.updated_at or head.started_at


def thin(count: int, most: int) -> list[int]:
    if count <= most:
        return list(range(count))
    return [round(i * (count - 1) / (most - 1)) for i in range(most)]


def reference_charts(heads: Sequence[SessionHead]) -> SessionCharts:
    # Ended sessions in the given order, oldest first; each running one goes
    # after every session whose chart time is not later.
    priced = [h for h in reversed(heads) if h.realized_pnl is not None and h.finished_at]
    for head in reversed(heads):
        if head.realized_pnl is not None and head.finished_at is None:
            at = bisect.bisect_right([chart_time(h) for h in priced], chart_time(head))
            priced.insert(at, head)
    running_total, cumulative = 0.0, []
    for i, head in enumerate(priced):  # the first total is the first PnL itself
        running_total = head.realized_pnl if i == 0 else running_total + head.realized_pnl
        cumulative.append(round(running_total, 8))
    return SessionCharts(
        cumulative_pnl=[
            ChartPoint(
                at=point_time(priced[i]), value=cumulative[i], session_id=priced[i].session_id
            )
            for i in thin(len(priced), MAX_CHART_POINTS)
        ],
        drawdowns=[
            ChartPoint(
                at=h.finished_at or h.started_at, value=h.max_drawdown, session_id=h.session_id
            )
            for h in reversed([h for h in heads if h.max_drawdown is not None][:DRAWDOWN_BARS])
        ],
        pnl_lines=reference_lines(priced),
        drawdown=reference_drawdown(heads),
        daily_pnl=reference_daily(heads),
    )


def reference_daily(heads: Sequence[SessionHead]) -> list[DailyPnl]:
    first = TODAY.date() - timedelta(days=DAILY_DAYS - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=timezone.utc).timestamp()
    sums: dict[MoneyKey, dict[int, float]] = {}
    counts: dict[MoneyKey, dict[int, int]] = {}
    for head in heads:  # newest first: the walk ends at the first ended before the window
        if head.finished_at is None:
            continue
        if head.activity < start:
            break
        slot = int((head.activity - start) // 86400)
        if head.realized_pnl is not None and slot < DAILY_DAYS:
            key = (head.mode in REAL, head.currency)
            days = sums.setdefault(key, {})
            days[slot] = days.get(slot, 0.0) + head.realized_pnl
            tally = counts.setdefault(key, {})
            tally[slot] = tally.get(slot, 0) + 1
    return [
        DailyPnl(
            real_money=key[0],
            currency=key[1],
            days=[
                DayPnl(
                    day=first + timedelta(days=slot),
                    realized_pnl=round(sums[key].get(slot, 0.0), 8),
                    sessions=counts[key].get(slot, 0),
                )
                for slot in range(DAILY_DAYS)
            ],
        )
        for key in sorted(sums, key=money_order)
    ]


def reference_lines(priced: list[SessionHead]) -> list[PnlLine]:
    lines: dict[MoneyKey, list[SessionHead]] = {}
    for head in priced:
        lines.setdefault((head.mode in REAL, head.currency), []).append(head)
    most = max(MIN_LINE_POINTS, MAX_CHART_POINTS // max(1, len(lines)))
    result = []
    for key in sorted(lines, key=money_order):
        total, points = 0.0, []
        kept = thin(len(lines[key]), most)
        for i, head in enumerate(lines[key]):
            total += head.realized_pnl
            if i in kept:
                at = point_time(head)
                points.append(ChartPoint(at=at, value=round(total, 8), session_id=head.session_id))
        result.append(PnlLine(real_money=key[0], currency=key[1], points=points))
    return result


def reference_drawdown(heads: Sequence[SessionHead]) -> DrawdownSeries:
    shown = sorted(
        (h for h in reversed(heads) if h.max_drawdown is not None), key=chart_time
    )  # stable: equal times keep their order
    if len(shown) <= DRAWDOWN_BARS:
        bars = [
            DrawdownBar(
                start=point_time(h),
                end=point_time(h),
                value=h.max_drawdown,
                sessions=1,
                session_id=h.session_id,
            )
            for h in shown
        ]
        return DrawdownSeries(bucket="session", bars=bars)
    days = (chart_time(shown[-1]) - chart_time(shown[0])) / 86400
    size = 86400 if days <= MAX_DAY_BUCKETS else 7 * 86400
    offset = 0 if size == 86400 else 4 * 86400
    buckets: dict[int, list[SessionHead]] = {}
    for head in shown:
        buckets.setdefault(int((chart_time(head) - offset) // size), []).append(head)
    bars = []
    for slot in sorted(buckets):
        worst = buckets[slot][0]
        for head in buckets[slot]:
            if head.max_drawdown > worst.max_drawdown:
                worst = head
        bars.append(
            DrawdownBar(
                start=datetime.fromtimestamp(slot * size + offset, timezone.utc),
                end=datetime.fromtimestamp((slot + 1) * size + offset - 1, timezone.utc),
                value=worst.max_drawdown,
                sessions=len(buckets[slot]),
                session_id=worst.session_id,
            )
        )
    return DrawdownSeries(bucket="day" if size == 86400 else "week", bars=bars)


def reference_groups(heads: Sequence[SessionHead], group_by: GroupBy) -> SessionGroups:
    field = {"strategy": "strategy_name", "symbol": "symbol", "environment": "env_name"}[group_by]
    members: dict[str, list[SessionHead]] = {}
    for head in heads:
        members.setdefault(getattr(head, field), []).append(head)
    groups = []
    for key, group in sorted(members.items(), key=lambda m: (-len(m[1]), m[0] == "", m[0])):
        money: dict[MoneyKey, float] = {}
        priced = [h for h in group if h.realized_pnl is not None]
        for head in priced:
            kind = (head.mode in REAL, head.currency)
            money[kind] = money.get(kind, 0.0) + head.realized_pnl
        drawdowns = [h.max_drawdown for h in group if h.max_drawdown is not None]
        worst = None
        for drawdown in drawdowns:
            if worst is None or drawdown > worst:
                worst = drawdown
        groups.append(
            SessionGroup(
                key=key,
                sessions=len(group),
                pnl=[
                    GroupMoney(real_money=k[0], currency=k[1], realized_pnl=round(money[k], 8))
                    for k in sorted(money, key=money_order)
                ],
                win_rate=len([h for h in priced if h.realized_pnl > 0]) / len(priced)
                if priced
                else None,
                worst_drawdown=worst,
            )
        )
    return SessionGroups(
        group_by=group_by, groups=groups[:GROUPS_SHOWN], more=max(0, len(groups) - GROUPS_SHOWN)
    )


# --- The comparison ----------------------------------------------------------------

SIZES = [0, 1, 2, 5, 39, 40, 41, 42, 120, 600, 1500]
SPANS = [0, 0.01, 1, 30, 59, 61, 400]


def case(seed: int) -> tuple[SessionHead, ...]:
    rng = random.Random(seed)
    heads = random_heads(rng, SIZES[seed % len(SIZES)], rng.choice(SPANS))
    if seed % 5 == 4:  # out of the index's order: the general paths
        shuffled = list(heads)
        rng.shuffle(shuffled)
        return tuple(shuffled)
    return heads


@pytest.mark.parametrize("seed", range(60))
def test_stats_and_money_equal_the_plain_loop(seed: int) -> None:
    heads = case(seed)
    tally = tally_sessions(heads, REAL)
    assert tally.stats.model_dump_json() == reference_stats(heads).model_dump_json()
    assert tally.running == tuple(h for h in heads if head_status(h) == "started")
    assert status_tally(heads).running == tally.running
    assert repr(money_totals(heads, REAL)) == repr(reference_money(heads))


@pytest.mark.parametrize("seed", range(60))
def test_charts_equal_the_plain_loop(seed: int) -> None:
    heads = case(seed)
    charts = chart_series(heads, REAL, TODAY)
    assert charts.model_dump_json() == reference_charts(heads).model_dump_json()


@pytest.mark.parametrize("seed", range(60))
def test_groups_equal_the_plain_loop(seed: int) -> None:
    heads = case(seed)
    for group_by in ("strategy", "symbol", "environment"):
        expected = reference_groups(heads, group_by).model_dump_json()
        assert group_sessions(heads, group_by, REAL).model_dump_json() == expected


@pytest.mark.parametrize("seed", range(60))
def test_running_list_equals_the_plain_filter(seed: int) -> None:
    heads = case(seed)
    snapshot = IndexSnapshot(generation=1, directory=Path("."), sessions=heads)
    running = [h for h in heads if head_status(h) == "started"]
    running.sort(key=lambda h: h.started, reverse=True)
    assert running_heads(snapshot) == tuple(running)


def test_the_cases_reach_every_path() -> None:
    """The random cases hold what the comparison is about, so it cannot pass idly."""
    heads = [h for seed in range(60) for h in case(seed)]
    assert {chart_series(case(seed), REAL).drawdown.bucket for seed in range(60)} == {
        "session",
        "day",
        "week",
    }
    assert any(h.realized_pnl == 0 and math.copysign(1, h.realized_pnl) < 0 for h in heads)
    assert any(head_status(h) == "started" and h.updated_at is not None for h in heads)
    assert any(head_status(h) == "aborted" and h.status == "odd" for h in heads)
    assert any(h.host for h in heads)
    largest = chart_series(case(10), REAL)
    assert len(largest.cumulative_pnl) == MAX_CHART_POINTS  # thinned
    assert all(len(line.points) == MIN_LINE_POINTS for line in largest.pnl_lines)
