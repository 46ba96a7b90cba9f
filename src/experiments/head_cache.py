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
without it. ``LIVE_TRACK_CACHE=off`` disables it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import marshal
import os
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from src.experiments.registry_files import FileStamp
from src.experiments.session_head import SessionHead

logger = logging.getLogger(__name__)

CACHE_ENV = "LIVE_TRACK_CACHE"
CACHE_DIR_NAME = "peak-trade-live-track"
_FIELDS_HASH = hashlib.sha256(
    repr([(name, str(kind)) for name, kind in SessionHead.__annotations__.items()]).encode()
).hexdigest()[:16]
# A change of the head's fields, of the wire format or of Python invalidates it.
VERSION = f"heads-4-{_FIELDS_HASH}-py{sys.version_info[0]}.{sys.version_info[1]}"


_DIGEST = 32  # the file starts with the SHA-256 of the rest


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


def load_heads(directory: Path) -> dict[str, SessionHead]:
    """The cached heads by file name; empty when there is no usable cache."""
    if not cache_enabled():
        return {}
    path = cache_file(directory)
    try:
        with open(path, "rb") as handle:
            payload = handle.read()
    except OSError:
        return {}
    try:
        digest, body = payload[:_DIGEST], payload[_DIGEST:]
        if hashlib.sha256(body).digest() != digest:
            raise ValueError("checksum mismatch (truncated or altered)")
        version, owner, columns = marshal.loads(body)
        if version != VERSION or owner != os.path.abspath(directory):
            return {}
        heads = _from_columns(columns)
        return {head.file_name: head for head in heads}
    except Exception as exc:  # any corruption: ignore the cache, read the files
        logger.info("Ignoring the unreadable head cache %s: %s", path, exc)
        return {}


def save_heads(directory: Path, heads: Iterable[SessionHead]) -> bool:
    """Write the cache atomically; False (silently) where that is not possible."""
    if not cache_enabled():
        return False
    path = cache_file(directory)
    body = marshal.dumps((VERSION, os.path.abspath(directory), _to_columns(list(heads))))
    payload = hashlib.sha256(body).digest() + body
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    except OSError as exc:  # read-only file system, no home directory, disk full
        logger.debug("Cannot write the head cache %s: %s", path, exc)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return False
    return True


# --- Columns ------------------------------------------------------------------
# One list per field: marshal reads a few long lists much faster than 100,000
# tuples, and every conversion below runs in C (map, zip), not per head in Python.

_TIME_FIELDS = frozenset(
    name for name, kind in SessionHead.__annotations__.items() if "datetime" in str(kind)
)
_SHARED_TEXT = frozenset(
    {"run_type", "mode", "env_name", "symbol", "status", "currency", "strategy_name"}
)
_new_head = functools.partial(tuple.__new__, SessionHead)
_new_stamp = functools.partial(tuple.__new__, FileStamp)


def _to_columns(heads: list[SessionHead]) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for position, name in enumerate(SessionHead._fields):
        values: list[Any] = [head[position] for head in heads]
        if name in _TIME_FIELDS:  # which rows have one, then their ISO texts
            mask = bytes(v is not None for v in values)
            values = [mask, [v.isoformat() for v in values if v is not None]]
        elif name in {"stamp", "order_key"}:
            columns[f"{name}.0"] = [v[0] for v in values]
            columns[f"{name}.1"] = [v[1] for v in values]
            continue
        columns[name] = values
    return columns


def _from_columns(columns: dict[str, Any]) -> list[SessionHead]:
    fields: list[Iterable[Any]] = []
    for name in SessionHead._fields:
        if name == "stamp":
            fields.append(map(_new_stamp, zip(columns["stamp.0"], columns["stamp.1"], strict=True)))
        elif name == "order_key":
            fields.append(zip(columns["order_key.0"], columns["order_key.1"], strict=True))
        elif name in _TIME_FIELDS:
            fields.append(_times(*columns[name]))
        elif name in _SHARED_TEXT:
            fields.append(map(sys.intern, columns[name]))
        else:
            fields.append(columns[name])
    return list(map(_new_head, zip(*fields, strict=True)))


def _times(mask: bytes, texts: list[str]) -> list[datetime | None]:
    parsed = map(datetime.fromisoformat, texts)
    return [next(parsed) if present else None for present in mask]


def unchanged(cached: Mapping[str, SessionHead], name: str, stamp: object) -> SessionHead | None:
    """The cached head of this file if the file has the same size and mtime."""
    head = cached.get(name)
    return head if head is not None and head.stamp == stamp else None
