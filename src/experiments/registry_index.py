"""An in-memory index of the registry, so views never rescan the directory.

The index keeps a slim head of every record (no config, no command line: those
are read from the file on demand) and re-reads a file only when its size or
mtime changed. Readers take an immutable snapshot; a refresh builds the next
one and swaps it in, so a request never sees a half-updated index.
"""

from __future__ import annotations

import atexit
import bisect
import contextlib
import ctypes
import functools
import gc
import itertools
import logging
import operator
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple, cast

from src.experiments.head_cache import (
    SkippedRecord,
    cache_bytes,
    cache_file,
    decode_heads,
    encode_heads,
    load_heads,
    save_heads,
)
from src.experiments.live_session_record import InvalidRecord, LiveSessionRecord
from src.experiments.parallel_load import read_in_batches
from src.experiments.registry_files import (
    FileStamp,
    Listing,
    PendingListing,
    SkippedFile,
    UnchangedListing,
    list_registry,
    read_record,
)
from src.experiments.session_head import (
    RETRY,
    UNREADABLE,
    SessionHead,
    forget_shared,
    order_key,
)
from src.experiments.session_ids import IdTally

logger = logging.getLogger(__name__)


class SessionChange(NamedTuple):
    """One file whose record appeared, changed or disappeared."""

    before: SessionHead | None
    after: SessionHead | None


_BY_ID = ("by_id",)


@dataclass(frozen=True)
class IndexSnapshot:
    """An immutable view of the registry at one generation."""

    generation: int
    directory: Path
    # Newest activity first (end time, else start time).
    sessions: tuple[SessionHead, ...] = ()
    skipped: tuple[SkippedFile, ...] = ()
    loaded: bool = False
    progress: tuple[int, int] = (0, 0)
    # Session ids that more than one file carries (a writer bug), with the files.
    conflicts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Since when the directory cannot be listed (UTC); the sessions are the last good state.
    unreadable_since: datetime | None = None
    source_exists: bool = True
    # Views computed from this snapshot (filters, stats); dies with it.
    cache: dict[tuple[object, ...], object] = field(default_factory=dict, compare=False, repr=False)
    build_lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def newest_first(self) -> tuple[SessionHead, ...]:
        return self.sessions

    @property
    def by_id(self) -> dict[str, SessionHead]:
        """Each session id's head; the newest activity wins where files share an id.

        Built on first use, once per snapshot: a heartbeat publishes a new
        snapshot, and copying 100,000 entries each time (5 ms, 4 MB) would be
        paid for a detail page that is rarely asked for in between.
        """
        found = self.cache.get(_BY_ID)
        if found is None:  # two threads may both build it: same result, no lock to nest
            found = self.cache[_BY_ID] = {h.session_id: h for h in reversed(self.sessions)}
        return cast(dict[str, SessionHead], found)


class _CachedIndex(NamedTuple):
    """The index as the head cache left it, built while the listing runs."""

    heads: dict[str, SessionHead]  # by file name
    ordered: list[SessionHead]  # oldest activity first
    ids: IdTally
    skipped: dict[str, tuple[FileStamp | SkippedFile, SkippedFile]]  # files that are no records
    fingerprint: bytes  # of the listing that matches it exactly

    @classmethod
    def load(cls, directory: Path) -> _CachedIndex | None:
        heads, skipped_files, fingerprint = load_heads(directory)
        if not heads and not skipped_files:
            return None
        skipped: dict[str, tuple[FileStamp | SkippedFile, SkippedFile]] = {
            record.name: (record.stamp, SkippedFile(record.name, record.reason))
            for record in skipped_files
        }
        ordered = list(heads.values())
        if not _in_order(ordered):  # saved sorted; trust, but check
            ordered.sort(key=order_key)
        return cls(heads, ordered, IdTally(ordered), skipped, fingerprint)

    def matches(self, listing: Mapping[str, FileStamp | SkippedFile | None]) -> bool:
        """Whether the listing has exactly the cached files, each at its cached stamp."""
        if len(listing) != len(self.heads) + len(self.skipped):
            return False
        if any(listing.get(name) != seen for name, (seen, _) in self.skipped.items()):
            return False
        listed = map(listing.get, self.heads)
        return all(map(operator.eq, listed, map(_stamp_of, self.heads.values())))


