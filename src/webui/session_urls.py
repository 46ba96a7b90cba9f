"""How a session id is spelled in ``/api/live_sessions/{id}``, where it shares a level with us.

Our own endpoints ``/api/live_sessions/stats`` and ``/api/live_sessions/events``
sit beside the session detail, and a session id is any string a writer chose.
The endpoints take priority; a session whose id is one of their names is
reached by prefixing the id with ``~`` (``/api/live_sessions/~stats``). To keep
the spelling unambiguous, ``~`` at the start of that path segment always means
"the rest is the id", so an id that itself starts with ``~`` gets one more.
Every other id keeps its plain URL. ``/session/{id}`` has no siblings and
needs no escape. The README documents this under "Reserved names".
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.convertors import Convertor, register_url_convertor

# Paths our own endpoints use beside /api/live_sessions/{id}; a test checks the app's routes.
RESERVED_SESSION_NAMES = frozenset({"stats", "events"})
ESCAPE = "~"
SESSION_API_PREFIX = "/api/live_sessions/"


def session_ref(session_id: str) -> str:
    """The path segment (before quoting) that names this session under /api/live_sessions/."""
    if session_id in RESERVED_SESSION_NAMES or session_id.startswith(ESCAPE):
        return ESCAPE + session_id
    return session_id


def session_id_of(ref: str) -> str:
    """The session id a path segment under /api/live_sessions/ names."""
    return ref[len(ESCAPE) :] if ref.startswith(ESCAPE) else ref


def session_api_url(session_id: str) -> str:
    """The JSON twin of a session's page, quoted for one path segment (slashes included)."""
    return SESSION_API_PREFIX + quote(session_ref(session_id), safe="")


class SessionRefConvertor(Convertor[str]):
    """Match any spelling of a session id in the API path and undo the escape.

    Like the ``session_id`` convertor it takes slashes and control characters:
    the id is only looked up in the index, never joined into a file path.
    """

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return session_id_of(value)

    def to_string(self, value: str) -> str:
        return session_ref(value)


register_url_convertor("session_ref", SessionRefConvertor())
