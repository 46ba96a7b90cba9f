"""Phase 82: the Live-Track panel (model, service, JSON API, dashboard, integration).

What the spec fixes is summarized in ``docs/live-track-panel.md``.

Every test writes its own registry into ``tmp_path`` (through the real Phase 81
writer unless it needs a broken file) and checks what a user of the API or of
the page would see.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from src.experiments.live_session import live_session
from src.experiments.live_session_registry import LiveSessionRecord, register_live_session_run
from src.webui.app import create_app
from src.webui.live_track import LiveSessionSummary, get_recent_live_sessions
from src.webui.settings import Settings
from tests.support import make_session

# --- Fixture helpers --------------------------------------------------------

T0 = datetime(2024, 12, 8, 12, 0, 0)
SPEC_ID = "session_20251208_shadow_abc123"
HOSTILE = "<script>alert(1)</script>"
SPEC_FIELDS = [
    "session_id",
    "started_at",
    "ended_at",
    "mode",
    "environment",
    "status",
    "realized_pnl",
    "max_drawdown",
    "num_orders",
    "report_path",
    "notes",
]
# Phase 85 adds two fields after the spec's eleven (docs/registry-format.md).
SUMMARY_FIELDS = [*SPEC_FIELDS, "duration_seconds", "is_live_warning"]
# The example response of the spec (docs/live-track-panel.md, "The JSON API"),
# verbatim, plus Phase 85's two fields.
SPEC_EXAMPLE = {
    "session_id": "session_20251208_shadow_abc123",
    "started_at": "2024-12-08T12:00:00",
    "ended_at": "2024-12-08T13:00:00",
    "mode": "shadow",
    "environment": "kraken_futures_testnet / BTC/USDT",
    "status": "completed",
    "realized_pnl": 150.0,
    "max_drawdown": 0.05,
    "num_orders": 10,
    "report_path": None,
    "notes": None,
    "duration_seconds": 3600,
    "is_live_warning": False,
}
BADGES = {"completed": "OK", "failed": "FAIL", "aborted": "ABORT", "started": "RUN"}
EMPTY_CELL = "–"


def make_record(**overrides: Any) -> LiveSessionRecord:
    """The record behind the spec's example; keyword arguments replace fields."""
    fields = {"started_at": T0, "config": {}, "cli_args": []}
    return make_session(overrides.pop("session_id", SPEC_ID), **{**fields, **overrides})


def write(registry: Path, **overrides: Any) -> LiveSessionRecord:
    """Register one session the way Phase 81 bot code does."""
    record = make_record(**overrides)
    register_live_session_run(record, base_dir=registry)
    return record


def write_running(registry: Path, session_id: str, started_at: datetime, **more: Any) -> None:
    write(
        registry,
        session_id=session_id,
        status="started",
        started_at=started_at,
        finished_at=None,
        metrics={},
        **more,
    )


def write_many(registry: Path, count: int) -> list[str]:
    """``count`` completed sessions an hour apart; returns their ids newest first."""
    ids = [f"session_{i:03d}" for i in range(count)]
    for i, session_id in enumerate(ids):
        start = T0 + timedelta(hours=i)
        write(registry, session_id=session_id, started_at=start, finished_at=start)
    return ids[::-1]


def serve(registry: Path) -> TestClient:
    return TestClient(create_app(Settings(registry_dir=registry)))


def recent_ids(registry: Path, limit: int = 10) -> list[str]:
    return [s.session_id for s in get_recent_live_sessions(limit=limit, base_dir=registry)]


def only_summary(registry: Path) -> LiveSessionSummary:
    (summary,) = get_recent_live_sessions(base_dir=registry)
    return summary


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """Where the tests' sessions go; not created until something is written."""
    return tmp_path / "live_sessions"


# --- Reading the HTML like a person -----------------------------------------

