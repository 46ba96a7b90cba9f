"""The slim head of one record that every view works from, and how heads travel.

The index holds a head per registry file (no config, no command line: those
are read from the file on demand). Heads are built in exactly one place,
``head_from_record``, by keyword; the wire format the parallel load sends
between processes is derived from the fields, so adding a field is one line.
"""

from __future__ import annotations

import math
import operator
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from src.experiments.live_session_record import (
    InvalidRecord,
    LiveSessionRecord,
    UnreadableFile,
    metric_count,
    metric_number,
    parse_head_record,
    utc_instant,
)
from src.experiments.registry_files import FileStamp, SkippedFile, file_stamp, read_file

# Decimals an amount in this currency needs (a BTC PnL of 0.0019 is not 0.00).
CURRENCY_DECIMALS = {"BTC": 6, "XBT": 6, "ETH": 5}


def currency_decimals(currency: str | None) -> int:
    return CURRENCY_DECIMALS.get(currency or "", 2)


# How the original dashboard reads a risk state, mapped onto one traffic light.
_RISK_LEVELS = {
    "green": "green",
    "ok": "green",
    "yellow": "yellow",
    "warning": "yellow",
    "red": "red",
    "breach": "red",
}


class SessionHead(NamedTuple):
    """What every view needs of one record, small enough to hold 100,000 of.

    A NamedTuple: cheap to build and compact in memory.
    """

    file_name: str
    stamp: FileStamp
    session_id: str
    run_type: str
    mode: str
    env_name: str
    symbol: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    # The writer's last heartbeat; None when it sends none (all original writers).
    updated_at: datetime | None
    realized_pnl: float | None
    unrealized_pnl: float | None
    max_drawdown: float | None
    num_orders: int | None
    report_path: str | None
    error: str | None
    currency: str
    strategy_name: str
    risk: str | None  # green, yellow or red; None without risk data
    # End time when it ended, else start time (UTC seconds): the activity order.
    activity: float
    # Start time in UTC seconds: durations and time filters without a datetime per head.
    started: float
    # The bot host the record was shipped from; empty for a plain directory.
    host: str = ""


# Newest activity last; the file name breaks ties, so the order is total. In C,
# without a tuple per head: the first load sorts 100,000 heads by it.
order_key: Callable[[SessionHead], tuple[float, str]] = operator.attrgetter("activity", "file_name")


def head_from_record(
    name: str, stamp: FileStamp, record: LiveSessionRecord, texts: dict[str, str] | None = None
) -> SessionHead:
    """The one place a head is made from a record.

    ``texts``: equal error and report texts seen so far, to share one object
    each (a few dozen error texts repeat across thousands of failed sessions).
    The caller owns it, one per batch of heads, so it never outlives them.
    """
    metrics, config = record.metrics, record.config
    started = utc_instant(record.started_at).timestamp()
    ended = record.finished_at
    pnl = metrics.get("realized_pnl")
    # A finished writer's last heartbeat is usually its end: hold that time once.
    updated_at = record.updated_at
    if updated_at is not None and updated_at == record.finished_at:
        updated_at = record.finished_at
    return SessionHead(
        file_name=name,
        stamp=stamp,
        session_id=record.session_id,
        # Few distinct values across 100,000 records: share one string each.
        run_type=sys.intern(record.run_type),
        mode=sys.intern(record.mode),
        env_name=sys.intern(record.env_name),
        symbol=sys.intern(record.symbol or ""),
        status=sys.intern(record.status),
        started_at=record.started_at,
        finished_at=record.finished_at,
        updated_at=updated_at,
        realized_pnl=metric_number(metrics.get("pnl") if pnl is None else pnl),
        unrealized_pnl=_shared_zero(metric_number(metrics.get("unrealized_pnl"))),
        max_drawdown=metric_number(metrics.get("max_drawdown")),
        num_orders=_order_count(metrics),
        report_path=_shared(_report_path(metrics, config), texts),
        error=_shared(record.error, texts),
        currency=sys.intern(session_currency(record.symbol, metrics, config)),
        strategy_name=sys.intern(_text(config.get("strategy_name"))),
        risk=risk_level(metrics),
        activity=started if ended is None else utc_instant(ended).timestamp(),
        started=started,
    )


_ZERO = 0.0


def _shared(text: str | None, texts: dict[str, str] | None) -> str | None:
    if text is None or texts is None:
        return text
    return texts.setdefault(text, text)


def _shared_zero(value: float | None) -> float | None:
    """One 0.0 object for every flat position (most ended sessions): 24 bytes each."""
    return _ZERO if value == 0.0 and math.copysign(1.0, value) > 0 else value


def session_currency(
    symbol: str | None, metrics: Mapping[str, Any], config: Mapping[str, Any]
) -> str:
    """The currency a session's amounts are in: named by the record, else the
    symbol's quote currency (``BTC/USDT:USDT`` -> ``USDT``); "" when unknown."""
    for named in (
        metrics.get("currency"),
        config.get("quote_currency"),
        config.get("stake_currency"),
    ):
        if isinstance(named, str) and named.strip():
            return named.strip().upper()[:16]
    if symbol and "/" in symbol:
        return symbol.split("/", 1)[1].split(":", 1)[0].strip().upper()[:16]
    return ""


