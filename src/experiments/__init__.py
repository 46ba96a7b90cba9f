"""Storage of the live-session registry; the contract's names, re-exported."""

from src.experiments.live_session_registry import *  # noqa: F403
from src.experiments.live_session_registry import __all__ as __all__
