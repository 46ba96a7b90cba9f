"""The login form, present only when an access token is configured."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from src.webui.auth import (
    SESSION_COOKIE,
    LoginThrottle,
    safe_next,
    session_cookie_value,
    token_matches,
)
from src.webui.dependencies import SettingsDep
from src.webui.rendering import render

router = APIRouter(include_in_schema=False)

MAX_FORM_BYTES = 4096


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    """Ask for the access token."""
    return render(request, "login.html", next=safe_next(next), message=None)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, settings: SettingsDep) -> Response:
    """Check the token; on success set the session cookie and go where the user wanted."""
    throttle: LoginThrottle = request.app.state.login_throttle
    client = _client(request)
    wait = throttle.retry_after(client)
    if wait > 0:
        message = f"Zu viele Fehlversuche. Bitte in {int(wait) + 1} s erneut versuchen."
        refused = render(request, "login.html", status_code=429, next="/", message=message)
        refused.headers["Retry-After"] = str(int(wait) + 1)
        return refused
    body = await request.body()
    form = parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace"), max_num_fields=4)
    given = form.get("token", [""])[0]
    target = safe_next(form.get("next", ["/"])[0])
    token = settings.auth_token.get_secret_value() if settings.auth_token else ""
    if not token or not token_matches(given, token):
        throttle.failed(client)
        return render(request, "login.html", status_code=401, next=target,
                      message="Falsches Zugangstoken.")  # fmt: skip
    throttle.succeeded(client)
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
