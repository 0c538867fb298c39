"""The answers a person reads: per device, the three 附件四 answers derived the way the
sheet derives them, and the live view / plain lines rendered from them."""

from __future__ import annotations

import datetime as dt

from rich.console import Console

from camwatch.tui import (
    FiringAlert,
    LiveInfo,
    baseline_progress,
    check_table,
    device_answers,
    live_view,
    lookup_in,
    plain_line,
)
from inventory.models import Inventory
from probes.result import CheckKind, CheckResult, Status, values_from_json

H, R, P = CheckKind.HOST, CheckKind.RECORDING, CheckKind.PICTURE
AT = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC)


def res(dev: str, check: CheckKind, status: Status = Status.OK, reason: str = "正常",
        **values: object) -> CheckResult:
    return CheckResult(dev, check, status, reason, AT, values_from_json(check, values))


def healthy(inv: Inventory) -> list[CheckResult]:
    out = []
    for r in inv.recorders:
        out += [res(r, H), res(r, R)]
    for c, cam in inv.cameras.items():
        out += [res(c, P, learning=False, baseline_sharpness=100.0), res(c, R)]
        if cam.address is not None:
            out.append(res(c, H))
    return out


def test_camera_answers_come_from_its_recorder_when_it_has_none_of_its_own(
    small_inventory: Inventory,
) -> None:
    results = [res("dvr2", H), res("dvr2", R, Status.FAIL, "硬碟故障")]
    answers = {a.device: a for a in device_answers(small_inventory, lookup_in(results))}
    gate = answers["cam-gate"]  # analog, behind dvr2
    assert gate.kind == "camera"
    host = gate.checks[H]
    assert host is not None and host.status == Status.OK and "川堂主機" in host.reason
    rec = gate.checks[R]
    assert rec is not None and rec.status == Status.UNKNOWN  # the recorder's own fault
    assert gate.checks[P] is None  # never checked yet
    assert answers["cam-east"].checks[H] is None  # an IP camera answers for itself


def test_recorder_picture_answer_is_all_its_cameras(small_inventory: Inventory) -> None:
    results = healthy(small_inventory)
    answers = {a.device: a for a in device_answers(small_inventory, lookup_in(results))}
    pic = answers["nvr1"].checks[P]
    assert pic is not None and pic.status == Status.OK

    results.append(res("cam-west", P, Status.FAIL, "畫面模糊"))
    answers = {a.device: a for a in device_answers(small_inventory, lookup_in(results))}
    pic = answers["nvr1"].checks[P]
    assert pic is not None and pic.status == Status.FAIL
    assert "教學大樓1樓走廊西側鏡頭" in pic.reason and "畫面模糊" in pic.reason
    other = answers["dvr2"].checks[P]
    assert other is not None and other.status == Status.OK


def test_the_worst_of_two_results_for_the_same_check_wins(small_inventory: Inventory) -> None:
    results = [res("cam-east", H), res("cam-east", H, Status.FAIL, "訊號遺失")]
    answers = {a.device: a for a in device_answers(small_inventory, lookup_in(results))}
    host = answers["cam-east"].checks[H]
    assert host is not None and host.status == Status.FAIL


def test_json_shape(small_inventory: Inventory) -> None:
    out = [a.to_json() for a in device_answers(small_inventory, lookup_in([]), ["nvr1"])]
    assert out == [{"device": "nvr1", "kind": "recorder", "checks": {
        "host": {"status": "unknown", "reason": "尚未檢查", "values": {}},
        "recording": {"status": "unknown", "reason": "尚未檢查", "values": {}},
        "picture": {"status": "unknown", "reason": "尚未檢查", "values": {}},
    }}]


def test_views_render_answers_failures_alerts_and_learning(small_inventory: Inventory) -> None:
    results = [r for r in healthy(small_inventory) if (r.device, r.check) != ("cam-gate", P)]
    results.append(res("cam-west", P, Status.FAIL, "畫面模糊", learning=False))
    results.append(res("cam-gate", P, Status.OK, "基準學習中（2/6）", learning=True))
    lookup = lookup_in(results)
    assert baseline_progress(small_inventory, lookup) == (3, 4)

    console = Console(record=True, width=160, color_system=None)
    console.print(check_table(device_answers(small_inventory, lookup)))
    table = console.export_text()
    assert "否" in table and "畫面模糊" in table and "是" in table

    info = LiveInfo(title="demo", urls=[("metrics", "http://127.0.0.1:1/metrics")],
                    sheets_dir="/tmp/x", events=["10 s  鏡頭失焦"],
                    alerts=[FiringAlert("PictureBlurred", "cam-west", "教學大樓1樓走廊西側鏡頭",
                                        AT)], elapsed_s=12)
    console = Console(record=True, width=160, color_system=None)
    console.print(live_view(small_inventory, lookup, info))
    view = console.export_text()
    for text in ("總務處", "教學大樓1樓主機", "cam-west", "畫面模糊", "PictureBlurred",
                 "3/4", "鏡頭失焦", "/tmp/x", "監視主機是否正常運作"):
        assert text in view, text
    line = plain_line(small_inventory, lookup, info)
    assert "failing 1" in line and "alerts 1" in line and "baselines 3/4" in line
