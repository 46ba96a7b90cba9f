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
# Host headers every install answers; anything else needs LIVE_TRACK_ALLOWED_HOSTS.
DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "[::1]")
MIN_TOKEN_LENGTH = 16


def _split_list(value: object) -> object:
    """Accept `a,b c` from the environment as well as a real list."""
    if isinstance(value, str):
        return [part for part in value.replace(",", " ").split() if part]
    return value


class Settings(BaseSettings):
    """Everything a Live-Track process needs to know, in one validated object."""

    # hide_input_in_errors: a rejected token must not be echoed into a log.
    model_config = SettingsConfigDict(
        env_prefix="LIVE_TRACK_", populate_by_name=True, hide_input_in_errors=True
    )

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

    # Extra Host header names (besides localhost, 127.0.0.1, [::1]) the app answers.
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    # Proxy addresses whose X-Forwarded-For is believed; empty: none, the socket peer counts.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    # Resource limits (README "Limits"): raise them with LIVE_TRACK_* variables.
    limit_concurrency: int = Field(default=200, ge=1)
    timeout_keep_alive: int = Field(default=5, ge=1)
    max_event_streams: int = Field(default=50, ge=1)

    _split_lists = field_validator(
        "allowed_hosts", "trusted_proxies", "real_money_modes", mode="before"
    )(_split_list)

    @field_validator("auth_token")
    @classmethod
    def _token_is_strong_enough(cls, token: SecretStr | None) -> SecretStr | None:
        # An empty token would be a token anyone knows (issue 12, item 4).
        if token is None:
            return None
        secret = token.get_secret_value()
        if not secret.strip():
            raise ValueError(
                "the access token is empty; set a real token (at least "
                f"{MIN_TOKEN_LENGTH} characters) or unset LIVE_TRACK_AUTH_TOKEN"
            )
        if len(secret) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"the access token is too short ({len(secret)} characters); use at least "
                f"{MIN_TOKEN_LENGTH}, e.g. from "
                "python -c 'import secrets; print(secrets.token_urlsafe())'"
            )
        return token

    # postgresql://... : read the shared registry of many hosts instead of a directory.
    database_url: SecretStr | None = None

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS or self.host.startswith("127.")

    @property
    def stale_after(self) -> timedelta:
        return timedelta(seconds=self.stale_after_seconds)

    @property
    def host_names(self) -> frozenset[str]:
        """Host header names (lower case, no port) this app answers."""
        return frozenset(name.lower() for name in (*DEFAULT_ALLOWED_HOSTS, *self.allowed_hosts))
