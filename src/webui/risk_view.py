"""Risk limits of one session as bars: how close each limit is to breaking.

Writers put them in ``metrics.limit_details`` or ``metrics.risk_check.limit_details``
as a list of ``{limit_name|name, current_value|value, limit_value|limit, ratio,
severity}``. Entries that carry neither a value nor a ratio say nothing and are
left out; a session without the list shows no bars at all, not "ok".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Optional

from pydantic import BaseModel

from src.experiments.session_head import risk_level

LIMITS_SHOWN = 50


class LimitBar(BaseModel):
    """One limit: its value, the limit, the ratio between them and the traffic light."""

    name: str
    value: Optional[float] = None  # noqa: UP045
    limit: Optional[float] = None  # noqa: UP045
    ratio: Optional[float] = None  # noqa: UP045 - value / limit, 1.0 = at the limit
    severity: Optional[str] = None  # noqa: UP045 - green, yellow or red


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _first(entry: Mapping[str, Any], *keys: str) -> object:
    for key in keys:
        if entry.get(key) is not None:
            return entry[key]
    return None


def _bar(entry: Mapping[str, Any], position: int) -> LimitBar | None:
    value = _number(_first(entry, "current_value", "value"))
    limit = _number(_first(entry, "limit_value", "limit"))
    ratio = _number(entry.get("ratio"))
    if ratio is None and value is not None and limit:
        ratio = abs(value / limit)
    if value is None and ratio is None:
        return None
    name = _first(entry, "limit_name", "name")
    severity = entry.get("severity")
    return LimitBar(
        name=str(name)[:120] if name is not None else f"Limit {position}",
        value=value,
        limit=limit,
        ratio=ratio,
        severity=risk_level({"risk_severity": severity}) if isinstance(severity, str) else None,
    )


def limit_bars(metrics: Mapping[str, Any]) -> list[LimitBar]:
    """The limit entries of a record's metrics, in the writer's order."""
    details = metrics.get("limit_details")
    check = metrics.get("risk_check")
    if not isinstance(details, list) and isinstance(check, Mapping):
        details = check.get("limit_details")
    if not isinstance(details, list):
        return []
    bars = [
        _bar(entry, number)
        for number, entry in enumerate(details[:LIMITS_SHOWN], start=1)
        if isinstance(entry, Mapping)
    ]
    return [bar for bar in bars if bar is not None]
