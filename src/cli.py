"""The ``live-track`` command: look into the session registry, write demo data, serve the dashboard.

Every command takes ``--registry DIR``; without it the registry comes from
``PEAK_TRADE_LIVE_SESSIONS_DIR`` or the default directory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from src.experiments.live_session_registry import (
    LiveSessionRecord,
    get_session_summary,
    list_session_records,
    resolve_registry_dir,
    utc_instant,
)

STATUSES = ("started", "completed", "failed", "aborted")
DEFAULT_LIST_LIMIT = 20
DEFAULT_DEMO_COUNT = 40

Handler = Callable[[argparse.Namespace], int]


def main(argv: list[str] | None = None) -> int:
    """Run the ``live-track`` command line and return its exit code."""
    args = _build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except BrokenPipeError:
        # `live-track sessions list | head`: the reader left; exit quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _build_parser() -> argparse.ArgumentParser:
    registry = argparse.ArgumentParser(add_help=False)
    registry.add_argument(
        "--registry",
        metavar="DIR",
        type=Path,
        help="registry directory (default: $PEAK_TRADE_LIVE_SESSIONS_DIR or "
        "reports/experiments/live_sessions)",
    )
    parser = argparse.ArgumentParser(
        prog="live-track", description="Live-Track: the live-session registry and its dashboard."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sessions = commands.add_parser("sessions", help="list, show or summarize recorded sessions")
    session_commands = sessions.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = session_commands.add_parser(
        "list", parents=[registry], help="show sessions as a table, newest first"
    )
    listing.add_argument("--mode", help="only this mode (shadow, testnet, paper, live, ...)")
    listing.add_argument("--status", choices=STATUSES, help="only this status")
    listing.add_argument(
        "--limit",
        type=_positive_int,
        default=DEFAULT_LIST_LIMIT,
        metavar="N",
        help=f"show at most N sessions (default: {DEFAULT_LIST_LIMIT})",
    )
    listing.set_defaults(handler=_list_sessions)
    show = session_commands.add_parser(
        "show", parents=[registry], help="print one session record as JSON"
    )
    show.add_argument("session_id", metavar="ID", help="the session id")
    show.set_defaults(handler=_show_session)
    summary = session_commands.add_parser(
        "summary", parents=[registry], help="counts, total PnL and drawdown over all sessions"
    )
    summary.set_defaults(handler=_summarize_sessions)

    demo = commands.add_parser(
        "demo", parents=[registry], help="write realistic demo sessions into the registry"
    )
    demo.add_argument("--count", type=_positive_int, default=DEFAULT_DEMO_COUNT, metavar="N")
    demo.add_argument("--seed", type=int, default=82, metavar="S")
    demo.set_defaults(handler=_write_demo)

    serve = commands.add_parser("serve", help="run the web dashboard")
    serve.add_argument(
        "--registry",
        metavar="DIR|URL",
        help="registry directory, or postgresql://... for the shared registry of many hosts "
        "(default: $LIVE_TRACK_DATABASE_URL, else the directory as for every command)",
    )
    serve.add_argument("--host", help="interface to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: 8000)")
    serve.add_argument(
        "--auth-token",
        metavar="TOKEN",
        help="token required to view the dashboard (or set LIVE_TRACK_AUTH_TOKEN)",
    )
    serve.set_defaults(handler=_serve)
    _add_database_commands(commands, registry)
    return parser


def _add_database_commands(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    registry: argparse.ArgumentParser,
) -> None:
    from src.cli_database import add_database_commands

    add_database_commands(commands, registry)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# --- sessions ----------------------------------------------------------------


def _list_sessions(args: argparse.Namespace) -> int:
    directory = resolve_registry_dir(args.registry)
    records = [
        record
        for record in list_session_records(directory, status=args.status)
        if args.mode is None or record.mode == args.mode
    ]
    if not records:
        wanted = [f"{key}={value}" for key in ("mode", "status") if (value := getattr(args, key))]
        matching = f" matching {', '.join(wanted)}" if wanted else ""
        print(f"No live sessions{matching} found in {directory}.")
        return 0
    shown = records[: args.limit]
    print(_format_table(shown))
    if len(shown) < len(records):
        print(f"\nShowing {len(shown)} of {len(records)} sessions; use --limit to see more.")
    return 0


_COLUMNS = ("SESSION", "MODE", "STATUS", "STARTED (UTC)", "ENDED (UTC)", "PNL", "MAX DD", "ORDERS")
_RIGHT_ALIGNED = frozenset({"PNL", "MAX DD", "ORDERS"})


def _format_table(records: Sequence[LiveSessionRecord]) -> str:
    rows = [_COLUMNS, *(_table_row(record) for record in records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if name in _RIGHT_ALIGNED else cell.ljust(width)
            for name, cell, width in zip(_COLUMNS, row, widths, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _table_row(record: LiveSessionRecord) -> tuple[str, ...]:
    if record.finished_at is not None:
        ended = _utc_text(record.finished_at)
    else:
        ended = "running" if record.status == "started" else "-"
    metrics = record.metrics
    orders = metrics.get("num_orders", metrics.get("num_trades"))
    return (
        _printable(record.session_id),
        _printable(record.mode) or "-",
        _printable(record.status) or "-",
        _utc_text(record.started_at),
        ended,
        _money(metrics.get("realized_pnl")),
        _percent(metrics.get("max_drawdown")),
        f"{orders:.0f}" if _is_number(orders) else "-",
    )


def _show_session(args: argparse.Namespace) -> int:
    directory = resolve_registry_dir(args.registry)
    for record in list_session_records(directory):
        if record.session_id == args.session_id:
            print(json.dumps(record.to_dict(), indent=2, ensure_ascii=False))
            return 0
    print(f"No live session with id {args.session_id!r} in {directory}.", file=sys.stderr)
    return 1


def _summarize_sessions(args: argparse.Namespace) -> int:
    directory = resolve_registry_dir(args.registry)
    summary: dict[str, Any] = get_session_summary(directory)
    if not summary["num_sessions"]:
        print(f"No live sessions found in {directory}.")
        return 0
    by_status = sorted(summary["by_status"].items(), key=lambda item: (-item[1], item[0]))
    lines = [
        ("Registry", str(directory)),
        ("Sessions", str(summary["num_sessions"])),
        ("By status", ", ".join(f"{status or '-'} {n}" for status, n in by_status)),
        ("Total realized PnL", _money(summary["total_realized_pnl"])),
        ("Avg max drawdown", _percent(summary["avg_max_drawdown"])),
        ("First started (UTC)", _utc_text(summary["first_started_at"])),
        ("Last started (UTC)", _utc_text(summary["last_started_at"])),
    ]
    width = max(len(label) for label, _ in lines) + 1
    for label, value in lines:
        print(f"{label + ':':<{width}} {value}")
    return 0


def _printable(text: str) -> str:
    # Records are untrusted: an escape sequence in a session id must not drive the terminal.
    return "".join(char if char.isprintable() else "?" for char in text)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _money(value: object) -> str:
    return f"{value:+,.2f}" if _is_number(value) else "-"


def _percent(fraction: object) -> str:
    return f"{fraction:.1%}" if _is_number(fraction) else "-"


def _utc_text(moment: datetime | str | None) -> str:
    if moment is None:
        return "-"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return utc_instant(moment).strftime("%Y-%m-%d %H:%M:%S")


# --- demo and serve ------------------------------------------------------------


def _write_demo(args: argparse.Namespace) -> int:
    from src.experiments.demo_sessions import write_demo_sessions

    directory = resolve_registry_dir(args.registry)
    try:
        paths = write_demo_sessions(directory, args.count, seed=args.seed)
    except OSError as exc:
        print(f"Cannot write demo sessions to {directory}: {exc}", file=sys.stderr)
        return 1
    print(f"Wrote {len(paths)} demo sessions to {directory}.")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from src.experiments.pg_registry import is_database_url
    from src.webui.settings import Settings

    # Only what was given: everything else still comes from LIVE_TRACK_* variables.
    shared = is_database_url(args.registry)
    given = {
        "registry_dir": None if shared else args.registry,
        "database_url": args.registry if shared else None,
        "host": args.host,
        "port": args.port,
        "auth_token": args.auth_token,
    }
    try:
        settings = Settings(**{key: value for key, value in given.items() if value is not None})
    except ValidationError as exc:
        print(f"Invalid dashboard settings:\n{exc}", file=sys.stderr)
        return 2
    token = settings.auth_token.get_secret_value() if settings.auth_token else ""
    if not settings.is_loopback and not token:
        print(
            f"Refusing to serve on {settings.host} without an auth token: anyone who can reach "
            "this address could read your trading sessions.\n"
            "Set a token with --auth-token TOKEN or the LIVE_TRACK_AUTH_TOKEN environment "
            "variable, or listen on 127.0.0.1 only.",
            file=sys.stderr,
        )
        return 2

    import uvicorn

    from src.webui.app import create_app

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
