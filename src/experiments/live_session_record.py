"""One live-session record: its fields, its JSON form and its validation.

Every record comes from an untrusted file, so validation rejects, with a
reason, anything no page or JSON response could show: wrong types, missing
keys, numbers no sum survives, nesting no serializer takes, invalid Unicode.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

# No real config nests this deep; response serializers give up not far beyond.
MAX_NESTING = 32
# Far beyond any real PnL or order count; keeps every sum of 100,000 finite.
MAX_METRIC = 1e15
TERMINAL_STATUSES = frozenset({"completed", "failed", "aborted"})
_NUMERIC_METRICS = ("realized_pnl", "unrealized_pnl", "max_drawdown")
_COUNT_METRICS = ("num_orders", "num_trades")


class InvalidRecord(ValueError):
    """A registry file or mapping that is not a usable session record."""


def parse_timestamp(value: object, key: str) -> datetime:
    """Accept ISO-8601 strings with or without offset, as Phase 81 writers emit."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = _parse_lenient_timestamp(value, key)
    else:
        raise InvalidRecord(f"{key} must be an ISO-8601 string, got {type(value).__name__}")
    offset = moment.utcoffset()
    if offset is not None:
        if offset.seconds % 60 or offset.microseconds:
            # fromisoformat takes "+05:30:15.5"; ISO-8601 and JSON readers do not.
            raise InvalidRecord(f"{key} has an offset that is not whole minutes")
        try:
            # Sorting converts to UTC; "0001-01-01T00:00:00+01:00" has no UTC instant.
            moment.astimezone(timezone.utc)
        except OverflowError:
            raise InvalidRecord(f"{key} is out of range in UTC: {str(value)[:40]!r}") from None
    return moment


def _parse_lenient_timestamp(value: str, key: str) -> datetime:
    text = value.strip()
    if text.endswith(("Z", "z")):  # fromisoformat on Python 3.10 rejects "Z"
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRecord(f"{key} is not an ISO-8601 timestamp: {value[:40]!r}") from None


