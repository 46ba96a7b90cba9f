"""What needs a trader now: the running sessions and the problems of the last day.

The "Jetzt" strip sits above the snapshot tile. It ignores the page's filters
on purpose: a failed live bot must be visible whatever the table shows. The
candidates (running sessions) are found once per snapshot; how old a heartbeat
is, and so whether a session is stale, moves with the clock and is judged per
call over those few sessions.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Literal, NamedTuple, Optional

from pydantic import BaseModel

from src.experiments.live_session_record import utc_instant
from src.experiments.registry_index import IndexSnapshot
from src.experiments.session_head import SessionHead
from src.webui.session_query import (
    START_SECONDS,
    RecordTime,
    all_statuses,
    cached_view,
    head_status,
    is_stale,
)
from src.webui.vocabulary import SessionStatus

PROBLEM_WINDOW = timedelta(hours=24)
# The strip stays small; real-money failures are never cut off by this.
RUNNING_SHOWN = 12
PROBLEMS_SHOWN = 12

Problem = Literal["failed", "aborted", "stale"]
RiskLight = Literal["green", "yellow", "red"]


class NowSession(BaseModel):
    """One line of the "Jetzt" strip."""

    session_id: str
    mode: str
    symbol: str
    status: SessionStatus
    realized_pnl: Optional[float] = None  # noqa: UP045
    unrealized_pnl: Optional[float] = None  # noqa: UP045
    currency: str = ""
    started_at: RecordTime
    ended_at: Optional[RecordTime] = None  # noqa: UP045
    heartbeat_at: Optional[RecordTime] = None  # noqa: UP045 - None: writer sends none
    heartbeat_age_seconds: Optional[int] = None  # noqa: UP045
    stale: bool = False
    risk: Optional[RiskLight] = None  # noqa: UP045 - None: no risk data
    real_money: bool = False
    problem: Optional[Problem] = None  # noqa: UP045
    error: Optional[str] = None  # noqa: UP045


class NowView(BaseModel):
    """The running sessions and the problems of the last 24 hours, across all filters."""

    running: list[NowSession]
    running_count: int
    problems: list[NowSession]
    problem_count: int
    failed_count: int  # failed in the last 24 h: the tab title's second number


def _heartbeat_age(head: SessionHead, now: datetime) -> int | None:
    if head.updated_at is None:
        return None
    return max(0, int((now - utc_instant(head.updated_at)).total_seconds()))


def _now_session(
    head: SessionHead,
    now: datetime,
    stale_after: timedelta,
    real_money_modes: frozenset[str],
    problem: Problem | None,
) -> NowSession:
    return NowSession(
        session_id=head.session_id,
        mode=head.mode,
        symbol=head.symbol,
        status=head_status(head),
        realized_pnl=head.realized_pnl,
        unrealized_pnl=head.unrealized_pnl,
        currency=head.currency,
        started_at=head.started_at,
        ended_at=head.finished_at,
        heartbeat_at=head.updated_at,
        heartbeat_age_seconds=_heartbeat_age(head, now),
        stale=is_stale(head, now, stale_after),
        risk=head.risk,
        real_money=head.mode in real_money_modes,
        problem=problem,
        error=head.error,
    )


def running_heads(snapshot: IndexSnapshot) -> tuple[SessionHead, ...]:
    """Every session still running, newest start first; once per snapshot."""
    statuses = all_statuses(snapshot)  # shared with the stats strip; not inside a build

    def build() -> tuple[SessionHead, ...]:
        found = list(statuses.running)
        found.sort(key=START_SECONDS, reverse=True)
        return tuple(found)

    return cached_view(snapshot, ("running",), build)


_RANK = attrgetter("rank")


class _Ending(NamedTuple):
    head: SessionHead
    rank: int  # 0 real money failed, 1 real money or failed, 2 the rest
    failed: bool


def recent_endings(
    snapshot: IndexSnapshot, now: datetime, real_money_modes: frozenset[str]
) -> list[_Ending]:
    """Failed and aborted sessions that ended within the window, newest first.

    The index is ordered by activity (end time once ended), so the walk stops
    at the first session older than the window. It runs once per snapshot and
    hour (from the hour's start, a little more than the window); each call
    only trims that short list to its exact cutoff.
    """
    cutoff = (now - PROBLEM_WINDOW).timestamp()
    hour = math.floor(cutoff / 3600)

    def build() -> tuple[_Ending, ...]:
        found = []
        for head in snapshot.newest_first():
            if head.activity < hour * 3600:
                break
            status = head_status(head) if head.ended else None
            if status in ("failed", "aborted"):
                real, failed = head.mode in real_money_modes, status == "failed"
                rank = 0 if real and failed else 1 if real or failed else 2
                found.append(_Ending(head, rank, failed))
        return tuple(found)

    key = ("endings", hour, real_money_modes)
    return [e for e in cached_view(snapshot, key, build) if e.head.activity >= cutoff]


def now_view(
    snapshot: IndexSnapshot,
    now: datetime,
    stale_after: timedelta,
    real_money_modes: frozenset[str],
) -> NowView:
    """Compose the strip: healthy running sessions, then stale, failed and aborted ones."""
    running = running_heads(snapshot)
    stale = [head for head in running if is_stale(head, now, stale_after)]
    stale.sort(key=lambda head: head.mode not in real_money_modes)  # real money first
    stale_ids = {head.session_id for head in stale}
    healthy = [head for head in running if head.session_id not in stale_ids]
    endings = recent_endings(snapshot, now, real_money_modes)
    ranked = sorted(endings, key=_RANK)  # stable: newest first within a rank
    must_show = [e.head for e in ranked if e.rank == 0]
    others = [e.head for e in ranked[len(must_show) :]]
    shown_endings = must_show + others[: max(0, PROBLEMS_SHOWN - len(must_show))]
    problems = [
        _now_session(head, now, stale_after, real_money_modes, "stale")
        for head in stale[:PROBLEMS_SHOWN]
    ] + [
        _now_session(head, now, stale_after, real_money_modes, head_status(head))  # type: ignore[arg-type]
        for head in shown_endings
    ]
    return NowView(
        running=[
            _now_session(head, now, stale_after, real_money_modes, None)
            for head in healthy[:RUNNING_SHOWN]
        ],
        running_count=len(running),
        problems=problems,
        problem_count=len(stale) + len(endings),
        failed_count=sum(e.failed for e in endings),
    )