_TAG = re.compile(r"<[^>]+>")
_HIDDEN_BUTTON = re.compile(r"<button\b[^>]*\bhidden\b[^>]*>.*?</button>", re.S)
_ROW = re.compile(r'<tr\b[^>]*\bdata-session-id="([^"]*)"[^>]*>(.*?)</tr>', re.S)
_CELL = re.compile(r'<td\b(?:[^>]*\bclass="([^"]*)")?[^>]*>(.*?)</td>', re.S)
_SNAPSHOT = re.compile(r"<article\b[^>]*\bsnapshot\b[^>]*>.*?</article>", re.S)


def visible_text(fragment: str) -> str:
    """Text as a browser shows it: tags gone, entities decoded, whitespace collapsed."""
    text = _TAG.sub(" ", _HIDDEN_BUTTON.sub("", fragment))
    return " ".join(html.unescape(text).split())


HEADERS = ["Session", "Mode", "Status", "Started", "Ended", "PnL", "Max DD", "Orders"]


@dataclass
class Row:
    session_id: str
    html: str
    cells: list[str]
    cell_classes: list[str]

    def cell(self, header: str) -> str:
        return self.cells[HEADERS.index(header)]

    def cell_class(self, header: str) -> str:
        return self.cell_classes[HEADERS.index(header)]


def table_rows(page: str) -> list[Row]:
    rows = []
    for session_id, inner in _ROW.findall(page):
        cells = _CELL.findall(inner)
        rows.append(
            Row(
                session_id=html.unescape(session_id),
                html=inner,
                cells=[visible_text(content) for _, content in cells],
                cell_classes=[css for css, _ in cells],
            )
        )
    return rows


def row_of(page: str, session_id: str) -> Row:
    (row,) = [row for row in table_rows(page) if row.session_id == session_id]
    return row


def snapshot_tile(page: str) -> str:
    match = _SNAPSHOT.search(page)
    assert match, "the page has no snapshot tile"
    return match.group(0)


def dashboard(registry: Path, url: str = "/") -> str:
    with serve(registry) as client:
        response = client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    return response.text


# --- Model ------------------------------------------------------------------


def test_summary_from_a_failed_record_carries_what_the_panel_needs(registry: Path) -> None:
    """What the service makes of a record, not what a constructor hands back."""
    write(
        registry,
        mode="testnet",
        env_name="bybit_perp_testnet",
        symbol="ETH/USDT",
        status="failed",
        finished_at=T0 + timedelta(minutes=26, seconds=5),
        metrics={"pnl": -42.75, "max_drawdown": 0.031, "num_trades": 4.0},
        config={"report_path": "reports/live/session.html"},
        error="ExchangeError: insufficient margin",
    )
    [summary] = get_recent_live_sessions(base_dir=registry)
    assert summary.environment == "bybit_perp_testnet / ETH/USDT"
    assert summary.notes == "ExchangeError: insufficient margin"
    assert summary.realized_pnl == -42.75  # the original dashboard's pnl fallback
    assert summary.num_orders == 4  # num_trades when num_orders is missing, 4.0 as 4
    assert summary.report_path == "reports/live/session.html"
    assert summary.duration_seconds == 26 * 60 + 5
    assert summary.is_live_warning is False


def test_summary_json_serialization_uses_iso_timestamps_and_keeps_nulls() -> None:
    offset = timezone(timedelta(hours=1))
    summary = LiveSessionSummary(
        session_id=SPEC_ID,
        started_at=datetime(2024, 12, 8, 12, 0, 0),
        ended_at=None,
        mode="shadow",
        environment="kraken_futures_testnet / BTC/USDT",
        status="started",
        realized_pnl=None,
        max_drawdown=None,
        num_orders=None,
        report_path=None,
        notes=None,
    )
    assert json.loads(summary.model_dump_json()) == {
        "session_id": SPEC_ID,
        "started_at": "2024-12-08T12:00:00",
        "ended_at": None,
        "mode": "shadow",
        "environment": "kraken_futures_testnet / BTC/USDT",
        "status": "started",
        "realized_pnl": None,
        "max_drawdown": None,
        "num_orders": None,
        "report_path": None,
        "notes": None,
        "duration_seconds": None,
        "is_live_warning": False,
    }
    aware = summary.model_copy(update={"started_at": datetime(2025, 12, 9, 10, 15, tzinfo=offset)})
    assert json.loads(aware.model_dump_json())["started_at"] == "2025-12-09T10:15:00+01:00"


