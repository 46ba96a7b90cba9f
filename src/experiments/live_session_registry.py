"""The Phase 81 live-session registry: one JSON file per trading session.

The file format is a contract with bot code that already writes it (see
``REGISTRY_FORMAT.md``). Writers replace files atomically, and readers treat
every file as untrusted: a file that is not a valid record is skipped with one
logged warning, never fatal.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import secrets
import stat
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

logger = logging.getLogger(__name__)

DEFAULT_LIVE_SESSION_DIR = Path("reports/experiments/live_sessions")
REGISTRY_DIR_ENV = "PEAK_TRADE_LIVE_SESSIONS_DIR"

# Real records are 1-4 KB; anything far larger is a broken or hostile writer.
MAX_RECORD_BYTES = 1024 * 1024
RECORD_SUFFIX = ".json"
# No real config nests this deep; response serializers give up not far beyond.
MAX_NESTING = 32
# Far beyond any real PnL or order count; keeps every sum of 100,000 finite.
MAX_METRIC = 1e15
TERMINAL_STATUSES = frozenset({"completed", "failed", "aborted"})
_NUMERIC_METRICS = ("realized_pnl", "unrealized_pnl", "max_drawdown")
_COUNT_METRICS = ("num_orders", "num_trades")


class InvalidRecord(ValueError):
    """A registry file or mapping that is not a usable session record."""


def resolve_registry_dir(base_dir: str | os.PathLike[str] | None = None) -> Path:
    """Pick the registry: explicit argument, then the environment, then the default."""
    if base_dir is not None:
        return Path(base_dir)
    from_env = os.environ.get(REGISTRY_DIR_ENV)
    return Path(from_env) if from_env else DEFAULT_LIVE_SESSION_DIR


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


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _cli_args(data: Mapping[str, Any]) -> list[str]:
    value = data.get("cli_args", [])
    if not isinstance(value, list) or not all(isinstance(arg, str) for arg in value):
        raise InvalidRecord("cli_args must be a list of strings")
    return value


# --- Files ----------------------------------------------------------------


def _safe_component(text: str) -> str:
    return text.replace("/", "_").replace(":", "_").replace(" ", "_")


def record_filename(record: LiveSessionRecord) -> str:
    """Name the file so that re-registering the same session rewrites it."""
    stamp = record.started_at.strftime("%Y%m%dT%H%M%S")
    run_type = _safe_component(record.run_type)
    return f"{stamp}_{run_type}_{_safe_component(record.session_id)}{RECORD_SUFFIX}"


def register_live_session_run(
    record: LiveSessionRecord, base_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Write the record atomically: readers see the old file or the new one, never half."""
    directory = resolve_registry_dir(base_dir)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / record_filename(record)
    payload = _record_json(record).encode("utf-8")
    fd, tmp_name = _create_temp_file(directory)
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(payload)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_directory(directory)
    return target


def _record_json(record: LiveSessionRecord) -> str:
    data = record.to_dict()
    try:
        return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    except ValueError:
        # A NaN or infinite metric would make the file unreadable (JSON has no NaN),
        # and the session would vanish from the dashboard: store null instead.
        return json.dumps(_finite_or_null(data), indent=2, ensure_ascii=False)


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(item) for item in value]
    return value


def _create_temp_file(directory: Path) -> tuple[int, Path]:
    # Not tempfile.mkstemp: its files are 0600, so a dashboard running as another
    # user could not read the record. os.open lets the umask decide, like open().
    while True:
        tmp_name = directory / f".tmp-{secrets.token_hex(8)}.partial"
        try:
            return os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp_name
        except FileExistsError:
            continue


def _fsync_directory(directory: Path) -> None:
    # Makes the rename durable across a power cut; not possible on every OS.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_record_bytes(path: str | os.PathLike[str]) -> bytes:
    """Read at most MAX_RECORD_BYTES from a regular file, never following links."""
    return read_stamped_bytes(path)[0]


def read_stamped_bytes(path: str | os.PathLike[str]) -> tuple[bytes, FileStamp]:
    """Read a record file and say which version of it was read (from fstat)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InvalidRecord(f"cannot open: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidRecord("not a regular file")
        if info.st_size > MAX_RECORD_BYTES:
            raise InvalidRecord(f"too large ({info.st_size} bytes, limit {MAX_RECORD_BYTES})")
        chunks = []
        remaining = MAX_RECORD_BYTES + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as exc:
        raise InvalidRecord(f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    content = b"".join(chunks)
    if len(content) > MAX_RECORD_BYTES:
        raise InvalidRecord(f"grew past the limit of {MAX_RECORD_BYTES} bytes while reading")
    return content, FileStamp(info.st_size, info.st_mtime_ns)


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


def read_stamped_record(path: str | os.PathLike[str]) -> tuple[LiveSessionRecord, FileStamp]:
    """Read and validate one registry file, with the version that was read."""
    content, stamp = read_stamped_bytes(path)
    return parse_record(content), stamp


def read_record_file(path: str | os.PathLike[str]) -> LiveSessionRecord:
    """Read and validate one registry file, or raise InvalidRecord."""
    return parse_record(read_record_bytes(path))


# --- Scanning -------------------------------------------------------------


class FileStamp(NamedTuple):
    """What identifies one version of a file without reading it."""

    size: int
    mtime_ns: int


@dataclass(frozen=True)
class SkippedFile:
    """A file in the registry that is not a record, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class StoredRecord:
    """A record together with the registry file it came from."""

    name: str
    stamp: FileStamp
    record: LiveSessionRecord


