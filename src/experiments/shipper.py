"""Copy one host's registry directory into PostgreSQL, and keep it copied.

The bots keep writing files (the registry must never take a trading session
down); the shipper runs beside them and makes the host's rows in the shared
table equal the directory: every record upserted with the stamp of the version
read, every deleted file's row deleted. It watches the directory like the
dashboard does and reconciles the whole directory against the table on start,
after every reconnect and periodically, so it converges whatever happened in
between: killed mid-batch, the database down for minutes, events lost. Every
write is an idempotent upsert in a batch of its own transaction. It only reads
the directory, and holds at most one batch of file contents in memory.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from src.experiments.database_url import redact_url
from src.experiments.live_session_record import InvalidRecord, parse_record
from src.experiments.pg_registry import (
    RowState,
    SchemaMismatch,
    ShippedFile,
    check_schema,
    connect,
    delete_files,
    host_state,
    upsert_files,
)
from src.experiments.registry_files import (
    FileStamp,
    SkippedFile,
    file_stamp,
    is_record_name,
    list_registry,
    read_file,
)

logger = logging.getLogger(__name__)

BATCH_FILES = 500
# A batch also ends at this many bytes: a directory of hostile 1 MiB files must
# not make the shipper hold hundreds of megabytes.
BATCH_BYTES = 8 * 1024 * 1024
RECONCILE_SECONDS = 30.0
# A type-skipped entry (symbolic link, directory) has no stamp worth comparing.
NO_STAMP = file_stamp(-1, -1)


def table_name(name: str) -> str:
    """The file name as the table stores it: always valid UTF-8 text.

    A name that is not UTF-8 is written with backslash escapes for the bad bytes.
    """
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class Backoff:
    """Exponential delays with jitter and a cap, reset after a success."""

    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        self.first = first
        self.cap = cap
        self._next = first

    def reset(self) -> None:
        self._next = self.first

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self.cap, self._next * 2)
        return min(self.cap, delay * random.uniform(0.8, 1.2))


@dataclass
class ShipperStats:
    """What the shipper's /metrics reports (see shipper_metrics)."""

    batches: int = 0
    upserted: int = 0
    deleted: int = 0
    errors: int = 0
    backlog: int = 0
    connected: bool = False
    # Since when the table may lag behind the directory; None while in sync.
    behind_since: float | None = None
    last_success: float = 0.0
    reconciles: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def lag_seconds(self, now: float | None = None) -> float:
        behind = self.behind_since
        return 0.0 if behind is None else max(0.0, (now or time.time()) - behind)


