"""One session as every view shows it: the summary, the table row, the rules that judge it.

The Phase 82 summary (docs/live-track-panel.md) and Phase 85's additions
(docs/registry-format.md) are re-exported from ``src.webui.live_track``, where
existing code imports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from pydantic import BaseModel

from src.experiments.live_session_record import utc_instant
from src.experiments.registry_index import IndexSnapshot
from src.experiments.session_head import SessionHead
from src.webui.now_view import RiskLight
from src.webui.session_query import (
    RecordTime,
    head_status,
    is_known_status,
    is_stale,
)
from src.webui.settings import Settings
from src.webui.vocabulary import DEFAULT_REAL_MONEY_MODES, SessionStatus


@dataclass(frozen=True)
class SessionRules:
    """How sessions are judged: when a running one is stale, which modes are real money."""

    stale_after: timedelta = timedelta(minutes=15)
    real_money_modes: frozenset[str] = frozenset(DEFAULT_REAL_MONEY_MODES)

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionRules:
        return cls(settings.stale_after, frozenset(settings.real_money_modes))

    def is_real_money(self, mode: str) -> bool:
        return mode in self.real_money_modes


class SessionNotFound(LookupError):
    """No session with this id is in the registry."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"Session {session_id[:200]!r} nicht gefunden.")
        self.session_id = session_id


# Optional[...] spelled as in the Phase 82 spec (docs/live-track-panel.md).
class LiveSessionSummary(BaseModel):
    """One session as the Phase 82 API returns it, plus Phase 85's two fields.

    See docs/live-track-panel.md for the eleven fields and docs/registry-format.md
    for the two Phase 85 adds.
    """

    session_id: str
    started_at: RecordTime
    ended_at: Optional[RecordTime] = None  # noqa: UP045
    mode: str  # shadow, testnet, paper, live, bounded_pilot, ...
    environment: str = ""  # env_name + " / " + symbol
    status: SessionStatus
    realized_pnl: Optional[float] = None  # noqa: UP045
    max_drawdown: Optional[float] = None  # noqa: UP045
    num_orders: Optional[int] = None  # noqa: UP045
    report_path: Optional[str] = None  # noqa: UP045
    notes: Optional[str] = None  # noqa: UP045 - error text, if any
    duration_seconds: Optional[int] = None  # noqa: UP045 - only once it ended
    is_live_warning: bool = False  # true for every real-money mode


class SessionRow(LiveSessionSummary):
    """A summary plus what the table shows beside it: liveness and conflicts."""

    stale: bool = False
    heartbeat_at: Optional[RecordTime] = None  # noqa: UP045 - None: writer sends none
    currency: str = ""
    conflict: bool = False  # another file carries the same session id
    symbol: str = ""
    strategy_name: str = ""
    unrealized_pnl: Optional[float] = None  # noqa: UP045
    risk: Optional[RiskLight] = None  # noqa: UP045 - None: the record has no risk data
    host: str = ""  # the bot host it was shipped from; empty for a directory


def environment_label(env_name: str, symbol: str) -> str:
    return " / ".join(part for part in (env_name, symbol) if part)


def compute_duration_seconds(started_at: datetime, ended_at: datetime | None) -> int | None:
    """Whole seconds from start to end; None while the session runs."""
    if ended_at is None:
        return None
    return int((utc_instant(ended_at) - utc_instant(started_at)).total_seconds())


def summary_fields(head: SessionHead, rules: SessionRules) -> dict[str, Any]:
    notes = head.error
    if notes is None and not is_known_status(head.status):
        notes = f"Unbekannter Status: {head.status[:80]}"
    return {
        "session_id": head.session_id,
        "started_at": head.started_at,
        "ended_at": head.finished_at,
        "mode": head.mode,
        "environment": environment_label(head.env_name, head.symbol),
        "status": head_status(head),
        "realized_pnl": head.realized_pnl,
        "max_drawdown": head.max_drawdown,
        "num_orders": head.num_orders,
        "report_path": head.report_path,
        "notes": notes,
        "duration_seconds": compute_duration_seconds(head.started_at, head.finished_at),
        "is_live_warning": rules.is_real_money(head.mode),
    }


def summarize(head: SessionHead, rules: SessionRules) -> LiveSessionSummary:
    return LiveSessionSummary(**summary_fields(head, rules))


def session_row(
    head: SessionHead, snapshot: IndexSnapshot, now: datetime, rules: SessionRules
) -> SessionRow:
    return SessionRow(
        **summary_fields(head, rules),
        stale=is_stale(head, now, rules.stale_after),
        heartbeat_at=head.updated_at,
        currency=head.currency,
        conflict=head.session_id in snapshot.conflicts,
        symbol=head.symbol,
        strategy_name=head.strategy_name,
        unrealized_pnl=head.unrealized_pnl,
        risk=head.risk,
        host=head.host,
    )


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
