"""Registries as traders really have them, and the code that imports this module.

Records here are written the way the original Peak_Trade writers write them
(``tests/support.write_like_original``): in place, with json.dump's defaults
(bare ``NaN`` / ``Infinity``), ``started`` once and no heartbeat,
``strategy_tier``, ``bounded_pilot`` and float order counts.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from src.experiments.live_session import live_session
from src.experiments.live_session_registry import LiveSessionRecord
from src.webui.app import create_app
from src.webui.settings import Settings
from tests.support import original_record, write_like_original

REPO_ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 11, 24, 8, 0, 0, 123456)


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return tmp_path / "live_sessions"


@pytest.fixture
def client(registry: Path) -> Iterator[TestClient]:
    registry.mkdir(parents=True, exist_ok=True)
    with TestClient(create_app(Settings(registry_dir=registry, watch=False))) as test_client:
        yield test_client


def reload(client: TestClient) -> None:
    """Make the app see what the test just wrote (the watch is off in these tests)."""
    client.app.state.index.reconcile()  # type: ignore[attr-defined]


def api_ids(client: TestClient, query: str = "") -> list[str]:
    return [s["session_id"] for s in client.get(f"/api/live_sessions?limit=100{query}").json()]


def finished(session_id: str, pnl: Any, hours: int, **more: Any) -> dict[str, Any]:
    start = T0 + timedelta(hours=hours)
    return original_record(
        session_id,
        status="completed",
        started_at=start,
        finished_at=start + timedelta(minutes=30),
        metrics={"realized_pnl": pnl, "max_drawdown": 0.02, "num_orders": 3.0},
        **more,
    )


# --- 1. Every real record shows --------------------------------------------------


def test_non_finite_metrics_show_the_session_and_count_as_no_number(
    registry: Path, client: TestClient
) -> None:
    write_like_original(registry, finished("plain", 10.0, 0))
    write_like_original(registry, finished("nan-pnl", float("nan"), 1))
    infinite = finished("inf-factor", 5.0, 2)
    infinite["metrics"]["profit_factor"] = float("inf")
    infinite["metrics"]["worst_trade"] = float("-inf")
    path = write_like_original(registry, infinite)
    assert "Infinity" in path.read_text()  # really written the way json.dump does
    reload(client)

    assert sorted(api_ids(client)) == ["inf-factor", "nan-pnl", "plain"]
    sessions = {s["session_id"]: s for s in client.get("/api/live_sessions").json()}
    assert sessions["nan-pnl"]["realized_pnl"] is None
    assert sessions["nan-pnl"]["num_orders"] == 3  # a float count, read as the count
    assert client.get("/api/live_sessions/stats").json()["total_realized_pnl"] == 15.0
    assert api_ids(client, "&sort=pnl&order=desc") == ["plain", "inf-factor", "nan-pnl"]
    assert api_ids(client, "&sort=pnl&order=asc") == ["inf-factor", "plain", "nan-pnl"]

    detail = client.get("/api/live_sessions/inf-factor").json()
    assert detail["metrics"]["profit_factor"] == "Infinity"
    assert detail["metrics"]["worst_trade"] == "-Infinity"
    assert client.get("/api/live_sessions/nan-pnl").json()["metrics"]["realized_pnl"] == "NaN"
    page = client.get("/session/inf-factor").text
    assert re.search(r"profit_factor</th><td[^>]*>∞</td>", page)
    assert re.search(r"worst_trade</th><td[^>]*>−∞</td>", page)
    assert re.search(r"realized_pnl</th><td[^>]*>NaN</td>", client.get("/session/nan-pnl").text)


def test_numbers_as_text_count_and_booleans_never_do(registry: Path, client: TestClient) -> None:
    write_like_original(registry, finished("text-pnl", "12.5", 0))
    write_like_original(registry, finished("bool-pnl", True, 1))
    legacy = finished("legacy-pnl", None, 2)
    legacy["metrics"] = {"pnl": -4.5}  # the original dashboard's fallback key
    write_like_original(registry, legacy)
    reload(client)

    sessions = {s["session_id"]: s for s in client.get("/api/live_sessions").json()}
    assert sessions["text-pnl"]["realized_pnl"] == 12.5
    assert sessions["bool-pnl"]["realized_pnl"] is None
    assert sessions["legacy-pnl"]["realized_pnl"] == -4.5
    assert client.get("/api/live_sessions/stats").json()["total_realized_pnl"] == 8.0


def test_unknown_top_level_keys_and_strategy_tier_survive(
    registry: Path, client: TestClient
) -> None:
    data = finished("future", 1.0, 0, strategy_tier="r_and_d")
    data["venue_latency_ms"] = 12
    data["risk_limits_v2"] = {"max_notional": 5000, "halted": False}
    write_like_original(registry, data)
    reload(client)

    detail = client.get("/api/live_sessions/future").json()
    assert detail["strategy_tier"] == "r_and_d"
    assert detail["extra"] == {
        "venue_latency_ms": 12,
        "risk_limits_v2": {"max_notional": 5000, "halted": False},
    }
    page = client.get("/session/future").text
    assert "Weitere Felder" in page and "venue_latency_ms" in page and "max_notional" in page
    assert "R&amp;D" in page


def test_record_takes_strategy_tier_like_the_original() -> None:
    record = LiveSessionRecord(
        "s1", None, "live_session_shadow", "shadow", "kraken", "BTC/USDT", "started", T0,
        strategy_tier="core",
    )  # fmt: skip
    assert record.to_dict()["strategy_tier"] == "core"
    assert list(record.to_dict())[-1] == "strategy_tier"
    assert LiveSessionRecord.from_dict(record.to_dict()) == record


def test_set_metrics_normalizes_what_bots_send(registry: Path) -> None:
    with live_session(
        mode="paper", env_name="binance", symbol="ETH/USDT", base_dir=registry,
        heartbeat_seconds=0,
    ) as session:  # fmt: skip
        session.set_metrics(
            realized_pnl=Decimal("12.50"),
            fees=np.float32(0.25),
            num_orders=np.int64(7),
            fill_rate="0.75",
            risk_status="green",
            by_leg={"long": Decimal("3"), "short": [np.int32(1), "2.5"]},
        )
    assert session.path is not None
    written = json.loads(session.path.read_text())["metrics"]
    assert written == {
        "realized_pnl": 12.5,
        "fees": 0.25,
        "num_orders": 7,
        "fill_rate": 0.75,
        "risk_status": "green",
        "by_leg": {"long": 3.0, "short": [1, 2.5]},
    }


def test_an_unserializable_metric_is_dropped_and_later_writes_still_work(
    registry: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with live_session(
        mode="paper", env_name="binance", symbol="ETH/USDT", base_dir=registry,
        heartbeat_seconds=0,
    ) as session:  # fmt: skip
        with caplog.at_level(logging.WARNING):
            session.set_metrics(realized_pnl=1.0, order_book=object())
        session.set_metrics(realized_pnl=2.0)
        path = session.path
    assert path is not None
    record = json.loads(path.read_text())
    assert record["status"] == "completed"
    assert record["metrics"] == {"realized_pnl": 2.0}
    assert any("order_book" in r.getMessage() for r in caplog.records)


# --- 2. The whole interface --------------------------------------------------------

REGISTRY_NAMES = [
    "DEFAULT_LIVE_SESSION_DIR",
    "RUN_TYPE_LIVE_SESSION",
    "RUN_TYPE_LIVE_SESSION_SHADOW",
    "RUN_TYPE_LIVE_SESSION_TESTNET",
    "RUN_TYPE_LIVE_SESSION_PAPER",
    "RUN_TYPE_LIVE_SESSION_LIVE",
    "STATUS_STARTED",
    "STATUS_COMPLETED",
    "STATUS_FAILED",
    "STATUS_ABORTED",
    "LiveSessionRecord",
    "register_live_session_run",
    "find_live_session_registry_json_for_session_id",
    "iter_live_session_registry_entries",
    "list_session_records",
    "get_session_summary",
    "load_session_record",
    "generate_session_run_id",
    "render_session_markdown",
    "render_sessions_markdown",
    "render_session_html",
    "render_sessions_html",
]
LIVE_TRACK_NAMES = [
    "LiveSessionSummary",
    "get_recent_live_sessions",
    "LiveSessionDetail",
    "get_session_by_id",
    "get_filtered_sessions",
    "get_session_stats",
    "compute_duration_seconds",
]


@pytest.mark.parametrize("module", ["src.experiments.live_session_registry", "src.experiments"])
def test_every_name_of_the_contract_imports(module: str) -> None:
    imported = importlib.import_module(module)
    assert [name for name in REGISTRY_NAMES if not hasattr(imported, name)] == []


def test_every_live_track_name_imports() -> None:
    imported = importlib.import_module("src.webui.live_track")
    assert [name for name in LIVE_TRACK_NAMES if not hasattr(imported, name)] == []


@pytest.fixture
def real_registry(registry: Path) -> Path:
    """The original writers' output, with a broken file and an editor backup beside it."""
    write_like_original(registry, finished("s-core", 100.0, 0, strategy_tier="core"))
    write_like_original(registry, finished("s-rnd", -20.0, 1, strategy_tier="r_and_d"))
    write_like_original(
        registry,
        original_record("s-pilot", mode="bounded_pilot", started_at=T0 + timedelta(hours=2)),
    )
    (registry / "corrupted.json").write_text('{"session_id": "broken", ')
    (registry / "notes.md").write_text("# not a record")
    return registry