class Shipper:
    """Ships one registry directory under one host label; see the module docstring."""

    def __init__(
        self,
        directory: Path,
        url: str,
        host: str,
        *,
        reconcile_seconds: float = RECONCILE_SECONDS,
        max_backoff: float = 30.0,
        batch_files: int = BATCH_FILES,
        batch_bytes: int = BATCH_BYTES,
    ) -> None:
        self.directory = directory
        self.url = url
        self.host = host
        self.reconcile_seconds = reconcile_seconds
        self.batch_files = batch_files
        self.batch_bytes = batch_bytes
        self.backoff = Backoff(cap=max_backoff)
        self.stats = ShipperStats()
        # What the table holds for this host, as of our last read or write.
        self._shipped: dict[str, RowState] = {}

    # --- The loop -------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Ship until ``stop`` is set; any database failure means reconnect and reconcile."""
        while not stop.is_set():
            try:
                with connect(self.url, purpose=f"ship {self.host}") as conn:
                    check_schema(conn)
                    conn.commit()
                    self.stats.connected = True
                    self.backoff.reset()
                    self._follow(conn, stop)
            except (psycopg.Error, SchemaMismatch) as exc:
                self._failed(exc)
                stop.wait(self.backoff.next_delay())
            except Exception as exc:  # a bug must not end shipping for good: log, start over
                logger.exception("Shipping failed unexpectedly; starting over")
                self._failed(exc)
                stop.wait(self.backoff.next_delay())
        self.stats.connected = False

    def _failed(self, exc: Exception) -> None:
        with self.stats.lock:
            self.stats.errors += 1
            self.stats.connected = False
            if self.stats.behind_since is None:
                self.stats.behind_since = time.time()
        logger.warning(
            "Shipping to %s failed, retrying with backoff: %s",
            redact_url(self.url),
            str(exc).strip() or type(exc).__name__,
        )

    def _follow(self, conn: psycopg.Connection[Any], stop: threading.Event) -> None:
        from watchfiles import watch

        while not stop.is_set():
            if not self.directory.is_dir():
                stop.wait(1.0)
                continue
            last_reconcile: float | None = None
            try:
                for changes in watch(
                    self.directory,
                    watch_filter=None,
                    debounce=50,
                    step=20,
                    rust_timeout=200,
                    yield_on_timeout=True,
                    stop_event=stop,
                    recursive=False,
                    raise_interrupt=False,
                ):
                    # Reconcile only once the watch runs (it does by the first
                    # yield): a change after the listing is then always reported.
                    now = time.monotonic()
                    if last_reconcile is None or now - last_reconcile > self.reconcile_seconds:
                        self.reconcile(conn)
                        last_reconcile = now
                    elif changes:
                        self.ship_names(conn, {Path(path).name for _, path in changes})
            except (FileNotFoundError, RuntimeError):
                # The directory went away (or the watch broke): wait, then start over.
                logger.warning("Watching %s stopped; starting over", self.directory)
                stop.wait(1.0)

    # --- Reconciling and shipping -------------------------------------------------

    def reconcile(self, conn: psycopg.Connection[Any]) -> None:
        """Make the host's rows equal the directory: ship what differs, delete what is gone."""
        try:
            with os.scandir(self.directory):
                pass
        except OSError as exc:
            # An unmounted or unreadable directory is not an empty one: keep the rows.
            logger.warning("Cannot list %s, not reconciling: %s", self.directory, exc)
            return
        local = {
            table_name(name): (name, seen) for name, seen in list_registry(self.directory).items()
        }
        self._shipped = host_state(conn, self.host)
        conn.commit()
        differing = [
            local_name
            for key, (local_name, seen) in local.items()
            if not _same(seen, self._shipped.get(key))
        ]
        gone = [key for key in self._shipped if key not in local]
        with self.stats.lock:
            self.stats.backlog = len(differing) + len(gone)
            self.stats.reconciles += 1
        self._write(conn, differing, gone)

    def ship_names(self, conn: psycopg.Connection[Any], names: Iterable[str]) -> None:
        """Ship the files a watch reported (new, changed or deleted)."""
        wanted = sorted({name for name in names if is_record_name(name)})
        if not wanted:
            return
        present = [n for n in wanted if os.path.lexists(self.directory / n)]
        gone = [
            table_name(n) for n in wanted if n not in present and table_name(n) in self._shipped
        ]
        with self.stats.lock:
            if self.stats.behind_since is None:
                self.stats.behind_since = time.time()
            self.stats.backlog += len(present) + len(gone)  # each is counted down once
        self._write(conn, present, gone)

    def _write(self, conn: psycopg.Connection[Any], names: list[str], gone: list[str]) -> None:
        for start in range(0, len(gone), self.batch_files):
            batch = gone[start : start + self.batch_files]
            deleted = delete_files(conn, self.host, batch)
            conn.commit()
            for key in batch:
                self._shipped.pop(key, None)
            self._done(0, deleted, len(batch))
        files: list[ShippedFile] = []
        size = 0
        for name in names:
            item = self._read(name)
            if item is None:  # vanished meanwhile
                key = table_name(name)
                if key in self._shipped:
                    delete_files(conn, self.host, [key])
                    conn.commit()
                    self._shipped.pop(key, None)
                self._done(0, 1, 1)
                continue
            if (item.stamp, item.skip_reason) == self._shipped.get(item.file_name):
                self._done(0, 0, 1)  # the watch reported a file the table already has
                continue
            files.append(item)
            size += len(item.raw or "")
            if len(files) >= self.batch_files or size >= self.batch_bytes:
                self._flush(conn, files)
                files, size = [], 0
        self._flush(conn, files)
        with self.stats.lock:
            if self.stats.backlog == 0:
                self.stats.behind_since = None
            self.stats.last_success = time.time()

    def _flush(self, conn: psycopg.Connection[Any], files: list[ShippedFile]) -> None:
        if not files:
            return
        upsert_files(conn, self.host, files)
        conn.commit()
        for item in files:
            self._shipped[item.file_name] = (item.stamp, item.skip_reason)
        self._done(len(files), 0, len(files))

    def _done(self, upserted: int, deleted: int, handled: int) -> None:
        with self.stats.lock:
            self.stats.batches += 1 if upserted or deleted else 0
            self.stats.upserted += upserted
            self.stats.deleted += deleted
            self.stats.backlog = max(0, self.stats.backlog - handled)

    def _read(self, name: str) -> ShippedFile | None:
        """Read one file as the dashboard would; None when it no longer exists."""
        path = self.directory / name
        key = table_name(name)
        if os.path.islink(path):
            return ShippedFile(key, NO_STAMP, skip_reason="symbolic link (not followed)")
        try:
            content, stamp = read_file(path)
        except InvalidRecord as exc:
            if not os.path.lexists(path):
                return None
            stamp = _lstat(path)
            return ShippedFile(key, stamp, skip_reason=str(exc))
        try:
            record = parse_record(content)
        except InvalidRecord as exc:
            return ShippedFile(key, stamp, skip_reason=str(exc))
        return ShippedFile(key, stamp, raw=content.decode("utf-8"), record=record)


