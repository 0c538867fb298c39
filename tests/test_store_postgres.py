"""The inspection log on PostgreSQL (several instances writing one log): the same
behaviour as on SQLite, against a real throw-away server on a private unix socket."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from camwatch.store import Store
from probes.result import CheckKind, CheckResult, Finding, FindingCode, Status
from probes.values import PictureValues
from reports.sheet import build_sheet
from tests.test_report_helpers import NOW, fill, inventory

PG_BIN = next(
    (
        Path(p).parent
        for p in (shutil.which("initdb"), "/usr/lib/postgresql/15/bin/initdb")
        if p and Path(p).exists()
    ),
    None,
)

pytestmark = pytest.mark.skipif(PG_BIN is None, reason="PostgreSQL server binaries not installed")


def _as_postgres_user() -> list[str]:
    # initdb and postgres refuse to run as root
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    pytest.importorskip("psycopg")
    assert PG_BIN is not None
    root = Path(tempfile.mkdtemp(prefix="camwatch-pg-"))
    root.chmod(0o777)
    data = root / "data"
    prefix = _as_postgres_user()
    try:
        subprocess.run(
            [
                *prefix,
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "camwatch",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            [
                *prefix,
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(data),
                "-w",
                "-t",
                "60",
                "-l",
                str(root / "log"),
                "-o",
                f"-k {root} -p 5432 -c listen_addresses='' -F",
                "start",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, FileNotFoundError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"cannot start a throw-away PostgreSQL: {exc}")
    try:
        yield f"postgresql+psycopg://camwatch@/postgres?host={root}&port=5432"
    finally:
        subprocess.run(
            [*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


T0 = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)


def test_log_on_postgresql(pg_url: str) -> None:
    with Store.open(pg_url) as store:
        m = dt.timedelta(minutes=1)
        f = Finding(FindingCode.PICTURE_FROZEN, "畫面凍結", "cam-1")
        batch = [
            CheckResult("cam-1", CheckKind.PICTURE, Status.OK, "", T0,
                        values=PictureValues(sharpness=1.5)),
            CheckResult("cam-1", CheckKind.PICTURE, Status.FAIL, "凍結", T0 + m, findings=(f,)),
            CheckResult("cam-1", CheckKind.PICTURE, Status.FAIL, "凍結", T0 + 2 * m, findings=(f,)),
            CheckResult("nvr-1", CheckKind.HOST, Status.OK, "", T0),
        ]
        assert store.record_results(batch) == 3
        assert (
            store.record_results([CheckResult("nvr-1", CheckKind.HOST, Status.OK, "", T0 + 5 * m)])
            == 0
        )
        ts = store.transitions(["cam-1", "nvr-1"])
        assert [(t.device, t.status) for t in ts] == [
            ("cam-1", Status.OK),
            ("cam-1", Status.FAIL),
            ("nvr-1", Status.OK),
        ]
        assert ts[0].ended_at == ts[1].started_at == T0 + m
        assert ts[1].findings == (f,) and ts[1].last_seen_at == T0 + 2 * m
        assert ts[2].last_seen_at.tzinfo is not None and ts[2].last_seen_at == T0 + 5 * m
        assert store.record_alert_event("fired", "PictureFrozen", "cam-1", {"unit": "u"}, T0)
        assert store.record_alert_event("resolved", "PictureFrozen", "cam-1", at=T0 + m)
        assert store.alert_history(["cam-1"])[0].resolved_at == T0 + m
        store.save_state("alerts", {"open": []})
        store.save_state("alerts", {"open": ["x"]})
        assert store.load_state("alerts") == {"open": ["x"]}
        assert store.record_inspection(T0.date(), T0, T0 + dt.timedelta(days=1)) == 2
        assert store.snapshot_day(T0.date()) >= 2
        assert store.purge(T0 + dt.timedelta(days=2))["transitions"] == 3
    with Store.open(pg_url) as store:  # reopening: already at head
        assert store.known_devices() == set()


def test_sheet_from_postgresql_matches_sqlite(pg_url: str, tmp_path: Path) -> None:
    inv = inventory()
    sheets = []
    for url in (pg_url, f"sqlite:///{tmp_path}/log.db"):
        with Store.open(url) as store:
            fill(store, inv)
            sheets.append(build_sheet(store, inv, "xuean", "2026-10", now=NOW))
    assert sheets[0].rows == sheets[1].rows
    assert sheets[0].data_sha256 == sheets[1].data_sha256
