"""PostgreSQL as the shared registry of many bot hosts: schema, writes and change feed.

Bots keep writing JSON files on their own host (a network database must never
be able to stop a trading session); a shipper per host copies every file into
one table, and dashboards read that table. One row per registry file, keyed by
(host, session_id, file name), holding the file's text exactly as written (the
dashboard parses it with the same parser as a file), the record as ``jsonb``
for ad-hoc SQL, and the columns that operators filter on.

Every committed change notifies ``live_track_sessions`` from a trigger: ``u N``
for inserted or updated rows (N is the lowest row version written, so a reader
fetches ``version >= N`` and cannot miss a transaction that committed late),
``d [[host, file], ...]`` for deleted rows and ``r`` for "reconcile everything".
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from src.experiments.live_session_record import LiveSessionRecord, utc_instant
from src.experiments.registry_files import FileStamp, file_stamp, stamp_mtime_ns, stamp_size

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
CHANNEL = "live_track_sessions"
CONNECT_TIMEOUT_SECONDS = 5
# Longest NOTIFY payload we send; PostgreSQL's limit is 8000 bytes.
MAX_PAYLOAD = 7000

_MIGRATIONS: dict[int, str] = {
    1: r"""
CREATE SEQUENCE live_sessions_version_seq;

CREATE TABLE live_sessions (
    host           text   NOT NULL,
    session_id     text   NOT NULL,  -- '' for a file that is not a record
    file_name      text   NOT NULL,
    file_size      bigint NOT NULL,
    file_mtime_ns  bigint NOT NULL,
    raw            text,             -- the file's text exactly as written; NULL when skipped
    record         jsonb,            -- the same record for SQL; NULL if skipped or it holds \u0000
    skip_reason    text,             -- why the file is not a record; NULL for a record
    run_type       text,
    mode           text,
    status         text,
    env_name       text,
    symbol         text,
    started_at     timestamptz,
    finished_at    timestamptz,
    updated_at     timestamptz,
    realized_pnl   double precision,
    version        bigint NOT NULL,
    shipped_at     timestamptz NOT NULL,
    PRIMARY KEY (host, session_id, file_name),
    CONSTRAINT live_sessions_one_row_per_file UNIQUE (host, file_name),
    CONSTRAINT live_sessions_record_or_reason CHECK ((raw IS NULL) <> (skip_reason IS NULL))
);
CREATE UNIQUE INDEX live_sessions_version ON live_sessions (version);
CREATE INDEX live_sessions_mode_status ON live_sessions (mode, status);
CREATE INDEX live_sessions_started_at ON live_sessions (started_at DESC);

-- Every write gets a new version: readers compare versions, never contents.
CREATE FUNCTION live_sessions_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := nextval('live_sessions_version_seq');
    NEW.shipped_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER live_sessions_stamp BEFORE INSERT OR UPDATE ON live_sessions
    FOR EACH ROW EXECUTE FUNCTION live_sessions_stamp();

CREATE FUNCTION live_sessions_notify_upsert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE lowest bigint;
BEGIN
    SELECT min(version) INTO lowest FROM changed_rows;
    IF lowest IS NOT NULL THEN
        PERFORM pg_notify('live_track_sessions', 'u ' || lowest);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER live_sessions_notify_insert AFTER INSERT ON live_sessions
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION live_sessions_notify_upsert();
CREATE TRIGGER live_sessions_notify_update AFTER UPDATE ON live_sessions
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION live_sessions_notify_upsert();

CREATE FUNCTION live_sessions_notify_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE payload text;
BEGIN
    SELECT 'd ' || json_agg(json_build_array(host, file_name))::text INTO payload
        FROM gone_rows;
    IF payload IS NULL THEN
        RETURN NULL;
    END IF;
    IF octet_length(payload) > 7000 THEN
        payload := 'r';  -- too many to name: readers reconcile against the table
    END IF;
    PERFORM pg_notify('live_track_sessions', payload);
    RETURN NULL;
END $$;
CREATE TRIGGER live_sessions_notify_delete AFTER DELETE ON live_sessions
    REFERENCING OLD TABLE AS gone_rows
    FOR EACH STATEMENT EXECUTE FUNCTION live_sessions_notify_delete();

CREATE FUNCTION live_sessions_notify_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('live_track_sessions', 'r');
    RETURN NULL;
