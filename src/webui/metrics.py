"""Prometheus metrics of the dashboard, computed from the index snapshot at scrape time.

Nothing is counted on the request path: a scrape reads the current snapshot,
so the numbers always agree with what the page shows. Each app has its own
registry (tests build many apps in one process).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from src.experiments.registry_files import stamp_mtime_ns
from src.experiments.registry_index import IndexSnapshot, RegistryIndex
from src.experiments.session_head import SessionHead
from src.webui.live_track import SessionRules
from src.webui.live_updates import LiveUpdates
from src.webui.session_query import cached_view, head_status, is_stale
from src.webui.vocabulary import KNOWN_MODES

FAILED_WINDOW = timedelta(hours=24)
# Per-mode series that exist even at zero, so rate() and delta() see the first event.
ALWAYS_REPORTED_MODES = KNOWN_MODES


class _Counts:
    """What one snapshot says, computed once per snapshot."""

    def __init__(self, snapshot: IndexSnapshot) -> None:
        self.by_mode_status: Counter[tuple[str, str]] = Counter()
        self.by_host: Counter[str] = Counter()
        self.running: list[SessionHead] = []
        self.ended: list[tuple[float, str, str]] = []  # (end in UTC seconds, mode, status)
        newest = 0
        for head in snapshot.sessions:
            status = head_status(head)
            self.by_mode_status[(head.mode, status)] += 1
            self.by_host[head.host] += 1
            newest = max(newest, stamp_mtime_ns(head.stamp))
            if status == "started":
                self.running.append(head)
            elif status == "failed" and head.ended:
                self.ended.append((head.activity, head.mode, status))
        self.newest_change_ns = newest


def _gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


class DashboardCollector(Collector):
    """Registry and server state as Prometheus gauges."""

    def __init__(
        self,
        index: RegistryIndex,
        updates: LiveUpdates,
        rules: SessionRules,
        clock: Callable[[], datetime],
    ) -> None:
        self.index = index
        self.updates = updates
        self.rules = rules
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snapshot = self.index.snapshot()
        now = self.clock()
        counts = cached_view(snapshot, ("metrics",), lambda: _Counts(snapshot))
        sessions = _gauge(
            "live_track_sessions", "Sessions in the registry by mode and status", ("mode", "status")
        )
        for (mode, status), n in sorted(counts.by_mode_status.items()):
            sessions.add_metric([mode, status], n)
        yield sessions
        hosts = _gauge(
            "live_track_host_sessions", "Sessions in the registry by bot host", ("host",)
        )
        for host, n in sorted(counts.by_host.items()):
            hosts.add_metric([host], n)
        yield hosts
        yield from self._running(counts, now)
        failed = _gauge(
            "live_track_failed_sessions_24h", "Sessions that failed in the last 24 hours", ("mode",)
        )
        since = (now - FAILED_WINDOW).timestamp()
        recent = Counter(mode for end, mode, _ in counts.ended if end >= since)
        recent.update(dict.fromkeys(ALWAYS_REPORTED_MODES, 0))
        for mode, n in sorted(recent.items()):
            failed.add_metric([mode], n)
        yield failed
        yield from self._server(snapshot, counts, now)

    def _running(self, counts: _Counts, now: datetime) -> Iterator[GaugeMetricFamily]:
        running = _gauge("live_track_running_sessions", "Sessions running now", ("mode",))
        stale = _gauge(
            "live_track_stale_sessions", "Running sessions whose writer went silent", ("mode",)
        )
        by_mode: Counter[str] = Counter(dict.fromkeys(ALWAYS_REPORTED_MODES, 0))
        stale_by_mode: Counter[str] = Counter()
        for head in counts.running:
            by_mode[head.mode] += 1
            if is_stale(head, now, self.rules.stale_after):
                stale_by_mode[head.mode] += 1
        for mode, n in sorted(by_mode.items()):
            running.add_metric([mode], n)
            stale.add_metric([mode], stale_by_mode[mode])
        yield running
        yield stale
        real = sum(n for mode, n in by_mode.items() if self.rules.is_real_money(mode))
        real_stale = sum(n for mode, n in stale_by_mode.items() if self.rules.is_real_money(mode))
        yield GaugeMetricFamily(
            "live_track_real_money_running_sessions",
            "Real-money sessions (LIVE_TRACK_REAL_MONEY_MODES) running now",
            value=real,
        )
        yield GaugeMetricFamily(
            "live_track_real_money_stale_sessions",
            "Real-money sessions running but silent for longer than the stale threshold",
            value=real_stale,
        )

    def _server(
        self, snapshot: IndexSnapshot, counts: _Counts, now: datetime
    ) -> Iterator[GaugeMetricFamily]:
        if counts.newest_change_ns:
            since = max(0.0, now.timestamp() - counts.newest_change_ns / 1e9)
            yield GaugeMetricFamily(
                "live_track_seconds_since_last_change",
                "Seconds since the newest registry file was last written",
                value=since,
            )
        yield GaugeMetricFamily(
            "live_track_index_loaded", "1 once the first index load finished", value=snapshot.loaded
        )
        if self.index.load_seconds is not None:
            yield GaugeMetricFamily(
                "live_track_index_load_seconds",
                "How long the first index load took",
                value=self.index.load_seconds,
            )
        yield GaugeMetricFamily(
            "live_track_index_generation", "Registry changes seen since start", snapshot.generation
        )
        yield GaugeMetricFamily(
            "live_track_event_streams", "Open event streams (live pages)", self.updates.subscribers
        )
        yield GaugeMetricFamily(
            "live_track_skipped_files", "Registry files that are not records", len(snapshot.skipped)
        )


def dashboard_registry(
    index: RegistryIndex,
    updates: LiveUpdates,
    rules: SessionRules,
    clock: Callable[[], datetime],
) -> CollectorRegistry:
    """A registry of the dashboard's own, with nothing from the process-wide default."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DashboardCollector(index, updates, rules, clock))
    return registry
