"""The pure judgements of the host and recording checks, without a network: thresholds,
memory between runs, and the zh-TW reasons custodians read."""

from __future__ import annotations

import datetime as dt

import pytest

from inventory.models import (
    Address,
    Camera,
    CameraKind,
    Credentials,
    Location,
    Protocol,
    Recorder,
)
from probes.drivers.http import DeviceError
from probes.drivers.onvif import RecordingInfo, RecordingJob, onvif_channels
from probes.drivers.snmp import SnmpDriver
from probes.drivers.table import DRIVERS
from probes.facts import (
    ChannelRecording,
    ChannelSignal,
    DeviceInfo,
    DeviceTime,
    Disk,
    DiskStatus,
    HostFacts,
)
from probes.host import (
    Gathered,
    Target,
    fmt_duration,
    judge_host,
    judge_signals,
    last_resort_port,
)
from probes.recording import judge_channel, judge_disks, judge_retention
from probes.result import FindingCode, Status
from probes.values import RecordingValues

NOW = dt.datetime(2026, 5, 4, 10, 0, tzinfo=dt.UTC)
REC = Recorder(
    id="nvr-1",
    name="主機",
    unit="u",
    machine_room="m",
    protocols=[Protocol.ONVIF],
    address=Address(host="127.0.0.1"),
    credentials=Credentials(username="admin", password="${CAMWATCH_TEST_UNUSED}"),
    channels=4,
)
TARGET = Target("nvr-1", True, REC.address, [Protocol.ONVIF], None, recorder=REC)


def cam(n: int, kind: CameraKind = CameraKind.ANALOG) -> Camera:
    return Camera(
        id=f"cam-{n}",
        name=f"攝影機{n}",
        kind=kind,
        recorder="nvr-1",
        channel=n,
        location=Location(building="b", floor="1樓", area="走廊東側"),
        position="教學大樓1樓走廊東側",
    )


def gathered(uptime: float | None = 1000.0, offset: float | None = 0.2, fw: str = "V1") -> Gathered:
    info = DeviceInfo(manufacturer="X", model="M", firmware=fw, serial="S1")
    return Gathered(
        facts=HostFacts(info=info, time=DeviceTime(NOW), uptime_s=uptime),
        driver="isapi",
        clock_offset_s=offset,
        clock_raw="2026-05-04T10:00:00Z",
    )


def test_first_sighting_records_and_is_ok() -> None:
    memory: dict[str, object] = {}
    v = judge_host(TARGET, gathered(), memory, 30, NOW)
    assert v.status == Status.OK and not v.findings
    assert memory["firmware"] == "V1" and memory["uptime_s"] == 1000.0
    assert v.values.uptime_s == 1000.0 and v.values.serial == "S1"


def test_reboot_clock_drift_and_firmware_change() -> None:
    memory: dict[str, object] = {"uptime_s": 90_000.0, "firmware": "V0", "serial": "S1"}
    v = judge_host(TARGET, gathered(uptime=120.0, offset=-95.0), memory, 30, NOW)
    assert v.status == Status.FAIL
    found = {f.code for f in v.findings}
    assert found == {
        FindingCode.DEVICE_REBOOTED,
        FindingCode.CLOCK_DRIFT,
        FindingCode.FIRMWARE_CHANGED,
    }
    assert "重新開機" in v.reason and "時間慢 95 秒" in v.reason
    # uptime that keeps growing is no reboot; a small offset is no drift
    v2 = judge_host(TARGET, gathered(uptime=200.0, offset=3.0), memory, 30, NOW)
    assert v2.status == Status.OK and not v2.findings


def test_unknown_clock_is_reported_not_judged() -> None:
    g = gathered(offset=None)
    g.clock_raw = "2026-05-04T10:61:16Z"
    v = judge_host(TARGET, g, {}, 30, NOW)
    assert v.status == Status.OK
    assert "時間無法解讀" in v.reason