class RegistryIndex:
    """Owns the parsed registry; the only reader of the directory in the server."""

    def __init__(self, directory: Path, *, persistent: bool = False) -> None:
        """``persistent``: start from the head cache (``head_cache``) and keep it
        current, so the next process reads only the files that changed."""
        self.directory = directory
        self._persistent = persistent
        self._cache_dirty = False
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        # Every known file is in exactly one of _heads (its head holds its stamp)
        # and _skipped (the stamp or listing entry seen, and why it is no record).
        self._heads: dict[str, SessionHead] = {}
        self._ids = IdTally()
        self._skipped: dict[str, tuple[FileStamp | SkippedFile, SkippedFile]] = {}
        self._ordered: list[SessionHead] = []
        self._snapshot = IndexSnapshot(generation=0, directory=directory)
        self._loaded = threading.Event()
        # Set once the first load ended, loaded or failed: nobody waits for a crashed load.
        self._load_ended = threading.Event()
        self._load_started = False
        self._listed_once = False
        self._unreadable_since: datetime | None = None
        self.load_seconds: float | None = None  # how long the first load took

    # --- reading ---------------------------------------------------------

    def snapshot(self) -> IndexSnapshot:
        return self._snapshot

    def wait_loaded(self, timeout: float) -> bool:
        """Wait at most ``timeout`` for the first load to end; whether the index is loaded.

        A failed load ends the wait too (False): its snapshot says since when the
        registry cannot be read, and the next reconcile loads afresh.
        """
        self._load_ended.wait(timeout)
        return self._loaded.is_set()

    @property
    def load_failed(self) -> bool:
        """Whether the first load ended in an error and no later one went through yet."""
        return self._load_ended.is_set() and not self._loaded.is_set()

    def read_record(self, head: SessionHead) -> LiveSessionRecord | None:
        """Read the full record for a detail view; the name comes from the index."""
        try:
            return read_record(os.path.join(self.directory, head.file_name))[0]
        except InvalidRecord:
            return None

    # --- refreshing ------------------------------------------------------

    def start_loading(self) -> None:
        """Load in the background once, so startup and health checks never wait."""
        # Its own lock: the index lock is held for the whole first load, and a
        # request asking "is it loading?" must not wait for the answer.
        with self._start_lock:
            if self._load_started:
                return
            self._load_started = True
        threading.Thread(target=self._load, name="registry-index-load", daemon=True).start()

    def _load(self) -> None:
        """The background first load: a crash is logged here, as no caller sees it."""
        try:
            self.reconcile()
        except Exception:
            logger.exception(
                "Loading the live-session registry %s failed; the next reconcile tries again",
                self.directory,
            )

    def reconcile(self) -> list[SessionChange]:
        """Compare the directory with the index and re-read only what changed."""
        if self._loaded.is_set():
            return self._reconcile()
        # Until a load went through (the first, or a retry after one crashed, which
        # the watch may have added a few heads to), a crash must reset the index.
        # The first load makes hundreds of thousands of objects that all live on;
        # the cyclic GC would walk the growing heap again and again (a third of
        # the load) and find nothing to free.
        _pin_mmap_threshold()
        try:
            with gc_paused():
                changes = self._reconcile()
        except BaseException:
            self._first_load_failed()
            raise
        release_free_memory()
        return changes

    def _reconcile(self) -> list[SessionChange]:
        # List (and stat) outside the lock: at 100,000 files that takes a second,
        # and the watcher's refreshes must not wait for it.
        # On the first load every file is new, and reading it gives its stamp.
        started = time.monotonic()
        known = bool(self._heads or self._skipped)
        first = not known and not self._loaded.is_set()
        pending = None
        if self._lists_in_helper(first):
            pending = _prefetched_listing(self.directory) if first else None
            cache = cache_file(self.directory) if first else None
            pending = pending or PendingListing(self.directory, cache)
        cached = _CachedIndex.load(self.directory) if first and self._persistent else None
        if pending is not None:
            listing, unchanged = _listed_by_helper(pending, cached)
        else:
            listing = list_registry(self.directory, with_stamps=known or cached is not None)
            unchanged = False
        # A failed listing looks empty: never read that as "every session deleted".
        problem = (
            None if listing or unchanged else directory_problem(self.directory, self._listed_once)
        )
        with self._lock:
            if problem is not None:
                return self._keep_last_good_state(problem)
            self._listed_once = True
            recovered = self._unreadable_since is not None
            if recovered:
                logger.warning("Live-session registry %s is readable again", self.directory)
                self._unreadable_since = None
            if cached is not None and (unchanged or cached.matches(listing)):
                # Nothing changed since the cache was written: take it whole (in C).
                self._install(cached)
                changed, gone, cached = [], [], None
            else:
                # A cache that differs from the directory is written anew, even when
                # only a file it knew is gone (nothing to read, nothing to forget).
                self._cache_dirty = cached is not None or self._cache_dirty
                changed = [name for name, seen in listing.items() if self._differs(name, seen)]
                # A file the watcher added after the listing is not gone: look again.
                gone = [
                    name
                    for name in itertools.chain(self._heads, self._skipped)
                    if name not in listing and not os.path.lexists(self.directory / name)
                ]
            changes = self._apply(listing, changed, gone, len(changed), cached and cached.heads)
            changed_any = bool(changed or gone or recovered)
            if (
                first
                and cached is None
                and self._persistent
                and len(changed) >= COMPACT_AFTER_FILES
            ):
                # The listing's 100,000 names would end up among the new heads.
                del listing, changed
                self._compact()
            if changed_any or not self._loaded.is_set():
                self._publish(loaded=True)
            if self.load_seconds is None:
                self.load_seconds = time.monotonic() - started
            self._set_loaded()
            heads = list(self._ordered) if self._persistent and self._cache_dirty else None
            skipped = self._skipped_records() if heads is not None else []
            self._cache_dirty = False
        if heads is not None:  # outside the lock: the watch's refreshes need not wait
            save_heads(self.directory, heads, skipped)
        return changes

    def _set_loaded(self) -> None:
        self._loaded.set()
        self._load_ended.set()
        self._load_started = True

    def _first_load_failed(self) -> None:
        """Drop what a crashed first load read, say since when the registry cannot be
        read, and wake the waiters: the next reconcile loads afresh.

        Kept, the heads read so far would be missing from the order (the first
        load sorts once, at its end), and the retry would skip them as known.
        """
        with self._lock:
            if self._loaded.is_set():
                return  # loaded all the same: saving the head cache failed
            self._heads, self._ids = {}, IdTally()
            self._skipped, self._ordered = {}, []
            self._unreadable_since = self._unreadable_since or datetime.now(timezone.utc)
            self._publish(loaded=False)
            self._load_ended.set()

    def _lists_in_helper(self, first: bool) -> bool:
        """Whether a helper process lists (and stats) the directory on the other core.

        A large cold start decodes the head cache meanwhile; a later full pass
        over a large registry leaves this process's core to the requests (the
        stat loop holds the GIL for a quarter second at 100,000 files).
        """
        if first:
            return self._persistent and cache_bytes(self.directory) > PARALLEL_LISTING_BYTES
        return len(self._heads) + len(self._skipped) >= HELPER_LISTING_FILES

    def refresh_names(self, names: Iterable[str]) -> list[SessionChange]:
        """Re-check the files a watcher reported, without listing the directory."""
        wanted = set(names)
        listing = list_registry(self.directory, wanted)
        with self._lock:
            changed = [n for n, seen in listing.items() if self._differs(n, seen)]
            gone = [n for n in wanted if n not in listing and self._known(n)]
            if gone and directory_problem(self.directory, listed_before=True):
                gone = []  # the directory went away, not the files: keep the last state
            changes = self._apply(listing, changed, gone, 0)
            if changed or gone:
                self._publish(loaded=self._loaded.is_set())
            return changes

    def _skipped_records(self) -> list[SkippedRecord]:
        """The regular files read and found to be no record (not those to read
        again: their stamps are the RETRY and UNREADABLE marks, never listed)."""
        return [
            SkippedRecord(name, seen, skipped.reason)
            for name, (seen, skipped) in self._skipped.items()
            if not isinstance(seen, SkippedFile) and seen not in (RETRY, UNREADABLE)
        ]

    def _known(self, name: str) -> bool:
        return name in self._heads or name in self._skipped

    def _differs(self, name: str, seen: FileStamp | SkippedFile | None) -> bool:
        """Whether a listed file needs reading: unknown, or listed with another stamp
        (None: listed without one, on a first load, where every unknown file is new)."""
        head = self._heads.get(name)
        if head is not None:
            return seen is not None and head.stamp != seen
        skipped = self._skipped.get(name)
        if skipped is not None:
            return seen is not None and skipped[0] != seen
        return True

    def _keep_last_good_state(self, problem: str) -> list[SessionChange]:
        """Keep every session as last seen and say since when the registry is unreadable."""
        if self._unreadable_since is None:
            logger.warning(
                "Cannot list live-session registry %s (%s); showing the last good state",
                self.directory,
                problem,
            )
            self._unreadable_since = datetime.now(timezone.utc)
            self._publish(loaded=True)
        elif not self._loaded.is_set():  # after a crashed first load, which said so already
            self._publish(loaded=True)
        self._set_loaded()
        return []

    def _apply(
        self,
        listing: Mapping[str, FileStamp | SkippedFile | None],
        changed: list[str],
        gone: list[str],
        progress_total: int,
        cached: Mapping[str, SessionHead] | None = None,
    ) -> list[SessionChange]:
        # The first load reports none: nobody has seen a state before, and
        # 100,000 change records made between the heads would leave the heap
        # full of holes once dropped.
        first = not self._loaded.is_set() and not self._heads and not self._skipped
        changes: list[SessionChange] | None = None if first else []
        cached = cached or {}
        # Many changes (the first load): one sort beats thousands of inserts.
        bulk = len(changed) + len(gone) > BULK_RESORT
        for name in gone:
            self._forget(name, bulk, changes)
        hits = 0
        if bulk and cached and not self._heads and not self._skipped:
            hits = self._adopt_cached(listing, cached)
        to_read: list[tuple[str, FileStamp | None]] = []
        for name in changed:
            candidate = listing[name]
            if hits and name in self._heads:
                continue  # adopted from the cache
            if isinstance(candidate, SkippedFile):
                self._integrate(name, candidate, candidate, bulk, changes)
            elif (known := cached.get(name)) is not None and known.stamp == candidate:
                hits += 1
                self._integrate(name, known.stamp, known, bulk, changes)
            else:
                to_read.append((name, candidate))
        # The cache needs writing when anything in it differs from the directory.
        if to_read or gone or hits != len(cached):
            self._cache_dirty = True
        self._read(to_read, bulk, changes, progress_total)
        if bulk:
            self._resort()
        return changes or []

    def _read(
        self,
        to_read: list[tuple[str, FileStamp | None]],
        bulk: bool,
        changes: list[SessionChange] | None,
        progress_total: int,
    ) -> None:
        done = 0
        for batch, heads in read_in_batches(str(self.directory), to_read):
            for (name, _), (stamp, head) in zip(batch, heads, strict=True):
                if isinstance(head, SessionHead):  # key by the head's own string: one per file
                    name = head.file_name
                self._integrate(name, stamp, head, bulk, changes)
            done += len(batch)
            if progress_total and not self._loaded.is_set():
                self._snapshot = IndexSnapshot(
                    generation=self._snapshot.generation,
                    directory=self.directory,
                    progress=(done, len(to_read)),
                )

    def _compact(self) -> None:
        """Lay the heads of a first load from the files out anew, as the cache would.

        Parsed from files, they lie scattered among the parser's dead objects:
        at 100,000 sessions that held 17 MB more (99 against 83 MB in-process)
        and made every cold view walk them through cache misses (3-4x slower).
        Encoded, dropped, then decoded, they lie as compact as heads from the
        head cache. Done before the first snapshot, while no reader holds one,
        and only by a persistent index (a process that lives on: the server,
        the programmatic index), not for one full read.
        """
        encoded = encode_heads(self._ordered)
        self._heads, self._ordered, self._ids = {}, [], IdTally()
        forget_shared()  # the profiles made while parsing lie among the dead objects too
        # Only a full collection empties the free lists (2,000 dead tuples of each
        # size), which would keep nearly every freed 1 MB arena: measured 38 MB.
        gc.collect()
        self._ordered = decode_heads(encoded)
        self._heads = {head.file_name: head for head in self._ordered}
        self._ids = IdTally(self._ordered)

    def _install(self, cached: _CachedIndex) -> None:
        self._heads = cached.heads
        self._skipped = cached.skipped
        for name, (_, skipped) in cached.skipped.items():  # as if read: one warning each
            self._warn_skipped(name, skipped)
        self._ordered, self._ids = cached.ordered, cached.ids

    def _adopt_cached(
        self,
        listing: Mapping[str, FileStamp | SkippedFile | None],
        cached: Mapping[str, SessionHead],
    ) -> int:
        """Take every cached head whose file is unchanged: the cold start's common
        case, 100,000 times. In the cache's order, so the sort that follows finds
        the heads sorted; no changes reported, as nobody has seen a state before."""
        for name, head in cached.items():
            if listing.get(name) == head.stamp:
                # Keyed by the head's own name object: one string per file, not two.
                self._heads[name] = head
        return len(self._heads)

    def apply_heads(
        self,
        read: Mapping[str, SessionHead | SkippedFile],
        gone: Iterable[str],
        loaded: bool = True,
    ) -> list[SessionChange]:
        """Take heads another source read (PostgreSQL rows), keyed like file names.

        The same bookkeeping and snapshots as for the directory, so every view
        answers alike whichever source fed the index.
        """
        with self._lock:
            changes: list[SessionChange] = []
            removed = [name for name in gone if self._known(name)]
            bulk = len(read) + len(removed) > BULK_RESORT
            for name in removed:
                self._forget(name, bulk, changes)
            for name, head in read.items():
                seen = head if isinstance(head, SkippedFile) else head.stamp
                self._integrate(name, seen, head, bulk, changes)
            if bulk:
                self._resort()
            if changes or removed or read or (loaded and not self._loaded.is_set()):
                self._publish(loaded=loaded or self._loaded.is_set())
            if loaded:
                self._set_loaded()
            return changes

    def _forget(self, name: str, bulk: bool, changes: list[SessionChange] | None) -> None:
        self._skipped.pop(name, None)
        before = self._heads.pop(name, None)
        if before is not None:
            if not bulk:
                self._remove_ordered(before)
            if changes is not None:
                changes.append(SessionChange(before, None))

    def _resort(self) -> None:
        self._ordered = sorted(self._heads.values(), key=order_key)
        self._ids = IdTally(self._ordered)

    def _warn_skipped(self, name: str, skipped: SkippedFile) -> None:
        logger.warning("Skipping live-session file %s: %s", self.directory / name, skipped.reason)

    def _integrate(
        self,
        name: str,
        seen: FileStamp | SkippedFile,
        head: SessionHead | SkippedFile,
        bulk: bool,
        changes: list[SessionChange] | None,
    ) -> None:
        before = self._heads.pop(name, None)
        if before is not None and not bulk:
            self._remove_ordered(before)
        after = None
        if isinstance(head, SkippedFile):
            known = self._skipped.get(name)
            if known is None or known[1] != head:  # retried I/O errors: one warning each
                self._warn_skipped(name, head)
            self._skipped[name] = (seen, head)
        else:
            self._skipped.pop(name, None)
            self._heads[name] = after = head
            if not bulk:
                bisect.insort(self._ordered, head, key=order_key)
                self._ids.add(head, self._ordered)
        if changes is not None and (before is not None or after is not None):
            changes.append(SessionChange(before, after))

    def _remove_ordered(self, head: SessionHead) -> None:
        position = bisect.bisect_left(self._ordered, order_key(head), key=order_key)
        if position < len(self._ordered) and self._ordered[position] is head:
            del self._ordered[position]
        else:  # equal keys cannot happen (file names are unique); stay safe anyway
            self._ordered.remove(head)
        self._ids.remove(head)

    def _publish(self, loaded: bool) -> None:
        total = len(self._heads) + len(self._skipped)
        self._snapshot = IndexSnapshot(
            generation=self._snapshot.generation + 1,
            directory=self.directory,
            sessions=tuple(reversed(self._ordered)),
            skipped=tuple(sorted((s for _, s in self._skipped.values()), key=lambda s: s.name)),
            loaded=loaded,
            progress=(total, total),
            conflicts=self._conflicts(),
            unreadable_since=self._unreadable_since,
            source_exists=self.source_exists(),
        )

    def source_exists(self) -> bool:
        """Whether the registry is there at all (a missing directory is not an empty one)."""
        return self.directory.is_dir()

    def _conflicts(self) -> dict[str, tuple[str, ...]]:
        duplicates = self._ids.duplicates
        if not duplicates:
            return {}
        files: dict[str, list[str]] = {}
        for head in self._heads.values():
            if head.session_id in duplicates:
                files.setdefault(head.session_id, []).append(head.file_name)
        # Sorted, so the same registry gives the same view whatever order it was read in.
        return {session_id: tuple(sorted(files[session_id])) for session_id in sorted(files)}


