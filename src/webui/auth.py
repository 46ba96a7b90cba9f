"""Access control for a dashboard reachable beyond loopback.

With an access token configured, every request needs either the header
``Authorization: Bearer <token>`` or the session cookie that the login form
sets. The cookie holds an HMAC of the token, never the token itself, so
changing the token logs everybody out. All comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from collections import OrderedDict, deque
from http.cookies import SimpleCookie
from urllib.parse import quote

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

SESSION_COOKIE = "live_track_session"
# Probes and the login page itself must work without a session.
OPEN_PATHS = ("/api/health", "/login")
OPEN_PREFIXES = ("/static/", "/static-offline-docs/")


def session_cookie_value(token: str) -> str:
    return hmac.new(token.encode(), b"peak-trade-live-track-session-v1", hashlib.sha256).hexdigest()


def token_matches(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


def safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect a login to another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class LoginThrottle:
    """Limit failed logins per client address within a sliding window."""

    def __init__(
        self, limit: int = 5, window_seconds: float = 300.0, clients: int = 10_000
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self._clients = clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str, now: float | None = None) -> float:
        """Seconds until this client may try again; 0 when it may try now."""
        now = time.monotonic() if now is None else now
        failures = self._failures.get(client)
        if failures is None:
            return 0.0
        while failures and now - failures[0] > self.window:
            failures.popleft()
        if len(failures) < self.limit:
            return 0.0
        return self.window - (now - failures[0])

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._failures.setdefault(client, deque(maxlen=self.limit)).append(now)
        self._failures.move_to_end(client)
        while len(self._failures) > self._clients:  # bounded memory under a flood
            self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


NETWORK_REFUSAL = (
    "Live-Track ist ohne Zugangstoken nur über 127.0.0.1 erreichbar. Für den Zugriff "
    "über das Netzwerk ein Token setzen: LIVE_TRACK_AUTH_TOKEN=... oder "
    "live-track serve --auth-token ..."
)


def arrived_from_network(scope: Scope) -> bool:
    """True when the request reached a non-loopback address of this machine.

    The local address the connection was accepted on (not the client's
    address) says whether the server listens beyond loopback, for example
    after ``uvicorn src.webui.app:app --host 0.0.0.0``.
    """
    server = scope.get("server")
    if not server:
        return False  # a Unix socket: local by construction
    try:
        return not ipaddress.ip_address(str(server[0]).split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name (test clients): nothing was bound to a network


class LoopbackOnly:
    """Without a token, answer only requests that came in over loopback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and arrived_from_network(scope)
            and scope.get("path") != "/api/health"
        ):
            response = JSONResponse({"detail": NETWORK_REFUSAL}, status_code=403)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class TokenAuth:
    """Let a request through only with the token (Bearer) or a valid session cookie."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token
        self.cookie = session_cookie_value(token)

    def authorized(self, headers: Headers) -> bool:
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token_matches(credentials.strip(), self.token):
            return True
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed cookie header is no session
            return False
        morsel = cookies.get(SESSION_COOKIE)
        return morsel is not None and token_matches(morsel.value, self.cookie)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or path in OPEN_PATHS
            or path.startswith(OPEN_PREFIXES)
            or self.authorized(Headers(scope=scope))
        ):
            await self.app(scope, receive, send)
            return
        response: Response
        if path.startswith("/api/") or path == "/openapi.json":
            response = JSONResponse(
                {"detail": "Anmeldung erforderlich: Authorization: Bearer <Token> senden."},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        else:
            target = path + (
                "?" + scope["query_string"].decode("latin-1") if scope["query_string"] else ""
            )
            response = RedirectResponse(f"/login?next={quote(safe_next(target), safe='')}", 303)
        await response(scope, receive, send)
