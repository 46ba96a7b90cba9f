"""Write deterministic registries of demo sessions for the benchmarks.

``python -m benchmarks.generate --count 100000`` fills
``benchmarks/data/registry-100000/`` with the demo generator's records (fixed
seed, fixed ``now``), one file per session named as the registry names it. A
directory that already holds exactly that many record files is reused.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from datetime import datetime
from pathlib import Path

from src.experiments.demo_sessions import iter_demo_records
from src.experiments.registry_files import RECORD_SUFFIX, record_filename

SEED = 82
# A fixed clock, so the same count always gives byte-identical files.
NOW = datetime(2026, 11, 1)
DATA_DIR = Path(__file__).resolve().parent / "data"


def registry_dir(count: int) -> Path:
    """Where the cached registry of ``count`` sessions lives."""
    return DATA_DIR / f"registry-{count}"


def count_records(directory: Path) -> int:
    """How many record files the directory holds (0 if it does not exist)."""
    try:
        with os.scandir(directory) as entries:
            return sum(1 for e in entries if e.name.endswith(RECORD_SUFFIX))
    except FileNotFoundError:
        return 0


def write_registry(directory: Path, count: int, seed: int = SEED, now: datetime = NOW) -> int:
    """Write ``count`` demo records into ``directory``; return the bytes written.

    Plain writes, no fsync and no temporary files: this builds test data, it is
    not a writer the dashboard has to survive (``register_live_session_run`` is).
    """
    directory.mkdir(parents=True, exist_ok=True)
    written = 0
    for record in iter_demo_records(count, seed, now):
        payload = json.dumps(record.to_dict(), indent=2).encode("utf-8")
        with open(directory / record_filename(record), "wb") as handle:
            handle.write(payload)
        written += len(payload)
    return written


def ensure_registry(count: int, *, quiet: bool = False) -> Path:
    """Return the cached registry of ``count`` sessions, generating it if needed."""
    target = registry_dir(count)
    if count_records(target) == count:
        return target
    # Build next to the target and rename, so an interrupted run never leaves a
    # half-filled directory that a later run would take for a finished one.
    building = target.with_name(f"{target.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    started = time.perf_counter()
    written = write_registry(building, count)
    shutil.rmtree(target, ignore_errors=True)
    building.rename(target)
    if not quiet:
        print(
            f"generated {count:,} sessions in {time.perf_counter() - started:.1f} s "
            f"({written / count / 1024:.2f} KiB per file on average) -> {target}",
            flush=True,
        )
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, required=True, help="number of sessions")
    parser.add_argument("--dir", type=Path, help="write here instead of the cache directory")
    args = parser.parse_args(argv)
    if args.dir is None:
        ensure_registry(args.count)
    else:
        write_registry(args.dir, args.count)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
