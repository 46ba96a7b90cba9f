"""Typed configuration: arguments first, then environment variables, then defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from src.experiments.live_session_registry import DEFAULT_LIVE_SESSION_DIR, REGISTRY_DIR_ENV

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
    """Everything the dashboard process needs to know, in one validated object."""

    # hide_input_in_errors: a rejected token must not be echoed into a log.
    model_config = SettingsConfigDict(
        env_prefix="LIVE_TRACK_", populate_by_name=True, hide_input_in_errors=True
    )

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
    # Extra Host header names (besides localhost, 127.0.0.1, [::1]) the app answers.
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    # Proxy addresses whose X-Forwarded-For is believed; empty: none, the socket peer counts.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    # Resource limits (README "Limits"): raise them with LIVE_TRACK_* variables.
    limit_concurrency: int = Field(default=200, ge=1)
    timeout_keep_alive: int = Field(default=5, ge=1)
    max_event_streams: int = Field(default=50, ge=1)

    _split_hosts = field_validator("allowed_hosts", "trusted_proxies", mode="before")(_split_list)

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

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS or self.host.startswith("127.")

    @property
    def host_names(self) -> frozenset[str]:
        """Host header names (lower case, no port) this app answers."""
        return frozenset(name.lower() for name in (*DEFAULT_ALLOWED_HOSTS, *self.allowed_hosts))
