"""Prometheus scrape endpoint; behind the access token like every route but /api/health."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from src.webui.dependencies import IndexDep, UpdatesDep
from src.webui.live_track import utcnow
from src.webui.metrics import dashboard_registry

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
def metrics(request: Request, index: IndexDep, updates: UpdatesDep) -> Response:
    """Report sessions, staleness and server state in the Prometheus text format."""
    registry: CollectorRegistry | None = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        registry = dashboard_registry(index, updates, request.app.state.rules, utcnow)
        request.app.state.metrics_registry = registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
