"""A persistent cache of parsed session heads, so a new process need not read every file.

Reading and parsing 100,000 records costs seconds; stat'ing them costs a
fraction of that. The cache keeps, per registry, the head of every record
together with the file's name, size and mtime; a new process lists the
directory, takes the head of every file whose stamp is unchanged from the
cache, and reads only the others. So its results are those of a full scan.

Where: ``$XDG_CACHE_HOME/peak-trade-live-track/`` (else
``~/.cache/peak-trade-live-track/``), one file per registry directory, named
by a hash of the directory's absolute path. It is never inside the registry,
which stays read-only. The file is written atomically (temp file + rename),
versioned by the head's fields and the Python version (``marshal`` is the
format), and ignored when it is corrupt, stale or of another version. Where it
cannot be written (read-only file system, no home) the process simply works
without it. ``LIVE_TRACK_CACHE=off`` disables it. Caches nobody loaded or
wrote for 30 days are deleted whenever a cache is written.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import marshal
import os
import sys
import time
from array import array
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from src.experiments.registry_files import (
    CACHE_FINGERPRINT_AT,
    FINGERPRINT_BYTES,
    FINGERPRINT_SOURCE,
    FileStamp,
    listing_fingerprint,
)
from src.experiments.session_head import (
    HEAD_LAYOUT,
    SessionHead,
    plain_profile,
    profile_from_plain,
)

logger = logging.getLogger(__name__)

CACHE_ENV = "LIVE_TRACK_CACHE"
CACHE_DIR_NAME = "peak-trade-live-track"
_FIELDS_HASH = hashlib.sha256((HEAD_LAYOUT + FINGERPRINT_SOURCE).encode()).hexdigest()[:16]
# A change of the head's fields, of the fingerprint, of the wire format or of
# Python invalidates it.
VERSION = f"heads-10-{_FIELDS_HASH}-py{sys.version_info[0]}.{sys.version_info[1]}"


# The file: the SHA-256 of the rest, the listing's fingerprint, the columns.
_DIGEST = CACHE_FINGERPRINT_AT
UNUSED_DAYS = 30  # a cache nobody loaded or wrote for this long is deleted
ABANDONED_WRITE_SECONDS = 600  # a temp file this old is no write in progress


def cache_enabled() -> bool:
    """The one place that reads ``LIVE_TRACK_CACHE`` (off, 0, false or no disable it)."""
    value = os.environ.get(CACHE_ENV, "on").strip().lower()
    return value not in {"off", "0", "false", "no"}


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / CACHE_DIR_NAME


def cache_file(directory: Path) -> Path:
    """The cache file of one registry: named by its absolute path, outside it."""
    key = hashlib.sha256(os.fsencode(os.path.abspath(directory))).hexdigest()[:24]
    return cache_root() / f"registry-{key}.heads"


def cache_bytes(directory: Path) -> int:
    """The size of the registry's cache file (0 without one): how big a cold start is."""
    if not cache_enabled():
        return 0
    try:
        return cache_file(directory).stat().st_size
    except OSError:
        return 0


class SkippedRecord(NamedTuple):
    """A regular file in the registry that is no record, as last read."""

    name: str
    stamp: FileStamp
    reason: str


class CachedHeads(NamedTuple):
    """A registry's heads, and its files that are no records, as its cache holds them."""

    heads: dict[str, SessionHead]  # by file name, oldest activity first (as saved)
    skipped: list[SkippedRecord]
    # Of the directory listing these files are exactly (``listing_fingerprint``).
    fingerprint: bytes


NO_CACHE = CachedHeads({}, [], b"")


def load_heads(directory: Path) -> CachedHeads:
    """The cached heads; none when there is no usable cache."""
    if not cache_enabled():
        return NO_CACHE
    path = cache_file(directory)
    try:
        with open(path, "rb") as handle:
            payload = handle.read()
    except OSError:
        return NO_CACHE
    with contextlib.suppress(OSError):  # in use: pruning keeps it (see prune_unused)
        os.utime(path)
    try:
        view = memoryview(payload)  # slices without copying 26 MB (at 100,000 heads) twice
        digest, signed = payload[:_DIGEST], view[_DIGEST:]
        if hashlib.sha256(signed).digest() != digest:
            raise ValueError("checksum mismatch (truncated or altered)")
        fingerprint, body = bytes(signed[:FINGERPRINT_BYTES]), signed[FINGERPRINT_BYTES:]
        version, owner, columns, skipped = marshal.loads(body)
        if version != VERSION or owner != os.path.abspath(directory):
            return NO_CACHE
        heads = dict(zip(columns["file_name"], _from_columns(columns), strict=True))
        return CachedHeads(heads, list(map(SkippedRecord._make, skipped)), fingerprint)
    except Exception as exc:  # any corruption: ignore the cache, read the files
        logger.info("Ignoring the unreadable head cache %s: %s", path, exc)
        return NO_CACHE


