"""The one test harness: records, a live server on a free port, an event-stream reader,
and a condition wait. Every test module takes these from here (fixtures in conftest.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx2

from benchmarks.server import EventStreamRefused, open_event_stream, stream_events, terminate
from src.experiments.live_session_record import LiveSessionRecord
from src.experiments.registry_files import REGISTRY_DIR_ENV

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
SERVER_START_TIMEOUT = 30.0
# The real-shaped files in tests/data/registry (the spec's example among them).
DATA_REGISTRY = REPO_ROOT / "tests" / "data" / "registry"
SPEC_EXAMPLE = "20251208T025243_live_session_shadow_smoke_test_20251208_01.json"
# Their ids, newest activity first (the testnet one is 09:15 UTC).
PAPER_ID = "session_20251209_paper_c4d5e6"
TESTNET_ID = "session_20251209_testnet_7f3e2a"
SHADOW_ID = "smoke_test_20251208_01"
LIVE_ID = "session_20251207_live_0a1b2c"
NEWEST_FIRST = [PAPER_ID, TESTNET_ID, SHADOW_ID, LIVE_ID]


def utc_now() -> datetime:
    """Now as the writers store it: naive UTC, whole seconds."""
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


# --- Records ------------------------------------------------------------------------


def make_session(session_id: str = "session_1", **fields: Any) -> LiveSessionRecord:
    """The one record factory: a completed shadow session unless fields say otherwise.

    ``mode`` alone also sets the matching ``run_type``; a ``status`` of
    ``started`` clears ``finished_at`` unless it is given.
    """
    started = fields.pop("started_at", datetime(2025, 12, 8, 2, 52, 43))
    mode = fields.pop("mode", "shadow")
    status = fields.pop("status", "completed")
    values: dict[str, Any] = {
        "session_id": session_id,
        "run_id": None,
        "run_type": f"live_session_{mode}",
        "mode": mode,
        "env_name": "kraken_futures_testnet",
        "symbol": "BTC/USDT",
        "status": status,
        "started_at": started,
        "finished_at": None if status == "started" else started + timedelta(hours=1),
        "metrics": {"realized_pnl": 150.0, "max_drawdown": 0.05, "num_orders": 10},
        "config": {"strategy_name": "ma_crossover", "timeframe": "15m"},
        "cli_args": ["python", "scripts/run_live_session.py", "--mode", mode],
        "created_at": started,
    }
    values.update(fields)
    return LiveSessionRecord(**values)


def original_record(
    session_id: str,
    *,
    mode: str = "shadow",
    status: str = "started",
    started_at: datetime = datetime(2026, 11, 24, 8, 0, 0, 123456),
    finished_at: datetime | None = None,
    metrics: dict[str, Any] | None = None,
    **more: Any,
) -> dict[str, Any]:
    """A record as the original Peak_Trade writers build it: naive UTC times with
    microseconds, ``strategy_tier`` (mostly null), no heartbeat key."""
    env_name = "bounded_pilot_kraken_live" if mode == "bounded_pilot" else f"{mode}_kraken_futures"
    data: dict[str, Any] = {
        "session_id": session_id,
        "run_id": None,
        "run_type": f"live_session_{mode}",
        "mode": mode,
        "env_name": env_name,
        "symbol": "BTC/USDT",
        "status": status,
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat() if finished_at else None,
        "config": {"strategy_name": "ma_crossover", "timeframe": "15m", "tags": ["core"]},
        "metrics": metrics if metrics is not None else {},
        "cli_args": ["python", "scripts/run_live_session.py", "--mode", mode],
        "error": None,
        "created_at": started_at.isoformat(),
        "strategy_tier": None,
    }
    data.update(more)
    return data


def write_like_original(directory: Path, data: dict[str, Any]) -> Path:
    """Write the way the original writers do: in place (not atomic), json.dump's
    defaults (NaN and Infinity as bare literals), the documented file name."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromisoformat(data["started_at"]).strftime("%Y%m%dT%H%M%S")
    safe = "".join("_" if char in "/: " else char for char in data["session_id"])
    path = directory / f"{stamp}_{data['run_type']}_{safe}.json"
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    return path


def file_stamps(directory: Path) -> dict[str, tuple[int, int]]:
    """Size and mtime of every file: equal before and after means nothing was written."""
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in directory.iterdir()}


# --- Waiting ---------------------------------------------------------------------------


