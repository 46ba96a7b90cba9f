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
from collections.abc import Callable
from typing import NamedTuple
from urllib.parse import quote

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
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


class Verdict(NamedTuple):
    """The outcome of one throttled token check."""

    granted: bool
    # > 0: refused without even looking at the token; retry after this many seconds.
    retry_after: float


class LoginThrottle:
    """Limit failed token checks (login form and Bearer alike) per client and overall.

    Per client: ``limit`` failures within ``window_seconds``. Overall:
    ``global_limit`` failures within ``global_window_seconds`` across every
    address, so an attacker with many source addresses is slowed down too.
    Checking, evaluating and recording happen in one synchronous call
    (``attempt``), so no request can slip a guess in between.
    """

    def __init__(
        self,
        limit: int = 5,
        window_seconds: float = 300.0,
        clients: int = 10_000,
        global_limit: int = 60,
        global_window_seconds: float = 60.0,
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self.global_limit = global_limit
        self.global_window = global_window_seconds
        self._clients = clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._all_failures: deque[float] = deque(maxlen=global_limit)

    def retry_after(self, client: str, now: float | None = None) -> float:
        """Seconds until this client may try again; 0 when it may try now."""
        now = time.monotonic() if now is None else now
        wait = 0.0
        if len(self._all_failures) >= self.global_limit:
            wait = self.global_window - (now - self._all_failures[0])
        failures = self._failures.get(client)
        if failures is None:
            return max(wait, 0.0)
        while failures and now - failures[0] > self.window:
            failures.popleft()
        if len(failures) >= self.limit:
            wait = max(wait, self.window - (now - failures[0]))
        return max(wait, 0.0)

    def attempt(self, client: str, check: Callable[[], bool], now: float | None = None) -> Verdict:
        """Check the throttle, run ``check`` and record its outcome, as one step."""
        now = time.monotonic() if now is None else now
        wait = self.retry_after(client, now)
        if wait > 0:
            return Verdict(granted=False, retry_after=wait)
        if check():
            self.succeeded(client)
            return Verdict(granted=True, retry_after=0.0)
        self.failed(client, now)
        return Verdict(granted=False, retry_after=0.0)

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._all_failures.append(now)
        self._failures.setdefault(client, deque(maxlen=self.limit)).append(now)
        self._failures.move_to_end(client)
        while len(self._failures) > self._clients:  # bounded memory under a flood
            self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


FORWARDING_HEADERS = (b"x-forwarded-for", b"forwarded", b"x-real-ip")
# One shared throttle bucket for requests that name a forwarded client while no
# proxy is trusted: rotating the header must not buy new guesses.
UNTRUSTED_FORWARD_CLIENT = "forwarded-by-untrusted-peer"


def throttle_client(scope: Scope, proxies_trusted: bool) -> str:
    """The address a failed guess is charged to: the socket peer.

    ``live-track serve`` turns uvicorn's proxy headers off unless
    ``LIVE_TRACK_TRUSTED_PROXIES`` is set, so the peer is the peer. Started as
    bare ``uvicorn src.webui.app:app``, uvicorn believes ``X-Forwarded-For``
    from 127.0.0.1 and rewrites the client; such requests share one bucket.
    """
    client = scope.get("client")
    peer = str(client[0]) if client else "unknown"
    if not proxies_trusted and any(
        name in FORWARDING_HEADERS for name, _ in scope.get("headers", ())
    ):
        return UNTRUSTED_FORWARD_CLIENT
    return peer


def too_many_attempts(retry_after: float) -> tuple[str, dict[str, str]]:
    """Message and headers for a throttled request (429)."""
    seconds = int(retry_after) + 1
    return (
        f"Zu viele Fehlversuche. Bitte in {seconds} s erneut versuchen.",
        {"Retry-After": str(seconds)},
    )


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
    """Let a request through only with the token (Bearer) or a valid session cookie.

    A valid session cookie (an HMAC of the token: not guessable) always
    passes. A Bearer token is checked through the shared throttle, so wrong
    guesses count with failed logins and end in 429 with ``Retry-After``.
    """

    def __init__(
        self, app: ASGIApp, token: str, throttle: LoginThrottle, proxies_trusted: bool = False
    ) -> None:
        self.app = app
        self.token = token
        self.cookie = session_cookie_value(token)
        self.throttle = throttle
        self.proxies_trusted = proxies_trusted

    def has_session(self, headers: Headers) -> bool:
        # Browser-style parsing: another local app's malformed cookie ("a=b c")
        # must not hide ours, as it does with http.cookies.SimpleCookie.
        value = cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE)
        return value is not None and token_matches(value, self.cookie)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if self.has_session(headers):
            await self.app(scope, receive, send)
            return
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        # Machines (the API, Prometheus) get a 401 they understand, people the login form.
        wants_json = path.startswith("/api/") or path in ("/openapi.json", "/metrics")
        response: Response
        if scheme.lower() == "bearer":
            verdict = self.throttle.attempt(
                throttle_client(scope, self.proxies_trusted),
                lambda: token_matches(credentials.strip(), self.token),
            )
            if verdict.granted:
                await self.app(scope, receive, send)
                return
            if verdict.retry_after > 0:
                message, retry = too_many_attempts(verdict.retry_after)
                response = JSONResponse({"detail": message}, status_code=429, headers=retry)
                await response(scope, receive, send)
                return
        if wants_json:
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
