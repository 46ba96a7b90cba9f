"""Keep the index current and tell open pages when the registry changed.

One watcher per server process, however many tabs are open: a file watch
(watchfiles/inotify) re-reads the files it reports, and a periodic
reconciliation catches what a watch can miss (in-place rewrites on network
file systems, a directory created later, a watcher restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

from src.experiments.live_session_record import utc_instant
from src.experiments.registry_index import (
    IndexSnapshot,
    RegistryIndex,
    SessionChange,
    release_free_memory,
)
from src.experiments.session_head import SessionHead
from src.webui.live_track import SessionRules, utcnow
from src.webui.session_query import (
    all_statuses,
    build_seconds,
    head_status,
    is_stale,
    is_terminal,
)

logger = logging.getLogger(__name__)

SUBSCRIBER_BACKLOG = 64
MIN_REFRESH_SECONDS = 0.3
MAX_REFRESH_SECONDS = 1.2


def refresh_interval(view_seconds: float) -> float:
    """Seconds between two snapshots while a writer is busy.

    Each snapshot makes every open view recompute (0.4 s of CPU at 100,000
    sessions); at most half the time goes to that, and a page still hears of
    a change within MAX_REFRESH_SECONDS.
    """
    return min(MAX_REFRESH_SECONDS, max(MIN_REFRESH_SECONDS, 2 * view_seconds))


# Staleness moves with the clock, not with the registry: judge it this often.
STALE_CHECK_SECONDS = 2.0
# After the first load, the first full pass comes this soon (then every reconcile_seconds).
FIRST_RECONCILE_SECONDS = 2.0
# How often the watch wakes without events to check its directory is still the same.
WATCH_CHECK_MILLISECONDS = 1000
# The loops wait for the first load in steps this long: a thread blocked in one
# long wait outlives its cancelled task, and the interpreter joins it at exit.
LOAD_WAIT_STEP_SECONDS = 0.5


def directory_identity(directory: Path) -> tuple[int, int] | None:
    """(device, inode) of the directory, None when it is gone."""
    try:
        info = os.stat(directory)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


# Only sessions that ended this recently are news (by finished_at): a registry
# that comes back after an outage must not announce every old session again.
RECENT_END_SECONDS = 5 * 60
# Toasts and desktop notifications per update; the rest become one summary toast.
MAX_ENDED_PER_UPDATE = 5


def _notice(head: SessionHead, rules: SessionRules) -> dict[str, Any]:
    return {
        "session_id": head.session_id,
        "mode": head.mode,
        "status": head_status(head),
        "realized_pnl": head.realized_pnl,
        "currency": head.currency,
        "real_money": rules.is_real_money(head.mode),
    }


def ended_sessions(
    changes: list[SessionChange], rules: SessionRules, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Sessions that reached an end state recently in these changes, for notifications."""
    now = now or datetime.now(timezone.utc)
    ended = []
    for change in changes:
        after = change.after
        if after is None or not is_terminal(after):
            continue
        if change.before is not None and is_terminal(change.before):
            continue
        finished = after.finished_at or after.updated_at
        if finished is None or (now - utc_instant(finished)).total_seconds() > RECENT_END_SECONDS:
            continue
        ended.append(_notice(after, rules))
    return ended


def stale_sessions(snapshot: IndexSnapshot, now: datetime, rules: SessionRules) -> set[str]:
    """Ids of the running sessions whose heartbeats stopped longer ago than the limit."""
    # The running sessions are found once per snapshot, shared with the pages.
    running = all_statuses(snapshot).running
    return {head.session_id for head in running if is_stale(head, now, rules.stale_after)}