def test_errors_become_down_auth_or_unknown() -> None:
    down = judge_host(
        TARGET, Gathered(errors=[DeviceError("unreachable", "無法連線到主機")]), {}, 30, NOW
    )
    assert down.status == Status.FAIL and down.findings[0].code == FindingCode.RECORDER_DOWN
    cam_target = Target("cam-9", False, REC.address, [Protocol.ONVIF], None)
    camdown = judge_host(
        cam_target, Gathered(errors=[DeviceError("unreachable", "x")]), {}, 30, NOW
    )
    assert camdown.findings[0].code == FindingCode.CAMERA_UNREACHABLE
    auth = judge_host(
        TARGET,
        Gathered(errors=[DeviceError("bad-xml", "x"), DeviceError("auth", "密碼錯誤")]),
        {},
        30,
        NOW,
    )
    assert auth.findings[0].code == FindingCode.AUTH_FAILED
    slow = judge_host(
        TARGET, Gathered(errors=[DeviceError("timeout", "主機無回應（逾時 10 秒）")]), {}, 30, NOW
    )
    assert slow.status == Status.UNKNOWN and "逾時 10 秒" in slow.reason


def test_signal_per_analog_camera() -> None:
    cams = [cam(1), cam(2), cam(3), cam(4, CameraKind.IP)]
    out = judge_signals(
        "nvr-1",
        cams,
        [ChannelSignal(1, True), ChannelSignal(2, False), ChannelSignal(4, False)],
        True,
        "",
    )
    by_id = {o[0]: o for o in out}
    assert by_id["cam-1"][1] == Status.OK
    assert by_id["cam-2"][1] == Status.FAIL and by_id["cam-2"][3][0].code == FindingCode.SIGNAL_LOSS
    assert "第 2 路（教學大樓1樓走廊東側）" in by_id["cam-2"][2]
    assert by_id["cam-3"][1] == Status.OK and by_id["cam-3"][4].signal is None
    # an IP camera without an address, offline behind its recorder: unreachable
    assert by_id["cam-4"][1] == Status.FAIL
    assert by_id["cam-4"][3][0].code == FindingCode.CAMERA_UNREACHABLE
    down = judge_signals("nvr-1", cams, [], False, "主機無回應")
    assert {o[1] for o in down} == {Status.UNKNOWN}


def test_channel_newest_footage_age_and_gaps() -> None:
    c = cam(5)
    fresh = ChannelRecording(5, True, NOW - dt.timedelta(seconds=20), NOW - dt.timedelta(days=40))
    assert judge_channel(c, fresh, NOW, 600, True).status == Status.OK
    stale = ChannelRecording(5, True, NOW - dt.timedelta(minutes=12), None)
    v = judge_channel(c, stale, NOW, 600, True)
    assert v.status == Status.FAIL
    assert v.reason == "第 5 路（教學大樓1樓走廊東側）已 12 分鐘無新錄影"
    assert v.findings[0].code == FindingCode.RECORDING_STOPPED and v.findings[0].subject == "cam-5"
    idle = ChannelRecording(5, False, NOW - dt.timedelta(seconds=5), None)
    assert judge_channel(c, idle, NOW, 600, True).findings[0].code == FindingCode.RECORDING_STOPPED
    gap = (NOW - dt.timedelta(hours=3), NOW - dt.timedelta(hours=2, minutes=30))
    old_gap = (NOW - dt.timedelta(days=3), NOW - dt.timedelta(days=2))
    gappy = ChannelRecording(5, True, NOW, None, gaps=[gap, old_gap])
    g = judge_channel(c, gappy, NOW, 600, True)
    assert [f.code for f in g.findings] == [FindingCode.RECORDING_GAP]
    assert g.values.gaps_24h == 1 and g.values.gap_s_24h == 1800.0
    assert judge_channel(c, None, NOW, 600, True).status == Status.UNKNOWN


def test_disks_failed_full_and_values() -> None:
    gb = 1024**3
    disks = [
        Disk("1", DiskStatus.OK, 1000 * gb, 400 * gb),
        Disk("2", DiskStatus.FAILED, 1000 * gb, 0, raw_status="error"),
        Disk("3", DiskStatus.OK, 1000 * gb, 10 * gb),
    ]
    # A recorder known not to overwrite (inventory `overwrite: false`): full is DiskFull.
    v = judge_disks(disks, 95.0, overwrite=False)
    assert [(f.code, f.subject) for f in v.findings] == [
        (FindingCode.DISK_FAILED, "disk-2"),
        (FindingCode.DISK_FULL, "disk-3"),
    ]
    assert v.problems[0] == "硬碟 2 故障（error）"
    assert v.values is not None
    assert v.values[0].ok is True and v.values[1].ok is False
    assert v.values[0].id == "1" and v.values[0].free_bytes == 400 * gb
    none = judge_disks(None, 95.0)
    assert (none.problems, none.findings, none.values) == ([], [], None)


