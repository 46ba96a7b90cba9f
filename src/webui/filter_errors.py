"""A bad filter keeps the trader on the page: German messages per field, and the rest kept.

When a query string does not validate, the dashboard shows the filter form
with each message next to its field and the panel for the parameters that
were fine, instead of an error page.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlencode

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from src.webui.session_query import SessionQuery

FORM = "form"  # errors about the combination of fields, shown above the form
_REPEATABLE = frozenset({"mode", "status", "risk"})
_FIELD_NAMES = {
    "limit": "Pro Seite",
    "page": "Seite",
    "mode": "Mode",
    "status": "Status",
    "symbol": "Symbol",
    "environment": "Environment",
    "risk": "Risiko",
    "since": "Von",
    "until": "Bis",
    "range": "Zeitraum",
    "sort": "Sortierung",
    "order": "Reihenfolge",
}


def _german(error: ErrorDetails | dict[str, Any]) -> str:
    kind = str(error.get("type", ""))
    context = error.get("ctx") or {}
    if kind in ("int_parsing", "int_from_float"):
        return "Bitte eine ganze Zahl eingeben."
    if kind in ("greater_than_equal", "greater_than"):
        return f"Muss mindestens {context.get('ge', context.get('gt', ''))} sein."
    if kind in ("less_than_equal", "less_than"):
        return f"Darf höchstens {context.get('le', context.get('lt', ''))} sein."
    if kind == "string_too_long":
        return f"Höchstens {context.get('max_length', '')} Zeichen."
    if kind.startswith("datetime") or kind.startswith("date_"):
        return "Kein gültiger Zeitpunkt (Beispiel: 2026-11-25T08:00)."
    if kind in ("literal_error", "enum"):
        return f"Erlaubt: {context.get('expected', '')}."
    if kind == "extra_forbidden":
        return "Unbekannter Parameter."
    if kind == "value_error":
        # Our validators word their messages for the trader (session_query.py).
        text = str(error.get("msg", "")).removeprefix("Value error, ")
        return "„Von“ liegt nach „Bis“." if "since" in text else text or "Ungültiger Wert."
    return "Ungültiger Wert."


def field_errors(errors: Iterable[ErrorDetails | dict[str, Any]]) -> dict[str, str]:
    """One German message per form field; ``FORM`` for errors of no single field."""
    messages: dict[str, str] = {}
    for error in errors:
        location = [part for part in error.get("loc", ()) if part != "query"]
        field = str(location[0]) if location and isinstance(location[0], str) else FORM
        if field == FORM and "since" in str(error.get("msg", "")):
            field = "until"  # the bounds are out of order: say it beside the second
        messages.setdefault(field, _german(error))
    return messages


def field_label(field: str) -> str:
    return _FIELD_NAMES.get(field, field)


def raw_params(items: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The query string as SessionQuery reads it: lists for repeatable fields."""
    params: dict[str, Any] = {}
    for key, value in items:
        if key in _REPEATABLE:
            params.setdefault(key, []).append(value)
        else:
            params[key] = value
    return params


def salvage_query(params: dict[str, Any]) -> tuple[SessionQuery, dict[str, str]]:
    """The query without its bad fields, and a message for each field that was dropped."""
    messages: dict[str, str] = {}
    remaining = dict(params)
    for _ in range(len(params) + 2):
        try:
            return SessionQuery.model_validate(remaining), messages
        except ValidationError as exc:
            found = field_errors(exc.errors())
            for field, message in found.items():
                messages.setdefault(field, message)
            if "until" in found:  # out of order: neither bound can be trusted
                remaining.pop("since", None)
            for field in found:
                remaining.pop(field, None)
    return SessionQuery(), messages


def without_empty(items: Sequence[tuple[str, str]]) -> str | None:
    """The query string without empty parameters, or None when none was empty."""
    kept = [(key, value) for key, value in items if value.strip() != ""]
    if len(kept) == len(items):
        return None
    return urlencode(kept)