class LiveUpdates:
    """Owns the watcher tasks and the queues of the open event streams."""

    def __init__(
        self, index: RegistryIndex, rules: SessionRules, reconcile_seconds: float, watch: bool
    ) -> None:
        self.index = index
        self.rules = rules
        self._stale: set[str] | None = None  # None: not judged yet
        self._reconcile_seconds = reconcile_seconds
        self._watch = watch
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        # Set when the server is asked to exit, so open event streams end and
        # do not hold up shutdown (or a --reload restart).
        self.closing = asyncio.Event()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self, limit: int | None = None) -> asyncio.Queue[dict[str, Any]] | None:
        """A queue for one event stream; None when ``limit`` streams are open already."""
        if limit is not None and len(self._subscribers) >= limit:
            return None
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(SUBSCRIBER_BACKLOG)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)

    def publish(
        self, changes: list[SessionChange], stale: list[dict[str, Any]] | None = None
    ) -> None:
        ended = ended_sessions(changes, self.rules)
        event = {
            "generation": self.index.snapshot().generation,
            "ended": ended[:MAX_ENDED_PER_UPDATE],
            "ended_more": max(0, len(ended) - MAX_ENDED_PER_UPDATE),
            "stale": stale or [],
        }
        for queue in self._subscribers:
            if queue.full():  # a stalled tab gets the newest state, not a backlog
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

    async def start(self) -> None:
        self._end_streams_on_exit_signal()
        self.index.start_loading()
        self._tasks.append(asyncio.create_task(self._reconcile_loop()))
        self._tasks.append(asyncio.create_task(self._stale_loop()))
        if self._watch:
            self._tasks.append(asyncio.create_task(self._watch_loop()))

    def _end_streams_on_exit_signal(self) -> None:
        """Chain onto the server's SIGINT/SIGTERM handlers (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(signum)

            def handler(sig: int, frame: FrameType | None, previous: Any = previous) -> None:
                loop.call_soon_threadsafe(self.closing.set)
                if callable(previous):
                    previous(sig, frame)

            signal.signal(signum, handler)

    async def stop(self) -> None:
        self.closing.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _refresh(self, names: set[str] | None = None) -> None:
        generation = self.index.snapshot().generation
        if names is None:
            changes = await asyncio.to_thread(self.index.reconcile)
        else:
            changes = await asyncio.to_thread(self._refresh_names, names)
        # A new generation without changes: the registry became unreadable or
        # readable again, and open pages must show (or drop) the banner.
        if changes or self.index.snapshot().generation != generation:
            self.publish(changes)

    def _refresh_names(self, names: set[str]) -> list[SessionChange]:
        changes = self.index.refresh_names(names)
        # While writers are busy, the page builds of the last snapshot leave
        # freed pages in the request threads' heaps. The 45 s write storm's RSS
        # peak at 100,000 sessions (benchmarks.load), three runs each: 157-175 MB
        # without this, 151-167 MB with it.
        release_free_memory()
        return changes

    async def _first_load_ended(self) -> None:
        """Wait until the first load ended (loaded or failed), in short steps, so
        that the server's exit never waits for a load, let alone a crashed one."""
        while not await asyncio.to_thread(self.index.wait_loaded, LOAD_WAIT_STEP_SECONDS):
            if self.index.load_failed:
                return

    def _freeze_loaded_index(self) -> bool:
        """Hide the loaded index from the cyclic GC; False while it is not loaded.

        It is hundreds of thousands of long-lived objects; left to the cyclic
        GC, every later collection would walk them all again.
        """
        if not self.index.wait_loaded(0):
            return False
        gc.freeze()
        return True

    async def _reconcile_loop(self) -> None:
        await self._first_load_ended()
        frozen = self._freeze_loaded_index()
        self.publish([])  # pages that opened while the index loaded (or failed to)
        # The first pass soon: the first load's listing may predate the watch
        # (it starts while the server imports), so a change in between is caught.
        # After a failed first load, this pass is the next try.
        pause = min(FIRST_RECONCILE_SECONDS, self._reconcile_seconds)
        while True:
            await asyncio.sleep(pause)
            pause = self._reconcile_seconds
            try:
                await self._refresh()
            except Exception:  # the loop must outlive any one bad pass
                logger.exception("Reconciling the live-session registry failed")
            frozen = frozen or self._freeze_loaded_index()

    def check_stale(self, now: datetime | None = None) -> None:
        """Tell open pages when a session turned stale (or came back), registry
        change or not; sessions newly stale are listed for a notification."""
        snapshot = self.index.snapshot()
        if not snapshot.loaded:
            return  # the first look waits for the sessions: all would look newly stale
        stale = stale_sessions(snapshot, now or utcnow(), self.rules)
        known, self._stale = self._stale, stale
        if known is None or stale == known:
            return  # the first look only learns what was stale already
        newly = [_notice(snapshot.by_id[sid], self.rules) for sid in stale - known]
        self.publish([], stale=[notice for notice in newly if notice["status"] == "started"])

    async def _stale_loop(self) -> None:
        await self._first_load_ended()
        while True:
            try:
                self.check_stale()
            except Exception:  # the loop must outlive any one bad pass
                logger.exception("Checking live sessions for staleness failed")
            await asyncio.sleep(STALE_CHECK_SECONDS)

    async def _watch_loop(self) -> None:
        from watchfiles import awatch

        directory: Path = self.index.directory
        root = os.path.abspath(directory)
        lost = False
        while True:
            if not directory.is_dir():
                await asyncio.sleep(1.0)
                if directory.is_dir():
                    await self._refresh()
                continue
            watched = directory_identity(directory)
            if lost:
                logger.warning("Registry watch re-established on %s", directory)
                lost = False
            try:
                async for batch in awatch(
                    directory,
                    debounce=150,
                    step=50,
                    recursive=False,
                    rust_timeout=WATCH_CHECK_MILLISECONDS,
                    yield_on_timeout=True,
                ):
                    # inotify watches the directory's inode: once it is deleted or
                    # replaced, no event ever comes again, so check it ourselves.
                    # A recreated directory may reuse the inode number, hence the
                    # directory's own deletion event counts too.
                    if directory_identity(directory) != watched or any(
                        os.path.abspath(path) == root for _, path in batch
                    ):
                        logger.warning(
                            "Registry directory %s was removed or replaced; "
                            "re-establishing the watch",
                            directory,
                        )
                        lost = True
                        break
                    if not batch:
                        continue
                    started = time.monotonic()
                    cost = build_seconds(self.index.snapshot())
                    await self._refresh({Path(path).name for _, path in batch})
                    # A busy writer gets one new snapshot per interval, not one per
                    # file: each snapshot makes every open view recompute once.
                    # Changes meanwhile wait in the watcher for the next batch.
                    await asyncio.sleep(refresh_interval(cost) - (time.monotonic() - started))
            except Exception:
                logger.warning("Registry watch stopped; reconciling and restarting", exc_info=True)
                lost = True
            await asyncio.sleep(1.0)
            await self._refresh()
