"""Issue 12, access control: throttled Bearer guesses, the socket peer, one-step
throttling, strong tokens, the Host check and tolerant cookie parsing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import ValidationError

from src import cli
from src.experiments.live_session_registry import register_live_session_run
from src.webui import auth
from src.webui.app import create_app
from src.webui.settings import Settings
from tests.support import LiveServer, http_scope, live_track_serve, make_session, settings_env

TOKEN = "s3cret-token-for-tests"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
BEARER_WRONG = {"Authorization": "Bearer wrong-guess"}
T = TypeVar("T")


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    record = make_session(
        "session_1", mode="live", started_at=datetime(2026, 11, 20, 9),
        metrics={"realized_pnl": 12.0},
    )  # fmt: skip
    register_live_session_run(record, tmp_path)
    return tmp_path


def protected(registry: Path, **settings: Any) -> Settings:
    return Settings(registry_dir=registry, watch=False, auth_token=TOKEN, **settings)


def login_form(token: str) -> dict[str, Any]:
    return {
        "content": f"token={token}&next=/",
        "headers": {"content-type": "application/x-www-form-urlencoded"},
    }


def run_in_fresh_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run in a thread of its own: Playwright's sync API (tests/e2e)
    leaves an event loop running in the main thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=60)


# --- 1. Bearer guesses count with failed logins ---------------------------------


def test_bearer_guesses_are_throttled_with_retry_after(registry: Path) -> None:
    app = create_app(protected(registry))
    attacker = TestClient(app, client=("10.0.0.7", 4000))
    limit = auth.LoginThrottle().limit
    for _ in range(limit):
        assert attacker.get("/api/live_sessions", headers=BEARER_WRONG).status_code == 401
    refused = attacker.get("/api/live_sessions", headers=BEARER_WRONG)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert refused.json()["detail"].startswith("Zu viele Fehlversuche.")
    # Even the right token is not evaluated now: a guesser learns nothing.
    right = attacker.get("/api/live_sessions", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 429
    # Another address is not affected.
    colleague = TestClient(app, client=("10.0.0.8", 4000))
    ok = colleague.get("/api/live_sessions", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200


def test_failed_logins_and_bearer_guesses_count_together(registry: Path) -> None:
    app = create_app(protected(registry))
    attacker = TestClient(app, client=("10.0.0.9", 4000), follow_redirects=False)
    for _ in range(3):
        assert attacker.post("/login", **login_form("guess")).status_code == 401
    for _ in range(2):
        assert attacker.get("/api/live_track", headers=BEARER_WRONG).status_code == 401
    page = attacker.post("/login", **login_form(TOKEN))
    assert page.status_code == 429
    assert "Zu viele Fehlversuche." in page.text
    assert "retry-after" in page.headers


def test_global_ceiling_stops_an_attacker_with_many_addresses(registry: Path) -> None:
    app = create_app(protected(registry))
    ceiling = auth.LoginThrottle().global_limit
    for n in range(ceiling):  # one guess from each of many addresses
        client = TestClient(app, client=(f"10.1.{n // 250}.{n % 250 + 1}", 4000))
        assert client.get("/api/live_sessions", headers=BEARER_WRONG).status_code == 401
    fresh = TestClient(app, client=("10.9.9.9", 4000))
    refused = fresh.get("/api/live_sessions", headers=BEARER_WRONG)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 61


# --- 2. X-Forwarded-For does not buy new guesses -------------------------------


def rotate_forwarded_guesses(url: str, count: int) -> list[int]:
    with httpx2.Client(base_url=url, timeout=10) as client:
        return [
            client.get(
                "/api/live_sessions",
                headers={**BEARER_WRONG, "X-Forwarded-For": f"203.0.113.{n + 1}"},
            ).status_code
            for n in range(count)
        ]


def test_live_track_serve_ignores_forwarded_for(
    registry: Path, live_server: Callable[..., LiveServer]
) -> None:
    env = settings_env(auth_token=TOKEN, watch=False)
    server = live_server(registry, env=env, command=live_track_serve(registry))
    statuses = rotate_forwarded_guesses(server.base_url, 7)
    assert statuses == [401] * 5 + [429] * 2


def test_bare_uvicorn_default_still_cannot_reset_the_throttle(
    registry: Path, live_server: Callable[..., LiveServer]
) -> None:
    """uvicorn's default trusts X-Forwarded-For from 127.0.0.1 and rewrites the client."""
    server = live_server(registry, env=settings_env(auth_token=TOKEN, watch=False))
    statuses = rotate_forwarded_guesses(server.base_url, 7)
    assert statuses == [401] * 5 + [429] * 2


def test_serve_enables_proxy_headers_only_for_named_proxies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    assert cli.main(["serve", "--registry", str(tmp_path)]) == 0
    monkeypatch.setenv("LIVE_TRACK_TRUSTED_PROXIES", "10.0.0.1, 10.0.0.2")
    assert cli.main(["serve", "--registry", str(tmp_path)]) == 0
    untrusted, trusted = calls
    assert untrusted["proxy_headers"] is False
    assert trusted["proxy_headers"] is True
    assert trusted["forwarded_allow_ips"] == ["10.0.0.1", "10.0.0.2"]


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget(
    registry: Path, live_server: Callable[..., LiveServer]
) -> None:
    env = settings_env(auth_token=TOKEN, watch=False, trusted_proxies=("127.0.0.1",))
    server = live_server(registry, env=env, command=live_track_serve(registry))
    statuses = rotate_forwarded_guesses(server.base_url, 7)  # seven different people
    assert statuses == [401] * 7


# --- 3. Check and record in one step --------------------------------------------


