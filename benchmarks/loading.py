"""Watch a server's first index load from outside: health probes and one page request."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

import httpx2

from benchmarks.server import ServerProcess, tree_rss_kib, wait_loaded

# src/webui/dependencies.py FIRST_LOAD_WAIT_SECONDS: a page waits this long for the first load.
PAGE_WAIT_SECONDS = 2.0
LOADING_TEXT = re.compile(r"Index wird geladen \((\d+) / (\d+)\)")


class HealthProbe(threading.Thread):
    """Ask /api/health every 20 ms while the index loads, recording latencies and errors."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.peak_rss_kib = 0
        self.pid = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx2.Client(base_url=self.url, timeout=10) as client:
            while not self.stop.is_set():
                started = time.perf_counter()
                try:
                    status = client.get("/api/health").status_code
                except httpx2.HTTPError as exc:
                    self.errors.append(type(exc).__name__)
                else:
                    self.latencies.append(time.perf_counter() - started)
                    if status != 200:
                        self.errors.append(f"HTTP {status}")
                if self.pid:
                    self.peak_rss_kib = max(self.peak_rss_kib, tree_rss_kib(self.pid))
                self.stop.wait(0.02)


@dataclass
class LoadingObservation:
    """What a client saw of the server while its index loaded (seconds since spawn)."""

    first_answer: float
    page_sent: float
    page_answered: float
    page_status: int
    loading_text: str | None  # e.g. "Index wird geladen (4000 / 100000)", None if not seen
    loaded: float
    health_latencies: list[float]
    health_errors: list[str]
    peak_tree_rss_mib: float


def observe_loading(server: ServerProcess, timeout: float = 300) -> LoadingObservation:
    """Probe /api/health every 20 ms and fetch / once, from the first answer until loaded."""
    first_answer = server.wait_answering()
    probe = HealthProbe(server.url)
    probe.pid = server.pid
    probe.start()
    try:
        with httpx2.Client(base_url=server.url, timeout=timeout) as client:
            page_sent = time.perf_counter() - server.started
            page = client.get("/")
            page_answered = time.perf_counter() - server.started
            seen = LOADING_TEXT.search(page.text)
            loaded = wait_loaded(client, timeout=timeout) - server.started
    finally:
        probe.stop.set()
        probe.join()
    return LoadingObservation(
        first_answer=first_answer,
        page_sent=page_sent,
        page_answered=page_answered,
        page_status=page.status_code,
        loading_text=seen[0] if seen else None,
        loaded=loaded,
        health_latencies=probe.latencies,
        health_errors=probe.errors,
        peak_tree_rss_mib=probe.peak_rss_kib / 1024,
    )
