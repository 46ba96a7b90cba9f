"""The Live-Track web app: routes in, service models out.

``create_app()`` builds everything from a ``Settings`` object; the module-level
``app`` exists only for ``uvicorn src.webui.app:app``.
"""

from __future__ import annotations

# First the registry: at 100,000 sessions its cold-start listing takes a helper
# process about as long as the web stack below (pydantic included) takes to
# import, so they overlap. Where the bots write, as Settings defaults to; a
# listing nobody asks for (another directory configured) is stopped at exit.
from src.experiments.registry_files import resolve_registry_dir
from src.experiments.registry_index import prefetch_listing

prefetch_listing(resolve_registry_dir())

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from src.experiments.registry_index import RegistryIndex, drop_prefetched
from src.webui.auth import LoginThrottle, LoopbackOnly, TokenAuth
from src.webui.dependencies import FIRST_LOAD_WAIT_SECONDS
from src.webui.filter_errors import raw_params, salvage_query
from src.webui.formatting import german_problems, problems_text
from src.webui.live_track import SessionNotFound, SessionRules, live_track_view, utcnow
from src.webui.live_updates import LiveUpdates
from src.webui.rendering import STATIC_DIR, build_templates, render
from src.webui.routes import api, docs, events, login, metrics, pages
from src.webui.security import HostCheck, SecurityHeaders
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


def _dashboard_with_errors(request: Request) -> Response:
    """The dashboard for the parameters that were fine, the messages beside their fields."""
    query, errors = salvage_query(raw_params(request.query_params.multi_items()))
    index: RegistryIndex = request.app.state.index
    rules: SessionRules = request.app.state.rules
    index.start_loading()
    index.wait_loaded(FIRST_LOAD_WAIT_SECONDS)
    panel = live_track_view(index.snapshot(), query, utcnow(), rules)
    return render(request, "index.html", status_code=422, view=panel, query=query, errors=errors)


async def _invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if _wants_json(request):
        return await request_validation_exception_handler(request, exc)
    if request.url.path == "/":
        return _dashboard_with_errors(request)
    problems = problems_text(german_problems(exc.errors()))
    return _error_page(request, 422, f"Ungültige Filter – {problems}")


def _guard_outermost(app: FastAPI, host_names: frozenset[str]) -> None:
    """Put the Host check and security headers around the whole stack.

    ``add_middleware`` places middleware inside Starlette's
    ServerErrorMiddleware, whose 500 page would then go out bare; wrapping
    the built stack puts the headers on every response, crashes included.
    """
    build = app.build_middleware_stack

    def build_guarded() -> ASGIApp:
        return SecurityHeaders(HostCheck(build(), host_names))

    app.build_middleware_stack = build_guarded  # type: ignore[method-assign]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the dashboard over one registry directory."""
    settings = settings or Settings()
    # The listing started at import is of the default directory; maybe not this one.
    drop_prefetched(settings.registry_dir if settings.database_url is None else None)
    index = _registry_index(settings)
    rules = SessionRules.from_settings(settings)
    watch = settings.watch and settings.database_url is None
    updates = LiveUpdates(index, rules, settings.reconcile_seconds, watch)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await updates.start()
        try:
            async with _following(settings, index, updates):
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
        app.state.login_throttle = throttle = LoginThrottle()
        app.add_middleware(
            TokenAuth,
            token=settings.auth_token.get_secret_value(),
            throttle=throttle,
            proxies_trusted=bool(settings.trusted_proxies),
        )
        app.include_router(login.router)
    else:  # also when started as `uvicorn src.webui.app:app --host 0.0.0.0`
        app.add_middleware(LoopbackOnly)
    _guard_outermost(app, settings.host_names)
    app.add_exception_handler(SessionNotFound, _not_found)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(events.router)  # before the API's /live_sessions/{session_id}
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(docs.router)
    app.include_router(metrics.router)
    return app


def _following(
    settings: Settings, index: RegistryIndex, updates: LiveUpdates
) -> contextlib.AbstractAsyncContextManager[None]:
    """The PostgreSQL change feed when the index reads the database; a directory
    needs none (nor psycopg, which is why it is imported only here)."""
    if settings.database_url is None:
        return contextlib.nullcontext()
    from src.webui.pg_updates import following

    return following(index, updates)


def _registry_index(settings: Settings) -> RegistryIndex:
    """The directory by default; the shared PostgreSQL table when a database URL is set."""
    if settings.database_url is None:
        return RegistryIndex(settings.registry_dir, persistent=True)
    from src.experiments.pg_index import PgRegistryIndex

    return PgRegistryIndex(settings.database_url.get_secret_value())


app = create_app()
