"""Programmatic calls reuse a watched index, new processes start from the head cache,
and time filters share cached views: all with the answers of a full scan."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.reference import scan_registry
from src.experiments import head_cache, registry_index
from src.experiments.live_session_record import utc_instant
from src.experiments.live_session_registry import LiveSessionRecord, register_live_session_run
from src.experiments.registry_files import (
    PendingListing,
    UnchangedListing,
    file_stamp,
    list_registry,
)
from src.experiments.registry_index import RegistryIndex
from src.experiments.session_head import head_from_record
from src.webui import live_track
from src.webui.session_query import SessionQuery, filter_sessions
from tests.support import original_record, wait_until, write_like_original

BASE = datetime(2026, 1, 1)


def make_record(n: int, **overrides: Any) -> LiveSessionRecord:
    fields: dict[str, Any] = {
        "session_id": f"s{n}",
        "run_id": None,
        "run_type": "live_session_paper",
        "mode": ("shadow", "paper", "live")[n % 3],
        "env_name": "kraken_spot",
        "symbol": "BTC/USDT",
        "status": "started",
        "started_at": BASE + timedelta(minutes=7 * n),
        "metrics": {"realized_pnl": float(n % 5 - 2)},
    }
    fields.update(overrides)
    return LiveSessionRecord(**fields)


def scan_ids(directory: Path) -> list[str]:
    """The plain full scan, newest activity first (the documented order)."""
    stored = scan_registry(directory).records
    ordered = sorted(
        stored,
        key=lambda s: (utc_instant(s.record.finished_at or s.record.started_at), s.name),
        reverse=True,
    )
    return [s.record.session_id for s in ordered]


@pytest.fixture(autouse=True)
def fresh_shared_indexes() -> Iterator[None]:
    live_track.close_shared_indexes()
    yield
    live_track.close_shared_indexes()


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record which files the index reads from disk."""
    read: list[str] = []
    original = registry_index.read_in_batches

    def counting(directory: str, items: Any) -> Any:
        read.extend(name for name, _ in items)
        return original(directory, items)

    monkeypatch.setattr(registry_index, "read_in_batches", counting)
    return read


# --- 1. The programmatic functions see every change made before the call ------

edit = st.tuples(
    st.sampled_from(["register", "finish_in_place", "delete", "corrupt"]),
    st.integers(min_value=0, max_value=5),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits=st.lists(edit, min_size=1, max_size=15))
def test_every_call_equals_a_full_scan_without_rescanning(
    tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[str, int]]
) -> None:
    directory = tmp_path_factory.mktemp("registry")
    live_track.get_recent_live_sessions(limit=100, base_dir=directory)
    paths: dict[int, Path] = {}
    for step, (action, n) in enumerate(edits):
        if action == "register":
            paths[n] = register_live_session_run(make_record(n), directory)
        elif action == "finish_in_place" and n in paths and paths[n].exists():
            data = json.loads(paths[n].read_text())
            data["status"] = "completed"
            data["finished_at"] = (BASE + timedelta(days=90, minutes=step)).isoformat()
            paths[n].write_text(json.dumps(data))  # in place, as the original writers do
        elif action == "delete" and n in paths and paths[n].exists():
            paths[n].unlink()
        elif action == "corrupt":
            (directory / f"junk_{n}.json").write_bytes(b"{not json")
        # Asked right after the change: no waiting, no full reconcile.
        shown = live_track.get_recent_live_sessions(limit=100, base_dir=directory)
        assert [s.session_id for s in shown] == scan_ids(directory)[:100]
    live_track.close_shared_indexes()


def test_repeated_calls_do_not_list_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(5):
        register_live_session_run(make_record(n), tmp_path)
    live_track.get_recent_live_sessions(base_dir=tmp_path)
    listings: list[Path] = []
    original = registry_index.list_registry

    def listing(directory: Path, *args: Any, **kwargs: Any) -> Any:
        if not args and "names" not in kwargs:
            listings.append(directory)
        return original(directory, *args, **kwargs)

    monkeypatch.setattr(registry_index, "list_registry", listing)
    for _ in range(20):
        live_track.get_session_stats(base_dir=tmp_path)
    write_like_original(tmp_path, original_record("late", status="completed"))
    assert live_track.get_session_by_id("late", base_dir=tmp_path) is not None
    assert listings == []


