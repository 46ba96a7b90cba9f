"""The Phase 81 live-session registry: one JSON file per trading session.

The file format is a contract with bot code that already writes it (see
``docs/registry-format.md``). Writers replace files atomically, and readers treat
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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from src.experiments.live_session_record import (
    MAX_METRIC,
    MAX_NESTING,
    TERMINAL_STATUSES,
    InvalidRecord,
    LiveSessionRecord,
    check_tree,
    is_number,
    parse_record,
    parse_timestamp,
    utc_instant,
)

# The interface Phase 81 code imports (docs/registry-format.md), plus what the
# dashboard reads through; the record itself lives in live_session_record.
__all__ = [
    "DEFAULT_LIVE_SESSION_DIR",
    "MAX_METRIC",
    "MAX_NESTING",
    "MAX_RECORD_BYTES",
    "REGISTRY_DIR_ENV",
    "TERMINAL_STATUSES",
    "FileStamp",
    "InvalidRecord",
    "LiveSessionRecord",
    "RegistryScan",
    "SkippedFile",
    "StoredRecord",
    "check_tree",
    "get_session_summary",
    "is_record_name",
    "list_candidate_names",
    "list_candidates",
    "list_session_records",
    "parse_record",
    "parse_timestamp",
    "read_record_bytes",
    "read_record_file",
    "read_stamped_record",
    "record_filename",
    "register_live_session_run",
    "resolve_registry_dir",
    "scan_registry",
    "utc_instant",
]

logger = logging.getLogger(__name__)

DEFAULT_LIVE_SESSION_DIR = Path("reports/experiments/live_sessions")
REGISTRY_DIR_ENV = "PEAK_TRADE_LIVE_SESSIONS_DIR"

# Real records are 1-4 KB; anything far larger is a broken or hostile writer.
MAX_RECORD_BYTES = 1024 * 1024
RECORD_SUFFIX = ".json"


def resolve_registry_dir(base_dir: str | os.PathLike[str] | None = None) -> Path:
    """Pick the registry: explicit argument, then the environment, then the default."""
    if base_dir is not None:
        return Path(base_dir)
    from_env = os.environ.get(REGISTRY_DIR_ENV)
    return Path(from_env) if from_env else DEFAULT_LIVE_SESSION_DIR


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


def is_record_name(name: str) -> bool:
    """Which directory entries may be records: ``*.json``, not hidden (temp files,
    editor backups). The listing and the file watch both decide by this."""
    return name.endswith(RECORD_SUFFIX) and not name.startswith(".") and "/" not in name


def _record_entries(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            return [entry for entry in entries if is_record_name(entry.name)]
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
        if is_number(r.metrics.get("realized_pnl"))
    ]
    drawdowns = [
        float(r.metrics["max_drawdown"])
        for r in records
        if is_number(r.metrics.get("max_drawdown"))
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
