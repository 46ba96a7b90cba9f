"""The explorer: filters, paging, sorting, export, stats, charts, details, stale cues."""

from __future__ import annotations

import csv
import io
import os
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from src.experiments.live_session_registry import LiveSessionRecord, register_live_session_run
from src.webui.app import create_app
from src.webui.settings import Settings
from tests.support import make_session

NOW = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def record(session_id: str, **overrides: Any) -> LiveSessionRecord:
    fields: dict[str, Any] = {
        "started_at": NOW - timedelta(hours=2),
        "finished_at": NOW - timedelta(hours=1),
        "metrics": {"realized_pnl": 10.0, "max_drawdown": 0.02, "num_orders": 4},
        "config": {"strategy": "ma_crossover", "timeframe": "1m"},
        "cli_args": ["python", "run_shadow.py", "--symbol", "BTC/USDT"],
    }
    return make_session(session_id, **{**fields, **overrides})


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    directory = tmp_path / "live_sessions"
    sessions = [
        record("s-live-fail", mode="live", run_type="live_session_live", status="failed",
               started_at=NOW - timedelta(days=1, hours=3), finished_at=NOW - timedelta(days=1),
               metrics={"realized_pnl": -80.0, "max_drawdown": 0.21, "num_orders": 9},
               error="ExchangeError: order rejected"),
        record("s-live-ok", mode="live", run_type="live_session_live", symbol="ETH/USDT",
               started_at=NOW - timedelta(days=3, hours=2), finished_at=NOW - timedelta(days=3),
               metrics={"realized_pnl": 120.0, "max_drawdown": 0.04, "num_orders": 12}),
        record("s-paper-ok", mode="paper", run_type="live_session_paper", env_name="binance_spot",
               started_at=NOW - timedelta(days=10, hours=1), finished_at=NOW - timedelta(days=10),
               metrics={"realized_pnl": 35.5, "max_drawdown": 0.01, "num_trades": 3}),
        record("s-testnet-abort", mode="testnet", run_type="live_session_testnet", status="aborted",
               started_at=NOW - timedelta(days=40, hours=1), finished_at=NOW - timedelta(days=40),
               metrics={"realized_pnl": -5.0}, error="KeyboardInterrupt"),
        record("s-shadow-run", status="started", started_at=NOW - timedelta(minutes=5),
               finished_at=None, updated_at=NOW - timedelta(minutes=1), metrics={}),
    ]  # fmt: skip
    for session in sessions:
        register_live_session_run(session, directory)
    return directory


@pytest.fixture
def client(registry: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(registry_dir=registry, watch=False))) as test_client:
        yield test_client


def ids(response: Any) -> list[str]:
    return [s["session_id"] for s in response.json()]


# --- Filters ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("mode=live", ["s-live-fail", "s-live-ok"]),
        ("mode=live&mode=paper", ["s-live-fail", "s-live-ok", "s-paper-ok"]),
        ("status=failed&status=aborted", ["s-live-fail", "s-testnet-abort"]),
        ("mode=live&status=failed", ["s-live-fail"]),
        ("symbol=ETH/USDT", ["s-live-ok"]),
        ("environment=binance", ["s-paper-ok"]),
        ("environment=KRAKEN_FUTURES", ["s-shadow-run", "s-live-fail", "s-live-ok",
                                        "s-testnet-abort"]),
        ("range=7d", ["s-shadow-run", "s-live-fail", "s-live-ok"]),
        ("range=30d", ["s-shadow-run", "s-live-fail", "s-live-ok", "s-paper-ok"]),
        ("range=today", ["s-shadow-run"] if NOW.hour > 0 else []),
    ],
)  # fmt: skip
def test_api_filters_select_sessions(client: TestClient, params: str, expected: list[str]) -> None:
    response = client.get(f"/api/live_sessions?{params}&limit=100")
    assert response.status_code == 200
    assert ids(response) == expected
    assert response.headers["x-total-count"] == str(len(expected))


