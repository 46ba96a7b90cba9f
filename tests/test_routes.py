"""Routes that cannot collide: our endpoints beside /api/live_sessions/{id} and the ids.

``/api/live_sessions/stats`` and ``/events`` stay ours; a session with such an
id is reached as ``/api/live_sessions/~stats`` (see README, "Reserved names").
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.from_thread import start_blocking_portal
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from src.experiments.live_session_registry import LiveSessionRecord, register_live_session_run
from src.webui.app import create_app
from src.webui.session_urls import (
    RESERVED_SESSION_NAMES,
    session_api_url,
    session_id_of,
    session_ref,
)
from src.webui.settings import Settings
from tests.support import http_scope, make_session

IDS = ("stats", "events", "~stats", "~", "live_sessions.csv", "desk/bot 1", "plain")


def record(session_id: str, hour: int) -> LiveSessionRecord:
    return make_session(
        session_id,
        mode="paper",
        started_at=datetime(2025, 12, 8, hour),
        finished_at=datetime(2025, 12, 8, hour, 30),
        metrics={"realized_pnl": float(hour)},
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    for hour, session_id in enumerate(IDS):
        register_live_session_run(record(session_id, hour), tmp_path)
    with TestClient(create_app(Settings(registry_dir=tmp_path, watch=False))) as test_client:
        yield test_client


def test_stats_endpoint_wins_over_a_session_named_stats(client: TestClient) -> None:
    stats = client.get("/api/live_sessions/stats")
    assert stats.status_code == 200
    body: dict[str, Any] = stats.json()
    assert "session_id" not in body
    assert body["sessions"] == len(IDS)
    assert body["by_mode"] == {"paper": len(IDS)}


def test_events_path_stays_the_event_stream(client: TestClient) -> None:
    # A loop of its own in a thread: browser tests may leave one running in this thread.
    with start_blocking_portal() as portal:
        head, first_chunk = portal.call(open_and_leave, client.app, "/api/live_sessions/events")
    assert head["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in head["headers"]
    assert b"event: hello" in first_chunk


async def open_and_leave(app: Any, path: str) -> tuple[dict[str, Any], bytes]:
    """GET a never-ending stream as uvicorn would, and hang up after its first chunk.

    TestClient waits for a response to end before it returns, so it cannot read
    an event stream; this speaks ASGI directly.
    """
    scope = {**http_scope("GET", path, [(b"host", b"127.0.0.1")]), "app": app}
    messages: list[dict[str, Any]] = []
    got_chunk = anyio.Event()

    async def receive() -> dict[str, Any]:
        if not messages:
            return {"type": "http.request", "body": b"", "more_body": False}
        await got_chunk.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)
        if message["type"] == "http.response.body":
            got_chunk.set()

    with anyio.fail_after(30):
        await app(scope, receive, send)
    return messages[0], messages[1]["body"]


@pytest.mark.parametrize(
    ("session_id", "path"),
    [
        ("stats", "/api/live_sessions/~stats"),
        ("events", "/api/live_sessions/~events"),
        ("~stats", "/api/live_sessions/~~stats"),
        ("~", "/api/live_sessions/~~"),
        ("live_sessions.csv", "/api/live_sessions/live_sessions.csv"),
        ("desk/bot 1", "/api/live_sessions/desk%2Fbot%201"),
        ("plain", "/api/live_sessions/plain"),
    ],
)
def test_every_session_is_reachable_under_the_detail_path(
    client: TestClient, session_id: str, path: str
) -> None:
    assert session_api_url(session_id) == path
    detail = client.get(path)
    assert detail.status_code == 200
    assert detail.json()["session_id"] == session_id


def test_a_leading_tilde_always_means_the_rest_is_the_id(client: TestClient) -> None:
    assert client.get("/api/live_sessions/~plain").json()["session_id"] == "plain"
    missing = client.get("/api/live_sessions/~nowhere")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Session 'nowhere' nicht gefunden."}


def test_session_page_links_its_json_twin_with_the_escape(client: TestClient) -> None:
    page = client.get("/session/stats")
    assert page.status_code == 200
    assert '<link rel="alternate" type="application/json" href="/api/live_sessions/~stats">' in (
        page.text
    )
    twin = client.get("/api/live_sessions/~stats").json()
    assert (twin["session_id"], twin["realized_pnl"]) == ("stats", 0.0)


def test_the_reserved_names_are_exactly_our_endpoints_beside_the_detail(
    client: TestClient,
) -> None:
    prefix = "/api/live_sessions/"
    paths = client.get("/openapi.json").json()["paths"]
    ours = {path.removeprefix(prefix) for path in paths if path.startswith(prefix)}
    assert ours == {*RESERVED_SESSION_NAMES, "{session_id}"}


def test_openapi_tells_how_to_reach_a_session_named_stats(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    (parameter,) = schema["paths"]["/api/live_sessions/{session_id}"]["get"]["parameters"]
    assert parameter["name"] == "session_id"
    assert "`~stats` is the session named `stats`" in parameter["description"]


@given(st.text(min_size=1))
def test_every_id_has_one_spelling_that_no_endpoint_takes(session_id: str) -> None:
    ref = session_ref(session_id)
    assert session_id_of(ref) == session_id
    assert ref not in RESERVED_SESSION_NAMES
