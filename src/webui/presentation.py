"""Formatting for the HTML pages only: labels, CSS classes, numbers as text.

Nothing here decides what is shown; it only says how. The API returns the raw
values these helpers format.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment

from src.experiments.live_session_registry import utc_instant
from src.webui.live_track import SessionDetail
from src.webui.session_query import KNOWN_MODES, SessionQuery

EMPTY = "–"
ID_SHORT_AT = 25
# A shortened id keeps its start and its end, where the unique suffix usually is.
ID_KEEP_HEAD = 12
ID_KEEP_TAIL = 12

STATUS_BADGES = {
    "completed": ("OK", "Completed"),
    "failed": ("FAIL", "Failed"),
    "aborted": ("ABORT", "Aborted"),
    "started": ("RUN", "Running"),
}


def short_id(session_id: str) -> str:
    """Cut ids over 25 characters in the middle; the full id goes in a tooltip."""
    if len(session_id) <= ID_SHORT_AT:
        return session_id
    return session_id[:ID_KEEP_HEAD] + "…" + session_id[-ID_KEEP_TAIL:]


def path_quote(text: str) -> str:
    """Quote an id for one URL path segment (slashes included)."""
    return quote(text, safe="")


def status_badge(status: str) -> str:
    return STATUS_BADGES.get(status, (status.upper(), status))[0]


def status_label(status: str) -> str:
    return STATUS_BADGES.get(status, (status, status.title()))[1]


def mode_class(mode: str) -> str:
    return f"mode-{mode}" if mode in KNOWN_MODES else "mode-other"


def _is_flat(value: float) -> bool:
    # What rounds to 0.00 is shown as flat: no sign, no colour.
    return round(value, 2) == 0


def pnl_class(value: float | None) -> str:
    if value is None or _is_flat(value):
        return "pnl-flat"
    return "pnl-pos" if value > 0 else "pnl-neg"


def fmt_money(value: float | None) -> str:
    if value is None:
        return EMPTY
    if _is_flat(value):
        return "0.00"
    return f"{value:+,.2f}".replace("-", "−")


def fmt_pct(value: float | None) -> str:
    return EMPTY if value is None else f"{value * 100:.2f} %"


def fmt_count(value: int | None) -> str:
    return EMPTY if value is None else f"{value:,}"


def fmt_time(value: datetime | None) -> str:
    """Show every timestamp in UTC, whatever offset its writer used."""
    if value is None:
        return EMPTY
    return utc_instant(value).strftime("%Y-%m-%d %H:%M:%S")


def fmt_iso(value: datetime | None) -> str:
    return "" if value is None else utc_instant(value).isoformat()


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return EMPTY
    total = int(seconds)
    sign = "−" if total < 0 else ""
    hours, rest = divmod(abs(total), 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 24:
        return f"{sign}{hours // 24} d {hours % 24} h"
    if hours:
        return f"{sign}{hours} h {minutes:02d} min"
    return f"{sign}{minutes} min {secs:02d} s"


def session_duration(session: SessionDetail, now: datetime | None = None) -> str:
    """Duration of an ended session; for a running one the time since its start."""
    if session.duration_seconds is not None:
        return fmt_duration(session.duration_seconds)
    if session.status != "started":
        return EMPTY
    moment = now or datetime.now(timezone.utc)
    elapsed = (utc_instant(moment) - utc_instant(session.started_at)).total_seconds()
    return f"{fmt_duration(max(elapsed, 0.0))} (laufend)"


def fmt_value(value: Any) -> str:
    """Render a config or metrics value as compact text; nested values as JSON."""
    if value is None:
        return EMPTY
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:,.6g}"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return str(value)


def active_filters(query: SessionQuery) -> int:
    """How many filters narrow the view (each of mode, status, ... counts once)."""
    narrowing = (
        query.mode,
        query.status,
        query.symbol,
        query.environment,
        query.since,
        query.until,
        query.range,
        query.host,
    )
    return sum(1 for value in narrowing if value)


def query_url(path: str, query: SessionQuery, **changes: Any) -> str:
    """The same view with some parameters changed, for sort links and paging."""
    params = query.model_dump(exclude_defaults=True) | changes
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None or value == () or (key == "page" and value == 1):
            continue
        if key in SessionQuery.model_fields and value == SessionQuery.model_fields[key].default:
            continue
        values = value if isinstance(value, (tuple, list)) else [value]
        pairs.extend((key, v.isoformat() if isinstance(v, datetime) else str(v)) for v in values)
    return f"{path}?{urlencode(pairs)}" if pairs else path


def datetime_local(value: datetime | None) -> str:
    """Value for an <input type=datetime-local> (UTC, minute precision)."""
    if value is None:
        return ""
    return utc_instant(value).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M")


def install(env: Environment) -> None:
    """Register the filters and globals the templates use."""
    env.filters.update(
        short_id=short_id,
        path_quote=path_quote,
        status_badge=status_badge,
        status_label=status_label,
        mode_class=mode_class,
        pnl_class=pnl_class,
        money=fmt_money,
        pct=fmt_pct,
        count=fmt_count,
        time=fmt_time,
        iso=fmt_iso,
        duration=fmt_duration,
        value=fmt_value,
        session_duration=session_duration,
        datetime_local=datetime_local,
    )
    env.globals.update(
        query_url=query_url,
        active_filters=active_filters,
        known_modes=KNOWN_MODES,
        empty=EMPTY,
    )
