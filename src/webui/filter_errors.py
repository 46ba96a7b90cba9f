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

from src.webui.formatting import error_field, german_problem
from src.webui.session_query import SessionQuery
from src.webui.vocabulary import FIELD_LABELS

FORM = "form"  # errors about the combination of fields, shown above the form
_REPEATABLE = frozenset({"mode", "status", "risk"})


def field_errors(errors: Iterable[ErrorDetails | dict[str, Any]]) -> dict[str, str]:
    """One German message per form field; ``FORM`` for errors of no single field."""
    messages: dict[str, str] = {}
    for error in errors:
        location = tuple(error.get("loc", ()))
        # SessionQuery's own errors start with the field; FastAPI's with "query".
        field = error_field(location if location[:1] == ("query",) else ("query", *location))
        if not field:
            # The bounds are out of order: say it beside the second.
            field = "until" if "since" in str(error.get("msg", "")) else FORM
        messages.setdefault(field, german_problem(error))
    return messages


def field_label(field: str) -> str:
    return FIELD_LABELS.get(field, field)


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
