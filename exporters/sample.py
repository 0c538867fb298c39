"""A tiny campus and a set of check results, for tests and documentation of the outputs
(metrics, landing page, alerts) without a simulator or probes. Not used by the service."""

from __future__ import annotations

import datetime as dt

from inventory.models import Inventory
from probes.result import CheckKind, CheckResult, Finding, FindingCode, Status
from probes.values import DiskValues, HostValues, PictureValues, RecordingValues


def sample_inventory() -> Inventory:
    person = {"title": "組長", "name": "王小明"}
    return Inventory.model_validate({
        "campus": {"id": "demo", "name": "示範國民小學"},
        "units": {
            "general": {"id": "general", "name": "總務處", "manager": person, "head": person},
            "student": {"id": "student", "name": "學務處(學安室)", "manager": person,
                        "head": person},
        },
        "buildings": {"teach": {"id": "teach", "name": "教學大樓", "floors": ["1F"]}},
        "machine_rooms": {
            "room1": {"id": "room1", "name": "教學大樓1樓機房", "building": "teach"},
        },
        "recorders": {
            "nvr1": {"id": "nvr1", "name": "教學大樓1樓主機", "unit": "general",
                     "machine_room": "room1", "protocols": ["onvif"], "model": "DS-7608NI",
                     "address": {"host": "127.20.1.1", "http_port": 18080},
                     "credentials": {"username": "admin",
                                     "password": "${CAMWATCH_DEMO_NVR_PASSWORD}"},
                     "channels": 8},
            "dvr2": {"id": "dvr2", "name": "川堂主機", "unit": "student", "kind": "dvr",
                     "machine_room": "room1", "protocols": ["onvif"],
                     "address": {"host": "127.20.2.1", "http_port": 18080},
                     "credentials": {"username": "admin",
                                     "password": "${CAMWATCH_DEMO_NVR_PASSWORD}"},
                     "channels": 4, "retention": {"min_days": 30, "max_days": 90}},
        },
        "cameras": {
            "cam-east": {"id": "cam-east", "name": "1樓走廊東側", "kind": "ip",
                         "recorder": "nvr1", "channel": 1,
                         "address": {"host": "127.21.1.1", "http_port": 18080},
                         "credentials": {"username": "admin",
                                         "password": "${CAMWATCH_DEMO_CAM_PASSWORD}"},
                         "location": {"building": "teach", "floor": "1F", "area": "走廊東側"},
                         "position": "教學大樓1樓走廊東側"},
            "cam-gate": {"id": "cam-gate", "name": "川堂", "kind": "analog",
                         "recorder": "dvr2", "channel": 1,
                         "location": {"building": "teach", "floor": "1F", "area": "川堂"},
                         "position": "教學大樓1樓川堂"},
        },
    })


AT = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC)


def sample_results(at: dt.datetime = AT) -> list[CheckResult]:
    """nvr1 healthy except disk 2; dvr2 fine; cam-east blurred; cam-gate unknown picture."""
    return [
        CheckResult("nvr1", CheckKind.HOST, Status.OK, "主機正常", at,
                    HostValues(up=True, uptime_s=86400.0, clock_offset_s=1.5, model="DS-7608NI",
                               firmware="V4.30"), driver="onvif", duration_s=0.2),
        CheckResult("nvr1", CheckKind.RECORDING, Status.FAIL, "硬碟 2 故障", at,
                    RecordingValues(newest_age_s=12.0, retention_days=31.0, disks=(
                        DiskValues("1", ok=True, free_bytes=10**12, capacity_bytes=4 * 10**12),
                        DiskValues("2", ok=False, free_bytes=0))),
                    (Finding(FindingCode.DISK_FAILED, "硬碟 2 故障", "2"),), driver="isapi",
                    duration_s=0.4),
        CheckResult("dvr2", CheckKind.HOST, Status.OK, "主機正常", at,
                    HostValues(up=True, uptime_s=3600, clock_offset_s=-0.5), driver="onvif"),
        CheckResult("dvr2", CheckKind.RECORDING, Status.OK, "錄影正常", at,
                    RecordingValues(newest_age_s=30.0, retention_days=45.0), driver="onvif"),
        CheckResult("cam-east", CheckKind.HOST, Status.OK, "攝影機正常", at,
                    HostValues(up=True, uptime_s=7200.0, clock_offset_s=0.2), driver="onvif"),
        CheckResult("cam-east", CheckKind.PICTURE, Status.FAIL, "畫面模糊", at,
                    PictureValues(sharpness=12.5, baseline_sharpness=410.0, brightness=120.0,
                                  verdict="blurred"),
                    (Finding(FindingCode.PICTURE_BLURRED, "畫面模糊（清晰度 12 低於基準 410）"),),
                    driver="frames", duration_s=0.8),
        CheckResult("cam-gate", CheckKind.PICTURE, Status.UNKNOWN, "無法取得畫面", at,
                    driver="frames"),
    ]
