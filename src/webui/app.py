"""The Live-Track web app: routes in, service models out.

``create_app()`` builds everything from a ``Settings`` object; the module-level
``app`` exists only for ``uvicorn src.webui.app:app``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from src.experiments.registry_index import RegistryIndex
from src.webui.auth import LoginThrottle, LoopbackOnly, TokenAuth
from src.webui.live_track import SessionNotFound, SessionRules
from src.webui.live_updates import LiveUpdates
from src.webui.rendering import STATIC_DIR, build_templates, render
from src.webui.routes import api, docs, events, login, pages
from src.webui.security import SecurityHeaders
from src.webui.settings import Settings


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/openapi.json"


def _error_page(request: Request, status_code: int, message: str) -> Response:
    return render(request, "error.html", status_code=status_code, message=message)


async def _not_found(request: Request, exc: Exception) -> Response:
    message = str(exc) if isinstance(exc, SessionNotFound) else "Seite nicht gefunden."
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=404)
    return _error_page(request, 404, message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return await _not_found(request, exc)
    if _wants_json(request):
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )
    return _error_page(request, exc.status_code, str(exc.detail))


async def _invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if _wants_json(request):
        return await request_validation_exception_handler(request, exc)
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc'][1:]) or 'Anfrage'}: {error['msg']}"
        for error in exc.errors()
    )
    return _error_page(request, 422, f"Ungültige Filter – {problems}")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the dashboard over one registry directory."""
    settings = settings or Settings()
    index = RegistryIndex(settings.registry_dir, persistent=True)
    rules = SessionRules.from_settings(settings)
    updates = LiveUpdates(index, rules, settings.reconcile_seconds, settings.watch)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await updates.start()
        try:
            yield
        finally:
            await updates.stop()

    app = FastAPIOffline(
        title="Peak_Trade Live-Track",
        description="Read-only view of the live-session registry (Phase 82).",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.index = index
    app.state.updates = updates
    app.state.rules = rules
    app.state.templates = build_templates(rules)
    if settings.auth_token is not None:
        app.add_middleware(TokenAuth, token=settings.auth_token.get_secret_value())
        app.state.login_throttle = LoginThrottle()
        app.include_router(login.router)
    else:  # also when started as `uvicorn src.webui.app:app --host 0.0.0.0`
        app.add_middleware(LoopbackOnly)
    app.add_middleware(SecurityHeaders)  # outermost: also on 401s and redirects
    app.add_exception_handler(SessionNotFound, _not_found)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(events.router)  # before the API's /live_sessions/{session_id}
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(docs.router)
    return app


app = create_app()
