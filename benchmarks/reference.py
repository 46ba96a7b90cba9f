"""The dashboard's views the plain way: scan every file, then filter, sort and sum in Python.

This is what the index replaces. It serves as the baseline of the benchmark's
ratio column and as an oracle: ``agrees_with_index`` checks that both give the
same sessions and numbers.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from src.experiments.live_session_registry import StoredRecord, scan_registry, utc_instant
from src.webui.session_query import SESSION_STATUSES, normalize_status

STALE_AFTER = timedelta(minutes=15)
MAX_CHART_POINTS = 400
DRAWDOWN_BARS = 40


def scan(directory: Path) -> list[StoredRecord]:
    """Every readable record in the registry (one full pass over the directory)."""
    return scan_registry(directory).records


def _status(stored: StoredRecord) -> str:
    return normalize_status(stored.record.status, stored.record.finished_at is not None)


def _activity(stored: StoredRecord) -> tuple[float, str]:
    record = stored.record
    return (utc_instant(record.finished_at or record.started_at).timestamp(), stored.name)


def _number(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    return float(value) if isinstance(value, (int, float)) else None


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
    if _status(stored) != "started":
        return False
    if record.updated_at is not None:
        last_seen = utc_instant(record.updated_at)
    else:
        last_seen = datetime.fromtimestamp(stored.stamp.mtime_ns / 1e9, tz=timezone.utc)
    return now - last_seen > STALE_AFTER


def stats(records: list[StoredRecord], now: datetime) -> dict[str, Any]:
    by_status = Counter(dict.fromkeys(SESSION_STATUSES, 0))
    by_status.update(_status(s) for s in records)
    pnls = [p for s in records if (p := _number(s.record.metrics, "realized_pnl")) is not None]
    drawdowns = [d for s in records if (d := _number(s.record.metrics, "max_drawdown")) is not None]
    ended = by_status["completed"] + by_status["failed"] + by_status["aborted"]
    return {
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
