"""`camwatch inventory validate|export`, through click and as a real process."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from openpyxl import load_workbook

from camwatch.cli import main
from inventory.loader import load_inventory
from inventory.models import CameraKind, Protocol, RecorderKind, Vendor
from reports.registry import CAMERA_COLUMNS, RECORDER_COLUMNS, UNIT_COLUMNS
from tests.test_inventory_loader import BASE, line_of, write

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "inventory" / "example-campus.yaml"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


# ------------------------------------------------------------------ the example campus

def test_example_campus_validates_with_a_summary() -> None:
    code, out, err = run("inventory", "validate", str(EXAMPLE))
    assert code == 0, err
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    kinds = Counter(c["kind"] for c in raw["cameras"])
    assert f"cameras (攝影機): {len(raw['cameras'])} ({kinds['ip']} ip" in out
    assert f"{kinds['analog']} analog" in out
    assert f"recorders (監視主機): {len(raw['recorders'])}" in out
    assert "臺北市立南港高級工業職業學校" in out


def test_example_campus_is_the_campus_the_team_agreed_on() -> None:
    inv = load_inventory([EXAMPLE])
    assert inv.campus.id == "nkvs"
    assert 100 <= len(inv.cameras) <= 140
    assert len(inv.recorders) == 8
    assert {u.name for u in inv.units.values()} >= {
        "學務處(學安室)", "圖書館", "教務處(特教組)", "機械科", "電機科"}
    kinds = Counter(r.kind for r in inv.recorders.values())
    assert kinds[RecorderKind.DVR] >= 2
    assert {r.vendor for r in inv.recorders.values()} >= {
        Vendor.HIKVISION, Vendor.DAHUA, Vendor.GENERIC, Vendor.SYNOLOGY}
    for rec in inv.recorders.values():
        if rec.kind == RecorderKind.DVR:
            assert {c.kind for c in inv.cameras_of(rec.id)} == {CameraKind.ANALOG}
    order = list(inv.recorders)
    for r, rec in enumerate(order, start=1):
        a = inv.recorders[rec].address
        assert (a.host, a.http_port, a.rtsp_port, a.snmp_port) == (
            f"127.20.{r}.1", 18080, 18554, 18161)
        creds = inv.recorders[rec].credentials
        assert creds is not None and creds.password == "${CAMWATCH_DEMO_NVR_PASSWORD}"
        snmp = inv.recorders[rec].snmp
        if Protocol.SNMP in inv.recorders[rec].protocols:
            assert snmp is not None and snmp.community == "${CAMWATCH_DEMO_SNMP_COMMUNITY}"
        for cam in inv.cameras_of(rec):
            if cam.address is not None:
                assert cam.address.host == f"127.21.{r}.{cam.channel}"
                assert (cam.address.http_port, cam.address.rtsp_port) == (18080, 18554)
                assert cam.credentials is not None
                assert cam.credentials.password == "${CAMWATCH_DEMO_CAM_PASSWORD}"
    ip = [c for c in inv.cameras.values() if c.kind == CameraKind.IP]
    assert any(c.address is None for c in ip), "some IP cameras are seen only via the recorder"
    assert any(Protocol.RTSP in c.protocols for c in ip)
    overridden = [r for r in inv.recorders.values() if r.retention is not None]
    assert len(overridden) == 1
    assert (inv.policy.retention.min_days, inv.policy.retention.max_days) == (30, 365)
    assert len(inv.policy.legal_holds) == 1
    pn = [c.property_number for c in inv.cameras.values()]
    assert all(p and re.fullmatch(r"\d{7}-\d{2}-\d{6}", p) for p in pn)
    assert len(set(pn)) == len(pn)


# ------------------------------------------------------------------ broken inventories

def test_validate_broken_prints_file_line_and_exits_1(tmp_path: Path) -> None:
    text = BASE.replace("    channel: 2", "    channel: 9")
    path = write(tmp_path, text)
    code, out, err = run("inventory", "validate", str(path))
    assert code == 1
    assert out == ""
    line = line_of(text, "channel: 9")
    assert (f"{path}:{line}: cameras[cam-2].channel: channel 9 is beyond the 4 channels of "
            "recorder 'nvr-1' (use 1..4") in err
    assert "1 problem in 1 file" in err
    assert "Traceback" not in out + err


def test_validate_clear_password_never_printed(tmp_path: Path) -> None:
    secret = "pa55-w0rd-in-clear"
    path = write(tmp_path, BASE.replace('"${NVR_PASSWORD}"', secret))
    code, out, err = run("inventory", "validate", str(path))
    assert code == 1
    assert "credentials.password: the password is written in clear" in err
    assert secret not in out + err


def test_validate_needs_a_path() -> None:
    code, _, err = run("inventory", "validate")
    assert code == 2
    assert "PATH" in err


def test_validate_as_a_process_no_traceback(tmp_path: Path) -> None:
    """The installed entry point behaves as the click runner does: lines, exit 1."""
    text = BASE.replace("    kind: ip\n", "    kind: ip\n    colour: red\n")
    path = write(tmp_path, text)
    proc = subprocess.run(
        [sys.executable, "-m", "camwatch", "inventory", "validate", str(path)],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    line = line_of(text, "colour: red")
    assert f"{path}:{line}: cameras[cam-1].colour: unknown key 'colour'" in proc.stderr

    ok = subprocess.run(
        [sys.executable, "-m", "camwatch", "inventory", "validate", str(EXAMPLE)],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "inventory OK" in ok.stdout


def test_validate_broken_yaml_with_the_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "camwatch"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "camwatch"]
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"campus:\n  id: x\n  name: [unclosed\nunits: []\n")
    proc = subprocess.run(
        [*cmd, "inventory", "validate", str(path)],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert re.search(rf"^{re.escape(str(path))}:\d+: YAML syntax error", proc.stderr, re.M)


# ------------------------------------------------------------------ export

def test_export_xlsx_reads_back_with_chinese_headers(tmp_path: Path) -> None:
    out = tmp_path / "清冊.xlsx"
    code, stdout, err = run("inventory", "export", str(EXAMPLE), "--format", "xlsx",
                            "-o", str(out))
    assert code == 0, err
    inv = load_inventory([EXAMPLE])
    wb = load_workbook(out)
    assert wb.sheetnames == ["攝影機清冊", "監視主機", "業管單位彙總"]
    ws = wb["攝影機清冊"]
    rows = list(ws.iter_rows(values_only=True))
    assert list(rows[0]) == CAMERA_COLUMNS
    for header in ("業管單位", "管理人職稱", "管理人姓名", "聯絡電話", "設置目的", "設置期間",
                   "監視區域", "設備種類", "設置地點(鏡頭位置)", "所屬主機", "機房", "財產編號"):
        assert header in rows[0]
    body = rows[1:]
    assert len(body) == len(inv.cameras)
    col = {h: i for i, h in enumerate(CAMERA_COLUMNS)}
    kinds = Counter(r[col["設備種類"]] for r in body)
    assert kinds == {"網路攝影機": sum(c.kind == CameraKind.IP for c in inv.cameras.values()),
                     "類比攝影機": sum(c.kind == CameraKind.ANALOG for c in inv.cameras.values())}
    by_id = {r[col["設備編號"]]: r for r in body}
    cam = inv.cameras["lib-01"]
    row = by_id["lib-01"]
    assert row[col["業管單位"]] == "圖書館"
    assert row[col["設置地點(鏡頭位置)"]] == cam.position
    assert row[col["財產編號"]] == cam.property_number
    assert row[col["機房"]] == inv.machine_rooms[inv.recorders[cam.recorder].machine_room].name
    assert ws.freeze_panes == "A2"
    assert ws.column_dimensions["J"].width > 10

    rec_rows = list(wb["監視主機"].iter_rows(values_only=True))
    assert list(rec_rows[0]) == RECORDER_COLUMNS and len(rec_rows) - 1 == len(inv.recorders)
    unit_rows = list(wb["業管單位彙總"].iter_rows(values_only=True))
    assert list(unit_rows[0]) == UNIT_COLUMNS and len(unit_rows) - 1 == len(inv.units)
    assert sum(r[UNIT_COLUMNS.index("攝影機合計")] for r in unit_rows[1:]) == len(inv.cameras)
    assert "120 cameras" in stdout or f"{len(inv.cameras)} cameras" in stdout


def test_export_csv_has_bom_and_one_row_per_camera(tmp_path: Path) -> None:
    out = tmp_path / "registry.csv"
    code, _, err = run("inventory", "export", str(EXAMPLE), "-o", str(out))
    assert code == 0, err
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == CAMERA_COLUMNS
    assert len(rows) - 1 == len(load_inventory([EXAMPLE]).cameras)


def test_export_keeps_formula_like_text_as_text(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("position: 教學大樓1樓走廊東側",
                                        "position: \"=HYPERLINK(1)\""))
    xlsx, csv_path = tmp_path / "r.xlsx", tmp_path / "r.csv"
    assert run("inventory", "export", str(path), "-o", str(xlsx))[0] == 0
    assert run("inventory", "export", str(path), "--format", "csv", "-o", str(csv_path))[0] == 0
    ws = load_workbook(xlsx)["攝影機清冊"]
    cell = ws.cell(row=2, column=CAMERA_COLUMNS.index("設置地點(鏡頭位置)") + 1)
    assert cell.data_type == "s" and cell.value == "=HYPERLINK(1)"
    assert "'=HYPERLINK(1)" in csv_path.read_text(encoding="utf-8-sig")


def test_export_of_a_broken_inventory_writes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("unit: xuean", "unit: nobody"))
    out = tmp_path / "r.xlsx"
    code, _, err = run("inventory", "export", str(path), "-o", str(out))
    assert code == 1
    assert "recorders[nvr-1].unit" in err
    assert not out.exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_export_to_an_unwritable_place_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "file-not-dir"
    target.write_text("x")
    code, _, err = run("inventory", "export", str(EXAMPLE), "-o", str(target / "r.xlsx"))
    assert code == 1
    assert "cannot write" in err and "Traceback" not in err


def test_every_vendor_has_its_name_in_the_registry() -> None:
    # 附件三's 廠牌 column: a vendor added to the inventory model needs its written name
    from inventory.models import Vendor
    from reports.registry import VENDOR

    assert {v.value for v in Vendor} <= set(VENDOR), set(Vendor) - set(VENDOR)
