"""A throwaway PostgreSQL server for the tests: Debian's binaries, a temporary directory.

PostgreSQL refuses to run as root, and CI runs as root, so the server runs as
the unprivileged ``postgres`` user (via ``runuser``) in a directory it owns. It
listens only on a Unix socket in that directory, never on the network, and is
stopped (and its directory removed) at the end.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest


def _server_binaries() -> Path:
    """Debian's newest installed PostgreSQL (``.ci/run`` installs the package)."""
    given = os.environ.get("LIVE_TRACK_PG_BIN")
    if given:
        return Path(given)
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3])
    )
    return installed[-1].parent if installed else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _server_binaries()
PG_USER = "postgres"


def _as_server_user() -> list[str]:
    """Prefix a command so it runs as the unprivileged user when we are root."""
    return ["runuser", "-u", PG_USER, "--"] if os.geteuid() == 0 else []


class PgServer:
    """One PostgreSQL cluster in a temporary directory, reachable over a Unix socket."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            pytest.fail(
                f"PostgreSQL server binaries not found in {PG_BIN}: apt-get install postgresql "
                "(or point LIVE_TRACK_PG_BIN at a bin directory with initdb and pg_ctl)"
            )
        self.root = Path(tempfile.mkdtemp(prefix="lt-pg-"))
        self.data = self.root / "data"
        self.port = 5432  # a Unix socket in our own directory: no clash with any other server
        self._databases = itertools.count(1)
        if os.geteuid() == 0:
            entry = pwd.getpwnam(PG_USER)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            PG_USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*_as_server_user(), str(PG_BIN / tool), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=60,
        )

    def start(self) -> None:
        options = (
            f"-k {self.root} -c listen_addresses='' -p {self.port} -F "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@/{database}?host={self.root}&port={self.port}"

    def new_database(self) -> str:
        """A fresh, empty database: tests sharing one server never see each other's rows."""
        name = f"lt_test_{next(self._databases)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One server for the whole session; each test takes its own database."""
    server = PgServer()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """The URL of a fresh database with the Live-Track schema installed."""
    from src.experiments.pg_registry import upgrade_schema

    url = pg_server.new_database()
    upgrade_schema(url)
    return url


@pytest.fixture(scope="module")
def own_pg_server() -> Iterator[PgServer]:
    """A server apart from the shared one, which tests may stop and start (fault tests).

    Shared by the tests of one module; each test leaves it running.
    """
    server = PgServer()
    try:
        yield server
    finally:
        server.destroy()
