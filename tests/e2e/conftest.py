"""Fixtures for the browser tests: headless Chromium and the real server on a free port.

Every server is the real thing: a registry written by the ``live-track demo``
command and ``uvicorn src.webui.app:app`` in a subprocess, found through
``PEAK_TRADE_LIVE_SESSIONS_DIR`` exactly as in production.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e._support import PageProblems
from tests.support import LiveServer

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOT_DIR = Path(__file__).resolve().parent / "screenshots"
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


def _write_demo_registry(registry: Path, count: int) -> None:
    if count == 0:
        registry.mkdir(parents=True)
        return
    result = subprocess.run(
        [sys.executable, "-m", "src.cli", "demo", "--registry", str(registry),
         "--count", str(count)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.fail(f"live-track demo failed ({result.returncode}):\n{result.stderr}")


@pytest.fixture
def live_server(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> Callable[..., LiveServer]:
    """``live_server()``: a real server over 24 demo sessions (``count=0`` for none),
    written by the ``live-track demo`` command, or over a given ``registry``;
    other options as for the suite's ``live_server``."""
    homes = iter(range(1000))

    def start(
        count: int = DEMO_COUNT,
        registry: Path | None = None,
        write: Callable[[Path], object] | None = None,
        **options: Any,
    ) -> LiveServer:
        if registry is None:
            registry = tmp_path / f"server{next(homes)}" / "registry"
            if write is None:
                _write_demo_registry(registry, count)
            else:  # a registry the test writes itself (e.g. 20,000 sessions, fast)
                write(registry)
        return live_server(registry, **options)

    return start


@pytest.fixture
def keep_screenshot(screenshot_dir: Path) -> Callable[[Page, str], Path]:
    def save(page: Page, name: str) -> Path:
        path = screenshot_dir / name
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
