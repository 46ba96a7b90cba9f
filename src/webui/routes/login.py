"""The login form, present only when an access token is configured."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from src.webui.auth import (
    SESSION_COOKIE,
    LoginThrottle,
    safe_next,
    session_cookie_value,
    throttle_client,
    token_matches,
    too_many_attempts,
)
from src.webui.dependencies import SettingsDep
from src.webui.rendering import render

router = APIRouter(include_in_schema=False)

# A token plus a `next` path fit many times over; anything larger is not a login.
MAX_FORM_BYTES = 4096
# A login body that has not arrived by then is a slow-body attack, not a person.
BODY_TIMEOUT_SECONDS = 10.0
TOO_LARGE = f"Anmeldeformular zu groß (höchstens {MAX_FORM_BYTES} Bytes)."


async def read_capped_body(request: Request, limit: int = MAX_FORM_BYTES) -> bytes:
    """Read at most ``limit`` bytes of the body, refusing larger ones with 413.

    A declared Content-Length over the limit is refused before reading
    anything; a chunked body is read in chunks and refused as soon as it
    passes the limit, so memory stays bounded whatever the client sends.
    """
    declared = request.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > limit:
        raise HTTPException(413, TOO_LARGE)
    body = bytearray()

    async def collect() -> None:
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                raise HTTPException(413, TOO_LARGE)

    try:
        await asyncio.wait_for(collect(), BODY_TIMEOUT_SECONDS)
    except asyncio.TimeoutError:
        raise HTTPException(408, "Anmeldeformular kam nicht rechtzeitig an.") from None
    return bytes(body)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    """Ask for the access token."""
    return render(request, "login.html", next=safe_next(next), message=None)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, settings: SettingsDep) -> Response:
    """Check the token; on success set the session cookie and go where the user wanted."""
    body = await read_capped_body(request)
    form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=4)
    given = form.get("token", [""])[0]
    target = safe_next(form.get("next", ["/"])[0])
    token = settings.auth_token.get_secret_value() if settings.auth_token else ""
    throttle: LoginThrottle = request.app.state.login_throttle
    # The whole body is in: throttle check, comparison and record are one step.
    verdict = throttle.attempt(
        throttle_client(request.scope, bool(settings.trusted_proxies)),
        lambda: bool(token) and token_matches(given, token),
    )
    if verdict.retry_after > 0:
        message, retry = too_many_attempts(verdict.retry_after)
        refused = render(request, "login.html", status_code=429, next="/", message=message)
        refused.headers.update(retry)
        return refused
    if not verdict.granted:
        return render(request, "login.html", status_code=401, next=target,
                      message="Falsches Zugangstoken.")  # fmt: skip
    welcome = RedirectResponse(target, status_code=303)
    welcome.set_cookie(
        SESSION_COOKIE,
        session_cookie_value(token),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return welcome


@router.get("/logout")
def logout() -> RedirectResponse:
    """Forget the session cookie."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
