"""Numbers, amounts, times and durations as German text, formatted in one place.

Every page, chart and toast formats through these functions, so an amount
reads the same everywhere: ``1.466.206,09 USDT``, ``79,99 %``,
``25.11.2026 03:48``, ``3 h 12 min``. The JSON API never uses them; it keeps
ISO timestamps and plain numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from src.experiments.live_session_record import utc_instant
from src.experiments.session_head import currency_decimals
from src.webui.vocabulary import FIELD_LABELS, UNKNOWN_CURRENCY_MARK

EMPTY = "–"
MINUS = "−"  # a real minus sign: as wide as the plus, never broken off its number

# Coins quoted as a currency need more than cents to show a change.
_COMPACT_UNITS = ((1e9, "Mrd."), (1e6, "Mio."), (1e3, "Tsd."))


def german_number(value: float, decimals: int = 2, sign: bool = False) -> str:
    """``1466206.094`` -> ``1.466.206,09``; with ``sign`` a leading ``+`` or ``−``."""
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("∞" if value > 0 else f"{MINUS}∞")
    text = f"{abs(value):,.{decimals}f}".replace(",", "\x00").replace(".", ",")
    text = text.replace("\x00", ".")
    if round(value, decimals) == 0:
        return text
    if value < 0:
        return MINUS + text
    return "+" + text if sign else text


def currency_text(currency: str) -> str:
    """The currency as shown beside an amount; an unknown one says so."""
    return currency or UNKNOWN_CURRENCY_MARK


def fmt_money(value: float | None, currency: str | None = None) -> str:
    """A signed amount with its currency: ``+1.466.206,09 USDT``.

    ``currency`` None means the caller shows the currency elsewhere (a column
    header, a legend); "" means the record names none and is shown as unknown.
    """
    if value is None:
        return EMPTY
    amount = german_number(value, currency_decimals(currency), sign=True)
    return amount if currency is None else f"{amount} {currency_text(currency)}"


def fmt_pct(value: float | None, decimals: int = 2) -> str:
    """A fraction as percent: ``0.7999`` -> ``79,99 %``."""
    return EMPTY if value is None else f"{german_number(value * 100, decimals)} %"


def fmt_count(value: int | None) -> str:
    """``20000`` -> ``20.000``."""
    return EMPTY if value is None else german_number(value, 0)


def fmt_ratio(value: float | None) -> str:
    """A plain ratio such as a profit factor: ``1,85``."""
    return EMPTY if value is None else german_number(value, 2)


def fmt_compact(value: float, step: float | None = None, most: int = 4) -> str:
    """Short axis text: ``1,5 Mio.``, ``250 Tsd.``, ``−12,5``.

    ``step`` is the axis step: the text keeps as many decimals as neighbouring
    ticks need to differ, up to ``most`` below a thousand (a BTC axis needs
    six: ``0,000025``).
    """
    if value == 0:
        return "0"
    size = abs(value)
    for limit, unit in _COMPACT_UNITS:
        if size >= limit:
            scaled = value / limit
            return f"{german_number(scaled, _decimals_for((step or size) / limit))} {unit}"
    return german_number(value, _decimals_for(step or size, most))


def _decimals_for(step: float, most: int = 4) -> int:
    """Enough decimals that ``step`` shows without rounding (at most ``most``)."""
    return next(
        (d for d in range(most + 1) if abs(round(step, d) - step) <= 1e-9 * abs(step)), most
    )


def fmt_time(value: datetime | None) -> str:
    """``25.11.2026 03:48`` in UTC, whatever offset its writer used."""
    if value is None:
        return EMPTY
    return utc_instant(value).strftime("%d.%m.%Y %H:%M")


def fmt_date(value: datetime) -> str:
    """``25.11.2026``."""
    return utc_instant(value).strftime("%d.%m.%Y")


def fmt_duration(seconds: float | None) -> str:
    """``3 h 12 min``, ``2 d 4 h``, ``12 min``, ``45 s``: the two largest units.

    Seconds count only under a minute: "läuft seit 20 min · Heartbeat vor 51 s"
    fits a table cell, and nothing a trader decides on hangs on the seconds of
    a twenty-minute run (the stale limit is minutes).
    """
    if seconds is None:
        return EMPTY
    total = int(seconds)
    sign = MINUS if total < 0 else ""
    hours, rest = divmod(abs(total), 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 24:
        return f"{sign}{hours // 24} d {hours % 24} h"
    if hours:
        return f"{sign}{hours} h {minutes} min"
    if minutes:
        return f"{sign}{minutes} min"
    return f"{sign}{secs} s"


# --- Validation messages ------------------------------------------------------

_MESSAGES = {
    "int_parsing": "Bitte eine ganze Zahl angeben.",
    "int_from_float": "Bitte eine ganze Zahl angeben.",
    "greater_than_equal": "Der Wert muss mindestens {ge} sein.",
    "less_than_equal": "Der Wert darf höchstens {le} sein.",
    "string_too_long": "Höchstens {max_length} Zeichen.",
    "datetime_from_date_parsing": "Bitte ein Datum mit Uhrzeit angeben (z. B. 2026-11-25T03:48).",
    "datetime_parsing": "Bitte ein Datum mit Uhrzeit angeben (z. B. 2026-11-25T03:48).",
    "datetime_type": "Bitte ein Datum mit Uhrzeit angeben (z. B. 2026-11-25T03:48).",
    "literal_error": "Erlaubt sind: {expected}.",
    "extra_forbidden": "Unbekannter Parameter.",
    "missing": "Angabe fehlt.",
}
_VALUE_ERRORS = {
    "'since' must not be after 'until'": "„Von“ darf nicht nach „Bis“ liegen.",
}


def german_problem(error: Mapping[str, Any]) -> str:
    """One pydantic error as a German sentence a trader understands."""
    kind = str(error.get("type", ""))
    context = dict(error.get("ctx") or {})
    if kind == "value_error":
        message = str(context.get("error", error.get("msg", "")))
        # Our validators (session_query.py) word their messages for the trader.
        return _VALUE_ERRORS.get(message, message or "Ungültiger Wert.")
    template = _MESSAGES.get(kind)
    if template is None:
        return f"Ungültiger Wert ({error.get('msg', kind)})."
    if "expected" in context:
        context["expected"] = str(context["expected"]).replace(" or ", " oder ")
    try:
        return template.format(**context)
    except (KeyError, IndexError):
        return template


def error_field(location: Sequence[Any]) -> str:
    """The query parameter an error is about ("" for the query as a whole)."""
    # FastAPI locations read ("query", "since") or ("query", "mode", 0).
    parts = [part for part in location[1:] if isinstance(part, str)]
    return parts[0] if parts else ""


def german_problems(errors: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Pydantic errors as ``{query parameter: German message}``; "" is the whole query.

    The filter form shows each message beside its field; the error page lists them.
    """
    problems: dict[str, str] = {}
    for error in errors:
        field = error_field(tuple(error.get("loc", ())))
        message = german_problem(error)
        problems[field] = f"{problems[field]} {message}" if field in problems else message
    return problems


def problems_text(problems: Mapping[str, str]) -> str:
    """``Von: Bitte ein Datum ...; Pro Seite: ...`` for the error page."""
    return "; ".join(
        f"{FIELD_LABELS.get(field, field) if field else 'Anfrage'}: {message}"
        for field, message in problems.items()
    )
