"""The registry directory on disk: file names, atomic writes, bounded reads, listing.

Everything that touches the registry's files goes through here. Writers
replace a file atomically, so a reader sees the old record or the new one,
never half. Readers treat every file as untrusted: they never follow a link,
never block on a FIFO, and read at most ``MAX_RECORD_BYTES``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import marshal
import math
import os
import secrets
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, NewType

from src.experiments.live_session_record import (
    InvalidRecord,
    LiveSessionRecord,
    UnreadableFile,
    parse_record,
)

logger = logging.getLogger(__name__)

DEFAULT_LIVE_SESSION_DIR = Path("reports/experiments/live_sessions")
# The one environment variable that selects the registry, for writers and readers.
REGISTRY_DIR_ENV = "PEAK_TRADE_LIVE_SESSIONS_DIR"

# Real records are 1-4 KB; anything far larger is a broken or hostile writer.
MAX_RECORD_BYTES = 1024 * 1024
RECORD_SUFFIX = ".json"


def resolve_registry_dir(base_dir: str | os.PathLike[str] | None = None) -> Path:
    """Pick the registry: explicit argument, then the environment, then the default."""
    if base_dir is not None:
        return Path(base_dir)
    from_env = os.environ.get(REGISTRY_DIR_ENV)
    return Path(from_env) if from_env else DEFAULT_LIVE_SESSION_DIR


# What identifies one version of a file without reading it: its size and mtime,
# packed into one plain int (size in the low 64 bits, offset so that a negative
# size fits too; the mtime above). The index holds one per file: at 100,000
# files a tuple of two ints costs 80 bytes more per file, and an int subclass
# 16 more (heap types carry the cyclic GC's header). Equal stamps are equal
# ints, so comparing and hashing stay in C. Read it with stamp_size and
# stamp_mtime_ns; make it with file_stamp.
FileStamp = NewType("FileStamp", int)

_SIZE_BITS = 64
_SIZE_OFFSET = 1 << (_SIZE_BITS - 1)
_SIZE_MASK = (1 << _SIZE_BITS) - 1


def file_stamp(size: int, mtime_ns: int) -> FileStamp:
    """The stamp of a file of this size and mtime; exact for any 64-bit size."""
    return FileStamp((mtime_ns << _SIZE_BITS) | (size + _SIZE_OFFSET))


def stamp_size(stamp: FileStamp) -> int:
    return (stamp & _SIZE_MASK) - _SIZE_OFFSET


def stamp_mtime_ns(stamp: FileStamp) -> int:
    return stamp >> _SIZE_BITS


@dataclass(frozen=True)
class SkippedFile:
    """A file in the registry that is not a record, and why."""

    name: str
    reason: str


# --- Names ------------------------------------------------------------------


def _safe_component(text: str) -> str:
    return text.replace("/", "_").replace(":", "_").replace(" ", "_")


def record_filename(record: LiveSessionRecord) -> str:
    """Name the file so that re-registering the same session rewrites it."""
    stamp = record.started_at.strftime("%Y%m%dT%H%M%S")
    run_type = _safe_component(record.run_type)
    return f"{stamp}_{run_type}_{_safe_component(record.session_id)}{RECORD_SUFFIX}"


def is_record_name(name: str) -> bool:
    """Which directory entries may be records: ``*.json``, not hidden (temp files,
    editor backups). The listing and the file watch both decide by this."""
    return name.endswith(RECORD_SUFFIX) and not name.startswith(".") and "/" not in name


# --- Writing ----------------------------------------------------------------


def write_record(record: LiveSessionRecord, directory: Path) -> Path:
    """Write the record atomically: temp file in the same directory, fsync, rename."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / record_filename(record)
    payload = record_json(record).encode("utf-8")
    fd, tmp_name = _create_temp_file(directory)
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(payload)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_directory(directory)
    return target


def record_json(record: LiveSessionRecord) -> str:
    """The file's text; a NaN metric becomes null, which every JSON reader accepts."""
    data = record.to_dict()
    try:
        return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    except ValueError:
        return json.dumps(_finite_or_null(data), indent=2, ensure_ascii=False)


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(item) for item in value]
    return value


def _create_temp_file(directory: Path) -> tuple[int, Path]:
    # Not tempfile.mkstemp: its files are 0600, so a dashboard running as another
    # user could not read the record. os.open lets the umask decide, like open().
    while True:
        tmp_name = directory / f".tmp-{secrets.token_hex(8)}.partial"
        try:
            return os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp_name
        except FileExistsError:
            continue


def _fsync_directory(directory: Path) -> None:
    # Makes the rename durable across a power cut; not possible on every OS.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --- Reading ----------------------------------------------------------------


