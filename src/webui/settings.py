"""Typed configuration: arguments first, then environment variables, then defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from src.experiments.live_session_registry import DEFAULT_LIVE_SESSION_DIR, REGISTRY_DIR_ENV

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class Settings(BaseSettings):
    """Everything the dashboard process needs to know, in one validated object."""

    model_config = SettingsConfigDict(env_prefix="LIVE_TRACK_", populate_by_name=True)

    registry_dir: Path = Field(
        default=DEFAULT_LIVE_SESSION_DIR,
        validation_alias=AliasChoices(REGISTRY_DIR_ENV, "LIVE_TRACK_REGISTRY_DIR"),
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # A started session silent for longer than this is flagged as stale.
    stale_after_seconds: float = Field(default=15 * 60, gt=0)
    # Full listing pass that catches what a file watch can miss.
    reconcile_seconds: float = Field(default=30.0, gt=0)
    watch: bool = True
    auth_token: SecretStr | None = None
    # postgresql://... : read the shared registry of many hosts instead of a directory.
    database_url: SecretStr | None = None

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS or self.host.startswith("127.")
