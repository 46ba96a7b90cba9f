"""``live-track ship`` and ``live-track db upgrade``: the shared registry of many hosts.

The database URL comes from ``--to`` / ``--url`` or ``LIVE_TRACK_DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import socket
import sys
import threading
from types import FrameType

from src.experiments.database_url import DATABASE_URL_ENV, is_database_url, redact_url
from src.experiments.registry_files import resolve_registry_dir

HOST_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def add_database_commands(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    registry: argparse.ArgumentParser,
) -> None:
    """Register ``ship`` and ``db upgrade`` on the main parser."""
    ship = commands.add_parser(
        "ship",
        parents=[registry],
        help="copy this host's registry into PostgreSQL and keep it copied",
    )
    ship.add_argument(
        "--to", metavar="URL", help=f"postgresql://... (default: ${DATABASE_URL_ENV})"
    )
    ship.add_argument(
        "--host-label",
        type=_host_label,
        default=None,
        help="name of this bot host in the dashboard (default: the machine's name)",
    )
    ship.add_argument("--reconcile-seconds", type=_positive_float, default=30.0, metavar="S")
    ship.add_argument(
        "--max-backoff",
        type=_positive_float,
        default=30.0,
        metavar="S",
        help="longest wait between reconnect attempts (default: 30)",
    )
    ship.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve the shipper's Prometheus metrics on 127.0.0.1:PORT",
    )
    ship.set_defaults(handler=_ship)

    database = commands.add_parser("db", help="manage the shared PostgreSQL registry")
    actions = database.add_subparsers(dest="action", required=True, metavar="ACTION")
    upgrade = actions.add_parser(
        "upgrade", help="create or upgrade the schema (idempotent: safe to run on every deploy)"
    )
    upgrade.add_argument(
        "--url", metavar="URL", help=f"postgresql://... (default: ${DATABASE_URL_ENV})"
    )
    upgrade.set_defaults(handler=_upgrade)


def _host_label(text: str) -> str:
    if not HOST_LABEL.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"invalid host label {text[:70]!r}: 1-63 letters, digits, '.', '_' or '-'"
        )
    return text


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _database_url(given: str | None) -> str | None:
    url = given or os.environ.get(DATABASE_URL_ENV)
    if not is_database_url(url):
        print(
            f"No PostgreSQL URL: pass one (postgresql://user@host/db) or set {DATABASE_URL_ENV}.",
            file=sys.stderr,
        )
        return None
    return url


def _upgrade(args: argparse.Namespace) -> int:
    import psycopg

    from src.experiments.pg_registry import SchemaMismatch, upgrade_schema

    url = _database_url(args.url)
    if url is None:
        return 2
    try:
        before, after = upgrade_schema(url)
    except (psycopg.Error, SchemaMismatch) as exc:
        print(f"Cannot upgrade {redact_url(url)}: {exc}", file=sys.stderr)
        return 1
    if before == after:
        print(f"Schema of {redact_url(url)} is up to date (version {after}).")
    else:
        print(f"Upgraded {redact_url(url)} from schema version {before} to {after}.")
    return 0


def _ship(args: argparse.Namespace) -> int:
    from src.experiments.shipper import Shipper, shipper_registry

    url = _database_url(args.to)
    if url is None:
        return 2
    label = args.host_label or _default_label()
    if label is None:
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("watchfiles").setLevel(logging.WARNING)  # one line per batch otherwise
    directory = resolve_registry_dir(args.registry)
    shipper = Shipper(
        directory,
        url,
        label,
        reconcile_seconds=args.reconcile_seconds,
        max_backoff=args.max_backoff,
    )
    if args.metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr="127.0.0.1", registry=shipper_registry(shipper))
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    print(f"Shipping {directory} as host {label!r} to {redact_url(url)}.", flush=True)
    shipper.run(stop)
    return 0


def _default_label() -> str | None:
    name = socket.gethostname().split(".")[0]
    if HOST_LABEL.fullmatch(name):
        return name
    print(
        f"This machine's name {name!r} is no valid host label: pass --host-label.", file=sys.stderr
    )
    return None
