"""The Live-Track read model: registry records turned into what the panel shows.

Every view here is a function of an index snapshot and a ``SessionQuery``; the
HTML page and the JSON API call the same function with the same query, so the
page never shows what the API would not return.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from pydantic import BaseModel

from src.experiments.live_session_registry import resolve_registry_dir, utc_instant
from src.experiments.registry_index import IndexSnapshot, RegistryIndex, SessionHead
from src.webui.session_query import (
    RecordTime,
    SessionQuery,
    SessionStatus,
    cached_view,
    filter_sessions,
    head_status,
    is_known_status,
    is_stale,
    sort_sessions,
)
from src.webui.session_stats import SessionCharts, SessionStats, session_charts, session_stats

DEFAULT_STALE_AFTER = timedelta(minutes=15)
SKIPPED_SHOWN = 5


class SessionNotFound(LookupError):
    """No session with this id is in the registry."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"Session {session_id[:200]!r} nicht gefunden.")
        self.session_id = session_id


class LiveSessionSummary(BaseModel):
    """One session as the Phase 82 API returns it (the spec's eleven fields)."""

    session_id: str
    started_at: RecordTime
    ended_at: Optional[RecordTime]  # noqa: UP045 - spelled as in the Phase 82 spec
    mode: str  # shadow, testnet, paper, live
    environment: str  # env_name + symbol
    status: SessionStatus
    realized_pnl: Optional[float]  # noqa: UP045
    max_drawdown: Optional[float]  # noqa: UP045
    num_orders: Optional[int]  # noqa: UP045
    report_path: Optional[str]  # noqa: UP045
    notes: Optional[str]  # noqa: UP045 - error text, if any


class SessionRow(LiveSessionSummary):
    """A summary plus the cue the table shows for a silent running session."""

    stale: bool = False
    host: str = ""  # the bot host it was shipped from; empty for a directory


def environment_label(env_name: str, symbol: str) -> str:
    return " / ".join(part for part in (env_name, symbol) if part)


def summarize(head: SessionHead) -> LiveSessionSummary:
    return LiveSessionSummary(**_summary_fields(head))


def _summary_fields(head: SessionHead) -> dict[str, Any]:
    status = head_status(head)
    notes = head.error
    if notes is None and not is_known_status(head.status):
        notes = f"Unbekannter Status: {head.status[:80]}"
    return {
        "session_id": head.session_id,
        "started_at": head.started_at,
        "ended_at": head.finished_at,
        "mode": head.mode,
        "environment": environment_label(head.env_name, head.symbol),
        "status": status,
        "realized_pnl": head.realized_pnl,
        "max_drawdown": head.max_drawdown,
        "num_orders": head.num_orders,
        "report_path": head.report_path,
        "notes": notes,
    }


def session_row(head: SessionHead, now: datetime, stale_after: timedelta) -> SessionRow:
    return SessionRow(
        **_summary_fields(head), stale=is_stale(head, now, stale_after), host=head.host
    )


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --- Lists ----------------------------------------------------------------


def _page_of(snapshot: IndexSnapshot, query: SessionQuery, now: datetime) -> list[SessionHead]:
    ordered = sort_sessions(snapshot, query, now)
    start = (query.page - 1) * query.limit
    return list(ordered[start : start + query.limit])


def list_sessions(
    snapshot: IndexSnapshot, query: SessionQuery, now: datetime
) -> list[LiveSessionSummary]:
    """One page of matching sessions, in the query's order."""
    return [summarize(head) for head in _page_of(snapshot, query, now)]


def count_sessions(snapshot: IndexSnapshot, query: SessionQuery, now: datetime) -> int:
    """How many sessions match the filters, across all pages."""
    return len(filter_sessions(snapshot, query, now))


def get_recent_live_sessions(
    limit: int = 10, base_dir: str | os.PathLike[str] | None = None
) -> list[LiveSessionSummary]:
    """Load the latest sessions straight from a registry directory, newest first."""
    index = RegistryIndex(resolve_registry_dir(base_dir))
    index.reconcile()
    return list_sessions(index.snapshot(), SessionQuery(limit=limit), utcnow())


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


class IndexState(BaseModel):
    loaded: bool
    files_read: int
    files_total: int


class LiveTrackView(BaseModel):
    """Everything the dashboard page shows, and its JSON twin returns."""

    registry_dir: str
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
    skipped: SkippedFiles


