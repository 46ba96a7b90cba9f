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
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

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


class Profile(NamedTuple):
    """What a head shares with many others: what ran where, how it stands, and
    the time zones its writer used.

    One object per distinct combination, not one per head: the 100,000
    benchmark sessions have 2,379. Holding these nine texts once per head cost
    72 bytes per head in pointers alone.
    """

    run_type: str
    mode: str
    env_name: str
    symbol: str
    status: str
    currency: str
    strategy_name: str
    risk: str | None  # green, yellow or red; None without risk data
    # The bot host the record was shipped from; empty for a plain directory.
    host: str
    ended: bool  # it has an end time (finished_at)
    # The offset each time was written with; None where it was written without
    # one (UTC by convention). With the seconds a head holds, they give back the
    # writer's datetimes exactly.
    started_zone: timezone | None
    finished_zone: timezone | None
    updated_zone: timezone | None
    # The datetimes themselves, only for the rare ones the seconds cannot hold
    # to the microsecond (before 1833 or after 2105).
    exact: tuple[datetime, datetime | None, datetime | None] | None


class _HeadFields(NamedTuple):
    file_name: str
    stamp: FileStamp
    session_id: str
    profile: Profile
    # Start time in UTC seconds.
    started: float
    # End time when it ended, else start time (UTC seconds): the activity order.
    activity: float
    # The writer's last heartbeat in UTC seconds; None when it sends none (all
    # original writers). The same object as ``activity`` where it is the end.
    updated: float | None
    realized_pnl: float | None
    unrealized_pnl: float | None
    max_drawdown: float | None
    num_orders: int | None
    report_path: str | None
    error: str | None


class SessionHead(_HeadFields):
    """What every view needs of one record, small enough to hold 100,000 of.

    A tuple of 13 slots (about 600 bytes a head with what it points to, where
    datetimes and a slot per text took 750): the shared texts live in its
    ``profile``, the times as seconds, and the datetimes are made when asked for.
    """

    __slots__ = ()

    if TYPE_CHECKING:  # at run time these read the profile, see below
        run_type: str
        mode: str
        env_name: str
        symbol: str
        status: str
        currency: str
        strategy_name: str
        risk: str | None
        host: str
        ended: bool

    @property
    def started_at(self) -> datetime:
        exact = self.profile.exact
        return _moment(self.started, self.profile.started_zone) if exact is None else exact[0]

    @property
    def finished_at(self) -> datetime | None:
        profile = self.profile
        if profile.exact is not None:
            return profile.exact[1]
        return _moment(self.activity, profile.finished_zone) if profile.ended else None

    @property
    def updated_at(self) -> datetime | None:
        profile, updated = self.profile, self.updated
        if profile.exact is not None:
            return profile.exact[2]
        return None if updated is None else _moment(updated, profile.updated_zone)

    def shipped(self, file_name: str, host: str) -> SessionHead:
        """The same head as a copy shipped from ``host`` under ``file_name``."""
        profile = _shared_profile(self.profile._replace(host=host))
        return self._replace(file_name=file_name, profile=profile)


# What a cache or a wire holding heads depends on: a change invalidates it.
HEAD_LAYOUT = repr(
    [
        (name, str(kind))
        for layout in (_HeadFields, Profile)
        for name, kind in layout.__annotations__.items()
    ]
)


# The profile's fields read as the head's own. Properties around a C getter:
# a Python property costs twice as much per access (measured: 46 against 25 ns),
# and views read these for every one of 100,000 heads.
for _name in Profile._fields[: Profile._fields.index("ended") + 1]:
    setattr(SessionHead, _name, property(operator.attrgetter(f"profile.{_name}")))


def _moment(seconds: float, zone: timezone | None) -> datetime:
    if zone is None:
        return datetime.fromtimestamp(seconds, timezone.utc).replace(tzinfo=None)
    return datetime.fromtimestamp(seconds, zone)


# Seconds as a float hold every microsecond from 1833 to 2105 (a double's
# spacing there is below half a microsecond); outside, a head keeps its datetimes.
_EXACT_SECONDS = float(2**32)


def _zone(moment: datetime | None) -> timezone | None:
    zone = None if moment is None else moment.tzinfo
    if zone is None or isinstance(zone, timezone):  # naive (most writers), or fixed
        return zone
    offset = zone.utcoffset(moment)
    return None if offset is None else timezone(offset)


