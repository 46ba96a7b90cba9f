"""The shared registry: directory -> shipper -> PostgreSQL -> index equals directory -> index.

All against a real PostgreSQL server (tests/pg_support.py), no mocks.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from src.cli import main
from src.experiments.live_session_registry import register_live_session_run
from src.experiments.pg_index import PgRegistryIndex
from src.experiments.pg_registry import (
    CHANNEL,
    SCHEMA_VERSION,
    SchemaMismatch,
    check_schema,
    connect,
    grant_roles,
    host_state,
)
from src.experiments.registry_files import stamp_size
from src.experiments.registry_index import RegistryIndex
from src.experiments.shipper import Backoff, Shipper
from src.webui.live_track import SessionRules, export_sessions, get_session_detail, live_track_view
from src.webui.session_query import SessionQuery
from tests.pg_support import PgServer
from tests.support import wait_until
from tests.test_registry_index import BASE, NOW, make_record

QUERIES = (
    SessionQuery(limit=100),
    SessionQuery(limit=7, page=2, mode=("live", "paper")),
    SessionQuery(limit=100, status=("started",), sort="pnl", order="asc"),
    SessionQuery(limit=100, environment="eth", range="30d"),
)
MARKER = "live_track_test_marker"


def views(index: RegistryIndex) -> dict[str, Any]:
    """Everything a user can see of an index: every view, export and detail page."""
    snapshot = index.snapshot()
    seen: dict[str, Any] = {
        "skipped": [(s.name, s.reason) for s in snapshot.skipped],
        "sessions": [h.shipped(h.file_name, "") for h in snapshot.sessions],
    }
    for n, query in enumerate(QUERIES):
        view = live_track_view(snapshot, query, NOW, SessionRules())
        seen[f"view{n}"] = view.model_dump(exclude={"generation", "generated_at", "registry_dir"})
        seen[f"export{n}"] = [
            row.model_dump() for row in export_sessions(snapshot, query, NOW, SessionRules())
        ]
    for session_id in sorted(snapshot.by_id):
        detail = get_session_detail(index, snapshot, session_id, NOW, SessionRules())
        seen[f"detail {session_id}"] = detail.model_dump(exclude={"registry_file"})
    return seen


def directory_index(directory: Path) -> RegistryIndex:
    index = RegistryIndex(directory)
    index.reconcile()
    return index


def database_index(url: str) -> PgRegistryIndex:
    index = PgRegistryIndex(url)
    index.sync()
    return index


def database_views(url: str) -> dict[str, Any]:
    index = database_index(url)
    try:
        return views(index)
    finally:
        index.close()


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    directory = tmp_path / "registry"
    directory.mkdir()
    return directory


@pytest.fixture
def conn(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(pg_url) as connection:
        yield connection


# --- Schema -------------------------------------------------------------------------


def test_db_upgrade_creates_the_schema_once(
    pg_server: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = pg_server.new_database()
    assert main(["db", "upgrade", "--url", url]) == 0
    assert f"from schema version 0 to {SCHEMA_VERSION}" in capsys.readouterr().out
    assert main(["db", "upgrade", "--url", url]) == 0
    assert f"is up to date (version {SCHEMA_VERSION})" in capsys.readouterr().out
    with connect(url) as conn:
        check_schema(conn)
        triggers = conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'live_sessions'::regclass"
            " AND NOT tgisinternal"
        ).fetchone()
    assert triggers == (5,)


def test_db_upgrade_takes_the_url_from_the_environment(
    pg_server: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIVE_TRACK_DATABASE_URL", pg_server.new_database())
    assert main(["db", "upgrade"]) == 0
    monkeypatch.delenv("LIVE_TRACK_DATABASE_URL")
    assert main(["db", "upgrade"]) == 2
    assert "No PostgreSQL URL" in capsys.readouterr().err


def test_an_old_or_missing_schema_is_refused_with_the_fix(pg_server: PgServer) -> None:
    url = pg_server.new_database()
    with connect(url) as conn, pytest.raises(SchemaMismatch, match="live-track db upgrade"):
        check_schema(conn)
    with pytest.raises(SchemaMismatch, match="live-track db upgrade"):
        PgRegistryIndex(url).sync()


# --- Shipping -----------------------------------------------------------------------


def test_shipper_makes_the_rows_equal_the_directory(
    registry: Path, pg_url: str, conn: psycopg.Connection[Any]
) -> None:
    paths = [register_live_session_run(make_record(n), registry) for n in range(12)]
    shipper = Shipper(registry, pg_url, "bot-a")
    shipper.reconcile(conn)
    paths[0].unlink()
    paths[1].write_text(paths[1].read_text().replace('"completed"', '"failed"'))
    shipper.reconcile(conn)
    shipper.reconcile(conn)  # idempotent: nothing left to do
    rows = conn.execute(
        "SELECT file_name, raw, status, record->>'session_id' FROM live_sessions"
        " WHERE host = 'bot-a' ORDER BY file_name"
    ).fetchall()
    expected = sorted(p.name for p in paths[1:])
    assert [row[0] for row in rows] == expected
    assert [row[1] for row in rows] == [(registry / name).read_text() for name in expected]
    assert rows[0][2:] == ("failed", "s1")
    stamps = host_state(conn, "bot-a")
    assert {name: stamp_size(state[0]) for name, state in stamps.items()} == {
        name: (registry / name).stat().st_size for name in expected
    }


def test_unchanged_files_keep_their_row_version(
    registry: Path, pg_url: str, conn: psycopg.Connection[Any]
) -> None:
    register_live_session_run(make_record(1), registry)
    shipper = Shipper(registry, pg_url, "bot-a")
    shipper.reconcile(conn)
    before = conn.execute("SELECT version FROM live_sessions").fetchall()
    Shipper(registry, pg_url, "bot-a").reconcile(conn)  # a restarted shipper re-ships nothing
    shipper.ship_names(conn, [p.name for p in registry.iterdir()])
    assert conn.execute("SELECT version FROM live_sessions").fetchall() == before


def test_a_session_id_change_in_a_file_keeps_one_row(
    registry: Path, pg_url: str, conn: psycopg.Connection[Any]
) -> None:
    path = register_live_session_run(make_record(1), registry)
    shipper = Shipper(registry, pg_url, "bot-a")
    shipper.reconcile(conn)
    path.write_text(path.read_text().replace('"s1"', '"renamed"'))
    shipper.ship_names(conn, [path.name])
    assert conn.execute("SELECT session_id FROM live_sessions").fetchall() == [("renamed",)]


def test_hostile_files_are_skipped_exactly_as_the_server_does(
    registry: Path, pg_url: str, conn: psycopg.Connection[Any]
) -> None:
    register_live_session_run(make_record(1), registry)
    (registry / "huge.json").write_bytes(b"[" + b" " * (1024 * 1024 + 10) + b"]")
    (registry / "latin1.json").write_bytes('{"session_id": "M\xfcller"}'.encode("latin-1"))
    (registry / "deep.json").write_text("[" * 500 + "]" * 500)
    (registry / "link.json").symlink_to(registry / "huge.json")
    (registry / "dir.json").mkdir()
    os.mkfifo(registry / "pipe.json")
    nul = make_record(2, config={"note": "a\u0000b"})
    register_live_session_run(nul, registry)  # valid JSON that jsonb cannot hold
    Shipper(registry, pg_url, "").reconcile(conn)
    assert database_views(pg_url) == views(directory_index(registry))
    assert conn.execute(
        "SELECT count(*), count(raw), count(record) FROM live_sessions"
    ).fetchone() == (8, 2, 1)


def test_a_file_name_that_is_not_utf8_is_shipped_escaped(
    registry: Path, pg_url: str, conn: psycopg.Connection[Any]
) -> None:
    (registry / os.fsdecode(b"name\xff_s1.json")).write_bytes(
        register_live_session_run(make_record(1), registry).read_bytes()
    )
    shipper = Shipper(registry, pg_url, "bot-a")
    shipper.reconcile(conn)
    shipper.reconcile(conn)  # and the escaped name is not shipped again and again
    names = conn.execute("SELECT file_name, version FROM live_sessions").fetchall()
    assert sorted(name for name, _ in names)[1] == "name\\xff_s1.json"
    assert len({version for _, version in names}) == 2


def test_shipping_never_writes_into_the_registry(
    registry: Path, pg_url: str, conn: psycopg.Connection[Any]
) -> None:
    for n in range(5):
        register_live_session_run(make_record(n), registry)
    (registry / "junk.json").write_text("{")
    before = {p.name: p.stat().st_mtime_ns for p in registry.iterdir()}
    registry.chmod(0o555)  # and it would fail loudly if it tried
    try:
        Shipper(registry, pg_url, "bot-a").reconcile(conn)
    finally:
        registry.chmod(0o755)
    assert {p.name: p.stat().st_mtime_ns for p in registry.iterdir()} == before
    assert conn.execute("SELECT count(*) FROM live_sessions").fetchone() == (6,)


def test_hosts_do_not_touch_each_others_rows(
    tmp_path: Path, pg_url: str, conn: psycopg.Connection[Any]
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for directory, first in ((a, 0), (b, 100)):
        for n in range(first, first + 3):
            register_live_session_run(make_record(n), directory)
    # The same file name on both hosts: two rows, two sessions.
    register_live_session_run(make_record(7), a)
    register_live_session_run(make_record(7), b)
    Shipper(a, pg_url, "bot-a").reconcile(conn)
    Shipper(b, pg_url, "bot-b").reconcile(conn)
    for path in a.iterdir():
        path.unlink()
    Shipper(a, pg_url, "bot-a").reconcile(conn)
    hosts = conn.execute("SELECT host, count(*) FROM live_sessions GROUP BY host").fetchall()
    assert hosts == [("bot-b", 4)]
    index = database_index(pg_url)
    assert sorted(h.session_id for h in index.snapshot().sessions) == [
        "s100",
        "s101",
        "s102",
        "s7",
    ]
    assert {h.host for h in index.snapshot().sessions} == {"bot-b"}
    index.close()


def test_the_documented_roles_suffice(
    pg_server: PgServer, registry: Path, pg_url: str, conn: psycopg.Connection[Any]
) -> None:
    suffix = conn.info.dbname
    shipper_role, dashboard_role = f"ship_{suffix}", f"dash_{suffix}"
    for role in (shipper_role, dashboard_role):
        conn.execute(f"CREATE ROLE {role} LOGIN")
    grant_roles(conn, shipper_role, dashboard_role)
    conn.commit()
    database = suffix
    register_live_session_run(make_record(1), registry)
    shipper_url = pg_server.url(database).replace("postgres@", f"{shipper_role}@")
    dashboard_url = pg_server.url(database).replace("postgres@", f"{dashboard_role}@")
    with connect(shipper_url) as as_shipper:
        Shipper(registry, shipper_url, "bot-a").reconcile(as_shipper)
    index = database_index(dashboard_url)
    assert [h.session_id for h in index.snapshot().sessions] == ["s1"]
    assert index.read_record(index.snapshot().sessions[0]) is not None
    index.close()
    with (
        connect(dashboard_url) as as_dashboard,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        as_dashboard.execute("DELETE FROM live_sessions")


# --- The property: directory -> shipper -> database -> index == directory -> index ---

edit = st.tuples(
    st.sampled_from(
        ["register", "rewrite", "delete", "corrupt", "uncorrupt", "duplicate", "touch", "nul"]
    ),
    st.integers(min_value=0, max_value=3),
)


def _apply_edit(directory: Path, step: int, action: str, n: int) -> str | None:
    """Make one edit; return the file name it touched."""
    existing = sorted(directory.glob(f"*_s{n}.json"))
    if action == "register":
        return register_live_session_run(make_record(n, status="started"), directory).name
    if action == "rewrite" and existing:
        data = json.loads(existing[0].read_text())
        data["status"], data["finished_at"] = "completed", (BASE + timedelta(days=9)).isoformat()
        data["metrics"] = {"realized_pnl": step - 5.5, "num_orders": step}
        existing[0].write_text(json.dumps(data))  # in place, not atomic
        return existing[0].name
    if action == "delete" and existing:
        existing[0].unlink()
        return existing[0].name
    if action == "corrupt":
        (directory / f"junk_{n}.json").write_bytes(b"{not json" * (step + 1))
        return f"junk_{n}.json"
    if action == "uncorrupt" and (directory / f"junk_{n}.json").exists():
        (directory / f"junk_{n}.json").unlink()
        return f"junk_{n}.json"
    if action == "duplicate":
        copy = make_record(n, run_type=f"live_session_copy{step}", started_at=BASE)
        return register_live_session_run(copy, directory).name
    if action == "touch" and existing:
        os.utime(existing[0], ns=(step * 10**9, step * 10**9))
        return existing[0].name
    if action == "nul":
        return register_live_session_run(make_record(n, error="x\u0000y"), directory).name
    return None


def _notifications_until_now(listener: psycopg.Connection[Any]) -> list[str]:
    """Everything notified so far: commit order puts our marker after all of it."""
    listener.execute(f"NOTIFY {MARKER}")
    payloads = []
    for note in listener.notifies(timeout=30):
        if note.channel == MARKER:
            return payloads
        payloads.append(note.payload)
    raise AssertionError("the marker notification never arrived")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seeded=st.integers(min_value=0, max_value=4),
    edits=st.lists(edit, max_size=20),
    watched=st.lists(st.booleans(), max_size=20),
    heard=st.lists(st.booleans(), max_size=20),
)
def test_shipped_index_equals_the_directory_index_after_any_edits(
    tmp_path_factory: pytest.TempPathFactory,
    conn: psycopg.Connection[Any],
    pg_url: str,
    seeded: int,
    edits: list[tuple[str, int]],
    watched: list[bool],
    heard: list[bool],
) -> None:
    directory = tmp_path_factory.mktemp("registry")
    for n in range(seeded):
        register_live_session_run(make_record(n), directory)
    conn.execute("DELETE FROM live_sessions")
    conn.commit()
    shipper = Shipper(directory, pg_url, "", batch_files=3)
    shipper.reconcile(conn)
    following = database_index(pg_url)  # loaded before the edits, then fed by notifications
    with contextlib.closing(following), connect(pg_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        listener.execute(f"LISTEN {MARKER}")
        for step, (action, n) in enumerate(edits):
            name = _apply_edit(directory, step, action, n)
            # Sometimes the watch reports the file at once, sometimes a later reconcile.
            if name and step < len(watched) and watched[step]:
                shipper.ship_names(conn, [name])
            if step < len(heard) and heard[step]:
                following.apply_notifications(_notifications_until_now(listener))
        shipper.reconcile(conn)
        following.apply_notifications(_notifications_until_now(listener))
        expected = views(directory_index(directory))
        assert views(following) == expected
    assert database_views(pg_url) == expected


def test_backoff_grows_to_its_cap_and_resets() -> None:
    backoff = Backoff(first=0.5, cap=4.0)
    delays = [backoff.next_delay() for _ in range(8)]
    assert 0.4 <= delays[0] <= 0.6
    assert all(delay <= 4.0 for delay in delays)
    assert delays[-1] >= 4.0 * 0.8
    backoff.reset()
    assert backoff.next_delay() <= 0.6


def test_the_shipper_reports_no_lag_once_a_watched_file_is_gone(
    registry: Path, pg_url: str, conn: psycopg.Connection[Any]
) -> None:
    shipper = Shipper(registry, pg_url, "bot-a")
    shipper.reconcile(conn)
    path = register_live_session_run(make_record(1), registry)
    path.unlink()  # created and deleted before the watch's batch is shipped
    shipper.ship_names(conn, [path.name, "other.json"])
    assert (shipper.stats.backlog, shipper.stats.lag_seconds()) == (0, 0.0)


def test_batches_stay_within_their_byte_bound(
    registry: Path, pg_url: str, conn: psycopg.Connection[Any]
) -> None:
    for n in range(10):
        register_live_session_run(make_record(n, config={"pad": "x" * 3000}), registry)
    shipper = Shipper(registry, pg_url, "bot-a", batch_bytes=8000)
    shipper.reconcile(conn)
    assert shipper.stats.batches == 4  # ~3.4 KB per file: three files per batch, then one
    assert conn.execute("SELECT count(*) FROM live_sessions").fetchone() == (10,)


def test_a_shipper_started_before_db_upgrade_waits_and_then_ships(
    pg_server: PgServer, registry: Path
) -> None:
    url = pg_server.new_database()
    register_live_session_run(make_record(1), registry)
    shipper = Shipper(registry, url, "bot-a", max_backoff=0.2)
    stop = threading.Event()
    thread = threading.Thread(target=shipper.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: shipper.stats.errors >= 1, 10, "the shipper refusing the missing schema")
        assert main(["db", "upgrade", "--url", url]) == 0
        wait_until(lambda: shipper.stats.upserted == 1, 10, "the shipper shipping after upgrade")
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ship", "--to", "postgresql://x", "--host-label", "a/b"], "invalid host label 'a/b'"),
        (["ship", "--to", "postgresql://x", "--max-backoff", "0"], "must be positive"),
    ],
)
def test_ship_rejects_bad_arguments(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_ship_needs_a_database_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LIVE_TRACK_DATABASE_URL", raising=False)
    assert main(["ship", "--host-label", "bot-a"]) == 2
    assert "No PostgreSQL URL" in capsys.readouterr().err