async def slow_login(app: Any, release: asyncio.Event, token: str) -> int:
    """POST /login whose body arrives only after ``release`` (a slow client)."""
    body = f"token={token}&next=/".encode()
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        await release.wait()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", str(len(body)).encode()),
    ]
    scope = http_scope("POST", "/login", headers, client="10.0.0.20")
    await app(scope, receive, send)
    return status


def test_slow_login_bodies_cannot_race_the_throttle(registry: Path) -> None:
    app = create_app(protected(registry))

    async def attack() -> list[int]:
        release = asyncio.Event()
        guesses = [asyncio.ensure_future(slow_login(app, release, "guess")) for _ in range(12)]
        await asyncio.sleep(0.2)  # every request is past the start, waiting for its body
        release.set()
        return await asyncio.wait_for(asyncio.gather(*guesses), 10)

    statuses = run_in_fresh_loop(attack())
    assert sorted(statuses) == [401] * 5 + [429] * 7


# --- 4. Empty and short tokens are configuration errors ------------------------


@pytest.mark.parametrize("token", ["", "   ", "\t\n", "only-15-chars!!"])
def test_weak_token_is_refused_by_settings(token: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(auth_token=token)
    assert "access token is" in str(refused.value)
    assert token.strip() == "" or token not in str(refused.value)  # never echoed


@pytest.mark.parametrize(
    ("token", "message"),
    [("", "the access token is empty"), ("tooshort", "the access token is too short")],
)
def test_uvicorn_path_refuses_to_start_with_a_weak_token(
    tmp_path: Path, token: str, message: str
) -> None:
    """`LIVE_TRACK_AUTH_TOKEN= uvicorn src.webui.app:app` imports the module app."""
    result = subprocess.run(
        [sys.executable, "-c", "import src.webui.app"],
        cwd=PROJECT_ROOT,
        env={"LIVE_TRACK_AUTH_TOKEN": token, "PEAK_TRADE_LIVE_SESSIONS_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize("token", ["", "tooshort"])
def test_live_track_serve_refuses_a_weak_token(
    tmp_path: Path,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    started: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: started.append(a))
    monkeypatch.setenv("LIVE_TRACK_AUTH_TOKEN", token)
    assert cli.main(["serve", "--registry", str(tmp_path)]) == 2
    assert started == []
    err = capsys.readouterr().err
    assert "auth_token: Value error, the access token is" in err
    assert "input" not in err


# --- 5. Host allow-list ------------------------------------------------------------


@pytest.fixture
def default_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIVE_TRACK_ALLOWED_HOSTS")


@pytest.mark.usefixtures("default_hosts")
@pytest.mark.parametrize("path", ["/", "/api/live_sessions", "/api/health"])
def test_foreign_host_name_is_refused(registry: Path, path: str) -> None:
    app = create_app(Settings(registry_dir=registry, watch=False))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        refused = client.get(path, headers={"Host": "evil.example"})
        assert refused.status_code == 400
        assert "Unbekannter Host-Name" in refused.text
        assert "session_1" not in refused.text
        assert refused.headers["x-frame-options"] == "DENY"
        rebound = client.get(path, headers={"Host": "evil.example:8000"})
        assert rebound.status_code == 400


@pytest.mark.usefixtures("default_hosts")
@pytest.mark.parametrize(
    "host", ["localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST"]
)
def test_loopback_names_are_allowed_by_default(registry: Path, host: str) -> None:
    app = create_app(Settings(registry_dir=registry, watch=False))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        response = client.get("/api/live_sessions", headers={"Host": host})
        assert response.status_code == 200
        assert response.json()[0]["session_id"] == "session_1"


@pytest.mark.usefixtures("default_hosts")
def test_configured_host_names_are_allowed(registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVE_TRACK_ALLOWED_HOSTS", "dash.trading.lan,other.lan")
    app = create_app(Settings(registry_dir=registry, watch=False))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        assert client.get("/", headers={"Host": "dash.trading.lan"}).status_code == 200
        assert client.get("/", headers={"Host": "other.lan:8000"}).status_code == 200
        assert client.get("/", headers={"Host": "evil.example"}).status_code == 400


@pytest.mark.usefixtures("default_hosts")
def test_test_client_host_is_not_allowed_by_default(registry: Path) -> None:
    """The suite allows `testserver` through its conftest only; the default does not."""
    app = create_app(Settings(registry_dir=registry, watch=False))
    with TestClient(app) as client:
        assert client.get("/api/health").status_code == 400


# --- 6. A foreign malformed cookie does not hide ours -----------------------------


@pytest.fixture
def logged_in_cookie(registry: Path) -> Iterator[tuple[TestClient, str]]:
    with TestClient(create_app(protected(registry)), follow_redirects=False) as client:
        assert client.post("/login", **login_form(TOKEN)).status_code == 303
        value = client.cookies[auth.SESSION_COOKIE]
        client.cookies.clear()
        yield client, value


@pytest.mark.parametrize(
    "template",
    [
        "a=b c; {session}",
        "{session}; a=b c",
        'junk"quote=1; {session}; x',
        "=; ;; {session}; theme=dark mode",
        "foo=bar\\baz; {session}",
    ],
)
def test_malformed_foreign_cookie_keeps_the_session(
    logged_in_cookie: tuple[TestClient, str], template: str
) -> None:
    client, value = logged_in_cookie
    header = template.format(session=f"{auth.SESSION_COOKIE}={value}")
    page = client.get("/", headers={"Cookie": header})
    assert page.status_code == 200
    assert "Live-Track" in page.text
    forged = template.format(session=f"{auth.SESSION_COOKIE}=forged")
    assert client.get("/", headers={"Cookie": forged}).status_code == 303