@pytest.mark.parametrize("status", ["started", "completed", "failed", "aborted"])
def test_summary_accepts_the_four_statuses(status: str) -> None:
    summary = LiveSessionSummary.model_validate({**SPEC_EXAMPLE, "status": status})
    assert summary.status == status


@pytest.mark.parametrize("status", ["running", "weird", "Completed", ""])
def test_summary_rejects_other_statuses(status: str) -> None:
    with pytest.raises(ValidationError) as caught:
        LiveSessionSummary.model_validate({**SPEC_EXAMPLE, "status": status})
    assert [error["loc"] for error in caught.value.errors()] == [("status",)]


def test_summary_has_exactly_the_spec_fields() -> None:
    assert list(LiveSessionSummary.model_fields) == SUMMARY_FIELDS


def test_summary_needs_only_id_start_mode_and_status() -> None:
    summary = LiveSessionSummary(session_id="s", started_at=T0, mode="paper", status="started")
    assert summary.environment == ""
    assert summary.ended_at is summary.realized_pnl is summary.notes is None
    assert summary.is_live_warning is False


# --- Service: get_recent_live_sessions --------------------------------------


def test_service_empty_registry_gives_empty_list(registry: Path) -> None:
    registry.mkdir()
    assert get_recent_live_sessions(limit=10, base_dir=registry) == []


def test_service_missing_directory_gives_empty_list_and_creates_nothing(registry: Path) -> None:
    assert get_recent_live_sessions(limit=10, base_dir=registry) == []
    assert not registry.exists()


def test_service_loads_sessions(registry: Path) -> None:
    write(registry)
    write(
        registry,
        session_id="session_20251209_testnet_7f3e2a",
        run_type="live_session_testnet",
        mode="testnet",
        env_name="bybit_perp_testnet",
        symbol="ETH/USDT",
        status="failed",
        started_at=T0 + timedelta(days=1),
        finished_at=T0 + timedelta(days=1, minutes=26),
        metrics={"realized_pnl": -42.75, "max_drawdown": 0.031, "num_orders": 4},
        error="ExchangeError: insufficient margin",
    )
    sessions = get_recent_live_sessions(limit=10, base_dir=registry)
    assert all(isinstance(s, LiveSessionSummary) for s in sessions)
    assert [s.model_dump() for s in sessions] == [
        {
            "session_id": "session_20251209_testnet_7f3e2a",
            "started_at": datetime(2024, 12, 9, 12, 0),
            "ended_at": datetime(2024, 12, 9, 12, 26),
            "mode": "testnet",
            "environment": "bybit_perp_testnet / ETH/USDT",
            "status": "failed",
            "realized_pnl": -42.75,
            "max_drawdown": 0.031,
            "num_orders": 4,
            "report_path": None,
            "notes": "ExchangeError: insufficient margin",
            "duration_seconds": 26 * 60,
            "is_live_warning": False,
        },
        {
            **SPEC_EXAMPLE,
            "started_at": T0,
            "ended_at": T0 + timedelta(hours=1),
        },
    ]


@pytest.mark.parametrize("limit", [1, 3, 10, 12, 100])
def test_service_limit(registry: Path, limit: int) -> None:
    newest_first = write_many(registry, 12)
    assert recent_ids(registry, limit) == newest_first[:limit]


def test_service_default_limit_is_ten(registry: Path) -> None:
    newest_first = write_many(registry, 12)
    sessions = get_recent_live_sessions(base_dir=registry)
    assert [s.session_id for s in sessions] == newest_first[:10]


