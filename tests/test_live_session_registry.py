"""The Phase 81 registry, the lifecycle helper, the demo generator and the CLI."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from src import cli
from src.experiments import live_session as live_session_module
from src.experiments import registry_files as registry
from src.experiments.demo_sessions import generate_demo_records, write_demo_sessions
from src.experiments.live_session import live_session
from src.experiments.live_session_record import parse_record
from src.experiments.live_session_registry import (
    LiveSessionRecord,
    get_session_summary,
    list_session_records,
    register_live_session_run,
)
from src.experiments.registry_files import record_filename
from src.webui.app import create_app
from src.webui.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(__file__).resolve().parent / "data" / "registry"
SPEC_EXAMPLE = "20251208T025243_live_session_shadow_smoke_test_20251208_01.json"
REGISTRY_LOGGER = "src.experiments.live_session_registry"
NOW = datetime(2025, 12, 10, 12, 0, 0)

# The four files in tests/data/registry, newest first (the testnet one is 09:15 UTC).
PAPER_ID = "session_20251209_paper_c4d5e6"
TESTNET_ID = "session_20251209_testnet_7f3e2a"
SHADOW_ID = "smoke_test_20251208_01"
LIVE_ID = "session_20251207_live_0a1b2c"
NEWEST_FIRST = [PAPER_ID, TESTNET_ID, SHADOW_ID, LIVE_ID]


@pytest.fixture
def registry_dir(tmp_path: Path) -> Path:
    """A registry holding copies of the real-shaped files in tests/data/registry."""
    target = tmp_path / "live_sessions"
    shutil.copytree(DATA_DIR, target)
    return target


@pytest.fixture
def spec_example_only(tmp_path: Path) -> Path:
    """A registry holding only the spec's example record (docs/live-track-panel.md)."""
    target = tmp_path / "live_sessions"
    target.mkdir()
    shutil.copy(DATA_DIR / SPEC_EXAMPLE, target / SPEC_EXAMPLE)
    return target


def make_record(**changes: Any) -> LiveSessionRecord:
    fields: dict[str, Any] = {
        "session_id": "session_20251208_shadow_ab12cd",
        "run_id": "run_20251208_shadow",
        "run_type": "live_session_shadow",
        "mode": "shadow",
        "env_name": "kraken_futures_testnet",
        "symbol": "BTC/USDT",
        "status": "started",
        "started_at": datetime(2025, 12, 8, 2, 52, 43),
        "created_at": datetime(2025, 12, 8, 2, 52, 43),
    }
    fields.update(changes)
    return LiveSessionRecord(**fields)


def warnings_from_registry(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == REGISTRY_LOGGER and r.levelno >= logging.WARNING
    ]


# --- records and files --------------------------------------------------------


def test_record_round_trips_through_to_dict_and_from_dict() -> None:
    record = make_record(
        status="completed",
        finished_at=datetime(2025, 12, 8, 3, 52, 43),
        config={"strategy_name": "ma_crossover", "risk_per_trade": 0.01},
        metrics={"realized_pnl": -12.5, "max_drawdown": 0.05, "num_orders": 10},
        cli_args=["--mode", "shadow"],
        error=None,
        updated_at=datetime(2025, 12, 8, 3, 52, 43),
    )

    data = record.to_dict()

    assert LiveSessionRecord.from_dict(json.loads(json.dumps(data))) == record
    assert list(data)[:14] == [
        "session_id",
        "run_id",
        "run_type",
        "mode",
        "env_name",
        "symbol",
        "status",
        "started_at",
        "finished_at",
        "config",
        "metrics",
        "cli_args",
        "error",
        "created_at",
    ]
    assert data["started_at"] == "2025-12-08T02:52:43"


def test_existing_phase_81_file_is_read_unchanged() -> None:
    raw = json.loads((DATA_DIR / SPEC_EXAMPLE).read_text(encoding="utf-8"))

    record = LiveSessionRecord.from_dict(raw)

    # Written back, it gains only the strategy_tier key every writer has written since 2025.
    assert record.to_dict() == {**raw, "strategy_tier": None}
    assert record_filename(record) == SPEC_EXAMPLE


def test_record_without_mode_takes_it_from_the_run_type(registry_dir: Path) -> None:
    (live,) = list_session_records(registry_dir, run_type="live_session_live")

    assert live.session_id == LIVE_ID
    assert live.mode == "live"