def test_api_time_range_from_to(client: TestClient) -> None:
    since = (NOW - timedelta(days=11)).isoformat()
    until = (NOW - timedelta(days=2)).isoformat()
    response = client.get("/api/live_sessions", params={"since": since, "until": until})
    assert ids(response) == ["s-live-ok", "s-paper-ok"]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ("status=weird", "status", "Input should be 'started', 'completed', 'failed' or 'aborted'"),
        ("mode=no%20spaces!", "mode", "Value error, Ungültiger Mode 'no spaces!'"),
        ("since=yesterday", "since", "Input should be a valid datetime"),
        ("sort=size", "sort", "Input should be 'recent', 'started', 'ended', 'pnl' or 'drawdown'"),
        ("range=1y", "range", "Input should be 'today', '7d' or '30d'"),
        ("page=0", "page", "Input should be greater than or equal to 1"),
    ],
)
def test_api_rejects_bad_filters_with_422(
    client: TestClient, params: str, field: str, message: str
) -> None:
    response = client.get(f"/api/live_sessions?{params}")
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert field in error["loc"]
    assert error["msg"].startswith(message)


def test_api_rejects_reversed_time_range(client: TestClient) -> None:
    response = client.get("/api/live_sessions?since=2025-02-01T00:00&until=2025-01-01T00:00")
    assert response.status_code == 422
    assert "'since' must not be after 'until'" in response.text


def test_page_shows_readable_message_for_bad_filter(client: TestClient) -> None:
    response = client.get("/?status=weird")
    assert response.status_code == 422
    # The page stays: the form with the message beside the status field.
    assert "Ungültige Filter" in response.text
    assert 'id="error-status"' in response.text
    assert 'id="filter-form"' in response.text


def test_filters_round_trip_through_page_url(client: TestClient) -> None:
    html = client.get("/?mode=live&status=failed").text
    assert 'name="mode" value="live" checked' in html
    assert 'name="status" value="failed" checked' in html
    assert 'name="mode" value="paper" checked' not in html
    assert "s-live-fail" in html and "s-live-ok" not in html
    assert 'href="/api/live_sessions.csv?mode=live&amp;status=failed"' in html


def test_empty_form_fields_are_ignored(client: TestClient) -> None:
    response = client.get("/?symbol=&environment=&since=&until=&range=&limit=10")
    assert response.status_code == 200
    assert "<strong>5</strong> Session(s) geladen" in response.text


# --- Paging and sorting -----------------------------------------------------


def test_paging_walks_the_whole_filtered_registry(client: TestClient) -> None:
    pages = [ids(client.get(f"/api/live_sessions?limit=2&page={n}")) for n in (1, 2, 3, 4)]
    assert pages == [
        ["s-shadow-run", "s-live-fail"],
        ["s-live-ok", "s-paper-ok"],
        ["s-testnet-abort"],
        [],
    ]
    html = client.get("/?limit=2&page=2").text
    assert "Seite 2 von 3" in html
    assert 'href="/?limit=2&amp;page=3" rel="next"' in html


@pytest.mark.parametrize(
    ("sort", "order", "expected"),
    [
        ("pnl", "desc", ["s-live-ok", "s-paper-ok", "s-testnet-abort", "s-live-fail",
                         "s-shadow-run"]),
        ("pnl", "asc", ["s-live-fail", "s-testnet-abort", "s-paper-ok", "s-live-ok",
                        "s-shadow-run"]),
        ("drawdown", "desc", ["s-live-fail", "s-live-ok", "s-paper-ok", "s-shadow-run",
                              "s-testnet-abort"]),
        ("started", "asc", ["s-testnet-abort", "s-paper-ok", "s-live-ok", "s-live-fail",
                            "s-shadow-run"]),
        ("ended", "desc", ["s-live-fail", "s-live-ok", "s-paper-ok", "s-testnet-abort",
                           "s-shadow-run"]),
    ],
)  # fmt: skip
def test_sorting_puts_missing_values_last(
    client: TestClient, sort: str, order: str, expected: list[str]
) -> None:
    response = client.get(f"/api/live_sessions?sort={sort}&order={order}&limit=100")
    assert ids(response) == expected


# --- Export -----------------------------------------------------------------


def test_csv_export_has_all_filtered_rows_with_duration(client: TestClient) -> None:
    response = client.get("/api/live_sessions.csv?mode=live&limit=1")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["session_id"] for r in rows] == ["s-live-fail", "s-live-ok"]
    assert rows[0]["duration_seconds"] == str(3 * 3600)
    assert rows[0]["currency"] == "USDT"
    assert rows[0]["started_at"] == (NOW - timedelta(days=1, hours=3)).isoformat()
    assert rows[0]["ended_at"] == (NOW - timedelta(days=1)).isoformat()
    assert rows[0]["notes"] == "ExchangeError: order rejected"


