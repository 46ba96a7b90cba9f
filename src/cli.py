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
from typing import TYPE_CHECKING

from pydantic import ValidationError

from src.experiments.live_session_record import utc_instant
from src.experiments.registry_files import resolve_registry_dir
from src.experiments.session_head import currency_decimals
from src.webui.vocabulary import STATUS_ORDER

if TYPE_CHECKING:
    from src.webui.live_track import SessionRow
    from src.webui.settings import Settings

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
    _add_filters(listing)
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

    report = commands.add_parser(
        "report", parents=[registry], help="write a Markdown or HTML report of the sessions"
    )
    report.add_argument("--format", choices=("markdown", "html"), default="markdown")
    report.add_argument("--output", metavar="FILE", type=Path, help="write here (default: stdout)")
    _add_filters(report)
    report.add_argument("--symbol", help="only this symbol, e.g. BTC/USDT")
    report.add_argument("--since", metavar="ISO", help="started at or after, e.g. 2026-11-18")
    report.add_argument("--until", metavar="ISO", help="started at or before")
    report.add_argument("--range", choices=("today", "7d", "30d"), help="quick time range")
    report.set_defaults(handler=_write_report)

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


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mode", action="append", default=[], help="only this mode (repeatable), e.g. live"
    )
    parser.add_argument(
        "--status", action="append", default=[], choices=STATUS_ORDER, help="only this status"
    )


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
# The same read model as the dashboard: same order, same status words, same settings.


def _settings(args: argparse.Namespace) -> Settings:
    from src.webui.settings import Settings

    return Settings() if args.registry is None else Settings(registry_dir=args.registry)


def _select(args: argparse.Namespace) -> tuple[Settings, list[SessionRow], int]:
    """The matching sessions, newest activity first, and how many match in all."""
    from src.experiments.registry_index import prefetch_listing

    settings = _settings(args)
    prefetch_listing(settings.registry_dir)  # on the other core, while the read model imports

    from src.webui.live_track import SessionRules, session_row, shared_index, utcnow
    from src.webui.session_query import SessionQuery, sort_sessions

    query = SessionQuery(mode=tuple(args.mode), status=tuple(args.status))
    snapshot = shared_index(settings.registry_dir).snapshot()
    now, rules = utcnow(), SessionRules.from_settings(settings)
    heads = sort_sessions(snapshot, query, now)
    limit = getattr(args, "limit", None) or len(heads)
    return settings, [session_row(h, snapshot, now, rules) for h in heads[:limit]], len(heads)


def _list_sessions(args: argparse.Namespace) -> int:
    settings, rows, matching = _select(args)
    if not rows:
        wanted = [
            f"{key}={','.join(value)}"
            for key in ("mode", "status")
            if (value := getattr(args, key))
        ]
        suffix = f" matching {', '.join(wanted)}" if wanted else ""
        print(f"No live sessions{suffix} found in {settings.registry_dir}.")
        return 0
    print(_format_table(rows))
    if any(row.is_live_warning for row in rows):
        print(f"\n{REAL_MONEY_MARK} real money ({', '.join(settings.real_money_modes)})")
    if len(rows) < matching:
        print(f"\nShowing {len(rows)} of {matching} sessions; use --limit to see more.")
    return 0


REAL_MONEY_MARK = "*"
_COLUMNS = ("SESSION", "MODE", "STATUS", "STARTED (UTC)", "ENDED (UTC)", "PNL", "MAX DD", "ORDERS")
_RIGHT_ALIGNED = frozenset({"PNL", "MAX DD", "ORDERS"})