END $$;
CREATE TRIGGER live_sessions_notify_truncate AFTER TRUNCATE ON live_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION live_sessions_notify_truncate();
""",
}

# The two database roles (README "Many hosts"): the shipper writes its rows, the
# dashboard only reads and listens (LISTEN needs no grant).
GRANTS = """
GRANT SELECT ON live_track_schema TO {shipper}, {dashboard};
GRANT SELECT, INSERT, UPDATE, DELETE ON live_sessions TO {shipper};
GRANT USAGE ON SEQUENCE live_sessions_version_seq TO {shipper};
GRANT SELECT ON live_sessions TO {dashboard};
"""


class SchemaMismatch(RuntimeError):
    """The database holds no Live-Track schema, or one of another version."""


def connect(url: str, *, autocommit: bool = False, purpose: str = "") -> psycopg.Connection[Any]:
    """Open a connection that fails fast when the server is unreachable."""
    return psycopg.connect(
        url,
        autocommit=autocommit,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        application_name=f"live-track {purpose}".strip(),
    )


# --- Schema -------------------------------------------------------------------


def schema_version(conn: psycopg.Connection[Any]) -> int:
    """The installed schema version; 0 when there is none."""
    found = conn.execute("SELECT to_regclass('live_track_schema') IS NOT NULL").fetchone()
    if not found or not found[0]:
        return 0
    row = conn.execute("SELECT version FROM live_track_schema").fetchone()
    return int(row[0]) if row else 0


def check_schema(conn: psycopg.Connection[Any]) -> None:
    """Refuse to work on a schema this code was not written for."""
    found = schema_version(conn)
    if found == SCHEMA_VERSION:
        return
    if found < SCHEMA_VERSION:
        raise SchemaMismatch(
            f"database schema version {found}, this live-track needs {SCHEMA_VERSION}: "
            "run `live-track db upgrade`"
        )
    raise SchemaMismatch(
        f"database schema version {found} is newer than this live-track's "
        f"{SCHEMA_VERSION}: upgrade live-track"
    )


def upgrade_schema(url: str) -> tuple[int, int]:
    """Create or upgrade the schema; idempotent and safe to run from two hosts at once.

    Returns the versions before and after.
    """
    with connect(url, purpose="db upgrade") as conn:
        # One upgrader at a time; the lock ends with the transaction.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('live_track_schema'))")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS live_track_schema ("
            " singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),"
            " version integer NOT NULL,"
            " upgraded_at timestamptz NOT NULL DEFAULT now())"
        )
        before = schema_version(conn)
        if before > SCHEMA_VERSION:
            raise SchemaMismatch(
                f"database schema version {before} is newer than this live-track's "
                f"{SCHEMA_VERSION}: upgrade live-track"
            )
        for version in range(before + 1, SCHEMA_VERSION + 1):
            conn.execute(_MIGRATIONS[version])
            conn.execute(
                "INSERT INTO live_track_schema (version) VALUES (%s)"
                " ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version,"
                " upgraded_at = now()",
                (version,),
            )
        return before, SCHEMA_VERSION


def grant_roles(conn: psycopg.Connection[Any], shipper: str, dashboard: str) -> None:
    """Apply the documented grants for the shipper and the dashboard role."""
    statement = sql.SQL(GRANTS).format(
        shipper=sql.Identifier(shipper), dashboard=sql.Identifier(dashboard)
    )
    conn.execute(statement)


# --- Rows ---------------------------------------------------------------------


@dataclass(frozen=True)
class ShippedFile:
    """One registry file as the shipper sends it: a record, or the reason it is none."""

    file_name: str
    stamp: FileStamp
    raw: str | None = None
    record: LiveSessionRecord | None = None
    skip_reason: str | None = None


# What the table says about one file, for the shipper's reconciliation.
RowState = tuple[FileStamp, str | None]  # (stamp, skip reason)

_STAGING_COLUMNS = (
    "host",
    "session_id",
    "file_name",
    "file_size",
    "file_mtime_ns",
    "raw",
    "skip_reason",
    "run_type",
    "mode",
    "status",
    "env_name",
    "symbol",
    "started_at",
    "finished_at",
    "updated_at",
    "realized_pnl",
)
_UPDATED = [c for c in _STAGING_COLUMNS if c not in ("host", "file_name")] + ["record"]

_CREATE_STAGING = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS live_track_staging ("
    " host text, session_id text, file_name text, file_size bigint, file_mtime_ns bigint,"
    " raw text, skip_reason text, run_type text, mode text, status text, env_name text,"
    " symbol text, started_at timestamptz, finished_at timestamptz, updated_at timestamptz,"
    " realized_pnl double precision) ON COMMIT DELETE ROWS"
)
# An unchanged file is not rewritten: its version stays, so no reader re-reads it.
_UPSERT = (
    f"INSERT INTO live_sessions AS s ({', '.join(_STAGING_COLUMNS)}, record)"
    f" SELECT {', '.join(_STAGING_COLUMNS)},"
    r" CASE WHEN raw IS NOT NULL AND strpos(raw, '\u0000') = 0 THEN raw::jsonb END"
    " FROM live_track_staging"
    " ON CONFLICT (host, file_name) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _UPDATED)
    + " WHERE (s.file_size, s.file_mtime_ns, s.raw, s.skip_reason)"
    " IS DISTINCT FROM (EXCLUDED.file_size, EXCLUDED.file_mtime_ns, EXCLUDED.raw,"
    " EXCLUDED.skip_reason)"
)


def _text(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; these columns are for SQL filters only
    # (readers parse ``raw``), so a replacement character is good enough.
    return None if value is None else value.replace("\x00", "\ufffd")


def _moment(value: datetime | None) -> datetime | None:
    return None if value is None else utc_instant(value)


def _pnl(record: LiveSessionRecord) -> float | None:
    value = record.metrics.get("realized_pnl")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _staging_row(host: str, item: ShippedFile) -> tuple[object, ...]:
    record = item.record
    if record is None:
        return (
            host,
            "",
            item.file_name,
            stamp_size(item.stamp),
            stamp_mtime_ns(item.stamp),
            None,
            _text(item.skip_reason) or "not a record",
            *([None] * 9),
        )
    return (
        host,
        _text(record.session_id),
        item.file_name,
        stamp_size(item.stamp),
        stamp_mtime_ns(item.stamp),
        item.raw,
        None,
        _text(record.run_type),
        _text(record.mode),
        _text(record.status),
        _text(record.env_name),
        _text(record.symbol),
        _moment(record.started_at),
        _moment(record.finished_at),
        _moment(record.updated_at),
        _pnl(record),
    )


def upsert_files(conn: psycopg.Connection[Any], host: str, files: Sequence[ShippedFile]) -> None:
    """Write one batch of files in the caller's transaction: one statement, one notify."""
    if not files:
        return
    conn.execute(_CREATE_STAGING)
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in _STAGING_COLUMNS)
    copy = sql.SQL("COPY live_track_staging ({}) FROM STDIN").format(columns)
    with conn.cursor() as cursor:
        with cursor.copy(copy) as writer:
            for item in files:
                writer.write_row(_staging_row(host, item))
        cursor.execute(_UPSERT)
        cursor.execute("DELETE FROM live_track_staging")