def risk_level(metrics: Mapping[str, Any]) -> str | None:
    """``risk_status``, else ``risk_severity``, else ``risk_check.severity``."""
    check = metrics.get("risk_check")
    severity = check.get("severity") if isinstance(check, Mapping) else None
    for value in (metrics.get("risk_status"), metrics.get("risk_severity"), severity):
        if isinstance(value, str) and value.strip().lower() in _RISK_LEVELS:
            return _RISK_LEVELS[value.strip().lower()]
    return None


def _order_count(metrics: Mapping[str, Any]) -> int | None:
    orders = metric_count(metrics.get("num_orders"))
    return orders if orders is not None else metric_count(metrics.get("num_trades"))


def _report_path(metrics: Mapping[str, Any], config: Mapping[str, Any]) -> str | None:
    for source in (metrics, config):
        value = source.get("report_path")
        if isinstance(value, str) and value:
            return value
    return None


def _text(value: object) -> str:
    return value.strip()[:200] if isinstance(value, str) else ""


# Stamp for a file that could not even be stat'ed: differs from any real one.
UNREADABLE = file_stamp(-1, -1)
# Stamp for a file whose read the OS refused: differs from every listing, so
# every reconciliation reads it again (a parse error waits for a change).
RETRY = file_stamp(-2, -2)

HeadOrSkip = tuple[FileStamp, "SessionHead | SkippedFile"]


def read_heads(directory: str, items: Sequence[tuple[str, FileStamp | None]]) -> list[HeadOrSkip]:
    """Read a batch of files into heads; runs in a worker process on bulk loads.

    Each result carries the stamp of the version actually read, so a file
    rewritten while it was read is simply read again at the next check.
    """
    results: list[HeadOrSkip] = []
    texts: dict[str, str] = {}  # shared within the batch; marshal keeps that on the wire
    for name, listed in items:
        path = os.path.join(directory, name)
        try:
            content, stamp = read_file(path)
            record = parse_head_record(content)
        except InvalidRecord as exc:
            if isinstance(exc, UnreadableFile):
                seen = RETRY
            else:
                seen = listed if listed is not None else _stamp_of(path)
            results.append((seen, SkippedFile(name, str(exc))))
        else:
            results.append((stamp, head_from_record(name, stamp, record, texts)))
    return results


def _stamp_of(path: str) -> FileStamp:
    try:
        info = os.lstat(path)
    except OSError:
        return UNREADABLE
    return file_stamp(info.st_size, info.st_mtime_ns)


# --- The wire format between processes -----------------------------------------
# Heads travel as plain tuples of str, int, float and None, which marshal
# handles several times faster than pickle handles NamedTuples of datetimes.
# Timestamps go as ISO strings, which fromisoformat reads back exactly. The
# head cache stores them the same way and shares these field sets.

Wire = tuple[Any, ...]
TIME_FIELDS = frozenset(
    name for name, kind in SessionHead.__annotations__.items() if "datetime" in str(kind)
)
SHARED_TEXT = frozenset(
    {"run_type", "mode", "env_name", "symbol", "status", "currency", "strategy_name", "host"}
)


def to_wire(stamp: FileStamp, head: SessionHead | SkippedFile) -> Wire:
    if isinstance(head, SkippedFile):
        return (stamp, head.name, head.reason)
    values: list[Any] = list(head)
    for position in _TIME_POSITIONS:
        value = values[position]
        if value is not None:
            values[position] = value.isoformat()
    return tuple(values)


def from_wire(item: Wire) -> HeadOrSkip:
    if len(item) == 3:
        return item[0], SkippedFile(item[1], item[2])
    # Positional, field by field only where needed: 100,000 heads come from
    # the cache on every cold start, so this is on the hot path.
    if len(item) != len(SessionHead._fields):
        raise ValueError(f"a head has {len(SessionHead._fields)} fields, got {len(item)}")
    values = list(item)
    for position in _TIME_POSITIONS:
        value = values[position]
        if value is not None:
            values[position] = datetime.fromisoformat(value)
    if item[_UPDATED_POSITION] is not None and item[_UPDATED_POSITION] == item[_FINISHED_POSITION]:
        values[_UPDATED_POSITION] = values[_FINISHED_POSITION]  # one object, as in head_from_record
    for position in _TEXT_POSITIONS:
        values[position] = sys.intern(values[position])
    return item[_STAMP_POSITION], SessionHead._make(values)


_TIME_POSITIONS = tuple(i for i, name in enumerate(SessionHead._fields) if name in TIME_FIELDS)
_TEXT_POSITIONS = tuple(i for i, name in enumerate(SessionHead._fields) if name in SHARED_TEXT)
_STAMP_POSITION = SessionHead._fields.index("stamp")
_UPDATED_POSITION = SessionHead._fields.index("updated_at")
_FINISHED_POSITION = SessionHead._fields.index("finished_at")