def _format_table(rows: Sequence[SessionRow]) -> str:
    lines = [_COLUMNS, *(_table_row(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(_COLUMNS))]
    out = []
    for line in lines:
        cells = [
            cell.rjust(width) if name in _RIGHT_ALIGNED else cell.ljust(width)
            for name, cell, width in zip(_COLUMNS, line, widths, strict=True)
        ]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def _table_row(row: SessionRow) -> tuple[str, ...]:
    if row.ended_at is not None:
        ended = _utc_text(row.ended_at)
    else:
        ended = "stale" if row.stale else ("running" if row.status == "started" else "-")
    mode = _printable(row.mode) or "-"
    return (
        _printable(row.session_id),
        f"{mode}{REAL_MONEY_MARK}" if row.is_live_warning else mode,
        row.status,
        _utc_text(row.started_at),
        ended,
        _money(row.realized_pnl, row.currency),
        _percent(row.max_drawdown),
        "-" if row.num_orders is None else str(row.num_orders),
    )


def _show_session(args: argparse.Namespace) -> int:
    from src.webui.live_track import get_session_by_id

    settings = _settings(args)
    detail = get_session_by_id(args.session_id, settings.registry_dir)
    if detail is None:
        print(f"No live session with id {args.session_id!r} in {settings.registry_dir}.",
              file=sys.stderr)  # fmt: skip
        return 1
    print(json.dumps(detail.model_dump(mode="json"), indent=2, ensure_ascii=False))
    return 0


def _summarize_sessions(args: argparse.Namespace) -> int:
    from src.webui.live_track import SessionRules, pnl_totals, shared_index, utcnow
    from src.webui.session_query import START_SECONDS, SessionQuery
    from src.webui.session_stats import session_stats

    settings = _settings(args)
    snapshot = shared_index(settings.registry_dir).snapshot()
    rules = SessionRules.from_settings(settings)
    stats = session_stats(snapshot, SessionQuery(), utcnow(), rules.stale_after)
    if not stats.sessions:
        print(f"No live sessions found in {settings.registry_dir}.")
        return 0
    by_status = ", ".join(f"{s} {n}" for s, n in stats.by_status.items() if n)
    lines = [
        ("Registry", str(settings.registry_dir)),
        ("Sessions", str(stats.sessions)),
        ("By status", by_status),
        ("By mode", ", ".join(f"{mode} {n}" for mode, n in stats.by_mode.items())),
        ("Running", f"{stats.running} ({stats.stale} stale)"),
    ]
    lines += [
        (
            f"Realized PnL {total.money}",
            f"{_money(total.realized_pnl, total.currency)} ({total.sessions} sessions)",
        )  # fmt: skip
        for total in pnl_totals(snapshot.sessions, rules)
    ]
    first = min(snapshot.sessions, key=START_SECONDS)
    last = max(snapshot.sessions, key=START_SECONDS)
    lines += [
        ("Avg max drawdown", _percent(stats.avg_drawdown)),
        ("First started (UTC)", _utc_text(first.started_at)),
        ("Last started (UTC)", _utc_text(last.started_at)),
    ]
    width = max(len(label) for label, _ in lines) + 1
    for label, value in lines:
        print(f"{label + ':':<{width}} {value}")
    return 0


def _write_report(args: argparse.Namespace) -> int:
    from src.experiments.live_session_reports import render_sessions_html, render_sessions_markdown
    from src.experiments.registry_files import read_record
    from src.webui.live_track import SessionRules, pnl_totals, shared_index, utcnow
    from src.webui.session_query import SessionQuery, sort_sessions

    filters = {key: getattr(args, key) for key in ("symbol", "since", "until", "range")}
    try:
        query = SessionQuery(
            mode=tuple(args.mode),
            status=tuple(args.status),
            **{key: value for key, value in filters.items() if value is not None},
        )
    except ValidationError as exc:
        print(f"Invalid filter: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 2
    settings = _settings(args)
    index = shared_index(settings.registry_dir)
    heads = sort_sessions(index.snapshot(), query, utcnow())
    records = []
    for head in heads:
        try:
            records.append(read_record(index.directory / head.file_name)[0])
        except ValueError:
            continue  # changed into a non-record since the listing: skipped like any bad file
    totals = pnl_totals(heads, SessionRules.from_settings(settings))
    render = render_sessions_html if args.format == "html" else render_sessions_markdown
    text = render(records, totals=totals)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        args.output.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"Cannot write {args.output}: {exc}", file=sys.stderr)
        return 1
    print(f"Wrote a report of {len(records)} sessions to {args.output}.")
    return 0


def _printable(text: str) -> str:
    # Records are untrusted: an escape sequence in a session id must not drive the terminal.
    return "".join(char if char.isprintable() else "?" for char in text)


def _money(value: float | None, currency: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:+,.{currency_decimals(currency)}f} {currency}".rstrip()


def _percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction:.1%}"


def _utc_text(moment: datetime) -> str:
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
    from src.experiments.database_url import is_database_url
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
        problems = "\n".join(
            f"  {'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        print(f"Invalid dashboard settings:\n{problems}", file=sys.stderr)
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

    from src.webui.server import run_server

    run_server(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
