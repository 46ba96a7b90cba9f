"""Server-Sent Events: tell open pages that the registry changed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from src.webui.dependencies import UpdatesDep

router = APIRouter(prefix="/api", tags=["live sessions"])

KEEPALIVE_SECONDS = 15.0
RECONNECT_MILLISECONDS = 2000


@router.get("/live_sessions/events", response_class=StreamingResponse)
async def session_events(updates: UpdatesDep) -> StreamingResponse:
    """Stream an `update` event whenever sessions appear, change or disappear."""
    queue = updates.subscribe()
    hello = {"generation": updates.index.snapshot().generation, "ended": []}

    async def stream() -> AsyncIterator[str]:
        try:
            yield f"retry: {RECONNECT_MILLISECONDS}\nevent: hello\ndata: {json.dumps(hello)}\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except asyncio.TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"event: update\ndata: {json.dumps(event)}\n\n"
        finally:
            updates.unsubscribe(queue)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
