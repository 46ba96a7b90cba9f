"""Hostile registry files: the server stays up, memory stays bounded, good records show."""

from __future__ import annotations

import errno
import json
import os
import resource
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from src.experiments import registry_files, registry_index
from src.experiments.live_session_registry import LiveSessionRecord, register_live_session_run
from src.experiments.registry_files import MAX_RECORD_BYTES, file_stamp
from src.experiments.registry_index import RegistryIndex
from src.webui.app import create_app
from src.webui.settings import Settings


def good(registry: Path, n: int) -> Path:
    record = LiveSessionRecord(
        session_id=f"good_{n}",
        run_id=None,
        run_type="live_session_shadow",
        mode="shadow",
        env_name="kraken_spot",
        symbol="BTC/USDT",
        status="completed",
        started_at=datetime(2026, 11, 1, 8, n),
        finished_at=datetime(2026, 11, 1, 9, n),
        metrics={"realized_pnl": float(n)},
    )
    return register_live_session_run(record, registry)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def page_and_ids(registry: Path) -> tuple[str, list[str]]:
    with TestClient(create_app(Settings(registry_dir=registry, watch=False))) as client:
        page = client.get("/")
        assert page.status_code == 200
        sessions = client.get("/api/live_sessions?limit=100")
        assert sessions.status_code == 200
        return page.text, sorted(s["session_id"] for s in sessions.json())


def test_a_gigabyte_file_is_never_read(tmp_path: Path) -> None:
    good(tmp_path, 1)
    with open(tmp_path / "huge.json", "wb") as handle:
        handle.truncate(1024**3)  # sparse: costs no disk, but 1 GB to a reader
    before = rss_mb()
    html, ids = page_and_ids(tmp_path)
    assert ids == ["good_1"]
    assert rss_mb() - before < 100
    assert "1 Datei(en) in der Registry übersprungen" in html
    assert f"too large ({1024**3} bytes, limit {MAX_RECORD_BYTES})" in html


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("nested.json", b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
        ("bigint.json", b'{"session_id": ' + b"9" * 100_000 + b"}", "invalid JSON"),
        # NaN and 1e999 are valid metric values (see test_live_session_registry);
        # these files are skipped only for lacking the keys every record has.
        (
            "bigfloat.json",
            b'{"session_id": "x", "metrics": {"realized_pnl": 1e999}}',
            "missing required key",
        ),
        ("nan.json", b'{"session_id": "x", "metrics": {"realized_pnl": NaN}}', "missing required"),
        ("wide.json", b'{"a": [' + b"0," * 600_000 + b"0]}", "too large"),
    ],
)
def test_json_bombs_are_skipped(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    good(tmp_path, 2)
    (tmp_path / name).write_bytes(content)
    html, ids = page_and_ids(tmp_path)
    assert ids == ["good_2"]
    assert name in html and reason in html


def test_fifo_socket_and_directory_are_skipped_without_blocking(tmp_path: Path) -> None:
    good(tmp_path, 3)
    os.mkfifo(tmp_path / "pipe.json")  # opening a FIFO for reading would block forever
    (tmp_path / "folder.json").mkdir()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "socket.json"))
        html, ids = page_and_ids(tmp_path)
    assert ids == ["good_3"]
    assert "3 Datei(en) in der Registry übersprungen" in html
    assert html.count("not a regular file") == 3


def test_file_deleted_between_listing_and_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good(tmp_path, 4)
    real_listing = registry_files.list_registry

    def listing_with_ghost(directory: Path, *args: Any, **kwargs: Any) -> dict[str, Any]:
        found = real_listing(directory, *args, **kwargs)
        found["ghost.json"] = file_stamp(100, 1)  # listed, then deleted before the read
        return found

    index = RegistryIndex(tmp_path)
    index.reconcile()
    monkeypatch.setattr(registry_index, "list_registry", listing_with_ghost)
    index.reconcile()
    assert [h.session_id for h in index.snapshot().sessions] == ["good_4"]
    assert [s.name for s in index.snapshot().skipped] == ["ghost.json"]
    monkeypatch.setattr(registry_index, "list_registry", real_listing)
    index.reconcile()  # gone from the listing: gone from the skip list
    assert index.snapshot().skipped == ()


def test_file_truncated_while_written_in_place_recovers(tmp_path: Path) -> None:
    path = good(tmp_path, 5)
    full = path.read_bytes()
    index = RegistryIndex(tmp_path)
    index.reconcile()
    path.write_bytes(full[:40])  # a non-atomic writer caught mid-write
    os.utime(path, ns=(1, 1))
    index.reconcile()
    assert index.snapshot().sessions == ()
    assert index.snapshot().skipped[0].reason.startswith("invalid JSON")
    path.write_bytes(full)
    index.reconcile()
    assert [h.session_id for h in index.snapshot().sessions] == ["good_5"]
    assert index.snapshot().skipped == ()


def test_permission_denied_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good(tmp_path, 6)
    (tmp_path / "secret.json").write_text(json.dumps({"session_id": "hidden"}))
    real_open = os.open

    def guarded_open(path: Any, flags: int, *args: Any) -> int:
        if str(path).endswith("secret.json"):  # tests run as root: simulate the denial
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(registry_files.os, "open", guarded_open)
    html, ids = page_and_ids(tmp_path)
    assert ids == ["good_6"]
    assert "secret.json" in html and "cannot open: Permission denied" in html


def test_a_broken_file_waits_for_a_change_and_a_refused_one_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    good(tmp_path, 7)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    (tmp_path / "secret.json").write_text("{}")
    opened: list[str] = []
    real_open = os.open

    def counting_open(path: Any, flags: int, *args: Any) -> int:
        opened.append(os.path.basename(path))
        if str(path).endswith("secret.json"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(registry_files.os, "open", counting_open)
    index = RegistryIndex(tmp_path)
    with caplog.at_level("WARNING"):
        for _ in range(3):
            index.reconcile()
    assert (opened.count("broken.json"), opened.count("secret.json")) == (1, 3)
    warned = [r.getMessage() for r in caplog.records if "Skipping" in r.getMessage()]
    assert len(warned) == 2  # one per file, however often it is retried
    broken.write_text("{ ")  # changed: read again
    index.reconcile()
    assert opened.count("broken.json") == 2
    assert [s.name for s in index.snapshot().skipped] == ["broken.json", "secret.json"]
    assert [h.session_id for h in index.snapshot().sessions] == ["good_7"]


def test_hundred_thousand_junk_files_beside_real_ones(tmp_path: Path) -> None:
    for n in range(10):
        good(tmp_path, n)
    junk_json = 5000
    for n in range(100_000 - junk_json):
        os.close(os.open(tmp_path / f"junk_{n}.tmp", os.O_CREAT | os.O_WRONLY, 0o644))
    for n in range(junk_json):
        (tmp_path / f"junk_{n:05d}.json").write_bytes(b"\x00\xff garbage")
    html, ids = page_and_ids(tmp_path)
    assert ids == sorted(f"good_{n}" for n in range(10))
    assert f"{junk_json} Datei(en) in der Registry übersprungen" in html
    assert "junk_00000.json" in html  # the first few names, so the operator can look
    assert "not UTF-8" in html