def wait_until(check: Callable[[], object], timeout: float = 20.0, what: str = "") -> float:
    """Poll until ``check()`` is true; return how long it took. Never a fixed sleep:
    the timeout is generous, and timing claims belong in benchmarks/."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s: {what or check}")
        time.sleep(0.05)
    return time.monotonic() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# --- A live server ---------------------------------------------------------------------


def settings_env(**settings: object) -> dict[str, str]:
    """Settings as a user sets them: ``LIVE_TRACK_*`` variables (lists comma-separated)."""
    return {
        f"LIVE_TRACK_{key.upper()}": ",".join(value) if isinstance(value, tuple) else str(value)
        for key, value in settings.items()
    }


def live_track_serve(registry: Path) -> list[str]:
    """The command a user runs, ``live-track serve`` (as ``python -m src.cli``)."""
    return [
        sys.executable, "-m", "src.cli", "serve",
        "--registry", str(registry), "--port", "{port}",
    ]  # fmt: skip


class LiveServer:
    """The real dashboard in a subprocess on a free loopback port.

    By default ``python -m uvicorn src.webui.app:app``, configured the way a user
    configures it: through ``PEAK_TRADE_LIVE_SESSIONS_DIR`` and ``LIVE_TRACK_*``
    variables (a developer's own ``LIVE_TRACK_*`` settings never leak in).
    ``command`` may name another way to start it; ``{port}`` is filled in.
    """

    def __init__(
        self,
        registry: Path,
        *,
        env: dict[str, str] | None = None,
        command: Sequence[str] | None = None,
        port: int | None = None,
        log_path: Path | None = None,
        cwd: Path = REPO_ROOT,
    ) -> None:
        self.registry = registry
        self.cwd = cwd
        self.port = port or free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        # Nothing of the developer's: no LIVE_TRACK_* settings, no import path.
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("LIVE_TRACK_") and k not in ("PYTHONPATH", "PYTHONHOME")
        }
        self.env.update({REGISTRY_DIR_ENV: str(registry), "PYTHONUNBUFFERED": "1"})
        self.env.update(env or {})
        template = command or [
            sys.executable, "-m", "uvicorn", "src.webui.app:app",
            "--host", HOST, "--port", "{port}",
        ]  # fmt: skip
        self.command = [part.replace("{port}", str(self.port)) for part in template]
        self.log_path = log_path or registry.parent / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = SERVER_START_TIMEOUT) -> LiveServer:
        """Start the process and wait until /api/health answers."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # The log goes to a file: an unread pipe would fill up and block the server.
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not answer within {timeout} s:\n{self.log()}")
            time.sleep(0.05)
        return self

    def _healthy(self) -> bool:
        try:
            return httpx2.get(self.url("/api/health"), timeout=2).status_code == 200
        except httpx2.TransportError:
            return False

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        return ""

    stderr = log  # the browser tests' name for it

    def kill(self) -> None:
        """A crash, not a shutdown: no goodbye to open streams."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        terminate(self.process)

    def __enter__(self) -> LiveServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EventStream:
    """One open tab: reads /api/live_sessions/events over a raw socket in a thread."""

    def __init__(self, port: int, timeout: float = 20.0) -> None:
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.error: str | None = None
        self._closed = False
        try:
            self._sock, self._file = open_event_stream(port, timeout)
        except EventStreamRefused as exc:
            raise AssertionError(str(exc)) from None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in stream_events(self._file):
                self.seen.append(event)
                self.events.put(event)
        except (OSError, ValueError) as exc:
            if not self._closed:
                self.error = f"{type(exc).__name__}: {exc}"
        if not self._closed and self.error is None:
            self.error = "stream ended by the server"

    def next(self, name: str, timeout: float = 20.0) -> dict[str, Any]:
        """The next event of this name (others are skipped), within a generous timeout."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event_name, data = self.events.get(timeout=left)
            except queue.Empty:
                break
            if event_name == name:
                return data
        raise AssertionError(f"no {name!r} event within {timeout} s ({self.error or 'open'})")

    def updates(self) -> int:
        return sum(1 for name, _ in self.seen if name == "update")

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        if hasattr(self, "_thread"):
            self._thread.join(timeout=5)
        self._file.close()
        self._sock.close()


def http_scope(
    method: str, path: str, headers: list[tuple[bytes, bytes]], client: str = "127.0.0.1"
) -> dict[str, Any]:
    """An ASGI HTTP scope as uvicorn builds it, for tests that speak ASGI directly
    (a body that dribbles in, a stream that never ends: TestClient waits those out)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": (client, 5000),
        "server": ("127.0.0.1", 8000),
    }
