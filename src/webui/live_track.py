"""The Live-Track read model: registry records turned into what the panel shows.

Every view here is a function of an index snapshot, a ``SessionQuery`` and the
``SessionRules`` (stale limit, real-money modes); the HTML page, the JSON API,
the CLI and the programmatic functions below call the same functions, so
nothing shows what the others would not return.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from operator import attrgetter
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel

from src.experiments.registry_index import IndexSnapshot, RegistryIndex
from src.experiments.registry_watch import WatchedIndex, watched_index
from src.experiments.session_head import SessionHead
from src.webui.now_view import NowView, now_view
from src.webui.session_detail import (
    LiveSessionDetail,
    SessionExportRow,
    export_sessions,
    get_session_detail,
    pnl_totals,
)
from src.webui.session_profit import SessionGroups
from src.webui.session_query import (
    SessionQuery,
    cached_view,
    filter_sessions,
    head_status,
    sort_sessions,
)
from src.webui.session_stats import (
    SessionCharts,
    SessionStats,
    session_charts,
    session_groups,
    session_stats,
)
from src.webui.session_summary import (
    LiveSessionSummary,
    SessionNotFound,
    SessionRow,
    SessionRules,
    compute_duration_seconds,
    environment_label,
    session_row,
    summarize,
    utcnow,
)
from src.webui.settings import Settings

__all__ = [  # the names code imports from here (docs/registry-format.md), and the views
    "LiveSessionDetail",
    "LiveSessionSummary",
    "LiveTrackView",
    "SessionExportRow",
    "SessionNotFound",
    "SessionRow",
    "SessionRules",
    "compute_duration_seconds",
    "count_sessions",
    "environment_label",
    "export_sessions",
    "get_filtered_sessions",
    "get_recent_live_sessions",
    "get_session_by_id",
    "get_session_detail",
    "get_session_stats",
    "list_sessions",
    "live_track_view",
    "pnl_totals",
    "session_row",
    "shared_index",
    "summarize",
    "utcnow",
]

SKIPPED_SHOWN = 5
CONFLICTS_SHOWN = 10


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


# Through the profile, in C: the head's own properties cost a call more per head.
_MODE: Callable[[SessionHead], str] = attrgetter("profile.mode")
_HOST: Callable[[SessionHead], str] = attrgetter("profile.host")


def modes_present(snapshot: IndexSnapshot) -> list[str]:
    """Every mode some session has, for the mode filter (not a fixed list)."""

    def build() -> tuple[str, ...]:
        return tuple(sorted(set(map(_MODE, snapshot.sessions)) - {""}))

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
        return sorted(set(map(_HOST, snapshot.sessions)) - {""})

    return cached_view(snapshot, ("hosts",), build)


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
