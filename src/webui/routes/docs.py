"""Swagger UI from the assets fastapi-offline ships, with our own init script.

FastAPI's stock docs page starts Swagger UI with an inline script, which our
Content-Security-Policy forbids; this page loads the same assets without one.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from src.webui.rendering import render

router = APIRouter(include_in_schema=False)


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    """Show the interactive API documentation, served without any CDN."""
    return render(request, "docs.html")
