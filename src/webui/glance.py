"""Template helpers for the at-a-glance parts: risk words, form labels, nested values.

Kept apart from ``presentation`` (numbers and dates) so each has one owner;
``install`` adds these to the same Jinja environment.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment

from src.webui.filter_errors import field_label
from src.webui.vocabulary import RISK_WORDS

# Deeper than this, a nested config is shown as text rather than as tables.
NESTING_SHOWN = 6


def risk_word(risk: str | None) -> str:
    return RISK_WORDS.get(risk or "", "")


def is_mapping(value: Any) -> bool:
    return isinstance(value, dict)


def is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def bar_percent(ratio: float | None) -> float:
    """Width of a limit bar in percent: full at the limit, capped beyond it."""
    if ratio is None:
        return 0.0
    return round(max(0.0, min(abs(ratio), 1.0)) * 100, 1)


def install(env: Environment) -> None:
    env.globals.update(
        risk_word=risk_word,
        field_label=field_label,
        nesting_shown=NESTING_SHOWN,
    )
    env.tests.update(mapping_value=is_mapping, sequence_value=is_sequence)
    env.filters.update(bar_percent=bar_percent)
