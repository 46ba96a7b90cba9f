"""The Live-Track read model: registry records turned into what the panel shows.

Every view here is a function of an index snapshot, a ``SessionQuery`` and the
``SessionRules`` (stale limit, real-money modes); the HTML page, the JSON API,
the CLI and the programmatic functions below call the same functions, so
nothing shows what the others would not return.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel

from src.experiments.live_session_record import json_safe, utc_instant
from src.experiments.live_session_reports import PnlTotal
from src.experiments.registry_index import IndexSnapshot, RegistryIndex
from src.experiments.registry_watch import WatchedIndex, watched_index
from src.experiments.session_head import SessionHead
from src.webui.now_view import NowView, RiskLight, now_view
from src.webui.risk_view import LimitBar, limit_bars
from src.webui.session_profit import SessionGroups
from src.webui.session_query import (
    RecordTime,
    SessionQuery,
    cached_view,
    filter_sessions,
    head_status,
    is_known_status,
    is_stale,
    sort_sessions,
)
from src.webui.session_stats import (
    SessionCharts,
    SessionStats,
    session_charts,
    session_groups,
    session_stats,
)
from src.webui.settings import Settings
from src.webui.vocabulary import DEFAULT_REAL_MONEY_MODES, REAL_MONEY, SessionStatus, money_kind

SKIPPED_SHOWN = 5
CONFLICTS_SHOWN = 10


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


def _summary_fields(head: SessionHead, rules: SessionRules) -> dict[str, Any]:
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
    return LiveSessionSummary(**_summary_fields(head, rules))


def session_row(
    head: SessionHead, snapshot: IndexSnapshot, now: datetime, rules: SessionRules
) -> SessionRow:
    return SessionRow(
        **_summary_fields(head, rules),
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


# --- Lists ----------------------------------------------------------------


def _page_of(snapshot: IndexSnapshot, query: SessionQuery, now: datetime) -> list[SessionHead]:
    ordered = sort_sessions(snapshot, query, now)
    start = (query.page - 1) * query.limit
    return list(ordered[start : start + query.limit])


def list_sessions(
    snapshot: IndexSnapshot, query: SessionQuery, now: datetime, rules: SessionRules
) -> list[LiveSessionSummary]:
    """One page of matching sessions, in the query's order."""
    return [summarize(head, rules) for head in _page_of(snapshot, query, now)]


def count_sessions(snapshot: IndexSnapshot, query: SessionQuery, now: datetime) -> int:
    """How many sessions match the filters, across all pages."""
    return len(filter_sessions(snapshot, query, now))


def modes_present(snapshot: IndexSnapshot) -> list[str]:
    """Every mode some session has, for the mode filter (not a fixed list)."""

    def build() -> tuple[str, ...]:
        return tuple(sorted({head.mode for head in snapshot.sessions if head.mode}))

    return list(cached_view(snapshot, ("modes",), build))


# --- The panel ------------------------------------------------------------


class PageInfo(BaseModel):
    page: int
    pages: int
    limit: int
    matching: int


class SkippedFiles(BaseModel):
    """Files in the registry that are not records, so the operator can fix the writer."""

    count: int
    first: list[tuple[str, str]]


class SessionConflict(BaseModel):
    """One session id that several files carry: shown, never silently resolved."""

    session_id: str
    files: list[str]


class IndexState(BaseModel):
    loaded: bool
    files_read: int
    files_total: int
    # Set while the registry directory cannot be listed: the view is the last good state.
    unreadable_since: datetime | None = None


class LiveTrackView(BaseModel):
    """Everything the dashboard page shows, and its JSON twin returns."""

    registry_dir: str
    registry_exists: bool  # False: the directory is missing, not merely empty
    generation: int
    generated_at: datetime
    index: IndexState
    total_sessions: int
    hosts: list[str] = []  # bot hosts in the registry; the table shows them when > 1
    snapshot: Optional[SessionRow]  # noqa: UP045 - latest completed session
    sessions: list[SessionRow]
    page: PageInfo
    stats: SessionStats
    charts: SessionCharts
    groups: SessionGroups  # the "Nach Strategie" table, grouped by the query's ``group``
    skipped: SkippedFiles
    modes: list[str]
    real_money_modes: list[str]
    conflicts: list[SessionConflict]
    now: NowView  # the "Jetzt" strip: across all filters


def latest_completed(
    snapshot: IndexSnapshot, query: SessionQuery, now: datetime
) -> SessionHead | None:
    """The tile's session: the latest completed one, else the latest of any status."""
    matching = filter_sessions(snapshot, query, now)  # newest activity first
    completed = (head for head in matching if head_status(head) == "completed")
    return next(completed, matching[0] if matching else None)