def test_json_export_matches_csv(client: TestClient) -> None:
    exported = client.get("/api/live_sessions.json?status=completed").json()
    assert [s["session_id"] for s in exported] == ["s-live-ok", "s-paper-ok"]
    assert exported[1]["num_orders"] == 3  # from num_trades
    assert exported[0]["duration_seconds"] == 7200.0


# --- Stats and charts -------------------------------------------------------


def test_stats_over_the_filtered_set(client: TestClient) -> None:
    stats = client.get("/api/live_sessions/stats").json()
    assert stats == {
        # The original dashboard's keys, for its scripts (all currencies together).
        "total_sessions": 5,
        "total_pnl": 70.5,
        "avg_drawdown": pytest.approx((0.21 + 0.04 + 0.01) / 3),
        "sessions": 5,
        "by_status": {"started": 1, "completed": 2, "failed": 1, "aborted": 1},
        "by_mode": {"live": 2, "shadow": 1, "paper": 1, "testnet": 1},
        "by_host": {},
        "success_rate": 0.5,
        "total_realized_pnl": 70.5,
        "avg_realized_pnl": 17.625,
        "worst_drawdown": 0.21,
        "running": 1,
        "stale": 0,
        # The numbers to read: per kind of money and currency (checked in
        # tests/test_money_and_profit.py), win rate and average duration.
        "money": stats["money"],
        "win_rate": pytest.approx(2 / 4),
        "avg_duration_seconds": stats["avg_duration_seconds"],
    }
    assert [(m["real_money"], m["currency"]) for m in stats["money"]] == sorted(
        {(m["real_money"], m["currency"]) for m in stats["money"]},
        key=lambda key: (not key[0], key[1]),
    )
    live = client.get("/api/live_sessions/stats?mode=live").json()
    assert live["sessions"] == 2 and live["total_realized_pnl"] == 40.0


def test_page_stats_strip_agrees_with_api(client: TestClient) -> None:
    html = client.get("/").text
    assert "Ohne Fehler beendet" in html and "50,00 %" in html
    assert "Erfolgsquote" not in html
    assert "21,00 %" in html


def test_charts_label_last_value_and_zero_line(client: TestClient) -> None:
    html = client.get("/").text
    assert "Kumulierter Realized PnL" in html
    assert 'class="zero"' in html
    assert 'class="chart-legend"' in html
    view = client.get("/api/live_track").json()
    assert [p["value"] for p in view["charts"]["cumulative_pnl"]] == [-5.0, 30.5, 150.5, 70.5]


def test_chart_with_one_point_is_a_clear_empty_chart(client: TestClient) -> None:
    html = client.get("/?status=failed").text
    assert "Noch nicht genug Daten für dieses Diagramm." in html


# --- Details ----------------------------------------------------------------


def test_detail_api_returns_every_field(client: TestClient, registry: Path) -> None:
    detail = client.get("/api/live_sessions/s-live-fail").json()
    assert detail["session_id"] == "s-live-fail"
    assert detail["status"] == "failed"
    assert detail["config"] == {"strategy": "ma_crossover", "timeframe": "1m"}
    assert detail["metrics"]["realized_pnl"] == -80.0
    assert detail["cli_args"] == ["python", "run_shadow.py", "--symbol", "BTC/USDT"]
    assert detail["error"] == "ExchangeError: order rejected"
    assert detail["duration_seconds"] == 3 * 3600.0
    assert Path(detail["registry_file"]).parent == registry


def test_detail_page_shows_record(client: TestClient) -> None:
    html = client.get("/session/s-live-fail").text
    for fragment in (
        "ExchangeError: order rejected",
        "ma_crossover",
        "python run_shadow.py --symbol BTC/USDT",
        "Registry-Datei",
        "3 h 0 min",
        "⚠ LIVE",
        '<link rel="alternate" type="application/json" href="/api/live_sessions/s-live-fail">',
    ):
        assert fragment in html


def test_detail_partial_renders_alone(client: TestClient) -> None:
    html = client.get("/partials/session/s-paper-ok").text
    assert html.lstrip().startswith('<div class="detail"')
    assert "Kennzahlen" in html and "Konfiguration" in html and "<html" not in html


