"""The inspection log: transitions, batching, alerts, state, derived records, purge."""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3
from pathlib import Path

import pytest

from camwatch.store import StatusTime, Store, inspection_periods, status_times
from probes.result import CheckKind, CheckResult, Finding, FindingCode, Status
from probes.values import CheckValues, DiskValues, HostValues, RecordingValues

T0 = dt.datetime(2026, 11, 2, 0, 0, tzinfo=dt.UTC)


def res(
    device: str,
    status: Status,
    minutes: float,
    *,
    check: CheckKind = CheckKind.HOST,
    findings: tuple[Finding, ...] = (),
    reason: str = "",
    values: CheckValues | None = None,
) -> CheckResult:
    return CheckResult(
        device=device,
        check=check,
        status=status,
        reason=reason,
        at=T0 + dt.timedelta(minutes=minutes),
        values=values,
        findings=findings,
    )


@pytest.fixture
def store(tmp_path: Path):
    s = Store.open(f"sqlite:///{tmp_path}/log.db")
    yield s
    s.close()


def test_open_creates_schema_in_wal_mode(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "log.db"
    Store.open(f"sqlite:///{db}").close()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {
        "check_transitions",
        "inspections",
        "daily_snapshots",
        "alert_events",
        "kv_state",
        "log_sessions",
        "log_gaps",
        "alembic_version",
    } <= tables
    assert con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0002"
    con.close()
    Store.open(f"sqlite:///{db}").close()  # reopening (already at head) is fine


def test_same_answer_moves_last_seen_only(store: Store) -> None:
    assert store.record_results([res("nvr-1", Status.OK, 0)]) == 1
    assert store.record_results([res("nvr-1", Status.OK, 1)]) == 0
    assert store.record_results([res("nvr-1", Status.OK, 2, reason="changed text")]) == 0
    assert store.record_results([res("nvr-1", Status.OK, 3, values=HostValues(uptime_s=180))]) == 0
    assert store.record_results([res("nvr-1", Status.OK, 2.5, values=HostValues(uptime_s=1))]) == 0
    (t,) = store.transitions(["nvr-1"])
    assert t.values == HostValues(uptime_s=180)  # the newest measurement, not a late one
    assert t.started_at == T0
    assert t.last_seen_at == T0 + dt.timedelta(minutes=3)
    assert t.ended_at is None


def test_status_or_findings_change_starts_a_row(store: Store) -> None:
    f1 = Finding(FindingCode.PICTURE_BLURRED, "畫面模糊", "cam-1")
    f2 = Finding(FindingCode.PICTURE_COVERED, "鏡頭遭遮蔽", "cam-1")
    store.record_results([res("cam-1", Status.OK, 0, check=CheckKind.PICTURE)])
    store.record_results([res("cam-1", Status.FAIL, 5, check=CheckKind.PICTURE, findings=(f1,))])
    # same code and subject with a different text: same state
    store.record_results(
        [
            res(
                "cam-1",
                Status.FAIL,
                10,
                check=CheckKind.PICTURE,
                findings=(Finding(f1.code, "畫面模糊（分數 12）", "cam-1"),),
            )
        ]
    )
    store.record_results([res("cam-1", Status.FAIL, 15, check=CheckKind.PICTURE, findings=(f2,))])
    store.record_results([res("cam-1", Status.OK, 20, check=CheckKind.PICTURE)])
    ts = store.transitions(["cam-1"])
    assert [t.status for t in ts] == [Status.OK, Status.FAIL, Status.FAIL, Status.OK]
    assert ts[1].findings == (f1,)
    assert ts[1].last_seen_at == T0 + dt.timedelta(minutes=10)
    assert ts[1].ended_at == ts[2].started_at == T0 + dt.timedelta(minutes=15)
    assert ts[2].ended_at == ts[3].started_at
    assert ts[3].ended_at is None


def test_batch_with_several_results_per_device(store: Store) -> None:
    batch = [
        res("nvr-1", s, m)
        for m, s in [
            (3, Status.FAIL),
            (0, Status.OK),
            (1, Status.OK),
            (4, Status.FAIL),
            (6, Status.OK),
        ]
    ]
    batch += [res(f"cam-{i}", Status.OK, 0, check=CheckKind.PICTURE) for i in range(50)]
    assert store.record_results(batch) == 3 + 50
    ts = store.transitions(["nvr-1"])
    assert [(t.status, t.started_at.minute, t.last_seen_at.minute) for t in ts] == [
        (Status.OK, 0, 1),
        (Status.FAIL, 3, 4),
        (Status.OK, 6, 6),
    ]
    assert ts[0].ended_at == ts[1].started_at
    # the in-memory current state follows the batch: the next OK is not a new row
    assert store.record_results([res("nvr-1", Status.OK, 7)]) == 0


def test_current_state_survives_reopen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/log.db"
    with Store.open(url) as s:
        nan = HostValues(uptime_s=5, clock_offset_s=float("nan"))
        s.record_results([res("nvr-1", Status.FAIL, 0, values=nan)])
    with Store.open(url) as s:
        assert (
            s.record_results(
                [res("nvr-1", Status.FAIL, 1,
                     values=HostValues(uptime_s=5, clock_offset_s=math.inf))]
            )
            == 0
        )
        assert s.record_results([res("nvr-1", Status.OK, 2)]) == 1
        ts = s.transitions(["nvr-1"])
        assert ts[0].values == HostValues(uptime_s=5, clock_offset_s=None)
        assert len(ts) == 2 and s.known_devices() == {"nvr-1"}


def test_transitions_window_and_device_filter(store: Store) -> None:
    store.record_results([res(f"d{i}", Status.OK, 0) for i in range(1200)])
    store.record_results([res("d1", Status.FAIL, 60)])
    store.record_results([res("d1", Status.OK, 120)])
    got = store.transitions([f"d{i}" for i in range(1200)])  # more than one IN chunk
    assert len(got) == 1202
    win = store.transitions(["d1"], T0 + dt.timedelta(minutes=70), T0 + dt.timedelta(minutes=80))
    assert [t.status for t in win] == [Status.FAIL]
    assert store.transitions(["nobody"]) == []


def test_status_times_clip_and_availability(store: Store) -> None:
    store.record_results([res("d", Status.OK, 0)])
    store.record_results([res("d", Status.FAIL, 30)])
    store.record_results([res("d", Status.OK, 40)])
    store.record_results([res("d", Status.OK, 60)])
    times = status_times(
        store.transitions(["d"]), T0 + dt.timedelta(minutes=20), T0 + dt.timedelta(minutes=60)
    )
    st = times[("d", CheckKind.HOST)]
    assert (st.ok, st.fail) == (30 * 60.0, 10 * 60.0)
    assert st.availability() == pytest.approx(0.75)
    assert StatusTime().availability() is None and StatusTime().worst is None


def test_alert_history(store: Store) -> None:
    t1 = T0 + dt.timedelta(hours=1)
    assert store.record_alert_event("fired", "RecorderDown", "nvr-1", {"unit": "u"}, T0)
    assert not store.record_alert_event("fired", "RecorderDown", "nvr-1", {"unit": "u"}, t1)
    assert store.record_alert_event("resolved", "RecorderDown", "nvr-1", at=t1)
    assert not store.record_alert_event("resolved", "RecorderDown", "nvr-1", at=t1)
    assert store.record_alert_event("fired", "PictureBlurred", "cam-1", at=t1)
    with pytest.raises(ValueError):
        store.record_alert_event("bogus", "X", "cam-1")  # type: ignore[arg-type]
    hist = store.alert_history(["nvr-1", "cam-1"])
    assert [(a.alertname, a.fired_at, a.resolved_at) for a in hist] == [
        ("RecorderDown", T0, t1),
        ("PictureBlurred", t1, None),
    ]
    assert hist[0].labels == {"unit": "u"}
    later = store.alert_history(start=t1 + dt.timedelta(minutes=1))
    assert [a.alertname for a in later] == ["PictureBlurred"]


def test_state_keeps_long_packed_strings_whole(store: Store) -> None:
    """A picture baseline's detail packed in 16-bit words is 1,922 characters: results'
    texts are cut at MAX_TEXT, camwatch's own state must not be."""
    from camwatch.store import MAX_TEXT
    from probes.baseline import pack_ints
    from probes.scoring import BLOCKS, LEVELS

    detail = pack_ints([65535] * (LEVELS * BLOCKS + 600))  # room to grow
    assert isinstance(detail, str) and len(detail) > MAX_TEXT
    store.save_state("probe-memory", {"baselines": {"cam-1": {"day": {"detail": detail}}}})
    back = store.load_state("probe-memory")
    assert back is not None and back["baselines"]["cam-1"]["day"]["detail"] == detail


def test_state_round_trip(store: Store) -> None:
    assert store.load_state("probe-memory") is None
    store.save_state("probe-memory", {"facts": {"nvr-1": {"uptime": 5}}})
    store.save_state("probe-memory", {"facts": {"nvr-1": {"uptime": 6}}})
    assert store.load_state("probe-memory") == {"facts": {"nvr-1": {"uptime": 6}}}


async def test_async_wrappers(store: Store) -> None:
    assert await store.arecord_results([res("nvr-9", Status.OK, 0)]) == 1
    await store.asave_state("k", {"a": 1})
    assert await store.aload_state("k") == {"a": 1}
    assert await store.arecord_alert_event("fired", "RecorderDown", "nvr-9", at=T0)


def test_inspection_periods_rule() -> None:
    assert [d.day for d, _, _ in inspection_periods(2026, 11, 14)] == [14, 28, 30]
    assert [d.day for d, _, _ in inspection_periods(2026, 2, 14)] == [14, 28]
    assert [d.day for d, _, _ in inspection_periods(2028, 2, 14)] == [14, 28, 29]
    assert [(f.day, last.day) for _, f, last in inspection_periods(2026, 12, 14)] == [
        (1, 14),
        (15, 28),
        (29, 31),
    ]
    with pytest.raises(ValueError):
        inspection_periods(2026, 1, 0)


def test_inspection_and_snapshot_records(store: Store) -> None:
    store.record_results(
        [res("nvr-1", Status.OK, 0), res("cam-1", Status.OK, 0, check=CheckKind.PICTURE)]
    )
    store.record_results(
        [
            res(
                "cam-1",
                Status.FAIL,
                60,
                check=CheckKind.PICTURE,
                findings=(Finding(FindingCode.PICTURE_DARK, "畫面過暗", "cam-1"),),
            )
        ]
    )
    store.record_results(
        [res("cam-1", Status.OK, 120, check=CheckKind.PICTURE), res("nvr-1", Status.OK, 120)]
    )
    n = store.record_inspection(dt.date(2026, 11, 2), T0, T0 + dt.timedelta(days=1))
    assert n == 2
    recs = {r.device: r for r in store.inspections(dt.date(2026, 11, 1), dt.date(2026, 11, 30))}
    assert recs["cam-1"].answers == {"host": None, "recording": None, "picture": "fail"}
    assert recs["nvr-1"].answers["host"] == "ok"
    assert recs["cam-1"].detail[0]["findings"][0]["code"] == "picture-dark"
    # written again: replaced, not duplicated
    store.record_inspection(dt.date(2026, 11, 2), T0, T0 + dt.timedelta(days=1))
    assert len(store.inspections(dt.date(2026, 11, 2), dt.date(2026, 11, 2))) == 2
    assert store.snapshot_day(dt.date(2026, 11, 2), "Asia/Taipei") == 2
    snaps = {
        (s.device, s.check): s
        for s in store.daily_snapshots(dt.date(2026, 11, 2), dt.date(2026, 11, 2))
    }
    assert snaps[("cam-1", CheckKind.PICTURE)].fail_s == 3600.0
    assert snaps[("cam-1", CheckKind.PICTURE)].worst == "fail"
    store.daily_housekeeping(dt.datetime(2026, 11, 15, 1, tzinfo=dt.UTC), "Asia/Taipei", 14)
    assert store.inspections(dt.date(2026, 11, 14), dt.date(2026, 11, 14), ["cam-1"])


def test_purge_drops_only_old_records(store: Store) -> None:
    old = T0 - dt.timedelta(days=1200)
    store.record_results([CheckResult("old-cam", CheckKind.HOST, Status.OK, "", old)])
    store.record_results([res("nvr-1", Status.FAIL, 0)])
    store.record_results([res("nvr-1", Status.OK, 10)])
    store.record_alert_event("fired", "RecorderDown", "old-cam", at=old)
    store.record_alert_event("resolved", "RecorderDown", "old-cam", at=old + dt.timedelta(hours=1))
    store.record_alert_event("fired", "RecorderDown", "nvr-9", at=old)  # still open: kept
    store.record_inspection(old.date(), old, old + dt.timedelta(days=1))
    counts = store.purge(T0 - dt.timedelta(days=1095))
    assert counts == {"transitions": 1, "alerts": 1, "inspections": 1, "snapshots": 0}
    assert store.transitions(["old-cam"]) == []
    assert len(store.transitions(["nvr-1"])) == 2
    assert [a.device for a in store.alert_history()] == ["nvr-9"]
    assert store.known_devices() == {"nvr-1"}
    # a purged device starts afresh
    assert store.record_results([CheckResult("old-cam", CheckKind.HOST, Status.OK, "", T0)]) == 1


def test_bad_url_is_a_clear_error(tmp_path: Path) -> None:
    from camwatch.store import StoreError

    with pytest.raises(StoreError, match="cannot open the inspection log"):
        Store.open("nosuchdb://user:hunter2@host/x")
    try:
        Store.open("postgresql://user:hunter2@127.0.0.1:1/x")
    except StoreError as exc:
        assert "hunter2" not in str(exc)


def test_huge_texts_are_cut(store: Store) -> None:
    huge = "壞" * 100_000
    f = Finding(FindingCode.AUTH_FAILED, huge, "nvr-1")
    store.record_results(
        [res("nvr-1", Status.FAIL, 0, reason=huge, findings=(f,), values=HostValues(firmware=huge))]
    )
    (t,) = store.transitions(["nvr-1"])
    assert len(t.reason) == 2000 and t.reason.endswith("…")
    assert len(t.findings[0].reason) == 2000 and len(t.values.firmware) == 2000


def test_rows_written_before_values_were_typed_are_still_read(tmp_path: Path) -> None:
    """A log kept by an older camwatch holds recording values as flat keys
    (`disk.<id>.<field>` next to a disk count): after the upgrade they read as the
    same disks, and new rows are written in the typed form."""
    db = tmp_path / "log.db"
    Store.open(f"sqlite:///{db}").close()
    old = (
        '{"disks": 2, "disk.1.free_bytes": 1000, "disk.1.capacity_bytes": 4000, '
        '"disk.1.ok": true, "disk.2.free_bytes": 0, "disk.2.capacity_bytes": 4000, '
        '"disk.2.ok": false, "retention_days": 31.5, "newest_age_s": 12.0, '
        '"channels_recording": 3}'
    )
    con = sqlite3.connect(db)
    con.execute(
        "INSERT INTO check_transitions (device, check_kind, status, reason, \"values\", "
        "findings, started_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        ("nvr-1", "recording", "fail", "硬碟 2 故障", old, "[]",
         "2026-11-01 23:00:00.000000", "2026-11-01 23:30:00.000000"),
    )
    con.commit()
    con.close()
    with Store.open(f"sqlite:///{db}") as s:
        (t,) = s.transitions(["nvr-1"])
        assert isinstance(t.values, RecordingValues)
        assert t.values.retention_days == 31.5 and t.values.channels_recording == 3
        assert t.values.disks == (
            DiskValues("1", ok=True, free_bytes=1000, capacity_bytes=4000),
            DiskValues("2", ok=False, free_bytes=0, capacity_bytes=4000),
        )
        new = RecordingValues(disks=(DiskValues("1", ok=True),), retention_days=30.0)
        s.record_results([res("nvr-2", Status.OK, 0, check=CheckKind.RECORDING, values=new)])
        (t2,) = s.transitions(["nvr-2"])
        assert t2.values == new
    con = sqlite3.connect(db)
    (raw,) = con.execute(
        "SELECT \"values\" FROM check_transitions WHERE device = 'nvr-2'"
    ).fetchone()
    assert json.loads(raw)["disks"] == [{"id": "1", "ok": True}]