BULK_RESORT = 256
# A first load that read this many files lays its heads out anew (_compact).
COMPACT_AFTER_FILES = 4_000
# A cache of about 4,000 heads: below it a helper process costs more than it saves.
PARALLEL_LISTING_BYTES = 1_000_000
HELPER_LISTING_FILES = 4_000
# A prefetched listing older than this is not used: the first load lists anew.
PREFETCH_MAX_AGE_SECONDS = 10.0

_stamp_of: Callable[[SessionHead], FileStamp] = operator.attrgetter("stamp")


_prefetched: dict[str, PendingListing] = {}
_activity: Callable[[SessionHead], float] = operator.attrgetter("activity")


def _in_order(heads: list[SessionHead]) -> bool:
    """Whether the heads are strictly in ``order_key`` order, checked in C but for
    the few ties in activity time (a tuple key per head would cost 35 ms at 100,000)."""
    times = list(map(_activity, heads))
    if not all(map(operator.le, times, times[1:])):
        return False
    ties = itertools.compress(range(len(times) - 1), map(operator.eq, times, times[1:]))
    return all(heads[i].file_name < heads[i + 1].file_name for i in ties)


def _listed_by_helper(pending: PendingListing, cached: _CachedIndex | None) -> tuple[Listing, bool]:
    """The helper's listing, or True where it found the directory exactly as cached."""
    found = pending.result()
    if not isinstance(found, UnchangedListing):
        return found, False
    if cached is not None and cached.fingerprint == found.fingerprint:
        return {}, True
    # Another process rewrote the cache between the helper's look and ours.
    return list_registry(pending.directory), False