def utc_instant(moment: datetime) -> datetime:
    """Make naive (UTC by convention) and aware timestamps comparable."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


@dataclass
class LiveSessionRecord:
    """One session as it is stored on disk (keys in the documented order)."""

    session_id: str
    run_id: str | None
    run_type: str
    mode: str
    env_name: str
    symbol: str
    status: str
    started_at: datetime
    finished_at: datetime | None = None
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    cli_args: list[str] = field(default_factory=list)
    error: str | None = None
    created_at: datetime | None = field(default_factory=_utcnow)
    # Heartbeat: set by writers that update a running session, so a reader can
    # tell a quiet session from a dead one. Older writers omit it.
    updated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "session_id": self.session_id,
            "run_id": self.run_id,
            "run_type": self.run_type,
            "mode": self.mode,
            "env_name": self.env_name,
            "symbol": self.symbol,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "finished_at": _iso_or_none(self.finished_at),
            "config": self.config,
            "metrics": self.metrics,
            "cli_args": self.cli_args,
            "error": self.error,
            "created_at": _iso_or_none(self.created_at),
        }
        if self.updated_at is not None:
            data["updated_at"] = self.updated_at.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: object) -> LiveSessionRecord:
        """Validate an untrusted mapping; raise InvalidRecord saying what is wrong."""
        check_tree(data)
        return cls._from_checked_tree(data)

    @classmethod
    def _from_checked_tree(cls, data: object) -> LiveSessionRecord:
        # Shape and types; the caller has ruled out deep nesting and lone surrogates.
        if not isinstance(data, Mapping):
            raise InvalidRecord(f"expected a JSON object, got {_json_type(data)}")
        for key in ("session_id", "run_type", "started_at"):
            if key not in data:
                raise InvalidRecord(f"missing required key {key!r}")
        session_id = _required_text(data, "session_id")
        run_type = _required_text(data, "run_type")
        heartbeat = data.get("updated_at", data.get("heartbeat_at"))
        return cls(
            session_id=session_id,
            run_id=_optional_text(data, "run_id"),
            run_type=run_type,
            mode=_optional_text(data, "mode") or _mode_from_run_type(run_type),
            env_name=_optional_text(data, "env_name") or "",
            symbol=_optional_text(data, "symbol") or "",
            status=_optional_text(data, "status") or "",
            started_at=parse_timestamp(data["started_at"], "started_at"),
            finished_at=_optional_timestamp(data.get("finished_at"), "finished_at"),
            config=_object(data, "config"),
            metrics=_metrics(data),
            cli_args=_cli_args(data),
            error=_optional_text(data, "error"),
            created_at=_optional_timestamp(data.get("created_at"), "created_at"),
            updated_at=_optional_timestamp(heartbeat, "updated_at"),
        )


def check_tree(value: object, depth: int = 0) -> None:
    """Reject what no response could carry: deep nesting and unencodable text."""
    if depth > MAX_NESTING:
        raise InvalidRecord(f"nested deeper than {MAX_NESTING} levels")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRecord("text with an unpaired surrogate (not valid Unicode)") from None
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_tree(key, depth + 1)
            check_tree(item, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            check_tree(item, depth + 1)


def _iso_or_none(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _json_type(value: object) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number" if isinstance(value, (int, float)) else "value")


def _required_text(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise InvalidRecord(f"{key} must be a non-empty string, got {_json_type(value)}")
    return value


def _optional_text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise InvalidRecord(f"{key} must be a string or null, got {_json_type(value)}")


def _optional_timestamp(value: object, key: str) -> datetime | None:
    return None if value is None else parse_timestamp(value, key)


def _mode_from_run_type(run_type: str) -> str:
    prefix = "live_session_"
    return run_type[len(prefix) :] if run_type.startswith(prefix) else ""


def _object(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise InvalidRecord(f"{key} must be an object, got {_json_type(value)}")
    return value


def _metrics(data: Mapping[str, Any]) -> dict[str, Any]:
    metrics = _object(data, "metrics")
    for key in _NUMERIC_METRICS + _COUNT_METRICS:
        value = metrics.get(key)
        if value is None:
            continue
        number = _finite_float_or_none(value)
        if number is None:
            raise InvalidRecord(f"metrics.{key} must be a finite number, got {value!r:.40}")
        if abs(number) > MAX_METRIC:
            raise InvalidRecord(f"metrics.{key} is out of range: {value!r:.40}")
        if key in _COUNT_METRICS and not number.is_integer():
            raise InvalidRecord(f"metrics.{key} must be a whole number, got {value!r:.40}")
    return metrics


def _finite_float_or_none(value: object) -> float | None:
    # Readers turn metrics into floats; an integer like 10**400 would overflow there.
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _cli_args(data: Mapping[str, Any]) -> list[str]:
    value = data.get("cli_args", [])
    if not isinstance(value, list) or not all(isinstance(arg, str) for arg in value):
        raise InvalidRecord("cli_args must be a list of strings")
    return value


def _finite_float(text: str) -> float:
    # 1e999 parses to inf, which no JSON response could carry later.
    value = float(text)
    if value - value != 0.0:  # inf - inf is nan; cheaper than math.isfinite
        raise ValueError(f"number out of range: {text[:20]}")
    return value


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_record(content: bytes) -> LiveSessionRecord:
    """Decode untrusted bytes into a record, or raise InvalidRecord."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRecord(f"not UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(text, parse_float=_finite_float, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InvalidRecord(f"invalid JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise InvalidRecord("invalid JSON: nested too deeply") from None
    except ValueError as exc:  # huge integers, NaN, 1e999
        raise InvalidRecord(f"invalid JSON: {exc}") from None
    # Only \u escapes can make lone surrogates, and only many brackets deep
    # nesting: the byte checks keep the tree walk off the common path.
    if b"\\ud" in content.lower() or content.count(b"{") + content.count(b"[") > MAX_NESTING:
        check_tree(data)
    return LiveSessionRecord._from_checked_tree(data)
