"""The lifecycle helper bot code runs a session in, and the demo generator."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from src.experiments import live_session as live_session_module
from src.experiments.demo_sessions import generate_demo_records, write_demo_sessions
from src.experiments.live_session import live_session
from src.experiments.live_session_registry import (
    list_session_records,
)

NOW = datetime(2025, 12, 10, 12, 0, 0)


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
    # *.json: a background heartbeat may have its temporary file open beside it.
    (path,) = base_dir.glob("*.json")
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
    # started and completed, plus the heartbeat unless the final write took it
    # over (coalesced, issue 12): each logged, none raised.
    assert len(errors) in (2, 3)
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
        # Written off the bot's thread (issue 12): wait for it, bounded; a
        # temporary file may sit beside the record while the write runs.
        deadline = time.monotonic() + 10
        while (running := only_record(tmp_path))["metrics"] != {"realized_pnl": 5.0}:
            assert time.monotonic() < deadline, "heartbeat never written"
            time.sleep(0.01)

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
