"""An in-memory index of the registry, so views never rescan the directory.

The index keeps a slim head of every record (no config, no command line: those
are read from the file on demand) and re-reads a file only when its size or
mtime changed. Readers take an immutable snapshot; a refresh builds the next
one and swaps it in, so a request never sees a half-updated index.
"""

from __future__ import annotations

import bisect
import os
import stat
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from src.experiments.live_session_registry import (
    FileStamp,
    InvalidRecord,
    LiveSessionRecord,
    SkippedFile,
    StoredRecord,
    list_candidates,
    load_stored_record,
    read_record_file,
    utc_instant,
)


def _number(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    return float(value) if isinstance(value, (int, float)) else None


def _count(metrics: dict[str, Any]) -> int | None:
    for key in ("num_orders", "num_trades"):
        value = metrics.get(key)
        if isinstance(value, (int, float)):
            return int(value)
    return None


def _report_path(record: LiveSessionRecord) -> str | None:
    for source in (record.metrics, record.config):
        value = source.get("report_path")
        if isinstance(value, str) and value:
            return value
    return None


@dataclass(frozen=True, slots=True)
class SessionHead:
    """What every view needs of one record, small enough to hold 100,000 of."""

    file_name: str
    stamp: FileStamp
    session_id: str
    run_type: str
    mode: str
    env_name: str
    symbol: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    updated_at: datetime | None
    realized_pnl: float | None
    max_drawdown: float | None
    num_orders: int | None
    report_path: str | None
    error: str | None
    # Activity order: end time when it ended, else start time (UTC seconds).
    order_key: tuple[float, str]

    @classmethod
    def from_stored(cls, stored: StoredRecord) -> SessionHead:
        record = stored.record
        activity = record.finished_at or record.started_at
        return cls(
            file_name=stored.name,
            stamp=stored.stamp,
            session_id=record.session_id,
            # Few distinct values across 100,000 records: share one string each.
            run_type=sys.intern(record.run_type),
            mode=sys.intern(record.mode),
            env_name=sys.intern(record.env_name),
            symbol=sys.intern(record.symbol),
            status=sys.intern(record.status),
            started_at=record.started_at,
            finished_at=record.finished_at,
            updated_at=record.updated_at,
            realized_pnl=_number(record.metrics, "realized_pnl"),
            max_drawdown=_number(record.metrics, "max_drawdown"),
            num_orders=_count(record.metrics),
            report_path=_report_path(record),
            error=record.error,
            order_key=(utc_instant(activity).timestamp(), stored.name),
        )


@dataclass(frozen=True)
class SessionChange:
    """One file whose record appeared, changed or disappeared."""

    before: SessionHead | None
    after: SessionHead | None


@dataclass(frozen=True)
class IndexSnapshot:
    """An immutable view of the registry at one generation."""

    generation: int
    directory: Path
    # Newest activity first (end time, else start time).
    sessions: tuple[SessionHead, ...] = ()
    skipped: tuple[SkippedFile, ...] = ()
    loaded: bool = False
    progress: tuple[int, int] = (0, 0)
    by_id: dict[str, SessionHead] = field(default_factory=dict)
    # Views computed from this snapshot (filters, stats); dies with it.
    cache: dict[tuple[object, ...], object] = field(default_factory=dict, compare=False, repr=False)

    def newest_first(self) -> tuple[SessionHead, ...]:
        return self.sessions


class RegistryIndex:
    """Owns the parsed registry; the only reader of the directory in the server."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._stamps: dict[str, FileStamp | SkippedFile] = {}
        self._heads: dict[str, SessionHead] = {}
        self._skipped: dict[str, SkippedFile] = {}
        self._ordered: list[SessionHead] = []
        self._snapshot = IndexSnapshot(generation=0, directory=directory)
        self._loaded = threading.Event()
        self._load_started = False

    # --- reading ---------------------------------------------------------

    def snapshot(self) -> IndexSnapshot:
        return self._snapshot

    def wait_loaded(self, timeout: float) -> bool:
        return self._loaded.wait(timeout)

    def read_record(self, head: SessionHead) -> LiveSessionRecord | None:
        """Read the full record for a detail view; the name comes from the index."""
        try:
            return read_record_file(os.path.join(self.directory, head.file_name))
        except InvalidRecord:
            return None

    # --- refreshing ------------------------------------------------------

    def start_loading(self) -> None:
        """Load in the background once, so startup and health checks never wait."""
        with self._lock:
            if self._load_started:
                return
            self._load_started = True
        threading.Thread(target=self.reconcile, name="registry-index-load", daemon=True).start()

    def reconcile(self) -> list[SessionChange]:
        """Compare the directory with the index and re-read only what changed."""
        listing = list_candidates(self.directory)
        with self._lock:
            changed = [name for name, seen in listing.items() if self._stamps.get(name) != seen]
            gone = [name for name in self._stamps if name not in listing]
            changes = self._apply(listing, changed, gone, progress_total=len(changed))
            if changed or gone or not self._loaded.is_set():
                self._publish(loaded=True)
            self._loaded.set()
            self._load_started = True
            return changes

    def refresh_names(self, names: Iterable[str]) -> list[SessionChange]:
        """Re-check the files a watcher reported, without listing the directory."""
        wanted = {name for name in names if name.endswith(".json") and "/" not in name}
        if not wanted:
            return []
        listing = {
            name: stamp
            for name, stamp in list_candidates_for(self.directory, wanted).items()
            if stamp is not None
        }
        with self._lock:
            changed = [n for n, seen in listing.items() if self._stamps.get(n) != seen]
            gone = [n for n in wanted if n not in listing and n in self._stamps]
            changes = self._apply(listing, changed, gone, progress_total=0)
            if changed or gone:
                self._publish(loaded=self._loaded.is_set())
            return changes

    def _apply(
        self,
        listing: Mapping[str, FileStamp | SkippedFile],
        changed: list[str],
        gone: list[str],
        progress_total: int,
    ) -> list[SessionChange]:
        changes: list[SessionChange] = []
        # Many changes (the first load): one sort beats thousands of inserts.
        bulk = len(changed) + len(gone) > BULK_RESORT
        for name in gone:
            self._stamps.pop(name, None)
            self._skipped.pop(name, None)
            before = self._heads.pop(name, None)
            if before is not None:
                if not bulk:
                    self._remove_ordered(before)
                changes.append(SessionChange(before, None))
        for done, name in enumerate(changed, start=1):
            candidate = listing[name]
            loaded = (
                candidate
                if isinstance(candidate, SkippedFile)
                else load_stored_record(self.directory, name, candidate)
            )
            self._stamps[name] = candidate
            before = self._heads.pop(name, None)
            if before is not None and not bulk:
                self._remove_ordered(before)
            if isinstance(loaded, SkippedFile):
                self._skipped[name] = loaded
                after = None
            else:
                self._skipped.pop(name, None)
                after = SessionHead.from_stored(loaded)
                self._heads[name] = after
                if not bulk:
                    bisect.insort(self._ordered, after, key=_order)
            if before is not None or after is not None:
                changes.append(SessionChange(before, after))
            if progress_total and done % 2000 == 0 and not self._loaded.is_set():
                self._snapshot = IndexSnapshot(
                    generation=self._snapshot.generation,
                    directory=self.directory,
                    progress=(done, progress_total),
                )
        if bulk:
            self._ordered = sorted(self._heads.values(), key=_order)
        return changes

    def _remove_ordered(self, head: SessionHead) -> None:
        position = bisect.bisect_left(self._ordered, head.order_key, key=_order)
        if position < len(self._ordered) and self._ordered[position] is head:
            del self._ordered[position]
        else:  # equal keys cannot happen (file names are unique); stay safe anyway
            self._ordered.remove(head)

    def _publish(self, loaded: bool) -> None:
        by_id = {head.session_id: head for head in self._ordered}  # newest file wins an id
        total = len(self._stamps)
        self._snapshot = IndexSnapshot(
            generation=self._snapshot.generation + 1,
            directory=self.directory,
            sessions=tuple(reversed(self._ordered)),
            skipped=tuple(sorted(self._skipped.values(), key=lambda s: s.name)),
            loaded=loaded,
            progress=(total, total),
            by_id=by_id,
        )


BULK_RESORT = 256


def _order(head: SessionHead) -> tuple[float, str]:
    return head.order_key


def list_candidates_for(directory: Path, names: set[str]) -> dict[str, FileStamp | None]:
    """Stat only the named files (watch events), reusing the listing's rules."""
    listing = list_candidates(directory) if len(names) > 256 else None
    result: dict[str, FileStamp | None] = {}
    for name in names:
        if listing is not None:
            seen = listing.get(name)
            result[name] = seen if isinstance(seen, FileStamp) else None
            continue
        result[name] = _stamp_of(directory / name)
    return result


def _stamp_of(path: Path) -> FileStamp | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return FileStamp(info.st_size, info.st_mtime_ns)
