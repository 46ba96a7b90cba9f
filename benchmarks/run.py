"""Measure Live-Track at 1k, 10k and 100k sessions against the issue's targets.

``make bench`` (= ``python -m benchmarks.run``) generates the registries, then
for every size measures, in one run: a bare read-and-parse loop against the
index's first load, the warm service calls, the same views by a plain full
scan, the real server over HTTP (during its load and after it), and the
server's memory. It prints a Markdown table and writes it to
``benchmarks/results.md``; it exits 1 if a target at 100k sessions is missed.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx2

from benchmarks import reference
from benchmarks.generate import ensure_registry
from benchmarks.loading import PAGE_WAIT_SECONDS, observe_loading
from benchmarks.report import Row, command_line, load_average, machine, ms, secs, table, verdict
from benchmarks.server import ServerProcess, percentile
from src.experiments.registry_index import IndexSnapshot, RegistryIndex
from src.webui.live_track import SessionRules, list_sessions, live_track_view
from src.webui.session_query import SessionQuery
from src.webui.session_stats import session_stats

TARGET_SIZE = 100_000
# The service calls run against a fixed clock: the generator's ``now``.
NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
STALE_AFTER = timedelta(minutes=15)
RULES = SessionRules(stale_after=STALE_AFTER)
RESULTS = Path(__file__).resolve().parent / "results.md"
RESULTS_QUICK = Path(__file__).resolve().parent / "results-quick.md"

Q_RECENT = SessionQuery(limit=10)
Q_FILTERED = SessionQuery(limit=10, mode=("live",), status=("failed",))
Q_ALL = SessionQuery()


@dataclass
class Plan:
    sizes: list[int]
    service_calls: int
    cold_calls: int
    load_repeats: int
    scan_repeats: dict[int, int]
    http_requests: int
    notes: list[str] = field(default_factory=list)


def time_calls(
    call: Callable[[], object], count: int, before: Callable[[], None] | None = None
) -> list[float]:
    """Wall time of ``count`` calls, each measured alone (``before`` runs untimed)."""
    timings: list[float] = []
    for _ in range(count):
        if before is not None:
            before()
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return timings


# --- (a)+(b) bare parse loop against the index's first load ----------------


def bare_parse_loop(directory: Path) -> int:
    """Read and json.loads every record file: the floor any loader has to pay."""
    parsed = 0
    for name in os.listdir(directory):
        if name.endswith(".json"):
            with open(os.path.join(directory, name), "rb") as handle:
                json.loads(handle.read())
            parsed += 1
    return parsed


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the loader's workers
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure_load(size: int, directory: Path, plan: Plan) -> tuple[list[Row], RegistryIndex]:
    bare_parse_loop(directory)  # warm the page cache; both loops below read from memory
    bare: list[float] = []
    loads: list[float] = []
    bare_cpu: list[float] = []
    load_cpu: list[float] = []
    index = RegistryIndex(directory)
    for _ in range(plan.load_repeats):  # alternate, so drift hits both alike
        cpu, started = cpu_seconds(), time.perf_counter()
        parsed = bare_parse_loop(directory)
        bare.append(time.perf_counter() - started)
        bare_cpu.append(cpu_seconds() - cpu)
        del index
        gc.collect()
        index = RegistryIndex(directory)
        cpu, started = cpu_seconds(), time.perf_counter()
        index.reconcile()
        loads.append(time.perf_counter() - started)
        load_cpu.append(cpu_seconds() - cpu)
    loaded = len(index.snapshot().sessions)
    assert parsed == size and loaded == size, (parsed, loaded, size)
    ratio = statistics.median(loads) / statistics.median(bare)
    gated = size == TARGET_SIZE
    return [
        Row(
            size,
            "bare loop: read + json.loads every file (warm cache)",
            secs(statistics.median(bare)),
            secs(max(bare)),
            ratio="1.00",
        ),
        Row(
            size,
            "first full index load: RegistryIndex(dir).reconcile() (warm cache)",
            secs(statistics.median(loads)),
            secs(max(loads)),
            target="<= 1.5x bare loop",
            ratio=f"{ratio:.2f}x bare",
            result=verdict(ratio <= 1.5, gated),
        ),
        Row(
            size,
            "CPU time: bare loop / index load (incl. worker processes)",
            f"{statistics.median(bare_cpu):.2f} s / {statistics.median(load_cpu):.2f} s",
            ratio=f"{statistics.median(load_cpu) / statistics.median(bare_cpu):.2f}x",
        ),
    ], index


# --- (c)+(d) service calls against the full-scan reference -----------------

SERVICE_VIEWS: dict[str, Callable[[IndexSnapshot], object]] = {
    "recent 10 (list_sessions, limit=10)": lambda s: list_sessions(s, Q_RECENT, NOW, RULES),
    "filtered (mode=live, status=failed)": lambda s: list_sessions(s, Q_FILTERED, NOW, RULES),
    "stats (session_stats)": lambda s: session_stats(s, Q_ALL, NOW, STALE_AFTER),
    "page view (live_track_view)": lambda s: live_track_view(s, Q_ALL, NOW, RULES),
}
REFERENCE_VIEWS: dict[str, Callable[[list[Any]], object]] = {
    "recent 10 (list_sessions, limit=10)": lambda r: reference.recent(r),
    "filtered (mode=live, status=failed)": lambda r: reference.filtered(r, "live", "failed"),
    "stats (session_stats)": lambda r: reference.stats(r, NOW),
    "page view (live_track_view)": lambda r: reference.page(r, NOW),
}
SERVICE_TARGETS = {"recent 10", "filtered", "stats"}


def measure_service(
    size: int, directory: Path, index: RegistryIndex, plan: Plan
) -> tuple[list[Row], list[str]]:
    snapshot = index.snapshot()
    warm: dict[str, list[float]] = {}
    cold: dict[str, list[float]] = {}
    for name, view in SERVICE_VIEWS.items():
        cold[name] = time_calls(lambda v=view: v(snapshot), plan.cold_calls, snapshot.cache.clear)
        view(snapshot)  # fill the snapshot's cache: "warm"
        warm[name] = time_calls(lambda v=view: v(snapshot), plan.service_calls)

    # Reference: every call scans the directory, then computes its view. The scan is
    # the same for all four views, so it runs once per repetition and each view's
    # time is that scan plus its own computation (4x less waiting, same numbers).
    scans: list[float] = []
    computed: dict[str, list[float]] = {name: [] for name in REFERENCE_VIEWS}
    records: list[Any] = []
    for _ in range(plan.scan_repeats.get(size, 3)):
        records = []
        gc.collect()
        started = time.perf_counter()
        records = reference.scan(directory)
        scans.append(time.perf_counter() - started)
        for name, view in REFERENCE_VIEWS.items():
            started = time.perf_counter()
            view(records)
            computed[name].append(time.perf_counter() - started)
    problems = check_agreement(snapshot, records)
    records = []

    rows = [
        Row(
            size,
            "full scan: scan_registry(dir), per call",
            ms(statistics.median(scans)),
            ms(max(scans)),
        )
    ]
    gated = size == TARGET_SIZE
    for name in SERVICE_VIEWS:
        scan_calls = [s + c for s, c in zip(scans, computed[name], strict=True)]
        p50 = statistics.median(warm[name])
        targeted = name.split(" (")[0] in SERVICE_TARGETS
        rows.append(
            Row(
                size,
                f"service, warm: {name}",
                ms(p50),
                ms(percentile(warm[name], 0.99)),
                target="p50 <= 1 ms" if targeted else "",
                ratio=f"{statistics.median(scan_calls) / p50:,.0f}x faster than scan",
                result=verdict(p50 <= 0.001, gated and targeted),
            )
        )
        rows.append(
            Row(
                size,
                f"service, cold (first call on a new snapshot): {name}",
                ms(statistics.median(cold[name])),
                ms(percentile(cold[name], 0.99)),
                ratio=f"{statistics.median(scan_calls) / statistics.median(cold[name]):,.0f}x "
                "faster than scan",
            )
        )
        rows.append(
            Row(
                size,
                f"full-scan reference: {name}",
                ms(statistics.median(scan_calls)),
                ms(max(scan_calls)),
            )
        )
    return rows, problems


def check_agreement(snapshot: IndexSnapshot, records: list[Any]) -> list[str]:
    """The index and the full scan must show the same sessions and numbers."""
    problems = []
    for name, query in (("recent", Q_RECENT), ("filtered", Q_FILTERED)):
        ours = [s.session_id for s in list_sessions(snapshot, query, NOW, RULES)]
        if name == "recent":
            theirs = [s["session_id"] for s in reference.recent(records)]
        else:
            theirs = [s["session_id"] for s in reference.filtered(records, "live", "failed")]
        if ours != theirs:
            problems.append(f"{name}: index {ours[:3]}... != scan {theirs[:3]}...")
    ours_stats = session_stats(snapshot, Q_ALL, NOW, STALE_AFTER).model_dump()
    theirs_stats = reference.stats(records, NOW)
    for key, value in theirs_stats.items():
        mine = ours_stats[key]
        same = (
            math.isclose(mine, value, rel_tol=1e-9, abs_tol=1e-6)
            if isinstance(value, float) and isinstance(mine, float)
            else mine == value
        )
        if not same:
            problems.append(f"stats.{key}: index {mine!r} != scan {value!r}")
    view = live_track_view(snapshot, Q_ALL, NOW, RULES)
    page = reference.page(records, NOW)
    if [s.session_id for s in view.sessions] != [s["session_id"] for s in page["sessions"]]:
        problems.append("page: table rows differ")
    if (view.snapshot and view.snapshot.session_id) != (page["tile"] or {}).get("session_id"):
        problems.append("page: snapshot tile differs")
    if len(view.charts.cumulative_pnl) != len(page["cumulative_pnl"]):
        problems.append("page: PnL chart length differs")
    return problems


# --- (e)+(f) the real server over HTTP --------------------------------------

HTTP_ENDPOINTS = {
    "/api/health": "/api/health",
    "/api/live_sessions?limit=10": "/api/live_sessions?limit=10",
    "/api/live_sessions?limit=10&mode=live&status=failed": (
        "/api/live_sessions?limit=10&mode=live&status=failed"
    ),
    "/api/live_sessions/stats": "/api/live_sessions/stats",
    "/ (tile, table, stats, charts)": "/",
}


def measure_http(size: int, directory: Path, plan: Plan) -> tuple[list[Row], list[str]]:
    gated = size == TARGET_SIZE
    notes: list[str] = []
    # The first load ever: no head cache (a cache from an earlier run would skip it).
    with ServerProcess(directory, extra_env={"LIVE_TRACK_CACHE": "off"}) as server:
        seen = observe_loading(server)
        rss_loaded = server.rss_mib()
        with httpx2.Client(base_url=server.url, timeout=30) as client:
            timings: dict[str, list[float]] = {name: [] for name in HTTP_ENDPOINTS}
            errors: list[str] = []
            warmup = 20
            for round_number in range(warmup + plan.http_requests):
                for name, path in HTTP_ENDPOINTS.items():  # interleaved: same conditions
                    started = time.perf_counter()
                    response = client.get(path)
                    elapsed = time.perf_counter() - started
                    if response.status_code != 200:
                        errors.append(f"{path}: HTTP {response.status_code}")
                    if round_number >= warmup:
                        timings[name].append(elapsed)
            rss_after = server.rss_mib()
            rss_peak = server.rss_mib("VmHWM")
        log = server.log()
    if errors:
        notes.append(f"{size:,}: {len(errors)} HTTP errors, e.g. {errors[:3]}")
    if "Traceback" in log:
        notes.append(f"{size:,}: server log has a traceback:\n```\n{log[-1500:]}\n```")

    health = statistics.median(timings["/api/health"])
    during = seen.health_latencies
    if seen.loading_text:
        page_seen = f"seen: {seen.loading_text.removeprefix('Index wird geladen ')}"
    else:
        page_seen = "not seen"
    rows = [
        Row(size, "server: spawn -> /api/health answers (startup not blocked)",
            secs(seen.first_answer)),
        Row(size, "server: /api/health while the index loads",
            ms(statistics.median(during)) if during else "n/a",
            (ms(percentile(during, 0.99)) + f" (max {ms(max(during))}, n={len(during)})")
            if during else "",
            target="answers, no errors",
            result=verdict(bool(during) and not seen.health_errors, gated)),
        Row(size, "server: GET / while loading shows `Index wird geladen (n / N)`",
            page_seen,
            f"sent {seen.page_sent:.2f} s, answered {seen.page_answered:.2f} s after spawn",
            target="visible during load",
            result=verdict(seen.loading_text is not None and seen.page_status == 200, gated)),
        Row(size, "server: spawn -> index loaded (in-server first load)", secs(seen.loaded)),
    ]  # fmt: skip
    for name in HTTP_ENDPOINTS:
        p50 = statistics.median(timings[name])
        if name == "/api/health":
            target, ok, ratio = "", True, "1.00"
        elif name.startswith("/ "):
            target, ok, ratio = "p50 <= 30 ms", p50 <= 0.030, f"{p50 / health:.2f}x health"
        elif "mode=" in name:
            target, ok, ratio = "", True, f"{p50 / health:.2f}x health"
        else:
            target, ok, ratio = "p50 <= 2x health", p50 <= 2 * health, f"{p50 / health:.2f}x health"
        rows.append(
            Row(
                size,
                f"HTTP GET {name}",
                ms(p50),
                ms(percentile(timings[name], 0.99)),
                target=target,
                ratio=ratio,
                result=verdict(ok and not errors, gated and bool(target)),
            )
        )
    rows += [
        Row(
            size,
            "server RSS after load (VmRSS)",
            f"{rss_loaded:.0f} MB",
            target="<= 250 MB",
            result=verdict(rss_loaded <= 250, gated),
        ),
        Row(
            size,
            "server RSS after the HTTP runs (VmRSS)",
            f"{rss_after:.0f} MB",
            target="<= 250 MB",
            result=verdict(rss_after <= 250, gated),
        ),
        Row(
            size,
            "server peak RSS (VmHWM) / server + loader workers during load",
            f"{rss_peak:.0f} MB / {seen.peak_tree_rss_mib:.0f} MB",
        ),
    ]
    if seen.loading_text is None:
        waited = seen.page_answered - seen.page_sent
        if waited > PAGE_WAIT_SECONDS + 0.2:
            why = (
                f"GET / blocked for {waited:.2f} s, until the index had loaded, although a page "
                f"waits at most {PAGE_WAIT_SECONDS:.0f} s for the first load before it shows "
                "progress"
            )
        else:
            why = (
                f"the index loaded within the page's {PAGE_WAIT_SECONDS:.0f} s wait for it "
                "(expected at this size)"
            )
        notes.append(
            f"{size:,}: loading state not seen: {why}. Health answered {seen.first_answer:.2f} s "
            f"after spawn; GET / sent at {seen.page_sent:.2f} s, answered at "
            f"{seen.page_answered:.2f} s; index loaded at {seen.loaded:.2f} s."
        )
    return rows, notes


METHOD = """\
How each row is measured (all in this one run, on this machine):
- *bare loop*: `os.listdir` + `open().read()` + `json.loads` over every file, one process;
  run once to warm the page cache, then alternated with the index load; medians of
  {load_repeats} runs each. The index load is `RegistryIndex(dir).reconcile()` on a fresh
  index (its first full load, which reads on every core in worker processes); the CPU row
  adds the workers' CPU time.