def save_heads(
    directory: Path, heads: Iterable[SessionHead], skipped: Iterable[SkippedRecord] = ()
) -> bool:
    """Write the cache atomically; False (silently) where that is not possible.

    Give the heads in the index's order: the next process then sorts a sorted
    list, which costs one pass. The skipped files (a corrupt record, a foreign
    file) come along, so that one of them does not keep the next process from
    taking the cache whole."""
    if not cache_enabled():
        return False
    path = cache_file(directory)
    columns = _to_columns(list(heads))
    others = list(skipped)
    # Right after the checksum, where a listing helper reads it (registry_files).
    signed = listing_fingerprint(
        [*columns["file_name"], *(record.name for record in others)],
        [*columns["stamp"], *(record.stamp for record in others)],
    )
    plain = [tuple(record) for record in others]  # marshal takes plain tuples only
    signed += marshal.dumps((VERSION, os.path.abspath(directory), columns, plain))
    payload = hashlib.sha256(signed).digest() + signed
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
        prune_unused(path.parent)
    except OSError as exc:  # read-only file system, no home directory, disk full
        logger.debug("Cannot write the head cache %s: %s", path, exc)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return False
    return True


def prune_unused(root: Path, max_age_seconds: float = UNUSED_DAYS * 86400) -> list[Path]:
    """Delete the caches no process loaded or wrote for ``UNUSED_DAYS`` days,
    and the temp files of writes that never finished.

    Each is named by a hash of its registry's path, so the caches of deleted or
    renamed registries (one per day's directory, a benchmark's temporary copy)
    would otherwise pile up, 26 MB each at 100,000 sessions. A cache pruned
    while its registry still exists is simply rebuilt by the next cold start.
    """
    now = time.time()
    pruned = []
    with contextlib.suppress(OSError), os.scandir(root) as entries:
        for entry in entries:
            if entry.name.startswith("registry-") and entry.name.endswith(".heads"):
                cutoff = now - max_age_seconds
            elif entry.name.startswith(".registry-") and entry.name.endswith(".tmp"):
                # A write whose process died (killed, or a daemon thread at exit).
                cutoff = now - ABANDONED_WRITE_SECONDS
            else:
                continue
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
                    pruned.append(Path(entry.path))
    return pruned


# --- Columns ------------------------------------------------------------------
# One list per field: marshal reads a few long lists much faster than 100,000
# tuples, and every conversion below runs in C (map, zip), not per head in Python.

_new_head = functools.partial(tuple.__new__, SessionHead)
# Texts many heads repeat (error messages), unlike names and ids. Equal texts
# are saved as one object, which marshal writes once and loads as one object,
# so a new process holds each once instead of once per head.
_REPEATED_TEXT = frozenset({"error", "report_path"})


def encode_heads(heads: list[SessionHead]) -> bytes:
    """Heads as bytes, in the cache's format, for ``decode_heads`` in this process."""
    return marshal.dumps(_to_columns(heads))


def decode_heads(encoded: bytes) -> list[SessionHead]:
    return _from_columns(marshal.loads(encoded))


def _to_columns(heads: list[SessionHead]) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for position, name in enumerate(SessionHead._fields):
        values: list[Any] = [head[position] for head in heads]
        if name == "profile":  # the few distinct ones, and which one each head has
            table: dict[Any, int] = {}
            numbers = [table.setdefault(plain_profile(p), len(table)) for p in values]
            values = [list(table), array("I", numbers).tobytes()]
        elif name in _REPEATED_TEXT:  # each text once: marshal then writes (and loads) one
            shared: dict[str | None, str | None] = {}
            values = list(map(shared.setdefault, values, values))
        columns[name] = values
    return columns


def _from_columns(columns: dict[str, Any]) -> list[SessionHead]:
    fields: list[Iterable[Any]] = []
    for name in SessionHead._fields:
        if name == "profile":
            table, numbers = columns[name]
            profiles = list(map(profile_from_plain, table))
            fields.append(map(profiles.__getitem__, array("I", numbers)))
        else:
            fields.append(columns[name])
    return list(map(_new_head, zip(*fields, strict=True)))