def latest_completed(
    snapshot: IndexSnapshot, query: SessionQuery, now: datetime
) -> SessionHead | None:
    """The tile's session: the latest completed one, else the latest of any status."""
    matching = filter_sessions(snapshot, query, now)  # newest activity first
    completed = (head for head in matching if head_status(head) == "completed")
    return next(completed, matching[0] if matching else None)


def live_track_view(
    snapshot: IndexSnapshot,
    query: SessionQuery,
    now: datetime,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> LiveTrackView:
    """Compose the panel: snapshot tile, one table page, stats and charts."""
    matching = count_sessions(snapshot, query, now)
    tile = latest_completed(snapshot, query, now)
    files_read, files_total = snapshot.progress
    return LiveTrackView(
        registry_dir=str(snapshot.directory),
        generation=snapshot.generation,
        generated_at=now,
        index=IndexState(loaded=snapshot.loaded, files_read=files_read, files_total=files_total),
        total_sessions=len(snapshot.sessions),
        hosts=registry_hosts(snapshot),
        snapshot=session_row(tile, now, stale_after) if tile else None,
        sessions=[session_row(h, now, stale_after) for h in _page_of(snapshot, query, now)],
        page=PageInfo(
            page=query.page,
            pages=max(1, -(-matching // query.limit)),
            limit=query.limit,
            matching=matching,
        ),
        stats=session_stats(snapshot, query, now, stale_after),
        charts=session_charts(snapshot, query, now),
        skipped=SkippedFiles(
            count=len(snapshot.skipped),
            first=[(s.name, s.reason) for s in snapshot.skipped[:SKIPPED_SHOWN]],
        ),
    )


def registry_hosts(snapshot: IndexSnapshot) -> list[str]:
    """The bot hosts present, once per snapshot (a directory has none)."""

    def build() -> list[str]:
        return sorted({head.host for head in snapshot.sessions if head.host})

    return cached_view(snapshot, ("hosts",), build)  # type: ignore[return-value]


# --- One session ----------------------------------------------------------


class SessionDetail(SessionRow):
    """Everything stored about one session, for the detail view."""

    run_id: Optional[str]  # noqa: UP045
    run_type: str
    env_name: str
    symbol: str
    duration_seconds: Optional[float]  # noqa: UP045
    config: dict[str, Any]
    metrics: dict[str, Any]
    cli_args: list[str]
    error: Optional[str]  # noqa: UP045
    created_at: Optional[RecordTime]  # noqa: UP045
    updated_at: Optional[RecordTime]  # noqa: UP045
    registry_file: str


def duration_seconds(started_at: datetime, ended_at: datetime | None) -> float | None:
    if ended_at is None:
        return None
    return (utc_instant(ended_at) - utc_instant(started_at)).total_seconds()


def get_session_detail(
    index: RegistryIndex,
    snapshot: IndexSnapshot,
    session_id: str,
    now: datetime,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> SessionDetail:
    """Look the id up in the snapshot (never in the file system), then read its file."""
    head = snapshot.by_id.get(session_id)
    record = index.read_record(head) if head is not None else None
    if head is None or record is None:
        raise SessionNotFound(session_id)
    return SessionDetail(
        **session_row(head, now, stale_after).model_dump(),
        run_id=record.run_id,
        run_type=record.run_type,
        env_name=record.env_name,
        symbol=record.symbol,
        duration_seconds=duration_seconds(record.started_at, record.finished_at),
        config=record.config,
        metrics=record.metrics,
        cli_args=record.cli_args,
        error=record.error,
        created_at=record.created_at,
        updated_at=record.updated_at,
        registry_file=str(index.directory / head.file_name),
    )


# --- Export ---------------------------------------------------------------


class SessionExportRow(LiveSessionSummary):
    """A summary with the columns a spreadsheet wants."""

    symbol: str
    env_name: str
    duration_seconds: Optional[float]  # noqa: UP045
    host: str = ""


def export_sessions(
    snapshot: IndexSnapshot, query: SessionQuery, now: datetime
) -> list[SessionExportRow]:
    """The whole filtered set (not one page), in the query's order."""
    return [
        SessionExportRow(
            **_summary_fields(head),
            symbol=head.symbol,
            env_name=head.env_name,
            duration_seconds=duration_seconds(head.started_at, head.finished_at),
            host=head.host,
        )
        for head in sort_sessions(snapshot, query, now)
    ]
