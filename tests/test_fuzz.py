"""Fuzzing: the registry reader, the summary mapping and the HTTP API under arbitrary input.

Registry files are written by other programs, so every byte of them is untrusted:
reading one either yields a record or raises ``InvalidRecord`` (the documented
skip), and every record that is accepted can be shown by every view and endpoint.
Hypothesis checks the Python side; Schemathesis checks the API against the app's
own OpenAPI schema. All runs are derandomized, so CI sees the same examples.
"""

from __future__ import annotations

import csv
import io
import json
import math
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from schemathesis import checks as schema_checks
from schemathesis.python.asgi import shutdown_lifespans

from src.experiments.live_session_record import (
    InvalidRecord,
    LiveSessionRecord,
    parse_head_record,
    parse_record,
)
from src.experiments.live_session_registry import register_live_session_run
from src.experiments.registry_files import file_stamp, record_json
from src.experiments.session_head import head_from_record
from src.webui.app import create_app
from src.webui.live_track import (
    LiveSessionDetail,
    LiveSessionSummary,
    LiveTrackView,
    SessionExportRow,
    SessionRules,
    summarize,
)
from src.webui.session_stats import SessionStats
from src.webui.session_urls import session_api_url
from src.webui.settings import Settings
from src.webui.vocabulary import SESSION_STATUSES

CHEAP = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# Each example builds an app over a fresh registry and makes a dozen requests, so
# shrinking a failure could take Hypothesis' full five minutes: report it as found
# (EDGE_REGISTRIES below holds minimal registries for the bugs found so far).
END_TO_END = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SCHEMA_RUN = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


# --- Strategies -------------------------------------------------------------

WORDS = [
    "",
    " ",
    "started",
    "completed",
    "failed",
    "aborted",
    "running",
    "Completed ",
    "weird",
    "live_session_shadow",
    "live_session_",
    "shadow",
    "BTC/USDT",
    "<script>alert(1)</script>",
    "a,b\r\nc",
    '"quoted"',
    "=1+1",
    "\x00",
]
# What a writer means to store: any Unicode text.
clean_strings = st.text(max_size=12) | st.sampled_from(WORDS)
# Lone surrogates are legal in JSON text ("\ud800") and in Python strings (what
# os.fsdecode makes of a non-UTF-8 command line): reject them or show them.
surrogate_strings = st.builds(
    lambda before, surrogate, after: before + surrogate + after,
    st.text(max_size=4),
    st.characters(categories=["Cs"]),
    st.text(max_size=4),
)
strings = clean_strings | surrogate_strings

# ISO-8601 offsets are whole minutes, from -23:59 to +23:59.
offsets = st.none() | st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m)))
# Away from the ends of the calendar, every offset has a UTC instant.
moments = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets
)
timestamp_texts = st.one_of(
    moments.map(datetime.isoformat),
    moments.map(lambda m: m.isoformat(sep=" ", timespec="seconds")),
    st.datetimes().map(lambda m: m.isoformat() + "Z"),
    st.sampled_from(
        [
            "2024-12-08T12:00:00",
            "2024-12-08T12:00:00Z",
            "2024-12-08T12:00:00z",
            " 2024-12-08T12:00:00Z ",
            "2024-12-08",
            "20241208T120000",
            "2024-12-08T12:00:00+0530",
            "0001-01-01T00:00:00",
            "0001-01-01T00:00:00-01:00",
            "9999-12-31T23:59:59.999999",
            "9999-12-31T23:59:59.999999+14:00",
        ]
    ),
)
# Not ISO-8601 but accepted by Python's fromisoformat: offsets with seconds and
# microseconds. A reader may reject them or show them faithfully, never crash.
LONGEST_OFFSET = timedelta(hours=24) - timedelta(microseconds=1)
odd_offsets = st.builds(
    timezone, st.timedeltas(min_value=-LONGEST_OFFSET, max_value=LONGEST_OFFSET)
)
odd_timestamps = st.datetimes(timezones=odd_offsets).map(datetime.isoformat)
# Timestamps from_dict must reject (InvalidRecord), never crash on.
bad_timestamps = st.sampled_from(
    [
        "",
        "now",
        "0001-01-01T00:00:00+01:00",  # no UTC instant
        "9999-12-31T23:59:59-00:01",
        "2024-12-08T12:00:00+24:00",
        "2024-13-01T00:00:00",
        "2024-12-08T12:00:00\ud800",
        "2024-12-08T12:00:00\x00",
        "Z",
        "2024-12-08T12:00:00ZZ",
    ]
)

