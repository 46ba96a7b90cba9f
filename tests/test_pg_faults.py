"""Faults on the way to the shared registry: a killed shipper, a database that goes away.

Each test runs a real shipper process against a real PostgreSQL server while a
writer keeps changing the registry, breaks something mid-stream, and then waits
(bounded) until the table holds exactly the directory's content again.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.server import terminate
from src.experiments.live_session_registry import register_live_session_run
from src.experiments.pg_registry import connect, upgrade_schema
from src.experiments.registry_files import record_filename
from tests.pg_support import PgServer
from tests.support import free_port, wait_until
from tests.test_registry_index import make_record

pytestmark = pytest.mark.slow
PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONVERGE_SECONDS = 40.0


class ShipperProcess:
    """``live-track ship`` as its own process, as it runs on a bot host."""

    def __init__(self, registry: Path, url: str, log: Path) -> None:
        self.metrics_port = free_port()
        self.args = [
            sys.executable,
            "-m",
            "src.cli",
            "ship",
            "--registry",
            str(registry),
            "--to",
            url,
            "--host-label",
            "bot-a",
            "--max-backoff",
            "0.5",
            "--reconcile-seconds",
            "60",  # convergence here must come from reconnects and the watch
            "--metrics-port",
            str(self.metrics_port),
        ]
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.args, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT
            )

    def metrics(self) -> dict[str, float]:
        """The shipper's own metrics, by name (one host label)."""
        try:
            url = f"http://127.0.0.1:{self.metrics_port}/metrics"
            text = urllib.request.urlopen(url, timeout=5).read().decode()
        except OSError:
            return {}
        return {
            sample.name: sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        terminate(self.process)


class Writer(threading.Thread):
    """Creates, rewrites and deletes sessions until stopped, like busy bots."""

    def __init__(self, registry: Path, seed: int, first: int = 0) -> None:
        super().__init__(daemon=True)
        self.registry = registry
        self.random = random.Random(seed)
        self.next_id = first
        self.done = threading.Event()
        self.writes = 0

    def run(self) -> None:
        while not self.done.is_set():
            self.step()
            time.sleep(0.002)

    def step(self) -> None:
        existing = list(self.registry.glob("*.json"))
        roll = self.random.random()
        if roll < 0.15 and existing:
            self.random.choice(existing).unlink(missing_ok=True)
        elif roll < 0.35 and existing:
            target = self.random.choice(existing)
            sid = target.stem.rsplit("_", 1)[1]
            pnl = self.random.uniform(-50, 50)
            record = make_record(int(sid[1:]), metrics={"realized_pnl": pnl})
            register_live_session_run(record, self.registry)
        else:
            register_live_session_run(make_record(self.next_id), self.registry)
            self.next_id += 1
        self.writes += 1


def write_plainly(registry: Path, numbers: Iterable[int]) -> None:
    """Many sessions fast (no fsync): the starting content of a busy host."""
    for n in numbers:
        record = make_record(n)
        (registry / record_filename(record)).write_text(json.dumps(record.to_dict()))


def table_content(url: str) -> dict[str, str | None]:
    with connect(url) as conn:
        rows = conn.execute("SELECT file_name, raw FROM live_sessions WHERE host = 'bot-a'")
        return dict(rows.fetchall())


def directory_content(registry: Path) -> dict[str, str | None]:
    return {path.name: path.read_text() for path in registry.glob("*.json")}


def converged(url: str, registry: Path) -> bool:
    try:
        return table_content(url) == directory_content(registry)
    except Exception:  # noqa: BLE001 - the server may still be starting
        return False


def rows(url: str) -> int:
    return len(table_content(url))


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    directory = tmp_path / "registry"
    directory.mkdir()
    return directory


@pytest.fixture
def shipper_process(registry: Path, tmp_path: Path) -> Iterator[Callable[[str], ShipperProcess]]:
    started: list[ShipperProcess] = []

    def start(url: str) -> ShipperProcess:
        shipper = ShipperProcess(registry, url, tmp_path / "shipper.log")
        shipper.start()
        started.append(shipper)
        return shipper

    yield start
    for shipper in started:
        shipper.stop()


def test_a_killed_shipper_resumes_and_converges(
    registry: Path,
    pg_url: str,
    shipper_process: Callable[[str], ShipperProcess],
    tmp_path: Path,
) -> None:
    write_plainly(registry, range(100_000, 102_000))
    shipper = shipper_process(pg_url)
    wait_until(lambda: rows(pg_url) > 0, 20, "the first batch")
    shipper.kill()  # mid-stream: the bulk ship of 2000 files is under way or just done
    writer = Writer(registry, seed=1)
    writer.start()
    time.sleep(0.5)  # the bots keep writing while no shipper runs
    shipper = shipper_process(pg_url)
    wait_until(lambda: rows(pg_url) > 0 and writer.writes > 300, 20, "shipping while writing")
    shipper.kill()  # and again, this time with the writer busy
    shipper = shipper_process(pg_url)
    time.sleep(0.3)
    writer.done.set()
    writer.join(timeout=10)
    took = wait_until(lambda: converged(pg_url, registry), CONVERGE_SECONDS, "convergence")
    print(f"converged {took:.1f} s after the writer stopped; {writer.writes} writes")
    with connect(pg_url) as conn:
        duplicates = conn.execute(
            "SELECT count(*) - count(DISTINCT (host, file_name)) FROM live_sessions"
        ).fetchone()
    assert duplicates == (0,)


def test_the_database_going_away_mid_stream_loses_nothing(
    registry: Path,
    own_pg_server: PgServer,
    shipper_process: Callable[[str], ShipperProcess],
    tmp_path: Path,
) -> None:
    url = own_pg_server.new_database()
    upgrade_schema(url)
    write_plainly(registry, range(100_000, 100_200))
    shipper = shipper_process(url)
    writer = Writer(registry, seed=2)
    writer.start()
    wait_until(lambda: rows(url) >= 200, 20, "the first load shipped")
    own_pg_server.stop()  # mid-stream: the writer is still busy
    down_since = writer.writes
    wait_until(lambda: writer.writes > down_since + 150, 20, "writes while the database is down")
    wait_until(
        lambda: (
            shipper.metrics().get("live_track_shipper_connected") == 0
            and shipper.metrics().get("live_track_shipper_lag_seconds", 0) > 0
        ),
        20,
        "the shipper reporting that it lags",
    )
    own_pg_server.start()
    writer.done.set()
    writer.join(timeout=10)
    took = wait_until(lambda: converged(url, registry), CONVERGE_SECONDS, "convergence")
    print(f"converged {took:.1f} s after the database came back")
    wait_until(
        lambda: shipper.metrics().get("live_track_shipper_lag_seconds") == 0, 20, "lag back to 0"
    )
    assert shipper.metrics()["live_track_shipper_errors_total"] >= 1
    assert shipper.process is not None and shipper.process.poll() is None, "shipper died"
    log = (tmp_path / "shipper.log").read_text()
    assert "retrying with backoff" in log


def test_the_dashboard_catches_up_after_the_database_restarts(
    registry: Path,
    own_pg_server: PgServer,
    shipper_process: Callable[[str], ShipperProcess],
) -> None:
    from fastapi.testclient import TestClient

    from src.webui.app import create_app
    from src.webui.settings import Settings

    url = own_pg_server.new_database()
    upgrade_schema(url)
    register_live_session_run(make_record(1), registry)
    shipper_process(url)
    settings = Settings(database_url=url, reconcile_seconds=60)

    def ids(client: TestClient) -> set[str]:
        response = client.get("/api/live_sessions", params={"limit": 100})
        return {row["session_id"] for row in response.json()}

    def expected() -> set[str]:
        return {p.stem.rsplit("_", 1)[1] for p in registry.glob("*.json")}

    with TestClient(create_app(settings)) as client:
        wait_until(lambda: ids(client) == {"s1"}, 20, "the first session on the page")
        own_pg_server.stop()
        now = datetime(2026, 3, 1)
        for n in range(2, 6):  # sessions written while the database is down
            register_live_session_run(
                make_record(n, started_at=now + timedelta(minutes=n)), registry
            )
        os.unlink(next(registry.glob("*_s1.json")))
        assert ids(client) == {"s1"}  # the dashboard keeps serving what it has
        own_pg_server.start()
        wait_until(lambda: ids(client) == expected(), CONVERGE_SECONDS, "the page catching up")
