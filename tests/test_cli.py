"""The live-track command line: sessions list/show/summary, demo, serve."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from src import cli
from src.experiments import registry_files as registry
from src.experiments.live_session_registry import (
    list_session_records,
    register_live_session_run,
)
from src.webui.app import create_app
from src.webui.settings import Settings
from tests.support import (
    LIVE_ID,
    NEWEST_FIRST,
    PAPER_ID,
    SHADOW_ID,
    SPEC_EXAMPLE,
    TESTNET_ID,
    make_session,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


# --- the command line ---------------------------------------------------------------


def _console_script() -> str | None:
    return shutil.which("live-track", path=os.path.dirname(sys.executable))


@pytest.fixture(params=["python-m", "console-script"])
def entry(request: pytest.FixtureRequest) -> list[str]:
    """How a user starts the CLI: ``python -m src.cli`` or the installed ``live-track``."""
    if request.param == "python-m":
        return [sys.executable, "-m", "src.cli"]
    script = _console_script()
    if script is None:
        pytest.skip("live-track console script is not installed")
    return [script]


def run_cli(
    entry: list[str], *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LIVE_TRACK_") and k != registry.REGISTRY_DIR_ENV
    }
    return subprocess.run(
        [*entry, *args],
        cwd=REPO_ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def table_ids(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    assert lines[0].split()[:3] == ["SESSION", "MODE", "STATUS"]
    return [line.split()[0] for line in lines[1:] if line.startswith(("session_", "smoke_"))]


def test_cli_demo_writes_sessions_of_every_mode_and_status(
    entry: list[str], tmp_path: Path
) -> None:
    target = tmp_path / "demo"

    result = run_cli(entry, "demo", "--registry", str(target), "--count", "16", "--seed", "7")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Wrote 16 demo sessions to {target}."
    assert len(list(target.glob("*.json"))) == 16
    records = list_session_records(target)
    assert {r.mode for r in records} == {"shadow", "testnet", "paper", "live", "bounded_pilot"}
    assert {r.status for r in records} == {"started", "completed", "failed", "aborted"}


def test_cli_list_reads_the_registry_from_the_environment(
    entry: list[str], registry_dir: Path
) -> None:
    result = run_cli(entry, "sessions", "list", env={registry.REGISTRY_DIR_ENV: str(registry_dir)})

    assert result.returncode == 0, result.stderr
    assert table_ids(result.stdout) == NEWEST_FIRST
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:] if line}
    assert rows[SHADOW_ID].split() == [
        SHADOW_ID,
        "shadow",
        "completed",
        "2025-12-08",
        "02:52:43",
        "2025-12-08",
        "03:52:43",
        "+150.00",
        "USDT",  # every amount says its currency
        "5.0%",
        "10",
    ]
    assert rows[TESTNET_ID].split()[3:5] == ["2025-12-09", "09:15:00"]  # shown in UTC
    # The paper session's writer sends heartbeats, and the last is long past.
    assert "stale" in rows[PAPER_ID].split()
    assert rows[LIVE_ID].split()[1] == "live*"
    assert "* real money (live, bounded_pilot)" in result.stdout
    # Aligned: each row's mode and status start under their headers.
    header = result.stdout.splitlines()[0]
    for row, mode, status in [
        (rows[PAPER_ID], "paper", "started"),
        (rows[TESTNET_ID], "testnet", "failed"),
        (rows[LIVE_ID], "live*", "aborted"),
    ]:
        assert row.index(f" {mode} ") + 1 == header.index("MODE")
        assert row.index(f" {status} ") + 1 == header.index("STATUS")


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param(["--mode", "testnet"], [TESTNET_ID], id="mode"),
        pytest.param(["--status", "completed"], [SHADOW_ID], id="status"),
        pytest.param(["--mode", "paper", "--status", "started"], [PAPER_ID], id="both"),
        pytest.param(["--limit", "2"], NEWEST_FIRST[:2], id="limit"),
    ],
)
def test_cli_list_filters(registry_dir: Path, filters: list[str], expected: list[str]) -> None:
    result = run_cli(
        [sys.executable, "-m", "src.cli"],
        "sessions",
        "list",
        "--registry",
        str(registry_dir),
        *filters,
    )

    assert result.returncode == 0, result.stderr
    assert table_ids(result.stdout) == expected


def test_cli_list_says_when_nothing_matches(registry_dir: Path, tmp_path: Path) -> None:
    module = [sys.executable, "-m", "src.cli"]
    empty = tmp_path / "empty"

    no_match = run_cli(
        module,
        "sessions",
        "list",
        "--registry",
        str(registry_dir),
        "--mode",
        "live",
        "--status",
        "failed",
    )
    no_registry = run_cli(module, "sessions", "list", "--registry", str(empty))

    assert no_match.stdout.strip() == (
        f"No live sessions matching mode=live, status=failed found in {registry_dir}."
    )
    assert no_registry.stdout.strip() == f"No live sessions found in {empty}."
    assert no_match.returncode == no_registry.returncode == 0


def test_cli_list_does_not_pass_escape_sequences_to_the_terminal(tmp_path: Path) -> None:
    register_live_session_run(make_session("evil\x1b[2J\x07"), tmp_path)

    result = run_cli(
        [sys.executable, "-m", "src.cli"], "sessions", "list", "--registry", str(tmp_path)
    )

    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "evil?[2J?" in result.stdout


def test_cli_list_rejects_an_unknown_status() -> None:
    result = run_cli([sys.executable, "-m", "src.cli"], "sessions", "list", "--status", "done")

    assert result.returncode == 2
    assert "invalid choice: 'done'" in result.stderr


def test_cli_show_prints_the_whole_record(entry: list[str], registry_dir: Path) -> None:
    result = run_cli(entry, "sessions", "show", SHADOW_ID, "--registry", str(registry_dir))

    assert result.returncode == 0, result.stderr
    # The same read model as the API: the detail JSON, config and metrics as written.
    shown = json.loads(result.stdout)
    with TestClient(create_app(Settings(registry_dir=registry_dir, watch=False))) as client:
        assert shown == client.get(f"/api/live_sessions/{SHADOW_ID}").json()
    written = json.loads((registry_dir / SPEC_EXAMPLE).read_text())
    assert shown["config"] == written["config"] and shown["metrics"] == written["metrics"]
    assert shown["cli_args"] == written["cli_args"]
    assert result.stdout.startswith('{\n  "session_id": "smoke_test_20251208_01",\n')


def test_cli_show_unknown_id_exits_1(entry: list[str], registry_dir: Path) -> None:
    result = run_cli(entry, "sessions", "show", "session_nope", "--registry", str(registry_dir))

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == f"No live session with id 'session_nope' in {registry_dir}."


def test_cli_summary(entry: list[str], registry_dir: Path) -> None:
    result = run_cli(entry, "sessions", "summary", "--registry", str(registry_dir))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"Registry:               {registry_dir}",
        "Sessions:               4",
        "By status:              started 1, completed 1, failed 1, aborted 1",
        "By mode:                paper 1, testnet 1, shadow 1, live 1",
        "Running:                1 (1 stale)",
        # Real money first, never added to simulated money or another currency.
        "Realized PnL Echtgeld:  -3.20 EUR (1 sessions)",
        "Realized PnL Simuliert: +119.75 USDT (3 sessions)",
        "Avg max drawdown:       7.3%",
        "First started (UTC):    2025-12-07 18:30:00",
        "Last started (UTC):     2025-12-09 12:00:00",
    ]


def test_cli_serve_refuses_a_public_host_without_a_token(entry: list[str], tmp_path: Path) -> None:
    result = run_cli(entry, "serve", "--host", "0.0.0.0", "--registry", str(tmp_path))

    assert result.returncode == 2
    assert "Refusing to serve on 0.0.0.0 without an auth token" in result.stderr
    assert "--auth-token" in result.stderr
    assert "LIVE_TRACK_AUTH_TOKEN" in result.stderr


class FakeServer:
    """Stands in for uvicorn and the app factory: records what serve would start."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import uvicorn

        self.calls: list[dict[str, Any]] = []
        app_module = types.ModuleType("src.webui.app")
        app_module.create_app = lambda settings: ("app", settings)
        monkeypatch.setitem(sys.modules, "src.webui.app", app_module)
        monkeypatch.setattr(uvicorn, "run", lambda app, **kw: self.calls.append({"app": app, **kw}))


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    for name in list(os.environ):
        if name.startswith("LIVE_TRACK_") or name == registry.REGISTRY_DIR_ENV:
            monkeypatch.delenv(name)
    return FakeServer(monkeypatch)