def read_file(path: str | os.PathLike[str]) -> tuple[bytes, FileStamp]:
    """Read at most MAX_RECORD_BYTES of a regular file, never following links,
    and say which version of it was read (from fstat)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise UnreadableFile(f"cannot open: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidRecord("not a regular file")
        if info.st_size > MAX_RECORD_BYTES:
            raise InvalidRecord(f"too large ({info.st_size} bytes, limit {MAX_RECORD_BYTES})")
        chunks = []
        remaining = MAX_RECORD_BYTES + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    content = b"".join(chunks)
    if len(content) > MAX_RECORD_BYTES:
        raise InvalidRecord(f"grew past the limit of {MAX_RECORD_BYTES} bytes while reading")
    return content, file_stamp(info.st_size, info.st_mtime_ns)


def read_record(path: str | os.PathLike[str]) -> tuple[LiveSessionRecord, FileStamp]:
    """Read and validate one registry file, with the version that was read."""
    content, stamp = read_file(path)
    return parse_record(content), stamp


# --- Listing ----------------------------------------------------------------

Listing = dict[str, "FileStamp | SkippedFile | None"]


def list_registry(
    directory: Path, names: Iterable[str] | None = None, *, with_stamps: bool = True
) -> Listing:
    """The files that may be records, each with its stamp or why it is no record.

    Without ``names`` the directory is listed; with them only those files are
    looked at (a file watch's report), which costs a few lstat calls, never a
    listing. ``with_stamps=False`` saves a stat per file on a first load, where
    reading each file gives its stamp (the value is then None).
    """
    found: Listing = {}
    if names is not None:
        for name in filter(is_record_name, names):
            try:
                info = os.lstat(directory / name)
            except OSError:
                continue  # gone: simply not listed
            found[name] = _classify(name, info.st_mode, _stamp(info))
        return found
    if with_stamps and _STAT_AT:
        return _list_with_stamps(directory)
    for entry in _record_entries(directory):
        try:
            if with_stamps:
                info = entry.stat(follow_symlinks=False)
                found[entry.name] = _classify(entry.name, info.st_mode, _stamp(info))
            elif entry.is_symlink():
                found[entry.name] = _classify(entry.name, stat.S_IFLNK, None)
            else:
                mode = stat.S_IFREG if entry.is_file(follow_symlinks=False) else 0
                found[entry.name] = _classify(entry.name, mode, None)
        except OSError:
            continue  # deleted between listing and stat: simply gone
    return found


def _list_with_stamps(directory: Path) -> Listing:
    # listdir + lstat relative to the open directory: about twice as fast as
    # scandir's DirEntry.stat at 100,000 files (no path joins, no DirEntry).
    found: Listing = {}
    try:
        names = [name for name in os.listdir(directory) if is_record_name(name)]
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except FileNotFoundError:
        return found
    except OSError as exc:
        logger.warning("Cannot list live-session registry %s: %s", directory, exc)
        return found
    try:
        for name in names:
            try:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError:
                continue  # deleted between listing and stat: simply gone
            if stat.S_ISREG(info.st_mode):
                found[name] = file_stamp(info.st_size, info.st_mtime_ns)
            else:
                found[name] = _classify(name, info.st_mode, None)
    finally:
        os.close(fd)
    return found


# --- Listing in a helper process ----------------------------------------------
# A cold start from the head cache needs the stamp of every file and the cached
# heads: about a quarter second each at 100,000 files, both Python holding the
# GIL (stat'ing in a thread beside a decoding thread is a convoy, 3x slower). A
# second interpreter started with -I -S (a few milliseconds, standard library
# only) lists on the other core meanwhile and hands back columns via marshal.
# It picks names by the rule of is_record_name and packs stamps as file_stamp does.
# Given the head cache's path, it compares its listing with the fingerprint at
# the cache's start and, when they agree, sends that verdict instead of 100,000
# names: the other process then installs the cache and never builds a listing.

# A listing's fingerprint, in one text that this process and the helper (which
# imports nothing of ours) both run: the regular files' names in order, then
# their stamps in that order. Names never hold NUL: the text is unambiguous.
FINGERPRINT_SOURCE = """
def listing_fingerprint(names, stamps):
    import hashlib
    names, stamps = list(names), list(stamps)
    order = sorted(range(len(names)), key=names.__getitem__)
    text = "\\0".join(map(names.__getitem__, order))
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass"))
    digest.update(repr(list(map(stamps.__getitem__, order))).encode())
    return digest.digest()
"""
_fingerprint_namespace: dict[str, Any] = {}
exec(FINGERPRINT_SOURCE, _fingerprint_namespace)
listing_fingerprint: Callable[[Iterable[str], Iterable[FileStamp]], bytes]
listing_fingerprint = _fingerprint_namespace["listing_fingerprint"]
FINGERPRINT_BYTES = 32
# Where a head cache file keeps its fingerprint (after its own checksum).
CACHE_FINGERPRINT_AT = 32

_LISTER = f"""
import marshal, os, stat, sys
{FINGERPRINT_SOURCE}
directory = sys.argv[1]
names = [n for n in os.listdir(directory) if n.endswith({RECORD_SUFFIX!r}) and n[0] != "."]
fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
regular, stamps, others, modes = [], [], [], []
for name in names:
    try:
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except OSError:
        continue
    if stat.S_ISREG(info.st_mode):
        regular.append(name)
        stamps.append((info.st_mtime_ns << {_SIZE_BITS}) | (info.st_size + {_SIZE_OFFSET}))
    else:
        others.append(name); modes.append(info.st_mode)
known = b""
if len(sys.argv) > 2:
    try:
        with open(sys.argv[2], "rb") as cache:
            cache.seek({CACHE_FINGERPRINT_AT})
            known = cache.read({FINGERPRINT_BYTES})
    except OSError:
        pass
exact = len(known) == {FINGERPRINT_BYTES} and not others
if exact and listing_fingerprint(regular, stamps) == known:
    sys.stdout.buffer.write(marshal.dumps(known))
else:
    sys.stdout.buffer.write(marshal.dumps((regular, stamps, others, modes)))
"""
LISTER_TIMEOUT_SECONDS = 120.0
CANCEL_TIMEOUT_SECONDS = 5.0


class UnchangedListing(NamedTuple):
    """The helper's verdict: the directory holds exactly the cache's files and stamps."""

    fingerprint: bytes  # of the cache it compared with


class PendingListing:
    """``list_registry(directory)``, computed by a helper process started now.

    ``result()`` gives exactly what ``list_registry`` gives, or, given a head
    cache's path, ``UnchangedListing`` where the directory matches that cache;
    if the helper cannot start, fails or takes too long, this process lists instead.
    """

    def __init__(self, directory: Path, cache: Path | None = None) -> None:
        self.directory = directory
        self.started = time.monotonic()  # the listing shows the directory as of about now
        self._process: subprocess.Popen[bytes] | None = None
        if not _STAT_AT:
            return
        with contextlib.suppress(OSError):
            self._process = subprocess.Popen(
                # The same file system encoding as here, so names come back alike.
                [sys.executable, "-I", "-S", "-X", f"utf8={sys.flags.utf8_mode}"]
                + ["-c", _LISTER, os.fspath(directory)]
                + ([os.fspath(cache)] if cache is not None else []),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )

    def cancel(self) -> None:
        """Stop a helper whose listing nobody will ask for (it would block on a full pipe)."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            # Killed, it exits at once; one stuck in the kernel (a hung mount) is left.
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.communicate(timeout=CANCEL_TIMEOUT_SECONDS)

    def result(self) -> Listing | UnchangedListing:
        process, self._process = self._process, None
        if process is not None:
            try:
                output, _ = process.communicate(timeout=LISTER_TIMEOUT_SECONDS)
                if process.returncode == 0:
                    found = marshal.loads(output)
                    if isinstance(found, bytes):
                        return UnchangedListing(found)
                    return _listing_from_columns(*found)
            except (subprocess.TimeoutExpired, ValueError, EOFError, TypeError):
                process.kill()
                process.wait()
        return list_registry(self.directory)


def _listing_from_columns(
    regular: list[str], stamps: list[FileStamp], others: list[str], modes: list[int]
) -> Listing:
    found: Listing = dict(zip(regular, stamps, strict=True))
    for name, mode in zip(others, modes, strict=True):
        found[name] = _classify(name, mode, None)
    return found


# fstatat: everywhere but Windows.
_STAT_AT = os.stat in os.supports_dir_fd and os.stat in os.supports_follow_symlinks


def _stamp(info: os.stat_result) -> FileStamp:
    return file_stamp(info.st_size, info.st_mtime_ns)


def _classify(name: str, mode: int, stamp: FileStamp | None) -> FileStamp | SkippedFile | None:
    if stat.S_ISLNK(mode):
        return SkippedFile(name, "symbolic link (not followed)")
    if not stat.S_ISREG(mode):
        return SkippedFile(name, "not a regular file")
    return stamp


def _record_entries(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            return [entry for entry in entries if is_record_name(entry.name)]
    except FileNotFoundError:
        return []
    except OSError as exc:
        logger.warning("Cannot list live-session registry %s: %s", directory, exc)
        return []
