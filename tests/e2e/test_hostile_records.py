"""A registry full of hostile records renders as inert text in a real browser."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from tests.e2e._support import TRADER_CONTEXT, PageProblems
from tests.support import LiveServer

pytestmark = pytest.mark.browser

Screenshot = Callable[[Page, str], Path]

NOW = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
LONG_ID = "L" * 10_000
HOSTILE = [
    {"session_id": "<script>alert('id')</script>", "error": "<img src=x onerror=alert(1)>",
     "symbol": '"><svg onload=alert(2)>'},
    {"session_id": "javascript:alert(3)", "config": {"report_path": "javascript:alert(4)"}},
    {"session_id": 'q" onmouseover="alert(5)', "env_name": "' onfocus='alert(6)' x='"},
    {"session_id": "\u202egnp.exe_rtl", "symbol": "BTC/\u202eTDSU"},
    {"session_id": LONG_ID, "error": "E" * 5000},
    {"session_id": "nul\u0000id", "error": "a\u0000b", "env_name": "kr\u0000aken"},
    {"session_id": "🚀moon_🌕", "mode": "</span><script>alert(7)</script>", "symbol": "🐸/USDT"},
]  # fmt: skip


def write_hostile(registry: Path, n: int, fields: dict[str, object]) -> None:
    record: dict[str, object] = {
        "session_id": f"hostile_{n}",
        "run_id": None,
        "run_type": "live_session_live",
        "mode": "live",
        "env_name": "kraken_spot",
        "symbol": "BTC/USDT",
        "status": ("completed", "failed", "started")[n % 3],
        "started_at": (NOW - timedelta(hours=n + 1)).isoformat(),
        "finished_at": None if n % 3 == 2 else (NOW - timedelta(hours=n)).isoformat(),
        "metrics": {"realized_pnl": -1.5 * n, "max_drawdown": 0.01 * n, "num_orders": n},
        "cli_args": ["python", "<script>alert(8)</script>"],
    }
    record.update(fields)
    (registry / f"hostile_{n}.json").write_text(json.dumps(record), encoding="utf-8")


def open_page(browser: Browser, problems: PageProblems, dialogs: list[str]) -> Page:
    page = browser.new_page(**TRADER_CONTEXT, viewport={"width": 1366, "height": 900})
    problems.watch(page)

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return page


def assert_layout_intact(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"page scrolls sideways: {width}px"  # type: ignore[index]


def test_hostile_records_render_as_inert_text(
    browser: Browser,
    live_server: Callable[..., LiveServer],
    problems: PageProblems,
    keep_screenshot: Screenshot,
) -> None:
    server = live_server(count=0)
    for n, fields in enumerate(HOSTILE):
        write_hostile(server.registry, n, fields)
    dialogs: list[str] = []
    page = open_page(browser, problems, dialogs)
    page.goto(server.url("/"))
    rows = page.locator("tbody tr.session-row")
    expect(rows).to_have_count(len(HOSTILE), timeout=5000)

    # Every hostile id is shown literally (full id in the tooltip), nothing executes.
    for fields in HOSTILE:
        session_id = str(fields["session_id"]).replace("\u0000", "\ufffd")
        assert (
            page.locator(
                f".sessions-table tbody a[title={json.dumps(session_id, ensure_ascii=False)}]"
            ).count()
            == 1
        ), session_id
    assert page.locator("script:not([src])").count() == 0
    assert page.get_by_text("<img src=x onerror=alert(1)>").count() >= 1 or (
        page.locator("[title='<img src=x onerror=alert(1)>']").count() >= 1
    )
    for button in page.locator("tbody .expand").all():  # server partials, swapped in
        button.click()
    expect(page.locator("tr.detail-row")).to_have_count(len(HOSTILE), timeout=5000)
    page.mouse.move(400, 400)
    page.wait_for_timeout(300)
    assert_layout_intact(page)
    keep_screenshot(page, "hostile-records.png")

    for fields in HOSTILE:
        page.goto(server.url("/session/" + quote(str(fields["session_id"]), safe="")))
        expect(page.locator("h1.detail-title")).to_be_visible()
        assert_layout_intact(page)
    assert dialogs == []
    assert problems.console_errors == []
    assert problems.page_errors == []


def test_hostile_session_ending_while_open_is_announced_as_text(
    browser: Browser, live_server: Callable[..., LiveServer], problems: PageProblems
) -> None:
    server = live_server(count=0)
    dialogs: list[str] = []
    page = open_page(browser, problems, dialogs)
    page.goto(server.url("/"))
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live", timeout=5000)
    # Ended just now: only recent ends are announced (issue 12, item 9).
    just_now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0).isoformat()
    write_hostile(
        server.registry, 3, {"session_id": "<img src=y onerror=alert(9)>", "finished_at": just_now}
    )
    toast = page.locator(".toast")
    expect(toast.first).to_contain_text("<img src=y onerror=alert(9)>", timeout=5000)
    assert dialogs == []
    assert problems.page_errors == []
