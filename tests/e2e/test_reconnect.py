"""Killing the server loses nothing; the open page notices and reconnects by itself."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Browser, expect

from src.experiments.live_session_registry import register_live_session_run
from tests.e2e._support import TRADER_CONTEXT, new_session, unique_id

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]


class Server:
    """A dashboard process that can be killed and started again on the same port."""

    def __init__(self, registry: Path, log: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.registry = registry
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVE_TRACK_")}
        env["PEAK_TRADE_LIVE_SESSIONS_DIR"] = str(self.registry)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "src.webui.app:app",
                 "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=REPO, env=env, stdout=log, stderr=log,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx2.get(self.url + "/api/health").status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)  # no goodbye: a crash, not a shutdown
        self.process.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    registry = tmp_path / "registry"
    register_live_session_run(new_session(unique_id("before"), mode="paper"), registry)
    running = Server(registry, tmp_path / "server.log")
    running.start()
    yield running
    if running.process and running.process.poll() is None:
        running.process.terminate()
        running.process.wait(timeout=10)


def snapshot_files(registry: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in registry.iterdir()}


def test_page_reconnects_after_a_crash_and_catches_up(browser: Browser, server: Server) -> None:
    page = browser.new_page(**TRADER_CONTEXT, viewport={"width": 1366, "height": 900})
    page.goto(server.url + "/")
    indicator = page.locator("#live-indicator")
    expect(indicator).to_have_attribute("data-state", "live", timeout=5000)
    page.evaluate("window.__marker = 'no reload'")

    files = snapshot_files(server.registry)
    server.kill()
    assert snapshot_files(server.registry) == files  # the crash touched nothing
    expect(indicator).to_have_attribute("data-state", "offline", timeout=8000)
    expect(indicator).to_contain_text("offline")

    written_while_down = unique_id("while_down")
    register_live_session_run(new_session(written_while_down, mode="testnet"), server.registry)
    server.start()
    expect(indicator).to_have_attribute("data-state", "live", timeout=10000)
    row = page.locator(f"tr.session-row[data-session-id='{written_while_down}']")
    expect(row).to_have_count(1, timeout=5000)
    assert page.evaluate("window.__marker") == "no reload"
