"""The alert engine as a pure state machine: debounce, hysteresis, labels, zh-TW text."""

from __future__ import annotations

import datetime as dt
import itertools
import json

from exporters.alerting import SPECS, AlertEngine, AlertEvent
from exporters.sample import sample_inventory
from probes.result import CheckKind, CheckResult, Finding, FindingCode, Status

T0 = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC)


def at(i: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=i)


def disk_fail(i: int, disk: str = "2") -> CheckResult:
    return CheckResult("nvr1", CheckKind.RECORDING, Status.FAIL, f"硬碟 {disk} 故障", at(i),
                       findings=(Finding(FindingCode.DISK_FAILED, f"硬碟 {disk} 狀態為故障",
                                         disk),))


def rec_ok(i: int) -> CheckResult:
    return CheckResult("nvr1", CheckKind.RECORDING, Status.OK, "錄影正常", at(i))


def rec_unknown(i: int) -> CheckResult:
    return CheckResult("nvr1", CheckKind.RECORDING, Status.UNKNOWN, "主機無回應", at(i))


def engine(**kw) -> tuple[AlertEngine, list[AlertEvent]]:
    events: list[AlertEvent] = []
    e = AlertEngine(sample_inventory(), **kw)
    e.listeners.append(events.append)
    return e, events


def test_every_finding_code_has_an_alertname():
    assert set(SPECS) == set(FindingCode)
    names = {s.alertname for s in SPECS.values()}
    for required in ("RecorderDown", "CameraUnreachable", "RecordingStopped", "DiskFailed",
                     "DiskFull", "RecordingGap", "RetentionTooShort", "RetentionTooLong",
                     "PictureBlurred", "PictureCovered", "PictureDark", "PictureOverexposed",
                     "PictureFrozen", "CameraMoved", "ClockDrift", "DeviceRebooted",
                     "FirmwareChanged"):
        assert required in names


def test_fires_only_after_debounce_and_resolves_after_recovery():
    e, events = engine(debounce=2, recovery=2)
    assert e.observe(disk_fail(0)) == []
    assert e.firing() == []
    fired = e.observe(disk_fail(1))
    assert [ev.kind for ev in fired] == ["fired"]
    alert = e.firing()[0]
    assert alert.starts_at == at(0)  # since the first failing observation
    assert alert.labels == {"alertname": "DiskFailed", "device": "nvr1", "recorder": "nvr1",
                            "unit": "general", "location": "教學大樓1樓機房",
                            "severity": "critical", "check": "recording", "disk": "2"}
    assert alert.annotations["summary"] == "教學大樓1樓機房 教學大樓1樓主機 硬碟 2 故障"
    assert "請通知廠商更換硬碟並確認錄影恢復" in alert.annotations["description"]
    assert "總務處" in alert.annotations["description"]
    assert alert.annotations["runbook"].endswith("#diskfailed")
    # one clean observation is not enough (hysteresis); an unknown one counts for nothing
    assert e.observe(rec_ok(2)) == []
    assert e.observe(rec_unknown(3)) == []
    assert len(e.firing()) == 1
    resolved = e.observe(rec_ok(4))
    assert [ev.kind for ev in resolved] == ["resolved"]
    assert resolved[0].alert.ends_at == at(4)
    assert e.firing() == []
    assert [a.key for a in e.unsent_resolved()] == [alert.key]
    assert [ev.kind for ev in events] == ["fired", "resolved"]


def test_flapping_below_debounce_fires_device_flapping_not_the_fault():
    """Debounce counts failures in a row: a device down every other check never fires
    its own alert, so flap detection says 設備不穩定 instead (issue 14, defect 6)."""
    e, events = engine(debounce=2, flap_window=10, flap_changes=4)
    for i in range(4):
        e.observe(disk_fail(i) if i % 2 == 0 else rec_ok(i))
    assert events == []  # three changes: not yet unstable
    e.observe(disk_fail(4))
    assert [(ev.kind, ev.alertname) for ev in events] == [("fired", "DeviceFlapping")]
    alert = e.firing()[0]
    assert alert.labels["device"] == "nvr1" and alert.labels["check"] == "recording"
    assert "設備不穩定" in alert.annotations["summary"]
    assert "最近 5 次錄影檢查有 3 次異常" in alert.annotations["summary"]
    assert alert.annotations["runbook"].endswith("#deviceflapping")
    for i in range(5, 14):  # steady again: resolves once the window holds <= 2 changes
        e.observe(rec_ok(i))
    assert [ev.kind for ev in events] == ["fired", "resolved"]
    assert e.firing() == []
    # and the state survives a restart
    for i in range(20, 26):
        e.observe(disk_fail(i) if i % 2 == 0 else rec_ok(i))
    again, _ = engine(flap_window=10, flap_changes=4)
    again.load(json.loads(json.dumps(e.dump())))
    assert [a.key for a in again.firing()] == [a.key for a in e.firing()]


def test_flap_detection_can_be_turned_off():
    e, events = engine(debounce=2, flap_window=0)
    for i in range(12):
        e.observe(disk_fail(i) if i % 2 == 0 else rec_ok(i))
    assert events == []


