"""A real Live-Track server in a subprocess on a free loopback port, and clients that measure it."""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx2

from src.experiments.registry_files import REGISTRY_DIR_ENV

PROJECT_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p50 of [1, 2, 3, 4] is 2, p99 of 100 values the 99th)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered) - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def rss_kib(pid: int, field: str = "VmRSS") -> int | None:
    """Resident memory of one process in KiB, from /proc (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def child_pids(pid: int) -> list[int]:
    children: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
                children += [int(p) for p in f.read().split()]
    return children


def tree_rss_kib(pid: int) -> int:
    """RSS of a process and its direct children (the parallel loader's workers)."""
    return sum(rss_kib(p) or 0 for p in [pid, *child_pids(pid)])


def terminate(process: subprocess.Popen[bytes] | None) -> None:
    """End a child politely (SIGTERM, as a service manager does), by force after 10 s."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class ServerProcess:
    """``python -m uvicorn src.webui.app:app`` over one registry, one worker, loopback only."""

    def __init__(
        self,
        registry: Path,
        extra_env: dict[str, str] | None = None,
        app: str = "src.webui.app:app",
        port: int | None = None,
    ) -> None:
        self.registry = registry
        self.port = port or free_port()  # a port of its own, or the one a crashed server had
        self.url = f"http://{HOST}:{self.port}"
        self._log_dir = tempfile.TemporaryDirectory(prefix="live-track-bench-")
        self.log_path = Path(self._log_dir.name) / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVE_TRACK_")}
        env[REGISTRY_DIR_ENV] = str(registry)
        env.update(extra_env or {})
        self.command = [
            sys.executable, "-m", "uvicorn", app,
            "--host", HOST, "--port", str(self.port),
        ]  # fmt: skip
        # The log goes to a file: an unread pipe would fill up and block the server.
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            self.command, cwd=PROJECT_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def wait_answering(self, timeout: float = 30.0) -> float:
        """Poll /api/health until it answers 200; return seconds since spawn."""
        deadline = time.perf_counter() + timeout
        # Cheap attempts (a bare connect) until the port listens, then one
        # request: an HTTP client per attempt (TLS context and all) is a
        # core's worth of work at this rate, taken from the server under test.
        with httpx2.Client(base_url=self.url, timeout=2) as client:
            while time.perf_counter() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"server exited with {self.process.returncode}:\n{self.log()}"
                    )
                try:
                    with socket.create_connection((HOST, self.port), timeout=2):
                        pass
                    if client.get("/api/health").status_code == 200:
                        return time.perf_counter() - self.started
                except (OSError, httpx2.TransportError):
                    pass
                time.sleep(0.01)
        raise RuntimeError(f"server did not answer within {timeout} s:\n{self.log()}")

    def log(self, tail: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_bytes()[-tail:].decode(errors="replace")
        return ""

    def rss_mib(self, field: str = "VmRSS") -> float:
        kib = rss_kib(self.pid, field)
        return float("nan") if kib is None else kib / 1024

    def stop(self) -> None:
        terminate(self.process)
        self._log.close()
        self._log_dir.cleanup()


def wait_loaded(client: httpx2.Client, timeout: float) -> float:
    """Poll the page's JSON twin until the index says it is loaded; return when (perf_counter)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        response = client.get("/api/live_track", params={"limit": 1})
        if response.status_code == 200 and response.json()["index"]["loaded"]:
            return time.perf_counter()
        time.sleep(0.05)
    raise RuntimeError(f"index not loaded within {timeout} s")


class EventStreamRefused(RuntimeError):
    """The server answered the event stream request with something else."""


def open_event_stream(port: int, timeout: float) -> tuple[socket.socket, IO[bytes]]:
    """Ask for /api/live_sessions/events as a browser tab does; the socket and its
    reader, positioned at the stream's first chunk."""
    sock = socket.create_connection((HOST, port), timeout=timeout)
    try:
        request = f"GET /api/live_sessions/events HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n"
        sock.sendall(request.encode())
        reader = sock.makefile("rb")
        status = reader.readline().decode(errors="replace")
        headers = []
        while (line := reader.readline()) not in (b"\r\n", b""):
            headers.append(line.decode().lower())
        if " 200 " not in status or not any("text/event-stream" in h for h in headers):
            raise EventStreamRefused(f"event stream refused: {status.strip()}")
    except BaseException:
        sock.close()
        raise
    sock.settimeout(None)  # keep-alives come every 15 s; closing wakes the reader
    return sock, reader


def stream_events(reader: IO[bytes]) -> Iterator[tuple[str, Any]]:
    """The named events of a chunked text/event-stream body, as they arrive."""
    buffer = b""
    while size_line := reader.readline():  # chunked transfer encoding
        size = int(size_line.strip() or b"0", 16)
        if size == 0:
            return
        buffer += reader.read(size)
        reader.readline()
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            fields = dict(
                line.split(": ", 1) for line in block.decode().splitlines() if ": " in line
            )
            if "event" in fields:
                yield fields["event"], json.loads(fields["data"])


class EventStream:
    """One open tab: reads /api/live_sessions/events over a raw socket in a thread."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.events: list[tuple[float, str, dict[str, Any]]] = []
        self.error: str | None = None
        self.ended = False
        self._hello: queue.Queue[bool] = queue.Queue()
        self._sock, self._file = open_event_stream(port, timeout)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self._hello.get(timeout=timeout):
            raise RuntimeError(f"no hello on the event stream: {self.error}")

    def _read(self) -> None:
        try:
            for name, data in stream_events(self._file):
                self.events.append((time.perf_counter(), name, data))
                if name == "hello":
                    self._hello.put(True)
        except (OSError, ValueError) as exc:
            if not self.ended:
                self.error = f"{type(exc).__name__}: {exc}"
        if not self.ended and self.error is None:
            self.error = "stream ended by the server"
        self._hello.put(False)

    def updates(self) -> list[float]:
        return [at for at, name, _ in self.events if name == "update"]

    def close(self) -> None:
        self.ended = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        self._file.close()
        self._sock.close()
