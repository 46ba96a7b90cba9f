"""One live-session record: its fields, its JSON form and its validation.

Records come from files that bots wrote, so reading is faithful first: every
record the original Peak_Trade writers produce is a valid session, including
``NaN`` / ``Infinity`` metrics (Python's ``json.dump`` default), numbers sent
as strings, ``strategy_tier`` and keys a future writer adds. Validation rejects,
with a reason, only what no page or JSON response could show: wrong types of
the keys every view needs, nesting no serializer takes, invalid Unicode.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

import orjson

# No real config nests this deep; response serializers give up not far beyond.
MAX_NESTING = 32
# Far beyond any real PnL or order count; keeps every sum of 100,000 finite.
MAX_METRIC = 1e15
# A number sent as text ("12.5") is at most this long; longer text is not a number.
MAX_NUMBER_TEXT = 40

STATUS_STARTED = "started"
STATUS_COMPLETED = "completed"
STATUS_FAILED = "failed"
STATUS_ABORTED = "aborted"
TERMINAL_STATUSES = frozenset({STATUS_COMPLETED, STATUS_FAILED, STATUS_ABORTED})


class InvalidRecord(ValueError):
    """A registry file or mapping that is not a usable session record."""


class UnreadableFile(InvalidRecord):
    """The operating system refused the read (permission, too many open files):
    unlike bad content, this may pass, so readers try again."""


def parse_timestamp(value: object, key: str) -> datetime:
    """Accept ISO-8601 strings with or without offset, as the writers emit them."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = _parse_lenient_timestamp(value, key)
    else:
        raise InvalidRecord(f"{key} must be an ISO-8601 string, got {_json_type(value)}")
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
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class LiveSessionRecord:
    """One session as it is stored on disk, fields in the original's order.

    ``updated_at`` (our heartbeat) and ``extra`` (top-level keys this version
    does not know) come after the original's fields, so positional use of the
    original's constructor keeps working.
    """

    session_id: str
    run_id: str | None
    run_type: str
    mode: str
    env_name: str
    symbol: str | None
    status: str
    started_at: datetime
    finished_at: datetime | None = None
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    cli_args: list[str] = field(default_factory=list)
    error: str | None = None
    created_at: datetime | None = field(default_factory=_utcnow)
    strategy_tier: str | None = None
    # Heartbeat: set by writers that update a running session, so a reader can
    # tell a quiet session from a dead one. The original writers never set it.
    updated_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

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
            "strategy_tier": self.strategy_tier,
        }
        if self.updated_at is not None:
            data["updated_at"] = self.updated_at.isoformat()
        # Keys of a newer writer go back out unchanged, never over a known key.
        data.update((key, value) for key, value in self.extra.items() if key not in data)
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
        run_type = _required_text(data, "run_type")
        heartbeat = data.get("updated_at", data.get("heartbeat_at"))
        return cls(
            session_id=_required_text(data, "session_id"),
            run_id=_optional_text(data, "run_id"),
            run_type=run_type,
            mode=_optional_text(data, "mode") or mode_from_run_type(run_type),
            env_name=_optional_text(data, "env_name") or "",
            symbol=_optional_text(data, "symbol"),
            status=_optional_text(data, "status") or "",
            started_at=parse_timestamp(data["started_at"], "started_at"),
            finished_at=_optional_timestamp(data.get("finished_at"), "finished_at"),
            config=_object(data, "config"),
            metrics=_object(data, "metrics"),
            cli_args=_cli_args(data),
            error=_optional_text(data, "error"),
            created_at=_optional_timestamp(data.get("created_at"), "created_at"),
            strategy_tier=_optional_text(data, "strategy_tier"),
            updated_at=_optional_timestamp(heartbeat, "updated_at"),
            extra={key: value for key, value in data.items() if key not in _KNOWN_KEYS},
        )


_KNOWN_KEYS = frozenset(f.name for f in fields(LiveSessionRecord)) - {"extra"} | {"heartbeat_at"}


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


def mode_from_run_type(run_type: str) -> str:
    """``live_session_shadow`` -> ``shadow``: old records carry the mode only there."""
    prefix = "live_session_"
    return run_type[len(prefix) :] if run_type.startswith(prefix) else ""


def _object(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRecord(f"{key} must be an object, got {_json_type(value)}")
    return value


def _cli_args(data: Mapping[str, Any]) -> list[str]:
    value = data.get("cli_args")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(arg, str) for arg in value):
        raise InvalidRecord("cli_args must be a list of strings")
    return value


# --- Metric values ----------------------------------------------------------


def metric_number(value: object) -> float | None:
    """A metric as a number for sums and sorting, or None for "no number".

    Numbers sent as text count; booleans never do; NaN, infinities and values
    beyond any real amount are no number (shown as written on the detail page).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an integer like 10**400
            return None
    elif isinstance(value, str) and len(value) <= MAX_NUMBER_TEXT:
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) and abs(number) <= MAX_METRIC else None


def metric_count(value: object) -> int | None:
    """An order or trade count; writers store ``3.0`` as often as ``3``."""
    number = metric_number(value)
    return int(number) if number is not None and number.is_integer() else None


def non_finite_text(value: float) -> str:
    """NaN and infinities as JSON-ish text, because JSON itself cannot carry them."""
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def json_safe(value: Any) -> Any:
    """Replace non-finite floats by their text, so a response stays valid JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else non_finite_text(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def parse_record(content: bytes) -> LiveSessionRecord:
    """The one reader: untrusted bytes to a record, or InvalidRecord with the reason."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRecord(f"not UTF-8 (byte {exc.start})") from None
    try:
        # json's defaults, like the writers': NaN and Infinity are numbers here.
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRecord(f"invalid JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise InvalidRecord("invalid JSON: nested too deeply") from None
    except ValueError as exc:  # integers beyond Python's digit limit
        raise InvalidRecord(f"invalid JSON: {exc}") from None
    return _validated(data, content)


def parse_head_record(content: bytes) -> LiveSessionRecord:
    """``parse_record`` at twice the speed, for building heads in bulk.

    orjson reads strict JSON; whatever it refuses (NaN and Infinity literals,
    ``1e999``, invalid UTF-8, deep nesting, lone surrogates) goes through
    ``parse_record``, so what is accepted and every reason for a rejection stay
    the same. One difference remains, and no head can show it: integers beyond
    64 bits come back as floats, and ``metric_number`` caps amounts far below
    them. Pages that show a whole record read it with ``parse_record``.
    """
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        return parse_record(content)
    return _validated(data, content)


def _validated(data: object, content: bytes) -> LiveSessionRecord:
    # Only \u escapes can make lone surrogates, and only many brackets deep
    # nesting: the byte checks keep the tree walk off the common path.
    escapes = b"\\u" in content and (b"\\ud" in content or b"\\uD" in content)
    if escapes or content.count(b"{") + content.count(b"[") > MAX_NESTING:
        check_tree(data)
    return LiveSessionRecord._from_checked_tree(data)
