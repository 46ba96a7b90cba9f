"""Typed access to the app's shared state, for route signatures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from starlette.convertors import Convertor, register_url_convertor

from src.experiments.registry_index import IndexSnapshot, RegistryIndex
from src.webui.live_track import SessionRules, utcnow
from src.webui.live_updates import LiveUpdates
from src.webui.session_query import SessionQuery
from src.webui.settings import Settings


class SessionIdConvertor(Convertor[str]):
    """Match any session id in a path, slashes and control characters included.

    The id is only ever looked up in the index, never joined into a file path,
    so every id may reach the handler and get a precise "not found".
    """

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("session_id", SessionIdConvertor())

# How long a request waits for the first index load before it shows progress.
FIRST_LOAD_WAIT_SECONDS = 2.0


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _index(request: Request) -> RegistryIndex:
    index: RegistryIndex = request.app.state.index
    return index


def _updates(request: Request) -> LiveUpdates:
    updates: LiveUpdates = request.app.state.updates
    return updates


def _snapshot(index: Annotated[RegistryIndex, Depends(_index)]) -> IndexSnapshot:
    index.start_loading()  # no-op once the lifespan (or an earlier request) started it
    index.wait_loaded(FIRST_LOAD_WAIT_SECONDS)
    return index.snapshot()


def _now() -> datetime:
    return utcnow()


SettingsDep = Annotated[Settings, Depends(_settings)]
IndexDep = Annotated[RegistryIndex, Depends(_index)]
SnapshotDep = Annotated[IndexSnapshot, Depends(_snapshot)]
UpdatesDep = Annotated[LiveUpdates, Depends(_updates)]
QueryDep = Annotated[SessionQuery, Query()]
NowDep = Annotated[datetime, Depends(_now)]


@dataclass(frozen=True)
class ViewContext:
    """What every view of a request is computed from: one snapshot, one "now", the settings.

    Fixed once per request, so the page and the numbers on it agree even when
    the registry changes or the clock moves while it renders.
    """

    index: RegistryIndex
    snapshot: IndexSnapshot
    now: datetime
    settings: Settings
    rules: SessionRules


def _view(
    request: Request, index: IndexDep, snapshot: SnapshotDep, now: NowDep, settings: SettingsDep
) -> ViewContext:
    rules: SessionRules = request.app.state.rules
    return ViewContext(index=index, snapshot=snapshot, now=now, settings=settings, rules=rules)


ViewDep = Annotated[ViewContext, Depends(_view)]
