"""A head holds its times as seconds and its shared texts in a profile; what it
gives back must be exactly what the writer wrote."""

from __future__ import annotations

import json
import marshal
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from src.experiments.live_session_record import parse_head_record
from src.experiments.registry_files import file_stamp
from src.experiments.session_head import (
    SessionHead,
    from_wire,
    head_from_record,
    make_head,
    to_wire,
)


def head_of(record: dict[str, object], name: str = "a.json") -> SessionHead:
    return head_from_record(name, file_stamp(1, 1), parse_head_record(json.dumps(record).encode()))


def record_with(**times: object) -> dict[str, object]:
    return {
        "session_id": "s1",
        "run_type": "live_session_paper",
        "mode": "paper",
        "env_name": "kraken_spot",
        "symbol": "BTC/EUR",
        "status": "completed",
        "started_at": "2026-03-01T10:00:00",
        "finished_at": None,
        "config": {"strategy_name": "ma_cross"},
        "metrics": {"realized_pnl": 1.5},
        **times,
    }


@pytest.mark.parametrize(
    ("started", "finished", "updated"),
    [
        ("2026-03-01T10:00:00", "2026-03-01T12:30:00.000001", None),  # the original writers
        ("2026-03-01T10:00:00+00:00", None, "2026-03-01T10:05:00.5+00:00"),  # running, heartbeat
        ("2026-03-01T10:00:00+02:00", "2026-03-01T11:00:00-05:30", "2026-03-01T16:30:00+00:00"),
        ("2026-03-01T10:00:00Z", "2026-03-01T10:00:00Z", "2026-03-01T10:00:00Z"),
        ("1900-01-01T00:00:00.999999", "2099-12-31T23:59:59.999999", None),
        ("0001-01-02T00:00:00", "9999-12-30T23:59:59.999999+01:00", "2200-01-01T00:00:00.000001"),
    ],
)
def test_a_head_gives_back_the_times_as_written(
    started: str, finished: str | None, updated: str | None
) -> None:
    raw = record_with(started_at=started, finished_at=finished, updated_at=updated)
    record = parse_head_record(json.dumps(raw).encode())
    head = head_of(raw)

    for mine, theirs in [
        (head.started_at, record.started_at),
        (head.finished_at, record.finished_at),
        (head.updated_at, record.updated_at),
    ]:
        assert mine == theirs
        assert (mine and mine.isoformat()) == (theirs and theirs.isoformat())  # same zone, too
    assert head.ended is (finished is not None)
    assert (
        head.started
        == record.started_at.replace(tzinfo=record.started_at.tzinfo or timezone.utc).timestamp()
    )


def test_seconds_hold_every_microsecond_of_two_and_a_half_centuries() -> None:
    rng = random.Random(7)
    zones = [
        None,
        timezone.utc,
        timezone(timedelta(hours=5, minutes=30)),
        timezone(-timedelta(hours=8)),
    ]
    epoch = datetime(1970, 1, 1)
    for _ in range(20_000):
        moment = epoch + timedelta(
            seconds=rng.randrange(-4_290_000_000, 4_290_000_000),
            microseconds=rng.randrange(1_000_000),
        )
        zone = rng.choice(zones)
        written = moment if zone is None else moment.replace(tzinfo=zone)
        head = make_head(**fields(started_at=written, finished_at=written, updated_at=written))
        assert head.profile.exact is None  # held as seconds, not as datetimes
        assert (head.started_at.isoformat(), head.finished_at, head.updated_at) == (
            written.isoformat(),
            written,
            written,
        )


def fields(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "file_name": "a.json",
        "stamp": file_stamp(1, 1),
        "session_id": "s1",
        "run_type": "live_session_live",
        "mode": "live",
        "env_name": "binance",
        "symbol": "BTC/USDT",
        "status": "completed",
        "started_at": datetime(2026, 1, 1),
        "finished_at": None,
        "updated_at": None,
        "realized_pnl": None,
        "unrealized_pnl": None,
        "max_drawdown": None,
        "num_orders": None,
        "report_path": None,
        "error": None,
        "currency": "USDT",
        "strategy_name": "ma",
        "risk": None,
    }
    return base | changes


def test_heads_of_one_kind_share_one_profile() -> None:
    first = head_of(record_with(session_id="a"), "a.json")
    second = head_of(record_with(session_id="b", metrics={"realized_pnl": -2.0}), "b.json")
    other = head_of(record_with(session_id="c", status="failed"), "c.json")

    assert first.profile is second.profile
    assert other.profile is not first.profile
    assert (first.mode, first.strategy_name, first.currency, other.status) == (
        "paper",
        "ma_cross",
        "EUR",
        "failed",
    )


def test_heads_cross_processes_unchanged(tmp_path: Path) -> None:
    heads = [
        head_of(record_with(session_id=f"s{n}", started_at=started), f"{n}.json")
        for n, started in enumerate(
            ["2026-03-01T10:00:00", "2026-03-01T10:00:00+02:00", "2300-01-01T00:00:00"]
        )
    ]
    wire = marshal.loads(marshal.dumps([to_wire(head.stamp, head) for head in heads]))
    back = [from_wire(item) for item in wire]

    assert [head for _, head in back] == heads
    assert [head.started_at.isoformat() for _, head in back] == [
        "2026-03-01T10:00:00",
        "2026-03-01T10:00:00+02:00",
        "2300-01-01T00:00:00",
    ]
    assert back[0][1].profile is heads[0].profile


def test_long_texts_of_rewritten_records_are_not_kept() -> None:
    """A writer making up a new long symbol in every rewrite: the old texts go
    with their heads, shared profiles or not (review finding)."""
    import gc
    import tracemalloc

    def write_and_forget(n: int) -> None:
        head = head_of(record_with(session_id="s", env_name=f"{n}" + "x" * 200_000))
        marshal.dumps(to_wire(head.stamp, head))  # the wire keeps plain forms too

    write_and_forget(0)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(1, 21):
            write_and_forget(n)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 200_000  # 20 versions of 200 kB each: none of them stays
