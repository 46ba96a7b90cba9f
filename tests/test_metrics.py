"""Prometheus metrics: what they say about the registry, who may read them, and the alerts."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import start_http_server
from prometheus_client.parser import text_string_to_metric_families

from src.experiments.live_session_registry import LiveSessionRecord, register_live_session_run
from src.experiments.shipper import Shipper, shipper_registry
from src.webui.app import create_app
from src.webui.settings import Settings
from tests.support import free_port

ALERT_RULES = (
    Path(__file__).resolve().parents[1] / "deploy" / "prometheus" / "live-track-alerts.yml"
)
NOW = datetime.now(timezone.utc).replace(tzinfo=None)


def session(session_id: str, mode: str, status: str, **fields: object) -> LiveSessionRecord:
    return LiveSessionRecord(
        session_id=session_id,
        run_id=None,
        run_type=f"live_session_{mode}",
        mode=mode,
        env_name="kraken",
        symbol="BTC/USD",
        status=status,
        started_at=NOW - timedelta(hours=2),
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    ended = NOW - timedelta(hours=1)
    for record in (
        session("live-dead", "live", "started", updated_at=NOW - timedelta(hours=1)),
        session("pilot-ok", "bounded_pilot", "started", updated_at=NOW),
        session("live-failed", "live", "failed", finished_at=ended, error="boom"),
        session("live-old-failure", "live", "failed", finished_at=NOW - timedelta(days=3)),
        session("paper-done", "paper", "completed", finished_at=ended),
    ):
        register_live_session_run(record, tmp_path)
    (tmp_path / "broken.json").write_text("{")
    return tmp_path


@pytest.fixture
def client(registry: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(registry_dir=registry))) as test_client:
        yield test_client


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, by name and labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_describe_the_registry(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    seen = samples(response.text)
    assert seen[("live_track_sessions", (("mode", "live"), ("status", "failed")))] == 2
    assert seen[("live_track_sessions", (("mode", "paper"), ("status", "completed")))] == 1
    assert seen[("live_track_running_sessions", (("mode", "live"),))] == 1
    assert seen[("live_track_stale_sessions", (("mode", "live"),))] == 1
    assert seen[("live_track_stale_sessions", (("mode", "bounded_pilot"),))] == 0
    assert seen[("live_track_failed_sessions_24h", (("mode", "live"),))] == 1
    # Present at zero, so an alert on its increase sees the first failure.
    assert seen[("live_track_failed_sessions_24h", (("mode", "bounded_pilot"),))] == 0
    assert seen[("live_track_real_money_running_sessions", ())] == 2
    assert seen[("live_track_real_money_stale_sessions", ())] == 1
    assert seen[("live_track_skipped_files", ())] == 1
    assert seen[("live_track_index_loaded", ())] == 1
    assert seen[("live_track_index_load_seconds", ())] > 0
    assert seen[("live_track_event_streams", ())] == 0
    assert 0 <= seen[("live_track_seconds_since_last_change", ())] < 300


def test_metrics_follow_a_change(client: TestClient, registry: Path) -> None:
    client.get("/metrics")
    register_live_session_run(session("live-2", "live", "failed", finished_at=NOW), registry)
    client.app.state.index.reconcile()  # type: ignore[attr-defined]
    seen = samples(client.get("/metrics").text)
    assert seen[("live_track_failed_sessions_24h", (("mode", "live"),))] == 2


def test_metrics_need_the_token_like_every_page(registry: Path) -> None:
    settings = Settings(registry_dir=registry, auth_token="s3cret-token-for-metrics")
    with TestClient(create_app(settings), follow_redirects=False) as client:
        refused = client.get("/metrics")
        assert refused.status_code == 401  # what a Prometheus scraper understands
        assert "live_track_sessions" not in refused.text
        allowed = client.get(
            "/metrics", headers={"Authorization": "Bearer s3cret-token-for-metrics"}
        )
        assert allowed.status_code == 200
        assert "live_track_real_money_stale_sessions 1.0" in allowed.text
        assert client.get("/api/health").status_code == 200


def test_the_shipper_reports_its_own_metrics(registry: Path, pg_url: str) -> None:
    shipper = Shipper(registry, pg_url, "bot-a")
    from src.experiments.pg_registry import connect

    with connect(pg_url) as conn:
        shipper.reconcile(conn)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=shipper_registry(shipper))
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    seen = samples(text.decode())
    host = (("host", "bot-a"),)
    assert seen[("live_track_shipper_upserted_rows_total", host)] == 6
    assert seen[("live_track_shipper_batches_total", host)] == 1
    assert seen[("live_track_shipper_backlog_files", host)] == 0
    assert seen[("live_track_shipper_lag_seconds", host)] == 0
    assert seen[("live_track_shipper_errors_total", host)] == 0


def test_alert_rules_use_only_metrics_that_exist(client: TestClient, registry: Path) -> None:
    exported = {name for name, _ in samples(client.get("/metrics").text)}
    shipper = Shipper(registry, "postgresql://unused", "bot-a")
    from prometheus_client import generate_latest

    shipper_text = generate_latest(shipper_registry(shipper)).decode()
    exported |= {name for name, _ in samples(shipper_text)} | {"up"}
    rules = ALERT_RULES.read_text()
    expressions = re.findall(r"expr: (.+)", rules)
    assert len(expressions) == 5
    used = set()
    for expression in expressions:
        without_labels = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expression)
        used |= {
            word
            for word in re.findall(r"[a-z_][a-z0-9_]*", without_labels)
            if word.startswith("live_track_") or word == "up"
        }
    assert used and used <= exported, used - exported
