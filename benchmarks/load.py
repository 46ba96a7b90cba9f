"""A bounded load test against the real server while a bot keeps writing sessions.

``python -m benchmarks.load [--size 100000] [--seconds 45]`` copies a registry
of ``size`` demo sessions into a fresh temporary directory, serves it with
uvicorn on 127.0.0.1, and then, for ``seconds``: a writer registers a session
every 100 ms (alternately a new running session and the end of the previous
one), 8 HTTP clients request the page and the API back to back, and 4 event
stream clients listen like open browser tabs. It reports request counts,
errors and latency percentiles per endpoint and the longest silence of every
event stream, and exits 1 on any error response or stalled stream.

Only 127.0.0.1 is contacted; apart from generating the registry the run takes
at most 60 s.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx2

from benchmarks.generate import count_records, ensure_registry, write_registry
from benchmarks.server import EventStream, ServerProcess, percentile, wait_loaded
from src.experiments.demo_sessions import iter_demo_records
from src.experiments.live_session_registry import register_live_session_run

MAX_SECONDS = 45.0  # the writer phase; trimmed if startup and load leave less
TOTAL_BUDGET = 60.0  # from the server's start to its exit
RESERVE_SECONDS = 8.0  # after the writer phase: settle, join clients, check, shut down
WRITE_INTERVAL = 0.1
STALL_SECONDS = 2.0
HTTP_CLIENTS = 8
SSE_CLIENTS = 4
ENDPOINTS = ("/", "/api/live_sessions?limit=10", "/api/live_sessions/stats")
# Registries up to this size are generated straight into the run's directory;
# larger ones are copied from the benchmark cache (much faster than generating).
GENERATE_UP_TO = 20_000
RESULTS = Path(__file__).resolve().parent / "load-results.md"
REQUEST_TIMEOUT = 10.0  # a slower answer counts as an error (a stalled page)


@dataclass
class RequestLog:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, path: str, seconds: float, error: str | None) -> None:
        with self.lock:
            self.latencies[path].append(seconds)
            if error is not None:
                self.errors[path].append(error)


def hammer(url: str, offset: int, stop: threading.Event, log: RequestLog, timeout: float) -> None:
    """Request the endpoints in turn, back to back, until told to stop."""
    turn = offset
    with httpx2.Client(base_url=url, timeout=timeout) as client:
        while not stop.is_set():
            path = ENDPOINTS[turn % len(ENDPOINTS)]
            turn += 1
            started = time.perf_counter()
            error = None
            try:
                response = client.get(path)
                response.read()
                if not 200 <= response.status_code < 300:
                    error = f"HTTP {response.status_code}"
            except httpx2.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            log.add(path, time.perf_counter() - started, error)


@dataclass
class Writer:
    """A bot writing to the registry: a new running session, then its end, every 100 ms."""

    registry: Path
    seconds: float
    steps: list[float] = field(default_factory=list)  # when each write finished
    durations: list[float] = field(default_factory=list)
    created: int = 0
    error: str | None = None
    late: int = 0  # steps that started more than one interval behind schedule

    def run(self, stop: threading.Event) -> None:
        now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
        token = f"{time.time_ns() % 10**9:09d}"
        count = int(self.seconds / WRITE_INTERVAL) // 2 + 2
        sessions = [
            replace(
                record,
                session_id=f"loadtest_{token}_{n:04d}",
                status="started",
                started_at=now + timedelta(seconds=n),
                finished_at=None,
                updated_at=now + timedelta(seconds=n),
                error=None,
            )
            for n, record in enumerate(iter_demo_records(count, seed=4242, now=now))
        ]
        ends = ("completed", "completed", "completed", "failed", "aborted")
        due = time.perf_counter()
        step = 0
        try:
            while not stop.is_set():
                session = sessions[step // 2]
                if step % 2:  # the session ends: same file, rewritten
                    status = ends[(step // 2) % len(ends)]
                    finished = session.started_at + timedelta(minutes=3)
                    session = replace(
                        session,
                        status=status,
                        finished_at=finished,
                        updated_at=finished,
                        error=None if status == "completed" else f"{status} by the load test",
                    )
                else:
                    self.created += 1
                started = time.perf_counter()
                if started - due > WRITE_INTERVAL:
                    self.late += 1
                register_live_session_run(session, self.registry)
                self.durations.append(time.perf_counter() - started)
                self.steps.append(time.perf_counter())
                step += 1
                due += WRITE_INTERVAL
                if step // 2 >= len(sessions) - 1:
                    break
                stop.wait(max(0.0, due - time.perf_counter()))
        except Exception as exc:  # reported as a failure of the run
            self.error = f"{type(exc).__name__}: {exc}"


@dataclass
class LoadReport:
    size: int
    seconds: float
    log: RequestLog
    writer: Writer
    streams: list[EventStream]
    window: tuple[float, float]
    load_seconds: float
    rss_mib: tuple[float, float]
    final_sessions: int | None
    rss_peak_mib: float = float("nan")  # the highest RSS sampled while the writer ran
    runtime: float = 0.0  # server start to exit, registry cleanup included
    problems: list[str] = field(default_factory=list)

    @property
    def storm_ratio(self) -> float:
        return self.rss_peak_mib / self.rss_mib[0]

    @property
    def error_count(self) -> int:
        return sum(len(errors) for errors in self.log.errors.values())

    def max_gaps(self) -> list[float]:
        """Longest silence of each stream while the writer ran (incl. start and end)."""
        start, end = self.window
        gaps = []
        for stream in self.streams:
            moments = [start, *(t for t in stream.updates() if start <= t <= end + 1.0), end]
            moments.sort()
            gaps.append(max(b - a for a, b in zip(moments, moments[1:], strict=False)))
        return gaps

    @property
    def stalled(self) -> bool:
        return any(gap > STALL_SECONDS for gap in self.max_gaps()) or any(
            stream.error for stream in self.streams
        )

    @property
    def ok(self) -> bool:
        return not self.error_count and not self.stalled and not self.problems

    def markdown(self) -> str:
        lines = [
            f"Load test: {self.size:,} sessions, {self.seconds:.0f} s, {HTTP_CLIENTS} HTTP "
            f"clients, {SSE_CLIENTS} event streams, a write every {WRITE_INTERVAL * 1000:.0f} ms",
            "",
            f"- index loaded {self.load_seconds:.1f} s after the server started; server RSS "
            f"{self.rss_mib[0]:.0f} MB before the run (steady state), "
            f"{self.rss_mib[1]:.0f} MB after; peak while the writer ran "
            f"{self.rss_peak_mib:.0f} MB ({self.storm_ratio:.2f}x the steady state)",
            f"- writer: {len(self.writer.steps)} writes ({self.writer.created} new sessions), "
            f"write p50 {ms(statistics.median(self.writer.durations or [0]))}, "
            f"{self.writer.late} behind schedule"
            + (f", ERROR {self.writer.error}" if self.writer.error else ""),
            f"- sessions the server counts afterwards: {self.final_sessions} "
            f"(expected {self.size + self.writer.created})",
            f"- runtime from server start to exit, cleanup included: {self.runtime:.1f} s "
            f"(limit {TOTAL_BUDGET:.0f} s)",
            "",
            "| endpoint | requests | errors | req/s | p50 | p95 | p99 | max |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        all_latencies: list[float] = []
        for path in ENDPOINTS:
            values = self.log.latencies.get(path, [])
            all_latencies += values
            lines.append(self._latency_row(path, values, len(self.log.errors.get(path, []))))
        lines.append(self._latency_row("all", all_latencies, self.error_count))
        lines += [
            "",
            "| event stream | updates | writes | max gap | result |",
            "|---|---:|---:|---:|---|",
        ]
        start, end = self.window
        for number, (stream, gap) in enumerate(zip(self.streams, self.max_gaps(), strict=True)):
            updates = [t for t in stream.updates() if start <= t <= end + 1.0]
            result = "pass" if gap <= STALL_SECONDS and not stream.error else "STALLED"
            if stream.error:
                result += f" ({stream.error})"
            lines.append(
                f"| #{number + 1} | {len(updates)} | {len(self.writer.steps)} | "
                f"{gap:.2f} s | {result} |"
            )
        for path, errors in self.log.errors.items():
            lines.append(f"\nerrors on {path}: {sorted(set(errors))[:5]}")
        lines += [f"\nproblem: {p}" for p in self.problems]
        verdict = "PASS" if self.ok else "FAIL"
        lines.append(
            f"\n**{verdict}**: {self.error_count} error responses, "
            f"max event-stream gap {max(self.max_gaps(), default=0):.2f} s "
            f"(limit {STALL_SECONDS:.0f} s)"
        )
        return "\n".join(lines)

    def _latency_row(self, name: str, values: list[float], errors: int) -> str:
        if not values:
            return f"| `{name}` | 0 | {errors} | | | | | |"
        return (
            f"| `{name}` | {len(values)} | {errors} | {len(values) / self.seconds:.1f} | "
            f"{ms(percentile(values, 0.50))} | {ms(percentile(values, 0.95))} | "
            f"{ms(percentile(values, 0.99))} | {ms(max(values))} |"
        )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def prepare_registry(size: int, workdir: Path) -> Path:
    """A fresh registry of ``size`` sessions that this run alone writes into."""
    target = workdir / "registry"
    if size <= GENERATE_UP_TO:
        write_registry(target, size)
        return target
    source = ensure_registry(size)
    # Hard links: a copy in ~1 s instead of ~10 s. Safe because nothing writes a
    # registry file in place: the writer (register_live_session_run) replaces
    # files atomically, which gives the copy a new inode and leaves the cache alone.
    try:
        subprocess.run(["cp", "-al", str(source), str(target)], check=True)
    except (OSError, subprocess.CalledProcessError):
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
    if count_records(target) != size:
        raise RuntimeError(f"copy of {source} is incomplete")
    return target


def run_load(
    size: int, seconds: float, workdir: Path | None = None, echo: bool = True
) -> LoadReport:
    """Prepare the registry, then run the bounded load test; never more than 60 s."""
    seconds = min(seconds, MAX_SECONDS)
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="load-")))
        prepared = time.perf_counter()
        registry = prepare_registry(size, workdir)
        if echo:
            print(f"registry of {size:,} ready in {time.perf_counter() - prepared:.1f} s")
        budget_end = time.perf_counter() + TOTAL_BUDGET  # from here on, 60 s at most

        def phase(name: str) -> None:
            if echo:
                print(f"[{TOTAL_BUDGET - (budget_end - time.perf_counter()):5.1f} s] {name}")

        # A fresh copy each run: its head cache would only pile up in ~/.cache.
        server = stack.enter_context(ServerProcess(registry, {"LIVE_TRACK_CACHE": "off"}))
        server.wait_answering(timeout=20)
        with httpx2.Client(base_url=server.url, timeout=30) as client:
            load_limit = budget_end - time.perf_counter() - RESERVE_SECONDS - 5
            loaded_at = wait_loaded(client, timeout=max(load_limit, 1.0))
            client.get("/")  # the views a steady server holds
        load_seconds = loaded_at - server.started
        rss_before = server.rss_mib()
        left = budget_end - time.perf_counter() - RESERVE_SECONDS
        if left < seconds:
            phase(f"writer phase trimmed from {seconds:.1f} s to {left:.1f} s to stay within 60 s")
            seconds = left
        phase(f"index loaded {load_seconds:.1f} s after the start; running {seconds:.0f} s")

        streams = [EventStream(server.port) for _ in range(SSE_CLIENTS)]
        log = RequestLog()
        writer = Writer(registry, seconds)
        stop_clients, stop_writer = threading.Event(), threading.Event()
        clients = [
            threading.Thread(
                target=hammer, args=(server.url, n, stop_clients, log, REQUEST_TIMEOUT), daemon=True
            )
            for n in range(HTTP_CLIENTS)
        ]
        for thread in clients:
            thread.start()
        writer_thread = threading.Thread(target=writer.run, args=(stop_writer,), daemon=True)
        peak = RssSampler(server)
        window_start = time.perf_counter()
        writer_thread.start()
        peak.start()
        stop_writer.wait(seconds)
        stop_writer.set()
        writer_thread.join(timeout=10)
        peak.stop.set()
        peak.join()
        phase("writer stopped")
        window_end = writer.steps[-1] if writer.steps else time.perf_counter()
        time.sleep(1.0)  # the last write's event is on its way
        stop_clients.set()
        for thread in clients:
            thread.join(timeout=max(0.1, budget_end - time.perf_counter() - 5))
        phase("clients stopped")
        for stream in streams:
            stream.close()
        phase("streams closed")

        problems = []
        if writer.error:
            problems.append(f"writer failed: {writer.error}")
        final = None
        expected = size + writer.created
        with httpx2.Client(base_url=server.url, timeout=5) as client:
            deadline = time.perf_counter() + 2
            while time.perf_counter() < deadline:
                final = client.get("/api/live_sessions/stats").json()["sessions"]
                if final == expected:
                    break
                time.sleep(0.1)
        if final != expected:
            problems.append(f"server counts {final} sessions, the registry holds {expected}")
        phase("final count checked")
        rss_after = server.rss_mib()
        if "Traceback" in server.log():
            problems.append(f"server log has a traceback:\n{server.log()[-1500:]}")
    runtime = time.perf_counter() - budget_end + TOTAL_BUDGET
    if runtime > TOTAL_BUDGET:
        problems.append(f"took {runtime:.0f} s, more than {TOTAL_BUDGET:.0f} s")
    return LoadReport(
        size=size,
        seconds=window_end - window_start,
        log=log,
        writer=writer,
        streams=streams,
        window=(window_start, window_end),
        load_seconds=load_seconds,
        rss_mib=(rss_before, rss_after),
        rss_peak_mib=peak.peak_mib,
        final_sessions=final,
        runtime=runtime,
        problems=problems,
    )


class RssSampler(threading.Thread):
    """The server's highest resident memory, sampled every 200 ms until stopped."""

    def __init__(self, server: ServerProcess) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.peak_mib = server.rss_mib()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            rss = self.server.rss_mib()
            if rss == rss:  # not NaN: the server is still there
                self.peak_mib = max(self.peak_mib, rss)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="sessions in the registry")
    parser.add_argument(
        "--seconds", type=float, default=MAX_SECONDS, help=f"writer phase (max {MAX_SECONDS:.0f})"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="Markdown report file")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report = run_load(args.size, args.seconds)
    text = (
        f"# Live-Track load test\n\n- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}\n"
        f"- command: `python -m benchmarks.load --size {args.size} --seconds {args.seconds:g}`\n\n"
        + report.markdown()
        + "\n"
    )
    args.output.write_text(text, encoding="utf-8")
    print()
    print(report.markdown())
    print(f"\ntotal {time.perf_counter() - started:.0f} s including the registry copy")
    print(f"written to {args.output}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