def prefetch_listing(directory: Path) -> None:
    """Start a persistent index's cold-start listing now, for a process whose
    index comes after slow imports (``live-track sessions list``, the server).

    The listing is the directory as it was at this call: fine for a one-shot
    command, whose answer comes after it anyway; a server reconciles once more
    right after loading (``LiveUpdates``). Never used, it is stopped at exit.
    """
    if cache_bytes(directory) > PARALLEL_LISTING_BYTES:
        pending = PendingListing(directory, cache_file(directory))
        _prefetched.setdefault(os.path.abspath(directory), pending)


def _prefetched_listing(directory: Path) -> PendingListing | None:
    """The listing prefetched for this directory, unless it is too old to stand for now
    (a process that imported the app, or ran a command, long before this first load)."""
    pending = _prefetched.pop(os.path.abspath(directory), None)
    if pending is not None and time.monotonic() - pending.started > PREFETCH_MAX_AGE_SECONDS:
        pending.cancel()
        return None
    return pending


def drop_prefetched(keep: Path | None = None) -> None:
    """Stop the prefetched listings no index will ask for: all but ``keep``'s.

    Unread, a helper blocks on its full pipe, holding its listing, until exit.
    """
    kept = None if keep is None else os.path.abspath(keep)
    for key in list(_prefetched):
        if key != kept and (pending := _prefetched.pop(key, None)) is not None:
            pending.cancel()