def test_the_registry_functions_behave_like_the_original(real_registry: Path) -> None:
    from src.experiments import live_session_registry as reg

    assert reg.STATUS_STARTED == "started" and reg.RUN_TYPE_LIVE_SESSION_SHADOW == (
        "live_session_shadow"
    )
    assert Path("reports/experiments/live_sessions") == reg.DEFAULT_LIVE_SESSION_DIR
    newest = reg.list_session_records(real_registry)
    assert [r.session_id for r in newest] == ["s-pilot", "s-rnd", "s-core"]
    assert [r.session_id for r in reg.list_session_records(real_registry, limit=1)] == ["s-pilot"]
    assert [r.session_id for r in reg.list_session_records(real_registry, status="completed")] == [
        "s-rnd",
        "s-core",
    ]
    entries = list(reg.iter_live_session_registry_entries(real_registry))
    assert sorted(r.session_id for r, _ in entries) == ["s-core", "s-pilot", "s-rnd"]
    assert all(path.parent == real_registry for _, path in entries)
    found = reg.find_live_session_registry_json_for_session_id("s-rnd", real_registry)
    assert found is not None and found[0].strategy_tier == "r_and_d"
    assert reg.load_session_record(found[1]) == found[0]
    assert reg.find_live_session_registry_json_for_session_id("nope", real_registry) is None
    summary = reg.get_session_summary(real_registry)
    assert summary == {
        "num_sessions": 3,
        "by_status": {"started": 1, "completed": 2},
        "total_realized_pnl": 80.0,
        "avg_max_drawdown": pytest.approx(0.02),
        "first_started_at": T0.isoformat(),
        "last_started_at": (T0 + timedelta(hours=2)).isoformat(),
    }
    assert reg.get_session_summary(real_registry / "missing")["avg_max_drawdown"] == 0.0
    assert re.fullmatch(
        r"session_\d{8}_\d{6}_paper_[0-9a-f]{6}", reg.generate_session_run_id("paper")
    )
    assert reg.generate_session_run_id(prefix="run").startswith("run_")