def _same(seen: FileStamp | SkippedFile | None, row: RowState | None) -> bool:
    if row is None or seen is None:
        return False
    stamp, reason = row
    if isinstance(seen, SkippedFile):
        return reason == seen.reason
    return stamp == seen


def _lstat(path: Path) -> FileStamp:
    try:
        info = os.lstat(path)
    except OSError:
        return NO_STAMP
    return file_stamp(info.st_size, info.st_mtime_ns)


def shipper_registry(shipper: Shipper) -> Any:
    """The shipper's own Prometheus metrics: lag, batches, rows, errors and backlog."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.registry import Collector

    stats = shipper.stats
    labels = {"host": shipper.host}

    class ShipperCollector(Collector):
        def collect(self) -> Iterable[Any]:
            with stats.lock:
                now = time.time()
                gauges = (
                    (
                        "lag_seconds",
                        "Seconds the table may lag behind the directory",
                        stats.lag_seconds(now),
                    ),
                    ("backlog_files", "Files seen changed and not yet shipped", stats.backlog),
                    ("connected", "1 while connected to PostgreSQL", stats.connected),
                    (
                        "last_success_timestamp_seconds",
                        "When a batch last committed",
                        stats.last_success,
                    ),
                )
                counters = (
                    ("batches", "Batches committed", stats.batches),
                    ("upserted_rows", "Rows inserted or updated", stats.upserted),
                    ("deleted_rows", "Rows deleted for deleted files", stats.deleted),
                    ("errors", "Database failures (each followed by a reconnect)", stats.errors),
                    (
                        "reconciles",
                        "Full directory-against-table reconciliations",
                        stats.reconciles,
                    ),
                )
            for name, doc, value in gauges:
                gauge = GaugeMetricFamily(f"live_track_shipper_{name}", doc, labels=["host"])
                gauge.add_metric([labels["host"]], float(value))
                yield gauge
            for name, doc, value in counters:
                counter = CounterMetricFamily(f"live_track_shipper_{name}", doc, labels=["host"])
                counter.add_metric([labels["host"]], value)
                yield counter

    registry = CollectorRegistry(auto_describe=False)
    registry.register(ShipperCollector())
    return registry
