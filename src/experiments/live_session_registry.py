"""The live-session registry: the interface bot code and report scripts import.

These names are a contract with code that already runs against the original
Peak_Trade module (``docs/registry-format.md``), so they keep the original's
signatures and results. How files are named, written and read lives in
``registry_files``; the record itself in ``live_session_record``.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from src.experiments.live_session_record import (
    STATUS_ABORTED,
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_STARTED,
    InvalidRecord,
    LiveSessionRecord,
    metric_number,
    utc_instant,
)
from src.experiments.live_session_reports import (
    render_session_html,
    render_session_markdown,
    render_sessions_html,
    render_sessions_markdown,
)
from src.experiments.registry_files import (
    DEFAULT_LIVE_SESSION_DIR,
    SkippedFile,
    list_registry,
    read_record,
    resolve_registry_dir,
    write_record,
)

__all__ = [
    "DEFAULT_LIVE_SESSION_DIR",
    "RUN_TYPE_LIVE_SESSION",
    "RUN_TYPE_LIVE_SESSION_BOUNDED_PILOT",
    "RUN_TYPE_LIVE_SESSION_LIVE",
    "RUN_TYPE_LIVE_SESSION_PAPER",
    "RUN_TYPE_LIVE_SESSION_SHADOW",
    "RUN_TYPE_LIVE_SESSION_TESTNET",
    "STATUS_ABORTED",
    "STATUS_COMPLETED",
    "STATUS_FAILED",
    "STATUS_STARTED",
    "LiveSessionRecord",
    "find_live_session_registry_json_for_session_id",
    "generate_session_run_id",
    "get_session_summary",
    "iter_live_session_registry_entries",
    "list_session_records",
    "load_session_record",
    "register_live_session_run",
    "render_session_html",
    "render_session_markdown",
    "render_sessions_html",
    "render_sessions_markdown",
]

logger = logging.getLogger(__name__)

RUN_TYPE_LIVE_SESSION = "live_session"
RUN_TYPE_LIVE_SESSION_SHADOW = "live_session_shadow"
RUN_TYPE_LIVE_SESSION_TESTNET = "live_session_testnet"
RUN_TYPE_LIVE_SESSION_PAPER = "live_session_paper"
RUN_TYPE_LIVE_SESSION_LIVE = "live_session_live"
RUN_TYPE_LIVE_SESSION_BOUNDED_PILOT = "live_session_bounded_pilot"


def register_live_session_run(
    record: LiveSessionRecord, base_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Write the record atomically: readers see the old file or the new one, never half."""
    return write_record(record, resolve_registry_dir(base_dir))


def load_session_record(path: str | os.PathLike[str]) -> LiveSessionRecord:
    """Read one registry file; raise InvalidRecord (a ValueError) when it is no record."""
    return read_record(path)[0]


def iter_live_session_registry_entries(
    base_dir: str | os.PathLike[str] | None = None,
) -> Iterator[tuple[LiveSessionRecord, Path]]:
    """Yield every record with its file, in file-name order; bad files are skipped."""
    directory = resolve_registry_dir(base_dir)
    for name, listed in sorted(list_registry(directory).items()):
        path = directory / name
        if isinstance(listed, SkippedFile):
            logger.warning("Skipping live-session file %s: %s", path, listed.reason)
            continue
        try:
            yield load_session_record(path), path
        except InvalidRecord as exc:
            logger.warning("Skipping live-session file %s: %s", path, exc)


def find_live_session_registry_json_for_session_id(
    session_id: str, base_dir: str | os.PathLike[str] | None = None
) -> tuple[LiveSessionRecord, Path] | None:
    """The newest file (latest start) that carries this session id, or None."""
    found = [
        (record, path)
        for record, path in iter_live_session_registry_entries(base_dir)
        if record.session_id == session_id
    ]
    if not found:
        return None
    return max(found, key=lambda entry: (utc_instant(entry[0].started_at), entry[1].name))


def list_session_records(
    base_dir: str | os.PathLike[str] | None = None,
    run_type: str | None = None,
    status: str | None = None,
    limit: int | None = None,
) -> list[LiveSessionRecord]:
    """Return the registry's records, newest start first, optionally filtered."""
    records = [
        record
        for record, _ in iter_live_session_registry_entries(base_dir)
        if (run_type is None or record.run_type == run_type)
        and (status is None or record.status == status)
    ]
    records.sort(key=lambda r: (utc_instant(r.started_at), r.session_id), reverse=True)
    return records if limit is None else records[: max(limit, 0)]


def get_session_summary(
    base_dir: str | os.PathLike[str] | None = None, run_type: str | None = None
) -> dict[str, Any]:
    """Counts by status, total PnL, mean drawdown and time span (the original's keys).

    PnL is summed over every currency and mode, as the original does; the
    dashboard and ``live-track report`` split it per currency and real money.
    """
    records = list_session_records(base_dir, run_type=run_type)
    pnls = [metric_number(r.metrics.get("realized_pnl")) for r in records]
    drawdowns = [metric_number(r.metrics.get("max_drawdown")) for r in records]
    numbers = [value for value in drawdowns if value is not None]
    starts = sorted((r.started_at for r in records), key=utc_instant)
    return {
        "num_sessions": len(records),
        "by_status": dict(Counter(r.status for r in records)),
        "total_realized_pnl": float(sum(value for value in pnls if value is not None)),
        "avg_max_drawdown": sum(numbers) / len(numbers) if numbers else 0.0,
        "first_started_at": starts[0].isoformat() if starts else None,
        "last_started_at": starts[-1].isoformat() if starts else None,
    }


def generate_session_run_id(mode: str = "shadow", prefix: str = "session") -> str:
    """A unique, readable id: ``session_20251208_143022_shadow_a1b2c3``."""
    now = datetime.now(timezone.utc)
    return f"{prefix}_{now:%Y%m%d_%H%M%S}_{mode}_{secrets.token_hex(3)}"
