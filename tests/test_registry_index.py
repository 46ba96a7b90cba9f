"""The in-memory index gives the same answers as a full scan, however it got there."""

from __future__ import annotations

import gc
import json
import logging
import os
import random
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.reference import scan_registry
from src.experiments import parallel_load, registry_index
from src.experiments.live_session_record import utc_instant
from src.experiments.live_session_registry import LiveSessionRecord, register_live_session_run
from src.experiments.registry_files import file_stamp, stamp_mtime_ns, stamp_size
from src.experiments.registry_index import RegistryIndex
from src.experiments.session_head import RETRY, UNREADABLE, SessionHead, read_heads
from src.webui.live_track import SessionRules, export_sessions, live_track_view
from src.webui.session_query import SessionQuery

BASE = datetime(2026, 1, 1)
NOW = utc_instant(BASE + timedelta(days=60))


def make_record(n: int, **overrides: Any) -> LiveSessionRecord:
    fields: dict[str, Any] = {
        "session_id": f"s{n}",
        "run_id": None,
        "run_type": "live_session_paper",
        "mode": ("shadow", "testnet", "paper", "live")[n % 4],
        "env_name": "kraken_spot",
        "symbol": ("BTC/USDT", "ETH/USDT")[n % 2],
        "status": ("completed", "failed", "aborted", "started")[n % 4],
        "started_at": BASE + timedelta(minutes=7 * n),
        "finished_at": None if n % 4 == 3 else BASE + timedelta(minutes=7 * n + 5 + n % 11),
        "metrics": {"realized_pnl": float(n % 17 - 8), "max_drawdown": (n % 9) / 100},
    }
    fields.update(overrides)
    return LiveSessionRecord(**fields)


def reference_heads(directory: Path) -> list[tuple[str, str, str]]:
    """A plain full scan, sorted the documented way: end time, else start, newest first."""
    stored = scan_registry(directory).records
    ordered = sorted(
        stored,
        key=lambda s: (utc_instant(s.record.finished_at or s.record.started_at), s.name),
        reverse=True,
    )
    return [(s.name, s.record.session_id, s.record.status) for s in ordered]


def index_heads(index: RegistryIndex) -> list[tuple[str, str, str]]:
    return [(h.file_name, h.session_id, h.status) for h in index.snapshot().sessions]


# Edits a registry can see: write, rewrite in place, replace atomically, delete, junk.
edit = st.tuples(
    st.sampled_from(["register", "rewrite", "delete", "corrupt", "duplicate", "drop_duplicate"]),
    st.integers(min_value=0, max_value=4),  # few ids, so edits meet the same session
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits=st.lists(edit, max_size=25), checks=st.lists(st.booleans(), max_size=25))
def test_index_matches_full_scan_after_any_edits(
    tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[str, int]], checks: list[bool]
) -> None:
    directory = tmp_path_factory.mktemp("registry")
    index = RegistryIndex(directory)
    index.reconcile()
    paths: dict[int, Path] = {}
    for step, (action, n) in enumerate(edits):
        if action == "register":
            paths[n] = register_live_session_run(make_record(n, status="started"), directory)
        elif action == "rewrite" and n in paths and paths[n].exists():
            data = json.loads(paths[n].read_text())
            data["status"], data["finished_at"] = (
                "completed",
                (BASE + timedelta(days=90)).isoformat(),
            )
            paths[n].write_text(json.dumps(data))  # in place, not atomic
            os.utime(paths[n], ns=(step * 10**9, step * 10**9))  # a visible mtime change
        elif action == "delete" and n in paths and paths[n].exists():
            paths[n].unlink()
        elif action == "duplicate":  # a second file carrying the same session id
            copy = make_record(n, started_at=BASE + timedelta(days=1, minutes=step))
            paths[100 + n] = register_live_session_run(
                copy.__class__(**{**copy.__dict__, "run_type": f"live_session_copy{step}"}),
                directory,
            )
        elif action == "drop_duplicate" and 100 + n in paths and paths[100 + n].exists():
            paths[100 + n].unlink()
            index.refresh_names([paths[100 + n].name])
        elif action == "corrupt":
            (directory / f"junk_{n}.json").write_bytes(b"{not json" * (n + 1))
        # Sometimes the watcher reports the file, sometimes only a reconcile sees it.
        if step < len(checks) and checks[step] and n in paths:
            index.refresh_names([paths[n].name])
    index.reconcile()
    assert index_heads(index) == reference_heads(directory)
    newest_by_id: dict[str, str] = {}
    for name, session_id, _ in reversed(reference_heads(directory)):  # oldest first
        newest_by_id[session_id] = name
    by_id = index.snapshot().by_id
    assert {sid: head.file_name for sid, head in by_id.items()} == newest_by_id
    skipped = {s.name for s in scan_registry(directory).skipped}
    assert {s.name for s in index.snapshot().skipped} == skipped


