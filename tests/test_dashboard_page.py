"""The Phase 82 dashboard page as a trader reads it: panel, tile, table, escaping."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.test_webui_live_track import (  # the Phase 82 suite's fixtures and readers
    BADGES,
    EMPTY_CELL,
    HEADERS,
    HOSTILE,
    SPEC_ID,
    T0,
    _write_activity_mix,
    _write_corrupt_files,
    dashboard,
    row_of,
    serve,
    snapshot_tile,
    table_rows,
    visible_text,
    write,
    write_many,
    write_running,
)


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """Not created until something is written: "missing" is a state the page shows."""
    return tmp_path / "live_sessions"


# --- Dashboard ----------------------------------------------------------------


def test_dashboard_renders_the_live_track_panel(registry: Path) -> None:
    write(registry)
    write_running(registry, "second", T0 + timedelta(days=1))
    write(
        registry,
        session_id="third",
        status="failed",
        started_at=T0 + timedelta(days=2),
        finished_at=T0 + timedelta(days=2, hours=1),
    )
    page = dashboard(registry)
    heading = re.search(r"<h1\b[^>]*>(.*?)</h1>", page, re.S)
    assert heading and "Live-Track" in visible_text(heading.group(1))
    text = visible_text(page)
    assert "3 Session(s) geladen" in text
    assert f"Registry: {registry}" in text
    assert [row.session_id for row in table_rows(page)] == ["third", "second", SPEC_ID]
    assert "Keine Live-Sessions gefunden." not in text


@pytest.mark.parametrize("layout", ["missing", "empty", "only_corrupt"])
def test_dashboard_empty_state(registry: Path, layout: str) -> None:
    if layout == "empty":
        registry.mkdir()
    elif layout == "only_corrupt":
        _write_corrupt_files(registry)
    text = visible_text(dashboard(registry))
    assert "Keine Live-Sessions gefunden." in text
    assert "Sessions werden nach dem ersten Shadow-/Testnet-Run hier angezeigt." in text
    assert "live-track demo" in text
    assert str(registry) in text
    assert "Session(s) geladen" not in text


@pytest.mark.parametrize(("query", "count"), [("", 10), ("?limit=3", 3), ("?limit=25", 12)])
def test_dashboard_limit_like_the_api(registry: Path, query: str, count: int) -> None:
    newest_first = write_many(registry, 12)
    page = dashboard(registry, f"/{query}")
    assert [row.session_id for row in table_rows(page)] == newest_first[:count]


@pytest.mark.parametrize("value", ["0", "101", "abc"])
def test_dashboard_rejects_bad_limit_like_the_api(registry: Path, value: str) -> None:
    with serve(registry) as client:
        response = client.get(f"/?limit={value}")
    assert response.status_code == 422
    # The form stays, with a German message beside the "Pro Seite" field.
    text = visible_text(response.text)
    assert "Ungültige Filter" in text and "Pro Seite" in text
    assert 'class="field-error" id="error-limit"' in response.text


@pytest.mark.parametrize("url", ["/", "/?limit=2"])
def test_dashboard_json_twin_agrees_with_the_rows(registry: Path, url: str) -> None:
    expected = [*_write_activity_mix(registry), "broken"]  # broken ended first, at 13:00
    write(registry, session_id="broken", status="failed", error="NetworkError: timeout")
    with serve(registry) as client:
        page = client.get(url).text
        link = re.search(
            r'<link\b(?=[^>]*\brel="alternate")(?=[^>]*\btype="application/json")'
            r'[^>]*\bhref="([^"]+)"',
            page,
        )
        assert link, "the page does not advertise its JSON twin"
        twin = client.get(html.unescape(link.group(1)))
    assert twin.status_code == 200
    assert twin.headers["content-type"] == "application/json"
    rows = table_rows(page)
    assert rows
    assert [s["session_id"] for s in twin.json()["sessions"]] == [r.session_id for r in rows]
    assert [BADGES[s["status"]] for s in twin.json()["sessions"]] == [
        r.cell("Status").split()[0] for r in rows
    ]
    assert [r.session_id for r in rows] == expected[: len(rows)]


# --- Snapshot tile --------------------------------------------------------------


def test_snapshot_tile_picks_the_latest_completed_session(registry: Path) -> None:
    write(registry, session_id="older_completed", started_at=T0 - timedelta(days=1))
    write(registry, session_id="latest_completed")
    write(
        registry,
        session_id="newer_failed",
        status="failed",
        started_at=T0 + timedelta(hours=2),
        finished_at=T0 + timedelta(hours=3),
        error="NetworkError: timeout",
    )
    write_running(registry, "newest_running", T0 + timedelta(hours=4))
    tile = snapshot_tile(dashboard(registry))
    assert 'title="latest_completed"' in tile
    assert "Completed" in visible_text(tile)
    for other in ("older_completed", "newer_failed", "newest_running"):
        assert other not in tile


@pytest.mark.parametrize(
    ("mode", "env_name", "symbol", "pnl", "pnl_class"),
    [
        ("shadow", "kraken_futures_testnet", "BTC/USDT", 150.0, "pnl-pos"),
        ("testnet", "bybit_perp_testnet", "ETH/USDT", -42.75, "pnl-neg"),
        ("paper", "paper_broker", "SOL/USDT", 12.5, "pnl-pos"),
        ("live", "kraken_spot", "BTC/EUR", -3.2, "pnl-neg"),
    ],
)
def test_snapshot_tile_shows_the_session(
    registry: Path, mode: str, env_name: str, symbol: str, pnl: float, pnl_class: str
) -> None:
    write(
        registry,
        mode=mode,
        run_type=f"live_session_{mode}",
        env_name=env_name,
        symbol=symbol,
        metrics={"realized_pnl": pnl, "max_drawdown": 0.05, "num_orders": 10},
    )
    tile = snapshot_tile(dashboard(registry))
    text = visible_text(tile)
    assert re.search(rf'class="badge mode-{mode}"', tile)
    assert re.search(r'class="[^"]*\bstatus-completed\b[^"]*">Completed<', tile)
    assert "08.12.2024 12:00 UTC → 08.12.2024 13:00 UTC" in text
    pnl_cell = re.search(rf'<dd class="[^"]*\b{pnl_class}\b[^"]*">([^<]*)</dd>', tile)
    currency = symbol.split("/")[1]
    amount = f"{abs(pnl):.2f}".replace(".", ",")
    assert pnl_cell and pnl_cell.group(1).endswith(f"{amount} {currency}")
    assert "5,00 %" in text
    assert f"{env_name} / {symbol}" in text
    assert "laufend" not in text


@pytest.mark.parametrize(
    ("status", "label"), [("completed", "Completed"), ("failed", "Failed"), ("aborted", "Aborted")]
)
def test_snapshot_tile_shows_the_error_note(registry: Path, status: str, label: str) -> None:
    error = "RiskLimitBreached: daily loss limit of 2.0% reached, trading halted"
    write(registry, status=status, error=error)
    text = visible_text(snapshot_tile(dashboard(registry)))
    assert label in text
    assert error in text


def test_snapshot_tile_without_error_has_no_note(registry: Path) -> None:
    write(registry)
    assert "error-note" not in snapshot_tile(dashboard(registry))


def test_snapshot_tile_falls_back_to_a_running_session(registry: Path) -> None:
    write_running(registry, "only_running", T0)
    tile = snapshot_tile(dashboard(registry))
    text = visible_text(tile)
    assert 'title="only_running"' in tile
    assert "Running" in text
    # Its writer sends no heartbeat: how long it runs, and that liveness is unknown.
    assert re.search(r"08.12.2024 12:00 UTC → läuft seit \d+ d \d+ h · ohne Heartbeat", text)


# --- Sessions table -----------------------------------------------------------


def test_table_has_the_eight_columns(registry: Path) -> None:
    write(registry)
    page = dashboard(registry)
    thead = re.search(r'class="sessions-table">\s*<thead>(.*?)</thead>', page, re.S)
    assert thead
    headers = [visible_text(h) for h in re.findall(r"<th\b[^>]*>(.*?)</th>", thead.group(1), re.S)]
    # The spec's eight first, in order; then what tells bots apart.
    assert headers == [*HEADERS, "Symbol", "Strategie", "Risiko"]
    assert len(row_of(page, SPEC_ID).cells) == 11


@pytest.mark.parametrize(
    "session_id",
    [
        "short_id",
        "x" * 25,
        "x" * 26,
        "session_20251208_120000_shadow_1a2b3c",
    ],
)
def test_table_shortens_long_session_ids(registry: Path, session_id: str) -> None:
    write(registry, session_id=session_id)
    row = row_of(dashboard(registry), session_id)
    shown = {
        "x" * 26: "xxxxxxxx…xxxxxxxxxxxxxxxx",
        # The date and the distinguishing tail survive, the filler "session_" goes.
        "session_20251208_120000_shadow_1a2b3c": "…20251208…shadow_1a2b3c",
    }.get(session_id, session_id)
    assert row.cell("Session") == shown
    assert f'title="{session_id}"' in row.html


@pytest.mark.parametrize(
    ("pnl", "css", "digits"),
    [(150.0, "pnl-pos", "+150,00 USDT"), (-42.75, "pnl-neg", "−42,75 USDT")],
)
def test_table_colours_pnl(registry: Path, pnl: float, css: str, digits: str) -> None:
    write(registry, metrics={"realized_pnl": pnl, "max_drawdown": 0.031, "num_orders": 4})
    row = row_of(dashboard(registry), SPEC_ID)
    assert css in row.cell_class("PnL").split()
    assert row.cell("PnL") == digits
    assert row.cell("Max DD") == "3,10 %"
    assert row.cell("Orders") == "4"


@pytest.mark.parametrize(("status", "badge"), list(BADGES.items()))
def test_table_status_badges(registry: Path, status: str, badge: str) -> None:
    ended = None if status == "started" else T0 + timedelta(hours=1)
    write(registry, status=status, finished_at=ended)
    row = row_of(dashboard(registry), SPEC_ID)
    assert row.cell("Status") == badge
    assert re.search(rf'class="[^"]*\bstatus-{status}\b[^"]*">{badge}<', row.html)


def test_table_running_session_without_heartbeat_says_so(registry: Path) -> None:
    write_running(registry, "running", T0)
    row = row_of(dashboard(registry), "running")
    assert row.cell("Started") == "08.12.2024 12:00 UTC"
    assert re.fullmatch(r"läuft seit \d+ d \d+ h · ohne Heartbeat", row.cell("Ended"))
    assert "stale" not in row.cell("Status")


def test_table_shows_offset_timestamps_in_utc(registry: Path) -> None:
    tokyo = timezone(timedelta(hours=9))
    write(
        registry,
        started_at=datetime(2024, 12, 8, 20, 0, tzinfo=tokyo),
        finished_at=datetime(2024, 12, 8, 23, 30, tzinfo=tokyo),
    )
    row = row_of(dashboard(registry), SPEC_ID)
    assert row.cell("Started") == "08.12.2024 11:00 UTC"
    assert row.cell("Ended") == "08.12.2024 14:30 UTC"


def test_table_empty_cells_show_a_dash_never_none(registry: Path) -> None:
    write(
        registry,
        session_id="crashed",
        status="failed",
        finished_at=None,
        metrics={},
        env_name="",
        symbol="",
        error=None,
    )
    page = dashboard(registry)
    row = row_of(page, "crashed")
    for header in ("Ended", "PnL", "Max DD", "Orders"):
        assert row.cell(header) == EMPTY_CELL, header
    assert "None" not in visible_text(page)
    assert "None" not in row.html


# --- Escaping -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", f"/session/{quote(HOSTILE, safe='')}"])
def test_hostile_text_is_escaped(registry: Path, path: str) -> None:
    write(registry, session_id=HOSTILE, error=HOSTILE, symbol=HOSTILE)
    page = dashboard(registry, path)
    assert "&lt;script&gt;" in page
    assert "<script>alert" not in page
    assert HOSTILE in visible_text(page)