def _write_activity_mix(registry: Path) -> list[str]:
    """Sessions whose end, not start, decides the order; returns ids newest first."""
    tokyo = timezone(timedelta(hours=9))
    write(  # started a week ago, ended last: the most recent activity
        registry,
        session_id="long_runner",
        started_at=T0 - timedelta(days=7),
        finished_at=T0 + timedelta(hours=5),
    )
    write_running(registry, "still_running", T0 + timedelta(hours=4))  # newest file name
    write(
        registry,
        session_id="short_one",
        started_at=T0 + timedelta(hours=3),
        finished_at=T0 + timedelta(hours=3, minutes=30),
    )
    write(  # 11:00-14:30 UTC, written with an offset: its wall clock says 23:30
        registry,
        session_id="tokyo_clock",
        started_at=datetime(2024, 12, 8, 20, 0, tzinfo=tokyo),
        finished_at=datetime(2024, 12, 8, 23, 30, tzinfo=tokyo),
    )
    write(
        registry,
        session_id="midday",
        started_at=T0 + timedelta(hours=1),
        finished_at=T0 + timedelta(hours=2),
    )
    return ["long_runner", "still_running", "short_one", "tokyo_clock", "midday"]


def test_service_orders_by_end_else_start_across_the_whole_registry(registry: Path) -> None:
    expected = _write_activity_mix(registry)
    assert recent_ids(registry) == expected
    assert recent_ids(registry, limit=2) == expected[:2]


def test_service_optional_fields_are_none(registry: Path) -> None:
    write_running(registry, "bare", T0, env_name="", symbol="")
    summary = only_summary(registry)
    assert summary.status == "started"
    assert summary.ended_at is None
    assert summary.realized_pnl is None
    assert summary.max_drawdown is None
    assert summary.num_orders is None
    assert summary.report_path is None
    assert summary.notes is None
    assert summary.environment == ""


CORRUPT_FILES = {
    "corrupted.json": "{not json",
    "empty.json": "",
    "a_list.json": "[1, 2, 3]",
    "missing_keys.json": '{"session_id": "half_written"}',
    "bad_time.json": json.dumps(
        {"session_id": "bad_time", "run_type": "live_session_shadow", "started_at": "yesterday"}
    ),
    "not_utf8.json": b"\xff\xfe{",
    "README.md": "# live sessions\n",
}


def _write_corrupt_files(registry: Path) -> None:
    registry.mkdir(parents=True, exist_ok=True)
    for name, content in CORRUPT_FILES.items():
        if isinstance(content, bytes):
            (registry / name).write_bytes(content)
        else:
            (registry / name).write_text(content, encoding="utf-8")


def test_service_skips_corrupt_files(registry: Path) -> None:
    _write_corrupt_files(registry)
    write(registry, session_id="good_old")
    write(registry, session_id="good_new", started_at=T0 + timedelta(days=1), finished_at=None)
    assert recent_ids(registry) == ["good_new", "good_old"]


@pytest.mark.parametrize(
    ("env_name", "symbol", "environment"),
    [
        ("kraken_futures_testnet", "BTC/USDT", "kraken_futures_testnet / BTC/USDT"),
        ("kraken_futures_testnet", "", "kraken_futures_testnet"),
        ("", "BTC/USDT", "BTC/USDT"),
        ("", "", ""),
    ],
)
def test_service_environment_joins_env_name_and_symbol(
    registry: Path, env_name: str, symbol: str, environment: str
) -> None:
    write(registry, env_name=env_name, symbol=symbol)
    assert only_summary(registry).environment == environment


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("failed", "ExchangeError: kraken rejected order: insufficient margin"),
        ("aborted", "KeyboardInterrupt: session interrupted by the operator"),
        ("completed", None),
        # notes = error (docs/live-track-panel.md). A status word the panel maps (see
        # normalize_status) is not an error, and "running" is a known alias, not an unknown status.
        ("running", None),
        ("success", None),
    ],
)
def test_service_notes_are_the_error(registry: Path, status: str, error: str | None) -> None:
    ended = None if status == "running" else T0 + timedelta(hours=1)
    write(registry, status=status, error=error, finished_at=ended)
    assert only_summary(registry).notes == error


