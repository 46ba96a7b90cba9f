"""Issue 12, resources: capped login bodies, connection limits and timeouts,
a cap on open event streams, rate-limited repeated log lines."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest

from src.webui.app import create_app
from src.webui.routes.login import MAX_FORM_BYTES
from src.webui.server import (
    LOG_REPEATS_PER_INTERVAL,
    HeaderTimeoutH11Protocol,
    RepeatedLogFilter,
    install_log_rate_limit,
    uvicorn_options,
)
from src.webui.settings import Settings
from tests.support import (
    EventStream,
    LiveServer,
    http_scope,
    live_track_serve,
    make_session,
    settings_env,
    utc_now,
    wait_until,
)
from tests.test_hardening_access import run_in_fresh_loop

TOKEN = "s3cret-token-for-tests"
CHUNK = 64 * 1024


# --- 7. The login body is capped before it is read ------------------------------


async def post_login(app: Any, total: int, declare_length: bool) -> tuple[int, int]:
    """POST /login with a ``total``-byte body in 64 KiB chunks; (status, bytes consumed)."""
    consumed = 0
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal consumed
        if consumed >= total:
            await asyncio.sleep(3600)
        chunk = min(CHUNK, total - consumed)
        consumed += chunk
        return {"type": "http.request", "body": b"t" * chunk, "more_body": consumed < total}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/x-www-form-urlencoded")]
    if declare_length:
        headers.append((b"content-length", str(total).encode()))
    scope = http_scope("POST", "/login", headers)
    await asyncio.wait_for(app(scope, receive, send), 30)
    return status, consumed


@pytest.fixture
def protected_app(tmp_path: Path) -> Any:
    return create_app(Settings(registry_dir=tmp_path, watch=False, auth_token=TOKEN))


def test_declared_oversized_login_body_is_refused_unread(protected_app: Any) -> None:
    status, consumed = run_in_fresh_loop(post_login(protected_app, 16 * 1024 * 1024, True))
    assert status == 413
    assert consumed == 0


def test_streamed_oversized_login_body_is_cut_off_at_the_cap(protected_app: Any) -> None:
    status, consumed = run_in_fresh_loop(post_login(protected_app, 16 * 1024 * 1024, False))
    assert status == 413
    assert consumed <= MAX_FORM_BYTES + CHUNK  # read stops at the first chunk past the cap


def test_oversized_login_is_a_readable_page(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    settings = Settings(registry_dir=tmp_path, watch=False, auth_token=TOKEN)
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/login",
            content=b"token=" + b"x" * (MAX_FORM_BYTES + 1),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 413
        assert "Anmeldeformular zu groß (höchstens 4096 Bytes)." in response.text


# --- 8. Connection limits, header timeout, event stream cap, log flood -----------


def test_serve_sets_limits_and_timeouts() -> None:
    options = uvicorn_options(Settings())
    assert options["limit_concurrency"] == 200
    assert options["timeout_keep_alive"] == 5
    assert options["h11_max_incomplete_event_size"] == 16 * 1024
    assert options["http"] is HeaderTimeoutH11Protocol


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVE_TRACK_LIMIT_CONCURRENCY", "1000")
    monkeypatch.setenv("LIVE_TRACK_TIMEOUT_KEEP_ALIVE", "30")
    monkeypatch.setenv("LIVE_TRACK_MAX_EVENT_STREAMS", "400")
    settings = Settings()
    assert uvicorn_options(settings)["limit_concurrency"] == 1000
    assert uvicorn_options(settings)["timeout_keep_alive"] == 30
    assert settings.max_event_streams == 400


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes this connection within ``seconds``."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("sent", [b"", b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"])
def test_half_open_connections_are_closed_after_the_header_timeout(
    registry: Path, live_server: Callable[..., LiveServer], sent: bytes
) -> None:
    env = settings_env(watch=False, timeout_keep_alive=1)
    server = live_server(registry, env=env, command=live_track_serve(registry))
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as idle:
        idle.sendall(sent)  # nothing, or headers that never end
        assert closed_within(idle, 5.0)
    assert httpx2.get(server.url("/api/health"), timeout=5).json() == {"status": "ok"}


def test_concurrency_limit_answers_503(
    registry: Path, live_server: Callable[..., LiveServer]
) -> None:
    env = settings_env(watch=False, limit_concurrency=3)
    server = live_server(registry, env=env, command=live_track_serve(registry))
    # Each stream holds its connection; the probe's own connection is the third.
    streams = [EventStream(server.port) for _ in range(2)]
    try:
        assert httpx2.get(server.url("/api/health"), timeout=5).status_code == 503
    finally:
        for stream in streams:
            stream.close()
    health = server.url("/api/health")
    wait_until(lambda: httpx2.get(health, timeout=5).status_code == 200, what="recovery")


def test_event_streams_beyond_the_cap_get_503_with_retry_after(
    registry: Path, live_server: Callable[..., LiveServer]
) -> None:
    server = live_server(registry, env=settings_env(watch=False, max_event_streams=2))
    streams = [EventStream(server.port) for _ in range(2)]
    try:
        for stream in streams:
            stream.next("hello")
        refused = httpx2.get(server.url("/api/live_sessions/events"), timeout=5)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "10"
        assert "Zu viele offene Live-Verbindungen" in refused.json()["detail"]
    finally:
        streams[0].close()
    # A closed tab frees its place.
    opened: list[EventStream] = []

    def reopened() -> bool:
        try:
            opened.append(EventStream(server.port))
        except AssertionError:  # still 503: not yet unsubscribed
            return False
        return True

    wait_until(reopened, what="the stream slot to be freed")
    opened[0].next("hello")
    opened[0].close()
    streams[1].close()


def test_repeated_error_lines_are_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    install_log_rate_limit()
    caplog.set_level(logging.ERROR, logger="asyncio")
    for _ in range(1000):  # what an accept loop out of file descriptors does
        logging.getLogger("asyncio").error("socket.accept() out of system resource")
    logging.getLogger("asyncio").error("a different problem")
    messages = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert messages.count("socket.accept() out of system resource") == LOG_REPEATS_PER_INTERVAL
    assert "a different problem" in messages


def test_suppressed_lines_are_counted_when_the_interval_ends() -> None:
    flood = RepeatedLogFilter(repeats=2, interval=0.2)
    record = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "accept failed", None, None)
    passed = [flood.filter(record) for _ in range(10)]
    assert passed == [True, True] + [False] * 8
    time.sleep(0.25)  # the interval itself is the behaviour under test
    assert flood.filter(record)
    assert "8 identical lines suppressed" in record.getMessage()


def test_header_timeout_spares_requests_in_flight_and_kept_alive(
    registry: Path, live_server: Callable[..., LiveServer]
) -> None:
    from src.experiments.live_session_registry import register_live_session_run

    env = settings_env(timeout_keep_alive=1, reconcile_seconds=0.2)
    server = live_server(registry, env=env, command=live_track_serve(registry))
    with httpx2.Client(base_url=server.base_url, timeout=5) as client:  # kept alive
        assert [client.get("/api/health").status_code for _ in range(3)] == [200] * 3
    stream = EventStream(server.port)
    try:
        stream.next("hello")
        time.sleep(2.5)  # longer than the header timeout: the behaviour under test
        register_live_session_run(
            make_session("late", mode="paper", status="started", started_at=utc_now()), registry
        )
        assert stream.next("update")["generation"] > 0
    finally:
        stream.close()
