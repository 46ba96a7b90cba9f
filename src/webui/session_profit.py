"""Profit of the filtered sessions, with money kept apart: per kind and currency.

Real money (the real-money modes) and simulated money are never added
together, nor are different currencies: every sum here is keyed by
``(real_money, currency)``. Counts and rates (win rate, sessions) may span
them, since they add sessions, not money.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Literal

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


class _MoneyTally:
    """Running sums for one (kind, currency)."""

    __slots__ = ("best", "count", "loss", "losses", "profit", "wins", "worst")

    def __init__(self, head: SessionHead, pnl: float) -> None:
        self.count, self.wins, self.losses = 0, 0, 0
        self.profit, self.loss = 0.0, 0.0
        self.best, self.worst = (pnl, head.session_id), (pnl, head.session_id)

    def add(self, head: SessionHead, pnl: float) -> None:
        self.count += 1
        if pnl > 0:
            self.wins += 1
            self.profit += pnl
        elif pnl < 0:
            self.losses += 1
            self.loss -= pnl
        if pnl > self.best[0]:
            self.best = (pnl, head.session_id)
        if pnl < self.worst[0]:
            self.worst = (pnl, head.session_id)

    def total(self, key: MoneyKey) -> MoneyTotal:
        net = self.profit - self.loss
        return MoneyTotal(
            real_money=key[0],
            currency=key[1],
            sessions=self.count,
            realized_pnl=round(net, 8),
            avg_realized_pnl=round(net / self.count, 8),
            wins=self.wins,
            losses=self.losses,
            win_rate=self.wins / self.count,
            gross_profit=round(self.profit, 8),
            gross_loss=round(self.loss, 8),
            profit_factor=self.profit / self.loss if self.loss else None,
            best=SessionPnl(session_id=self.best[1], realized_pnl=self.best[0]),
            worst=SessionPnl(session_id=self.worst[1], realized_pnl=self.worst[0]),
        )


def money_order(key: MoneyKey) -> tuple[bool, bool, str]:
    """Real money first, then simulated; currencies alphabetically, unknown last."""
    return (not key[0], key[1] == "", key[1])


class MoneyTotals:
    """Collects realized PnL per (kind, currency) in one pass over the heads."""

    def __init__(self, real_money_modes: Collection[str]) -> None:
        self.real_money_modes = real_money_modes
        self.tallies: dict[MoneyKey, _MoneyTally] = {}

    def add(self, head: SessionHead, pnl: float) -> None:
        key = (head.mode in self.real_money_modes, head.currency)
        tally = self.tallies.get(key)
        if tally is None:
            tally = self.tallies[key] = _MoneyTally(head, pnl)
        tally.add(head, pnl)

    def totals(self) -> list[MoneyTotal]:
        return [self.tallies[key].total(key) for key in sorted(self.tallies, key=money_order)]


def money_totals(
    heads: Iterable[SessionHead], real_money_modes: Collection[str]
) -> list[MoneyTotal]:
    """Realized PnL per kind of money and currency: real money first, never mixed."""
    totals = MoneyTotals(real_money_modes)
    for head in heads:
        if head.realized_pnl is not None:
            totals.add(head, head.realized_pnl)
    return totals.totals()


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


def _group_key(head: SessionHead, group_by: GroupBy) -> str:
    if group_by == "strategy":
        return head.strategy_name
    if group_by == "symbol":
        return head.symbol
    return head.env_name


class _GroupTally:
    __slots__ = ("count", "money", "priced", "wins", "worst")

    def __init__(self) -> None:
        self.count, self.priced, self.wins = 0, 0, 0
        self.worst: float | None = None
        self.money: dict[MoneyKey, float] = {}


def group_sessions(
    heads: Iterable[SessionHead], group_by: GroupBy, real_money_modes: Collection[str]
) -> SessionGroups:
    """Count, PnL per kind and currency, win rate and worst drawdown per group."""
    tallies: dict[str, _GroupTally] = {}
    for head in heads:
        key = _group_key(head, group_by)
        tally = tallies.get(key)
        if tally is None:
            tally = tallies[key] = _GroupTally()
        tally.count += 1
        pnl = head.realized_pnl
        if pnl is not None:
            tally.priced += 1
            tally.wins += pnl > 0
            money = (head.mode in real_money_modes, head.currency)
            tally.money[money] = tally.money.get(money, 0.0) + pnl
        drawdown = head.max_drawdown
        if drawdown is not None and (tally.worst is None or drawdown > tally.worst):
            tally.worst = drawdown
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
    sums: dict[MoneyKey, dict[int, tuple[float, int]]] = {}
    for head in heads:  # newest activity first: stop at the first older one
        if head.finished_at is None:
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
        days = sums.setdefault((head.mode in real_money_modes, head.currency), {})
        total, count = days.get(slot, (0.0, 0))
        days[slot] = (total + pnl, count + 1)
    return [
        DailyPnl(
            real_money=key[0],
            currency=key[1],
            days=[
                DayPnl(
                    day=first + timedelta(days=slot),
                    realized_pnl=round(sums[key].get(slot, (0.0, 0))[0], 8),
                    sessions=sums[key].get(slot, (0.0, 0))[1],
                )
                for slot in range(DAILY_DAYS)
            ],
        )
        for key in sorted(sums, key=money_order)
    ]


def utc_day(moment: datetime) -> date:
    return utc_instant(moment).date()