finite_floats = st.floats(allow_nan=False, allow_infinity=False)
# Sessions' results: even a million of them sum to a finite number.
plausible_numbers = st.integers(-(10**12), 10**12) | st.floats(-1e12, 1e12)
plausible_counts = st.integers(0, 10**9) | st.integers(0, 10**9).map(float)
# Finite, so valid JSON, yet sums or differences of two overflow a float.
extreme_numbers = finite_floats | st.sampled_from(
    [1.7e308, -1.7e308, 10**308, 2**63, -(2**63) - 1, 10**400, -(10**400)]
)
# Python values that no JSON file can hold, for from_dict called by Python code
# (parse_timestamp takes datetime objects as they are).
python_only = st.sampled_from([math.nan, math.inf, -math.inf, 10**4000]) | st.datetimes(
    timezones=st.none() | odd_offsets
)

clean_scalars = st.none() | st.booleans() | st.integers() | finite_floats | clean_strings
json_scalars = clean_scalars | extreme_numbers | surrogate_strings
python_scalars = json_scalars | python_only


def nested(scalars: st.SearchStrategy[Any], keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4)
        ),
        max_leaves=12,
    )


def deeply_nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


clean_json_values = nested(clean_scalars, clean_strings)
# Deep enough to trouble recursive code, shallow enough for json.loads.
json_values = nested(json_scalars, strings) | st.integers(30, 400).map(deeply_nested)
python_values = nested(python_scalars, strings)
# What json.dumps can write, NaN and Infinity literals included.
python_json_values = nested(json_scalars | st.floats() | st.just(10**4000), strings)


def required_texts() -> st.SearchStrategy[str]:
    # Our endpoints' names and the escape character: ids that need /api/live_sessions/~...
    reserved = st.sampled_from(("stats", "events", "~", "~stats"))
    return (st.text(min_size=1, max_size=12) | st.sampled_from(WORDS) | reserved).filter(
        lambda s: bool(s.strip())
    )


@st.composite
def metrics(draw: st.DrawFn) -> dict[str, Any]:
    found = draw(st.dictionaries(clean_strings, clean_json_values, max_size=3))
    for key in ("realized_pnl", "unrealized_pnl", "max_drawdown"):
        if draw(st.booleans()):
            found[key] = draw(st.none() | plausible_numbers)
    for key in ("num_orders", "num_trades"):
        if draw(st.booleans()):
            found[key] = draw(st.none() | plausible_counts)
    if draw(st.booleans()):
        found["report_path"] = draw(clean_json_values)
    return found


