"""The monthly 附件四 sheet built from a log filled with a month of realistic results."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import openpyxl
import pytest

from camwatch.store import Store
from inventory.models import Inventory
from probes.result import CheckKind, CheckResult, Finding, FindingCode, Status
from probes.values import RecordingValues
from reports.sheet import (
    EmptyLogError,
    ReportError,
    Sheet,
    build_sheet,
    duration_text,
    produce,
    render_pdf,
    render_xlsx,
    roc_date,
)
from tests.test_report_helpers import NOW, fill, inventory, local

POPPLER = all(shutil.which(b) for b in ("pdftotext", "pdffonts", "pdftoppm"))
needs_poppler = pytest.mark.skipif(not POPPLER, reason="poppler-utils not installed")


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return inventory()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, inv: Inventory):
    s = Store.open(f"sqlite:///{tmp_path_factory.mktemp('log')}/log.db")
    fill(s, inv)
    yield s
    s.close()


@pytest.fixture(scope="module")
def sheet(store: Store, inv: Inventory) -> Sheet:
    return build_sheet(store, inv, "xuean", "2026-10", now=NOW)


@pytest.fixture(scope="module")
def pdf_path(sheet: Sheet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pdf") / "sheet.pdf"
    path.write_bytes(render_pdf(sheet))
    return path


def _answers(sheet: Sheet) -> dict[tuple[str, str], tuple[bool | None, ...]]:
    return {(r.roc_date, r.recorder_id): (r.host, r.recording, r.picture) for r in sheet.rows}


def test_rows_per_inspection_date_per_recorder(sheet: Sheet) -> None:
    assert sheet.title == "臺北市立南港高級工業職業學校監視錄影系統保養紀錄簿"
    assert sheet.roc_month == "115年10月" and sheet.complete
    assert [r.roc_date for r in sheet.rows] == ["115/10/14"] * 2 + ["115/10/28"] * 2 + [
        "115/10/31"
    ] * 2
    assert {r.recorder_id for r in sheet.rows} == {"nvr-a", "dvr-b"}  # not the library's


def test_answers_say_no_when_a_fault_existed_in_the_period(sheet: Sheet) -> None:
    Y, N = True, False
    assert _answers(sheet) == {
        # blur on cam-a2 10/03; cover on cam-b1 10/14 20:00-10/15 03:00 spans two periods
        ("115/10/14", "nvr-a"): (Y, Y, N),
        ("115/10/14", "dvr-b"): (Y, Y, N),
        # recording stopped on nvr-a 10/20-10/21; the cover's tail on 10/15
        ("115/10/28", "nvr-a"): (Y, N, Y),
        ("115/10/28", "dvr-b"): (Y, Y, N),
        # dvr-b down from 10/30 22:00
        ("115/10/31", "nvr-a"): (Y, Y, Y),
        ("115/10/31", "dvr-b"): (N, Y, Y),
    }


def test_remarks_name_place_fault_duration_and_repair(sheet: Sheet) -> None:
    rows = {(r.roc_date, r.recorder_id): "\n".join(r.remarks) for r in sheet.rows}
    blur = rows[("115/10/14", "nvr-a")]
    assert "主機地點：行政大樓1樓機房" in blur and "教學大樓1樓主機" in blur
    assert "3140101-03-0001" in blur
    assert "教學大樓1樓走廊東側鏡頭" in blur and "畫面模糊" in blur
    assert "10/03 08:00 起至 10/03 14:00 恢復，歷時 6小時" in blur
    assert "已申請修復 10/03 09:00" in blur and "10/03 14:00 修復" in blur
    assert "走廊西側" not in blur  # the healthy lens is not named
    stop = rows[("115/10/28", "nvr-a")]
    assert "錄影已停止" in stop and "歷時 1天3小時" in stop and "10/21 05:00 修復" in stop
    first = rows[("115/10/14", "dvr-b")]
    assert "活動中心2樓樓梯口鏡頭" in first and "仍未恢復" in first
    second = rows[("115/10/28", "dvr-b")]
    assert "10/14 20:00 起至 10/15 03:00 恢復" in second
    down = rows[("115/10/31", "dvr-b")]
    assert "主機無回應" in down and "尚未修復" in down and "已申請修復 10/30 23:00" in down
    assert "部分時段無法判定" in down
    assert rows[("115/10/31", "nvr-a")].endswith("本期三項檢查均正常")


def test_retention_and_availability(sheet: Sheet, store: Store, inv: Inventory) -> None:
    ret = {r.recorder_id: r for r in sheet.retention}
    assert ret["nvr-a"].verdict == "符合" and ret["nvr-a"].days_kept == 45
    assert ret["nvr-a"].days_max == 60
    assert ret["dvr-b"].verdict.startswith("不足")
    av = {a.device_id: a for a in sheet.availability}
    assert av["cam-a1"].picture == 1.0
    # 6 hours blurred out of 31 days (744 hours)
    assert av["cam-a2"].picture == pytest.approx(1 - 6 / 744, abs=1e-3)
    assert av["cam-a2"].fault_seconds == 6 * 3600
    assert av["cam-b1"].host is None and av["cam-b1"].kind == "鏡頭"
    lib = build_sheet(store, inv, "library", "2026-10", now=NOW)
    (line,) = lib.retention
    assert line.verdict == "依法保留" and "校安事件調查" in (line.legal_hold or "")


def test_hash_follows_the_data(sheet: Sheet, store: Store, inv: Inventory) -> None:
    again = build_sheet(store, inv, "xuean", "2026-10", now=NOW + dt.timedelta(hours=1))
    assert again.data_sha256 == sheet.data_sha256 and again.document_id == sheet.document_id
    assert re.fullmatch(r"[0-9a-f]{64}", sheet.data_sha256)
    assert sheet.document_id == f"CW-xuean-202610-{sheet.data_sha256[:8].upper()}"
    other = build_sheet(store, inv, "xuean", "2026-10", interval_days=7, now=NOW)
    assert other.data_sha256 != sheet.data_sha256
    assert [r.inspection_date.day for r in other.rows[::2]] == [7, 14, 21, 28, 31]


def test_current_month_stops_now(store: Store, inv: Inventory) -> None:
    nov = build_sheet(store, inv, "xuean", "2026-11", now=NOW)
    assert not nov.complete
    assert sorted({r.roc_date for r in nov.rows}) == ["115/11/14", "115/11/25"]
    row = next(r for r in nov.rows if r.recorder_id == "dvr-b" and r.roc_date == "115/11/14")
    assert row.host is False  # still down on 11/01 (the log ends there)
    assert any("月份進行中" in r for x in nov.rows for r in x.remarks if x.roc_date == "115/11/25")


def test_bad_arguments_are_report_errors(store: Store, inv: Inventory) -> None:
    with pytest.raises(ReportError, match="unknown unit 'nope'; known units: xuean"):
        build_sheet(store, inv, "nope", "2026-10", now=NOW)
    with pytest.raises(ReportError, match="in the future"):
        build_sheet(store, inv, "xuean", "2026-12", now=NOW)
    with pytest.raises(ReportError, match="YYYY-MM"):
        build_sheet(store, inv, "xuean", "2026/10", now=NOW)
    with pytest.raises(ReportError, match="01 to 12"):
        build_sheet(store, inv, "xuean", "2026-13", now=NOW)
    with pytest.raises(EmptyLogError, match="no inspections recorded for unit xuean"):
        build_sheet(store, inv, "xuean", "2026-09", now=NOW)
    with pytest.raises(ReportError, match="format"):
        produce(store, inv, "2026-10", "xuean", "docx", now=NOW)


def test_small_helpers() -> None:
    assert roc_date(dt.date(2026, 11, 23)) == "115/11/23"
    assert roc_date(dt.date(2022, 12, 12)) == "111/12/12"  # the form's own example
    assert duration_text(30) == "不到1分鐘"
    assert duration_text(3725) == "1小時2分"
    assert duration_text(2 * 86400 + 3 * 3600 + 60) == "2天3小時"


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout


@needs_poppler
def test_pdf_text_holds_the_form(pdf_path: Path, sheet: Sheet) -> None:
    text = _run("pdftotext", "-layout", str(pdf_path), "-")
    flat = re.sub(r"\s+", "", text)
    for needle in (
        "臺北市立南港高級工業職業學校監視錄影系統保養紀錄簿",
        "學務處(學安室)",
        "115年10月",
        "檢查日期",
        "(年月日)",
        "是否正常運作",
        "是否正常運轉",
        "是否清晰",
        "主管簽章",
        "camwatch自動檢查",
        "備考（主機地點、機號）損壞情形（鏡頭位置）、是否申請修復",
        "業管單位應定期檢查監視錄影系統運作狀況，發現故障，立即報修",
        "教學大樓1樓走廊東側鏡頭",
        "活動中心2樓樓梯口鏡頭",
        "已申請修復10/0309:00",
        "10/03 14:00 修復".replace(" ", ""),
        "錄影保存期限檢核",
        "不足（少於30日）",
        sheet.document_id,
        sheet.data_sha256,
        "第1頁／共2頁",
    ):
        assert needle in flat, needle
    # each row's line: ROC date then the three answers, ticked as the faults say
    lines = {}
    for line in text.splitlines():
        m = re.match(r"\s*(1\d\d/\d\d/\d\d)\s+(\S+ \S+)\s+(\S+ \S+)\s+(\S+ \S+)", line)
        if m:
            lines.setdefault(m.group(1), []).append(m.groups()[1:])
    yes, no = "■是 □否", "□是 ■否"
    # rows of a date follow the recorder ids: dvr-b, then nvr-a
    assert lines["115/10/31"] == [(no, yes, yes), (yes, yes, yes)]
    assert lines["115/10/28"] == [(yes, yes, no), (yes, no, yes)]
    assert lines["115/10/14"] == [(yes, yes, no), (yes, yes, no)]


@needs_poppler
def test_pdf_embeds_the_cjk_font_and_renders(pdf_path: Path, tmp_path: Path) -> None:
    fonts = _run("pdffonts", str(pdf_path))
    cjk = [ln for ln in fonts.splitlines() if "CJK" in ln]
    assert cjk, fonts
    for ln in cjk:
        cols = ln.split()
        emb = cols[-5]
        assert emb == "yes", ln
    info = _run("pdfinfo", str(pdf_path)) if shutil.which("pdfinfo") else ""
    if info:
        assert "A4" in info
    _run("pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf_path), str(tmp_path / "p"))
    png = next(tmp_path.glob("p*.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_xlsx_holds_the_same_content(sheet: Sheet) -> None:
    wb = openpyxl.load_workbook(io.BytesIO(render_xlsx(sheet)))
    assert wb.sheetnames == ["保養紀錄簿", "錄影保存期限", "妥善率"]
    ws = wb["保養紀錄簿"]
    assert ws["A1"].value == sheet.title
    rows = [r for r in ws.iter_rows(min_row=5, values_only=True) if r[0] and "/" in str(r[0])]
    assert len(rows) == len(sheet.rows)
    got = {(r[0], r[6].split("（")[1].split("）")[0].split("，")[0]): r[1:4] for r in rows}
    assert got[("115/10/28", "nvr-a")] == ("■是 □否", "□是 ■否", "■是 □否")
    assert got[("115/10/31", "dvr-b")] == ("□是 ■否", "■是 □否", "■是 □否")
    cells = " ".join(str(c) for row in ws.iter_rows(values_only=True) for c in row if c)
    assert "教學大樓1樓走廊東側鏡頭" in cells and sheet.data_sha256 in cells
    assert "業管單位應定期檢查監視錄影系統運作狀況" in cells
    ret = [r for r in wb["錄影保存期限"].iter_rows(min_row=4, values_only=True)]
    assert {r[1]: r[4] for r in ret}["nvr-a"] == "符合"
    av = wb["妥善率"]
    assert av.max_row == 3 + len(sheet.availability)


def test_a_unit_of_200_cameras_takes_seconds(tmp_path: Path) -> None:
    base = inventory().model_dump()
    cams = {}
    for r in range(8):
        rec = dict(base["recorders"]["nvr-a"], id=f"nvr-{r}", name=f"第{r}主機", channels=32)
        base["recorders"][rec["id"]] = rec
        for ch in range(1, 26):
            cid = f"c{r}-{ch}"
            cams[cid] = dict(
                base["cameras"]["cam-a1"],
                id=cid,
                recorder=rec["id"],
                channel=ch,
                position=f"第{r}區{ch}號位置",
                address={"host": f"127.21.{r}.{ch}"},
            )
    base["cameras"].update(cams)
    inv = Inventory.model_validate(base)
    store = Store.open(f"sqlite:///{tmp_path}/big.db")
    start = local(10, 1)
    t_fill = time.monotonic()
    for day in range(31):
        batch = []
        for h in range(0, 24, 4):
            at = (start + dt.timedelta(days=day, hours=h)).astimezone(dt.UTC)
            for cid in cams:
                ch = int(cid.split("-")[1])
                bad = ch % 5 == 0 and day % 7 == ch % 7 and h == 8  # 5 lenses a recorder
                f = (Finding(FindingCode.PICTURE_DARK, "畫面過暗", cid),) if bad else ()
                batch.append(
                    CheckResult(
                        cid,
                        CheckKind.PICTURE,
                        Status.FAIL if bad else Status.OK,
                        "",
                        at,
                        findings=f,
                    )
                )
                batch.append(CheckResult(cid, CheckKind.HOST, Status.OK, "", at))
            for r in range(8):
                batch.append(CheckResult(f"nvr-{r}", CheckKind.HOST, Status.OK, "", at))
                batch.append(
                    CheckResult(
                        f"nvr-{r}",
                        CheckKind.RECORDING,
                        Status.OK,
                        "",
                        at,
                        values=RecordingValues(retention_days=40),
                    )
                )
        store.record_results(batch)
    t0, cpu0 = time.monotonic(), time.process_time()
    sheet = build_sheet(store, inv, "xuean", "2026-10", now=NOW)
    pdf = render_pdf(sheet)
    xlsx = render_xlsx(sheet)
    elapsed = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    store.close()
    print(f"fill {t0 - t_fill:.1f} s, build and render {elapsed:.1f} s ({cpu:.1f} s of CPU)")
    assert sum(1 for a in sheet.availability if a.kind == "鏡頭") == 200 + 5
    big = [r for r in sheet.rows if r.recorder_id.startswith("nvr-") and r.recorder_id != "nvr-a"]
    assert len(big) == 8 * 3
    assert all(r.picture is False for r in big if r.inspection_date.day != 31)
    assert all(
        "第3區5號位置鏡頭" in "".join(r.remarks)
        for r in big
        if r.recorder_id == "nvr-3" and r.inspection_date.day == 14
    )
    assert pdf.startswith(b"%PDF") and xlsx[:2] == b"PK"
    # about 3 s on an idle 2-core machine. CPU time, the work itself: a loaded CI machine
    # stretches the wall time by its load (10x at load 17), not the work
    assert cpu < 30, f"sheet for 200 cameras took {cpu:.1f} s of CPU ({elapsed:.1f} s)"


def test_period_without_records_says_so(store: Store, inv: Inventory) -> None:
    # the log starts on 10/01: in November only 11/01 has records, so the 11/25 row of
    # nvr-a has none at all
    nov = build_sheet(store, inv, "xuean", "2026-11", now=NOW)
    row = next(r for r in nov.rows if r.recorder_id == "nvr-a" and r.roc_date == "115/11/25")
    assert (row.host, row.recording, row.picture) == (None, None, None)
    assert any(r.startswith("本期無檢查紀錄") for r in row.remarks)
    assert not any("本期無法判定" in r for r in row.remarks)


@needs_poppler
def test_a_row_with_many_faults_continues_below(sheet: Sheet, tmp_path: Path) -> None:
    many = tuple(f"第{i}號位置鏡頭［畫面］：畫面過暗；10/0{i % 9 + 1} 08:00 起" for i in range(14))
    row = replace(sheet.rows[0], remarks=(sheet.rows[0].remarks[0], *many))
    big = replace(sheet, rows=(row, *sheet.rows[1:]))
    path = tmp_path / "many.pdf"
    path.write_bytes(render_pdf(big))
    flat = re.sub(r"\s+", "", _run("pdftotext", str(path), "-"))
    assert "…另8項，見本表後「備考（續）」" in flat
    assert "備考（續）：上表各列未能容納之故障紀錄" in flat
    for i in range(14):  # every lens is still named somewhere
        assert f"第{i}號位置鏡頭" in flat


def test_unit_without_recorders(store: Store) -> None:
    from tests.test_report_helpers import inventory_data

    data = inventory_data(as_file=False)
    data["units"]["empty"] = dict(data["units"]["library"], id="empty", name="總務處")
    inv = Inventory.model_validate(data)
    with pytest.raises(EmptyLogError, match=r"unit empty \(總務處\) has no recorders"):
        build_sheet(store, inv, "empty", "2026-10", now=NOW)
