"""Reports for humans: one session or many, as Markdown or a standalone HTML page.

The original Peak_Trade report script imports these renderers and people read
what they write, so every line the original wrote is still written
(``docs/registry-format.md``). ``live-track report`` adds totals per currency
on top through ``totals``; nothing the original showed is dropped.
"""

from __future__ import annotations

import html
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from src.experiments.session_head import currency_decimals

if TYPE_CHECKING:
    from src.experiments.live_session_record import LiveSessionRecord

EMPTY = "-"
RND_TIER = "r_and_d"
RND_WARNING = "⚠ R&D-Strategie: nur für Forschung, nicht für Live-Trading freigegeben."


@dataclass(frozen=True)
class PnlTotal:
    """Realized PnL of the sessions of one kind of money in one currency."""

    money: str  # "Echtgeld" or "Simuliert"
    currency: str
    realized_pnl: float
    sessions: int


def _pretty_json(value: Any) -> str:
    # NaN stays NaN, as the writer wrote it; anything exotic is shown as text.
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment is not None else EMPTY


def _fields(record: LiveSessionRecord) -> list[tuple[str, str]]:
    fields = [
        ("Run-Type", record.run_type),
        ("Mode", record.mode or EMPTY),
        ("Status", record.status or EMPTY),
        ("Symbol", record.symbol or EMPTY),
        ("Environment", record.env_name or EMPTY),
        ("Started", _iso(record.started_at)),
        ("Finished", _iso(record.finished_at)),
    ]
    if record.strategy_tier:
        fields.append(("Strategy Tier", record.strategy_tier))
    return fields


def _money(value: float, currency: str) -> str:
    return f"{value:+,.{currency_decimals(currency)}f}"


# --- Markdown -----------------------------------------------------------------


def _md_code(text: str) -> str:
    # A backtick inside the value would end the code span early.
    return "`" + text.replace("`", "'") + "`"


def render_session_markdown(record: LiveSessionRecord) -> str:
    """One session as Markdown: the fields, the error, config, metrics, command line."""
    lines = [f"# Live-Session {record.session_id}", ""]
    for label, value in _fields(record):
        lines += [f"**{label}:** {_md_code(value)}", ""]
    if record.strategy_tier == RND_TIER:
        lines += [f"> {RND_WARNING}", ""]
    if record.error:
        lines += [f"**Error:** {_md_code(record.error)}", ""]
    lines += ["## Config", "", "```json", _pretty_json(record.config), "```", ""]
    lines += ["## Metrics", "", "```json", _pretty_json(record.metrics), "```", ""]
    if record.cli_args:
        lines += ["## CLI-Aufruf", "", "```bash", shlex.join(record.cli_args), "```", ""]
    return "\n".join(lines)


def _totals_markdown(totals: Sequence[PnlTotal]) -> list[str]:
    lines = ["## Summen", "", "| Geld | Währung | Sessions | Realized PnL |", "|---|---|---:|---:|"]
    for total in totals:
        currency = total.currency or "ohne Währung"
        amount = f"{_money(total.realized_pnl, total.currency)} {total.currency}".rstrip()
        lines.append(f"| {total.money} | {currency} | {total.sessions} | {amount} |")
    return [*lines, ""]


def render_sessions_markdown(
    records: Sequence[LiveSessionRecord], totals: Sequence[PnlTotal] | None = None
) -> str:
    """Many sessions as one Markdown document, each block followed by ``---``."""
    lines = ["# Live-Sessions", ""]
    if not records:
        return "\n".join([*lines, "Keine Sessions gefunden.", ""])
    if totals:
        lines += _totals_markdown(totals)
    for record in records:
        lines += [render_session_markdown(record), "---", ""]
    return "\n".join(lines)


# --- HTML ---------------------------------------------------------------------

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;"
    "color:#1f2933}pre{background:#f3f4f6;padding:.75rem;overflow:auto}"
    "table{border-collapse:collapse}td,th{border:1px solid #d1d5db;padding:.3rem .6rem;"
    "text-align:left}.num{text-align:right}.error{color:#b91c1c}.warning{color:#b45309}"
)


def _document(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="de">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n{body}</body>\n</html>\n"
    )


def _session_html_body(record: LiveSessionRecord, heading: str = "h1") -> str:
    e = html.escape
    sub = "h2" if heading == "h1" else "h3"
    parts = [f"<{heading}>Live-Session {e(record.session_id)}</{heading}>\n<ul>\n"]
    parts += [
        f"<li><strong>{e(label)}:</strong> <code>{e(value)}</code></li>\n"
        for label, value in _fields(record)
    ]
    parts.append("</ul>\n")
    if record.strategy_tier == RND_TIER:
        parts.append(f'<p class="warning">{e(RND_WARNING)}</p>\n')
    if record.error:
        error = e(record.error)
        parts.append(f'<p class="error"><strong>Error:</strong> <code>{error}</code></p>\n')
    parts.append(f"<{sub}>Config</{sub}>\n<pre>{e(_pretty_json(record.config))}</pre>\n")
    parts.append(f"<{sub}>Metrics</{sub}>\n<pre>{e(_pretty_json(record.metrics))}</pre>\n")
    if record.cli_args:
        parts.append(f"<{sub}>CLI-Aufruf</{sub}>\n<pre>{e(shlex.join(record.cli_args))}</pre>\n")
    return "".join(parts)


def render_session_html(record: LiveSessionRecord) -> str:
    """One session as a complete HTML document; every value escaped."""
    return _document(f"Live-Session {record.session_id}", _session_html_body(record))


def _totals_html(totals: Sequence[PnlTotal]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(t.money)}</td><td>{e(t.currency or 'ohne Währung')}</td>"
        f'<td class="num">{t.sessions}</td>'
        f'<td class="num">{e(_money(t.realized_pnl, t.currency))} {e(t.currency)}</td></tr>\n'
        for t in totals
    )
    return (
        "<h2>Summen</h2>\n<table>\n<tr><th>Geld</th><th>Währung</th><th>Sessions</th>"
        f"<th>Realized PnL</th></tr>\n{rows}</table>\n"
    )


def render_sessions_html(
    records: Sequence[LiveSessionRecord], totals: Sequence[PnlTotal] | None = None
) -> str:
    """Many sessions as a table page; with ``totals`` (ours) the sums come first."""
    e = html.escape
    body = [f"<h1>Live-Sessions ({len(records)} Sessions)</h1>\n"]
    if not records:
        body.append("<p>Keine Sessions gefunden.</p>\n")
        return _document("Live-Sessions", "".join(body))
    if totals:
        body.append(_totals_html(totals))
    body.append(
        "<table>\n<tr><th>Session-ID</th><th>Run-Type</th><th>Mode</th><th>Status</th>"
        "<th>Symbol</th><th>Started</th></tr>\n"
    )
    body += [
        f"<tr><td>{e(r.session_id)}</td><td>{e(r.run_type)}</td><td>{e(r.mode or EMPTY)}</td>"
        f"<td>{e(r.status or EMPTY)}</td><td>{e(r.symbol or EMPTY)}</td>"
        f"<td>{e(_iso(r.started_at))}</td></tr>\n"
        for r in records
    ]
    body.append("</table>\n")
    return _document("Live-Sessions", "".join(body))