def live_track_view(
    snapshot: IndexSnapshot, query: SessionQuery, now: datetime, rules: SessionRules
) -> LiveTrackView:
    """Compose the panel: snapshot tile, one table page, stats and charts."""
    matching = count_sessions(snapshot, query, now)
    tile = latest_completed(snapshot, query, now)
    files_read, files_total = snapshot.progress
    return LiveTrackView(
        registry_dir=str(snapshot.directory),
        registry_exists=snapshot.source_exists,
        generation=snapshot.generation,
        generated_at=now,
        index=IndexState(
            loaded=snapshot.loaded,
            files_read=files_read,
            files_total=files_total,
            unreadable_since=snapshot.unreadable_since,
        ),
        total_sessions=len(snapshot.sessions),
        hosts=registry_hosts(snapshot),
        snapshot=session_row(tile, snapshot, now, rules) if tile else None,
        sessions=[session_row(h, snapshot, now, rules) for h in _page_of(snapshot, query, now)],
        page=PageInfo(
            page=query.page,
            pages=max(1, -(-matching // query.limit)),
            limit=query.limit,
            matching=matching,
        ),
        stats=session_stats(snapshot, query, now, rules.stale_after, rules.real_money_modes),
        charts=session_charts(snapshot, query, now, rules.real_money_modes),
        groups=session_groups(snapshot, query, now, rules.real_money_modes),
        skipped=SkippedFiles(
            count=len(snapshot.skipped),
            first=[(s.name, s.reason) for s in snapshot.skipped[:SKIPPED_SHOWN]],
        ),
        modes=modes_present(snapshot),
        real_money_modes=sorted(rules.real_money_modes),
        conflicts=[
            SessionConflict(session_id=session_id, files=list(files))
            for session_id, files in list(snapshot.conflicts.items())[:CONFLICTS_SHOWN]
        ],
        now=now_view(snapshot, now, rules.stale_after, rules.real_money_modes),
    )


def registry_hosts(snapshot: IndexSnapshot) -> list[str]:
    """The bot hosts present, once per snapshot (a directory has none)."""

    def build() -> list[str]:
        return sorted({head.host for head in snapshot.sessions if head.host})

    return cached_view(snapshot, ("hosts",), build)


# --- One session ----------------------------------------------------------


class LiveSessionDetail(SessionRow):
    """Everything stored about one session, for the detail view.

    Non-finite metric values (NaN, infinities) come as the text ``"NaN"``,
    ``"Infinity"`` or ``"-Infinity"``, since JSON cannot carry them.
    """

    run_id: Optional[str] = None  # noqa: UP045
    run_type: str
    env_name: str
    symbol: Optional[str] = None  # type: ignore[assignment]  # noqa: UP045 - as the record has it
    config: dict[str, Any]
    metrics: dict[str, Any]
    cli_args: list[str]
    error: Optional[str] = None  # noqa: UP045
    created_at: Optional[RecordTime] = None  # noqa: UP045
    updated_at: Optional[RecordTime] = None  # noqa: UP045
    strategy_tier: Optional[str] = None  # noqa: UP045
    # Top-level keys this version does not know, as the writer wrote them.
    extra: dict[str, Any] = {}
    registry_file: str
    # Other files with the same session id (a writer bug), to resolve by hand.
    conflicting_files: list[str] = []
    limits: list[LimitBar] = []  # metrics' limit_details as bars


def get_session_detail(
    index: RegistryIndex,
    snapshot: IndexSnapshot,
    session_id: str,
    now: datetime,
    rules: SessionRules,
) -> LiveSessionDetail:
    """Look the id up in the snapshot (never in the file system), then read its file."""
    head = snapshot.by_id.get(session_id)
    record = index.read_record(head) if head is not None else None
    if head is None or record is None:
        raise SessionNotFound(session_id)
    row = session_row(head, snapshot, now, rules).model_dump(exclude={"symbol"})
    return LiveSessionDetail(
        **row,
        run_id=record.run_id,
        run_type=record.run_type,
        env_name=record.env_name,
        symbol=record.symbol,
        config=json_safe(record.config),
        metrics=json_safe(record.metrics),
        cli_args=record.cli_args,
        error=record.error,
        created_at=record.created_at,
        updated_at=record.updated_at,
        strategy_tier=record.strategy_tier,
        extra=json_safe(record.extra),
        registry_file=str(index.directory / head.file_name),
        conflicting_files=[
            name for name in snapshot.conflicts.get(session_id, ()) if name != head.file_name
        ],
        limits=limit_bars(record.metrics),
    )


# --- Export and totals ------------------------------------------------------


class SessionExportRow(LiveSessionSummary):
    """A summary with the columns a spreadsheet wants."""

    symbol: str
    env_name: str
    currency: str
    host: str = ""


def export_sessions(
    snapshot: IndexSnapshot, query: SessionQuery, now: datetime, rules: SessionRules
) -> list[SessionExportRow]:
    """The whole filtered set (not one page), in the query's order."""
    return [
        SessionExportRow(
            **_summary_fields(head, rules),
            symbol=head.symbol,
            env_name=head.env_name,
            currency=head.currency,
            host=head.host,
        )
        for head in sort_sessions(snapshot, query, now)
    ]


def pnl_totals(heads: Iterable[SessionHead], rules: SessionRules) -> list[PnlTotal]:
    """Realized PnL per kind of money and currency: real money first, never mixed."""
    sums: dict[tuple[str, str], tuple[float, int]] = {}
    for head in heads:
        if head.realized_pnl is None:
            continue
        key = (money_kind(head.mode, rules.real_money_modes), head.currency)
        total, count = sums.get(key, (0.0, 0))
        sums[key] = (total + head.realized_pnl, count + 1)
    ordered = sorted(sums.items(), key=lambda item: (item[0][0] != REAL_MONEY, item[0][1]))
    return [
        PnlTotal(money=money, currency=currency, realized_pnl=round(total, 8), sessions=count)
        for (money, currency), (total, count) in ordered
    ]


# --- Programmatic use (docs/live-track-panel.md) -------------------------------

_shared_indexes: dict[Path, WatchedIndex] = {}
_shared_lock = threading.Lock()


def shared_index(directory: Path) -> RegistryIndex:
    """An index of one registry that this process keeps, brought up to date.

    Scripts and the CLI call the functions below again and again. The first
    call loads the index (from the head cache where it can); later calls apply
    only the changes a file watch reported since, and a background thread
    reconciles with the directory now and then, as the server does. So every
    call sees every change made before it, the results are those of a full
    scan, and a call costs microseconds instead of a stat of every file.
    """
    key = directory.resolve()
    with _shared_lock:
        watched = _shared_indexes.get(key)
        if watched is None:
            watched = _shared_indexes[key] = watched_index(
                RegistryIndex(directory, persistent=True)
            )
    return watched.fresh()


def _shared(base_dir: str | os.PathLike[str] | None) -> tuple[RegistryIndex, SessionRules]:
    settings = Settings() if base_dir is None else Settings(registry_dir=Path(base_dir))
    return shared_index(settings.registry_dir), SessionRules.from_settings(settings)


def get_recent_live_sessions(
    limit: int = 10, base_dir: str | os.PathLike[str] | None = None
) -> list[LiveSessionSummary]:
    """The latest sessions of a registry directory, newest activity first."""
    return get_filtered_sessions(limit=limit, base_dir=base_dir)


def get_filtered_sessions(
    limit: int = 10,
    mode_filter: str | Sequence[str] | None = None,
    status_filter: str | Sequence[str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> list[LiveSessionSummary]:
    """The latest sessions of the given modes and statuses, as the dashboard lists them."""
    index, rules = _shared(base_dir)
    query = SessionQuery(
        limit=max(1, min(limit, 100)),
        mode=_as_tuple(mode_filter),
        status=_as_tuple(status_filter),
    )
    return list_sessions(index.snapshot(), query, utcnow(), rules)


def get_session_stats(base_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The stats the dashboard shows over the whole registry, original keys included."""
    index, rules = _shared(base_dir)
    stats = session_stats(
        index.snapshot(), SessionQuery(), utcnow(), rules.stale_after, rules.real_money_modes
    )
    return stats.model_dump()


def get_session_by_id(
    session_id: str, base_dir: str | os.PathLike[str] | None = None
) -> LiveSessionDetail | None:
    """Everything stored about one session, or None when no file carries the id."""
    index, rules = _shared(base_dir)
    try:
        return get_session_detail(index, index.snapshot(), session_id, utcnow(), rules)
    except SessionNotFound:
        return None


def _as_tuple(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def close_shared_indexes() -> None:
    """Stop the watches of the shared indexes and forget them (tests; exit does it too)."""
    with _shared_lock:
        watched = list(_shared_indexes.values())
        _shared_indexes.clear()
    for one in watched:
        one.close()