@st.composite
def valid_record_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A record as a Phase 81 writer (or a sloppier one) might store it."""
    data: dict[str, Any] = {
        "session_id": draw(required_texts()),
        "run_type": draw(required_texts()),
        "started_at": draw(timestamp_texts),
    }
    optional = {
        "run_id": st.none() | clean_strings,
        "mode": st.none() | clean_strings,
        "env_name": st.none() | clean_strings,
        "symbol": st.none() | clean_strings,
        "status": st.none() | clean_strings,
        "finished_at": st.none() | timestamp_texts,
        "config": st.dictionaries(clean_strings, clean_json_values, max_size=4),
        "metrics": metrics(),
        "cli_args": st.lists(clean_strings, max_size=4),
        "error": st.none() | clean_strings,
        "created_at": st.none() | timestamp_texts,
        "updated_at": st.none() | timestamp_texts,
        "heartbeat_at": st.none() | timestamp_texts,
    }
    for key, values in optional.items():
        if draw(st.booleans()):
            data[key] = draw(values)
    # Extra keys from newer writers are ignored, not fatal.
    data.update(draw(st.dictionaries(clean_strings, clean_json_values, max_size=2)))
    return data


RECORD_KEYS = [
    "session_id",
    "run_id",
    "run_type",
    "mode",
    "env_name",
    "symbol",
    "status",
    "started_at",
    "finished_at",
    "config",
    "metrics",
    "cli_args",
    "error",
    "created_at",
    "updated_at",
    "heartbeat_at",
]


@st.composite
def almost_valid(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> dict[str, Any]:
    """A valid record with one key removed or replaced by an arbitrary value."""
    data = draw(valid_record_dicts())
    values = values | bad_timestamps | odd_timestamps | extreme_numbers
    key = draw(st.sampled_from(RECORD_KEYS))
    if draw(st.booleans()):
        data.pop(key, None)
    else:
        data[key] = draw(values)
    if draw(st.booleans()):  # or one metric replaced
        nested_metrics = dict(data["metrics"]) if isinstance(data.get("metrics"), dict) else {}
        metric = draw(
            st.sampled_from(
                ["realized_pnl", "unrealized_pnl", "max_drawdown", "num_orders", "num_trades"]
            )
        )
        nested_metrics[metric] = draw(values)
        data["metrics"] = nested_metrics
    return data


# --- Properties of one record --------------------------------------------


def read_mapping(data: object) -> LiveSessionRecord | None:
    """from_dict's contract: a record, or InvalidRecord; any other exception fails."""
    try:
        return LiveSessionRecord.from_dict(data)
    except InvalidRecord:
        return None


def read_bytes(content: bytes) -> LiveSessionRecord | None:
    """parse_record's contract: a record, or InvalidRecord; any other exception fails."""
    try:
        return parse_record(content)
    except InvalidRecord:
        return None


def check_viewable(record: LiveSessionRecord) -> LiveSessionSummary:
    """Everything the dashboard does with an accepted record must work."""
    head = head_from_record("20241208T120000_x_y.json", file_stamp(1, 2), record)
    summary = summarize(head, SessionRules())
    assert summary.status in SESSION_STATUSES
    for number in (summary.realized_pnl, summary.max_drawdown):
        assert number is None or math.isfinite(number)
    text = summary.model_dump_json()
    # JSON with NaN or Infinity would be rejected by every strict client.
    json.loads(text, parse_constant=reject_constant)
    # An API client parsing the JSON must get the instants the registry holds.
    again = LiveSessionSummary.model_validate_json(text)
    assert again == summary, f"{text} reads back as {again!r}"
    return summary


def reject_constant(name: str) -> None:
    raise AssertionError(f"{name} in JSON output")


def check_round_trip(record: LiveSessionRecord) -> None:
    """What our writer writes (NaN as null), the reader reads back unchanged."""
    written = json.loads(record_json(record), parse_constant=reject_constant)
    assert LiveSessionRecord.from_dict(written).to_dict() == written


@CHEAP
@given(python_values)
@example({"session_id": "s", "run_type": "r", "started_at": "2024-12-08T12:00:00", "metrics": []})
@example({"session_id": "\ud800", "run_type": "r", "started_at": "2024-12-08T12:00:00"})
@example({"session_id": "s", "run_type": "r", "started_at": "2024-12-08T12:00:00+05:30:15.5"})
@example({"session_id": "s", "run_type": "r", "started_at": datetime(1, 1, 1, tzinfo=timezone.utc)})
@example(
    {
        "session_id": "s",
        "run_type": "r",
        "started_at": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
    }
)
@example({"session_id": "s", "run_type": "r", "started_at": "x", "metrics": {"num_orders": 1e308}})
def test_from_dict_on_any_python_value_returns_a_record_or_raises_invalid_record(
    data: object,
) -> None:
    record = read_mapping(data)
    if record is not None:
        check_viewable(record)


@CHEAP
@given(almost_valid(python_values))
def test_from_dict_on_almost_valid_python_records(data: dict[str, Any]) -> None:
    record = read_mapping(data)
    if record is not None:
        check_viewable(record)


@CHEAP
@given(almost_valid(json_values))
def test_from_dict_on_almost_valid_json_records_round_trips_what_it_accepts(
    data: dict[str, Any],
) -> None:
    record = read_mapping(data)
    if record is not None:
        check_viewable(record)
        check_round_trip(record)


