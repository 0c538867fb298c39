"""Issue 14, defects 4 and 8, at the level of the log and the sheet (pinned instants; the
end-to-end runs across midnight are in tests/test_reliability_dates.py).

4. Daily snapshots and inspections are written for every day that lacks them, from the
   transitions, whenever camwatch catches up (at start and after each midnight), so a
   restart across midnight loses no day.
8. A repair alert fired at exactly 00:00 on the 1st for a fault that began on the last
   day of the month is that month's repair request, not 「未報修」.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from camwatch.store import Store
from probes.result import CheckKind, CheckResult, Finding, FindingCode, Status
from reports.sheet import ReportError, build_sheet, parse_month
from tests.test_report_helpers import inventory

TZ = ZoneInfo("Asia/Taipei")


def at(day: dt.date, h: int, m: int = 0, s: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, h, m, s, tzinfo=TZ)


def test_days_missing_at_a_restart_are_written_from_the_transitions(tmp_path: Path) -> None:
    d13, d14, d15 = dt.date(2026, 11, 13), dt.date(2026, 11, 14), dt.date(2026, 11, 15)
    with Store.open(f"sqlite:///{tmp_path / 'log.db'}") as store:
        rs = [CheckResult("nvr-a", CheckKind.HOST, Status.OK, "ok", at(d, h))
              for d in (d13, d14) for h in range(0, 24, 3)]
        rs.insert(10, CheckResult("nvr-a", CheckKind.HOST, Status.FAIL, "主機無回應", at(d14, 5),
                                  findings=(Finding(FindingCode.RECORDER_DOWN, "主機無回應"),)))
        store.record_results(rs)
        # the service stopped at 23:59 on the 14th (an inspection date) and started
        # again at 00:01 on the 15th: nothing ran at midnight
        written = store.catch_up_daily(at(d15, 0, 1), "Asia/Taipei", 14)
        assert written == [d13, d14]
        assert {s.day for s in store.daily_snapshots(d13, d14)} == {d13, d14}
        insp = store.inspections(d14, d14)
        assert [(r.inspection_date, r.device, r.answers["host"]) for r in insp] == [
            (d14, "nvr-a", "fail")]
        assert insp[0].period_start == at(dt.date(2026, 11, 1), 0)
        # once written, a second start writes nothing again
        assert store.catch_up_daily(at(d15, 0, 2), "Asia/Taipei", 14) == []
        # a shard writes only its devices' rows
        store.record_results([CheckResult("nvr-b", CheckKind.HOST, Status.OK, "ok",
                                          at(d13, 1))])
        assert store.catch_up_daily(at(d15, 0, 3), "Asia/Taipei", 14, ["nvr-b"]) == [d13, d14]
        assert {s.device for s in store.daily_snapshots(d13, d13)} == {"nvr-a", "nvr-b"}


def test_an_alert_at_midnight_on_the_first_is_the_last_days_repair_request(
    tmp_path: Path,
) -> None:
    inv = inventory()
    nov30, dec1 = dt.date(2026, 11, 30), dt.date(2026, 12, 1)
    unit = inv.recorders["nvr-a"].unit
    stopped = Finding(FindingCode.RECORDING_STOPPED, "錄影停止")
    with Store.open(f"sqlite:///{tmp_path / 'log.db'}") as store:
        store.record_results([
            CheckResult("nvr-a", CheckKind.RECORDING, Status.OK, "ok", at(nov30, 23, 50)),
            CheckResult("nvr-a", CheckKind.RECORDING, Status.FAIL, "錄影停止", at(nov30, 23, 58),
                        findings=(stopped,)),
            CheckResult("nvr-a", CheckKind.RECORDING, Status.FAIL, "錄影停止", at(dec1, 0, 0),
                        findings=(stopped,)),
            CheckResult("nvr-a", CheckKind.RECORDING, Status.OK, "ok", at(dec1, 0, 20)),
        ])
        store.record_alert_event("fired", "RecordingStopped", "nvr-a", {}, at(dec1, 0, 0))
        store.record_alert_event("resolved", "RecordingStopped", "nvr-a", {}, at(dec1, 0, 25))
        sheet = build_sheet(store, inv, unit, "2026-11", now=at(dec1, 9))
    remarks = [m for r in sheet.rows if r.recorder_id == "nvr-a" for m in r.remarks
               if "［錄影］" in m]
    assert remarks, [r.remarks for r in sheet.rows]
    assert "已申請修復 12/01 00:00（RecordingStopped）" in remarks[-1]
    assert "未報修" not in remarks[-1]


def test_a_future_month_names_the_campus_today() -> None:
    now = dt.datetime(2026, 12, 1, 20, 30, tzinfo=dt.UTC)  # 12-02 04:30 in Taipei
    try:
        parse_month("2030-01", now, "Asia/Taipei")
    except ReportError as exc:
        assert "today is 2026-12-02" in str(exc)
    else:
        raise AssertionError("a future month was accepted")
    assert parse_month("2030-01", None) == (2030, 1)  # the form alone