def list_candidates(directory: Path) -> dict[str, FileStamp | SkippedFile]:
    """Stat every ``*.json`` entry once; entries that cannot be records are marked."""
    found: dict[str, FileStamp | SkippedFile] = {}
    for entry in _record_entries(directory):
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # deleted between listing and stat: simply gone
        if stat.S_ISLNK(info.st_mode):
            found[entry.name] = SkippedFile(entry.name, "symbolic link (not followed)")
        elif not stat.S_ISREG(info.st_mode):
            found[entry.name] = SkippedFile(entry.name, "not a regular file")
        else:
            found[entry.name] = FileStamp(info.st_size, info.st_mtime_ns)
    return found


def list_candidate_names(directory: Path) -> dict[str, SkippedFile | None]:
    """Like list_candidates, without a stat per file (the directory's file types
    suffice); for a first load, where the reader's fstat gives each stamp."""
    found: dict[str, SkippedFile | None] = {}
    for entry in _record_entries(directory):
        try:
            if entry.is_symlink():
                found[entry.name] = SkippedFile(entry.name, "symbolic link (not followed)")
            elif not entry.is_file(follow_symlinks=False):
                found[entry.name] = SkippedFile(entry.name, "not a regular file")
            else:
                found[entry.name] = None
        except OSError:
            continue
    return found


def _record_entries(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            return [
                entry
                for entry in entries
                if entry.name.endswith(RECORD_SUFFIX) and not entry.name.startswith(".")
            ]
    except FileNotFoundError:
        return []
    except OSError as exc:
        logger.warning("Cannot list live-session registry %s: %s", directory, exc)
        return []


def load_stored_record(directory: Path, name: str, stamp: FileStamp) -> StoredRecord | SkippedFile:
    """Read one candidate; a bad file becomes a SkippedFile with one logged warning."""
    try:
        record = read_record_file(os.path.join(directory, name))
    except InvalidRecord as exc:
        logger.warning("Skipping live-session file %s: %s", os.path.join(directory, name), exc)
        return SkippedFile(name, str(exc))
    return StoredRecord(name, stamp, record)


@dataclass
class RegistryScan:
    """Everything one full pass over the registry directory found."""

    records: list[StoredRecord] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


def scan_registry(base_dir: str | os.PathLike[str] | None = None) -> RegistryScan:
    """Read every record file in the registry, skipping what is not a record."""
    directory = resolve_registry_dir(base_dir)
    scan = RegistryScan()
    for name, candidate in sorted(list_candidates(directory).items()):
        if isinstance(candidate, SkippedFile):
            logger.warning("Skipping live-session file %s: %s", directory / name, candidate.reason)
            scan.skipped.append(candidate)
            continue
        loaded = load_stored_record(directory, name, candidate)
        if isinstance(loaded, SkippedFile):
            scan.skipped.append(loaded)
        else:
            scan.records.append(loaded)
    return scan


def newest_first(records: Iterable[LiveSessionRecord]) -> list[LiveSessionRecord]:
    """Order by start time, newest first, whatever mix of naive and aware stamps."""
    return sorted(records, key=lambda r: (utc_instant(r.started_at), r.session_id), reverse=True)


def list_session_records(
    base_dir: str | os.PathLike[str] | None = None,
    run_type: str | None = None,
    status: str | None = None,
    limit: int | None = None,
) -> list[LiveSessionRecord]:
    """Return the registry's records, newest first, optionally filtered."""
    records = [
        stored.record
        for stored in scan_registry(base_dir).records
        if (run_type is None or stored.record.run_type == run_type)
        and (status is None or stored.record.status == status)
    ]
    ordered = newest_first(records)
    return ordered if limit is None else ordered[: max(limit, 0)]


def get_session_summary(
    base_dir: str | os.PathLike[str] | None = None, run_type: str | None = None
) -> dict[str, Any]:
    """Aggregate the registry: counts by status, total PnL, mean drawdown, time span."""
    records = list_session_records(base_dir, run_type=run_type)
    # Floats, not ints: a sum of huge integers would not convert back to float.
    pnls = [
        float(r.metrics["realized_pnl"])
        for r in records
        if _is_number(r.metrics.get("realized_pnl"))
    ]
    drawdowns = [
        float(r.metrics["max_drawdown"])
        for r in records
        if _is_number(r.metrics.get("max_drawdown"))
    ]
    starts = sorted((r.started_at for r in records), key=utc_instant)
    return {
        "num_sessions": len(records),
        "by_status": dict(Counter(r.status for r in records)),
        "total_realized_pnl": float(sum(pnls)),
        "avg_max_drawdown": sum(drawdowns) / len(drawdowns) if drawdowns else None,
        "first_started_at": starts[0].isoformat() if starts else None,
        "last_started_at": starts[-1].isoformat() if starts else None,
    }
