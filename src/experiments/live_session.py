"""Record a trading session in the registry from bot code.

Phase 81 safety rule (docs/registry-format.md): the registry must never take a
trading session down.
Every registry write here is best effort: a failure (full disk, read-only
directory) is logged, and the bot's own outcome and exception stay untouched.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from src.experiments.live_session_registry import LiveSessionRecord, register_live_session_run

logger = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_SECONDS = 10.0


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


class LiveSessionHandle:
    """The running session as the bot sees it: metrics in, heartbeats out.

    Heartbeat and metric writes never run on the bot's thread: they mark the
    record dirty and a writer thread stores it, at most once per heartbeat
    interval, so a slow disk (a 2 s fsync) costs the trading loop nothing.
    The first and the final write are synchronous and durable (fsync).
    """

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
        self._record_lock = threading.Lock()  # held only to copy or change the record
        self._io_lock = threading.Lock()  # one write at a time; the final one last
        self._dirty = threading.Event()
        self._closing = threading.Event()
        self._writer: threading.Thread | None = None

    def set_metrics(self, **metrics: Any) -> None:
        """Merge metrics; they are written with the next heartbeat, off this thread.

        Values come from exchange APIs and numeric libraries: ``Decimal``, numpy
        scalars and numbers sent as text are stored as plain numbers; a value
        JSON cannot hold is dropped with a warning, so it never breaks a write.
        """
        with self._record_lock:
            for key, value in metrics.items():
                try:
                    self.record.metrics[key] = metric_value(value)
                except TypeError as exc:
                    logger.warning("Dropping metric %r of session %s: %s",
                                   key, self.record.session_id, exc)  # fmt: skip
        self._schedule_write()

    def heartbeat(self) -> None:
        """Tell readers the session is alive, with the metrics so far (coalesced)."""
        self._schedule_write()

    def finish(self, status: str, error: str | None = None) -> None:
        self._closing.set()  # the writer thread stores nothing after this
        self._dirty.set()
        with self._record_lock:
            self.record.status = status
            self.record.error = error
            self.record.finished_at = _now()
            self.record.updated_at = self.record.finished_at
        self._write()  # waits for a write in flight, so the final state lands last

    def _schedule_write(self) -> None:
        if self._closing.is_set():
            return
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write_loop,
                name=f"live-session-writer-{self.record.session_id[:40]}",
                daemon=True,
            )
            self._writer.start()
        self._dirty.set()

    def _write_loop(self) -> None:
        """Store the record whenever it changed, at most once per heartbeat interval."""
        while not self._closing.is_set():
            self._dirty.wait()
            wait = self._last_write + self._heartbeat_seconds - time.monotonic()
            if wait > 0 and self._closing.wait(wait):
                return
            self._dirty.clear()
            with self._io_lock:
                if self._closing.is_set():
                    return
                self._store(self._copy(touch=True))

    def _copy(self, touch: bool) -> LiveSessionRecord:
        with self._record_lock:
            if touch:
                self.record.updated_at = _now()
            return replace(self.record, metrics=dict(self.record.metrics))

    def _write(self) -> None:
        with self._io_lock:
            self._store(self._copy(touch=False))

    def _store(self, record: LiveSessionRecord) -> None:
        self._last_write = time.monotonic()
        try:
            self.path = register_live_session_run(record, self._base_dir)
        except Exception:  # noqa: BLE001 - never let the registry break the bot
            logger.exception(
                "Could not write live-session record %s; the session continues",
                self.record.session_id,
            )


_MAX_METRIC_DEPTH = 8


def metric_value(value: Any, depth: int = 0) -> Any:
    """A metric as JSON can hold it and every reader reads it; TypeError if impossible."""
    if value is None or isinstance(value, (int, float)):  # bool is an int
        return value
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else math.nan
    if isinstance(value, str):
        return _number_or_text(value)
    item = getattr(value, "item", None)
    if callable(item) and hasattr(value, "dtype"):  # a numpy scalar
        return metric_value(item(), depth)
    if depth < _MAX_METRIC_DEPTH and isinstance(value, Mapping):
        return {str(key): metric_value(inner, depth + 1) for key, inner in value.items()}
    if depth < _MAX_METRIC_DEPTH and isinstance(value, (list, tuple)):
        return [metric_value(inner, depth + 1) for inner in value]
    raise TypeError(f"cannot store a {type(value).__name__} as a metric")


def _number_or_text(text: str) -> float | str:
    # "12.5" from an exchange API is a number; "green" (a risk status) is text.
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


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
    except asyncio.CancelledError:
        # asyncio.run turns Ctrl+C into a cancellation of the bot's task.
        session.finish("aborted", "CancelledError: session task cancelled (Ctrl+C or shutdown)")
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
