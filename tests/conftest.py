"""Settings shared by the whole test suite."""

from __future__ import annotations

import os
from collections.abc import Iterator

import hypothesis.core
import pytest
from hypothesis.vendor import pretty

# Let Starlette's TestClient (``Host: testserver``) through the Host check, also
# for apps built at import time (tests/test_fuzz.py). The default allow-list
# (localhost, 127.0.0.1, [::1]) stays as it is; tests of the Host check itself
# remove this variable.
os.environ["LIVE_TRACK_ALLOWED_HOSTS"] = "testserver"


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
