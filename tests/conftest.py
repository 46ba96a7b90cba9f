"""Settings shared by the whole test suite."""

from __future__ import annotations

from collections.abc import Iterator

import hypothesis.core
import pytest
from hypothesis.vendor import pretty

# The throwaway PostgreSQL server fixtures (pg_server, pg_url, own_pg_server).
pytest_plugins = ["tests.pg_support"]


@pytest.fixture(scope="session", autouse=True)
def readable_failing_examples() -> Iterator[None]:
    """Print Hypothesis' failing examples in every test module.

    Schemathesis' pytest plugin (loaded at startup) swaps Hypothesis'
    RepresentationPrinter for one that prints nothing, in the whole process.
    """
    patched = hypothesis.core.RepresentationPrinter
    hypothesis.core.RepresentationPrinter = pretty.RepresentationPrinter  # type: ignore[misc]
    yield
    hypothesis.core.RepresentationPrinter = patched  # type: ignore[misc]
