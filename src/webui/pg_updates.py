"""Listen to the shared registry's change feed and tell open pages.

The database counterpart of the directory watch in ``live_updates``: one
``LISTEN`` connection per dashboard process. After every (re)connect it
reconciles the whole table first, so nothing that changed while it was away is
missed; the periodic reconciliation of ``LiveUpdates`` backs it up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import psycopg
from psycopg import sql

from src.experiments.database_url import redact_url
from src.experiments.pg_index import PgRegistryIndex
from src.experiments.pg_registry import (
    CHANNEL,
    CONNECT_TIMEOUT_SECONDS,
    SchemaMismatch,
)
from src.experiments.shipper import Backoff
from src.webui.live_updates import LiveUpdates, refresh_interval
from src.webui.session_query import build_seconds

logger = logging.getLogger(__name__)

# How long the listener waits for a notification before it checks the connection.
IDLE_CHECK_SECONDS = 5.0
# Notifications arriving this soon after the first are handled in one batch.
GATHER_SECONDS = 0.02


async def listen(index: PgRegistryIndex, updates: LiveUpdates, max_backoff: float = 10.0) -> None:
    """Follow the change feed until cancelled, reconnecting with capped backoff."""
    backoff = Backoff(first=0.5, cap=max_backoff)
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(
                index.url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name="live-track dashboard listen",
            )
            async with conn:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
                # Listening before reconciling: whatever commits in between is heard.
                changes = await asyncio.to_thread(index.sync)
                updates.publish(changes)
                backoff.reset()
                await _follow(conn, index, updates)
        except (psycopg.Error, SchemaMismatch, OSError) as exc:
            logger.warning(
                "Change feed from %s interrupted, reconnecting: %s", redact_url(index.url), exc
            )
        except Exception:  # the feed must outlive any one bad pass
            logger.exception("Following the change feed failed; reconnecting")
        await asyncio.sleep(backoff.next_delay())


async def _follow(
    conn: psycopg.AsyncConnection[object], index: PgRegistryIndex, updates: LiveUpdates
) -> None:
    while True:
        payloads = [
            note.payload async for note in conn.notifies(timeout=IDLE_CHECK_SECONDS, stop_after=1)
        ]
        if not payloads:
            await conn.execute("SELECT 1")  # a dead server shows here, not never
            continue
        started = time.monotonic()
        cost = build_seconds(index.snapshot())
        payloads += [note.payload async for note in conn.notifies(timeout=GATHER_SECONDS)]
        changes = await asyncio.to_thread(index.apply_notifications, payloads)
        if changes:
            updates.publish(changes)
        # Like the file watch: at most one new snapshot per interval under a storm.
        await asyncio.sleep(refresh_interval(cost) - (time.monotonic() - started))


@contextlib.asynccontextmanager
async def following(index: object, updates: LiveUpdates) -> AsyncIterator[None]:
    """Run the listener for the app's lifetime when the index reads PostgreSQL."""
    if not isinstance(index, PgRegistryIndex):
        yield
        return
    task = asyncio.create_task(listen(index, updates))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.to_thread(index.close)
