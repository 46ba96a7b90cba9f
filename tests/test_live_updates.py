"""Live updates against a real server: file watch, reconciliation and the event stream."""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn

from src.experiments.live_session_registry import LiveSessionRecord, register_live_session_run
from src.webui.app import create_app
from src.webui.settings import Settings

NOW = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def session(session_id: str, **overrides: Any) -> LiveSessionRecord:
    fields: dict[str, Any] = {
        "session_id": session_id,
        "run_id": None,
        "run_type": "live_session_live",
        "mode": "live",
        "env_name": "kraken_spot",
        "symbol": "BTC/USDT",
        "status": "started",
        "started_at": NOW - timedelta(minutes=3),
        "metrics": {"realized_pnl": -42.5},
    }
    fields.update(overrides)
    return LiveSessionRecord(**fields)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RunningServer:
    """A real uvicorn server in a thread, on a free loopback port."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self.port = free_port()
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning",
            timeout_graceful_shutdown=1,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class EventStream:
    """Reads one SSE stream over a raw socket in a thread, like a browser tab would."""

    def __init__(self, url: str) -> None:
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        host, port = url.removeprefix("http://").split(":")
        self._sock = socket.create_connection((host, int(port)), timeout=30)
        request = f"GET /api/live_sessions/events HTTP/1.1\r\nHost: {host}\r\n\r\n"
        self._sock.sendall(request.encode())
        self._file = self._sock.makefile("rb")
        headers = []
        while (line := self._file.readline()) not in (b"\r\n", b""):
            headers.append(line.decode().lower())
        assert any(h.startswith("content-type: text/event-stream") for h in headers)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        text = b""
        try:
            while size_line := self._file.readline():  # chunked transfer encoding
                size = int(size_line.strip() or b"0", 16)
                if size == 0:
                    return
                text += self._file.read(size)
                self._file.readline()
                while b"\n\n" in text:
                    block, text = text.split(b"\n\n", 1)
                    fields = dict(
                        line.split(": ", 1) for line in block.decode().splitlines() if ": " in line
                    )
                    if "event" in fields:
                        self.events.put((fields["event"], json.loads(fields["data"])))
        except (OSError, ValueError):
            pass  # closed by the test

    def next(self, name: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event_name, data = self.events.get(timeout=left)
            except queue.Empty:
                break
            if event_name == name:
                return data
        raise AssertionError(f"no {name!r} event within {timeout} s")

    def close(self) -> None:
        # Shut the socket down so the reading thread wakes up and the server
        # sees the client leave, as when a browser tab closes.
        self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    directory = tmp_path / "live_sessions"
    register_live_session_run(session("bot-running"), directory)
    return directory


@pytest.fixture
def serve(registry: Path) -> Iterator[Callable[..., RunningServer]]:
    servers: list[RunningServer] = []

    def start(**settings: Any) -> RunningServer:
        server = RunningServer(Settings(registry_dir=registry, **settings)).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()


def api_ids(url: str) -> list[str]:
    return [s["session_id"] for s in httpx2.get(url + "/api/live_sessions?limit=100").json()]


def wait_for(check: Callable[[], bool], timeout: float) -> float:
    """Poll until check() holds; return how long it took."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"condition not met within {timeout} s"
        time.sleep(0.05)
    return time.monotonic() - start


def test_event_stream_announces_a_new_session_within_a_second(
    serve: Callable[..., RunningServer], registry: Path
) -> None:
    server = serve()
    stream = EventStream(server.url)
    try:
        stream.next("hello", timeout=5)
        started = time.monotonic()
        register_live_session_run(
            session("bot-new", status="completed", finished_at=NOW, mode="paper"), registry
        )
        update = stream.next("update", timeout=3)
        assert time.monotonic() - started < 1.0
        assert update["ended"] == [
            {
                "session_id": "bot-new",
                "mode": "paper",
                "status": "completed",
                "realized_pnl": -42.5,
                "currency": "USDT",
                "real_money": False,
            }
        ]
        assert "bot-new" in api_ids(server.url)
    finally:
        stream.close()


def test_session_moving_to_failed_is_announced_once(
    serve: Callable[..., RunningServer], registry: Path
) -> None:
    server = serve()
    stream = EventStream(server.url)
    try:
        stream.next("hello", timeout=5)
        failed = session("bot-running", status="failed", finished_at=NOW, error="boom")
        register_live_session_run(failed, registry)
        assert stream.next("update", timeout=3)["ended"][0]["status"] == "failed"
        register_live_session_run(replace(failed, error="boom again"), registry)
        assert stream.next("update", timeout=3)["ended"] == []  # already ended before
    finally:
        stream.close()


def test_watch_sees_create_rewrite_replace_and_delete(
    serve: Callable[..., RunningServer], registry: Path
) -> None:
    server = serve(reconcile_seconds=3600)  # only the watch can be fast enough
    path = register_live_session_run(session("bot-2"), registry)
    assert wait_for(lambda: "bot-2" in api_ids(server.url), 1.5) < 1.0

    record = json.loads(path.read_text())
    record["metrics"]["realized_pnl"] = 99.0
    with open(path, "r+", encoding="utf-8") as handle:  # rewrite in place
        handle.write(json.dumps(record))
        handle.truncate()

    def pnl() -> object:
        return httpx2.get(server.url + "/api/live_sessions/bot-2").json()["realized_pnl"]

    assert wait_for(lambda: pnl() == 99.0, 1.5) < 1.0

    register_live_session_run(session("bot-2", status="completed", finished_at=NOW), registry)
    status = lambda: httpx2.get(server.url + "/api/live_sessions/bot-2").json()["status"]  # noqa: E731
    assert wait_for(lambda: status() == "completed", 1.5) < 1.0

    path.unlink()
    assert wait_for(lambda: "bot-2" not in api_ids(server.url), 1.5) < 1.0


def test_reconciliation_alone_catches_changes(
    serve: Callable[..., RunningServer], registry: Path
) -> None:
    server = serve(watch=False, reconcile_seconds=0.5)
    path = register_live_session_run(session("bot-3"), registry)
    wait_for(lambda: "bot-3" in api_ids(server.url), 2.0)

    def detail() -> dict[str, Any]:
        result: dict[str, Any] = httpx2.get(server.url + "/api/live_sessions/bot-3").json()
        return result

    record = json.loads(path.read_text())
    record["metrics"]["realized_pnl"] = 7.0
    with open(path, "r+", encoding="utf-8") as handle:  # rewritten in place
        handle.write(json.dumps(record))
        handle.truncate()
    wait_for(lambda: detail()["realized_pnl"] == 7.0, 2.0)

    register_live_session_run(session("bot-3", status="failed", finished_at=NOW), registry)
    wait_for(lambda: detail()["status"] == "failed", 2.0)  # atomically replaced

    path.unlink()
    wait_for(lambda: "bot-3" not in api_ids(server.url), 2.0)


def test_many_tabs_share_one_watcher(serve: Callable[..., RunningServer], registry: Path) -> None:
    server = serve()
    updates = server.app.state.updates
    tasks_before = len(updates._tasks)
    streams = [EventStream(server.url) for _ in range(4)]
    try:
        for stream in streams:
            stream.next("hello", timeout=5)
        assert updates.subscribers == 4
        assert len(updates._tasks) == tasks_before
        register_live_session_run(session("bot-4", status="aborted", finished_at=NOW), registry)
        for stream in streams:
            assert stream.next("update", timeout=3)["ended"][0]["session_id"] == "bot-4"
    finally:
        for stream in streams:
            stream.close()
    wait_for(lambda: updates.subscribers == 0, 3.0)


def test_registry_created_after_start_is_picked_up(
    serve: Callable[..., RunningServer], registry: Path
) -> None:
    for path in registry.iterdir():
        path.unlink()
    registry.rmdir()
    server = serve(reconcile_seconds=3600)
    assert api_ids(server.url) == []
    register_live_session_run(session("bot-late"), registry)
    wait_for(lambda: "bot-late" in api_ids(server.url), 3.0)


def test_page_and_partial_update_without_reload(
    serve: Callable[..., RunningServer], registry: Path
) -> None:
    server = serve()
    page = httpx2.get(server.url + "/").text
    assert 'data-partial="/partials/live_track"' in page
    register_live_session_run(session("bot-5"), registry)
    wait_for(lambda: "bot-5" in httpx2.get(server.url + "/partials/live_track").text, 1.5)


def test_no_temporary_files_left_by_writes(registry: Path) -> None:
    for n in range(20):
        register_live_session_run(session(f"bot-{n}"), registry)
    assert all(name.endswith(".json") for name in os.listdir(registry))


def test_a_session_turns_stale_on_an_open_page_without_any_registry_change(
    serve: Callable[..., RunningServer], registry: Path
) -> None:
    beat = datetime.now(timezone.utc).replace(tzinfo=None)
    register_live_session_run(session("bot-beating", updated_at=beat), registry)
    register_live_session_run(session("bot-paper", mode="paper", updated_at=beat), registry)
    server = serve(stale_after_seconds=2)
    stream = EventStream(server.url)
    try:
        stream.next("hello", timeout=5)
        before = {p.name: p.stat().st_mtime_ns for p in registry.iterdir()}
        update = stream.next("update", timeout=20)  # the server's own clock, nothing else
        assert {p.name: p.stat().st_mtime_ns for p in registry.iterdir()} == before
    finally:
        stream.close()
    # Both are announced; the page notifies about the real-money one (see live-track.js).
    notices = sorted((n["session_id"], n["real_money"]) for n in update["stale"])
    assert notices == [("bot-beating", True), ("bot-paper", False)]
    rows = {
        s["session_id"]: s for s in httpx2.get(server.url + "/api/live_track").json()["sessions"]
    }
    assert rows["bot-beating"]["stale"] is True and rows["bot-paper"]["stale"] is True
    assert rows["bot-running"]["stale"] is False  # no heartbeats: liveness unknown
