"""The dashboard process never writes: not to the registry, not to the checkout, nowhere.

Tests run as root, where file permissions do not stop writes, so the proof is
stronger than a read-only mount: the real server runs under a Python audit
hook that records every open for writing and every file-system mutation, while
a client walks every page, the API, the exports and the event stream.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx2

from src.experiments.live_session_registry import register_live_session_run
from tests.support import LiveServer, make_session

REPO = Path(__file__).resolve().parents[1]

AUDITED_SERVER = textwrap.dedent(
    """
    import os, sys

    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    MUTATIONS = {"os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.truncate",
                 "os.chmod", "os.chown", "os.link", "os.symlink", "os.utime",
                 "shutil.rmtree", "shutil.move", "shutil.copyfile"}

    def report(event, args):
        if event == "open":
            path, mode, flags = args
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & WRITE_FLAGS)
            if writes and path not in ("/dev/null", "/dev/tty"):
                os.write(2, f"WRITE-ATTEMPT open {path!r} {mode!r} {flags!r}\\n".encode())
        elif event in MUTATIONS:
            os.write(2, f"WRITE-ATTEMPT {event} {args!r}\\n".encode())

    sys.addaudithook(report)
    import uvicorn
    uvicorn.run("src.webui.app:app", host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)


def test_server_writes_nothing_anywhere(
    tmp_path: Path, live_server: Callable[..., LiveServer]
) -> None:
    registry = tmp_path / "live_sessions"
    for n, status in enumerate(["completed", "failed", "started"]):
        record = make_session(
            f"ro_{n}",
            mode="paper",
            status=status,
            started_at=datetime(2026, 11, 20, 8 + n),
            metrics={"realized_pnl": 5.0 - n},
            error="boom" if status == "failed" else None,
        )
        register_live_session_run(record, registry)
    (registry / "corrupt.json").write_text("{")
    registry.chmod(stat.S_IRUSR | stat.S_IXUSR)  # as read-only as root allows
    before = {p.name: p.stat().st_mtime_ns for p in registry.iterdir()}

    cache = tmp_path / "user-cache"  # the head cache's only home ($XDG_CACHE_HOME)
    server = live_server(
        registry,
        env={"PYTHONDONTWRITEBYTECODE": "1", "XDG_CACHE_HOME": str(cache)},
        command=[sys.executable, "-c", AUDITED_SERVER, "{port}"],
        log_path=tmp_path / "audit.log",  # outside the registry
    )
    try:
        with httpx2.Client(base_url=server.base_url) as client:
            for path in (
                "/",
                "/?mode=paper&status=failed",
                "/session/ro_1",
                "/partials/live_track",
                "/partials/session/ro_0",
                "/api/live_sessions",
                "/api/live_sessions/ro_2",
                "/api/live_sessions/stats",
                "/api/live_sessions.csv",
                "/api/live_sessions.json",
                "/api/live_track",
                "/docs",
                "/openapi.json",
                "/static/live-track.css",
                "/session/missing",
            ):
                assert client.get(path).status_code in (200, 404), path
            with client.stream("GET", "/api/live_sessions/events") as events:
                first = next(events.iter_lines())
                assert first.startswith("retry:")
    finally:
        server.stop()
    attempts = [line for line in server.log().splitlines() if line.startswith("WRITE-ATTEMPT")]
    # The one thing written: the head cache (and its directory) in the user's cache.
    assert [line for line in attempts if repr(str(cache)).strip("'") not in line] == []
    assert [p.suffix for p in (cache / "peak-trade-live-track").iterdir()] == [".heads"]
    assert {p.name: p.stat().st_mtime_ns for p in registry.iterdir()} == before


def test_audit_hook_would_catch_a_write(tmp_path: Path) -> None:
    """The detector itself works: a write under the same hook is reported."""
    script = AUDITED_SERVER.split("import uvicorn")[0] + textwrap.dedent(
        f"""
        with open({json.dumps(str(tmp_path / "x.txt"))}, "w") as handle:
            handle.write("x")
        os.replace({json.dumps(str(tmp_path / "x.txt"))}, {json.dumps(str(tmp_path / "y.txt"))})
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "0"], capture_output=True, text=True, timeout=30
    )
    assert "WRITE-ATTEMPT open" in result.stderr
    assert "WRITE-ATTEMPT os.rename" in result.stderr
