"""HTML pages and the partials that live refresh swaps in."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from src.webui.dependencies import QueryDep, ViewDep
from src.webui.filter_errors import without_empty
from src.webui.live_track import get_session_detail, live_track_view
from src.webui.rendering import render

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, query: QueryDep, view: ViewDep) -> Response:
    """Show the Live-Track panel: snapshot tile, stats, charts and sessions.

    Empty form fields leave the URL (a redirect to the same view without them),
    so a shared or bookmarked link says only what it filters.
    """
    cleaned = without_empty(request.query_params.multi_items())
    if cleaned is not None:
        return RedirectResponse(f"/?{cleaned}" if cleaned else "/", status_code=303)
    panel = live_track_view(view.snapshot, query, view.now, view.rules)
    return render(request, "index.html", view=panel, query=query)


@router.get("/partials/live_track", response_class=HTMLResponse)
def dashboard_panel(request: Request, query: QueryDep, view: ViewDep) -> HTMLResponse:
    """Render the panel alone, for the page's live refresh."""
    panel = live_track_view(view.snapshot, query, view.now, view.rules)
    return render(request, "_live_track_panel.html", view=panel, query=query)


@router.get("/session/{session_id:session_id}", response_class=HTMLResponse)
def session_page(request: Request, session_id: str, view: ViewDep) -> HTMLResponse:
    """Show everything stored about one session."""
    detail = get_session_detail(view.index, view.snapshot, session_id, view.now, view.rules)
    return render(request, "session.html", detail=detail, now=view.now)


@router.get("/partials/session/{session_id:session_id}", response_class=HTMLResponse)
def session_partial(request: Request, session_id: str, view: ViewDep) -> HTMLResponse:
    """Render one session's details alone, for click-to-expand rows."""
    detail = get_session_detail(view.index, view.snapshot, session_id, view.now, view.rules)
    return render(request, "_session_detail.html", detail=detail, now=view.now)
