"""The JSON API: the same service calls the HTML pages make, as JSON."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from fastapi.responses import Response
from pydantic import BaseModel

from src.webui.dependencies import QueryDep, ViewDep
from src.webui.live_track import (
    LiveSessionDetail,
    LiveSessionSummary,
    LiveTrackView,
    SessionExportRow,
    count_sessions,
    export_sessions,
    get_session_detail,
    list_sessions,
    live_track_view,
)
from src.webui.session_stats import SessionStats, session_stats
from src.webui.session_urls import RESERVED_SESSION_NAMES

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
def live_sessions(query: QueryDep, view: ViewDep, response: Response) -> list[LiveSessionSummary]:
    """List one page of sessions, newest first unless sorted otherwise."""
    response.headers["X-Total-Count"] = str(count_sessions(view.snapshot, query, view.now))
    return list_sessions(view.snapshot, query, view.now, view.rules)


@router.get("/live_sessions.json", response_model=list[SessionExportRow])
def export_json(query: QueryDep, view: ViewDep) -> list[SessionExportRow]:
    """Download every session matching the filters (all pages)."""
    return export_sessions(view.snapshot, query, view.now, view.rules)


EXPORT_COLUMNS = (
    "session_id",
    "mode",
    "status",
    "env_name",
    "symbol",
    "currency",
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


# OWASP "CSV Injection": a spreadsheet runs a text cell starting with one of
# these as a formula (=HYPERLINK(...), +cmd|...); a leading ' makes it text.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """One CSV cell: numbers stay numbers, text never starts a formula."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


@router.get(
    "/live_sessions.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def export_csv(query: QueryDep, view: ViewDep) -> Response:
    """Download every session matching the filters as CSV."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for row in export_sessions(view.snapshot, query, view.now, view.rules):
        values = row.model_dump(mode="json")
        writer.writerow([csv_cell(values[c]) for c in EXPORT_COLUMNS])
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="live_sessions.csv"'},
    )


@router.get("/live_sessions/stats", response_model=SessionStats)
def stats(query: QueryDep, view: ViewDep) -> SessionStats:
    """Aggregate the filtered sessions: counts, success rate, PnL per kind and currency."""
    return session_stats(
        view.snapshot, query, view.now, view.rules.stale_after, view.rules.real_money_modes
    )


_RESERVED = ", ".join(f"`{name}`" for name in sorted(RESERVED_SESSION_NAMES))
SessionRef = Annotated[
    str,
    Path(
        description=(
            f"The session id. Prefix it with `~` when it is {_RESERVED} (our endpoints"
            " beside this one) or starts with `~`: `~stats` is the session named `stats`."
        )
    ),
]


# Declared after the literal paths above (and the event stream's router), which win.
@router.get(
    "/live_sessions/{session_id:session_ref}",
    response_model=LiveSessionDetail,
    responses={404: {"model": NotFound, "description": "No session with this id"}},
)
def session_detail(session_id: SessionRef, view: ViewDep) -> LiveSessionDetail:
    """Show everything stored about one session."""
    return get_session_detail(view.index, view.snapshot, session_id, view.now, view.rules)


@router.get("/live_track", response_model=LiveTrackView)
def live_track(query: QueryDep, view: ViewDep) -> LiveTrackView:
    """Return everything the dashboard page shows for this query."""
    return live_track_view(view.snapshot, query, view.now, view.rules)
