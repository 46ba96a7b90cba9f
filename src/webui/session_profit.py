"""Profit of the filtered sessions, with money kept apart: per kind and currency.

Real money (the real-money modes) and simulated money are never added
together, nor are different currencies: every sum here is keyed by
``(real_money, currency)``. Counts and rates (win rate, sessions) may span
them, since they add sessions, not money.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import date, datetime, timedelta, timezone
from functools import reduce
from operator import add, attrgetter, sub
from typing import Literal, NamedTuple

from pydantic import BaseModel

from src.experiments.live_session_record import utc_instant
from src.experiments.session_head import SessionHead

MoneyKey = tuple[bool, str]  # (real money?, currency)
GroupBy = Literal["strategy", "symbol", "environment"]
GROUPS_SHOWN = 50
DAILY_DAYS = 30


class SessionPnl(BaseModel):
    """One session's realized PnL, for "best" and "worst"."""

    session_id: str
    realized_pnl: float


class MoneyTotal(BaseModel):
    """Realized PnL of the sessions of one kind of money in one currency.

    ``sessions`` counts those with a realized PnL; ``profit_factor`` is gross
    profit over gross loss (None without any loss).
    """

    real_money: bool
    currency: str  # "" when the record names none and the symbol has no quote
    sessions: int
    realized_pnl: float
    avg_realized_pnl: float
    wins: int
    losses: int
    win_rate: float
    gross_profit: float
    gross_loss: float
    profit_factor: float | None
    best: SessionPnl
    worst: SessionPnl


def money_order(key: MoneyKey) -> tuple[bool, bool, str]:
    """Real money first, then simulated; currencies alphabetically, unknown last."""
    return (not key[0], key[1] == "", key[1])


class MoneyLists(NamedTuple):
    """The realized PnLs of one kind of money and currency, and their sessions."""

    pnls: list[float]
    heads: list[SessionHead]


def money_lists(
    heads: Iterable[SessionHead], real_money_modes: Collection[str]
) -> dict[MoneyKey, MoneyLists]:
    """The heads with a realized PnL per kind of money and currency, in their order.

    One tight loop, a lookup by mode and currency and two appends per head
    (~13 ms at 100,000 sessions): the money key is worked out once per
    (mode, currency) seen, not per head, and the PnLs are read once, in the
    heads' order, so the sums taken per list after it add as before.
    """
    groups: dict[MoneyKey, MoneyLists] = {}
    # mode -> currency -> its two lists, as a plain tuple: unpacked faster.
    targets: dict[str, dict[str, tuple[list[float], list[SessionHead]]]] = {}
    for head in heads:
        pnl = head.realized_pnl
        if pnl is None:
            continue
        profile = head.profile  # its fields read faster than the head's properties
        try:
            pnls, found = targets[profile.mode][profile.currency]
        except KeyError:  # a (mode, currency) not seen before: a handful of times
            key = (profile.mode in real_money_modes, profile.currency)
            pnls, found = groups.setdefault(key, MoneyLists([], []))
            targets.setdefault(profile.mode, {})[profile.currency] = (pnls, found)
        pnls.append(pnl)
        found.append(head)
    return groups


def money_totals(
    heads: Iterable[SessionHead], real_money_modes: Collection[str]
) -> list[MoneyTotal]:
    """Realized PnL per kind of money and currency: real money first, never mixed."""
    groups = money_lists(heads, real_money_modes)
    return [_money_total(key, groups[key]) for key in sorted(groups, key=money_order)]


def _money_total(key: MoneyKey, lists: MoneyLists) -> MoneyTotal:
    """One kind's figures; the sums add in the heads' order, as a running tally would."""
    pnls, heads = lists
    gains = [pnl for pnl in pnls if pnl > 0.0]  # the same as > 0 for every float
    losses = [pnl for pnl in pnls if pnl < 0.0]
    profit: float = reduce(add, gains, 0.0)  # sum() adds differently on Python >= 3.12
    loss: float = reduce(sub, losses, 0.0)
    # max and min keep the first of equal values, as "best so far" did.
    best, worst = max(pnls), min(pnls)
    net = profit - loss
    count = len(pnls)
    return MoneyTotal(
        real_money=key[0],
        currency=key[1],
        sessions=count,
        realized_pnl=round(net, 8),
        avg_realized_pnl=round(net / count, 8),
        wins=len(gains),
        losses=len(losses),
        win_rate=len(gains) / count,
        gross_profit=round(profit, 8),
        gross_loss=round(loss, 8),
        profit_factor=profit / loss if loss else None,
        best=SessionPnl(session_id=heads[pnls.index(best)].session_id, realized_pnl=best),
        worst=SessionPnl(session_id=heads[pnls.index(worst)].session_id, realized_pnl=worst),
    )


# --- Grouping -----------------------------------------------------------------


class GroupMoney(BaseModel):
    real_money: bool
    currency: str
    realized_pnl: float


class SessionGroup(BaseModel):
    """The sessions sharing one strategy, symbol or environment.

    ``key`` is "" for sessions that name none; ``win_rate`` counts sessions
    with a realized PnL above zero among those with one.
    """

    key: str
    sessions: int
    pnl: list[GroupMoney]
    win_rate: float | None
    worst_drawdown: float | None


class SessionGroups(BaseModel):
    """The "Nach Strategie" table: the filtered sessions grouped, most sessions first."""

    group_by: GroupBy
    groups: list[SessionGroup]
    more: int  # groups beyond the ones listed