def test_the_reports_keep_the_original_shape(real_registry: Path) -> None:
    from src.experiments import live_session_registry as reg

    core, rnd = (
        reg.find_live_session_registry_json_for_session_id(sid, real_registry)[0]  # type: ignore[index]
        for sid in ("s-core", "s-rnd")
    )
    markdown = reg.render_session_markdown(rnd)
    assert markdown.startswith("# Live-Session s-rnd\n")
    for line in (
        "**Run-Type:** `live_session_shadow`",
        "**Mode:** `shadow`",
        "**Status:** `completed`",
        "**Symbol:** `BTC/USDT`",
        "**Environment:** `shadow_kraken_futures`",
        f"**Started:** `{rnd.started_at.isoformat()}`",
        "**Strategy Tier:** `r_and_d`",
        "## Config",
        "## Metrics",
        '  "realized_pnl": -20.0,',
        "## CLI-Aufruf",
        "python scripts/run_live_session.py --mode shadow",
    ):
        assert line in markdown.splitlines(), line
    assert "R&D" in markdown
    assert "R&D" not in reg.render_session_markdown(core)
    many = reg.render_sessions_markdown([core, rnd])
    assert many.startswith("# Live-Sessions\n") and many.count("\n---\n") == 2
    assert reg.render_sessions_markdown([]) == "# Live-Sessions\n\nKeine Sessions gefunden.\n"

    evil = LiveSessionRecord.from_dict({**rnd.to_dict(), "error": "<script>alert(1)</script>"})
    page = reg.render_session_html(evil)
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Live-Session s-rnd</title>" in page and "<h1>Live-Session s-rnd</h1>" in page
    assert "&lt;script&gt;" in page and "<script>" not in page
    for heading in ("<h2>Config</h2>", "<h2>Metrics</h2>", "<h2>CLI-Aufruf</h2>"):
        assert heading in page
    table = reg.render_sessions_html([core, rnd])
    assert "<h1>Live-Sessions (2 Sessions)</h1>" in table
    for column in ("Session-ID", "Run-Type", "Mode", "Status", "Symbol", "Started"):
        assert f"<th>{column}</th>" in table
    assert "Keine Sessions gefunden." in reg.render_sessions_html([])


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "src.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )


def test_report_command_writes_the_filtered_set_with_totals_per_currency(
    real_registry: Path, tmp_path: Path
) -> None:
    live_eur = finished("s-live-eur", -3.5, 3, mode="live", symbol="BTC/EUR")
    live_eur["run_type"] = "live_session_live"
    write_like_original(real_registry, live_eur)
    out = tmp_path / "week.md"

    result = run_cli("report", "--registry", str(real_registry), "--output", str(out))

    assert result.returncode == 0, result.stderr
    assert "Wrote a report of 4 sessions" in result.stdout
    text = out.read_text()
    assert text.startswith("# Live-Sessions\n")
    assert "| Echtgeld | EUR | 1 | -3.50 EUR |" in text
    assert "| Simuliert | USDT | 2 | +80.00 USDT |" in text
    assert text.index("Echtgeld") < text.index("Simuliert")
    assert text.count("# Live-Session s-") == 4

    html = run_cli(
        "report", "--registry", str(real_registry), "--format", "html", "--status", "completed"
    )
    assert html.returncode == 0, html.stderr
    assert "<h1>Live-Sessions (3 Sessions)</h1>" in html.stdout
    assert "s-pilot" not in html.stdout and "s-core" in html.stdout

    bad = run_cli("report", "--registry", str(real_registry), "--since", "yesterday")
    assert bad.returncode == 2 and "Invalid filter" in bad.stderr


