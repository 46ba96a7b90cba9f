"""What a trader asks of the registry: filters, sort order and page, as one value.

The same ``SessionQuery`` parses the query string of the HTML page and of the
JSON API, so a bookmarked page and an API call with the same URL parameters
always select the same sessions.
"""

from __future__ import annotations

import bisect
import functools
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from operator import attrgetter, indexOf
from typing import Annotated, Literal, NamedTuple, TypeVar, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from src.experiments.live_session_record import TERMINAL_STATUSES, utc_instant
from src.experiments.registry_index import IndexSnapshot, gc_paused
from src.experiments.session_head import SessionHead
from src.webui.vocabulary import SESSION_STATUSES, SessionStatus

# Timestamps go out as the writer stored them: the Phase 82 API shows naive
# (UTC) values (docs/live-track-panel.md, "The JSON API"), which OpenAPI's
# "date-time" format would call invalid.
RecordTime = Annotated[
    datetime,
    WithJsonSchema(
        {"type": "string", "description": "ISO-8601; without an offset the time is UTC"}
    ),
]
QuickRange = Literal["today", "7d", "30d"]
SortKey = Literal["recent", "started", "ended", "pnl", "drawdown"]
RiskFilter = Literal["green", "yellow", "red"]
GroupKey = Literal["strategy", "symbol", "environment"]

# Writers outside Phase 81 use other words for the same states; map them so a
# record is shown with a sensible badge instead of being dropped.
_STATUS_ALIASES: dict[str, SessionStatus] = {
    "running": "started",
    "active": "started",
    "in_progress": "started",
    "success": "completed",
    "succeeded": "completed",
    "finished": "completed",
    "done": "completed",
    "ok": "completed",
    "error": "failed",
    "errored": "failed",
    "crashed": "failed",
    "failure": "failed",
    "cancelled": "aborted",
    "canceled": "aborted",
    "stopped": "aborted",
    "killed": "aborted",
    "interrupted": "aborted",
}


@functools.cache  # few distinct words; called once per session per view
def normalize_status(raw: str, ended: bool) -> SessionStatus:
    """Map any stored status onto the four the panel knows."""
    text = raw.strip().lower()
    if text in SESSION_STATUSES:
        return text
    if text in _STATUS_ALIASES:
        return _STATUS_ALIASES[text]
    # Unknown words: a session with an end did not clearly succeed.
    return "aborted" if ended else "started"


def is_known_status(raw: str) -> bool:
    """True for the four statuses and the usual synonyms other writers use."""
    text = raw.strip().lower()
    return text in SESSION_STATUSES or text in _STATUS_ALIASES


def head_status(head: SessionHead) -> SessionStatus:
    return normalize_status(head.status, head.ended)


_STORED_STATUS: Callable[[SessionHead], str] = attrgetter("profile.status")  # in C


class StatusTally(NamedTuple):
    """How many sessions have each status, and the running ones in their order."""

    counts: dict[SessionStatus, int]
    running: tuple[SessionHead, ...]


def status_tally(heads: Sequence[SessionHead]) -> StatusTally:
    """How many heads have each status, and the running ones in their order.

    The same as ``head_status`` per head, without a Python call per head: the
    stored words are read and counted in C, each distinct word (a handful) is
    mapped once, and the few running heads are found by ``operator.indexOf``,
    which scans in C. Only an unknown word needs the end time: it means
    "aborted" once ended. At 100,000 heads: ~6 ms; a head_status call per head, ~14 ms.
    """
    counts = dict.fromkeys(SESSION_STATUSES, 0)
    running: list[int] = []
    for word, count in Counter(map(_STORED_STATUS, heads)).items():
        if is_known_status(word):  # the end time does not matter
            status = normalize_status(word, False)
            counts[status] += count
            if status == "started":
                running += _positions(heads, word, count)
            continue
        for at in _positions(heads, word, count):
            if not heads[at].ended:
                counts["started"] += 1
                running.append(at)
            else:
                counts[normalize_status(word, True)] += 1
    running.sort()  # the heads' order, whichever word they carry
    return StatusTally(counts, tuple(map(heads.__getitem__, running)))