def test_a_registry_created_after_the_first_call_is_seen(tmp_path: Path) -> None:
    directory = tmp_path / "later"
    assert live_track.get_recent_live_sessions(base_dir=directory) == []
    register_live_session_run(make_record(1), directory)
    assert [s.session_id for s in live_track.get_recent_live_sessions(base_dir=directory)] == ["s1"]


# --- 2. The head cache --------------------------------------------------------


def test_a_new_process_reads_only_the_files_that_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = tmp_path / "registry"
    paths = [register_live_session_run(make_record(n), registry) for n in range(30)]
    RegistryIndex(registry, persistent=True).reconcile()  # the first process
    assert head_cache.cache_file(registry).is_file()
    assert not str(head_cache.cache_file(registry)).startswith(str(registry))

    data = json.loads(paths[3].read_text())
    data["status"], data["finished_at"] = "failed", (BASE + timedelta(days=9)).isoformat()
    paths[3].write_text(json.dumps(data) + "\n")  # size changes: a new stamp
    paths[4].unlink()
    register_live_session_run(make_record(99), registry)
    read = count_reads(monkeypatch)
    index = RegistryIndex(registry, persistent=True)  # the next process
    index.reconcile()
    assert sorted(read) == sorted([paths[3].name, f"{make_record(99).started_at:%Y%m%dT%H%M%S}"
                                   "_live_session_paper_s99.json"])  # fmt: skip
    assert [h.session_id for h in index.snapshot().sessions] == scan_ids(registry)
    assert index.snapshot().by_id["s3"].status == "failed"
    assert index.snapshot().sessions == _uncached_sessions(registry)


