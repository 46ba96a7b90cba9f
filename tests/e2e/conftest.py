"""Fixtures for the browser tests: headless Chromium and the real server on a free port.

Every server is the real thing: a registry written by the ``live-track demo``
command and ``uvicorn src.webui.app:app`` in a subprocess, found through
``PEAK_TRADE_LIVE_SESSIONS_DIR`` exactly as in production.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e._support import LiveServer, PageProblems

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOT_DIR = Path(__file__).resolve().parent / "screenshots"
SERVER_START_TIMEOUT = 20.0
DEMO_COUNT = 24


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The system Chromium; its absence fails on CI and skips elsewhere."""
    if not CHROMIUM.exists():
        reason = f"browser tests need Chromium at {CHROMIUM} (Debian: apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium: Path) -> Iterator[Browser]:
    """One headless Chromium for the whole run (Playwright's sync API owns its loop)."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    return SCREENSHOT_DIR


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_demo_registry(registry: Path, count: int) -> None:
    if count == 0:
        registry.mkdir(parents=True)
        return
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "src.cli",
            "demo",
            "--registry",
            str(registry),
            "--count",
            str(count),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"live-track demo failed ({result.returncode}):\n{result.stderr}")


def _server_env(registry: Path) -> dict[str, str]:
    # A developer's LIVE_TRACK_* settings (auth token, ...) must not leak into the test server.
    env = {key: value for key, value in os.environ.items() if not key.startswith("LIVE_TRACK_")}
    env["PEAK_TRADE_LIVE_SESSIONS_DIR"] = str(registry)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _wait_until_healthy(server: LiveServer) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"server exited with {server.process.returncode} before answering:\n"
                + server.stderr()
            )
        try:
            with urllib.request.urlopen(server.url("/api/health"), timeout=1) as response:
                if response.status == 200:
                    return
                last_error = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(exc)
        time.sleep(0.1)
    pytest.fail(
        f"server did not answer /api/health within {SERVER_START_TIMEOUT:.0f} s "
        f"({last_error}):\n{server.stderr()}"
    )


def _stop(server: LiveServer) -> None:
    process = server.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture
def live_server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., LiveServer]]:
    """Start real servers: ``live_server()`` over 24 demo sessions, ``count=0`` for none."""
    servers: list[LiveServer] = []
    request.node.live_servers = servers  # read by pytest_runtest_makereport below

    def start(count: int = DEMO_COUNT, write: Callable[[Path], object] | None = None) -> LiveServer:
        home = tmp_path / f"server{len(servers)}"
        home.mkdir()
        registry = home / "registry"
        if write is None:
            _write_demo_registry(registry, count)
        else:  # a registry the test writes itself (e.g. 20,000 sessions, fast)
            write(registry)
        port = _free_port()
        stderr_path = home / "server-stderr.log"
        with (
            open(home / "server-stdout.log", "wb") as stdout,
            open(stderr_path, "wb") as stderr,
        ):
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "src.webui.app:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                cwd=REPO_ROOT,
                env=_server_env(registry),
                stdout=stdout,
                stderr=stderr,
            )
        server = LiveServer(f"http://127.0.0.1:{port}", registry, stderr_path, process)
        servers.append(server)
        _wait_until_healthy(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            _stop(server)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach each server's stderr to a failing test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for number, server in enumerate(getattr(item, "live_servers", [])):
            report.sections.append((f"live server {number} stderr", server.stderr()))


@pytest.fixture
def keep_screenshot(screenshot_dir: Path) -> Callable[[Page, str], Path]:
    def save(page: Page, name: str) -> Path:
        path = screenshot_dir / name
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