def _positions(heads: Sequence[SessionHead], word: str, count: int) -> list[int]:
    """Where the ``count`` heads with the stored status ``word`` are, in order.

    One scan in C that stops at the last of them: each ``indexOf`` call goes
    on where the previous one stopped (running sessions are mostly recent,
    near the front).
    """
    words = map(_STORED_STATUS, heads)
    found: list[int] = []
    at = -1
    for _ in range(count):
        at += indexOf(words, word) + 1
        found.append(at)
    return found


def is_terminal(head: SessionHead) -> bool:
    return head_status(head) in TERMINAL_STATUSES


def is_stale(head: SessionHead, now: datetime, stale_after: timedelta) -> bool:
    """A running session whose heartbeats stopped longer ago than the limit.

    Only a writer that sends heartbeats can be judged: without one (every
    original writer writes ``started`` once and nothing until the end) the
    liveness is unknown, which is not the same as stale.
    """
    if head.updated is None or head_status(head) != "started":
        return False
    heartbeat = head.updated_at  # made only for the few running ones
    return heartbeat is not None and now - utc_instant(heartbeat) > stale_after


class SessionQuery(BaseModel):
    """Filters, sort and page of a session listing, as they appear in the URL."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    limit: int = Field(10, ge=1, le=100, description="Sessions per page (1-100)")
    page: int = Field(1, ge=1, le=100_000, description="Page number, from 1")
    mode: tuple[str, ...] = Field((), description="Only these modes (repeatable)")
    status: tuple[SessionStatus, ...] = Field((), description="Only these statuses (repeatable)")
    symbol: str | None = Field(
        None, max_length=64, description="Text contained in the symbol, any case, e.g. btc"
    )
    environment: str | None = Field(
        None, max_length=128, description="Text contained in 'env_name / symbol'"
    )
    risk: tuple[RiskFilter, ...] = Field(
        (), description="Only these risk lights: green, yellow, red (repeatable)"
    )
    strategy: str | None = Field(
        None, max_length=200, description="Exact strategy name (config.strategy_name)"
    )
    since: datetime | None = Field(None, description="Started at or after (ISO-8601)")
    until: datetime | None = Field(None, description="Started at or before (ISO-8601)")
    range: QuickRange | None = Field(None, description="Quick range: today, 7d or 30d")
    sort: SortKey = Field("recent", description="recent = end time, else start time")
    order: Literal["desc", "asc"] = "desc"
    group: GroupKey = Field(
        "strategy", description="Group the sessions table 'Nach Strategie' by this"
    )
    host: tuple[str, ...] = Field((), description="Only sessions from these bot hosts (repeatable)")

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, data: object) -> object:
        # HTML forms send empty inputs as "since=": treat them as not given.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v != "" and v != [""]}
        return data

    @field_validator("mode")
    @classmethod
    def _modes_are_words(cls, modes: tuple[str, ...]) -> tuple[str, ...]:
        for mode in modes:
            if not (0 < len(mode) <= 32 and mode.replace("_", "").replace("-", "").isalnum()):
                raise ValueError(
                    f"Ungültiger Mode {mode[:40]!r}: nur Buchstaben, Ziffern, _ und -."
                )
        return modes

    @field_validator("host")
    @classmethod
    def _hosts_are_labels(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        for host in hosts:
            if not (
                0 < len(host) <= 63
                and host.replace("_", "").replace("-", "").replace(".", "").isalnum()
            ):
                raise ValueError(
                    f"Ungültiger Host {host[:70]!r}: nur Buchstaben, Ziffern, '.', _ und -."
                )
        return hosts

    @field_validator("symbol", "environment", "strategy")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("since", "until")
    @classmethod
    def _representable_in_utc(cls, value: datetime | None) -> datetime | None:
        # 0001-01-01T00:00+05:00 is a valid ISO date whose UTC instant is not:
        # converting it later would crash every view (500) instead of a 422.
        if value is not None:
            try:
                utc_instant(value)
            except OverflowError:
                raise ValueError(
                    "Zeitpunkt liegt außerhalb des darstellbaren Bereichs "
                    "(0001-01-01 bis 9999-12-31 UTC)"
                ) from None
        return value

    @model_validator(mode="after")
    def _range_is_ordered(self) -> SessionQuery:
        if self.since and self.until and utc_instant(self.since) > utc_instant(self.until):
            raise ValueError("'since' must not be after 'until'")
        return self

    def time_bounds(self, now: datetime) -> tuple[datetime | None, datetime | None]:
        """Resolve quick ranges against now; explicit bounds narrow them further."""
        since = utc_instant(self.since) if self.since else None
        until = utc_instant(self.until) if self.until else None
        if self.range is not None:
            if self.range == "today":
                start = now.replace(hour=0, minute=0, second=0, microsecond=0)
            else:
                start = now - timedelta(days=int(self.range[:-1]))
            since = max(since, start) if since else start
        return since, until

    def filter_key(
        self, now: datetime, snapshot: IndexSnapshot | None = None
    ) -> tuple[object, ...]:
        """Everything that decides which sessions match, for caching per snapshot.

        With the snapshot, a time bound becomes its position among the sorted
        start times: quick ranges and ``since`` values move with the clock, but
        the set they select (and so the cached view) changes only when a start
        time crosses the bound. A bound outside every start time selects
        nothing away and becomes None, so it shares the unfiltered views.
        """
        since, until = self.time_bounds(now)
        fixed = (
            self.mode, self.status, self.symbol, self.environment, self.risk, self.strategy,
            self.host,
        )  # fmt: skip
        if snapshot is not None and (since is not None or until is not None):
            starts = start_times(snapshot)
            low = bisect.bisect_left(starts, since.timestamp()) if since is not None else 0
            high = (
                bisect.bisect_right(starts, until.timestamp()) if until is not None else len(starts)
            )
            return (
                *fixed,
                ("from", low) if low else None,
                ("to", high) if high < len(starts) else None,
            )
        return (*fixed, since, until)


def _matcher(query: SessionQuery, now: datetime) -> Callable[[SessionHead], bool]:
    modes = set(query.mode)
    hosts = set(query.host)
    statuses = set(query.status)
    since, until = query.time_bounds(now)
    low = since.timestamp() if since is not None else None
    high = until.timestamp() if until is not None else None
    needle = query.environment.lower() if query.environment else None
    symbol = query.symbol.lower() if query.symbol else None
    risks = set(query.risk)

    def matches(head: SessionHead) -> bool:
        if modes and head.mode not in modes:
            return False
        if hosts and head.host not in hosts:
            return False
        if statuses and head_status(head) not in statuses:
            return False
        if symbol and symbol not in head.symbol.lower():
            return False
        if risks and head.risk not in risks:
            return False
        if query.strategy and head.strategy_name != query.strategy:
            return False
        if needle and needle not in f"{head.env_name} / {head.symbol}".lower():
            return False
        started = head.started
        return not (low is not None and started < low or high is not None and started > high)

    return matches


View = TypeVar("View")


def cached_view(
    snapshot: IndexSnapshot, key: tuple[object, ...], build: Callable[[], View]
) -> View:
    """Build a view once per snapshot; its results live as long as the snapshot.

    The key's first element names the view, so one key always holds what the
    same ``build`` returned: the cast below only restores that type.
    """
    cache = snapshot.cache
    found = cache.get(key)
    if found is None:
        # Single flight: when a change invalidates the views, concurrent
        # requests wait for one build instead of all doing the same work.
        with snapshot.build_lock:
            found = cache.get(key)
            if found is None:
                if len(cache) > 128:
                    cache.clear()
                started = time.perf_counter()
                # No cyclic collection set off by the build's many small objects:
                # each would walk its young registry-long lists again (~10 ms
                # of a 0.16 s build at 100,000 sessions).
                with gc_paused():
                    found = cache[key] = build()
                spent = cast(float, cache.get(_BUILD_SECONDS, 0.0))
                cache[_BUILD_SECONDS] = spent + time.perf_counter() - started
    return cast(View, found)


_BUILD_SECONDS = ("build_seconds",)


def build_seconds(snapshot: IndexSnapshot) -> float:
    """How long this snapshot's views took to build so far: what the next costs."""
    return cast(float, snapshot.cache.get(_BUILD_SECONDS, 0.0))