# The shared profiles, and their plain forms both ways (the wire, the cache).
# A shared profile lives on after its last head, so only short ones are
# shared, and at most _MAX_PROFILES: a writer making up a new long symbol
# in every rewrite would otherwise pin each version's texts. Forgetting them
# costs nothing but sharing for the heads made afterwards.
_profiles: dict[Profile, Profile] = {}
_plain_of: dict[Profile, Wire] = {}
_from_plain: dict[Wire, Profile] = {}
_MAX_PROFILES = 10_000
_MAX_SHARED_TEXT = 512  # characters, all of a profile's texts together


def forget_shared() -> None:
    """Let go of the shared profiles, so that the next heads make their own."""
    _profiles.clear()
    _plain_of.clear()
    _from_plain.clear()


def _shared_profile(profile: Profile) -> Profile:
    shared = _profiles.get(profile)
    if shared is not None:
        return shared
    if profile.exact is not None or _text_length(profile) > _MAX_SHARED_TEXT:
        return profile  # one of a kind
    if len(_profiles) >= _MAX_PROFILES:
        forget_shared()
    _profiles[profile] = profile
    return profile


def _text_length(profile: Profile) -> int:
    return sum(map(len, _texts_of(profile))) + len(profile.risk or "")


# Newest activity last; the file name breaks ties, so the order is total. In C,
# without a tuple per head: the first load sorts 100,000 heads by it.
order_key: Callable[[SessionHead], tuple[float, str]] = operator.attrgetter("activity", "file_name")


def make_head(
    file_name: str,
    stamp: FileStamp,
    session_id: str,
    run_type: str,
    mode: str,
    env_name: str,
    symbol: str,
    status: str,
    started_at: datetime,
    finished_at: datetime | None,
    updated_at: datetime | None,
    realized_pnl: float | None,
    unrealized_pnl: float | None,
    max_drawdown: float | None,
    num_orders: int | None,
    report_path: str | None,
    error: str | None,
    currency: str,
    strategy_name: str,
    risk: str | None,
    host: str = "",
) -> SessionHead:
    """A head from its fields as a record names them (times as datetimes).

    Called positionally on loads, and building the tuples positionally: at
    100,000 heads, keyword calls cost 0.8 us each (measured), a third of the
    worker's time per head besides parsing.
    """
    # Written inline: 100,000 heads are made on a first load.
    started = utc_instant(started_at).timestamp()
    ended = None if finished_at is None else utc_instant(finished_at).timestamp()
    if updated_at is not None and updated_at == finished_at:
        updated = ended  # one float for both (most heartbeats stop at the end)
    else:
        updated = None if updated_at is None else utc_instant(updated_at).timestamp()
    exact = None
    if not (
        -_EXACT_SECONDS < started < _EXACT_SECONDS
        and (ended is None or -_EXACT_SECONDS < ended < _EXACT_SECONDS)
        and (updated is None or -_EXACT_SECONDS < updated < _EXACT_SECONDS)
    ):
        exact = (started_at, finished_at, updated_at)
    profile = Profile(
        run_type,
        mode,
        env_name,
        symbol,
        status,
        currency,
        strategy_name,
        risk,
        host,
        ended is not None,
        _zone(started_at),
        _zone(finished_at),
        _zone(updated_at),
        exact,
    )
    return SessionHead(
        file_name,
        stamp,
        session_id,
        _shared_profile(profile),
        started,
        started if ended is None else ended,  # activity
        updated,
        realized_pnl,
        unrealized_pnl,
        max_drawdown,
        num_orders,
        report_path,
        error,
    )