@CHEAP
@given(valid_record_dicts())
def test_every_valid_record_is_accepted_viewed_and_round_tripped(data: dict[str, Any]) -> None:
    record = LiveSessionRecord.from_dict(data)
    check_viewable(record)
    check_round_trip(record)
    assert parse_record(json.dumps(data).encode()) == record


@CHEAP
@given(st.binary(max_size=300))
@example(b"")
@example(b"\xff\xfe{}")
@example(b"\xef\xbb\xbf{}")
@example(b"[" * 5000)
@example(b'{"a":' * 5000)
@example(b"1e999")
@example(b"-1e999")
@example(b"NaN")
@example(b"-Infinity")
@example(b"1" * 5000)
@example(b'"\\ud800"')
@example(
    b'{"session_id": "x", "run_type": "live_session_live", "started_at": "2026-11-24",'
    b' "metrics": {"realized_pnl": 18446744073709551616, "num_orders": -9' + b"9" * 25 + b"}}"
)
def test_parse_record_on_any_bytes(content: bytes) -> None:
    same_head_either_way(content)
    record = read_bytes(content)
    if record is not None:
        check_viewable(record)


@CHEAP
@given(python_json_values, st.booleans())
def test_parse_record_on_any_json_text(data: object, ascii_only: bool) -> None:
    text = json.dumps(data, ensure_ascii=ascii_only)  # NaN and Infinity literals included
    same_head_either_way(text.encode("utf-8", "surrogatepass"))
    record = read_bytes(text.encode("utf-8", "surrogatepass"))
    if record is not None:
        check_viewable(record)
        check_round_trip(record)


def same_head_either_way(content: bytes) -> None:
    """The bulk load's fast parser and the one reader skip the same files for the
    same reason, and make the same head of every other."""
    outcomes: list[object] = []
    for parse in (parse_record, parse_head_record):
        try:
            record = parse(content)
        except InvalidRecord as exc:
            outcomes.append(f"skipped: {exc}")
        else:
            outcomes.append(head_from_record("f.json", file_stamp(1, 1), record))
    assert outcomes[0] == outcomes[1]


# Literals a broken writer may put where a value belongs.
WEIRD_LITERALS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1e999",
    "1e-999",
    "1" * 4301,
    "-" + "9" * 400,
    "[" * 5000 + "]" * 5000,
    "[" * 40 + "]" * 40,  # deeper than a record may nest, shallower than orjson's limit
    '{"a":' * 5000 + "1" + "}" * 5000,
    '"\\ud800"',
    '"\\udcff\\u0000"',
    "true",
    "null",
    "{}",
    "[]",
    '""',
]


@CHEAP
@given(
    valid_record_dicts(),
    st.sampled_from([*RECORD_KEYS, "metrics.realized_pnl", "metrics.num_orders"]),
    st.sampled_from(WEIRD_LITERALS),
)
def test_parse_record_on_records_with_a_weird_literal(
    data: dict[str, Any], key: str, literal: str
) -> None:
    placeholder = "\x00placeholder\x00"
    if key.startswith("metrics."):
        data["metrics"] = {**data.get("metrics", {}), key.split(".", 1)[1]: placeholder}
    else:
        data[key] = placeholder
    text = json.dumps(data).replace(json.dumps(placeholder), literal)
    same_head_either_way(text.encode())
    record = read_bytes(text.encode())
    if record is not None:
        check_viewable(record)


# --- End to end: a registry of fuzzed files behind the real app ------------


