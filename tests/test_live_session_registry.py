"""The live-session registry: records, files, listing, summary and bad files."""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from src.experiments import registry_files as registry
from src.experiments.live_session_record import parse_record
from src.experiments.live_session_registry import (
    LiveSessionRecord,
    get_session_summary,
    list_session_records,
    register_live_session_run,
)
from src.experiments.registry_files import record_filename
from tests.support import (
    DATA_REGISTRY,
    LIVE_ID,
    NEWEST_FIRST,
    PAPER_ID,
    SHADOW_ID,
    SPEC_EXAMPLE,
    TESTNET_ID,
    make_session,
)

REGISTRY_LOGGER = "src.experiments.live_session_registry"


@pytest.fixture
def spec_example_only(tmp_path: Path) -> Path:
    """A registry holding only the spec's example record (docs/live-track-panel.md)."""
    target = tmp_path / "live_sessions"
    target.mkdir()
    shutil.copy(DATA_REGISTRY / SPEC_EXAMPLE, target / SPEC_EXAMPLE)
    return target


def make_record(**changes: Any) -> LiveSessionRecord:
    """A running session as the lifecycle helper first writes it: no metrics yet."""
    fields = {"run_id": "run_20251208_shadow", "status": "started", "metrics": {}, "config": {},
              "cli_args": []}  # fmt: skip
    session_id = changes.pop("session_id", "session_20251208_shadow_ab12cd")
    return make_session(session_id, **{**fields, **changes})


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
    raw = json.loads((DATA_REGISTRY / SPEC_EXAMPLE).read_text(encoding="utf-8"))

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

GOOD = json.loads((DATA_REGISTRY / SPEC_EXAMPLE).read_text(encoding="utf-8"))
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
