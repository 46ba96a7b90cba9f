"""Live updates against a real server: file watch, reconciliation and the event stream.

Every test waits on the condition it needs, with a generous timeout; how fast
updates arrive is measured in benchmarks/ (README, "Performance").
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx2
import pytest

from src.experiments.live_session_registry import LiveSessionRecord, register_live_session_run
from tests.support import EventStream, LiveServer, file_stamps, make_session, utc_now, wait_until

NOW = utc_now()


def session(session_id: str, **overrides: Any) -> LiveSessionRecord:
    """A live session that started three minutes ago and has not ended."""
    fields: dict[str, Any] = {
        "mode": "live",
        "env_name": "kraken_spot",
        "status": "started",
        "started_at": NOW - timedelta(minutes=3),
        "metrics": {"realized_pnl": -42.5},
    }
    return make_session(session_id, **{**fields, **overrides})


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    directory = tmp_path / "live_sessions"
    register_live_session_run(session("bot-running"), directory)
    return directory


@pytest.fixture
def serve(registry: Path, live_server: Callable[..., LiveServer]) -> Callable[..., LiveServer]:
    """``serve(stale_after_seconds=2, ...)``: a real server with these LIVE_TRACK_* settings."""

    def start(**settings: Any) -> LiveServer:
        env = {f"LIVE_TRACK_{key.upper()}": str(value) for key, value in settings.items()}
        return live_server(registry, env=env)

    return start


def api_ids(server: LiveServer) -> list[str]:
    return [s["session_id"] for s in httpx2.get(server.url("/api/live_sessions?limit=100")).json()]


def detail(server: LiveServer, session_id: str) -> dict[str, Any]:
    result: dict[str, Any] = httpx2.get(server.url(f"/api/live_sessions/{session_id}")).json()
    return result


def test_event_stream_announces_a_new_session(
    serve: Callable[..., LiveServer], registry: Path
) -> None:
    server = serve()
    stream = EventStream(server.port)
    try:
        stream.next("hello", timeout=20)
        register_live_session_run(
            session("bot-new", status="completed", finished_at=NOW, mode="paper"), registry
        )
        update = stream.next("update", timeout=20)
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
        assert "bot-new" in api_ids(server)
    finally:
        stream.close()


def test_session_moving_to_failed_is_announced_once(
    serve: Callable[..., LiveServer], registry: Path
) -> None:
    server = serve()
    stream = EventStream(server.port)
    try:
        stream.next("hello", timeout=20)
        failed = session("bot-running", status="failed", finished_at=NOW, error="boom")
        register_live_session_run(failed, registry)
        assert stream.next("update", timeout=20)["ended"][0]["status"] == "failed"
        register_live_session_run(replace(failed, error="boom again"), registry)
        assert stream.next("update", timeout=20)["ended"] == []  # already ended before
    finally:
        stream.close()


def test_watch_sees_create_rewrite_replace_and_delete(
    serve: Callable[..., LiveServer], registry: Path
) -> None:
    server = serve(reconcile_seconds=3600)  # only the watch can be fast enough
    path = register_live_session_run(session("bot-2"), registry)
    wait_until(lambda: "bot-2" in api_ids(server))

    record = json.loads(path.read_text())
    record["metrics"]["realized_pnl"] = 99.0
    with open(path, "r+", encoding="utf-8") as handle:  # rewrite in place
        handle.write(json.dumps(record))
        handle.truncate()

    wait_until(lambda: detail(server, "bot-2")["realized_pnl"] == 99.0)

    register_live_session_run(session("bot-2", status="completed", finished_at=NOW), registry)
    wait_until(lambda: detail(server, "bot-2")["status"] == "completed")

    path.unlink()
    wait_until(lambda: "bot-2" not in api_ids(server))


def test_reconciliation_alone_catches_changes(
    serve: Callable[..., LiveServer], registry: Path
) -> None:
    server = serve(watch=False, reconcile_seconds=0.5)
    path = register_live_session_run(session("bot-3"), registry)
    wait_until(lambda: "bot-3" in api_ids(server))

    record = json.loads(path.read_text())
    record["metrics"]["realized_pnl"] = 7.0
    with open(path, "r+", encoding="utf-8") as handle:  # rewritten in place
        handle.write(json.dumps(record))
        handle.truncate()
    wait_until(lambda: detail(server, "bot-3")["realized_pnl"] == 7.0)

    register_live_session_run(session("bot-3", status="failed", finished_at=NOW), registry)
    wait_until(lambda: detail(server, "bot-3")["status"] == "failed")  # atomically replaced

    path.unlink()
    wait_until(lambda: "bot-3" not in api_ids(server))


def open_streams(server: LiveServer) -> float:
    """What the server's /metrics says about open event streams (one per tab)."""
    for line in httpx2.get(server.url("/metrics")).text.splitlines():
        if line.startswith("live_track_event_streams "):
            return float(line.split()[1])
    raise AssertionError("no live_track_event_streams in /metrics")