def test_cli_serve_passes_only_given_options_so_env_vars_still_apply(
    fake_server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVE_TRACK_PORT", "9001")
    monkeypatch.setenv("LIVE_TRACK_STALE_AFTER_SECONDS", "60")

    assert cli.main(["serve", "--registry", str(tmp_path)]) == 0

    (call,) = fake_server.calls
    _, settings = call["app"]
    assert (call["host"], call["port"]) == ("127.0.0.1", 9001)
    assert settings.registry_dir == tmp_path
    assert settings.stale_after_seconds == 60


def test_cli_serve_options_win_over_env_vars(
    fake_server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVE_TRACK_PORT", "9001")
    monkeypatch.setenv(registry.REGISTRY_DIR_ENV, str(tmp_path / "from-env"))

    code = cli.main(
        [
            "serve",
            "--registry",
            str(tmp_path),
            "--host",
            "0.0.0.0",
            "--port",
            "8123",
            "--auth-token",
            "s3cret-of-16-chars",
        ]
    )

    assert code == 0
    (call,) = fake_server.calls
    _, settings = call["app"]
    assert (call["host"], call["port"]) == ("0.0.0.0", 8123)
    assert settings.registry_dir == tmp_path
    assert settings.auth_token.get_secret_value() == "s3cret-of-16-chars"


def test_cli_serve_accepts_the_token_from_the_environment(
    fake_server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVE_TRACK_AUTH_TOKEN", "from-env-16-chars-long")

    assert cli.main(["serve", "--host", "0.0.0.0"]) == 0
    assert len(fake_server.calls) == 1


def test_cli_serve_rejects_an_invalid_port(
    fake_server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["serve", "--port", "70000"]) == 2
    assert fake_server.calls == []
    assert "port" in capsys.readouterr().err


def test_cli_amounts_in_bitcoin_keep_their_decimals(tmp_path: Path) -> None:
    register_live_session_run(
        make_session("alt-btc", symbol="ETH/BTC", metrics={"realized_pnl": 0.0019}), tmp_path
    )
    summary = run_cli(
        [sys.executable, "-m", "src.cli"], "sessions", "summary", "--registry", str(tmp_path)
    )
    report = run_cli([sys.executable, "-m", "src.cli"], "report", "--registry", str(tmp_path))
    assert "Realized PnL Simuliert: +0.001900 BTC (1 sessions)" in summary.stdout
    assert "| Simuliert | BTC | 1 | +0.001900 BTC |" in report.stdout
