"""Record a trading session in the registry from bot code.

Phase 81 safety rule (docs/registry-format.md): the registry must never take a
trading session down.
Every registry write here is best effort: a failure (full disk, read-only
directory) is logged, and the bot's own outcome and exception stay untouched.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from src.experiments.live_session_registry import LiveSessionRecord, register_live_session_run

logger = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_SECONDS = 10.0


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


class LiveSessionHandle:
    """The running session as the bot sees it: metrics in, heartbeats out."""

    def __init__(
        self,
        record: LiveSessionRecord,
        base_dir: str | os.PathLike[str] | None,
        heartbeat_seconds: float,
    ) -> None:
        self.record = record
        self._base_dir = base_dir
        self._heartbeat_seconds = heartbeat_seconds
        self._last_write = float("-inf")
        self.path: Path | None = None

    def set_metrics(self, **metrics: Any) -> None:
        """Merge metrics; write a heartbeat when the last write is old enough."""
        self.record.metrics.update(metrics)
        if time.monotonic() - self._last_write >= self._heartbeat_seconds:
            self.heartbeat()

    def heartbeat(self) -> None:
        """Tell readers the session is alive, with the metrics so far."""
        self.record.updated_at = _now()
        self._write()

    def finish(self, status: str, error: str | None = None) -> None:
        self.record.status = status
        self.record.error = error
        self.record.finished_at = _now()
        self.record.updated_at = self.record.finished_at
        self._write()

    def _write(self) -> None:
        self._last_write = time.monotonic()
        try:
            self.path = register_live_session_run(replace(self.record), self._base_dir)
        except Exception:  # noqa: BLE001 - never let the registry break the bot
            logger.exception(
                "Could not write live-session record %s; the session continues",
                self.record.session_id,
            )


def _describe(exc: BaseException) -> str:
    """Short error text; never raises, so the bot's own exception stays the one raised."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ must not replace the exception
        text = "<unprintable exception>"
    return f"{type(exc).__name__}: {text}"[:2000]


def new_session_id(mode: str, started_at: datetime) -> str:
    """Build a unique, readable id such as ``session_20251208_120000_shadow_1a2b3c``."""
    return f"session_{started_at:%Y%m%d_%H%M%S}_{mode}_{uuid.uuid4().hex[:6]}"


@contextmanager
def live_session(
    *,
    mode: str,
    env_name: str,
    symbol: str,
    run_type: str | None = None,
    session_id: str | None = None,
    run_id: str | None = None,
    config: Mapping[str, Any] | None = None,
    cli_args: list[str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
) -> Iterator[LiveSessionHandle]:
    """Register the session as started, then as completed, failed or aborted."""
    started_at = _now()
    record = LiveSessionRecord(
        session_id=session_id or new_session_id(mode, started_at),
        run_id=run_id,
        run_type=run_type or f"live_session_{mode}",
        mode=mode,
        env_name=env_name,
        symbol=symbol,
        status="started",
        started_at=started_at,
        config=dict(config or {}),
        cli_args=list(cli_args or []),
        created_at=started_at,
        updated_at=started_at,
    )
    session = LiveSessionHandle(record, base_dir, heartbeat_seconds)
    session._write()
    try:
        yield session
    except KeyboardInterrupt:
        session.finish("aborted", "KeyboardInterrupt: session interrupted by the operator")
        raise
    except SystemExit as exc:
        if exc.code in (0, None):  # sys.exit() after a clean run is a normal end
            session.finish("completed")
        else:
            session.finish("aborted", f"SystemExit: exit code {exc.code}")
        raise
    except BaseException as exc:
        session.finish("failed", _describe(exc))
        raise
    session.finish("completed")
