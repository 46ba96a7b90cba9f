"""Formatting for the HTML pages only: labels, CSS classes, numbers as text.

Nothing here decides what is shown; it only says how. The API returns the raw
values these helpers format.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment

from src.experiments.live_session_record import utc_instant
from src.experiments.session_head import currency_decimals
from src.webui.formatting import (
    EMPTY,
    currency_text,
    fmt_compact,
    fmt_count,
    fmt_date,
    fmt_duration,
    fmt_money,
    fmt_pct,
    fmt_ratio,
    fmt_time,
    german_number,
)
from src.webui.live_track import LiveSessionDetail, SessionRow
from src.webui.session_query import SessionQuery
from src.webui.vocabulary import (
    ENDED_WITHOUT_ERROR,
    GROUP_LABELS,
    KNOWN_MODES,
    NO_GROUP_VALUE,
    NO_HEARTBEAT,
    PROFIT_FACTOR,
    STALE,
    STATUS_ORDER,
    UNKNOWN_CURRENCY,
    WIN_RATE,
    mode_class,
    money_word,
    status_badge,
    status_label,
    vocabulary_json,
)

ID_SHORT_AT = 25
# Without a date in the id, keep a little of the start and more of the end,
# where the unique suffix (a hash, a counter) usually is.
ID_KEEP_HEAD = 8
ID_KEEP_TAIL = 16
ID_DATE = re.compile(r"(?<!\d)20\d{6}(?!\d)")
ID_DATE_TAIL = 15


def short_id(session_id: str) -> str:
    """Ids over 25 characters keep what tells them apart: the date and the tail.

    ``session_20251208_120000_shadow_1a2b3c`` -> ``…20251208…shadow_1a2b3c``; the
    full id goes in a tooltip.
    """
    if len(session_id) <= ID_SHORT_AT:
        return session_id
    date = ID_DATE.search(session_id)
    if date is None:
        return session_id[:ID_KEEP_HEAD] + "…" + session_id[-ID_KEEP_TAIL:]
    if len(session_id) - date.start() < ID_SHORT_AT:
        return "…" + session_id[date.start() :]
    tail = session_id[-ID_DATE_TAIL:]
    if date.end() > len(session_id) - ID_DATE_TAIL:  # the date is in the tail itself
        return session_id[:ID_KEEP_HEAD] + "…" + session_id[-ID_KEEP_TAIL:]
    cut = tail.find("_")
    if 0 <= cut < 6:  # start the tail at a word, not in the middle of one
        tail = tail[cut + 1 :]
    return "…" + date.group(0) + "…" + tail


def path_quote(text: str) -> str:
    """Quote an id for one URL path segment (slashes included)."""
    return quote(text, safe="")


def _is_flat(value: float, currency: str | None = None) -> bool:
    # What rounds to zero in the currency's decimals is flat: no sign, no colour.
    return round(value, currency_decimals(currency)) == 0


def pnl_class(value: float | None, currency: str | None = None) -> str:
    """Colour by sign, at the currency's decimals (a 0,0014 BTC loss is red)."""
    if value is None or _is_flat(value, currency):
        return "pnl-flat"
    return "pnl-pos" if value > 0 else "pnl-neg"


def session_duration(session: LiveSessionDetail, now: datetime | None = None) -> str:
    """Duration of an ended session; for a running one the time since its start."""
    if session.duration_seconds is not None:
        return fmt_duration(session.duration_seconds)
    if session.status != "started":
        return EMPTY
    moment = now or datetime.now(timezone.utc)
    elapsed = (utc_instant(moment) - utc_instant(session.started_at)).total_seconds()
    return f"{fmt_duration(max(elapsed, 0.0))} (laufend)"


def liveness_parts(session: SessionRow, now: datetime) -> list[tuple[str, str]]:
    """How long a running session has run, and what is known of its heartbeat.

    ``(words, duration)`` pairs, so a narrow table cell may break the line
    between words but never inside a duration (``20 min``).
    """
    elapsed = (utc_instant(now) - utc_instant(session.started_at)).total_seconds()
    parts = [("läuft seit", fmt_duration(max(elapsed, 0.0)))]
    if session.heartbeat_at is None:
        return [*parts, (NO_HEARTBEAT, "")]
    age = (utc_instant(now) - utc_instant(session.heartbeat_at)).total_seconds()
    return [*parts, ("Heartbeat vor", fmt_duration(max(age, 0.0)))]


def liveness(session: SessionRow, now: datetime) -> str:
    """``läuft seit 20 min · Heartbeat vor 51 s`` (or ``· ohne Heartbeat``)."""
    return " · ".join(
        f"{words} {duration}".strip() for words, duration in liveness_parts(session, now)
    )


_NON_FINITE = {"NaN": "NaN", "Infinity": "∞", "-Infinity": "−∞"}


def fmt_value(value: Any) -> str:
    """Render a config or metrics value as compact text; nested values as JSON."""
    if value is None:
        return EMPTY
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _german_general(value)
    if isinstance(value, str) and value in _NON_FINITE:  # how the detail model carries them
        return _NON_FINITE[value]
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return str(value)


def _german_general(value: float) -> str:
    """Every digit the writer stored, German separators: ``0,0025``, ``25.000``,
    ``−1.466.206,09``; only what Python itself writes with an exponent keeps it
    (``1,5e-07``), since a page of zeros would hide the number."""
    text = repr(value)
    if "e" in text or "n" in text:  # exponent, nan, inf
        text = f"{value:,.6g}"
        return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".").replace("-", "−")
    whole, _, fraction = text.lstrip("-").partition(".")
    grouped = f"{int(whole):,}".replace(",", ".")
    sign = "−" if value < 0 else ""
    return f"{sign}{grouped},{fraction}" if fraction.strip("0") else f"{sign}{grouped}"


def fmt_iso(value: datetime | None) -> str:
    return "" if value is None else utc_instant(value).isoformat()


def group_link(query: SessionQuery, group_by: str, key: str) -> str | None:
    """The dashboard filtered to one group of the "Nach Strategie" table."""
    if not key:
        return None  # sessions without a strategy (symbol, ...) cannot be filtered to
    return query_url("/", query, page=1, **{group_by: key})


def active_filters(query: SessionQuery) -> int:
    """How many filters narrow the view (each of mode, status, ... counts once)."""
    narrowing = (
        query.mode,
        query.status,
        query.symbol,
        query.environment,
        query.strategy,
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


def install(env: Environment, real_money_modes: frozenset[str]) -> None:
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
        ratio=fmt_ratio,
        compact=fmt_compact,
        number=german_number,
        currency=currency_text,
        money_word=money_word,
        time=fmt_time,
        date=fmt_date,
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
        status_order=STATUS_ORDER,
        real_money_modes=real_money_modes,
        vocabulary_json=vocabulary_json(real_money_modes),
        liveness=liveness,
        liveness_parts=liveness_parts,
        group_link=group_link,
        empty=EMPTY,
        stale_word=STALE,
        unknown_currency=UNKNOWN_CURRENCY,
        words={
            "ended_without_error": ENDED_WITHOUT_ERROR,
            "win_rate": WIN_RATE,
            "profit_factor": PROFIT_FACTOR,
            "group_labels": GROUP_LABELS,
            "no_group_value": NO_GROUP_VALUE,
        },
    )