@atexit.register
def _drop_prefetched() -> None:
    drop_prefetched()


def directory_problem(directory: Path, listed_before: bool) -> str | None:
    """Why the registry directory cannot be listed now, or None when it can.

    A directory that never existed is an empty registry (a fresh install);
    one that existed and is gone now (deleted, unmounted) is a problem.
    """
    try:
        with os.scandir(directory):
            return None
    except FileNotFoundError as exc:
        return (exc.strerror or str(exc)) if listed_before else None
    except OSError as exc:
        return exc.strerror or str(exc)


# glibc's mallopt parameter and the size above which blocks come from mmap.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 128 * 1024


def _pin_mmap_threshold() -> None:
    """Keep large blocks (a snapshot's 800 KB tuple, a 5 MB dict) returnable.

    glibc raises its mmap threshold each time a large block is freed, up to
    32 MB; from then on large blocks come from the heap, where the long-lived
    heads around them pin the freed space. Measured at 100,000 sessions with
    the index loaded in a thread: 170 MB resident without this, 143 MB with it.
    """
    libc = _libc()
    with contextlib.suppress(AttributeError):  # not glibc
        if libc is not None:
            libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)


def release_free_memory() -> None:
    """Hand the heap's free pages back to the system.

    Parsing 100,000 files leaves about a sixth of the heap free but held by
    the allocator, and a busy server's request threads leave theirs; glibc's
    malloc_trim returns it (nothing elsewhere). It takes up to a few
    milliseconds (it locks each heap in turn), so it runs off the event loop.
    """
    libc = _libc()
    with contextlib.suppress(AttributeError):  # not glibc
        if libc is not None:
            libc.malloc_trim(0)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """This process's C library, looked up once: a server trims after every
    refresh, and each lookup made a new handle and a cycle for the GC."""
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection meanwhile; it walks every young object again and again
    while hundreds of thousands of long-lived ones are made. The last of overlapping
    pauses (threads) turns it back on, if it was on: counted under a lock, since a
    thread switch between reading and turning it off could otherwise leave it off."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


_gc_lock = threading.Lock()
_gc_pauses = 0  # pauses in progress, in all threads
_gc_was_enabled = False  # whether the first of them found the GC on
