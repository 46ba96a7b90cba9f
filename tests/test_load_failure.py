"""A first index load that crashes: logged, shown, retried, and no hang at shutdown.

The first load runs in a background thread; the server's loops wait for it.
A crash there used to leave them waiting for a day in executor threads, which
the interpreter joins at exit: Ctrl-C and SIGTERM then hung the server.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from src.experiments import registry_index
from src.experiments.parallel_load import read_in_batches
from src.experiments.registry_index import RegistryIndex
from src.experiments.session_head import order_key
from src.webui.app import create_app
from src.webui.settings import Settings
from tests.support import DATA_REGISTRY, LiveServer, settings_env, wait_until

INJECTED = "injected first-load failure"
# The real server, with the record parser failing while a flag file exists: a bug
# in reading the registry, which the index cannot foresee.
FAILING_SERVER = f"""
import sys
from pathlib import Path

import uvicorn

from src.experiments import registry_index

flag = Path(sys.argv[2])
read = registry_index.read_in_batches

def failing_while_flagged(*args, **kwargs):
    if flag.exists():
        raise RuntimeError({INJECTED!r})
    return read(*args, **kwargs)

registry_index.read_in_batches = failing_while_flagged
uvicorn.run("src.webui.app:app", host="127.0.0.1", port=int(sys.argv[1]))
"""
SHUTDOWN_SECONDS = 10.0  # uvicorn itself exits in well under a second


def failing_read(*args: Any, **kwargs: Any) -> Iterator[Any]:
    raise RuntimeError(INJECTED)
    yield  # a generator, like the real read_in_batches


@pytest.fixture
def flagged_server(registry_dir: Path, tmp_path: Path) -> Iterator[tuple[LiveServer, Path]]:
    """A real server whose first load fails until the test removes the flag file."""
    flag = tmp_path / "fail-reading"
    flag.touch()
    server = LiveServer(
        registry_dir,
        command=[sys.executable, "-c", FAILING_SERVER, "{port}", str(flag)],
        env=settings_env(reconcile_seconds=0.5),
    )
    try:
        server.start()
        wait_until(lambda: INJECTED in server.log(), what="the failed load in the log")
        yield server, flag
    finally:
        server.kill()


def live_track(server: LiveServer) -> dict[str, Any]:
    view: dict[str, Any] = httpx2.get(server.url("/api/live_track"), timeout=10).json()
    return view


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_server_exits_promptly_after_a_failed_first_load(
    flagged_server: tuple[LiveServer, Path], signum: signal.Signals
) -> None:
    server, _ = flagged_server
    assert server.process is not None
    server.process.send_signal(signum)
    try:
        server.process.wait(timeout=SHUTDOWN_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"no exit within {SHUTDOWN_SECONDS} s of {signum.name}:\n{server.log()}")
    assert "Finished server process" in server.log()


def test_failed_first_load_is_logged_with_its_traceback(
    flagged_server: tuple[LiveServer, Path],
) -> None:
    server, _ = flagged_server
    log = server.log()
    assert "Loading the live-session registry" in log
    assert "Traceback (most recent call last)" in log
    assert f"RuntimeError: {INJECTED}" in log


def test_the_next_reconcile_retries_the_failed_load(
    flagged_server: tuple[LiveServer, Path],
) -> None:
    server, flag = flagged_server
    assert live_track(server)["total_sessions"] == 0
    flag.unlink()
    wait_until(lambda: live_track(server)["index"]["loaded"], what="the index loaded")
    view = live_track(server)
    assert view["total_sessions"] == len(list(DATA_REGISTRY.iterdir()))
    assert view["index"]["unreadable_since"] is None
    assert "Registry nicht lesbar" not in httpx2.get(server.url("/"), timeout=10).text


def test_page_and_api_say_the_registry_could_not_be_read(
    registry_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry_index, "read_in_batches", failing_read)
    app = create_app(Settings(registry_dir=registry_dir, watch=False))
    with TestClient(app) as client:
        index: RegistryIndex = app.state.index
        wait_until(lambda: index.snapshot().unreadable_since is not None, what="the failure")
        view = client.get("/api/live_track").json()
        assert view["index"]["loaded"] is False
        assert view["index"]["unreadable_since"] is not None
        since = index.snapshot().unreadable_since
        assert since is not None
        page = client.get("/").text
        assert (
            f"Registry nicht lesbar seit {since:%d.%m.%Y %H:%M} UTC – noch nichts gelesen, "
            "neuer Versuch folgt automatisch." in page
        )
        assert "Index wird geladen" not in page  # not between two tries
        assert "Keine Live-Sessions gefunden" not in page  # not an empty registry


def test_a_failed_first_load_wakes_its_waiters(
    registry_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    index = RegistryIndex(registry_dir)
    monkeypatch.setattr(registry_index, "read_in_batches", failing_read)
    with caplog.at_level(logging.ERROR, logger=registry_index.__name__):
        index.start_loading()
        started = time.monotonic()
        assert index.wait_loaded(20) is False
        assert time.monotonic() - started < 10  # woken by the failure, not the timeout
        assert index.load_failed
        wait_until(
            lambda: any(r.exc_info and INJECTED in str(r.exc_info[1]) for r in caplog.records),
            what="the failure logged with its exception",
        )
    monkeypatch.undo()
    index.reconcile()
    assert index.wait_loaded(0) is True
    assert len(index.snapshot().sessions) == len(list(DATA_REGISTRY.iterdir()))


def test_a_load_failing_half_way_leaves_nothing_half_read(
    registry_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files read before the crash are dropped, so the retry reads them again.

    The first load files its heads unsorted and sorts once at the end; kept
    after a crash, they would be missing from the order a smaller retry keeps.
    """
    read = read_in_batches

    def crash_after_first_batch(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for batch in read(*args, **kwargs):
            yield batch
            raise RuntimeError(INJECTED)

    monkeypatch.setattr(registry_index, "BULK_RESORT", 0)  # the first load's path, small
    monkeypatch.setattr(registry_index, "read_in_batches", crash_after_first_batch)
    index = RegistryIndex(registry_dir)
    with pytest.raises(RuntimeError, match=INJECTED):
        index.reconcile()
    assert index.snapshot().sessions == ()
    monkeypatch.setattr(registry_index, "read_in_batches", read)
    index.reconcile()
    sessions = index.snapshot().sessions
    assert len(sessions) == len(list(registry_dir.iterdir()))
    assert list(sessions) == sorted(sessions, key=order_key, reverse=True)


def test_a_retry_that_crashes_after_the_watch_added_a_file_also_starts_over(
    registry_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watch may file a head between a crashed first load and its retry; a
    retry crashing half way must still leave nothing half read (review finding)."""
    read = read_in_batches

    def crash_after_first_batch(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for batch in read(*args, **kwargs):
            yield batch
            raise RuntimeError(INJECTED)

    monkeypatch.setattr(registry_index, "BULK_RESORT", 0)
    monkeypatch.setattr(registry_index, "read_in_batches", failing_read)
    index = RegistryIndex(registry_dir)
    with pytest.raises(RuntimeError, match=INJECTED):
        index.reconcile()
    monkeypatch.setattr(registry_index, "read_in_batches", read)
    first = sorted(path.name for path in registry_dir.iterdir())[0]
    index.refresh_names([first])  # the watch saw it change
    monkeypatch.setattr(registry_index, "read_in_batches", crash_after_first_batch)
    with pytest.raises(RuntimeError, match=INJECTED):
        index.reconcile()
    monkeypatch.setattr(registry_index, "read_in_batches", read)
    index.reconcile()

    sessions = index.snapshot().sessions
    assert index.snapshot().loaded
    assert len(sessions) == len(list(registry_dir.iterdir()))
    assert list(sessions) == sorted(sessions, key=order_key, reverse=True)
