"""Load with faults: writers, a deleting process, a crashed and restarted server.

Clients hold the page, the API and the event stream open while a writer adds
and rewrites sessions and another process deletes some. Then the server is
killed (SIGKILL, no shutdown) and started again on the same port. Nothing may
answer 5xx, no event stream may drop while the server is up, the crash must
not touch the registry, and at the end every session on disk is shown.
"""

from __future__ import annotations

import collections
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx2
import pytest

from benchmarks.generate import write_registry
from benchmarks.reference import scan_registry
from src.experiments.demo_sessions import iter_demo_records
from src.experiments.live_session_registry import register_live_session_run
from tests.support import EventStream, LiveServer, file_stamps, wait_until

pytestmark = pytest.mark.slow

SIZE = 1500
PATHS = ("/", "/api/live_sessions?limit=10", "/api/live_sessions/stats", "/partials/live_track")
DELETER = """
import os, random, sys, time
directory, seconds = sys.argv[1], float(sys.argv[2])
rng = random.Random(7)
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    names = [n for n in os.listdir(directory) if n.endswith(".json")]
    if names:
        os.unlink(os.path.join(directory, rng.choice(names)))
    time.sleep(0.2)
"""


class Clients:
    """HTTP clients that keep asking, counting every answer by kind."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: collections.Counter[int] = collections.Counter()
        self.unreachable = 0  # connection refused while the server was down
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._ask, args=(path,), daemon=True) for path in PATHS
        ]
        for thread in self.threads:
            thread.start()

    def _ask(self, path: str) -> None:
        with httpx2.Client(base_url=self.url, timeout=10) as client:
            while not self.stop.is_set():
                try:
                    self.answers[client.get(path).status_code] += 1
                except httpx2.TransportError:
                    self.unreachable += 1
                    time.sleep(0.05)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)


class Writer:
    """A bot: every 100 ms a new running session, then the same file rewritten as ended."""

    def __init__(self, registry: Path) -> None:
        self.registry = registry
        self.running = threading.Event()
        self.stop = threading.Event()
        self._writing = threading.Lock()  # held for one session's two writes
        self.thread = threading.Thread(target=self._write, daemon=True)
        self.thread.start()

    def _write(self) -> None:
        now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
        for n, record in enumerate(iter_demo_records(400, seed=99, now=now)):
            self.running.wait()
            with self._writing:
                if self.stop.is_set():
                    return
                if not self.running.is_set():
                    continue  # paused while waiting for the lock
                start = replace(
                    record,
                    session_id=f"fault_{n:04d}",
                    status="started",
                    started_at=now + timedelta(seconds=n),
                    finished_at=None,
                    error=None,
                )
                register_live_session_run(start, self.registry)
                time.sleep(0.05)  # the bot's pace, not a wait for the server
                end = replace(
                    start, status="completed", finished_at=start.started_at + timedelta(1)
                )
                register_live_session_run(end, self.registry)
            time.sleep(0.05)

    def pause(self) -> None:
        """Stop writing; returns once a session being written is complete."""
        self.running.clear()
        with self._writing:
            pass

    def finish(self) -> None:
        self.stop.set()
        self.running.set()
        self.thread.join(timeout=10)


def loaded(server: LiveServer) -> bool:
    view = httpx2.get(server.url("/api/live_track?limit=1"), timeout=10).json()
    return bool(view["index"]["loaded"])


def shown_ids(server: LiveServer) -> set[str]:
    return {s["session_id"] for s in httpx2.get(server.url("/api/live_sessions.json")).json()}


def test_load_with_deletions_and_a_crash_loses_nothing(
    tmp_path: Path, live_server: Callable[..., LiveServer]
) -> None:
    registry = tmp_path / "registry"
    write_registry(registry, SIZE)
    server = live_server(registry)
    wait_until(lambda: loaded(server), what="the first load")
    clients = Clients(server.base_url)
    streams = [EventStream(server.port) for _ in range(3)]
    for stream in streams:
        stream.next("hello")
    writer = Writer(registry)
    writer.running.set()
    deleter = subprocess.Popen([sys.executable, "-c", DELETER, str(registry), "3"])
    deleter.wait(timeout=15)
    wait_until(lambda: all(s.updates() >= 3 for s in streams), what="3 updates on every tab")
    assert [s.error for s in streams] == [None, None, None]  # none dropped while up

    # The crash: the writer paused (after its current write), so the registry
    # can be compared across it.
    writer.pause()
    before = file_stamps(registry)
    server.kill()
    assert file_stamps(registry) == before
    wait_until(lambda: clients.unreachable > 0, what="clients to find the server gone")
    for stream in streams:
        stream.close()

    server.start()  # the same port, as a supervisor would restart it
    reconnected = [EventStream(server.port) for _ in range(3)]  # tabs reconnect
    for stream in reconnected:
        stream.next("hello")
    writer.running.set()
    wait_until(lambda: all(s.updates() >= 3 for s in reconnected), what="updates after restart")
    writer.finish()
    clients.close()
    assert [s.error for s in reconnected] == [None, None, None]
    for stream in reconnected:
        stream.close()

    on_disk = {stored.record.session_id for stored in scan_registry(registry).records}
    wait_until(lambda: shown_ids(server) == on_disk, what="the index to equal the directory")
    assert SIZE - 20 < len(on_disk) < SIZE + 400  # some deleted, some added
    assert clients.answers and all(code == 200 for code in clients.answers), clients.answers
    assert "Traceback" not in server.log()
