"""The in-memory registry index, fed from the shared PostgreSQL table.

One bulk load, then the rows the change feed names (LISTEN/NOTIFY from the
table's triggers), with a periodic full reconciliation by row version as the
fallback for anything a listener missed while disconnected. Rows are parsed
with the same record parser as files, into the same heads, so every view
answers exactly as it would over the directories the rows came from.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from src.experiments.database_url import redact_url
from src.experiments.live_session_record import InvalidRecord, LiveSessionRecord, parse_record
from src.experiments.pg_registry import (
    ROW_COLUMNS,
    SchemaMismatch,
    check_schema,
    connect,
    parse_notification,
)
from src.experiments.registry_files import SkippedFile, file_stamp
from src.experiments.registry_index import RegistryIndex, SessionChange
from src.experiments.session_head import SessionHead, head_from_record

logger = logging.getLogger(__name__)

FETCH_CHUNK = 5000

Row = tuple[str, str, int, int, int, str | None, str | None]


def index_key(host: str, file_name: str) -> str:
    """Where a row lives in the index: its file name, prefixed by its host if it has one.

    File names never contain "/", so keys of different hosts cannot collide, and
    rows shipped with an empty host label get exactly the directory's keys.
    """
    return f"{host}/{file_name}" if host else file_name


def source_label(url: str) -> str:
    """What the page header shows as the registry: the database, without credentials."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql"
    return f"postgresql:{params.get('host') or 'localhost'}:{params.get('port') or 5432}" + (
        f" {params.get('dbname') or ''}"
    )


def head_of_row(row: Row) -> tuple[str, int, SessionHead | SkippedFile]:
    """Parse one row exactly as the file would be parsed; (index key, version, head)."""
    host, file_name, version, size, mtime_ns, raw, skip_reason = row
    key = index_key(host, file_name)
    if raw is None:
        return key, version, SkippedFile(key, skip_reason or "not a record")
    try:
        record = parse_record(raw.encode("utf-8"))
    except InvalidRecord as exc:  # shipped by another version of the parser
        return key, version, SkippedFile(key, str(exc))
    head = head_from_record(key, file_stamp(size, mtime_ns), record)
    return key, version, head.shipped(file_name, host)


