"""Benchmark the shared PostgreSQL registry: shipping, first load, change-to-page latency.

``python -m benchmarks.pg --size 100000`` starts a throwaway PostgreSQL server
(Debian's binaries, Unix socket in a temporary directory, as the tests do),
ships the cached benchmark registry into it, loads a dashboard index from it
and from the directory, and measures how fast a new session reaches a page:
file written -> shipper -> NOTIFY -> dashboard -> event stream -> API answer.
Results go to ``benchmarks/pg-results.md``.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx2

from benchmarks.generate import ensure_registry
from benchmarks.server import EventStream, ServerProcess, percentile, wait_loaded
from src.experiments.live_session_registry import LiveSessionRecord, register_live_session_run
from src.experiments.pg_index import PgRegistryIndex
from src.experiments.pg_registry import connect, upgrade_schema
from src.experiments.registry_index import RegistryIndex, SessionHead
from src.experiments.shipper import Shipper

RESULTS = Path(__file__).resolve().parent / "pg-results.md"
LATENCY_SAMPLES = 20


def ship(directory: Path, url: str) -> float:
    """Ship the whole directory once, as a shipper's first start does; seconds taken."""
    started = time.perf_counter()
    with connect(url) as conn:
        Shipper(directory, url, "bench").reconcile(conn)
    return time.perf_counter() - started


def first_loads(directory: Path, url: str) -> tuple[float, float, bool]:
    """(directory load s, database load s, same sessions) for the same registry."""
    gc.collect()
    started = time.perf_counter()
    from_directory = RegistryIndex(directory)
    from_directory.reconcile()
    directory_seconds = time.perf_counter() - started
    gc.collect()
    started = time.perf_counter()
    from_database = PgRegistryIndex(url)
    from_database.sync()
    database_seconds = time.perf_counter() - started
    # Shipped under a host label, keys (and so order-key tie breakers) carry the host.
    same = [_unlabelled(h) for h in from_database.snapshot().sessions] == list(
        from_directory.snapshot().sessions
    )
    from_database.close()
    return directory_seconds, database_seconds, same


def _unlabelled(head: SessionHead) -> SessionHead:
    return head.shipped(head.file_name, "")


def latency(url: str, samples: int) -> tuple[list[float], float, float]:
    """Seconds from a bot writing a file to the dashboard's API listing it.

    Also the dashboard server's resident memory (MiB) once loaded, and its peak.
    """
    live_dir = Path(tempfile.mkdtemp(prefix="live-track-bench-host-"))
    stop = threading.Event()
    shipper = Shipper(live_dir, url, "bench-live")
    shipping = threading.Thread(target=shipper.run, args=(stop,), daemon=True)
    shipping.start()
    results = []
    with ServerProcess(live_dir, extra_env={"LIVE_TRACK_DATABASE_URL": url}) as server:
        server.wait_answering()
        with httpx2.Client(base_url=server.url, timeout=30) as client:
            wait_loaded(client, timeout=300)
            rss, peak = server.rss_mib(), server.rss_mib("VmHWM")
            stream = EventStream(server.port)
            try:
                for n in range(samples):
                    session_id = f"latency-{n}"
                    seen = len(stream.updates())
                    started = time.perf_counter()
                    register_live_session_run(_fresh(session_id), live_dir)
                    while True:
                        if len(stream.updates()) > seen:
                            seen = len(stream.updates())
                            listing = client.get("/api/live_sessions", params={"limit": 3})
                            if session_id in {row["session_id"] for row in listing.json()}:
                                break
                        if time.perf_counter() - started > 10:
                            raise RuntimeError(f"{session_id} not on the page within 10 s")
                        time.sleep(0.002)
                    results.append(time.perf_counter() - started)
                    time.sleep(0.4)  # apart from the throttle window of the last change
            finally:
                stream.close()
    stop.set()
    shipping.join(timeout=10)
    return results, rss, peak


def _fresh(session_id: str) -> LiveSessionRecord:
    now = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(days=400)
    return LiveSessionRecord(
        session_id=session_id,
        run_id=None,
        run_type="live_session_live",
        mode="live",
        env_name="kraken_live",
        symbol="BTC/USD",
        status="started",
        started_at=now,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=LATENCY_SAMPLES)
    parser.add_argument("--url", help="an empty database to use instead of a throwaway server")
    args = parser.parse_args(argv)
    directory = ensure_registry(args.size)
    server = None
    if args.url:
        url = args.url
    else:
        from tests.pg_support import PgServer

        server = PgServer()
        url = server.new_database()
    try:
        upgrade_schema(url)
        shipped = ship(directory, url)
        print(f"shipped {args.size:,} in {shipped:.1f} s", flush=True)
        directory_s, database_s, same = first_loads(directory, url)
        print(
            f"first load: directory {directory_s:.2f} s, PostgreSQL {database_s:.2f} s", flush=True
        )
        waits, rss, peak = latency(url, args.samples)
    finally:
        if server is not None:
            server.destroy()
    table = [
        "| What | Result |",
        "|---|---:|",
        f"| Ship {args.size:,} sessions (first start of a shipper) | {shipped:.1f} s, "
        f"{args.size / shipped:,.0f} records/s |",
        f"| Dashboard first load from the directory | {directory_s:.2f} s |",
        f"| Dashboard first load from PostgreSQL | {database_s:.2f} s "
        f"({database_s / directory_s:.2f}x the directory) |",
        f"| Same sessions from both sources | {'yes' if same else 'NO'} |",
        f"| Dashboard server fed from PostgreSQL: RSS loaded / peak | {rss:.0f} / {peak:.0f} MB |",
        f"| File written -> listed by the API, p50 / p95 / max ({len(waits)} changes) | "
        f"{statistics.median(waits) * 1000:.0f} / {percentile(waits, 0.95) * 1000:.0f} / "
        f"{max(waits) * 1000:.0f} ms |",
    ]
    header = (
        f"# Shared registry benchmark\n\nMeasured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC "
        f"on {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{args.size:,} sessions; command: `python -m benchmarks.pg --size {args.size}`\n\n"
    )
    RESULTS.write_text(header + "\n".join(table) + "\n")
    print("\n".join(table))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