- *service, warm*: the call the route makes, on the loaded snapshot, with a fixed `now`,
  {service_calls} calls after one that fills the snapshot's cache. *cold*: the snapshot's
  view cache cleared before each of {cold_calls} calls, as after every registry change.
- *full-scan reference* (`benchmarks/reference.py`): `scan_registry` + filter/sort/sum in
  Python per call. The scan is shared by the four views of one repetition and added to each
  view's own compute time; repetitions: {scan_repeats}. Ratio = reference median / index median.
  The reference also checks that the index shows the same sessions and numbers.
- *HTTP*: `python -m uvicorn src.webui.app:app` (one worker, default settings, access log
  to a file) over the same registry; `/api/health` is polled every 20 ms while the index
  loads, `/` is fetched once right after the server first answers. After the load, {http}
  interleaved rounds of sequential keep-alive requests (httpx2, after 20 warm-up rounds);
  latency is measured in the client and includes its overhead.
- *RSS*: `VmRSS` / `VmHWM` of the server process from `/proc/<pid>/status`; the loader's
  worker processes are separate and exit after the load (they appear only in the
  "server + loader workers" sample).
"""


def run(plan: Plan, argv: Sequence[str], output: Path) -> int:
    started = time.perf_counter()
    load_before = load_average()
    rows: list[Row] = []
    notes = list(plan.notes)
    for size in plan.sizes:
        print(f"\n== {size:,} sessions ==", flush=True)
        directory = ensure_registry(size)
        load_rows, index = measure_load(size, directory, plan)
        rows += load_rows
        print(table(load_rows), flush=True)
        service_rows, problems = measure_service(size, directory, index, plan)
        del index
        gc.collect()
        rows += service_rows
        notes += [f"{size:,}: index and full scan disagree: {p}" for p in problems]
        if problems:
            rows.append(Row(size, "index agrees with full scan", "no", result="FAIL"))
        print(table(service_rows), flush=True)
        http_rows, http_notes = measure_http(size, directory, plan)
        rows += http_rows
        notes += http_notes
        print(table(http_rows), flush=True)

    elapsed = time.perf_counter() - started
    measured_target = TARGET_SIZE in plan.sizes
    failed = [row for row in rows if row.failed and row.size == TARGET_SIZE]
    if measured_target:
        summary = (
            f"**All targets at {TARGET_SIZE:,} sessions met.**"
            if not failed
            else f"**{len(failed)} target(s) at {TARGET_SIZE:,} sessions missed:** "
            + "; ".join(f"{row.metric} ({row.median} vs {row.target})" for row in failed)
        )
    else:
        summary = f"{TARGET_SIZE:,} sessions not measured in this run: no pass/fail gate."
    report = "\n".join(
        [
            "# Live-Track benchmark",
            "",
            f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}",
            f"- machine: {machine()}",
            f"- command: `{command_line(argv)}` (took {elapsed:.0f} s)",
            f"- load average (1/5/15 min) at start: {load_before}, at end: {load_average()}"
            " (other processes add noise to wall times; CPU times are less sensitive)",
            "",
            summary,
            "",
            table(rows),
            "",
            *(["Notes:", *(f"- {note}" for note in notes), ""] if notes else []),
            METHOD.format(
                load_repeats=plan.load_repeats,
                service_calls=plan.service_calls,
                cold_calls=plan.cold_calls,
                scan_repeats=", ".join(
                    f"{plan.scan_repeats.get(s, 3)} at {s:,}" for s in plan.sizes
                ),
                http=plan.http_requests,
            ),
        ]
    )
    output.write_text(report, encoding="utf-8")
    print("\n" + report)
    print(f"written to {output}")
    return 1 if measured_target and failed else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", help="comma-separated sizes (default 1000,10000,100000)")
    parser.add_argument("--repeat", type=int, help="warm service calls per view (default 200)")
    parser.add_argument("--http-requests", type=int, help="requests per endpoint (default 300)")
    parser.add_argument("--quick", action="store_true", help="1k and 10k, fewer repeats (for CI)")
    parser.add_argument("--output", type=Path, help="where to write the Markdown report")
    args = parser.parse_args(argv)
    default_sizes = "1000,10000" if args.quick else "1000,10000,100000"
    plan = Plan(
        sizes=[int(s.replace("_", "")) for s in (args.sizes or default_sizes).split(",")],
        service_calls=args.repeat or (50 if args.quick else 200),
        cold_calls=5 if args.quick else 20,
        load_repeats=2 if args.quick else 3,
        scan_repeats={1000: 10, 10_000: 3, 100_000: 3} if not args.quick else {},
        http_requests=args.http_requests or (100 if args.quick else 300),
    )
    if args.quick:
        plan.scan_repeats = dict.fromkeys(plan.sizes, 2)
    output = args.output or (RESULTS_QUICK if args.quick else RESULTS)
    return run(plan, argv, output)


if __name__ == "__main__":
    raise SystemExit(main())