def test_views_equal_a_full_scan_reference(tmp_path: Path) -> None:
    for n in range(60):
        register_live_session_run(make_record(n), tmp_path)
    index = RegistryIndex(tmp_path)
    index.reconcile()
    snapshot = index.snapshot()
    records = [s.record for s in scan_registry(tmp_path).records]
    for query in (
        SessionQuery(limit=100),
        SessionQuery(limit=100, mode=("live", "paper")),
        SessionQuery(limit=100, status=("failed",), symbol="ETH/USDT"),
        SessionQuery(limit=100, sort="pnl", order="asc"),
    ):
        exported = export_sessions(snapshot, query, NOW, SessionRules())
        expected = [
            r
            for r in records
            if (not query.mode or r.mode in query.mode)
            and (not query.status or r.status in query.status)
            and (not query.symbol or r.symbol == query.symbol)
        ]
        assert {e.session_id for e in exported} == {r.session_id for r in expected}
        view = live_track_view(snapshot, query, NOW, SessionRules())
        assert view.stats.sessions == len(expected)
        pnl = sum(r.metrics["realized_pnl"] for r in expected)
        assert view.stats.total_realized_pnl == pytest.approx(pnl)


def write_plain(directory: Path, count: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        record = make_record(n)
        (directory / f"{n:06d}_{record.session_id}.json").write_text(json.dumps(record.to_dict()))


def test_parallel_first_load_equals_full_scan(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    count = parallel_load.PARALLEL_MIN_FILES + 500
    write_plain(tmp_path, count)
    (tmp_path / "broken.json").write_text("{")
    index = RegistryIndex(tmp_path)
    with caplog.at_level(logging.WARNING):
        index.reconcile()
    assert len(index.snapshot().sessions) == count
    assert index_heads(index) == reference_heads(tmp_path)
    # Heads that came back from the workers equal heads read in this process.
    in_process = {
        head.file_name: head
        for _, head in read_heads(str(tmp_path), [(name, None) for name in os.listdir(tmp_path)])
        if isinstance(head, SessionHead)
    }
    assert {h.file_name: h for h in index.snapshot().sessions} == in_process
    assert [s.name for s in index.snapshot().skipped] == ["broken.json"]
    assert [r.getMessage() for r in caplog.records if "broken.json" in r.getMessage()] != []
    # The stamps the workers took let a later reconcile re-read nothing.
    assert index.reconcile() == []


def test_parallel_load_falls_back_when_workers_cannot_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_plain(tmp_path, parallel_load.PARALLEL_MIN_FILES)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    index = RegistryIndex(tmp_path)
    index.reconcile()
    assert len(index.snapshot().sessions) == parallel_load.PARALLEL_MIN_FILES


def test_loading_state_reports_progress(tmp_path: Path) -> None:
    write_plain(tmp_path, 30)
    index = RegistryIndex(tmp_path)
    before = index.snapshot()
    assert before.loaded is False and before.sessions == ()
    index.reconcile()
    after = index.snapshot()
    assert after.loaded is True and after.progress == (30, 30)


def test_rewrite_with_unchanged_stamp_is_not_reread(tmp_path: Path) -> None:
    path = register_live_session_run(make_record(1), tmp_path)
    index = RegistryIndex(tmp_path)
    index.reconcile()
    generation = index.snapshot().generation
    assert index.reconcile() == []
    assert index.snapshot().generation == generation  # no change, no new snapshot
    path.unlink()
    assert [c.before.session_id for c in index.reconcile() if c.before] == ["s1"]


sizes = st.integers(min_value=-(2**63), max_value=2**63 - 1)
mtimes = st.integers(min_value=-(2**64), max_value=2**64)


@given(size=sizes, mtime_ns=mtimes, other=st.tuples(sizes, mtimes))
def test_a_stamp_keeps_size_and_mtime_exactly(size: int, mtime_ns: int, other: Any) -> None:
    stamp = file_stamp(size, mtime_ns)
    assert (stamp_size(stamp), stamp_mtime_ns(stamp)) == (size, mtime_ns)
    assert (stamp == file_stamp(*other)) == ((size, mtime_ns) == other)


@given(size=st.integers(min_value=0, max_value=2**63 - 1), mtime_ns=mtimes)
def test_no_real_stamp_looks_unreadable_or_retried(size: int, mtime_ns: int) -> None:
    assert file_stamp(size, mtime_ns) not in (UNREADABLE, RETRY)


def test_heads_are_small(tmp_path: Path) -> None:
    register_live_session_run(make_record(3, config={"big": "x" * 5000}), tmp_path)
    index = RegistryIndex(tmp_path)
    index.reconcile()
    [head] = index.snapshot().sessions
    assert isinstance(head, SessionHead)
    assert "config" not in head._fields and "cli_args" not in head._fields
    assert index.read_record(head) is not None  # details come from the file on demand


def test_random_order_of_changes_keeps_sort(tmp_path: Path) -> None:
    rng = random.Random(7)
    index = RegistryIndex(tmp_path)
    index.reconcile()
    numbers = list(range(40))
    rng.shuffle(numbers)
    for n in numbers:
        path = register_live_session_run(make_record(n), tmp_path)
        index.refresh_names([path.name])
    assert index_heads(index) == reference_heads(tmp_path)


def test_duplicate_ids_resolve_to_the_newest_file_through_every_change(tmp_path: Path) -> None:
    index = RegistryIndex(tmp_path)
    index.reconcile()
    old = register_live_session_run(make_record(1, run_type="live_session_a"), tmp_path)
    new = register_live_session_run(
        make_record(1, run_type="live_session_b", started_at=BASE + timedelta(days=3)), tmp_path
    )
    index.refresh_names([old.name, new.name])
    assert index.snapshot().by_id["s1"].file_name == new.name
    # Not silently resolved: the conflict and both files are in the snapshot.
    assert index.snapshot().conflicts == {"s1": tuple(sorted([old.name, new.name]))}
    new.unlink()
    index.refresh_names([new.name])
    assert index.snapshot().by_id["s1"].file_name == old.name
    assert index.snapshot().conflicts == {}
    old.unlink()
    index.refresh_names([old.name])
    assert "s1" not in index.snapshot().by_id


def test_watch_and_listing_agree_on_hidden_files(tmp_path: Path) -> None:
    index = RegistryIndex(tmp_path)
    index.reconcile()
    hidden = tmp_path / ".backup_of_s1.json"
    hidden.write_text(json.dumps(make_record(1).to_dict()))
    index.refresh_names([hidden.name])  # what a watcher reports
    assert index.snapshot().sessions == ()
    index.reconcile()
    assert index.snapshot().sessions == ()


class _SteppedGc:
    """The gc module, except that the second thread to pause it is held between
    reading whether it is on and turning it off until the first has resumed it
    (or briefly, where a pause makes the first wait for the second)."""

    def __init__(self) -> None:
        self.first_done = threading.Event()
        self.second = threading.Event()
        self.isenabled, self.enable = gc.isenabled, gc.enable

    def disable(self) -> None:
        if self.second.is_set():
            self.first_done.wait(timeout=2)
        gc.disable()


def test_overlapping_gc_pauses_in_threads_leave_the_gc_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The first load pauses it in its thread while views are built in others.
    stepped = _SteppedGc()
    monkeypatch.setattr(registry_index, "gc", stepped)
    assert gc.isenabled()
    first_in = threading.Event()

    def first() -> None:
        with registry_index.gc_paused():
            first_in.set()
            stepped.second.wait(timeout=5)
        stepped.first_done.set()

    def second() -> None:
        first_in.wait(timeout=5)
        stepped.second.set()
        with registry_index.gc_paused():
            pass

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    try:
        assert gc.isenabled()
    finally:
        gc.enable()