def test_retention_policy_and_legal_hold() -> None:
    chans = {
        1: ChannelRecording(1, True, NOW, NOW - dt.timedelta(days=12)),
        2: ChannelRecording(2, True, NOW, NOW - dt.timedelta(days=40)),
    }
    problems, findings, values = judge_retention(REC, chans, 30, 365, False, NOW)
    assert [f.code for f in findings] == [FindingCode.RETENTION_TOO_SHORT]
    assert values.retention_days == 12.0 and values.retention_max_days == 40.0
    assert "12 天" in problems[0] and "30 天" in problems[0]
    long = {1: ChannelRecording(1, True, NOW, NOW - dt.timedelta(days=400))}
    assert [f.code for f in judge_retention(REC, long, 30, 365, False, NOW)[1]] == [
        FindingCode.RETENTION_TOO_LONG
    ]
    assert judge_retention(REC, long, 30, 365, True, NOW)[1] == []
    # 1970 as the earliest footage (a recorder's unset clock at first boot) is no evidence
    epoch = {1: ChannelRecording(1, True, NOW, dt.datetime(1970, 1, 1, 0, 3, 15, tzinfo=dt.UTC))}
    assert judge_retention(REC, epoch, 30, 365, False, NOW) == ([], [], RecordingValues())


def test_onvif_recordings_map_to_channels_with_job_state() -> None:
    infos = [
        RecordingInfo("Recording_001", "MediaProfile00000", "Camera 01", None, NOW, "Recording"),
        RecordingInfo("Recording_002", "MediaProfile00100", "Camera 02", None, NOW, "Recording"),
    ]
    jobs = [RecordingJob("RecordingJob_002", "Recording_002", "Active", "Idle")]
    chans = onvif_channels(infos, jobs)
    assert sorted(chans) == [1, 2]
    assert chans[1].recording is True
    assert chans[2].recording is False  # the job's state wins over its configured mode


def test_durations_read_naturally() -> None:
    assert fmt_duration(45) == "45 秒"
    assert fmt_duration(299.7) == "5 分鐘"
    assert fmt_duration(3 * 3600) == "3 小時"
    assert fmt_duration(41 * 86400 + 5) == "41 天"


def test_full_disks_are_normal_on_a_recorder_that_overwrites_old_footage() -> None:
    # 循環錄影: Hikvision NVRs in overwrite mode report 0 free as normal operation;
    # only a failed disk is a fault there (retention guards the rest).
    gb = 1024**3
    disks = [
        Disk("1", DiskStatus.OK, 1000 * gb, 0),
        Disk("2", DiskStatus.FAILED, 1000 * gb, 0, raw_status="error"),
    ]
    v = judge_disks(disks, 95.0, overwrite=True)
    assert [(f.code, f.subject) for f in v.findings] == [(FindingCode.DISK_FAILED, "disk-2")]
    assert v.values is not None and v.values[0].ok is True
    assert any("硬碟 1 已滿" in n and "循環覆寫" in n for n in v.notes)
    v = judge_disks(disks, 95.0, overwrite=False)
    assert (FindingCode.DISK_FULL, "disk-1") in [(f.code, f.subject) for f in v.findings]


def test_the_last_resort_port_follows_the_driver_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no driver answering, the TCP connect tries the HTTP port when a listed
    driver speaks HTTP and the RTSP port of an RTSP-only device: the table's `http` says
    which, so a vendor API added to the table needs no second list here."""
    addr = Address(host="127.0.0.1", http_port=8080, rtsp_port=8554)

    def port(*protocols: Protocol) -> int:
        return last_resort_port(Target("d", True, addr, list(protocols), None))

    for p in Protocol:
        if p != Protocol.RTSP:
            want = 8080 if DRIVERS[p].http else 8554
            assert port(p, Protocol.RTSP) == want, p
    assert port(Protocol.RTSP) == 8554
    assert port(Protocol.SNMP) == 8080  # nothing listed on RTSP: the HTTP port
    monkeypatch.setattr(SnmpDriver, "http", True)  # as a new vendor API would be
    assert port(Protocol.SNMP, Protocol.RTSP) == 8080
