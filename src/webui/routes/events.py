"""Server-Sent Events: tell open pages that the registry changed."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from src.webui.dependencies import SettingsDep, UpdatesDep
from src.webui.live_updates import LiveUpdates

router = APIRouter(prefix="/api", tags=["live sessions"])

KEEPALIVE_SECONDS = 15.0
RECONNECT_MILLISECONDS = 2000
STREAMS_RETRY_AFTER_SECONDS = 10
STREAMS_EXHAUSTED = (
    "Zu viele offene Live-Verbindungen. Bitte später erneut versuchen "
    "(Grenze: LIVE_TRACK_MAX_EVENT_STREAMS)."
)


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


class EventStreamResponse(Response):
    """An SSE stream that unsubscribes the moment its client leaves.

    Starlette's StreamingResponse cancels a disconnected generator without
    closing it, which would leave its queue subscribed until garbage
    collection; here subscription and cleanup sit in one try/finally.
    """

    media_type = "text/event-stream"

    def __init__(self, updates: LiveUpdates, max_streams: int, status_code: int = 200) -> None:
        super().__init__(status_code=status_code, media_type=self.media_type)
        self.updates = updates
        self.max_streams = max_streams

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Checked and taken in one step: each open stream holds a connection.
        queue = self.updates.subscribe(limit=self.max_streams)
        if queue is None:
            busy = JSONResponse(
                {"detail": STREAMS_EXHAUSTED},
                status_code=503,
                headers={"Retry-After": str(STREAMS_RETRY_AFTER_SECONDS)},
            )
            await busy(scope, receive, send)
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                        (b"x-accel-buffering", b"no"),
                    ],
                }
            )
            hello = {"generation": self.updates.index.snapshot().generation, "ended": []}
            await self._body(
                send, f"retry: {RECONNECT_MILLISECONDS}\n".encode() + _event("hello", hello)
            )
            disconnected = asyncio.ensure_future(_wait_for_disconnect(receive))
            closing = asyncio.ensure_future(self.updates.closing.wait())
            try:
                while True:
                    next_event = asyncio.ensure_future(queue.get())
                    done, _ = await asyncio.wait(
                        {next_event, disconnected, closing},
                        timeout=KEEPALIVE_SECONDS,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    if disconnected in done or closing in done:
                        next_event.cancel()
                        break
                    if next_event in done:
                        await self._body(send, _event("update", next_event.result()))
                    else:
                        next_event.cancel()
                        await self._body(send, b": keep-alive\n\n")
            finally:
                disconnected.cancel()
                closing.cancel()
            with contextlib.suppress(OSError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.updates.unsubscribe(queue)

    @staticmethod
    async def _body(send: Send, chunk: bytes) -> None:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return


@router.get(
    "/live_sessions/events",
    response_class=EventStreamResponse,
    responses={503: {"description": "Too many open event streams; see Retry-After"}},
)
async def session_events(updates: UpdatesDep, settings: SettingsDep) -> EventStreamResponse:
    """Stream an `update` event whenever sessions appear, change or disappear."""
    return EventStreamResponse(updates, settings.max_event_streams)