def _group_field(group_by: GroupBy) -> Callable[[SessionHead], str]:
    if group_by == "strategy":
        return attrgetter("profile.strategy_name")
    if group_by == "symbol":
        return attrgetter("profile.symbol")
    return attrgetter("profile.env_name")


class _GroupTally:
    __slots__ = ("count", "money", "priced", "wins", "worst")

    def __init__(self, count: int) -> None:
        self.count, self.priced, self.wins = count, 0, 0
        self.worst: float | None = None
        self.money: dict[MoneyKey, float] = {}


def group_sessions(
    heads: Iterable[SessionHead], group_by: GroupBy, real_money_modes: Collection[str]
) -> SessionGroups:
    """Count, PnL per kind and currency, win rate and worst drawdown per group."""
    # One tight loop appends each PnL to its group's list per mode and
    # currency; the lists are summed after it, in order. A tally object
    # updated per head cost ~40 ms at 100,000 sessions.
    heads = heads if isinstance(heads, Sequence) else tuple(heads)
    keys = list(map(_group_field(group_by), heads))
    tallies = {key: _GroupTally(count) for key, count in Counter(keys).items()}
    money: dict[tuple[str, bool, str], list[float]] = {}
    targets: dict[str, dict[str, dict[str, list[float]]]] = {}  # group, mode, currency
    drawdowns: dict[str, list[float]] = {}
    for key, head in zip(keys, heads, strict=True):
        pnl = head.realized_pnl
        if pnl is not None:
            profile = head.profile
            try:
                targets[key][profile.mode][profile.currency].append(pnl)
            except KeyError:  # a handful of times
                mode, currency = profile.mode, profile.currency
                group = money.setdefault((key, mode in real_money_modes, currency), [])
                targets.setdefault(key, {}).setdefault(mode, {})[currency] = group
                group.append(pnl)
        drawdown = head.max_drawdown
        if drawdown is not None:
            try:
                drawdowns[key].append(drawdown)
            except KeyError:
                drawdowns[key] = [drawdown]
    for (key, real, currency), pnls in money.items():
        tally = tallies[key]
        tally.priced += len(pnls)
        tally.wins += len([pnl for pnl in pnls if pnl > 0.0])
        tally.money[(real, currency)] = reduce(add, pnls, 0.0)  # in order, from 0.0
    for key, values in drawdowns.items():
        tallies[key].worst = max(values)  # the first of equal values, as before
    ordered = sorted(tallies.items(), key=lambda item: (-item[1].count, item[0] == "", item[0]))
    return SessionGroups(
        group_by=group_by,
        groups=[
            SessionGroup(
                key=key,
                sessions=tally.count,
                pnl=[
                    GroupMoney(real_money=money[0], currency=money[1], realized_pnl=round(v, 8))
                    for money, v in sorted(tally.money.items(), key=lambda m: money_order(m[0]))
                ],
                win_rate=tally.wins / tally.priced if tally.priced else None,
                worst_drawdown=tally.worst,
            )
            for key, tally in ordered[:GROUPS_SHOWN]
        ],
        more=max(0, len(ordered) - GROUPS_SHOWN),
    )


# --- PnL per day ----------------------------------------------------------------


class DayPnl(BaseModel):
    day: date
    realized_pnl: float
    sessions: int


class DailyPnl(BaseModel):
    """Realized PnL of the sessions that ended on each of the last 30 days (UTC),
    for one kind of money in one currency; days without sessions are 0."""

    real_money: bool
    currency: str
    days: list[DayPnl]


def daily_pnl(
    heads: Sequence[SessionHead], today: date, real_money_modes: Collection[str]
) -> list[DailyPnl]:
    """PnL per end day over the last ``DAILY_DAYS`` days, one series per kind and currency."""
    first = today - timedelta(days=DAILY_DAYS - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=timezone.utc).timestamp()
    # Per kind: a running total and a count per day, added to in place (the
    # totals add in the heads' order, from 0.0); the kind is looked up by
    # mode and currency, its key made once per (mode, currency) seen.
    sums: dict[MoneyKey, tuple[list[float], list[int]]] = {}
    targets: dict[str, dict[str, tuple[list[float], list[int]]]] = {}
    for head in heads:  # newest activity first: stop at the first older one
        if not head.profile.ended:
            continue  # a running session's PnL is not booked to a day yet
        ended = head.activity
        if ended < start:
            break
        pnl = head.realized_pnl
        if pnl is None:
            continue
        slot = int((ended - start) // 86400)
        if slot >= DAILY_DAYS:
            continue  # ended "in the future": a writer's clock ahead of ours
        try:
            totals, counts = targets[head.mode][head.currency]
        except KeyError:  # a (mode, currency) not seen before: a handful of times
            days = ([0.0] * DAILY_DAYS, [0] * DAILY_DAYS)
            totals, counts = sums.setdefault((head.mode in real_money_modes, head.currency), days)
            targets.setdefault(head.mode, {})[head.currency] = (totals, counts)
        totals[slot] += pnl
        counts[slot] += 1
    return [
        DailyPnl(
            real_money=key[0],
            currency=key[1],
            days=[
                DayPnl(
                    day=first + timedelta(days=slot),
                    realized_pnl=round(sums[key][0][slot], 8),
                    sessions=sums[key][1][slot],
                )
                for slot in range(DAILY_DAYS)
            ],
        )
        for key in sorted(sums, key=money_order)
    ]


def utc_day(moment: datetime) -> date:
    return utc_instant(moment).date()
