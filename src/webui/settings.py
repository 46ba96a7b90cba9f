"""Typed configuration, read in one place: arguments, then environment, then defaults.

The dashboard, the CLI and the programmatic functions all take their settings
from here, so one environment variable means the same everywhere.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from src.experiments.registry_files import REGISTRY_DIR_ENV, resolve_registry_dir
from src.webui.vocabulary import DEFAULT_REAL_MONEY_MODES

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class Settings(BaseSettings):
    """Everything a Live-Track process needs to know, in one validated object."""

    model_config = SettingsConfigDict(env_prefix="LIVE_TRACK_", populate_by_name=True)

    # The registry has one variable, shared with the bots that write it.
    registry_dir: Path = Field(
        default_factory=resolve_registry_dir,
        validation_alias=AliasChoices("registry_dir", REGISTRY_DIR_ENV),
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # A running session whose last heartbeat is older than this is stale.
    stale_after_seconds: float = Field(default=15 * 60, gt=0)
    # Full listing pass that catches what a file watch can miss.
    reconcile_seconds: float = Field(default=30.0, gt=0)
    watch: bool = True
    auth_token: SecretStr | None = None
    # Modes that trade real money: warned about everywhere (comma-separated).
    real_money_modes: Annotated[tuple[str, ...], NoDecode] = DEFAULT_REAL_MONEY_MODES

    @field_validator("real_money_modes", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(mode.strip() for mode in value.split(",") if mode.strip())
        return value

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS or self.host.startswith("127.")

    @property
    def stale_after(self) -> timedelta:
        return timedelta(seconds=self.stale_after_seconds)