def start_times(snapshot: IndexSnapshot) -> list[float]:
    """Every session's start (UTC seconds), sorted: time bounds bisect it."""

    def build() -> list[float]:
        return sorted(map(START_SECONDS, snapshot.sessions))

    return cached_view(snapshot, ("start_times",), build)


# The filter key of a query that narrows nothing (no quick range, so no clock).
_UNFILTERED = SessionQuery().filter_key(datetime.min.replace(tzinfo=timezone.utc))


def filter_sessions(
    snapshot: IndexSnapshot, query: SessionQuery, now: datetime
) -> Sequence[SessionHead]:
    """Sessions matching the filters, newest activity first."""
    key = ("filter", *query.filter_key(now, snapshot))

    def build() -> tuple[SessionHead, ...]:
        if key[1:] == _UNFILTERED:
            return snapshot.newest_first()  # no filter: the index order as it is
        matches = _matcher(query, now)
        return tuple(head for head in snapshot.newest_first() if matches(head))

    return cached_view(snapshot, key, build)


def filtered_statuses(snapshot: IndexSnapshot, query: SessionQuery, now: datetime) -> StatusTally:
    """``status_tally`` of the filtered sessions, once per snapshot and filter.

    The stats strip and the "Jetzt" strip's running list (the unfiltered
    set) share it, so a new snapshot reads every status once, not twice.
    """
    heads = filter_sessions(snapshot, query, now)
    key = ("statuses", *query.filter_key(now, snapshot))
    return cached_view(snapshot, key, lambda: status_tally(heads))


