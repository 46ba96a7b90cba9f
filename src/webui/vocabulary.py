"""The words of the dashboard, defined once: statuses, modes, real money.

Python, the templates (through the Jinja globals) and the page script
(through a JSON ``data-`` attribute the server renders) all read these, so a
new mode or a renamed label is one line here, not six across the code.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Literal, NamedTuple, get_args

SessionStatus = Literal["started", "completed", "failed", "aborted"]
SESSION_STATUSES: tuple[SessionStatus, ...] = get_args(SessionStatus)


class StatusWord(NamedTuple):
    badge: str  # the table's short badge (spec: OK, FAIL, ABORT, RUN)
    label: str  # the tile's word (spec: Completed, Failed, Aborted, Running)


STATUS_WORDS: dict[str, StatusWord] = {
    "completed": StatusWord("OK", "Completed"),
    "failed": StatusWord("FAIL", "Failed"),
    "aborted": StatusWord("ABORT", "Aborted"),
    "started": StatusWord("RUN", "Running"),
}
# The order the filter and the stats strip list them in.
STATUS_ORDER: tuple[SessionStatus, ...] = ("completed", "failed", "aborted", "started")

# Modes with a colour of their own (spec: shadow purple, testnet amber, paper sky,
# live rose); any other mode is shown neutrally.
KNOWN_MODES = ("shadow", "testnet", "paper", "live", "bounded_pilot")
DEFAULT_REAL_MONEY_MODES = ("live", "bounded_pilot")

REAL_MONEY = "Echtgeld"
SIMULATED_MONEY = "Simuliert"
NO_HEARTBEAT = "ohne Heartbeat"
STALE = "veraltet"  # a running session whose heartbeats stopped

# Amounts always carry their currency; a record that names none is shown as such.
UNKNOWN_CURRENCY_MARK = "¤"  # the generic currency sign, with a tooltip
UNKNOWN_CURRENCY = "Währung unbekannt"

# What the stats strip and the API call "completed" when counting: not profit.
ENDED_WITHOUT_ERROR = "Ohne Fehler beendet"
WIN_RATE = "Gewinnquote"
PROFIT_FACTOR = "Profit-Faktor"

# How the "Nach Strategie" table can group (query parameter ``group``).
GROUP_LABELS: dict[str, str] = {
    "strategy": "Strategie",
    "symbol": "Symbol",
    "environment": "Environment",
}
NO_GROUP_VALUE = {
    "strategy": "ohne Strategie",
    "symbol": "ohne Symbol",
    "environment": "ohne Environment",
}

# The filter form's field labels, for messages about a query parameter.
FIELD_LABELS: dict[str, str] = {
    "mode": "Mode",
    "status": "Status",
    "symbol": "Symbol",
    "environment": "Environment",
    "strategy": "Strategie",
    "since": "Von",
    "until": "Bis",
    "range": "Zeitraum",
    "limit": "Pro Seite",
    "page": "Seite",
    "sort": "Sortierung",
    "order": "Reihenfolge",
    "group": "Gruppierung",
    "risk": "Risiko",
}
# The risk traffic light (SessionHead.risk) in words, for labels and screen readers.
RISK_WORDS = {"green": "grün", "yellow": "gelb", "red": "rot"}


def status_badge(status: str) -> str:
    word = STATUS_WORDS.get(status)
    return word.badge if word else status.upper()


def status_label(status: str) -> str:
    word = STATUS_WORDS.get(status)
    return word.label if word else status.title()


def mode_class(mode: str) -> str:
    return f"mode-{mode}" if mode in KNOWN_MODES else "mode-other"


def money_kind(mode: str, real_money_modes: Iterable[str]) -> str:
    return REAL_MONEY if mode in real_money_modes else SIMULATED_MONEY


def money_word(real_money: bool) -> str:
    return REAL_MONEY if real_money else SIMULATED_MONEY


def vocabulary_json(real_money_modes: Iterable[str]) -> str:
    """What the page script needs to word toasts and notifications like the page."""
    return json.dumps(
        {
            "statuses": {status: word._asdict() for status, word in STATUS_WORDS.items()},
            "real_money_modes": sorted(real_money_modes),
            "no_heartbeat": NO_HEARTBEAT,
            "stale": STALE,
        },
        ensure_ascii=False,
        sort_keys=True,
    )
