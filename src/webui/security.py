"""Response headers that keep a browser from running or framing anything foreign,
and the Host check that keeps a rebinding web page out."""

from __future__ import annotations

import ipaddress

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


class SecurityHeaders:
    """Add the security headers to every HTTP response (pure ASGI: streams stay streams).

    Installed outside Starlette's ServerErrorMiddleware, so a 500 carries them too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def host_name(host_header: str) -> str:
    """``Host`` without the port, lower case: ``[::1]:8000`` -> ``[::1]``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_own_address(name: str, scope: Scope) -> bool:
    """An IP literal naming the address this connection was accepted on.

    A DNS-rebinding page always sends its own domain name, never our IP, so
    answering our own address (``http://192.0.2.5:8000`` on a token-protected
    server bound beyond loopback) opens nothing to it.
    """
    server = scope.get("server")
    if not server:
        return False
    try:
        return ipaddress.ip_address(name.strip("[]")) == ipaddress.ip_address(str(server[0]))
    except ValueError:
        return False


class HostCheck:
    """Answer only requests addressed to a host name we know (DNS rebinding).

    Without this a web page whose name resolves to 127.0.0.1 could read the
    dashboard from the trader's own browser, which sends that page's name as
    ``Host``. A request without a Host header (HTTP/1.0) comes from no browser.
    """

    def __init__(self, app: ASGIApp, allowed: frozenset[str]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = Headers(scope=scope).get("host")
            if host is not None:
                name = host_name(host)
                if name not in self.allowed and not _is_own_address(name, scope):
                    response = PlainTextResponse(
                        "Unbekannter Host-Name. Erlaubte Namen: LIVE_TRACK_ALLOWED_HOSTS.",
                        status_code=400,
                    )
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