def delete_files(conn: psycopg.Connection[Any], host: str, names: Iterable[str]) -> int:
    """Delete the rows of files that are gone from the host's directory."""
    wanted = list(names)
    if not wanted:
        return 0
    cursor = conn.execute(
        "DELETE FROM live_sessions WHERE host = %s AND file_name = ANY(%s)", (host, wanted)
    )
    return cursor.rowcount


def host_state(conn: psycopg.Connection[Any], host: str) -> dict[str, RowState]:
    """Every file the table holds for this host, with the stamp it was shipped at."""
    rows = conn.execute(
        "SELECT file_name, file_size, file_mtime_ns, skip_reason FROM live_sessions"
        " WHERE host = %s",
        (host,),
    )
    return {name: (file_stamp(size, mtime), reason) for name, size, mtime, reason in rows}


# --- Reading, for the dashboard ---------------------------------------------------


ROW_COLUMNS = "host, file_name, version, file_size, file_mtime_ns, raw, skip_reason"


def parse_notification(payload: str) -> tuple[str, object]:
    """Split a notify payload into its kind and argument; unknown payloads mean reconcile."""
    kind, _, rest = payload.partition(" ")
    try:
        if kind == "u":
            return "u", int(rest)
        if kind == "d":
            gone = json.loads(rest)
            return "d", [(str(host), str(name)) for host, name in gone]
    except (ValueError, TypeError):
        pass
    return "r", None
