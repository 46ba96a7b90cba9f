"""Fixtures shared by the whole test suite (the helpers behind them: tests/support.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis.core
import pytest
from fastapi.testclient import TestClient
from hypothesis.vendor import pretty

from src.webui.app import create_app
from src.webui.settings import Settings
from tests.support import DATA_REGISTRY, LiveServer

# Let Starlette's TestClient (``Host: testserver``) through the Host check, also
# for apps built at import time (tests/test_fuzz.py). The default allow-list
# (localhost, 127.0.0.1, [::1]) stays as it is; tests of the Host check itself
# remove this variable.
os.environ["LIVE_TRACK_ALLOWED_HOSTS"] = "testserver"

# The throwaway PostgreSQL server fixtures (pg_server, pg_url, own_pg_server).
pytest_plugins = ["tests.pg_support"]


@pytest.fixture(scope="session", autouse=True)
def readable_failing_examples() -> Iterator[None]:
    """Print Hypothesis' failing examples in every test module.

    Schemathesis' pytest plugin (loaded at startup) swaps Hypothesis'
    RepresentationPrinter for one that prints nothing, in the whole process.
    """
    patched = hypothesis.core.RepresentationPrinter
    hypothesis.core.RepresentationPrinter = pretty.RepresentationPrinter  # type: ignore[misc]
    yield
    hypothesis.core.RepresentationPrinter = patched  # type: ignore[misc]


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """An empty registry directory in the test's own temporary directory."""
    directory = tmp_path / "live_sessions"
    directory.mkdir()
    return directory


@pytest.fixture
def registry_dir(tmp_path: Path) -> Path:
    """A registry holding copies of the real-shaped files in tests/data/registry."""
    target = tmp_path / "live_sessions"
    shutil.copytree(DATA_REGISTRY, target)
    return target


@pytest.fixture
def app_client() -> Iterator[Callable[..., TestClient]]:
    """``app_client(registry, **settings)``: the app in-process, lifespan included."""
    opened: list[TestClient] = []

    def open_client(registry: Path, **settings: Any) -> TestClient:
        settings.setdefault("watch", False)
        client = TestClient(create_app(Settings(registry_dir=registry, **settings)))
        opened.append(client.__enter__())
        return client

    yield open_client
    for client in reversed(opened):
        client.__exit__(None, None, None)


@pytest.fixture
def live_server(request: pytest.FixtureRequest) -> Iterator[Callable[..., LiveServer]]:
    """``live_server(registry, env=..., command=...)``: real servers, stopped at the end.

    A failing test's report carries each server's log.
    """
    servers: list[LiveServer] = []
    request.node.live_servers = servers  # read by pytest_runtest_makereport below

    def start(registry: Path, **options: Any) -> LiveServer:
        server = LiveServer(registry, **options)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach each live server's log to a failing test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for number, server in enumerate(getattr(item, "live_servers", [])):
            report.sections.append((f"live server {number} log", server.log()))


@pytest.fixture(scope="session", autouse=True)
def private_head_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the head cache (src/experiments/head_cache.py) of test registries out of
    the user's ~/.cache; servers the tests start inherit the variable."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield
