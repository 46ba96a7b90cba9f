"""The JSON API: the same service calls the HTML pages make, as JSON."""

from __future__ import annotations

import csv
import io
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel

from src.webui.dependencies import IndexDep, NowDep, QueryDep, SnapshotDep, StaleAfterDep
from src.webui.live_track import (
    LiveSessionSummary,
    LiveTrackView,
    SessionDetail,
    SessionExportRow,
    count_sessions,
    export_sessions,
    get_session_detail,
    list_sessions,
    live_track_view,
)
from src.webui.session_stats import SessionStats, session_stats

router = APIRouter(prefix="/api", tags=["live sessions"])


class NotFound(BaseModel):
    detail: str


class Health(BaseModel):
    status: Literal["ok"]


@router.get("/health", response_model=Health)
def health() -> Health:
    """Answer probes; never waits for the index."""
    return Health(status="ok")


@router.get("/live_sessions", response_model=list[LiveSessionSummary])
def live_sessions(
    query: QueryDep, snapshot: SnapshotDep, now: NowDep, response: Response
) -> list[LiveSessionSummary]:
    """List one page of sessions, newest first unless sorted otherwise."""
    response.headers["X-Total-Count"] = str(count_sessions(snapshot, query, now))
    return list_sessions(snapshot, query, now)


@router.get("/live_sessions.json", response_model=list[SessionExportRow])
def export_json(query: QueryDep, snapshot: SnapshotDep, now: NowDep) -> list[SessionExportRow]:
    """Download every session matching the filters (all pages)."""
    return export_sessions(snapshot, query, now)


EXPORT_COLUMNS = (
    "session_id",
    "mode",
    "status",
    "env_name",
    "symbol",
    "started_at",
    "ended_at",
    "duration_seconds",
    "realized_pnl",
    "max_drawdown",
    "num_orders",
    "report_path",
    "notes",
    "host",
)


@router.get(
    "/live_sessions.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def export_csv(query: QueryDep, snapshot: SnapshotDep, now: NowDep) -> Response:
    """Download every session matching the filters as CSV."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for row in export_sessions(snapshot, query, now):
        values = row.model_dump(mode="json")
        writer.writerow(["" if values[c] is None else values[c] for c in EXPORT_COLUMNS])
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="live_sessions.csv"'},
    )


@router.get("/live_sessions/stats", response_model=SessionStats)
def stats(
    query: QueryDep, snapshot: SnapshotDep, now: NowDep, stale_after: StaleAfterDep
) -> SessionStats:
    """Aggregate the filtered sessions: counts, success rate, PnL, drawdown."""
    return session_stats(snapshot, query, now, stale_after)


@router.get(
    "/live_sessions/{session_id:session_id}",
    response_model=SessionDetail,
    responses={404: {"model": NotFound, "description": "No session with this id"}},
)
def session_detail(
    session_id: str, index: IndexDep, snapshot: SnapshotDep, now: NowDep, stale_after: StaleAfterDep
) -> SessionDetail:
    """Show everything stored about one session."""
    return get_session_detail(index, snapshot, session_id, now, stale_after)


@router.get("/live_track", response_model=LiveTrackView)
def live_track(
    query: QueryDep, snapshot: SnapshotDep, now: NowDep, stale_after: StaleAfterDep
) -> LiveTrackView:
    """Return everything the dashboard page shows for this query."""
    return live_track_view(snapshot, query, now, stale_after)