def test_file_name_replaces_slash_colon_and_space(tmp_path: Path) -> None:
    record = make_record(run_type="live session/shadow", session_id="desk 1/BTC:USDT")

    path = register_live_session_run(record, tmp_path)

    assert path.name == "20251208T025243_live_session_shadow_desk_1_BTC_USDT.json"
    assert os.listdir(tmp_path) == [path.name]


def test_registering_the_same_session_again_replaces_its_file(tmp_path: Path) -> None:
    register_live_session_run(make_record(status="started"), tmp_path)
    finished = make_record(
        status="completed",
        finished_at=datetime(2025, 12, 8, 4, 0, 0),
        metrics={"realized_pnl": 42.0},
    )

    path = register_live_session_run(finished, tmp_path)

    assert os.listdir(tmp_path) == [path.name]
    on_disk = json.loads(path.read_text(encoding="utf-8"))
    assert on_disk["status"] == "completed"
    assert on_disk["finished_at"] == "2025-12-08T04:00:00"
    assert [r.status for r in list_session_records(tmp_path)] == ["completed"]


def test_registered_file_is_readable_like_a_normally_created_file(tmp_path: Path) -> None:
    path = register_live_session_run(make_record(), tmp_path)
    plain = tmp_path / "plain.txt"
    plain.write_text("x", encoding="utf-8")

    # Not the 0600 of a temp file: a dashboard running as another user must read it.
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_nan_metric_is_stored_as_null_so_the_record_stays_readable(tmp_path: Path) -> None:
    record = make_record(metrics={"realized_pnl": float("nan"), "max_drawdown": float("inf")})

    path = register_live_session_run(record, tmp_path)

    loaded = parse_record(path.read_bytes())
    assert loaded.metrics == {"realized_pnl": None, "max_drawdown": None}


# --- listing ------------------------------------------------------------------


def test_list_returns_all_records_newest_first(registry_dir: Path) -> None:
    records = list_session_records(registry_dir)

    assert [r.session_id for r in records] == NEWEST_FIRST


def test_naive_and_aware_timestamps_are_sorted_together(tmp_path: Path) -> None:
    # 10:15+01:00 is 09:15 UTC, so the naive (UTC) 09:30 session is the newer one.
    aware = make_record(
        session_id="aware", started_at=datetime.fromisoformat("2025-12-09T10:15:00+01:00")
    )
    naive = make_record(session_id="naive", started_at=datetime(2025, 12, 9, 9, 30, 0))
    older = make_record(session_id="older", started_at=datetime(2025, 12, 9, 9, 0, 0))
    for record in (aware, naive, older):
        register_live_session_run(record, tmp_path)

    records = list_session_records(tmp_path)
    summary = get_session_summary(tmp_path)

    assert [r.session_id for r in records] == ["naive", "aware", "older"]
    assert records[1].started_at.utcoffset() == timedelta(hours=1)
    assert summary["first_started_at"] == "2025-12-09T09:00:00"
    assert summary["last_started_at"] == "2025-12-09T09:30:00"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param({"run_type": "live_session_testnet"}, [TESTNET_ID], id="run_type"),
        pytest.param({"status": "completed"}, [SHADOW_ID], id="status"),
        pytest.param({"status": "started"}, [PAPER_ID], id="status-started"),
        pytest.param({"run_type": "live_session_shadow", "status": "failed"}, [], id="both"),
        pytest.param({"run_type": "live_session_unknown"}, [], id="unknown-run-type"),
    ],
)
def test_list_filters(registry_dir: Path, filters: dict[str, str], expected: list[str]) -> None:
    assert [r.session_id for r in list_session_records(registry_dir, **filters)] == expected


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        pytest.param(2, NEWEST_FIRST[:2], id="two"),
        pytest.param(10, NEWEST_FIRST, id="more-than-there-are"),
        pytest.param(0, [], id="zero"),
    ],
)
def test_list_limit_keeps_the_newest(registry_dir: Path, limit: int, expected: list[str]) -> None:
    assert [r.session_id for r in list_session_records(registry_dir, limit=limit)] == expected


