"""Bounded load and loading checks against the real server (benchmarks/ at small sizes).

The full-size runs are ``make bench`` and ``python -m benchmarks.load``; these
keep the same code paths honest in the test suite, in well under 40 s.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.generate import write_registry
from benchmarks.load import STALL_SECONDS, run_load
from benchmarks.loading import LoadingObservation, observe_loading
from benchmarks.server import ServerProcess
from src.webui.live_updates import MIN_REFRESH_SECONDS

pytestmark = pytest.mark.slow

# Large enough that the first load clearly outlasts the page's 2 s wait for it on
# this 2-core machine (5-8 s in-server). Writing 100,000 files takes 10-40 s here,
# so 10,000 real records are written and each is hard-linked under 9 more names:
# the load still opens and parses 100,000 files, which is all this test needs.
LOADING_SIZE = 100_000
DISTINCT_RECORDS = 10_000


def write_linked_registry(directory: Path, count: int, distinct: int) -> None:
    write_registry(directory, distinct)
    originals = sorted(directory.iterdir())
    for copy in range(1, count // distinct):
        for original in originals:
            os.link(original, original.with_name(f"{original.stem}_copy{copy}.json"))


def test_server_under_writes_answers_every_request_and_every_tab(tmp_path: Path) -> None:
    report = run_load(size=2000, seconds=8, workdir=tmp_path, echo=False)

    assert report.error_count == 0, report.markdown()
    assert not report.problems, report.markdown()
    assert all(stream.error is None for stream in report.streams), report.markdown()
    assert max(report.max_gaps()) <= STALL_SECONDS, report.markdown()
    # The watcher merges a busy writer's changes into one snapshot per
    # MIN_REFRESH_SECONDS, so a tab hears about 1 / 0.3 s updates, not 10/s.
    expected = len(report.writer.steps) * 0.1 / (MIN_REFRESH_SECONDS + 0.2)
    for stream in report.streams:
        assert len(stream.updates()) >= expected * 0.8, report.markdown()
    assert all(report.log.latencies[path] for path in report.log.latencies)


@pytest.fixture(scope="module")
def first_load(tmp_path_factory: pytest.TempPathFactory) -> LoadingObservation:
    registry = tmp_path_factory.mktemp("loading") / "registry"
    write_linked_registry(registry, LOADING_SIZE, DISTINCT_RECORDS)
    assert len(os.listdir(registry)) == LOADING_SIZE
    with ServerProcess(registry) as server:
        return observe_loading(server, timeout=60)


def test_health_answers_while_the_index_loads(first_load: LoadingObservation) -> None:
    assert first_load.first_answer < first_load.loaded  # startup did not wait for the load
    assert first_load.health_latencies
    assert first_load.health_errors == []
    assert max(first_load.health_latencies) < 2.0


def test_page_shows_progress_while_the_index_loads(first_load: LoadingObservation) -> None:
    assert first_load.page_status == 200
    assert first_load.page_answered < first_load.loaded - 0.2, "page waited for the full load"
    assert first_load.loading_text is not None
    assert first_load.loading_text.endswith(f" / {LOADING_SIZE})")
