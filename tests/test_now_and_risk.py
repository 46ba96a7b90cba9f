"""Issue 13 in the read model and the HTML: Jetzt strip, risk, bots apart, errors in place."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from src.experiments.registry_index import RegistryIndex
from src.webui.app import create_app
from src.webui.filter_errors import salvage_query
from src.webui.now_view import PROBLEMS_SHOWN, now_view
from src.webui.presentation import short_id
from src.webui.risk_view import limit_bars
from src.webui.settings import Settings
from tests.support import original_record, write_like_original

NOW = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
STALE = timedelta(minutes=15)
REAL = frozenset({"live", "bounded_pilot"})


def ended(session_id: str, ago: timedelta, **more: Any) -> dict[str, Any]:
    end = NOW - ago
    return original_record(
        session_id, status=more.pop("status", "completed"), started_at=end - timedelta(hours=1),
        finished_at=end, **more,
    )  # fmt: skip


def running(session_id: str, *, beat_ago: timedelta | None = None, **more: Any) -> dict[str, Any]:
    started = more.pop("started_at", NOW - timedelta(hours=2))
    data = original_record(session_id, started_at=started, **more)
    if beat_ago is not None:
        data["updated_at"] = (NOW - beat_ago).isoformat()
    return data


def snapshot_of(directory: Path, records: list[dict[str, Any]]) -> Any:
    for data in records:
        write_like_original(directory, data)
    index = RegistryIndex(directory)
    index.reconcile()
    return index.snapshot()


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return tmp_path / "live_sessions"


def client_for(registry: Path) -> Iterator[TestClient]:
    settings = Settings(registry_dir=registry, watch=False, reconcile_seconds=3600)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def client(registry: Path) -> Iterator[TestClient]:
    for data in (
        running("run-beat", beat_ago=timedelta(minutes=1), mode="testnet",
                metrics={"realized_pnl": 5.0, "unrealized_pnl": -2.5, "risk_status": "yellow"}),
        running("run-silent", beat_ago=timedelta(hours=1), mode="live"),
        running("run-quiet", mode="paper"),  # sends no heartbeat at all
        ended("fail-live-new", timedelta(hours=2), mode="live", status="failed",
              error="ExchangeError: margin " + "x" * 300),
        ended("abort-old", timedelta(hours=30), mode="paper", status="aborted"),
        ended("ok-red", timedelta(hours=3), mode="paper", symbol="ETH/USDT",
              metrics={"realized_pnl": 17.5, "risk_severity": "breach",
                       "risk_check": {"limit_details": [
                           {"limit_name": "max_position", "current_value": 1.2,
                            "limit_value": 1.0, "ratio": 1.2, "severity": "breach"}]}},
              config={"strategy_name": "breakout_v2"}),
    ):  # fmt: skip
        write_like_original(registry, data)
    yield from client_for(registry)


# --- The Jetzt strip -----------------------------------------------------------


def test_now_view_sorts_running_and_problems(registry: Path) -> None:
    snapshot = snapshot_of(
        registry,
        [
            running("beating", beat_ago=timedelta(minutes=2), metrics={"unrealized_pnl": 3.0}),
            running("silent", beat_ago=timedelta(hours=2), mode="live"),
            running("no-beat", started_at=NOW - timedelta(hours=3)),
            ended("failed-now", timedelta(hours=1), status="failed", error="boom"),
            ended("aborted-now", timedelta(hours=5), status="aborted"),
            ended("failed-yesterday", timedelta(hours=25), status="failed"),
            ended("completed-now", timedelta(minutes=5)),
        ],
    )
    view = now_view(snapshot, NOW.replace(tzinfo=timezone.utc), STALE, REAL)
    assert [s.session_id for s in view.running] == ["beating", "no-beat"]
    beating, quiet = view.running
    assert beating.unrealized_pnl == 3.0 and beating.heartbeat_age_seconds == 120
    assert quiet.heartbeat_at is None and quiet.heartbeat_age_seconds is None
    assert view.running_count == 3  # the stale one still runs
    assert [(s.session_id, s.problem) for s in view.problems] == [
        ("silent", "stale"),
        ("failed-now", "failed"),
        ("aborted-now", "aborted"),
    ]
    assert view.problems[1].error == "boom"
    assert view.failed_count == 1 and view.problem_count == 3


def test_failed_real_money_session_is_never_crowded_out(registry: Path) -> None:
    many = [
        ended(f"paper-fail-{n:02d}", timedelta(minutes=n + 1), mode="paper", status="failed")
        for n in range(PROBLEMS_SHOWN + 5)
    ]
    oldest = ended("live-fail", timedelta(hours=23, minutes=50), mode="live", status="failed")
    snapshot = snapshot_of(registry, [*many, oldest])
    view = now_view(snapshot, NOW.replace(tzinfo=timezone.utc), STALE, REAL)
    shown = [s.session_id for s in view.problems]
    assert shown[0] == "live-fail" and view.problems[0].real_money
    assert len(shown) == PROBLEMS_SHOWN
    assert view.problem_count == PROBLEMS_SHOWN + 6

    later = (NOW + timedelta(minutes=20)).replace(tzinfo=timezone.utc)  # now older than 24 h
    assert "live-fail" not in [
        s.session_id for s in now_view(snapshot, later, STALE, REAL).problems
    ]


def test_page_shows_the_strip_and_counts_in_the_title(client: TestClient) -> None:
    page = client.get("/").text
    strip = re.search(r'<section class="card now-strip".*?</section>', page, re.S)
    assert strip
    text = strip.group(0)
    assert "run-beat" in text and "−2,50 USDT offen" in text
    # A minute before the module was imported; the suite may have run for minutes since.
    assert re.search(r"Heartbeat vor \d+ min", text)
    assert 'href="/session/fail-live-new"' in text and "abort-old" not in text
    assert "ohne Heartbeat" in text  # run-quiet
    assert '<span class="stale-tag">veraltet</span>' in text  # run-silent
    assert "<title>(3 ▶ 1 ✖) Live-Track · Peak_Trade</title>" in page
    api = client.get("/api/live_track").json()
    assert api["now"]["running_count"] == 3 and api["now"]["failed_count"] == 1


def test_a_small_bitcoin_loss_is_red_with_its_decimals_everywhere(registry: Path) -> None:
    write_like_original(
        registry,
        running("btc-bot", beat_ago=timedelta(minutes=1), symbol="BTC/EUR",
                metrics={"currency": "BTC", "realized_pnl": -0.001464, "unrealized_pnl": 0.0002}),
    )  # fmt: skip
    for client in client_for(registry):
        page = client.get("/").text
        strip = re.search(r'<section class="card now-strip".*?</section>', page, re.S)
        assert strip
        assert re.search(r'class="pnl-neg"[^>]*>−0,001464 BTC<', strip.group(0))
        assert re.search(
            r'class="pnl-pos now-unrealized"[^>]*>\+0,000200 BTC offen<', strip.group(0)
        )
        detail = client.get("/session/btc-bot").text
        assert re.search(r'<dd class="pnl-neg">−0,001464 BTC</dd>', detail)


# --- Risk ---------------------------------------------------------------------


def test_risk_light_filter_and_no_light_without_data(client: TestClient) -> None:
    red = client.get("/api/live_track?risk=red").json()
    assert [s["session_id"] for s in red["sessions"]] == ["ok-red"]
    assert red["sessions"][0]["risk"] == "red"
    both = client.get("/api/live_sessions?risk=red&risk=yellow&limit=100").json()
    assert {s["session_id"] for s in both} == {"ok-red", "run-beat"}
    page = client.get("/").text
    assert 'class="risk-light risk-red"' in page
    quiet_row = re.search(r'data-session-id="run-quiet".*?</tr>', page, re.S)
    assert quiet_row and "risk-light" not in quiet_row.group(0)
    assert client.get("/api/live_sessions?risk=purple").status_code == 422


def test_limit_details_become_bars(client: TestClient) -> None:
    detail = client.get("/api/live_sessions/ok-red").json()
    assert detail["limits"] == [
        {"name": "max_position", "value": 1.2, "limit": 1.0, "ratio": 1.2, "severity": "red"}
    ]
    page = client.get("/session/ok-red").text
    assert "Risiko-Limits" in page and "max_position" in page and "120,00 %" in page
    assert 'class="limit-fill" width="100.0"' in page  # capped at the limit


def test_limit_bars_read_both_spellings_and_skip_empty_entries() -> None:
    bars = limit_bars(
        {
            "limit_details": [
                {"name": "daily_loss", "value": 400, "limit": 500, "severity": "warning"},
                {"name": "nothing"},
                "not a mapping",
                {"limit_name": "nan", "current_value": float("nan"), "ratio": 0.5},
            ]
        }
    )
    assert [(b.name, b.ratio, b.severity) for b in bars] == [
        ("daily_loss", 0.8, "yellow"),
        ("nan", 0.5, None),
    ]
    assert limit_bars({"risk_status": "green"}) == []


# --- The table tells bots apart --------------------------------------------------


def test_table_has_symbol_strategy_and_inline_error(client: TestClient) -> None:
    page = client.get("/?limit=100").text
    row = re.search(r'data-session-id="ok-red".*?</tr>', page, re.S)
    assert row and "ETH/USDT" in row.group(0) and "breakout_v2" in row.group(0)
    failed = re.search(r'data-session-id="fail-live-new".*?</tr>', page, re.S)
    assert failed
    inline = re.search(r'<span class="row-error"[^>]*>([^<]*)</span>', failed.group(0))
    assert inline and inline.group(1).startswith("ExchangeError: margin")
    assert inline.group(1).endswith("…") and len(inline.group(1)) <= 90


def test_symbol_and_environment_match_any_case_by_substring(client: TestClient) -> None:
    shown = client.get("/api/live_sessions?symbol=eth&limit=100").json()
    assert [s["session_id"] for s in shown] == ["ok-red"]
    env = client.get("/api/live_sessions?environment=KRAKEN&limit=100").json()
    assert len(env) == 6


def test_stats_chips_are_filter_links(client: TestClient) -> None:
    page = client.get("/").text
    assert re.search(r'<a class="chip status-failed" href="/\?status=failed"', page)
    assert re.search(r'<a class="chip badge mode-live" href="/\?mode=live"', page)


@pytest.mark.parametrize(
    ("session_id", "shown"),
    [
        ("session_20261124_shadow_1a2b3c", "…20261124_shadow_1a2b3c"),
        ("session_20251208_120000_shadow_1a2b3c", "…20251208…shadow_1a2b3c"),
        ("a-very-long-session-identifier-42", "a-very-l…on-identifier-42"),
        ("short", "short"),
    ],
)
def test_short_ids_keep_date_and_tail(session_id: str, shown: str) -> None:
    assert short_id(session_id) == shown
    assert len(short_id(session_id)) <= 25


# --- Errors keep you in place ------------------------------------------------------


def test_bad_filter_renders_the_form_with_german_messages(client: TestClient) -> None:
    response = client.get("/?limit=0&since=gestern&symbol=eth")
    assert response.status_code == 422
    page = response.text
    assert 'id="filter-form"' in page
    assert re.search(r'id="error-limit"[^>]*>Der Wert muss mindestens 1 sein\.<', page)
    assert re.search(r'id="error-since"[^>]*>Bitte ein Datum mit Uhrzeit angeben', page)
    assert 'name="symbol" value="eth"' in page
    assert 'data-session-id="ok-red"' in page  # the valid symbol filter still applies
    assert 'data-session-id="run-beat"' not in page


def test_since_after_until_is_said_beside_until() -> None:
    query, errors = salvage_query({"since": "2026-11-25T10:00", "until": "2026-11-24T10:00"})
    assert errors == {"until": "„Von“ darf nicht nach „Bis“ liegen."}
    assert query.since is None and query.until is None


def test_empty_parameters_leave_the_url(client: TestClient) -> None:
    response = client.get("/?symbol=&mode=live&since=", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/?mode=live"


def test_page_past_the_end_links_to_the_last(client: TestClient) -> None:
    page = client.get("/?limit=2&page=9").text
    assert "Seite 9 gibt es nicht" in page
    assert 'href="/?limit=2&amp;page=3">Zur letzten Seite (3)</a>' in page


def test_missing_registry_is_not_an_empty_one(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    for client in client_for(missing):
        page = client.get("/").text
        assert "Das Registry-Verzeichnis existiert nicht" in page and str(missing) in page
        assert client.get("/api/live_track").json()["registry_exists"] is False
    empty = tmp_path / "empty"
    empty.mkdir()
    for client in client_for(empty):
        page = client.get("/").text
        assert "Das Registry-Verzeichnis ist leer." in page
        assert "existiert nicht" not in page


def test_detail_shows_nested_config_as_tables(client: TestClient, registry: Path) -> None:
    page = client.get("/session/run-quiet").text
    # original_record's config has a list; ok-red's risk config is nested.
    assert "<h3>Konfiguration</h3>" in page
    assert re.search(r'<th scope="row">strategy_name</th><td class="mono">ma_crossover</td>', page)
    write_like_original(
        registry,
        ended("nested", timedelta(hours=1), config={"risk": {"max_position": 1.0}}),
    )
    client.app.state.index.reconcile()  # type: ignore[attr-defined]
    nested = client.get("/session/nested").text
    assert re.search(r'<table class="kv kv-nested">.*?max_position', nested, re.S)