@pytest.mark.parametrize(
    ("metrics", "num_orders"),
    [
        ({"num_orders": 10, "num_trades": 5}, 10),
        ({"num_trades": 5}, 5),
        ({"num_orders": 0, "num_trades": 5}, 0),
        ({"realized_pnl": 1.0}, None),
    ],
)
def test_service_num_orders_falls_back_to_num_trades(
    registry: Path, metrics: dict[str, Any], num_orders: int | None
) -> None:
    write(registry, metrics=metrics)
    assert only_summary(registry).num_orders == num_orders


@pytest.mark.parametrize(
    ("config", "metrics", "report_path"),
    [
        ({"report_path": "reports/live/a.html"}, {}, "reports/live/a.html"),
        ({}, {"report_path": "reports/live/b.html"}, "reports/live/b.html"),
        ({"strategy_name": "ma_crossover"}, {"realized_pnl": 1.0}, None),
    ],
)
def test_service_report_path_from_config_or_metrics(
    registry: Path, config: dict[str, Any], metrics: dict[str, Any], report_path: str | None
) -> None:
    write(registry, config=config, metrics=metrics)
    assert only_summary(registry).report_path == report_path


@pytest.mark.parametrize(
    ("raw_status", "ended", "status"),
    [
        ("running", False, "started"),
        ("weird", False, "started"),
        ("weird", True, "aborted"),
        ("success", True, "completed"),
        ("error", True, "failed"),
        ("COMPLETED", True, "completed"),
    ],
)
def test_unknown_status_is_still_shown(
    registry: Path, raw_status: str, ended: bool, status: str
) -> None:
    write(
        registry,
        session_id="odd_writer",
        status=raw_status,
        finished_at=T0 + timedelta(hours=1) if ended else None,
    )
    assert only_summary(registry).status == status
    with serve(registry) as client:
        api = client.get("/api/live_sessions")
        page = client.get("/").text
    assert api.status_code == 200
    assert [(s["session_id"], s["status"]) for s in api.json()] == [("odd_writer", status)]
    assert row_of(page, "odd_writer").cell("Status").startswith(BADGES[status])


# --- API ----------------------------------------------------------------------


def test_api_live_sessions_returns_the_whole_shape(registry: Path) -> None:
    write(registry, config={"report_path": "reports/live/spec.html"})
    write_running(
        registry,
        "session_20251209_paper_c4d5e6",
        datetime(2024, 12, 9, 9, 0, tzinfo=timezone.utc),
        run_type="live_session_paper",
        mode="paper",
        env_name="paper_broker",
        symbol="",
    )
    with serve(registry) as client:
        response = client.get("/api/live_sessions")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == [
        {
            "session_id": "session_20251209_paper_c4d5e6",
            "started_at": "2024-12-09T09:00:00Z",
            "ended_at": None,
            "mode": "paper",
            "environment": "paper_broker",
            "status": "started",
            "realized_pnl": None,
            "max_drawdown": None,
            "num_orders": None,
            "report_path": None,
            "notes": None,
            "duration_seconds": None,
            "is_live_warning": False,
        },
        {**SPEC_EXAMPLE, "report_path": "reports/live/spec.html"},
    ]


def test_api_returns_the_spec_example(registry: Path) -> None:
    write(
        registry,
        session_id="session_20251208_shadow_abc123",
        started_at=datetime(2024, 12, 8, 12, 0, 0),
        finished_at=datetime(2024, 12, 8, 13, 0, 0),
        mode="shadow",
        env_name="kraken_futures_testnet",
        symbol="BTC/USDT",
        status="completed",
        metrics={"realized_pnl": 150.0, "max_drawdown": 0.05, "num_orders": 10},
    )
    with serve(registry) as client:
        sessions = client.get("/api/live_sessions?limit=10").json()
    assert sessions == [SPEC_EXAMPLE]


@pytest.mark.parametrize(("query", "count"), [("", 10), ("?limit=3", 3), ("?limit=100", 12)])
def test_api_limit(registry: Path, query: str, count: int) -> None:
    newest_first = write_many(registry, 12)
    with serve(registry) as client:
        response = client.get(f"/api/live_sessions{query}")
    assert response.status_code == 200
    assert [s["session_id"] for s in response.json()] == newest_first[:count]


