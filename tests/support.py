"""Helpers shared by the test modules."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any


def original_record(
    session_id: str,
    *,
    mode: str = "shadow",
    status: str = "started",
    started_at: datetime = datetime(2026, 11, 24, 8, 0, 0, 123456),
    finished_at: datetime | None = None,
    metrics: dict[str, Any] | None = None,
    **more: Any,
) -> dict[str, Any]:
    """A record as the original Peak_Trade writers build it: naive UTC times with
    microseconds, ``strategy_tier`` (mostly null), no heartbeat key."""
    data: dict[str, Any] = {
        "session_id": session_id,
        "run_id": None,
        "run_type": f"live_session_{mode}",
        "mode": mode,
        "env_name": f"{mode}_kraken_futures"
        if mode != "bounded_pilot"
        else "bounded_pilot_kraken_live",
        "symbol": "BTC/USDT",
        "status": status,
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat() if finished_at else None,
        "config": {"strategy_name": "ma_crossover", "timeframe": "15m", "tags": ["core"]},
        "metrics": metrics if metrics is not None else {},
        "cli_args": ["python", "scripts/run_live_session.py", "--mode", mode],
        "error": None,
        "created_at": started_at.isoformat(),
        "strategy_tier": None,
    }
    data.update(more)
    return data


def write_like_original(directory: Path, data: dict[str, Any]) -> Path:
    """Write the way the original writers do: in place (not atomic), json.dump's
    defaults (NaN and Infinity as bare literals), the documented file name."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromisoformat(data["started_at"]).strftime("%Y%m%dT%H%M%S")
    safe = "".join("_" if char in "/: " else char for char in data["session_id"])
    path = directory / f"{stamp}_{data['run_type']}_{safe}.json"
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    return path