def head_from_record(
    name: str, stamp: FileStamp, record: LiveSessionRecord, texts: dict[str, str] | None = None
) -> SessionHead:
    """The one place a head is made from a record.

    ``texts``: equal error and report texts seen so far, to share one object
    each (a few dozen error texts repeat across thousands of failed sessions).
    The caller owns it, one per batch of heads, so it never outlives them.
    """
    metrics, config = record.metrics, record.config
    pnl = metrics.get("realized_pnl")
    return make_head(  # positionally, in make_head's order (see there)
        name,
        stamp,
        record.session_id,
        # Few distinct values across 100,000 records: share one string each.
        sys.intern(record.run_type),
        sys.intern(record.mode),
        sys.intern(record.env_name),
        sys.intern(record.symbol or ""),
        sys.intern(record.status),
        record.started_at,
        record.finished_at,
        record.updated_at,
        metric_number(metrics.get("pnl") if pnl is None else pnl),  # realized
        _shared_zero(metric_number(metrics.get("unrealized_pnl"))),
        metric_number(metrics.get("max_drawdown")),
        _order_count(metrics),
        _shared(_report_path(metrics, config), texts),
        _shared(record.error, texts),
        sys.intern(session_currency(record.symbol, metrics, config)),
        sys.intern(_text(config.get("strategy_name"))),
        risk_level(metrics),
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
# handles several times faster than pickle handles NamedTuples. A profile goes
# as a plain tuple too, one object per distinct profile, which marshal then
# writes (and loads) once; zones go as their offset in seconds, the rare exact
# datetimes as ISO strings, which fromisoformat reads back exactly. The head
# cache stores profiles the same way.

Wire = tuple[Any, ...]


def plain_profile(profile: Profile) -> Wire:
    plain = _plain_of.get(profile)
    if plain is None:
        plain = _plain(profile)
        if _profiles.get(profile) is profile:  # remembered only while shared
            _plain_of[profile] = plain
    return plain


def _plain(profile: Profile) -> Wire:
    values: list[Any] = list(profile)
    for position in _ZONE_POSITIONS:
        zone = values[position]
        values[position] = None if zone is None else zone.utcoffset(None).total_seconds()
    if profile.exact is not None:
        values[-1] = tuple(None if t is None else t.isoformat() for t in profile.exact)
    return tuple(values)


def profile_from_plain(plain: Wire) -> Profile:
    profile = _from_plain.get(plain)
    if profile is None:
        profile = _shared_profile(_unplain(plain))
        if _profiles.get(profile) is profile:  # remembered only while shared
            _from_plain[plain] = profile
    return profile


def _unplain(plain: Wire) -> Profile:
    if len(plain) != len(Profile._fields):
        raise ValueError(f"a profile has {len(Profile._fields)} fields, got {len(plain)}")
    values = list(plain)
    for position in _ZONE_POSITIONS:
        offset = values[position]
        values[position] = None if offset is None else timezone(timedelta(seconds=offset))
    for position in _TEXT_POSITIONS:
        values[position] = sys.intern(values[position])
    exact = plain[-1]
    if exact is not None:
        values[-1] = tuple(None if t is None else datetime.fromisoformat(t) for t in exact)
    return Profile._make(values)


def to_wire(stamp: FileStamp, head: SessionHead | SkippedFile) -> Wire:
    if isinstance(head, SkippedFile):
        return (stamp, head.name, head.reason)
    values: list[Any] = list(head)
    values[_PROFILE_POSITION] = plain_profile(head.profile)
    return tuple(values)


def from_wire(item: Wire, profiles: dict[int, Profile] | None = None) -> HeadOrSkip:
    """``profiles``: those of this batch so far, by the id of their plain form,
    which marshal loads once per batch (cheaper than looking each one up by value).
    The caller keeps the batch alive meanwhile, so the ids stay its plain forms'."""
    if len(item) == 3:
        return item[0], SkippedFile(item[1], item[2])
    if len(item) != len(SessionHead._fields):
        raise ValueError(f"a head has {len(SessionHead._fields)} fields, got {len(item)}")
    plain = item[_PROFILE_POSITION]
    profile = None if profiles is None else profiles.get(id(plain))
    if profile is None:
        profile = profile_from_plain(plain)
        if profiles is not None:
            profiles[id(plain)] = profile
    values = list(item)
    values[_PROFILE_POSITION] = profile
    return item[_STAMP_POSITION], SessionHead._make(values)


_PROFILE_POSITION = SessionHead._fields.index("profile")
_STAMP_POSITION = SessionHead._fields.index("stamp")
_ZONE_POSITIONS = tuple(i for i, name in enumerate(Profile._fields) if name.endswith("_zone"))
_TEXTS = ("run_type", "mode", "env_name", "symbol", "status", "currency", "strategy_name", "host")
_TEXT_POSITIONS = tuple(map(Profile._fields.index, _TEXTS))
_texts_of: Callable[[Profile], tuple[str, ...]] = operator.attrgetter(*_TEXTS)