def cam_offline(i: int) -> CheckResult:
    return CheckResult("cam-east", CheckKind.HOST, Status.FAIL, "攝影機無法連線", at(i),
                       findings=(Finding(FindingCode.CAMERA_UNREACHABLE, "攝影機無法連線"),))


def channel_stopped(i: int) -> list[CheckResult]:
    """One recording run of nvr1 while its camera cam-east cannot be reached."""
    return [
        CheckResult("nvr1", CheckKind.RECORDING, Status.FAIL, "第 1 路錄影異常", at(i)),
        CheckResult("cam-east", CheckKind.RECORDING, Status.FAIL, "第 1 路錄影已停止", at(i),
                    findings=(Finding(FindingCode.RECORDING_STOPPED, "第 1 路錄影已停止",
                                      "cam-east"),)),
    ]


def test_one_offline_camera_is_one_alert():
    """The camera's CameraUnreachable holds back the channel's RecordingStopped, and the
    recorder's 「第 1 路錄影異常」 raises no CheckFailed (issue 14, defect 5)."""
    e, events = engine(debounce=2, recovery=2)
    for i in range(4):
        e.observe(cam_offline(2 * i))
        e.observe_run(channel_stopped(2 * i + 1))
    assert [(a.alertname, a.device) for a in e.firing()] == [("CameraUnreachable", "cam-east")]
    assert [ev.alertname for ev in events] == ["CameraUnreachable"]
    held = e.held()
    assert [(h[0]["alertname"], h[0]["device"]) for h in held] == [
        ("RecordingStopped", "cam-east")]
    # the camera answers again but its channel still records nothing: a fault of its own
    for i in range(8, 11):
        e.observe(CheckResult("cam-east", CheckKind.HOST, Status.OK, "ok", at(i)))
    e.observe_run(channel_stopped(11))
    assert {a.alertname for a in e.firing()} == {"RecordingStopped"}
    stopped = next(a for a in e.firing() if a.alertname == "RecordingStopped")
    assert stopped.starts_at == at(1)  # when it really began, not when it was released
    assert [ev.alertname for ev in events] == [
        "CameraUnreachable", "CameraUnreachable", "RecordingStopped"]
    assert [ev.kind for ev in events] == ["fired", "resolved", "fired"]


def test_a_held_alert_that_clears_is_never_sent():
    e, events = engine(debounce=2, recovery=2)
    for i in range(3):
        e.observe(cam_offline(2 * i))
        e.observe_run(channel_stopped(2 * i + 1))
    ok = [CheckResult("nvr1", CheckKind.RECORDING, Status.OK, "ok", at(10)),
          CheckResult("cam-east", CheckKind.RECORDING, Status.OK, "ok", at(10))]
    e.observe_run(ok)
    assert e.held() == []
    for i in range(11, 14):
        e.observe(CheckResult("cam-east", CheckKind.HOST, Status.OK, "ok", at(i)))
    assert [ev.alertname for ev in events] == ["CameraUnreachable", "CameraUnreachable"]
    assert not any(a.alertname == "RecordingStopped" for a in e.unsent_resolved())


def test_a_recorder_failing_for_its_own_reason_still_alerts():
    e, _ = engine(debounce=1)
    e.observe_run([CheckResult("nvr1", CheckKind.RECORDING, Status.FAIL, "主機回應異常", at(0))])
    assert [a.alertname for a in e.firing()] == ["CheckFailed"]


def test_recorder_down_holds_back_its_cameras():
    e, events = engine(debounce=1)
    e.observe(CheckResult("nvr1", CheckKind.HOST, Status.FAIL, "主機無回應", at(0),
                          findings=(Finding(FindingCode.RECORDER_DOWN, "主機無回應"),)))
    e.observe(cam_offline(1))
    assert [ev.alertname for ev in events] == ["RecorderDown"]


def test_unknown_does_not_clear_a_pending_failure():
    e, _ = engine(debounce=2)
    e.observe(disk_fail(0))
    e.observe(rec_unknown(1))
    assert [ev.kind for ev in e.observe(disk_fail(2))] == ["fired"]


def test_failure_returning_during_recovery_keeps_the_same_alert():
    e, events = engine(debounce=2, recovery=2)
    e.observe(disk_fail(0))
    e.observe(disk_fail(1))
    e.observe(rec_ok(2))
    e.observe(disk_fail(3))
    e.observe(rec_ok(4))
    assert len(e.firing()) == 1 and e.firing()[0].starts_at == at(0)
    assert [ev.kind for ev in events] == ["fired"]


def test_two_disks_are_two_alerts_and_clear_independently():
    e, _ = engine(debounce=1, recovery=1)
    both = CheckResult("nvr1", CheckKind.RECORDING, Status.FAIL, "x", at(0), findings=(
        Finding(FindingCode.DISK_FAILED, "a", "1"), Finding(FindingCode.DISK_FAILED, "b", "2")))
    e.observe(both)
    assert sorted(a.labels["disk"] for a in e.firing()) == ["1", "2"]
    e.observe(disk_fail(1, "2"))
    assert [a.labels["disk"] for a in e.firing()] == ["2"]


