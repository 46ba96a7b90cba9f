"""Exposure and browser security: tokens, login, cookies, headers, methods."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from src.experiments.live_session_registry import LiveSessionRecord, register_live_session_run
from src.webui import auth
from src.webui.app import create_app
from src.webui.settings import Settings

TOKEN = "s3cret-token-for-tests"


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    record = LiveSessionRecord(
        session_id="session_1",
        run_id=None,
        run_type="live_session_live",
        mode="live",
        env_name="kraken_spot",
        symbol="BTC/USDT",
        status="completed",
        started_at=datetime(2026, 11, 20, 9),
        finished_at=datetime(2026, 11, 20, 10),
        metrics={"realized_pnl": 12.0},
    )
    register_live_session_run(record, tmp_path)
    return tmp_path


def protected_app(registry: Path) -> TestClient:
    settings = Settings(registry_dir=registry, watch=False, auth_token=TOKEN)
    return TestClient(create_app(settings), follow_redirects=False)


@pytest.fixture
def client(registry: Path) -> Iterator[TestClient]:
    with protected_app(registry) as test_client:
        yield test_client


def login(client: TestClient, token: str = TOKEN, next_path: str = "/") -> object:
    return client.post(
        "/login",
        content=f"token={token}&next={next_path}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )


# --- Without a token: loopback only, nothing to log into ---------------------


def test_without_token_pages_are_open_and_there_is_no_login(registry: Path) -> None:
    with TestClient(create_app(Settings(registry_dir=registry, watch=False))) as client:
        assert client.get("/").status_code == 200
        assert client.get("/api/live_sessions").status_code == 200
        assert client.get("/login").status_code == 404


def test_default_host_is_loopback() -> None:
    assert Settings().host == "127.0.0.1"
    assert Settings().is_loopback
    assert not Settings(host="0.0.0.0").is_loopback


# --- With a token -------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/session/session_1", "/partials/live_track", "/docs"])
def test_pages_redirect_to_login(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize(
    "path",
    [
        "/api/live_sessions",
        "/api/live_sessions/stats",
        "/api/live_sessions/session_1",
        "/api/live_sessions.csv",
        "/api/live_sessions/events",
        "/api/live_track",
        "/openapi.json",
    ],
)
def test_api_needs_bearer_token(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "detail": "Anmeldung erforderlich: Authorization: Bearer <Token> senden."
    }
    wrong = client.get(path, headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401


def test_api_accepts_bearer_token(client: TestClient) -> None:
    response = client.get("/api/live_sessions", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.json()[0]["session_id"] == "session_1"


def test_health_stays_open_for_probes(client: TestClient) -> None:
    assert client.get("/api/health").json() == {"status": "ok"}


def test_login_sets_httponly_strict_cookie_without_the_token(client: TestClient) -> None:
    assert "Zugangstoken" in client.get("/login").text
    response = login(client, next_path="/session/session_1")
    assert response.status_code == 303
    assert response.headers["location"] == "/session/session_1"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{auth.SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert TOKEN not in cookie
    page = client.get("/")  # the client keeps the cookie
    assert page.status_code == 200
    assert "Live-Track" in page.text
    assert client.get("/api/live_sessions").status_code == 200


def test_wrong_token_is_refused(client: TestClient) -> None:
    response = login(client, token="guess")
    assert response.status_code == 401
    assert "Falsches Zugangstoken." in response.text
    assert "set-cookie" not in response.headers
    assert client.get("/").status_code == 303


def test_forged_cookie_is_refused(client: TestClient) -> None:
    client.cookies.set(auth.SESSION_COOKIE, TOKEN)  # the raw token is not a session
    assert client.get("/").status_code == 303


def test_failed_logins_are_rate_limited_per_address(registry: Path) -> None:
    app = create_app(Settings(registry_dir=registry, watch=False, auth_token=TOKEN))
    with TestClient(app, follow_redirects=False, client=("10.0.0.7", 4000)) as attacker:
        for _ in range(auth.LoginThrottle().limit):
            assert login(attacker, token="guess").status_code == 401
        blocked = login(attacker)  # even the right token waits now
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) > 0
        assert "Zu viele Fehlversuche" in blocked.text
    with TestClient(app, follow_redirects=False, client=("10.0.0.8", 4000)) as colleague:
        assert login(colleague).status_code == 303


def test_login_never_redirects_off_site(client: TestClient) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        response = login(client, next_path=target)
        assert response.headers["location"] == "/"


def test_logout_forgets_the_session(client: TestClient) -> None:
    login(client)
    assert client.get("/").status_code == 200
    response = client.get("/logout")
    assert response.status_code == 303
    client.cookies.clear()  # what the browser does with the expired cookie
    assert client.get("/").status_code == 303


def test_comparisons_are_constant_time(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    client.get("/api/live_sessions", headers={"Authorization": "Bearer nope"})
    login(client, token="nope")
    client.cookies.set(auth.SESSION_COOKIE, "abc")
    client.get("/")
    assert len(calls) >= 3


# --- Headers and methods ------------------------------------------------------

HTML_PATHS = ["/", "/session/session_1", "/session/unknown", "/?status=bad", "/docs", "/nowhere"]


@pytest.mark.parametrize("path", HTML_PATHS)
def test_every_html_response_sends_security_headers(registry: Path, path: str) -> None:
    with TestClient(create_app(Settings(registry_dir=registry, watch=False))) as client:
        response = client.get(path)
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy and "http" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert "<script>" not in response.text  # no inline script anywhere
    assert " style=" not in response.text  # no inline styles either


def test_login_page_sends_security_headers(client: TestClient) -> None:
    response = client.get("/login")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/"), ("PUT", "/api/live_sessions"), ("DELETE", "/api/live_sessions/session_1"),
     ("PATCH", "/session/session_1"), ("POST", "/api/live_sessions/stats")],
)  # fmt: skip
def test_only_get_is_allowed(registry: Path, method: str, path: str) -> None:
    with TestClient(create_app(Settings(registry_dir=registry, watch=False))) as client:
        assert client.request(method, path).status_code == 405


@pytest.mark.parametrize(
    "local", ["http://10.0.0.5", "http://192.168.1.20", "http://[2001:db8::1]"]
)
def test_without_token_requests_over_the_network_are_refused(registry: Path, local: str) -> None:
    """`uvicorn src.webui.app:app --host 0.0.0.0` without a token serves loopback only."""
    app = create_app(Settings(registry_dir=registry, watch=False))
    with TestClient(app, base_url=local) as client:
        for path in ("/", "/api/live_sessions", "/session/session_1", "/api/live_sessions/events"):
            response = client.get(path)
            assert response.status_code == 403, path
            assert response.json()["detail"] == auth.NETWORK_REFUSAL
        assert "LIVE_TRACK_AUTH_TOKEN" in auth.NETWORK_REFUSAL
        assert client.get("/api/health").status_code == 200
    with TestClient(app, base_url="http://127.0.0.1") as local_client:
        assert local_client.get("/").status_code == 200


def test_with_token_the_network_gets_the_login(registry: Path) -> None:
    settings = Settings(registry_dir=registry, watch=False, auth_token=TOKEN)
    with TestClient(create_app(settings), base_url="http://10.0.0.5", follow_redirects=False) as c:
        assert c.get("/").status_code == 303
        assert c.get("/api/live_sessions", headers={"Authorization": f"Bearer {TOKEN}"}).json()
