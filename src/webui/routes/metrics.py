"""Prometheus scrape endpoint; behind the access token like every route but /api/health."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import Response

from src.webui.dependencies import IndexDep, UpdatesDep
from src.webui.live_track import utcnow

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
def metrics(request: Request, index: IndexDep, updates: UpdatesDep) -> Response:
    """Report sessions, staleness and server state in the Prometheus text format."""
    # Loaded on the first scrape, not on every server start (13 ms of it).
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from src.webui.metrics import dashboard_registry

    registry: CollectorRegistry | None = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        registry = dashboard_registry(index, updates, request.app.state.rules, utcnow)
        request.app.state.metrics_registry = registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