@pytest.mark.parametrize(
    ("value", "error_type"),
    [("0", "greater_than_equal"), ("101", "less_than_equal"), ("abc", "int_parsing")],
)
def test_api_rejects_bad_limit(registry: Path, value: str, error_type: str) -> None:
    write(registry)
    with serve(registry) as client:
        response = client.get(f"/api/live_sessions?limit={value}")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "limit"]
    assert error["type"] == error_type
    assert error["input"] == value


def test_api_health(registry: Path) -> None:
    with serve(registry) as client:
        response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_docs_are_served_without_any_cdn(registry: Path) -> None:
    with serve(registry) as client:
        response = client.get("/docs")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        page = response.text
        assert not re.search(r"https?://", page), "the docs page must not load from a CDN"
        assets = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"', page)
        assert any(a.endswith(".js") and "swagger" in a for a in assets)
        assert any(a.endswith(".css") and "swagger" in a for a in assets)
        for asset in assets:
            assert asset.startswith("/"), asset
            assert client.get(asset).status_code == 200, asset
        # Swagger UI then fetches the schema the page names, from the app itself.
        spec_url = re.search(r'data-openapi-url="([^"]+)"', page)
        assert spec_url and spec_url.group(1) == "/openapi.json"
        spec = client.get(spec_url.group(1))
        assert spec.status_code == 200
        assert "/api/live_sessions" in spec.json()["paths"]


def test_openapi_lists_live_sessions_with_bounded_limit(registry: Path) -> None:
    with serve(registry) as client:
        schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/api/live_sessions"]["get"]
    (limit,) = [p for p in operation["parameters"] if p["name"] == "limit"]
    assert limit["in"] == "query"
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 100)
    assert limit["schema"]["default"] == 10
    assert list(schema["components"]["schemas"]["LiveSessionSummary"]["properties"]) == (
        SUMMARY_FIELDS
    )


# --- Integration with the Phase 81 writers --------------------------------------


def test_integration_with_the_real_registry_writers(registry: Path) -> None:
    register_live_session_run(make_record(session_id="registered_directly"), base_dir=registry)
    with live_session(
        mode="testnet", env_name="kraken_futures_testnet", symbol="ETH/USDT", base_dir=registry
    ) as good:
        good.set_metrics(realized_pnl=25.5, max_drawdown=0.02, num_orders=3)
        [running] = [
            s
            for s in get_recent_live_sessions(base_dir=registry)
            if s.session_id == good.record.session_id
        ]
        assert (running.status, running.ended_at) == ("started", None)
    with (
        pytest.raises(RuntimeError, match="exchange down"),
        live_session(
            mode="shadow", env_name="kraken_spot", symbol="BTC/EUR", base_dir=registry
        ) as bad,
    ):
        raise RuntimeError("exchange down")

    with serve(registry) as client:
        api = {s["session_id"]: s for s in client.get("/api/live_sessions").json()}
        page = client.get("/").text

    assert set(api) == {"registered_directly", good.record.session_id, bad.record.session_id}
    completed = api[good.record.session_id]
    assert completed["status"] == "completed"
    assert completed["ended_at"] is not None
    assert completed["environment"] == "kraken_futures_testnet / ETH/USDT"
    assert (completed["realized_pnl"], completed["max_drawdown"], completed["num_orders"]) == (
        25.5,
        0.02,
        3,
    )
    failed = api[bad.record.session_id]
    assert failed["status"] == "failed"
    assert "RuntimeError" in failed["notes"] and "exchange down" in failed["notes"]
    assert api["registered_directly"] == {**SPEC_EXAMPLE, "session_id": "registered_directly"}

    assert "3 Session(s) geladen" in visible_text(page)
    assert row_of(page, good.record.session_id).cell("Status") == "OK"
    assert row_of(page, bad.record.session_id).cell("Status").startswith("FAIL")
    assert row_of(page, "registered_directly").cell("PnL").endswith("+150,00 USDT")