@st.composite
def registry_files(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["valid", "almost", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=80))
    data = draw(valid_record_dicts() if kind == "valid" else almost_valid(json_values))
    return json.dumps(data, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")


def serve_registry(registry: Path, files: list[bytes]) -> TestClient:
    registry.mkdir(parents=True, exist_ok=True)
    for number, content in enumerate(files):
        (registry / f"{number:03d}.json").write_bytes(content)
    return TestClient(create_app(Settings(registry_dir=registry, watch=False)))


def check_every_endpoint(client: TestClient, files: list[bytes]) -> None:
    """Every page answers 200 with its declared shape; every record is listed, the
    rest counted as skipped."""
    records = [record for record in map(read_bytes, files) if record is not None]
    ids = Counter(record.session_id for record in records)
    total = len(records)

    page = client.get("/")
    assert page.status_code == 200, page.text[:500]
    assert client.get("/partials/live_track").status_code == 200

    listed = client.get("/api/live_sessions", params={"limit": 100})
    assert listed.status_code == 200, listed.text[:500]
    assert listed.headers["X-Total-Count"] == str(total)
    assert len(TypeAdapter(list[LiveSessionSummary]).validate_json(listed.text)) == min(total, 100)

    stats = client.get("/api/live_sessions/stats")
    assert stats.status_code == 200, stats.text[:500]
    assert SessionStats.model_validate_json(stats.text).sessions == total

    view = client.get("/api/live_track")
    assert view.status_code == 200, view.text[:500]
    panel = LiveTrackView.model_validate_json(view.text)
    assert (panel.total_sessions, panel.skipped.count) == (total, len(files) - total)

    exported = client.get("/api/live_sessions.json")
    assert exported.status_code == 200, exported.text[:500]
    rows = TypeAdapter(list[SessionExportRow]).validate_json(exported.text)
    assert Counter(row.session_id for row in rows) == ids

    table = client.get("/api/live_sessions.csv")
    assert table.status_code == 200, table.text[:500]
    assert len(list(csv.reader(io.StringIO(table.text, newline="")))) == total + 1

    for session_id in ids:
        try:
            path = quote(session_id, safe="")
            api_url = session_api_url(session_id)  # "stats" or "~x" need the escape
        except UnicodeEncodeError:  # a lone surrogate has no URL form
            continue
        detail = client.get(api_url)
        assert detail.status_code == 200, detail.text[:500]
        assert LiveSessionDetail.model_validate_json(detail.text).session_id == session_id
        assert client.get(f"/session/{path}").status_code == 200


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzzed_registries")


@END_TO_END
@given(files=st.lists(registry_files(), max_size=12))
def test_the_app_serves_a_registry_of_fuzzed_files(registries: Path, files: list[bytes]) -> None:
    registry = Path(tempfile.mkdtemp(dir=registries))
    with serve_registry(registry, files) as client:
        check_every_endpoint(client, files)


BASE = {
    "session_id": "edge",
    "run_type": "live_session_paper",
    "status": "completed",
    "started_at": "2024-12-08T12:00:00",
    "finished_at": "2024-12-08T13:00:00",
}


def edge_file(**fields: Any) -> bytes:
    return json.dumps({**BASE, **fields}).encode()


# Registries that broke a view: the reader may skip such files or serve them.
EDGE_REGISTRIES = {
    "pnl sum overflows to inf": [
        edge_file(session_id="a", metrics={"realized_pnl": 1.7e308}),
        edge_file(session_id="b", metrics={"realized_pnl": 1.7e308}),
    ],
    "pnl range overflows": [
        edge_file(session_id="a", metrics={"realized_pnl": 1.7e308}),
        edge_file(session_id="b", metrics={"realized_pnl": -1.7e308}),
    ],
    "extreme drawdowns": [
        edge_file(session_id="a", metrics={"max_drawdown": 1.7e308}),
        edge_file(session_id="b", metrics={"max_drawdown": -1.7e308}),
    ],
    "huge order count": [edge_file(metrics={"num_orders": 1e308, "num_trades": 10**300})],
    "config nested 300 deep": [
        b'{"session_id": "edge", "run_type": "r", "started_at": "2024-12-08T12:00:00",'
        b' "config": {"x": ' + b"[" * 300 + b"]" * 300 + b"}}"
    ],
    "lone surrogate in session_id": [edge_file(session_id="\ud800")],
    "lone surrogate in cli_args": [edge_file(cli_args=["--symbol", "\udcff"])],
    "ids named like our endpoints or escaped": [
        edge_file(session_id=name)
        for name in ("stats", "events", "~stats", "~", "live_sessions.csv")
    ],
    "extreme timestamps": [
        edge_file(session_id="a", started_at="0001-01-01T00:00:00", finished_at=None),
        edge_file(session_id="b", started_at="9999-12-31T23:59:59.999999+14:00"),
    ],
}


@pytest.mark.parametrize("files", EDGE_REGISTRIES.values(), ids=EDGE_REGISTRIES.keys())
def test_the_app_serves_edge_case_registries(tmp_path: Path, files: list[bytes]) -> None:
    with serve_registry(tmp_path / "registry", files) as client:
        check_every_endpoint(client, files)


# --- Schemathesis: the API against its own OpenAPI schema --------------------

T0 = datetime(2024, 12, 8, 12, 0, 0)


def realistic_records() -> Iterator[LiveSessionRecord]:
    """Twelve sessions as Phase 81 writers store them, every status and mode."""
    modes = ("shadow", "testnet", "paper", "live")
    statuses = ("completed", "completed", "failed", "aborted", "started", "running")
    for n in range(12):
        mode = modes[n % 4]
        status = statuses[n % len(statuses)]
        started = T0 + timedelta(hours=7 * n)
        if n % 3 == 0:
            started = started.replace(tzinfo=timezone(timedelta(hours=1)))
        ended = status not in ("started", "running")
        yield LiveSessionRecord(
            session_id=f"session_{started:%Y%m%d}_{mode}_{n:03d}",
            run_id=f"run_{n}" if n % 2 else None,
            run_type=f"live_session_{mode}",
            mode=mode,
            env_name="kraken_futures_testnet" if n % 2 else "kraken_spot",
            symbol=("BTC/USDT", "ETH/USDT", "SOL/USDT")[n % 3],
            status=status,
            started_at=started,
            finished_at=started + timedelta(minutes=45) if ended else None,
            config={"strategy": "ma_crossover", "fast": 10, "slow": 30 + n},
            metrics={
                "realized_pnl": round(150.0 - 37.5 * n, 2),
                "unrealized_pnl": 0.0,
                "max_drawdown": 0.01 * (n % 7),
                "num_orders": 3 * n,
                "num_trades": 2 * n,
            }
            if ended
            else {"num_trades": n},
            cli_args=["--mode", mode, "--symbol", "BTC/USDT"],
            error="exchange timeout" if status in ("failed", "aborted") else None,
            created_at=T0,
            updated_at=started + timedelta(minutes=5) if not ended else None,
        )


def realistic_app(registry: Path) -> FastAPI:
    for record in realistic_records():
        register_live_session_run(record, base_dir=registry)
    (registry / "corrupted.json").write_text("{not json")
    return create_app(Settings(registry_dir=registry, watch=False))


# Built at import: parametrize() needs the operations at collection time, and
# schemathesis.pytest.from_fixture does not work with pytest 9 (node._nodeid).
SCHEMA_REGISTRY = tempfile.TemporaryDirectory(prefix="live_track_schemathesis_")
# The event stream never ends by design; tests/test_live_updates.py covers it.
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", realistic_app(Path(SCHEMA_REGISTRY.name))
).exclude(path="/api/live_sessions/events")


@pytest.fixture(scope="module", autouse=True)
def end_schema_app() -> Iterator[None]:
    yield
    shutdown_lifespans()  # from_asgi started the app's lifespan in a thread of its own
    SCHEMA_REGISTRY.cleanup()


API_CHECKS = [
    schema_checks.not_a_server_error,
    schema_checks.status_code_conformance,
    schema_checks.content_type_conformance,
    schema_checks.response_schema_conformance,
]


@schema.parametrize()
@SCHEMA_RUN
def test_the_api_conforms_to_its_openapi_schema(case: Any) -> None:
    case.call_and_validate(checks=API_CHECKS)


# Random ids find no session; ask for every stored one, so the 200 answer is checked too.
def test_every_session_detail_conforms_to_its_openapi_schema() -> None:
    operation = schema["/api/live_sessions/{session_id}"]["GET"]
    for record in realistic_records():
        case = operation.Case(path_parameters={"session_id": record.session_id})
        assert case.call_and_validate(checks=API_CHECKS).status_code == 200