@pytest.fixture
def large_cold_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take the paths a cold start of 100,000 files takes, on a few dozen: bulk
    integration and the listing helper process."""
    monkeypatch.setattr(registry_index, "BULK_RESORT", 4)
    monkeypatch.setattr(registry_index, "PARALLEL_LISTING_BYTES", 0)


def original_registry(registry: Path, count: int) -> list[Path]:
    """Records as the original writers leave them: NaN, no heartbeat, one id twice."""
    paths = []
    for n in range(count):
        started = datetime(2026, 11, 1) + timedelta(hours=n)
        ended = started + timedelta(minutes=30) if n % 3 else None
        metrics = {"realized_pnl": float("nan") if n % 7 == 0 else n - 10.5}
        data = original_record(
            f"orig-{n % (count - 1)}",  # the last one repeats the first id: a conflict
            mode=("shadow", "paper", "live", "bounded_pilot")[n % 4],
            status="completed" if ended else "started",
            started_at=started,
            finished_at=ended,
            metrics=metrics,
        )
        data["strategy_tier"] = "core" if n % 2 else None
        paths.append(write_like_original(registry, data))
    return paths


def test_an_unchanged_registry_comes_whole_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, large_cold_start: None
) -> None:
    registry = tmp_path / "registry"
    original_registry(registry, 40)
    RegistryIndex(registry, persistent=True).reconcile()  # the first process
    read = count_reads(monkeypatch)
    index = RegistryIndex(registry, persistent=True)  # the next one
    index.reconcile()
    assert read == []
    uncached = RegistryIndex(registry)
    uncached.reconcile()
    assert index.snapshot().sessions == uncached.snapshot().sessions
    assert index.snapshot().by_id == uncached.snapshot().by_id
    assert index.snapshot().conflicts == uncached.snapshot().conflicts != {}
    assert [h.session_id for h in index.snapshot().sessions] == scan_ids(registry)


def test_a_first_load_from_the_files_is_laid_out_anew_and_stays_equal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, large_cold_start: None
) -> None:
    registry = tmp_path / "registry"
    original_registry(registry, 40)
    monkeypatch.setattr(registry_index, "COMPACT_AFTER_FILES", 10)
    decoded: list[int] = []
    real_decode = registry_index.decode_heads
    monkeypatch.setattr(
        registry_index,
        "decode_heads",
        lambda encoded: decoded.append(len(encoded)) or real_decode(encoded),
    )
    index = RegistryIndex(registry, persistent=True)
    index.reconcile()
    uncached = RegistryIndex(registry)
    uncached.reconcile()

    assert len(decoded) == 1  # laid out anew once; the plain full read is not
    assert index.snapshot().sessions == uncached.snapshot().sessions
    assert index.snapshot().conflicts == uncached.snapshot().conflicts != {}
    assert [h.session_id for h in index.snapshot().sessions] == scan_ids(registry)
    later = registry / "later.json"  # the index works on as before
    later.write_text(json.dumps(original_record("later", status="started")))
    index.reconcile()
    assert index.snapshot().by_id["later"].file_name == "later.json"


def test_equal_error_texts_are_held_once_read_or_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = ["KillSwitch: drawdown guard tripped", "SystemExit: exit code 1"]
    for n in range(12):
        record = make_record(n, status="failed", error=texts[n % 2] if n % 3 else None)
        register_live_session_run(record, tmp_path)
    first = RegistryIndex(tmp_path, persistent=True)
    first.reconcile()
    read = count_reads(monkeypatch)
    cached = RegistryIndex(tmp_path, persistent=True)  # the next process
    cached.reconcile()
    assert read == []
    for index in (first, cached):
        errors = [h.error for h in index.snapshot().sessions if h.error is not None]
        assert sorted(set(errors)) == texts and len(errors) == 8
        assert len({id(error) for error in errors}) == 2  # one object per text
    assert cached.snapshot().sessions == first.snapshot().sessions


def test_the_cache_holds_each_error_text_once_whoever_read_the_heads(tmp_path: Path) -> None:
    text = "RiskLimitBreached: daily loss limit reached"
    heads = [  # read in different batches: equal texts, separate objects
        head_from_record(f"f{n}.json", file_stamp(n, n), make_record(n, error=text[:-1] + "d"))
        for n in range(5)
    ]
    assert len({id(head.error) for head in heads}) == 5
    head_cache.save_heads(tmp_path, heads)
    loaded = head_cache.load_heads(tmp_path).heads
    assert list(loaded.values()) == heads
    assert len({id(head.error) for head in loaded.values()}) == 1


def test_a_corrupt_file_comes_from_the_cache_too_and_still_warns(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    large_cold_start: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = tmp_path / "registry"
    paths = original_registry(registry, 12)
    broken = registry / "20261101T000000_live_session_paper_cut.json"
    broken.write_bytes(b'{"session_id": "cut off')  # a writer died mid-write, no temp file
    RegistryIndex(registry, persistent=True).reconcile()
    fingerprint = head_cache.load_heads(registry).fingerprint
    assert PendingListing(registry, head_cache.cache_file(registry)).result() == UnchangedListing(
        fingerprint
    )  # one broken file no longer keeps the next process from taking the cache whole
    read = count_reads(monkeypatch)
    caplog.clear()

    index = RegistryIndex(registry, persistent=True)
    index.reconcile()
    assert read == []
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    uncached = RegistryIndex(registry)
    uncached.reconcile()
    assert index.snapshot().skipped == uncached.snapshot().skipped
    assert [s.name for s in index.snapshot().skipped] == [broken.name]
    assert index.snapshot().sessions == uncached.snapshot().sessions
    assert warned == [  # as when it is read: each process says it once
        f"Skipping live-session file {broken}: {uncached.snapshot().skipped[0].reason}"
    ]

    # Repaired by its writer: the next process reads it and shows the session.
    data = json.loads(paths[0].read_text())
    data["session_id"] = "repaired"
    broken.write_text(json.dumps(data))
    read = count_reads(monkeypatch)
    index = RegistryIndex(registry, persistent=True)
    index.reconcile()
    assert read == [broken.name]
    assert index.snapshot().skipped == ()
    assert "repaired" in index.snapshot().by_id


def test_a_deleted_corrupt_file_leaves_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, large_cold_start: None
) -> None:
    registry = tmp_path / "registry"
    original_registry(registry, 12)
    broken = registry / "20261101T000000_live_session_paper_cut.json"
    broken.write_bytes(b"{not json")
    RegistryIndex(registry, persistent=True).reconcile()
    broken.unlink()
    RegistryIndex(registry, persistent=True).reconcile()  # notices, and rewrites the cache

    cache = head_cache.cache_file(registry)
    assert PendingListing(registry, cache).result() == UnchangedListing(
        head_cache.load_heads(registry).fingerprint
    )
    index = RegistryIndex(registry, persistent=True)
    index.reconcile()
    assert index.snapshot().skipped == ()
    assert index.snapshot().sessions == _uncached_sessions(registry)


def test_a_large_cold_start_reads_what_changed_and_keeps_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, large_cold_start: None
) -> None:
    registry = tmp_path / "registry"
    paths = original_registry(registry, 40)
    RegistryIndex(registry, persistent=True).reconcile()
    data = json.loads(paths[5].read_text())
    data["status"], data["finished_at"] = "failed", "2026-12-01T00:00:00"
    paths[5].write_text(json.dumps(data))  # in place, as the original writers do
    paths[6].unlink()
    paths[7].write_bytes(b'{"session_id": "cut off')
    read = count_reads(monkeypatch)
    index = RegistryIndex(registry, persistent=True)
    index.reconcile()
    assert sorted(read) == sorted([paths[5].name, paths[7].name])
    assert index.snapshot().sessions[0].session_id == "orig-5"  # the newest activity now
    assert [s.name for s in index.snapshot().skipped] == [paths[7].name]
    assert index.snapshot().sessions == _uncached_sessions(registry)
    assert [h.session_id for h in index.snapshot().sessions] == scan_ids(registry)


def test_a_prefetched_listing_serves_the_next_cold_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, large_cold_start: None
) -> None:
    registry = tmp_path / "registry"
    original_registry(registry, 12)
    RegistryIndex(registry, persistent=True).reconcile()
    registry_index.prefetch_listing(registry)  # as `live-track sessions list` does
    listed: list[Path] = []
    monkeypatch.setattr(PendingListing, "__init__", lambda self, d: listed.append(d))
    index = RegistryIndex(registry, persistent=True)
    index.reconcile()
    assert listed == []  # no second listing: the prefetched one was used
    assert index.snapshot().sessions == _uncached_sessions(registry)


class _ListedEarlier:
    """A prefetched listing that was taken before the registry last changed."""

    def __init__(self, listing: dict[str, Any]) -> None:
        self.listing = listing
        self.started = time.monotonic()

    def result(self) -> dict[str, Any]:
        return self.listing

    def cancel(self) -> None:
        pass


def test_a_server_shows_what_changed_after_its_early_listing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    large_cold_start: None,
    app_client: Callable[..., TestClient],
) -> None:
    registry = tmp_path / "registry"
    paths = original_registry(registry, 12)
    RegistryIndex(registry, persistent=True).reconcile()  # the last server's cache
    # Importing src.webui.app starts the listing; the session ends before the
    # server watches the directory, so no file event will ever tell of it.
    early = _ListedEarlier(list_registry(registry))
    monkeypatch.setitem(registry_index._prefetched, os.path.abspath(registry), early)
    data = json.loads(paths[3].read_text())
    assert data["status"] == "started"
    data["status"], data["finished_at"] = "failed", "2026-11-02T03:00:00"
    paths[3].write_text(json.dumps(data))  # in place, as the original writers do

    client = app_client(registry, reconcile_seconds=3600, watch=True)

    def status() -> str:
        return str(client.get(f"/api/live_sessions/{data['session_id']}").json()["status"])

    wait_until(lambda: status() == "failed", timeout=15, what="the ended session shows as failed")
    assert os.path.abspath(registry) not in registry_index._prefetched  # it was used


def test_a_server_of_another_registry_stops_the_early_listing(
    tmp_path: Path, large_cold_start: None, app_client: Callable[..., TestClient]
) -> None:
    default = tmp_path / "default"
    original_registry(default, 12)
    RegistryIndex(default, persistent=True).reconcile()
    for n in range(1500):  # changed since its cache: the helper sends the whole listing
        (default / f"{n:04d}_live_session_paper_added-after-the-cache.json").write_bytes(b"{}")
    # Importing src.webui.app lists the default directory; this server reads another.
    registry_index.prefetch_listing(default)
    helper = registry_index._prefetched[os.path.abspath(default)]._process
    assert helper is not None
    registry = tmp_path / "registry"
    original_registry(registry, 3)
    client = app_client(registry)
    assert client.get("/api/live_sessions").status_code == 200
    # Unread, it would block on its full pipe, holding its listing, until the server exits.
    wait_until(lambda: helper.poll() is not None, timeout=10, what="the unused helper ended")
    assert os.path.abspath(default) not in registry_index._prefetched


def test_a_later_full_pass_over_a_large_registry_lists_in_a_helper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = tmp_path / "registry"
    paths = original_registry(registry, 12)
    monkeypatch.setattr(registry_index, "HELPER_LISTING_FILES", 10)
    index = RegistryIndex(registry)
    index.reconcile()
    data = json.loads(paths[4].read_text())
    data["status"], data["finished_at"] = "completed", "2026-11-03T00:00:00"
    paths[4].write_text(json.dumps(data))
    paths[5].unlink()
    helpers: list[Path] = []
    real_init = PendingListing.__init__

    def spy(self: PendingListing, directory: Path, cache: Path | None = None) -> None:
        helpers.append(directory)
        real_init(self, directory, cache)

    monkeypatch.setattr(PendingListing, "__init__", spy)
    changes = index.reconcile()
    assert helpers == [registry]
    assert len(changes) == 2
    assert index.snapshot().sessions == _uncached_sessions(registry)


def test_a_listing_prefetched_long_before_the_first_load_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, large_cold_start: None
) -> None:
    registry = tmp_path / "registry"
    paths = original_registry(registry, 12)
    RegistryIndex(registry, persistent=True).reconcile()
    registry_index.prefetch_listing(registry)  # a script imported the app, then waited
    pending = registry_index._prefetched[os.path.abspath(registry)]
    assert isinstance(pending.result(), UnchangedListing)
    monkeypatch.setattr(pending, "result", lambda: UnchangedListing(b"stale"))
    pending.started -= registry_index.PREFETCH_MAX_AGE_SECONDS + 1
    data = json.loads(paths[3].read_text())
    data["status"], data["finished_at"] = "failed", "2026-11-02T04:00:00"
    paths[3].write_text(json.dumps(data))  # meanwhile a session ended

    index = RegistryIndex(registry, persistent=True)
    index.reconcile()
    assert os.path.abspath(registry) not in registry_index._prefetched
    assert index.snapshot().by_id[data["session_id"]].status == "failed"
    assert index.snapshot().sessions == _uncached_sessions(registry)


def test_the_listing_helper_lists_exactly_what_this_process_lists(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    original_registry(registry, 5)
    (registry / ".tmp-write.json").write_text("{}")  # a writer's temp file: not listed
    (registry / "notes.txt").write_text("x")
    (registry / "link.json").symlink_to(registry / "notes.txt")
    (registry / "folder.json").mkdir()
    os.mkfifo(registry / "pipe.json")
    (registry / os.fsdecode(b"caf\xe9.json")).write_text("{}")  # not UTF-8
    expected = list_registry(registry)
    assert len(expected) == 9
    assert PendingListing(registry).result() == expected
    missing = tmp_path / "missing"
    assert PendingListing(missing).result() == {} == list_registry(missing)


def test_the_listing_helper_says_unchanged_exactly_when_the_cache_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = tmp_path / "registry"
    paths = original_registry(registry, 8)
    odd = registry / os.fsdecode(b"20260101T000000_live_session_paper_caf\xe9.json")
    shutil.copy(paths[0], odd)  # a name that is not UTF-8, as a file system allows
    RegistryIndex(registry, persistent=True).reconcile()
    cache = head_cache.cache_file(registry)
    fingerprint = head_cache.load_heads(registry).fingerprint

    def verdict() -> object:
        found = PendingListing(registry, cache).result()
        if isinstance(found, UnchangedListing):
            return found
        assert found == list_registry(registry)  # otherwise the plain listing
        return "listing"

    assert verdict() == UnchangedListing(fingerprint)
    os.utime(paths[2], ns=(1, 1))  # the same size, another mtime
    assert verdict() == "listing"
    RegistryIndex(registry, persistent=True).reconcile()  # the cache catches up
    assert verdict() == UnchangedListing(head_cache.load_heads(registry).fingerprint)
    (registry / "20260202T000000_live_session_paper_link.json").symlink_to(paths[1])
    assert verdict() == "listing"  # a file the cache does not know: not unchanged
    assert PendingListing(registry, tmp_path / "no-cache").result() == list_registry(registry)


def test_a_cache_rewritten_after_the_helpers_look_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, large_cold_start: None
) -> None:
    registry = tmp_path / "registry"
    paths = original_registry(registry, 12)
    RegistryIndex(registry, persistent=True).reconcile()
    registry_index.prefetch_listing(registry)
    pending = registry_index._prefetched[os.path.abspath(registry)]
    listed = pending.result()  # the helper saw the directory exactly as cached
    assert isinstance(listed, UnchangedListing)
    monkeypatch.setattr(pending, "result", lambda: listed)
    # Then a session ended and another process wrote the cache anew.
    data = json.loads(paths[3].read_text())
    data["status"], data["finished_at"] = "completed", "2026-11-02T05:00:00"
    paths[3].write_text(json.dumps(data))
    RegistryIndex(registry, persistent=True).reconcile()

    index = RegistryIndex(registry, persistent=True)
    index.reconcile()
    assert os.path.abspath(registry) not in registry_index._prefetched  # it was asked
    assert index.snapshot().by_id[data["session_id"]].status == "completed"
    assert index.snapshot().sessions == _uncached_sessions(registry)


def test_a_cancelled_listing_helper_leaves_the_listing_to_this_process(tmp_path: Path) -> None:
    original_registry(tmp_path, 5)
    pending = PendingListing(tmp_path)
    pending.cancel()  # what happens at exit to a prefetched listing nobody asked for
    assert pending.result() == list_registry(tmp_path)


def test_without_a_helper_process_this_process_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original_registry(tmp_path, 5)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python-here"))
    assert PendingListing(tmp_path).result() == list_registry(tmp_path)


def _uncached_sessions(registry: Path) -> tuple[Any, ...]:
    index = RegistryIndex(registry)
    index.reconcile()
    return index.snapshot().sessions


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(b"garbage"),
        lambda path: path.write_bytes(path.read_bytes()[:-100]),
        lambda path: path.write_bytes(path.read_bytes()[:40] + b"X" + path.read_bytes()[41:]),
    ],
    ids=["garbage", "truncated", "one-byte-changed"],
)
def test_a_damaged_cache_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: Any
) -> None:
    for n in range(10):
        register_live_session_run(make_record(n), tmp_path)
    RegistryIndex(tmp_path, persistent=True).reconcile()
    damage(head_cache.cache_file(tmp_path))
    read = count_reads(monkeypatch)
    index = RegistryIndex(tmp_path, persistent=True)
    index.reconcile()
    assert len(read) == 10
    assert [h.session_id for h in index.snapshot().sessions] == scan_ids(tmp_path)


def test_a_cache_of_other_head_fields_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(4):
        register_live_session_run(make_record(n), tmp_path)
    RegistryIndex(tmp_path, persistent=True).reconcile()
    monkeypatch.setattr(head_cache, "VERSION", head_cache.VERSION + "-new-field")
    read = count_reads(monkeypatch)
    RegistryIndex(tmp_path, persistent=True).reconcile()
    assert len(read) == 4


def test_caches_unused_for_a_month_are_pruned_and_used_ones_kept(tmp_path: Path) -> None:
    month_ago = time.time() - 31 * 86400
    caches = {}
    for name in ("deleted", "idle-but-used", "current"):
        registry = tmp_path / name
        register_live_session_run(make_record(1), registry)
        RegistryIndex(registry, persistent=True).reconcile()
        caches[name] = head_cache.cache_file(registry)
        os.utime(caches[name], (month_ago, month_ago))
    shutil.rmtree(tmp_path / "deleted")
    RegistryIndex(tmp_path / "idle-but-used", persistent=True).reconcile()  # loads its cache

    register_live_session_run(make_record(2), tmp_path / "current")  # a change: a new write
    RegistryIndex(tmp_path / "current", persistent=True).reconcile()

    assert not caches["deleted"].exists()
    assert caches["idle-but-used"].exists() and caches["current"].exists()


@pytest.mark.parametrize("saved", ["swapped ties", "reversed"])
def test_a_cache_saved_out_of_order_still_gives_the_scan_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, saved: str
) -> None:
    registry = tmp_path / "registry"
    # Four sessions start in the same second and run: equal activity times,
    # ordered by file name.
    for n in range(6):
        same_second = {"started_at": BASE} if n < 4 else {}
        register_live_session_run(make_record(n, **same_second), registry)
    first = RegistryIndex(registry, persistent=True)
    first.reconcile()
    heads = list(reversed(first.snapshot().sessions))  # the order a cache is saved in
    assert heads[0].activity == heads[1].activity
    if saved == "swapped ties":
        heads[0], heads[1] = heads[1], heads[0]
    else:
        heads.reverse()
    head_cache.save_heads(registry, heads)
    read = count_reads(monkeypatch)

    index = RegistryIndex(registry, persistent=True)
    index.reconcile()
    assert read == []  # taken from the cache
    assert index.snapshot().sessions == first.snapshot().sessions
    assert [h.session_id for h in index.snapshot().sessions] == scan_ids(registry)


def test_a_cache_write_cut_short_leaves_no_lasting_temp_file(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    register_live_session_run(make_record(1), registry)
    RegistryIndex(registry, persistent=True).reconcile()
    cache = head_cache.cache_file(registry)
    # What a server killed while writing its cache leaves (26 MB at 100,000 sessions).
    abandoned = cache.with_name(f".{cache.name}.4242.tmp")
    abandoned.write_bytes(cache.read_bytes()[:100])
    in_progress = cache.with_name(f".{cache.name}.4343.tmp")
    in_progress.write_bytes(b"")
    hour_ago = time.time() - 3600
    os.utime(abandoned, (hour_ago, hour_ago))

    register_live_session_run(make_record(2), registry)
    index = RegistryIndex(registry, persistent=True)  # the next process writes the cache
    index.reconcile()

    assert not abandoned.exists()
    assert in_progress.exists()  # another process may be writing it right now
    assert [h.session_id for h in index.snapshot().sessions] == ["s2", "s1"]


def test_a_read_only_cache_directory_is_skipped_silently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    registry = tmp_path / "registry"
    register_live_session_run(make_record(1), registry)
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache directory would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    index = RegistryIndex(registry, persistent=True)
    index.reconcile()
    assert [h.session_id for h in index.snapshot().sessions] == ["s1"]
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]


def test_cache_off_writes_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = tmp_path / "registry"
    register_live_session_run(make_record(1), registry)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("LIVE_TRACK_CACHE", "off")
    assert [s.session_id for s in live_track.get_recent_live_sessions(base_dir=registry)] == ["s1"]
    assert not (tmp_path / "cache").exists()


# --- 5. Time filters share cached views until a start time crosses a bound ---


def test_moving_quick_range_reuses_the_view_until_a_session_crosses(tmp_path: Path) -> None:
    for n in range(50):
        register_live_session_run(make_record(n), tmp_path)
    index = RegistryIndex(tmp_path)
    index.reconcile()
    snapshot = index.snapshot()
    query = SessionQuery(range="7d")
    now = utc_instant(BASE + timedelta(days=7, minutes=7 * 20 + 1))
    first = filter_sessions(snapshot, query, now)
    later = filter_sessions(snapshot, query, now + timedelta(seconds=30))
    assert later is first  # same sessions: the cached tuple itself
    crossed = filter_sessions(snapshot, query, now + timedelta(minutes=7))
    assert len(crossed) == len(first) - 1
    for moment in (now, now + timedelta(minutes=7), now + timedelta(days=30)):
        since = moment - timedelta(days=7)
        expected = [h.session_id for h in snapshot.sessions if utc_instant(h.started_at) >= since]
        assert [h.session_id for h in filter_sessions(snapshot, query, moment)] == expected


def test_bounds_around_every_session_share_the_unfiltered_view(tmp_path: Path) -> None:
    for n in range(5):
        register_live_session_run(make_record(n), tmp_path)
    index = RegistryIndex(tmp_path)
    index.reconcile()
    snapshot = index.snapshot()
    now = utc_instant(BASE + timedelta(days=1))
    wide = SessionQuery(since=BASE - timedelta(days=1), until=BASE + timedelta(days=1))
    assert filter_sessions(snapshot, wide, now) is snapshot.sessions
    narrow = SessionQuery(until=BASE + timedelta(minutes=10))
    assert [h.session_id for h in filter_sessions(snapshot, narrow, now)] == ["s1", "s0"]
    exact = SessionQuery(since=BASE + timedelta(minutes=7), until=BASE + timedelta(minutes=14))
    assert [h.session_id for h in filter_sessions(snapshot, exact, now)] == ["s2", "s1"]
