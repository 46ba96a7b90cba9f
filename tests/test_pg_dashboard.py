"""Dashboards over the shared PostgreSQL registry: hosts in the UI, several processes at once."""

from __future__ import annotations

import csv
import io
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from src.experiments.live_session_registry import register_live_session_run
from src.experiments.pg_registry import connect
from src.experiments.shipper import Shipper
from src.webui.app import create_app
from src.webui.settings import Settings
from tests.support import EventStream, LiveServer, utc_now, wait_until
from tests.test_registry_index import make_record

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def two_hosts(tmp_path: Path, pg_url: str) -> str:
    """Sessions shipped from two bot hosts: s0-s2 from bot-a, s10-s11 from bot-b."""
    for host, numbers in (("bot-a", range(3)), ("bot-b", range(10, 12))):
        directory = tmp_path / host
        for n in numbers:
            register_live_session_run(make_record(n), directory)
        with connect(pg_url) as conn:
            Shipper(directory, pg_url, host).reconcile(conn)
    return pg_url


@pytest.fixture
def client(two_hosts: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=two_hosts))) as test_client:
        yield test_client


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(row["session_id"] for row in rows)


def test_the_page_shows_a_host_column_and_filter_for_several_hosts(client: TestClient) -> None:
    page = client.get("/").text
    assert '<th scope="col" class="col-host">Host</th>' in page
    assert '<td class="col-host" data-label="Host">bot-b</td>' in page
    assert '<input type="checkbox" name="host" value="bot-a">' in page
    filtered = client.get("/", params={"host": "bot-b"}).text
    assert '<input type="checkbox" name="host" value="bot-b" checked>' in filtered
    assert filtered.count('<td class="col-host" data-label="Host">bot-b</td>') == 2
    assert '<td class="col-host">bot-a</td>' not in filtered
    assert '<span class="chip chip-host">bot-a 3</span>' in page


def test_the_api_filters_by_host_and_reports_hosts(client: TestClient) -> None:
    listing = client.get("/api/live_sessions", params={"host": "bot-b"})
    assert ids(listing.json()) == ["s10", "s11"]
    assert listing.headers["X-Total-Count"] == "2"
    both = client.get("/api/live_sessions", params=[("host", "bot-a"), ("host", "bot-b")])
    assert len(both.json()) == 5
    stats = client.get("/api/live_sessions/stats").json()
    assert stats["by_host"] == {"bot-a": 3, "bot-b": 2}
    view = client.get("/api/live_track", params={"host": "bot-a"}).json()
    assert view["hosts"] == ["bot-a", "bot-b"]
    assert {row["host"] for row in view["sessions"]} == {"bot-a"}
    detail = client.get("/api/live_sessions/s10").json()
    assert (detail["host"], detail["session_id"]) == ("bot-b", "s10")


def test_exports_carry_the_host(client: TestClient) -> None:
    exported = client.get("/api/live_sessions.json", params={"host": "bot-a"}).json()
    assert {(row["session_id"], row["host"]) for row in exported} == {
        ("s0", "bot-a"),
        ("s1", "bot-a"),
        ("s2", "bot-a"),
    }
    table = list(csv.DictReader(io.StringIO(client.get("/api/live_sessions.csv").text)))
    assert {row["session_id"]: row["host"] for row in table} == {
        "s0": "bot-a",
        "s1": "bot-a",
        "s2": "bot-a",
        "s10": "bot-b",
        "s11": "bot-b",
    }


def test_a_bad_host_filter_is_a_readable_422(client: TestClient) -> None:
    response = client.get("/api/live_sessions", params={"host": "a/b"})
    assert response.status_code == 422
    assert "Ungültiger Host 'a/b'" in response.text


def test_an_empty_database_points_at_the_shipper(pg_url: str) -> None:
    with TestClient(create_app(Settings(database_url=pg_url))) as empty:
        page = empty.get("/").text
    assert "Keine Live-Sessions gefunden." in page
    assert "läuft auf den Bot-Hosts <code>live-track ship</code>?" in page


def test_a_plain_directory_shows_no_host_column(tmp_path: Path) -> None:
    register_live_session_run(make_record(1), tmp_path)
    with TestClient(create_app(Settings(registry_dir=tmp_path))) as directory_client:
        page = directory_client.get("/").text
        stats = directory_client.get("/api/live_sessions/stats").json()
    assert "col-host" not in page
    assert 'name="host"' not in page
    assert stats["by_host"] == {}


# --- Several dashboard processes over one database ---------------------------------


def session_ids(server: LiveServer) -> set[str]:
    rows = httpx2.get(server.url("/api/live_sessions?limit=100"), timeout=5).json()
    return {row["session_id"] for row in rows}


@pytest.mark.slow
def test_two_dashboard_processes_serve_one_database(
    tmp_path: Path, pg_url: str, live_server: Callable[..., LiveServer]
) -> None:
    registry = tmp_path / "registry"
    registry.mkdir()
    register_live_session_run(make_record(1), registry)
    stop = threading.Event()
    shipper = Shipper(registry, pg_url, "bot-a")
    shipping = threading.Thread(target=shipper.run, args=(stop,), daemon=True)
    shipping.start()
    serve = [sys.executable, "-m", "src.cli", "serve", "--registry", pg_url, "--port", "{port}"]
    dashboards = [live_server(registry, command=serve) for _ in range(2)]
    try:
        for dashboard in dashboards:
            wait_until(lambda d=dashboard: session_ids(d) == {"s1"}, 30, "dashboard up")
        streams = [EventStream(dashboard.port) for dashboard in dashboards]
        for stream in streams:
            stream.next("hello", timeout=10)
        now = utc_now()  # only sessions that ended recently are announced
        ended = make_record(
            2, status="failed", error="exchange down", started_at=now, finished_at=now
        )
        register_live_session_run(ended, registry)
        for stream in streams:  # an open page on either dashboard hears of it
            update = stream.next("update", timeout=10)
            assert update["ended"][0]["session_id"] == "s2"
            stream.close()
        for dashboard in dashboards:  # both hear the change, not only the first
            took = wait_until(lambda d=dashboard: session_ids(d) == {"s1", "s2"}, 10, "new")
            print(f"new session on dashboard :{dashboard.port} after {took:.2f} s")
        next(registry.glob("*_s1.json")).unlink()
        for dashboard in dashboards:
            wait_until(lambda d=dashboard: session_ids(d) == {"s2"}, 10, "deletion")
        metrics = httpx2.get(dashboards[0].url("/metrics"), timeout=5).content
        assert b'live_track_host_sessions{host="bot-a"} 1.0' in metrics
    finally:
        stop.set()
        shipping.join(timeout=10)
