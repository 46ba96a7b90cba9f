"""One session in full (the detail page and its JSON), the export rows and PnL totals."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Optional

from src.experiments.live_session_record import json_safe
from src.experiments.live_session_reports import PnlTotal
from src.experiments.registry_index import IndexSnapshot, RegistryIndex
from src.experiments.session_head import SessionHead
from src.webui.risk_view import LimitBar, limit_bars
from src.webui.session_query import (
    RecordTime,
    SessionQuery,
    sort_sessions,
)
from src.webui.session_summary import (
    LiveSessionSummary,
    SessionNotFound,
    SessionRow,
    SessionRules,
    session_row,
    summary_fields,
)
from src.webui.vocabulary import REAL_MONEY, money_kind


class LiveSessionDetail(SessionRow):
    """Everything stored about one session, for the detail view.

    Non-finite metric values (NaN, infinities) come as the text ``"NaN"``,
    ``"Infinity"`` or ``"-Infinity"``, since JSON cannot carry them.
    """

    run_id: Optional[str] = None  # noqa: UP045
    run_type: str
    env_name: str
    symbol: Optional[str] = None  # type: ignore[assignment]  # noqa: UP045 - as the record has it
    config: dict[str, Any]
    metrics: dict[str, Any]
    cli_args: list[str]
    error: Optional[str] = None  # noqa: UP045
    created_at: Optional[RecordTime] = None  # noqa: UP045
    updated_at: Optional[RecordTime] = None  # noqa: UP045
    strategy_tier: Optional[str] = None  # noqa: UP045
    # Top-level keys this version does not know, as the writer wrote them.
    extra: dict[str, Any] = {}
    registry_file: str
    # Other files with the same session id (a writer bug), to resolve by hand.
    conflicting_files: list[str] = []
    limits: list[LimitBar] = []  # metrics' limit_details as bars


def get_session_detail(
    index: RegistryIndex,
    snapshot: IndexSnapshot,
    session_id: str,
    now: datetime,
    rules: SessionRules,
) -> LiveSessionDetail:
    """Look the id up in the snapshot (never in the file system), then read its file."""
    head = snapshot.by_id.get(session_id)
    record = index.read_record(head) if head is not None else None
    if head is None or record is None:
        raise SessionNotFound(session_id)
    row = session_row(head, snapshot, now, rules).model_dump(exclude={"symbol"})
    return LiveSessionDetail(
        **row,
        run_id=record.run_id,
        run_type=record.run_type,
        env_name=record.env_name,
        symbol=record.symbol,
        config=json_safe(record.config),
        metrics=json_safe(record.metrics),
        cli_args=record.cli_args,
        error=record.error,
        created_at=record.created_at,
        updated_at=record.updated_at,
        strategy_tier=record.strategy_tier,
        extra=json_safe(record.extra),
        registry_file=str(index.directory / head.file_name),
        conflicting_files=[
            name for name in snapshot.conflicts.get(session_id, ()) if name != head.file_name
        ],
        limits=limit_bars(record.metrics),
    )


# --- Export and totals ------------------------------------------------------


class SessionExportRow(LiveSessionSummary):
    """A summary with the columns a spreadsheet wants."""

    symbol: str
    env_name: str
    currency: str
    host: str = ""


def export_sessions(
    snapshot: IndexSnapshot, query: SessionQuery, now: datetime, rules: SessionRules
) -> list[SessionExportRow]:
    """The whole filtered set (not one page), in the query's order."""
    return [
        SessionExportRow(
            **summary_fields(head, rules),
            symbol=head.symbol,
            env_name=head.env_name,
            currency=head.currency,
            host=head.host,
        )
        for head in sort_sessions(snapshot, query, now)
    ]


def pnl_totals(heads: Iterable[SessionHead], rules: SessionRules) -> list[PnlTotal]:
    """Realized PnL per kind of money and currency: real money first, never mixed."""
    sums: dict[tuple[str, str], tuple[float, int]] = {}
    for head in heads:
        if head.realized_pnl is None:
            continue
        key = (money_kind(head.mode, rules.real_money_modes), head.currency)
        total, count = sums.get(key, (0.0, 0))
        sums[key] = (total + head.realized_pnl, count + 1)
    ordered = sorted(sums.items(), key=lambda item: (item[0][0] != REAL_MONEY, item[0][1]))
    return [
        PnlTotal(money=money, currency=currency, realized_pnl=round(total, 8), sessions=count)
        for (money, currency), (total, count) in ordered
    ]