def test_programmatic_functions_read_like_the_dashboard(real_registry: Path) -> None:
    from src.webui import live_track

    recent = live_track.get_recent_live_sessions(limit=2, base_dir=real_registry)
    assert [s.session_id for s in recent] == ["s-pilot", "s-rnd"]
    assert recent[0].is_live_warning is True and recent[1].is_live_warning is False
    assert recent[1].duration_seconds == 30 * 60
    done = live_track.get_filtered_sessions(status_filter="completed", base_dir=real_registry)
    assert [s.session_id for s in done] == ["s-rnd", "s-core"]
    assert live_track.get_filtered_sessions(mode_filter="live", base_dir=real_registry) == []
    stats = live_track.get_session_stats(base_dir=real_registry)
    assert (stats["total_sessions"], stats["total_pnl"]) == (3, 80.0)
    assert stats["by_mode"] == {"shadow": 2, "bounded_pilot": 1}
    assert stats["avg_drawdown"] == pytest.approx(0.02)
    detail = live_track.get_session_by_id("s-core", base_dir=real_registry)
    assert detail is not None and detail.strategy_tier == "core"
    assert detail.config["strategy_name"] == "ma_crossover"
    assert live_track.get_session_by_id("nope", base_dir=real_registry) is None
    assert live_track.compute_duration_seconds(T0, T0 + timedelta(minutes=3, seconds=2)) == 182
    assert live_track.compute_duration_seconds(T0, None) is None
    aware = T0.replace(tzinfo=timezone(timedelta(hours=1)))
    assert live_track.compute_duration_seconds(aware, T0) == 3600  # naive is UTC


def test_stats_api_carries_the_original_keys(real_registry: Path) -> None:
    with TestClient(create_app(Settings(registry_dir=real_registry, watch=False))) as client:
        stats = client.get("/api/live_sessions/stats").json()
    assert stats["total_sessions"] == 3
    assert stats["by_mode"] == {"shadow": 2, "bounded_pilot": 1}
    assert stats["by_status"]["completed"] == 2
    assert stats["total_pnl"] == 80.0
    assert stats["avg_drawdown"] == pytest.approx(0.02)


# --- 3. Real money is always marked ---------------------------------------------------


def test_bounded_pilot_is_real_money_everywhere(real_registry: Path) -> None:
    write_like_original(real_registry, original_record("s-custom", mode="sim_x"))
    with TestClient(create_app(Settings(registry_dir=real_registry, watch=False))) as client:
        pilot = next(
            s for s in client.get("/api/live_sessions").json() if s["session_id"] == "s-pilot"
        )
        assert pilot["is_live_warning"] is True
        page = client.get("/?status=started&mode=bounded_pilot").text
        assert 'class="session-row row-live"' in page
        tile = page[page.index('aria-label="Snapshot"') :]
        assert "⚠ BOUNDED_PILOT" in tile[: tile.index("</article>")]
        assert "Echtes Kapital: Modus bounded_pilot" in client.get("/session/s-pilot").text
        # The mode filter offers every mode present, the unknown one included.
        filters = client.get("/").text.split('aria-label="Filter"')[1].split("</fieldset>")[0]
        assert re.findall(r'name="mode" value="([^"]+)"', filters) == [
            "bounded_pilot",
            "shadow",
            "sim_x",
        ]


def test_real_money_modes_are_one_setting(
    real_registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVE_TRACK_REAL_MONEY_MODES", "live, shadow")
    settings = Settings(registry_dir=real_registry, watch=False)
    assert settings.real_money_modes == ("live", "shadow")
    with TestClient(create_app(settings)) as client:
        warned = {
            s["session_id"]: s["is_live_warning"] for s in client.get("/api/live_sessions").json()
        }
    assert warned == {"s-pilot": False, "s-rnd": True, "s-core": True}


# --- 5. One read path, one vocabulary ------------------------------------------------


def test_cli_lists_in_the_dashboards_order_with_its_status_words(
    real_registry: Path, client: TestClient
) -> None:
    write_like_original(
        real_registry,
        original_record(
            "s-long-running", started_at=T0 - timedelta(days=2), status="running"
        ),  # another writer's word for started
    )
    result = run_cli("sessions", "list", env={"PEAK_TRADE_LIVE_SESSIONS_DIR": str(real_registry)})
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:] if line.startswith("s-")]
    with TestClient(create_app(Settings(registry_dir=real_registry, watch=False))) as app_client:
        api = app_client.get("/api/live_sessions?limit=100").json()
    assert [row[0] for row in rows] == [s["session_id"] for s in api]
    assert [row[2] for row in rows] == [s["status"] for s in api]
    assert rows[-1][:3] == ["s-long-running", "shadow", "started"]