def test_missing_registry_directory_lists_nothing(tmp_path: Path) -> None:
    assert list_session_records(tmp_path / "does-not-exist") == []
    assert get_session_summary(tmp_path / "does-not-exist")["num_sessions"] == 0


def test_summary_aggregates_all_sessions(registry_dir: Path) -> None:
    summary = get_session_summary(registry_dir)

    assert summary == {
        "num_sessions": 4,
        "by_status": {"completed": 1, "failed": 1, "started": 1, "aborted": 1},
        "total_realized_pnl": pytest.approx(150.0 - 42.75 + 12.5 - 3.2),
        "avg_max_drawdown": pytest.approx((0.05 + 0.031 + 0.012 + 0.2) / 4),
        "first_started_at": "2025-12-07T18:30:00",
        "last_started_at": "2025-12-09T12:00:00",
    }


def test_summary_for_one_run_type(registry_dir: Path) -> None:
    summary = get_session_summary(registry_dir, run_type="live_session_testnet")

    assert summary["num_sessions"] == 1
    assert summary["by_status"] == {"failed": 1}
    assert summary["total_realized_pnl"] == pytest.approx(-42.75)
    assert summary["first_started_at"] == "2025-12-09T10:15:00+01:00"


def test_absurd_metrics_count_as_no_number_so_sums_stay_finite(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("a", "b"):
        record = make_record(session_id=name, metrics={"realized_pnl": 10**308})
        register_live_session_run(record, tmp_path)
    register_live_session_run(make_record(session_id="c", metrics={"realized_pnl": 1e15}), tmp_path)

    with caplog.at_level(logging.WARNING):
        summary = get_session_summary(tmp_path)

    assert summary["num_sessions"] == 3  # no session is dropped for a metric value
    assert summary["total_realized_pnl"] == 1e15
    assert caplog.records == []


def test_concurrent_reader_never_sees_a_partial_record(tmp_path: Path) -> None:
    small = make_record(config={})
    big = make_record(config={"padding": "x" * 50_000})
    path = tmp_path / record_filename(small)
    register_live_session_run(small, tmp_path)
    stop = threading.Event()
    problems: list[str] = []
    seen_sizes: set[int] = set()
    reads = 0

    def writer() -> None:
        deadline = time.monotonic() + 1.5
        count = 0
        try:
            while time.monotonic() < deadline and not stop.is_set():
                count += 1
                register_live_session_run(big if count % 2 else small, tmp_path)
        except Exception as exc:  # reported below; a thread must not raise
            problems.append(f"writer: {exc!r}")
        finally:
            stop.set()

    def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                content = path.read_bytes()
                record = parse_record(content)
            except Exception as exc:
                problems.append(f"reader: {exc!r}")
                stop.set()
                return
            reads += 1
            seen_sizes.add(len(record.config.get("padding", "")))

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert problems == []
    assert reads > 10
    assert seen_sizes == {0, 50_000}  # the reader really met both versions
    assert os.listdir(tmp_path) == [path.name]  # no temp files left behind


# --- bad files ----------------------------------------------------------------

GOOD = json.loads((DATA_DIR / SPEC_EXAMPLE).read_text(encoding="utf-8"))
GOOD_TEXT = json.dumps(GOOD, indent=2)


def _with(**changes: Any) -> bytes:
    return json.dumps({**GOOD, **changes}).encode()


def _without(key: str) -> bytes:
    return json.dumps({k: v for k, v in GOOD.items() if k != key}).encode()


def _metric_literal(literal: str) -> bytes:
    return GOOD_TEXT.replace('"realized_pnl": 150.0', f'"realized_pnl": {literal}').encode()


BAD_CONTENTS = [
    pytest.param(b'{"session_id": "x", "run_type": }', id="corrupt-json"),
    pytest.param(GOOD_TEXT.encode()[: len(GOOD_TEXT) // 2], id="truncated"),
    pytest.param(GOOD_TEXT.replace("BTC/USDT", "BTC/\xff").encode("latin-1"), id="not-utf8"),
    pytest.param(json.dumps([GOOD]).encode(), id="list-not-object"),
    pytest.param(_without("started_at"), id="missing-started_at"),
    pytest.param(_without("session_id"), id="missing-session_id"),
    pytest.param(_with(started_at=1733626363), id="started_at-number"),
    pytest.param(_with(started_at="last tuesday"), id="started_at-not-iso"),
    pytest.param(_with(started_at="0001-01-01T00:00:00+01:00"), id="started_at-before-year-1-utc"),
    pytest.param(_with(cli_args="--mode shadow"), id="cli_args-string"),
    pytest.param(b"[" * 100_000, id="deeply-nested"),
    pytest.param(b"", id="empty"),
]


@pytest.mark.parametrize("content", BAD_CONTENTS)
def test_bad_file_is_skipped_with_one_warning(
    spec_example_only: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    bad = spec_example_only / "20251209T000000_live_session_shadow_bad.json"
    bad.write_bytes(content)
    caplog.set_level(logging.WARNING, logger=REGISTRY_LOGGER)

    records = list_session_records(spec_example_only)

    assert [r.session_id for r in records] == [SHADOW_ID]
    (message,) = warnings_from_registry(caplog)
    assert str(bad) in message


def _make_large_file(path: Path) -> None:
    with path.open("wb") as handle:  # sparse: costs no disk space
        handle.write(GOOD_TEXT.encode())
        handle.truncate(registry.MAX_RECORD_BYTES + 1)


def _make_directory(path: Path) -> None:
    path.mkdir()
    (path / "inner.json").write_text(GOOD_TEXT, encoding="utf-8")


def _make_symlink(path: Path) -> None:
    outside = path.parent.parent / "outside.json"
    outside.write_bytes(_with(session_id="outside_the_registry"))
    path.symlink_to(outside)


def _make_fifo(path: Path) -> None:
    os.mkfifo(path)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("name", "make"),
    [
        pytest.param("big.json", _make_large_file, id="larger-than-limit"),
        pytest.param("x.json", _make_directory, id="directory"),
        pytest.param("y.json", _make_symlink, id="symlink"),
        pytest.param("z.json", _make_fifo, id="fifo"),
    ],
)
def test_entry_that_is_not_a_record_file_is_skipped_with_one_warning(
    spec_example_only: Path,
    caplog: pytest.LogCaptureFixture,
    name: str,
    make: Callable[[Path], None],
) -> None:
    bad = spec_example_only / name
    make(bad)
    caplog.set_level(logging.WARNING, logger=REGISTRY_LOGGER)

    records = list_session_records(spec_example_only)

    assert [r.session_id for r in records] == [SHADOW_ID]
    (message,) = warnings_from_registry(caplog)
    assert str(bad) in message


def test_valid_record_over_a_lowered_limit_is_skipped(
    spec_example_only: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "MAX_RECORD_BYTES", 4096)
    big = spec_example_only / "20251209T000000_live_session_shadow_big.json"
    big.write_bytes(_with(session_id="big", config={"padding": "x" * 5000}))
    caplog.set_level(logging.WARNING, logger=REGISTRY_LOGGER)

    records = list_session_records(spec_example_only)

    assert [r.session_id for r in records] == [SHADOW_ID]
    (message,) = warnings_from_registry(caplog)
    assert str(big) in message
    assert "too large" in message


def test_other_files_and_temp_files_are_ignored_silently(
    spec_example_only: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (spec_example_only / "README.md").write_text("notes", encoding="utf-8")
    (spec_example_only / "session.json~").write_text(GOOD_TEXT, encoding="utf-8")
    (spec_example_only / ".tmp-abc.partial").write_text(GOOD_TEXT[:20], encoding="utf-8")
    caplog.set_level(logging.WARNING, logger=REGISTRY_LOGGER)

    assert [r.session_id for r in list_session_records(spec_example_only)] == [SHADOW_ID]
    assert warnings_from_registry(caplog) == []


# --- the lifecycle helper -------------------------------------------------------


def session_kwargs(base_dir: Path, **extra: Any) -> dict[str, Any]:
    return {
        "mode": "testnet",
        "env_name": "kraken_futures_testnet",
        "symbol": "BTC/USDT",
        "config": {"strategy_name": "ma_crossover"},
        "cli_args": ["--mode", "testnet"],
        "base_dir": base_dir,
        **extra,
    }


def only_record(base_dir: Path) -> dict[str, Any]:
    (path,) = base_dir.iterdir()
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_session_that_ends_normally_is_completed(tmp_path: Path) -> None:
    with live_session(**session_kwargs(tmp_path)) as session:
        assert only_record(tmp_path)["status"] == "started"
        session.set_metrics(realized_pnl=12.5, num_orders=3)

    data = only_record(tmp_path)
    assert data["status"] == "completed"
    assert data["finished_at"] is not None
    assert data["error"] is None
    assert data["run_type"] == "live_session_testnet"
    assert data["metrics"] == {"realized_pnl": 12.5, "num_orders": 3}
    assert re.fullmatch(r"session_\d{8}_\d{6}_testnet_[0-9a-f]{6}", data["session_id"])


def test_session_whose_bot_raises_is_failed_and_the_exception_propagates(tmp_path: Path) -> None:
    boom = RuntimeError("kraken_futures_testnet rejected order: insufficient margin")

    with pytest.raises(RuntimeError) as raised, live_session(**session_kwargs(tmp_path)):
        raise boom

    assert raised.value is boom
    data = only_record(tmp_path)
    assert data["status"] == "failed"
    assert (
        data["error"] == "RuntimeError: kraken_futures_testnet rejected order: insufficient margin"
    )
    assert data["finished_at"] is not None


def test_interrupted_session_is_aborted(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), live_session(**session_kwargs(tmp_path)):
        raise KeyboardInterrupt

    data = only_record(tmp_path)
    assert data["status"] == "aborted"
    assert data["error"].startswith("KeyboardInterrupt")


def test_exception_with_broken_str_still_propagates_unchanged(tmp_path: Path) -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("broken __str__")

    boom = Unprintable()

    with pytest.raises(Unprintable) as raised, live_session(**session_kwargs(tmp_path)):
        raise boom

    assert raised.value is boom
    assert only_record(tmp_path)["status"] == "failed"


@pytest.fixture
def unwritable_registry(tmp_path: Path) -> Path:
    # Tests run as root, so chmod would not stop a write: put the registry under a file.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    return blocker / "live_sessions"


def test_registry_failure_does_not_change_the_bots_result(
    unwritable_registry: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def run_bot() -> str:
        with live_session(**session_kwargs(unwritable_registry, heartbeat_seconds=0)) as session:
            session.set_metrics(realized_pnl=1.0)
            return "traded"

    caplog.set_level(logging.ERROR, logger="src.experiments.live_session")

    assert run_bot() == "traded"
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 3  # started, heartbeat, completed: each logged, none raised
    assert all("Could not write live-session record" in message for message in errors)


def test_registry_failure_does_not_change_the_bots_exception(
    unwritable_registry: Path, caplog: pytest.LogCaptureFixture
) -> None:
    boom = ValueError("strategy blew up")
    caplog.set_level(logging.ERROR, logger="src.experiments.live_session")

    with pytest.raises(ValueError) as raised, live_session(**session_kwargs(unwritable_registry)):
        raise boom

    assert raised.value is boom
    assert raised.value.__context__ is None
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 2


def test_set_metrics_writes_a_heartbeat_while_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = iter(datetime(2025, 12, 8, 12, 0, s) for s in range(0, 60, 5))
    monkeypatch.setattr(live_session_module, "_now", lambda: next(clock))

    with live_session(**session_kwargs(tmp_path, heartbeat_seconds=0)) as session:
        session.set_metrics(realized_pnl=5.0)
        running = only_record(tmp_path)

    assert running["status"] == "started"
    assert running["started_at"] == "2025-12-08T12:00:00"
    assert running["updated_at"] == "2025-12-08T12:00:05"
    assert running["metrics"] == {"realized_pnl": 5.0}
    assert only_record(tmp_path)["updated_at"] == "2025-12-08T12:00:10"


def test_set_metrics_does_not_write_more_often_than_the_heartbeat(tmp_path: Path) -> None:
    with live_session(**session_kwargs(tmp_path, heartbeat_seconds=3600)) as session:
        session.set_metrics(realized_pnl=5.0)
        running = only_record(tmp_path)

    assert running["metrics"] == {}  # not yet written: the last write is too recent
    assert only_record(tmp_path)["metrics"] == {"realized_pnl": 5.0}


# --- demo sessions ----------------------------------------------------------------


def test_demo_records_are_deterministic_and_cover_every_mode_and_status() -> None:
    records = generate_demo_records(8, now=NOW)

    assert records == generate_demo_records(8, now=NOW)
    assert records != generate_demo_records(8, seed=83, now=NOW)
    assert {r.mode for r in generate_demo_records(9, now=NOW)} == {
        "shadow",
        "testnet",
        "paper",
        "live",
        "bounded_pilot",
    }
    assert {r.status for r in records} == {"started", "completed", "failed", "aborted"}


def test_demo_records_look_like_real_sessions() -> None:
    records = generate_demo_records(200, now=NOW)

    assert len({r.session_id for r in records}) == 200
    statuses = [r.status for r in records]
    assert statuses.count("completed") > len(records) / 2
    assert 1 <= statuses.count("started") <= 5
    pnls = [r.metrics["realized_pnl"] for r in records]
    assert min(pnls) < 0 < max(pnls)
    assert {r.run_id is None for r in records} == {True, False}
    for r in records:
        assert re.fullmatch(rf"session_\d{{8}}_{r.mode}_[0-9a-f]{{6}}", r.session_id)
        assert r.run_type == f"live_session_{r.mode}"
        assert r.started_at.tzinfo is None and r.started_at.microsecond == 0
        assert NOW - timedelta(days=43) <= r.started_at <= NOW
        assert 0 <= r.metrics["max_drawdown"] <= 0.25
        assert r.metrics["num_trades"] <= r.metrics["num_orders"]
        assert r.config["strategy"]["name"] and r.cli_args
        assert 1024 <= len(json.dumps(r.to_dict(), indent=2)) <= 4096
        if r.status == "started":
            assert r.finished_at is None
            assert r.started_at >= NOW - timedelta(hours=1)
        else:
            assert r.finished_at is not None and r.started_at < r.finished_at <= NOW
        if r.status in ("failed", "aborted"):
            assert r.error and len(r.error) < 120
        else:
            assert r.error is None


def test_demo_sessions_are_written_through_the_registry(tmp_path: Path) -> None:
    paths = write_demo_sessions(tmp_path, 12, now=NOW)

    assert sorted(p.name for p in paths) == sorted(os.listdir(tmp_path))
    expected = [r.to_dict() for r in generate_demo_records(12, now=NOW)]
    loaded = [r.to_dict() for r in list_session_records(tmp_path)]
    assert sorted(loaded, key=lambda d: d["session_id"]) == sorted(
        expected, key=lambda d: d["session_id"]
    )


# --- the command line ---------------------------------------------------------------


def _console_script() -> str | None:
    return shutil.which("live-track", path=os.path.dirname(sys.executable))


@pytest.fixture(params=["python-m", "console-script"])
def entry(request: pytest.FixtureRequest) -> list[str]:
    """How a user starts the CLI: ``python -m src.cli`` or the installed ``live-track``."""
    if request.param == "python-m":
        return [sys.executable, "-m", "src.cli"]
    script = _console_script()
    if script is None:
        pytest.skip("live-track console script is not installed")
    return [script]


def run_cli(
    entry: list[str], *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LIVE_TRACK_") and k != registry.REGISTRY_DIR_ENV
    }
    return subprocess.run(
        [*entry, *args],
        cwd=REPO_ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def table_ids(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    assert lines[0].split()[:3] == ["SESSION", "MODE", "STATUS"]
    return [line.split()[0] for line in lines[1:] if line.startswith(("session_", "smoke_"))]


def test_cli_demo_writes_sessions_of_every_mode_and_status(
    entry: list[str], tmp_path: Path
) -> None:
    target = tmp_path / "demo"

    result = run_cli(entry, "demo", "--registry", str(target), "--count", "16", "--seed", "7")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Wrote 16 demo sessions to {target}."
    assert len(list(target.glob("*.json"))) == 16
    records = list_session_records(target)
    assert {r.mode for r in records} == {"shadow", "testnet", "paper", "live", "bounded_pilot"}
    assert {r.status for r in records} == {"started", "completed", "failed", "aborted"}


def test_cli_list_reads_the_registry_from_the_environment(
    entry: list[str], registry_dir: Path
) -> None:
    result = run_cli(entry, "sessions", "list", env={registry.REGISTRY_DIR_ENV: str(registry_dir)})

    assert result.returncode == 0, result.stderr
    assert table_ids(result.stdout) == NEWEST_FIRST
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:] if line}
    assert rows[SHADOW_ID].split() == [
        SHADOW_ID,
        "shadow",
        "completed",
        "2025-12-08",
        "02:52:43",
        "2025-12-08",
        "03:52:43",
        "+150.00",
        "USDT",  # every amount says its currency
        "5.0%",
        "10",
    ]
    assert rows[TESTNET_ID].split()[3:5] == ["2025-12-09", "09:15:00"]  # shown in UTC
    # The paper session's writer sends heartbeats, and the last is long past.
    assert "stale" in rows[PAPER_ID].split()
    assert rows[LIVE_ID].split()[1] == "live*"
    assert "* real money (live, bounded_pilot)" in result.stdout
    # Aligned: each row's mode and status start under their headers.
    header = result.stdout.splitlines()[0]
    for row, mode, status in [
        (rows[PAPER_ID], "paper", "started"),
        (rows[TESTNET_ID], "testnet", "failed"),
        (rows[LIVE_ID], "live*", "aborted"),
    ]:
        assert row.index(f" {mode} ") + 1 == header.index("MODE")
        assert row.index(f" {status} ") + 1 == header.index("STATUS")


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param(["--mode", "testnet"], [TESTNET_ID], id="mode"),
        pytest.param(["--status", "completed"], [SHADOW_ID], id="status"),
        pytest.param(["--mode", "paper", "--status", "started"], [PAPER_ID], id="both"),
        pytest.param(["--limit", "2"], NEWEST_FIRST[:2], id="limit"),
    ],
)
def test_cli_list_filters(registry_dir: Path, filters: list[str], expected: list[str]) -> None:
    result = run_cli(
        [sys.executable, "-m", "src.cli"],
        "sessions",
        "list",
        "--registry",
        str(registry_dir),
        *filters,
    )

    assert result.returncode == 0, result.stderr
    assert table_ids(result.stdout) == expected


def test_cli_list_says_when_nothing_matches(registry_dir: Path, tmp_path: Path) -> None:
    module = [sys.executable, "-m", "src.cli"]
    empty = tmp_path / "empty"

    no_match = run_cli(
        module,
        "sessions",
        "list",
        "--registry",
        str(registry_dir),
        "--mode",
        "live",
        "--status",
        "failed",
    )
    no_registry = run_cli(module, "sessions", "list", "--registry", str(empty))

    assert no_match.stdout.strip() == (
        f"No live sessions matching mode=live, status=failed found in {registry_dir}."
    )
    assert no_registry.stdout.strip() == f"No live sessions found in {empty}."
    assert no_match.returncode == no_registry.returncode == 0


def test_cli_list_does_not_pass_escape_sequences_to_the_terminal(tmp_path: Path) -> None:
    register_live_session_run(make_record(session_id="evil\x1b[2J\x07"), tmp_path)

    result = run_cli(
        [sys.executable, "-m", "src.cli"], "sessions", "list", "--registry", str(tmp_path)
    )

    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "evil?[2J?" in result.stdout


def test_cli_list_rejects_an_unknown_status() -> None:
    result = run_cli([sys.executable, "-m", "src.cli"], "sessions", "list", "--status", "done")

    assert result.returncode == 2
    assert "invalid choice: 'done'" in result.stderr


def test_cli_show_prints_the_whole_record(entry: list[str], registry_dir: Path) -> None:
    result = run_cli(entry, "sessions", "show", SHADOW_ID, "--registry", str(registry_dir))

    assert result.returncode == 0, result.stderr
    # The same read model as the API: the detail JSON, config and metrics as written.
    shown = json.loads(result.stdout)
    with TestClient(create_app(Settings(registry_dir=registry_dir, watch=False))) as client:
        assert shown == client.get(f"/api/live_sessions/{SHADOW_ID}").json()
    assert shown["config"] == GOOD["config"] and shown["metrics"] == GOOD["metrics"]
    assert shown["cli_args"] == GOOD["cli_args"]
    assert result.stdout.startswith('{\n  "session_id": "smoke_test_20251208_01",\n')


def test_cli_show_unknown_id_exits_1(entry: list[str], registry_dir: Path) -> None:
    result = run_cli(entry, "sessions", "show", "session_nope", "--registry", str(registry_dir))

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == f"No live session with id 'session_nope' in {registry_dir}."


def test_cli_summary(entry: list[str], registry_dir: Path) -> None:
    result = run_cli(entry, "sessions", "summary", "--registry", str(registry_dir))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"Registry:               {registry_dir}",
        "Sessions:               4",
        "By status:              started 1, completed 1, failed 1, aborted 1",
        "By mode:                paper 1, testnet 1, shadow 1, live 1",
        "Running:                1 (1 stale)",
        # Real money first, never added to simulated money or another currency.
        "Realized PnL Echtgeld:  -3.20 EUR (1 sessions)",
        "Realized PnL Simuliert: +119.75 USDT (3 sessions)",
        "Avg max drawdown:       7.3%",
        "First started (UTC):    2025-12-07 18:30:00",
        "Last started (UTC):     2025-12-09 12:00:00",
    ]


def test_cli_serve_refuses_a_public_host_without_a_token(entry: list[str], tmp_path: Path) -> None:
    result = run_cli(entry, "serve", "--host", "0.0.0.0", "--registry", str(tmp_path))

    assert result.returncode == 2
    assert "Refusing to serve on 0.0.0.0 without an auth token" in result.stderr
    assert "--auth-token" in result.stderr
    assert "LIVE_TRACK_AUTH_TOKEN" in result.stderr


class FakeServer:
    """Stands in for uvicorn and the app factory: records what serve would start."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import uvicorn

        self.calls: list[dict[str, Any]] = []
        app_module = types.ModuleType("src.webui.app")
        app_module.create_app = lambda settings: ("app", settings)
        monkeypatch.setitem(sys.modules, "src.webui.app", app_module)
        monkeypatch.setattr(uvicorn, "run", lambda app, **kw: self.calls.append({"app": app, **kw}))


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    for name in list(os.environ):
        if name.startswith("LIVE_TRACK_") or name == registry.REGISTRY_DIR_ENV:
            monkeypatch.delenv(name)
    return FakeServer(monkeypatch)


def test_cli_serve_passes_only_given_options_so_env_vars_still_apply(
    fake_server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVE_TRACK_PORT", "9001")
    monkeypatch.setenv("LIVE_TRACK_STALE_AFTER_SECONDS", "60")

    assert cli.main(["serve", "--registry", str(tmp_path)]) == 0

    (call,) = fake_server.calls
    _, settings = call["app"]
    assert (call["host"], call["port"]) == ("127.0.0.1", 9001)
    assert settings.registry_dir == tmp_path
    assert settings.stale_after_seconds == 60


def test_cli_serve_options_win_over_env_vars(
    fake_server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVE_TRACK_PORT", "9001")
    monkeypatch.setenv(registry.REGISTRY_DIR_ENV, str(tmp_path / "from-env"))

    code = cli.main(
        [
            "serve",
            "--registry",
            str(tmp_path),
            "--host",
            "0.0.0.0",
            "--port",
            "8123",
            "--auth-token",
            "s3cret",
        ]
    )

    assert code == 0
    (call,) = fake_server.calls
    _, settings = call["app"]
    assert (call["host"], call["port"]) == ("0.0.0.0", 8123)
    assert settings.registry_dir == tmp_path
    assert settings.auth_token.get_secret_value() == "s3cret"


def test_cli_serve_accepts_the_token_from_the_environment(
    fake_server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVE_TRACK_AUTH_TOKEN", "from-env")

    assert cli.main(["serve", "--host", "0.0.0.0"]) == 0
    assert len(fake_server.calls) == 1


def test_cli_serve_rejects_an_invalid_port(
    fake_server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["serve", "--port", "70000"]) == 2
    assert fake_server.calls == []
    assert "port" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("code", "status"), [(0, "completed"), (None, "completed"), (3, "aborted")]
)
def test_lifecycle_sys_exit_is_judged_by_its_code(
    tmp_path: Path, code: int | None, status: str
) -> None:
    with (
        pytest.raises(SystemExit),
        live_session(mode="paper", env_name="paper_broker", symbol="BTC/USDT", base_dir=tmp_path),
    ):
        sys.exit(code)
    [record] = list_session_records(tmp_path)
    assert record.status == status
    assert (record.error is None) == (status == "completed")