def all_statuses(snapshot: IndexSnapshot) -> StatusTally:
    """``filtered_statuses`` of every session: the same cache entry as no filter."""
    return cached_view(
        snapshot, ("statuses", *_UNFILTERED), lambda: status_tally(snapshot.newest_first())
    )


START_SECONDS: Callable[[SessionHead], float] = attrgetter("started")

_SORT_VALUES: dict[str, Callable[[SessionHead], object]] = {
    "started": START_SECONDS,
    "ended": lambda h: h.activity if h.ended else None,
    "pnl": lambda h: h.realized_pnl,
    "drawdown": lambda h: h.max_drawdown,
}


def sort_sessions(
    snapshot: IndexSnapshot, query: SessionQuery, now: datetime
) -> Sequence[SessionHead]:
    """The filtered sessions in the requested order; empty values always last."""
    matching = filter_sessions(snapshot, query, now)
    if query.sort == "recent":
        return matching if query.order == "desc" else matching[::-1]
    key = ("sort", query.sort, query.order, *query.filter_key(now, snapshot))
    value_of = _SORT_VALUES[query.sort]

    def build() -> tuple[SessionHead, ...]:
        present = [h for h in matching if value_of(h) is not None]
        missing = [h for h in matching if value_of(h) is None]
        present.sort(key=value_of, reverse=query.order == "desc")  # type: ignore[arg-type]
        return (*present, *missing)

    return cached_view(snapshot, key, build)