@pytest.mark.parametrize(
    "session_id",
    ["unknown", "..%2F..%2Fetc%2Fpasswd", "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "a%00b", "x%0Ay"],
)
def test_unknown_or_path_like_ids_are_404(client: TestClient, session_id: str) -> None:
    api = client.get(f"/api/live_sessions/{session_id}")
    assert api.status_code == 404
    assert api.json()["detail"].startswith("Session ")
    assert api.json()["detail"].endswith("nicht gefunden.")
    page = client.get(f"/session/{session_id}")
    assert page.status_code == 404
    assert "nicht gefunden." in page.text


def test_ids_with_slashes_are_found_by_index_not_path(client: TestClient, registry: Path) -> None:
    register_live_session_run(record("desk/bot:1 a"), registry)
    client.app.state.index.reconcile()  # type: ignore[attr-defined]
    response = client.get(f"/api/live_sessions/{quote('desk/bot:1 a', safe='')}")
    assert response.status_code == 200
    assert response.json()["session_id"] == "desk/bot:1 a"


# --- Safety cues ------------------------------------------------------------


def test_live_sessions_carry_a_warning_marker(client: TestClient) -> None:
    html = client.get("/?mode=live").text
    assert len(re.findall(r'class="session-row row-live\b', html)) == 2
    assert html.count('<span class="live-warning" title="Echtes Kapital">⚠</span>') == 2


def test_silent_running_session_is_stale(registry: Path) -> None:
    dead_bot = record(
        "s-dead-bot",
        status="started",
        finished_at=None,
        started_at=NOW - timedelta(hours=3),
        updated_at=NOW - timedelta(minutes=20),
    )
    register_live_session_run(dead_bot, registry)
    settings = Settings(registry_dir=registry, watch=False, stale_after_seconds=15 * 60)
    with TestClient(create_app(settings)) as client:
        rows = {row["session_id"]: row for row in client.get("/api/live_track").json()["sessions"]}
        assert rows["s-dead-bot"]["stale"] is True
        assert rows["s-shadow-run"]["stale"] is False  # heartbeat a minute ago
        assert client.get("/api/live_sessions/stats").json()["stale"] == 1
        assert "stale" in client.get("/session/s-dead-bot").text


def test_running_session_without_heartbeat_is_never_stale(registry: Path) -> None:
    """The original writers write `started` once and nothing until the end."""
    path = register_live_session_run(
        record("s-old-writer", status="started", finished_at=None, updated_at=None), registry
    )
    old = time.time() - 3600
    os.utime(path, (old, old))
    settings = Settings(registry_dir=registry, watch=False, stale_after_seconds=600)
    with TestClient(create_app(settings)) as client:
        rows = {row["session_id"]: row for row in client.get("/api/live_track").json()["sessions"]}
        assert rows["s-old-writer"]["stale"] is False
        assert rows["s-old-writer"]["heartbeat_at"] is None
        assert "ohne Heartbeat" in client.get("/").text


def test_chart_ends_at_the_stats_total_with_running_sessions(registry: Path) -> None:
    running = record(
        "s-running-pnl",
        status="started",
        finished_at=None,
        started_at=NOW - timedelta(minutes=30),
        updated_at=NOW - timedelta(minutes=2),
        metrics={"realized_pnl": -20.25},
    )
    register_live_session_run(running, registry)
    with TestClient(create_app(Settings(registry_dir=registry, watch=False))) as client:
        view = client.get("/api/live_track").json()
    assert view["stats"]["total_realized_pnl"] == 50.25
    assert view["charts"]["cumulative_pnl"][-1]["value"] == 50.25
    assert view["charts"]["cumulative_pnl"][-1]["session_id"] == "s-running-pnl"


def test_detail_shows_raw_metrics_with_every_digit_in_german(registry: Path) -> None:
    register_live_session_run(
        make_session(
            "s-big",
            metrics={"realized_pnl": -1466206.09, "fee_rate": 0.0025, "volume": 25000.0,
                     "tiny": 1.5e-07},
        ),
        registry,
    )  # fmt: skip
    settings = Settings(registry_dir=registry, watch=False, reconcile_seconds=3600)
    with TestClient(create_app(settings)) as client:
        html = client.get("/session/s-big").text
    for shown in ("−1.466.206,09", "0,0025", "25.000", "1,5e−07"):
        assert re.search(rf"<td[^>]*>{re.escape(shown)}</td>", html), shown
    assert "e+06" not in html
