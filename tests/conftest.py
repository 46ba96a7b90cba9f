"""Settings shared by the whole test suite."""

from __future__ import annotations

from collections.abc import Iterator

import hypothesis.core
import pytest
from hypothesis.vendor import pretty


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


@pytest.fixture(scope="session", autouse=True)
def private_head_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the head cache (src/experiments/head_cache.py) of test registries out of
    the user's ~/.cache; servers the tests start inherit the variable."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield
