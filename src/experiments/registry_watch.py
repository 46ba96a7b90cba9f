"""Keep an index fresh for scripts and the CLI: an inotify watch drained on every call.

The server runs its own asyncio watcher. A script calling the programmatic
functions again and again needs something else: listing and stat'ing 100,000
files per call (a full reconcile) costs a second. The kernel queues an inotify
event the moment a file is written, renamed or removed, so draining that queue
without blocking at the start of a call finds every change made before the
call, for a few microseconds. A background thread reconciles now and then to
catch what a watch cannot see (network file systems); where inotify is
missing (not Linux) or fails, every call reconciles, as before.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import errno
import logging
import os
import struct
import sys
import threading
import weakref

from src.experiments.registry_index import RegistryIndex

logger = logging.getLogger(__name__)

# <sys/inotify.h>
_IN_ATTRIB = 0x004
_IN_MODIFY = 0x002
_IN_CLOSE_WRITE = 0x008
_IN_MOVED_FROM = 0x040
_IN_MOVED_TO = 0x080
_IN_CREATE = 0x100
_IN_DELETE = 0x200
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_IN_Q_OVERFLOW = 0x4000
_IN_IGNORED = 0x8000
_IN_ONLYDIR = 0x01000000
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_WATCHED = (
    _IN_ATTRIB
    | _IN_MODIFY
    | _IN_CLOSE_WRITE
    | _IN_MOVED_FROM
    | _IN_MOVED_TO
    | _IN_CREATE
    | _IN_DELETE
    | _IN_DELETE_SELF
    | _IN_MOVE_SELF
)
# The watch itself is gone or the kernel dropped events: only a full pass helps.
_LOST = _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_Q_OVERFLOW | _IN_IGNORED
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        return libc
    except (OSError, AttributeError):
        return None


class WatchedIndex:
    """A registry index plus what keeps it current between calls of one process."""

    def __init__(self, index: RegistryIndex, reconcile_seconds: float = 30.0) -> None:
        self.index = index
        self._reconcile_seconds = reconcile_seconds
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._libc = _libc()

    @property
    def watching(self) -> bool:
        return self._fd is not None

    def fresh(self) -> RegistryIndex:
        """The index, with every change made before this call applied."""
        with self._lock:
            if self._fd is None:
                self._start_watch()  # before the pass: no change falls in between
                self.index.reconcile()
                self._start_thread()
                return self.index
            names, lost = self._drain()
        if lost:
            self._reset()
            return self.fresh()
        if names:
            self.index.refresh_names(names)
        return self.index

    def _start_watch(self) -> None:
        if self._libc is None or not self.index.directory.is_dir():
            return
        fd = self._libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            return
        path = os.fsencode(self.index.directory)
        if self._libc.inotify_add_watch(fd, path, _WATCHED | _IN_ONLYDIR) < 0:
            os.close(fd)
            return
        self._fd = fd

    def _drain(self) -> tuple[set[str], bool]:
        """Names of the files changed since the last drain; True if events were lost."""
        names: set[str] = set()
        assert self._fd is not None
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return names, False
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                return names, True
            offset = 0
            while offset + _EVENT.size <= len(data):
                _, mask, _, length = _EVENT.unpack_from(data, offset)
                offset += _EVENT.size
                raw = data[offset : offset + length].rstrip(b"\0")
                offset += length
                if mask & _LOST:
                    return names, True
                if raw:
                    names.add(os.fsdecode(raw))

    def _reset(self) -> None:
        with self._lock:
            self._close_fd()

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _start_thread(self) -> None:
        if self._thread is not None:
            return
        # The thread holds only a weak reference, so a dropped index can be freed.
        self._thread = threading.Thread(
            target=_reconcile_loop,
            args=(weakref.ref(self), self._stop, self._reconcile_seconds),
            name=f"registry-reconcile-{self.index.directory.name}",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        """Stop the reconciling thread and close the watch (at exit, or in tests)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None
        with self._lock:
            self._close_fd()


def _reconcile_loop(ref: weakref.ref[WatchedIndex], stop: threading.Event, seconds: float) -> None:
    while not stop.wait(seconds):
        watched = ref()
        if watched is None:
            return
        try:
            if watched.watching:
                watched.index.reconcile()
        except Exception:  # the loop must outlive any one bad pass
            logger.exception("Reconciling the live-session registry failed")
        del watched


_open: weakref.WeakSet[WatchedIndex] = weakref.WeakSet()


def watched_index(index: RegistryIndex, reconcile_seconds: float = 30.0) -> WatchedIndex:
    """Wrap an index in a watch that is closed when the process exits."""
    watched = WatchedIndex(index, reconcile_seconds)
    _open.add(watched)
    return watched


@atexit.register
def _close_all() -> None:
    for watched in list(_open):
        watched.close()
