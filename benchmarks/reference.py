"""The dashboard's views the plain way: scan every file, then filter, sort and sum in Python.

This is what the index replaces. It serves as the baseline of the benchmark's
ratio column and as an oracle: ``agrees_with_index`` checks that both give the
same sessions and numbers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from src.experiments.live_session_record import (
    InvalidRecord,
    LiveSessionRecord,
    metric_number,
    utc_instant,
)
from src.experiments.registry_files import FileStamp, SkippedFile, list_registry, read_record
from src.webui.session_query import normalize_status
from src.webui.vocabulary import SESSION_STATUSES

STALE_AFTER = timedelta(minutes=15)
MAX_CHART_POINTS = 400
DRAWDOWN_BARS = 40


@dataclass(frozen=True)
class StoredRecord:
    """A record together with the registry file it came from."""

    name: str
    stamp: FileStamp
    record: LiveSessionRecord


@dataclass
class RegistryScan:
    records: list[StoredRecord] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


def scan_registry(directory: Path) -> RegistryScan:
    """Read every file, the plain way: list, then read and parse each one."""
    result = RegistryScan()
    for name, listed in sorted(list_registry(directory).items()):
        if isinstance(listed, SkippedFile):
            result.skipped.append(listed)
            continue
        try:
            record, stamp = read_record(directory / name)
        except InvalidRecord as exc:
            result.skipped.append(SkippedFile(name, str(exc)))
        else:
            result.records.append(StoredRecord(name, stamp, record))
    return result


def scan(directory: Path) -> list[StoredRecord]:
    """Every readable record in the registry (one full pass over the directory)."""
    return scan_registry(directory).records


def _status(stored: StoredRecord) -> str:
    return normalize_status(stored.record.status, stored.record.finished_at is not None)


def _activity(stored: StoredRecord) -> tuple[float, str]:
    record = stored.record
    return (utc_instant(record.finished_at or record.started_at).timestamp(), stored.name)


def _number(metrics: dict[str, Any], key: str) -> float | None:
    if key == "realized_pnl" and metrics.get(key) is None:
        return metric_number(metrics.get("pnl"))
    return metric_number(metrics.get(key))


def _summary(stored: StoredRecord) -> dict[str, Any]:
    record = stored.record
    return {
        "session_id": record.session_id,
        "started_at": record.started_at,
        "ended_at": record.finished_at,
        "mode": record.mode,
        "status": _status(stored),
        "realized_pnl": _number(record.metrics, "realized_pnl"),
        "max_drawdown": _number(record.metrics, "max_drawdown"),
    }


def newest(records: list[StoredRecord]) -> list[StoredRecord]:
    return sorted(records, key=_activity, reverse=True)


def recent(records: list[StoredRecord], limit: int = 10) -> list[dict[str, Any]]:
    return [_summary(s) for s in newest(records)[:limit]]


def filtered(
    records: list[StoredRecord], mode: str, status: str, limit: int = 10
) -> list[dict[str, Any]]:
    matching = [s for s in records if s.record.mode == mode and _status(s) == status]
    return [_summary(s) for s in newest(matching)[:limit]]


def _is_stale(stored: StoredRecord, now: datetime) -> bool:
    record = stored.record
    if _status(stored) != "started" or record.updated_at is None:
        return False  # without heartbeats liveness is unknown, never stale
    return now - utc_instant(record.updated_at) > STALE_AFTER


def stats(records: list[StoredRecord], now: datetime) -> dict[str, Any]:
    by_status = Counter(dict.fromkeys(SESSION_STATUSES, 0))
    by_status.update(_status(s) for s in records)
    pnls = [p for s in records if (p := _number(s.record.metrics, "realized_pnl")) is not None]
    drawdowns = [d for s in records if (d := _number(s.record.metrics, "max_drawdown")) is not None]
    ended = by_status["completed"] + by_status["failed"] + by_status["aborted"]
    return {
        "total_sessions": len(records),
        "total_pnl": round(sum(pnls), 8),
        "avg_drawdown": sum(drawdowns) / len(drawdowns) if drawdowns else 0.0,
        "sessions": len(records),
        "by_status": dict(by_status),
        "by_mode": dict(Counter(s.record.mode or "unbekannt" for s in records).most_common()),
        "success_rate": by_status["completed"] / ended if ended else None,
        "total_realized_pnl": round(sum(pnls), 8),
        "avg_realized_pnl": round(sum(pnls) / len(pnls), 8) if pnls else None,
        "worst_drawdown": max(drawdowns) if drawdowns else None,
        "running": by_status["started"],
        "stale": sum(1 for s in records if _is_stale(s, now)),
    }


def page(records: list[StoredRecord], now: datetime, limit: int = 10) -> dict[str, Any]:
    """Tile, first table page, stats and both chart series, as the dashboard shows them."""
    ordered = newest(records)
    tile = next((s for s in ordered if _status(s) == "completed"), ordered[0] if ordered else None)
    ended = sorted(
        (
            (utc_instant(s.record.finished_at), pnl, s.record.session_id)
            for s in records
            if s.record.finished_at is not None
            and (pnl := _number(s.record.metrics, "realized_pnl")) is not None
        ),
        key=lambda point: point[0],
    )
    total, cumulative = 0.0, []
    for at, pnl, session_id in ended:
        total += pnl
        cumulative.append((at, round(total, 8), session_id))
    if len(cumulative) > MAX_CHART_POINTS:
        step = (len(cumulative) - 1) / (MAX_CHART_POINTS - 1)
        cumulative = [cumulative[round(i * step)] for i in range(MAX_CHART_POINTS)]
    drawdowns = [
        (s.record.finished_at or s.record.started_at, d, s.record.session_id)
        for s in ordered
        if (d := _number(s.record.metrics, "max_drawdown")) is not None
    ][:DRAWDOWN_BARS]
    return {
        "total_sessions": len(records),
        "tile": _summary(tile) if tile else None,
        "sessions": [_summary(s) for s in ordered[:limit]],
        "stats": stats(records, now),
        "cumulative_pnl": cumulative,
        "drawdowns": drawdowns[::-1],
    }
