"""Read a large registry on every core, in worker interpreters of our own.

Parsing JSON records is CPU-bound Python, so threads do not help. The usual
multiprocessing start methods either fork a threaded server or re-run the
caller's ``__main__`` (a script without a main guard would run again), so the
workers are plain ``python -m src.experiments.parallel_load`` processes: they
get their batches on stdin and send back marshalled heads on stdout, one frame
per batch. Anything a worker cannot deliver is read in this process instead.
"""

from __future__ import annotations

import marshal
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from src.experiments.registry_files import FileStamp
from src.experiments.session_head import HeadOrSkip, Profile, from_wire, read_heads, to_wire

Batch = Sequence[tuple[str, FileStamp | None]]
Heads = list[HeadOrSkip]

BATCH_SIZE = 2000
# Below this, starting worker interpreters costs more than it saves.
PARALLEL_MIN_FILES = 5000
_FRAME = struct.Struct("!Q")
_PROJECT_ROOT = str(Path(__file__).resolve().parents[2])


def read_in_batches(directory: str, items: Batch) -> Iterator[tuple[Batch, Heads]]:
    """Yield (batch, heads) for every batch of items, in no particular order."""
    batches = [items[i : i + BATCH_SIZE] for i in range(0, len(items), BATCH_SIZE)]
    workers = min(os.cpu_count() or 1, len(batches))
    if len(items) < PARALLEL_MIN_FILES or workers < 2:
        for batch in batches:
            yield batch, read_heads(directory, batch)
        return
    results: queue.Queue[tuple[Batch, Heads | None] | None] = queue.Queue()
    for share in (batches[i::workers] for i in range(workers)):
        threading.Thread(
            target=_drive_worker, args=(directory, share, results), daemon=True
        ).start()
    running = workers
    while running:
        item = results.get()
        if item is None:
            running -= 1
            continue
        batch, heads = item
        yield batch, heads if heads is not None else read_heads(directory, batch)


def _drive_worker(
    directory: str,
    share: list[Batch],
    results: queue.Queue[tuple[Batch, Heads | None] | None],
) -> None:
    delivered = 0
    try:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (_PROJECT_ROOT, env.get("PYTHONPATH"))))
        with subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        ) as worker:
            assert worker.stdin is not None and worker.stdout is not None
            worker.stdin.write(pickle.dumps((directory, share), pickle.HIGHEST_PROTOCOL))
            worker.stdin.close()
            for batch in share:
                heads = _read_frame(worker.stdout)
                if heads is None:
                    break
                results.put((batch, heads))
                delivered += 1
    except OSError:
        pass  # fall through: the rest is read in-process
    finally:
        for batch in share[delivered:]:
            results.put((batch, None))
        results.put(None)


def _read_frame(stream: IO[bytes]) -> Heads | None:
    header = stream.read(_FRAME.size)
    if len(header) < _FRAME.size:
        return None
    (length,) = _FRAME.unpack(header)
    payload = stream.read(length)
    if len(payload) < length:
        return None
    items = marshal.loads(payload)
    profiles: dict[int, Profile] = {}
    return [from_wire(item, profiles) for item in items]


def _worker_main() -> None:
    directory, share = pickle.load(sys.stdin.buffer)
    out = sys.stdout.buffer
    for batch in share:
        heads = read_heads(directory, batch)
        payload = marshal.dumps([to_wire(stamp, head) for stamp, head in heads])
        out.write(_FRAME.pack(len(payload)))
        out.write(payload)
        out.flush()


if __name__ == "__main__":
    _worker_main()
