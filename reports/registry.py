"""The installation registry 學務處(學安室) keeps (附件三 5(一)), exported from the inventory.

One row per camera with its unit's manager (業管單位, 職稱, 姓名, 電話), purpose, period
and area watched, the kind of device (網路攝影機 / 類比攝影機), where it is, the recorder
and machine room it records to, and its property number (財產編號). The XLSX has two
more sheets: the recorders (監視主機) and a per-unit summary with the device counts.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import unicodedata
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Literal

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from camwatch.clock import default_clock, local_today
from inventory.models import Camera, CameraKind, Inventory, Recorder, RecorderKind

Format = Literal["xlsx", "csv"]

CAMERA_SHEET = "攝影機清冊"
RECORDER_SHEET = "監視主機"
UNIT_SHEET = "業管單位彙總"

CAMERA_COLUMNS = [
    "序號", "業管單位", "管理人職稱", "管理人姓名", "聯絡電話", "設置目的", "設置期間",
    "監視區域", "設備種類", "設置地點(鏡頭位置)", "建築物", "樓層", "所屬主機", "主機頻道",
    "機房", "財產編號", "設備編號",
]
RECORDER_COLUMNS = [
    "序號", "業管單位", "主機名稱", "設備編號", "種類", "廠牌", "型號", "機房", "頻道數",
    "網路攝影機數", "類比攝影機數", "錄影保存日數", "法定保存", "財產編號",
]
UNIT_COLUMNS = [
    "業管單位", "管理人職稱", "管理人姓名", "聯絡電話", "單位主管職稱", "單位主管姓名",
    "設置目的", "監視主機數", "網路攝影機數", "類比攝影機數", "攝影機合計", "機房",
]

CAMERA_KIND = {CameraKind.IP: "網路攝影機", CameraKind.ANALOG: "類比攝影機"}
RECORDER_KIND = {RecorderKind.NVR: "NVR 網路錄影主機", RecorderKind.DVR: "DVR 數位錄影主機"}
VENDOR = {"hikvision": "海康威視 Hikvision", "dahua": "大華 Dahua", "axis": "Axis",
          "synology": "群暉 Synology", "generic": "其他 (ONVIF)"}

Row = list[str | int]


def _ordered_cameras(inv: Inventory) -> list[Camera]:
    unit_order = {u: i for i, u in enumerate(inv.units)}
    rec_order = {r: i for i, r in enumerate(inv.recorders)}

    def key(c: Camera) -> tuple[int, int, int]:
        rec = inv.recorders[c.recorder]
        return unit_order.get(rec.unit, 0), rec_order.get(rec.id, 0), c.channel

    return sorted(inv.cameras.values(), key=key)


def _ordered_recorders(inv: Inventory) -> list[Recorder]:
    unit_order = {u: i for i, u in enumerate(inv.units)}
    return sorted(inv.recorders.values(), key=lambda r: unit_order.get(r.unit, 0))


def camera_rows(inv: Inventory) -> list[Row]:
    """One row per camera, in CAMERA_COLUMNS order."""
    rows: list[Row] = []
    for n, cam in enumerate(_ordered_cameras(inv), start=1):
        rec = inv.recorders[cam.recorder]
        unit = inv.units[rec.unit]
        building = inv.buildings.get(cam.location.building)
        room = inv.machine_rooms.get(rec.machine_room)
        rows.append([
            n,
            unit.name,
            unit.manager.title,
            unit.manager.name,
            unit.manager.phone or "",
            cam.purpose or unit.purpose or "",
            cam.period or "",
            cam.coverage or cam.location.area,
            CAMERA_KIND[cam.kind],
            cam.position,
            building.name if building else cam.location.building,
            cam.location.floor,
            f"{rec.name} ({rec.id})",
            cam.channel,
            room.name if room else rec.machine_room,
            cam.property_number or "",
            cam.id,
        ])
    return rows


def recorder_rows(inv: Inventory, today: date | None = None) -> list[Row]:
    """One row per recorder, in RECORDER_COLUMNS order."""
    on = today or local_today(default_clock(), inv.campus.timezone)
    rows: list[Row] = []
    for n, rec in enumerate(_ordered_recorders(inv), start=1):
        cams = inv.cameras_of(rec.id)
        keep = inv.retention_for(rec.id)
        hold = inv.legal_hold_for(rec.id, on)
        room = inv.machine_rooms.get(rec.machine_room)
        rows.append([
            n,
            inv.units[rec.unit].name,
            rec.name,
            rec.id,
            RECORDER_KIND[rec.kind],
            VENDOR.get(rec.vendor.value, rec.vendor.value),
            rec.model or "",
            room.name if room else rec.machine_room,
            rec.channels,
            sum(1 for c in cams if c.kind == CameraKind.IP),
            sum(1 for c in cams if c.kind == CameraKind.ANALOG),
            f"{keep.min_days}–{keep.max_days} 日",
            f"保存至 {hold.until.isoformat()}：{hold.reason}" if hold else "",
            rec.property_number or "",
        ])
    return rows


def unit_rows(inv: Inventory) -> list[Row]:
    """One row per unit (業管單位), in UNIT_COLUMNS order."""
    rows: list[Row] = []
    for unit in inv.units.values():
        recs = [r for r in inv.recorders.values() if r.unit == unit.id]
        cams = [c for r in recs for c in inv.cameras_of(r.id)]
        ip = sum(1 for c in cams if c.kind == CameraKind.IP)
        rooms = dict.fromkeys(
            (inv.machine_rooms[r.machine_room].name if r.machine_room in inv.machine_rooms
             else r.machine_room) for r in recs)
        rows.append([
            unit.name,
            unit.manager.title,
            unit.manager.name,
            unit.manager.phone or "",
            unit.head.title,
            unit.head.name,
            unit.purpose or "",
            len(recs),
            ip,
            len(cams) - ip,
            len(cams),
            "、".join(rooms),
        ])
    return rows


def _width(value: object) -> int:
    text = str(value)
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _csv_cell(value: str | int) -> str | int:
    # A text starting like a formula would be run as one by a spreadsheet program.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _fill_sheet(ws: Worksheet, title: str, headers: Sequence[str], rows: list[Row]) -> None:
    head_font = Font(bold=True)
    head_fill = PatternFill("solid", fgColor="DDEBF7")
    ws.append(list(headers))
    for cell in ws[1]:
        cell.font = head_font
        cell.fill = head_fill
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    for row in rows:
        ws.append(row)
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # text, never a formula
    for i, header in enumerate(headers, start=1):
        widest = max([_width(header), *(_width(r[i - 1]) for r in rows)])
        ws.column_dimensions[get_column_letter(i)].width = min(max(widest + 2, 6), 48)
    ws.freeze_panes = "A2"
    if rows:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{len(rows) + 1}"
    ws.print_title_rows = "1:1"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.oddHeader.center.text = title
    ws.oddFooter.center.text = "第 &P 頁，共 &N 頁"


def _title(inv: Inventory, what: str) -> str:
    return f"{inv.campus.name} 監視系統設置{what}（附件三 5(一)）"


def build_workbook(inv: Inventory, today: date | None = None) -> Workbook:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = CAMERA_SHEET
    _fill_sheet(ws, _title(inv, "清冊"), CAMERA_COLUMNS, camera_rows(inv))
    _fill_sheet(wb.create_sheet(RECORDER_SHEET), _title(inv, "主機清冊"), RECORDER_COLUMNS,
                recorder_rows(inv, today))
    _fill_sheet(wb.create_sheet(UNIT_SHEET), _title(inv, "單位彙總"), UNIT_COLUMNS,
                unit_rows(inv))
    wb.properties.title = _title(inv, "清冊")
    wb.properties.creator = "camwatch"
    return wb


def csv_text(inv: Inventory) -> str:
    """The camera registry as CSV text (one header row, one row per camera)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CAMERA_COLUMNS)
    for row in camera_rows(inv):
        writer.writerow([_csv_cell(v) for v in row])
    return buf.getvalue()


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write to a temporary file beside `path`, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def export_registry(inv: Inventory, path: Path, fmt: Format, today: date | None = None) -> int:
    """Write the registry to `path` as xlsx or csv (UTF-8 with BOM, so Excel reads the
    Chinese right). Returns the number of camera rows written."""
    if fmt == "xlsx":
        wb = build_workbook(inv, today)
        _write_atomic(path, lambda p: wb.save(p))
    else:
        data = csv_text(inv).encode("utf-8-sig")
        _write_atomic(path, lambda p: p.write_bytes(data))
    return len(inv.cameras)
