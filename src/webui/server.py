"""Run the dashboard under uvicorn with bounded resources.

``live-track serve`` calls ``run_server``; the limits are documented in the
README ("Limits") and each one can be raised with a ``LIVE_TRACK_*`` variable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from src.webui.settings import Settings

# h11's buffer for one incomplete event (request line + headers): 16 KiB is
# far beyond any browser's request and caps what a slow client can park.
MAX_HEADER_BYTES = 16 * 1024
# Identical error log lines allowed per interval before they are counted instead.
LOG_REPEATS_PER_INTERVAL = 5
LOG_REPEAT_INTERVAL_SECONDS = 60.0
RATE_LIMITED_LOGGERS = ("asyncio", "uvicorn.error")


class HeaderTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's headers.

    uvicorn arms its keep-alive timeout only after a response and disarms it
    on any received byte, so a connection that never finishes its request
    line and headers (or dribbles them a byte at a time) would hold a file
    descriptor forever. Here the headers must be complete within the
    keep-alive timeout, counted from accept and from each response's end.
    """

    _header_deadline: asyncio.TimerHandle | None = None
    _cycle_when_armed: object = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_header_deadline()

    def handle_events(self) -> None:
        super().handle_events()
        if self._header_deadline is not None and self.cycle is not self._cycle_when_armed:
            self._header_deadline.cancel()  # a new request's headers are complete
            self._header_deadline = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
        self._cycle_when_armed = self.cycle
        self._header_deadline = self.loop.call_later(
            self.timeout_keep_alive, self._headers_too_slow
        )

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        in_flight = self.cycle is not None and not self.cycle.response_complete
        if in_flight or self.transport.is_closing():
            return
        with contextlib.suppress(h11.LocalProtocolError):
            self.conn.send(h11.ConnectionClosed())
        self.transport.close()


class RepeatedLogFilter(logging.Filter):
    """Let each distinct message through a few times per interval, then count it.

    Out of file descriptors, asyncio logs the same accept error (with a
    traceback) on every retry; a log that grows by megabytes a second is a
    second outage. When an interval ends, one line says how many were dropped.
    """

    def __init__(
        self,
        repeats: int = LOG_REPEATS_PER_INTERVAL,
        interval: float = LOG_REPEAT_INTERVAL_SECONDS,
    ) -> None:
        super().__init__()
        self.repeats = repeats
        self.interval = interval
        # message key -> (interval start, lines seen in this interval)
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        start, count = self._seen.get(key, (now, 0))
        if now - start >= self.interval:
            dropped = count - self.repeats
            if dropped > 0:
                record.msg = f"{record.msg} (%d identical lines suppressed in the last %.0f s)"
                record.args = (*_args_tuple(record.args), dropped, now - start)
            start, count = now, 0
        self._seen[key] = (start, count + 1)
        if len(self._seen) > 1000:  # bounded: forget the oldest keys
            self._seen.pop(next(iter(self._seen)))
        return count < self.repeats


def _args_tuple(args: Any) -> tuple[Any, ...]:
    if args is None:
        return ()
    return args if isinstance(args, tuple) else (args,)


def install_log_rate_limit() -> RepeatedLogFilter:
    """Rate-limit the loggers that repeat themselves under resource exhaustion."""
    repeated = RepeatedLogFilter()
    for name in RATE_LIMITED_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, RepeatedLogFilter) for f in target.filters):  # once
            target.addFilter(repeated)
    return repeated


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's settings for this app: limits on, proxy headers only when trusted.

    Without ``LIVE_TRACK_TRUSTED_PROXIES`` uvicorn must not believe
    ``X-Forwarded-For`` (by default it does from 127.0.0.1), or a client could
    name a new address per request and get fresh login attempts each time.
    """
    trusted = list(settings.trusted_proxies)
    return {
        "host": settings.host,
        "port": settings.port,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or None,
        "http": HeaderTimeoutH11Protocol,
        "limit_concurrency": settings.limit_concurrency,
        "timeout_keep_alive": settings.timeout_keep_alive,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "timeout_graceful_shutdown": 10,
        "server_header": False,
    }


def run_server(settings: Settings) -> None:
    """Serve the dashboard until interrupted."""
    import uvicorn

    from src.webui.app import create_app

    install_log_rate_limit()
    uvicorn.run(create_app(settings), **uvicorn_options(settings))