def test_one_environment_variable_selects_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEAK_TRADE_LIVE_SESSIONS_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("LIVE_TRACK_REGISTRY_DIR", str(tmp_path / "b"))
    assert Settings().registry_dir == tmp_path / "a"


def test_the_page_script_gets_the_vocabulary_from_the_server(client: TestClient) -> None:
    page = client.get("/").text
    body = re.search(r'<body data-vocabulary="([^"]+)"', page)
    assert body is not None
    vocabulary = json.loads(body.group(1).replace("&#34;", '"').replace("&quot;", '"'))
    assert vocabulary["statuses"]["failed"] == {"badge": "FAIL", "label": "Failed"}
    assert vocabulary["real_money_modes"] == ["bounded_pilot", "live"]
    assert "STATUS_LABELS" not in (REPO_ROOT / "static" / "live-track.js").read_text()


# --- 6. The bot side ----------------------------------------------------------------


def test_asyncio_bot_stopped_with_ctrl_c_is_aborted(registry: Path) -> None:
    bot = textwrap.dedent(
        f"""
        import asyncio, signal
        from src.experiments.live_session import live_session

        # As started from a terminal: a test runner may pass SIGINT on ignored.
        signal.signal(signal.SIGINT, signal.default_int_handler)

        async def main():
            with live_session(mode="paper", env_name="binance", symbol="BTC/USDT",
                              base_dir={str(registry)!r}):
                print("trading", flush=True)
                await asyncio.sleep(60)

        asyncio.run(main())
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", bot], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None and process.stdout.readline().strip() == "trading"
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
        finally:
            process.kill()
    [path] = registry.glob("*.json")
    record = json.loads(path.read_text())
    assert record["status"] == "aborted"
    assert record["error"].startswith("CancelledError")


def test_cancelled_task_inside_a_session_is_aborted(registry: Path) -> None:
    async def bot() -> None:
        with live_session(mode="paper", env_name="binance", symbol="BTC/USDT", base_dir=registry):
            await asyncio.sleep(60)

    async def main() -> None:
        task = asyncio.create_task(bot())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    # Its own thread: the browser tests leave an event loop in this one.
    runner = threading.Thread(target=asyncio.run, args=(main(),))
    runner.start()
    runner.join(timeout=30)
    [path] = registry.glob("*.json")
    assert json.loads(path.read_text())["status"] == "aborted"


def test_two_records_with_one_id_are_a_visible_conflict(registry: Path, client: TestClient) -> None:
    first = write_like_original(registry, finished("dup-1", 1.0, 0))
    again = finished("dup-1", 2.0, 5)
    again["run_type"] = "live_session"
    second = write_like_original(registry, again)
    reload(client)

    page = client.get("/").text
    notice = page[page.index("Konflikt)") - 200 : page.index("</details>", page.index("Konflikt)"))]
    assert "1 Session-ID(s) in mehreren Dateien" in notice
    assert first.name in notice and second.name in notice
    detail = client.get("/api/live_sessions/dup-1").json()
    assert detail["conflict"] is True
    assert detail["registry_file"].endswith(second.name)  # the newer one is shown ...
    assert detail["conflicting_files"] == [first.name]  # ... and the other one named
    assert first.name in client.get("/session/dup-1").text