def test_many_tabs_are_counted_and_each_hear_every_change(
    serve: Callable[..., LiveServer], registry: Path
) -> None:
    server = serve()
    streams = [EventStream(server.port) for _ in range(4)]
    try:
        for stream in streams:
            stream.next("hello", timeout=20)
        assert open_streams(server) == 4
        register_live_session_run(session("bot-4", status="aborted", finished_at=NOW), registry)
        for stream in streams:
            assert stream.next("update", timeout=20)["ended"][0]["session_id"] == "bot-4"
    finally:
        for stream in streams:
            stream.close()
    wait_until(lambda: open_streams(server) == 0, what="closed tabs to unsubscribe")


def test_registry_created_after_start_is_picked_up(
    serve: Callable[..., LiveServer], registry: Path
) -> None:
    for path in registry.iterdir():
        path.unlink()
    registry.rmdir()
    server = serve(reconcile_seconds=3600)
    assert api_ids(server) == []
    register_live_session_run(session("bot-late"), registry)
    wait_until(lambda: "bot-late" in api_ids(server))


def test_page_and_partial_update_without_reload(
    serve: Callable[..., LiveServer], registry: Path
) -> None:
    server = serve()
    page = httpx2.get(server.url("/")).text
    assert 'data-partial="/partials/live_track"' in page
    register_live_session_run(session("bot-5"), registry)
    wait_until(lambda: "bot-5" in httpx2.get(server.url("/partials/live_track")).text)


def test_no_temporary_files_left_by_writes(registry: Path) -> None:
    for n in range(20):
        register_live_session_run(session(f"bot-{n}"), registry)
    assert all(name.endswith(".json") for name in file_stamps(registry))


def test_a_session_turns_stale_on_an_open_page_without_any_registry_change(
    serve: Callable[..., LiveServer], registry: Path
) -> None:
    beat = datetime.now(timezone.utc).replace(tzinfo=None)
    register_live_session_run(session("bot-beating", updated_at=beat), registry)
    register_live_session_run(session("bot-paper", mode="paper", updated_at=beat), registry)
    server = serve(stale_after_seconds=2)
    stream = EventStream(server.port)
    try:
        stream.next("hello", timeout=20)
        before = file_stamps(registry)
        update = stream.next("update", timeout=20)  # the server's own clock, nothing else
        assert file_stamps(registry) == before
    finally:
        stream.close()
    # Both are announced; the page notifies about the real-money one (see live-track.js).
    notices = sorted((n["session_id"], n["real_money"]) for n in update["stale"])
    assert notices == [("bot-beating", True), ("bot-paper", False)]
    rows = {
        s["session_id"]: s for s in httpx2.get(server.url("/api/live_track")).json()["sessions"]
    }
    assert rows["bot-beating"]["stale"] is True and rows["bot-paper"]["stale"] is True
    assert rows["bot-running"]["stale"] is False  # no heartbeats: liveness unknown


def test_a_busy_writer_gets_snapshots_as_often_as_views_can_follow(tmp_path: Path) -> None:
    """Each snapshot costs every open view a rebuild: the interval grows with that
    cost (half the time at most), within bounds a page still calls live."""
    from src.experiments.registry_index import RegistryIndex
    from src.webui.live_updates import (
        MAX_REFRESH_SECONDS,
        MIN_REFRESH_SECONDS,
        refresh_interval,
    )
    from src.webui.session_query import build_seconds, cached_view

    for n in range(3):
        register_live_session_run(make_session(f"s{n}"), tmp_path)
    index = RegistryIndex(tmp_path)
    index.reconcile()
    snapshot = index.snapshot()
    assert build_seconds(snapshot) == 0.0
    cached_view(snapshot, ("slow",), lambda: time.sleep(0.2) or "view")  # costs 0.2 s
    cached_view(snapshot, ("slow",), lambda: pytest.fail("built twice"))
    assert 0.2 <= build_seconds(snapshot) < 1.0

    assert refresh_interval(0.0) == MIN_REFRESH_SECONDS
    assert refresh_interval(0.4) == 0.8
    assert refresh_interval(30.0) == MAX_REFRESH_SECONDS