def test_channel_finding_is_about_the_camera_with_place():
    e, _ = engine(debounce=1)
    r = CheckResult("nvr1", CheckKind.RECORDING, Status.FAIL, "第 1 路無訊號", at(0),
                    findings=(Finding(FindingCode.SIGNAL_LOSS, "第 1 路無影像訊號", "cam-east"),))
    e.observe(r)
    a = e.firing()[0]
    assert a.labels["alertname"] == "SignalLoss"
    assert a.labels["device"] == "cam-east" and a.labels["recorder"] == "nvr1"
    assert a.labels["channel"] == "1" and a.labels["location"] == "教學大樓1樓走廊東側"
    summary = a.annotations["summary"]
    assert summary.startswith("教學大樓1樓走廊東側 1樓走廊東側（教學大樓1樓主機 第 1 路）")
    # cleared only by the recorder's next recording result
    e.observe(CheckResult("cam-east", CheckKind.RECORDING, Status.OK, "ok", at(1)))
    assert len(e.firing()) == 1
    e.observe(CheckResult("nvr1", CheckKind.RECORDING, Status.OK, "ok", at(2)))
    e.observe(CheckResult("nvr1", CheckKind.RECORDING, Status.OK, "ok", at(3)))
    assert e.firing() == []


def test_reboot_is_an_event_that_fires_at_once():
    e, events = engine(debounce=3)
    r = CheckResult("cam-east", CheckKind.HOST, Status.OK, "ok", at(0), findings=(
        Finding(FindingCode.DEVICE_REBOOTED, "設備於 07:58 重新開機"),))
    e.observe(r)
    assert [ev.alertname for ev in events] == ["DeviceRebooted"]
    assert e.firing()[0].labels["severity"] == "info"


def test_fail_without_finding_still_alerts():
    e, _ = engine(debounce=1)
    e.observe(CheckResult("dvr2", CheckKind.HOST, Status.FAIL, "主機回應異常", at(0)))
    a = e.firing()[0]
    assert a.labels["alertname"] == "CheckFailed"
    assert "主機回應異常" in a.annotations["description"]


def test_state_survives_a_restart_with_the_same_starts_at():
    e, _ = engine(debounce=2, recovery=2)
    e.observe(disk_fail(0))
    e.observe(disk_fail(1))
    saved = json.loads(json.dumps(e.dump()))  # JSON round trip, like the store does
    e2, events2 = engine(debounce=2, recovery=2)
    e2.load(saved)
    assert [a.starts_at for a in e2.firing()] == [at(0)]
    assert e2.observe(disk_fail(2)) == []  # still firing: not fired again as new
    e2.observe(rec_ok(3))
    e2.observe(rec_ok(4))
    assert [ev.kind for ev in events2] == ["resolved"]
    e3, _ = engine()
    e3.load({"version": 1, "tracks": {"bad": {"owner": 3}}})  # garbage is dropped
    assert e3.firing() == []


def test_no_credentials_in_alerts():
    e, _ = engine(debounce=1)
    e.observe(CheckResult("nvr1", CheckKind.HOST, Status.FAIL, "登入失敗", at(0), findings=(
        Finding(FindingCode.AUTH_FAILED, "帳號 admin 登入失敗"),)))
    text = json.dumps(e.dump(), ensure_ascii=False)
    assert "CAMWATCH_DEMO" not in text and "password" not in text.lower()


def test_any_sequence_keeps_the_invariants():
    """Random observation sequences: firing exactly when the last `debounce` failed
    without `recovery` clean ones since, and dump/load round-trips at every step."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    steps = st.lists(st.sampled_from(["fail", "ok", "unknown"]), max_size=30)

    @settings(max_examples=150, deadline=None)
    @given(steps, st.integers(1, 3), st.integers(1, 3))
    def run(seq: list[str], debounce: int, recovery: int) -> None:
        e, events = engine(debounce=debounce, recovery=recovery, flap_window=0)
        firing = False
        fails = oks = 0
        for i, step in enumerate(seq):
            r = {"fail": disk_fail, "ok": rec_ok, "unknown": rec_unknown}[step](i)
            e.observe(r)
            if step == "fail":
                fails, oks = fails + 1, 0
                firing = firing or fails >= debounce
            elif step == "ok":
                fails = 0
                oks = oks + 1 if firing else 0
                if firing and oks >= recovery:
                    firing, oks = False, 0
            assert bool(e.firing()) == firing, (seq[: i + 1], debounce, recovery)
            again, _ = engine(debounce=debounce, recovery=recovery, flap_window=0)
            again.load(json.loads(json.dumps(e.dump())))
            assert [a.key for a in again.firing()] == [a.key for a in e.firing()]
        kinds = [ev.kind for ev in events]
        assert all(a != b for a, b in itertools.pairwise(kinds))  # alternate

    run()
