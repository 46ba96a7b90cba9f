"""Telling a PostgreSQL URL from a directory, and showing one without its password.

Apart from ``pg_registry`` so that the CLI and the server can ask "is this a
database?" without importing psycopg, which a directory-only run never needs
(a tenth of a second and 9 MB at every start).
"""

from __future__ import annotations

DATABASE_URL_ENV = "LIVE_TRACK_DATABASE_URL"
URL_PREFIXES = ("postgresql://", "postgres://")


def is_database_url(text: str | None) -> bool:
    return bool(text) and str(text).startswith(URL_PREFIXES)


def redact_url(url: str) -> str:
    """The URL without its password, for logs and the page header."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://?"
    host = params.get("host") or "localhost"
    return f"postgresql://{params.get('user') or ''}@{host}/{params.get('dbname') or ''}"
