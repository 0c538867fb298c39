"""Shared builders for the report tests: a small unit and a month of realistic results.

Scenario, October 2026 (Asia/Taipei), results every hour:
- cam-a2 (教學大樓1樓走廊東側) picture blurred 10/03 08:00-14:00, alert fired and resolved
- nvr-a recording stopped 10/20 02:00 - 10/21 05:00, alert fired and resolved
- cam-b1 (活動中心2樓樓梯口, analog) covered 10/14 20:00 - 10/15 03:00 (across an inspection)
- dvr-b down from 10/30 22:00, still down (its recording and pictures unknown meanwhile)
- retention: nvr-a keeps 45 days (ok), dvr-b 20 days (too short)
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from camwatch.store import Store
from inventory.models import Inventory
from probes.result import CheckKind, CheckResult, Finding, FindingCode, Status
from probes.values import HostValues, PictureValues, RecordingValues

TZ = ZoneInfo("Asia/Taipei")
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=TZ)


def local(month: int, day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=TZ)


def inventory() -> Inventory:
    return Inventory.model_validate(inventory_data(as_file=False))


def inventory_data(*, as_file: bool = True) -> dict:
    """The inventory as a YAML file holds it (lists) or as the merged model (dicts by id)."""
    person = {"title": "主任教官", "name": "林建宏"}
    head = {"title": "學務主任", "name": "陳怡君"}
    cred = {"username": "admin", "password": "${CAMWATCH_DEMO_NVR_PASSWORD}"}

    def cam(cid: str, rec: str, ch: int, position: str, kind: str = "ip") -> dict:
        c: dict = {
            "id": cid,
            "name": cid,
            "kind": kind,
            "recorder": rec,
            "channel": ch,
            "location": {"building": "teach", "floor": "1F", "area": position},
            "position": position,
        }
        if kind == "ip":
            c["address"] = {"host": f"127.21.1.{ch if rec == 'nvr-a' else 10 + ch}"}
            c["credentials"] = cred
        return c

    def rec(rid: str, name: str, unit: str, n: int, **extra: object) -> dict:
        return {
            "id": rid,
            "name": name,
            "unit": unit,
            "machine_room": "mr1",
            "protocols": ["onvif"],
            "address": {"host": f"127.20.{n}.1"},
            "credentials": cred,
            "channels": 8,
            **extra,
        }

    units = [
        {"id": "xuean", "name": "學務處(學安室)", "manager": person, "head": head},
        {"id": "library", "name": "圖書館", "manager": person, "head": head},
    ]
    buildings = [{"id": "teach", "name": "教學大樓", "floors": ["1F"]}]
    rooms = [{"id": "mr1", "name": "行政大樓1樓機房", "building": "teach"}]
    recorders = [
        rec("nvr-a", "教學大樓1樓主機", "xuean", 1, property_number="3140101-03-0001"),
        rec("dvr-b", "活動中心主機", "xuean", 2, kind="dvr"),
        rec("nvr-lib", "圖書館主機", "library", 3),
    ]
    cameras = [
        cam("cam-a1", "nvr-a", 1, "教學大樓1樓川堂"),
        cam("cam-a2", "nvr-a", 2, "教學大樓1樓走廊東側"),
        cam("cam-a3", "nvr-a", 3, "教學大樓1樓走廊西側"),
        cam("cam-b1", "dvr-b", 1, "活動中心2樓樓梯口", "analog"),
        cam("cam-b2", "dvr-b", 2, "活動中心1樓大門", "analog"),
        cam("cam-l1", "nvr-lib", 1, "圖書館1樓櫃台"),
    ]
    campus = {"id": "nkvs", "name": "臺北市立南港高級工業職業學校", "timezone": "Asia/Taipei"}
    policy = {
        "legal_holds": [{"recorder": "nvr-lib", "reason": "校安事件調查", "until": "2027-03-31"}]
    }
    if as_file:
        return {
            "campus": campus,
            "policy": policy,
            "units": units,
            "sites": {"buildings": buildings, "machine_rooms": rooms},
            "recorders": recorders,
            "cameras": cameras,
        }

    def by_id(items: list[dict]) -> dict:
        return {i["id"]: i for i in items}

    return {
        "campus": campus,
        "policy": policy,
        "units": by_id(units),
        "buildings": by_id(buildings),
        "machine_rooms": by_id(rooms),
        "recorders": by_id(recorders),
        "cameras": by_id(cameras),
    }


def _within(ts: dt.datetime, a: dt.datetime, b: dt.datetime) -> bool:
    return a <= ts < b


def month_results(inv: Inventory, start: dt.datetime, end: dt.datetime) -> list[CheckResult]:
    """Hourly results of every check of the unit's devices over [start, end)."""
    out: list[CheckResult] = []
    blur = (local(10, 3, 8), local(10, 3, 14))
    rec_stop = (local(10, 20, 2), local(10, 21, 5))
    covered = (local(10, 14, 20), local(10, 15, 3))
    down_from = local(10, 30, 22)
    ts = start
    while ts < end:
        at = ts.astimezone(dt.UTC)
        for rec_id in ("nvr-a", "dvr-b", "nvr-lib"):
            down = rec_id == "dvr-b" and ts >= down_from
            if down:
                out.append(
                    CheckResult(
                        rec_id,
                        CheckKind.HOST,
                        Status.FAIL,
                        "主機無回應（逾時 10 秒）",
                        at,
                        findings=(
                            Finding(FindingCode.RECORDER_DOWN, "主機無回應（逾時 10 秒）", rec_id),
                        ),
                    )
                )
                out.append(
                    CheckResult(
                        rec_id, CheckKind.RECORDING, Status.UNKNOWN, "主機無回應，無法判定錄影", at
                    )
                )
            else:
                out.append(
                    CheckResult(
                        rec_id, CheckKind.HOST, Status.OK, "正常", at,
                        values=HostValues(uptime_s=1000),
                    )
                )
                stopped = rec_id == "nvr-a" and _within(ts, *rec_stop)
                days = {"nvr-a": 45.0, "dvr-b": 20.0, "nvr-lib": 400.0}[rec_id]
                if stopped:
                    out.append(
                        CheckResult(
                            rec_id,
                            CheckKind.RECORDING,
                            Status.FAIL,
                            "錄影已停止",
                            at,
                            values=RecordingValues(
                                retention_days=days, retention_max_days=days + 15
                            ),
                            findings=(
                                Finding(
                                    FindingCode.RECORDING_STOPPED,
                                    "錄影已停止（最新影像逾 10 分鐘）",
                                ),
                            ),
                        )
                    )
                else:
                    out.append(
                        CheckResult(
                            rec_id,
                            CheckKind.RECORDING,
                            Status.OK,
                            "錄影正常",
                            at,
                            values=RecordingValues(
                                retention_days=days, retention_max_days=days + 15
                            ),
                        )
                    )
            for cam in inv.cameras_of(rec_id):
                if down:
                    out.append(
                        CheckResult(
                            cam.id,
                            CheckKind.PICTURE,
                            Status.UNKNOWN,
                            "主機無回應，無法取得畫面",
                            at,
                        )
                    )
                    continue
                if cam.address is not None:
                    out.append(CheckResult(cam.id, CheckKind.HOST, Status.OK, "正常", at))
                if cam.id == "cam-a2" and _within(ts, *blur):
                    out.append(
                        CheckResult(
                            cam.id,
                            CheckKind.PICTURE,
                            Status.FAIL,
                            "畫面模糊",
                            at,
                            values=PictureValues(sharpness=12.5),
                            findings=(
                                Finding(FindingCode.PICTURE_BLURRED, "畫面模糊（失焦）", cam.id),
                            ),
                        )
                    )
                elif cam.id == "cam-b1" and _within(ts, *covered):
                    out.append(
                        CheckResult(
                            cam.id,
                            CheckKind.PICTURE,
                            Status.FAIL,
                            "鏡頭遭遮蔽",
                            at,
                            findings=(Finding(FindingCode.PICTURE_COVERED, "鏡頭遭遮蔽", cam.id),),
                        )
                    )
                else:
                    out.append(
                        CheckResult(
                            cam.id,
                            CheckKind.PICTURE,
                            Status.OK,
                            "畫面清晰",
                            at,
                            values=PictureValues(sharpness=250.0),
                        )
                    )
        ts += dt.timedelta(hours=1)
    return out


def fill(store: Store, inv: Inventory) -> None:
    """October 2026 and the first day of November, one batch per day, plus alerts."""
    day = local(10, 1)
    while day < local(11, 2):
        store.record_results(month_results(inv, day, day + dt.timedelta(days=1)))
        day += dt.timedelta(days=1)
    store.record_alert_event("fired", "CameraPictureBlurred", "cam-a2", {}, local(10, 3, 9))
    store.record_alert_event("resolved", "CameraPictureBlurred", "cam-a2", {}, local(10, 3, 14))
    store.record_alert_event("fired", "RecordingStopped", "nvr-a", {}, local(10, 20, 3))
    store.record_alert_event("resolved", "RecordingStopped", "nvr-a", {}, local(10, 21, 5))
    store.record_alert_event("fired", "RecorderDown", "dvr-b", {}, local(10, 30, 23))