class PgRegistryIndex(RegistryIndex):
    """A RegistryIndex whose source is the live_sessions table instead of a directory."""

    def __init__(self, url: str) -> None:
        super().__init__(Path(source_label(url)))
        self.url = url
        self._versions: dict[str, int] = {}  # index key -> row version held
        self._sync_lock = threading.Lock()
        self._reader: psycopg.Connection[Any] | None = None
        self._reader_lock = threading.Lock()

    def source_exists(self) -> bool:
        return True  # the table is there once the schema is checked

    # --- Loading and reconciling ------------------------------------------------

    def reconcile(self) -> list[SessionChange]:
        """Bring the index level with the table; a database failure is logged, not raised."""
        try:
            return self.sync()
        except (psycopg.Error, SchemaMismatch) as exc:
            logger.warning("Reading the registry from %s failed: %s", redact_url(self.url), exc)
            return []

    def sync(self) -> list[SessionChange]:
        """Compare every row's version with the index and read only what changed."""
        with self._sync_lock, connect(self.url, purpose="dashboard sync") as conn:
            started = time.monotonic()
            check_schema(conn)
            conn.commit()
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            if not self._versions:
                # A server-side cursor: the records' text (about 190 MB at 100,000
                # sessions) is parsed a chunk at a time, never held all at once.
                with conn.cursor(name="live_track_first_load") as cursor:
                    cursor.itersize = FETCH_CHUNK
                    cursor.execute(f"SELECT {ROW_COLUMNS} FROM live_sessions")
                    changes = self._apply_rows(cursor, (), complete=True)
            else:
                listing = {
                    index_key(host, name): version
                    for host, name, version in conn.execute(
                        "SELECT host, file_name, version FROM live_sessions"
                    )
                }
                wanted = [v for key, v in listing.items() if self._versions.get(key) != v]
                gone = [key for key in self._versions if key not in listing]
                rows = []
                for start in range(0, len(wanted), FETCH_CHUNK):
                    rows += conn.execute(
                        f"SELECT {ROW_COLUMNS} FROM live_sessions WHERE version = ANY(%s)",
                        (wanted[start : start + FETCH_CHUNK],),
                    ).fetchall()
                changes = self._apply_rows(rows, gone, complete=True)
            conn.commit()
            if self.load_seconds is None:
                self.load_seconds = time.monotonic() - started
            return changes

    def apply_notifications(self, payloads: Sequence[str]) -> list[SessionChange]:
        """Read what a batch of notifications names, as the table holds it now.

        Order does not matter: upserts are fetched by version, deleted keys are
        looked up again (a file deleted and shipped anew has a row again).
        """
        lowest: int | None = None
        maybe_gone: set[tuple[str, str]] = set()
        for payload in payloads:
            kind, argument = parse_notification(payload)
            if kind == "r":
                return self.sync()
            if kind == "u" and isinstance(argument, int):
                lowest = argument if lowest is None else min(lowest, argument)
            elif kind == "d" and isinstance(argument, list):
                maybe_gone.update(argument)
        with self._sync_lock:
            if not self._loaded.is_set():
                return []  # the first load will read everything anyway
            rows: list[Row] = []
            with self._reader_connection() as conn:
                if lowest is not None:
                    rows += conn.execute(
                        f"SELECT {ROW_COLUMNS} FROM live_sessions WHERE version >= %s", (lowest,)
                    ).fetchall()
                if maybe_gone:
                    hosts, names = zip(*maybe_gone, strict=True)
                    rows += conn.execute(
                        f"SELECT {ROW_COLUMNS} FROM live_sessions WHERE (host, file_name) IN"
                        " (SELECT * FROM unnest(%s::text[], %s::text[]))",
                        (list(hosts), list(names)),
                    ).fetchall()
            present = {index_key(row[0], row[1]) for row in rows}
            gone = [index_key(h, n) for h, n in maybe_gone if index_key(h, n) not in present]
            return self._apply_rows(rows, gone, complete=False)

    def _apply_rows(
        self, rows: Iterable[Row], gone: Iterable[str], complete: bool
    ) -> list[SessionChange]:
        read: dict[str, SessionHead | SkippedFile] = {}
        versions: dict[str, int] = {}
        for row in rows:
            key = index_key(row[0], row[1])
            if self._versions.get(key) == row[2] or versions.get(key, -1) >= row[2]:
                continue
            key, version, head = head_of_row(row)
            read[key] = head
            versions[key] = version
        removed = [key for key in gone if key in self._versions]
        for key in removed:
            del self._versions[key]
        self._versions.update(versions)
        return self.apply_heads(read, removed, loaded=complete or self._loaded.is_set())

    # --- Reading one record --------------------------------------------------------

    def read_record(self, head: SessionHead) -> LiveSessionRecord | None:
        """Read the full record for a detail view from its row."""
        try:
            with self._reader_connection() as conn:
                row = conn.execute(
                    "SELECT raw FROM live_sessions WHERE host = %s AND file_name = %s",
                    (head.host, head.file_name),
                ).fetchone()
        except psycopg.Error as exc:
            logger.warning("Reading session %s failed: %s", head.session_id[:80], exc)
            return None
        if row is None or row[0] is None:
            return None
        try:
            return parse_record(str(row[0]).encode("utf-8"))
        except InvalidRecord:
            return None

    def _reader_connection(self) -> _Reader:
        return _Reader(self)

    def close(self) -> None:
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None


class _Reader:
    """One long-lived autocommit connection for lookups, reopened after a failure."""

    def __init__(self, index: PgRegistryIndex) -> None:
        self.index = index

    def __enter__(self) -> psycopg.Connection[Any]:
        index = self.index
        index._reader_lock.acquire()
        try:
            if index._reader is None or index._reader.closed:
                index._reader = connect(index.url, autocommit=True, purpose="dashboard")
        except BaseException:
            index._reader_lock.release()
            raise
        return index._reader

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        index = self.index
        try:
            if isinstance(error, psycopg.OperationalError) and index._reader is not None:
                index._reader.close()
                index._reader = None
        finally:
            index._reader_lock.release()
