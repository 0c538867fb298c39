"""The repair-alert engine: a pure state machine over check results.

It observes CheckResults, turns each Finding into an alert (FindingCode -> alertname and
severity), fires an alert only after `debounce` failing observations in a row and
resolves it only after `recovery` clean observations in a row (hysteresis), and emits
fired/resolved events (for the inspection log's repair history). It talks to nobody:
`exporters/alertmanager.py` pushes what it holds. Its state is a JSON-able dict
(`dump()`/`load()`), so a restart keeps each alert's startsAt and Alertmanager sees the
same alert, not a new one.

Ownership: an alert belongs to the (device, check) whose result produced it; only a later
result of that same check can clear it. An `unknown` result (the device could not be
asked) neither fires nor clears anything: a recorder that cannot be reached says nothing
about its disks (RecorderDown says it instead).

One alert per real fault (`INHIBITIONS`, the same rules as alerts/alertmanager.yml's
inhibit_rules): an alert whose cause is another failing alert — a camera that cannot be
reached has stopped recording and shows no picture; a recorder that is down takes its
cameras with it — is held back while its cause is failing (pending or firing). It is
not pushed, not logged as a repair request and not shown; if it is still failing when
its cause clears, it fires then, with the time it really began. A recorder's recording
check that fails only because of channels (「第 5 路錄影異常」) raises no CheckFailed of
its own: each channel's result carries its finding (`observe_run`).

Flapping (`DeviceFlapping`, 「設備不穩定」): debounce counts failures in a row, so a
device that is down every other check never fires. The engine also keeps the last
`flap_window` judged answers of each (device, check) and fires when they changed at
least `flap_changes` times; it resolves when they changed at most `flap_changes // 2`
times (hysteresis), i.e. after the device has been steady for most of a window. One
DeviceFlapping per device, whichever of its checks showed it first.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from inventory.models import Inventory
from probes.result import CheckKind, CheckResult, Finding, FindingCode, Status
from probes.wording import storage_label


@dataclass(frozen=True)
class AlertSpec:
    alertname: str
    severity: Literal["critical", "warning", "info"]
    problem: str  # zh-TW, after the place and device name; {subject} is filled in
    action: str  # zh-TW: what to do
    debounce: int | None = None  # None: settings.alert_debounce; 1 for one-off events


SPECS: dict[FindingCode, AlertSpec] = {
    FindingCode.RECORDER_DOWN: AlertSpec(
        "RecorderDown", "critical", "主機無回應",
        "請至機房確認主機電源、網路線與 UPS，必要時重新開機；仍無法恢復請通知廠商維修"),
    FindingCode.CAMERA_UNREACHABLE: AlertSpec(
        "CameraUnreachable", "critical", "攝影機無法連線",
        "請檢查攝影機電源（PoE 交換器）與網路線，必要時通知廠商維修"),
    FindingCode.AUTH_FAILED: AlertSpec(
        "AuthFailed", "warning", "登入失敗（帳號或密碼不符）",
        "請確認設備密碼是否被變更，並更新 camwatch 的密碼設定（環境變數或密碼檔，勿寫入清冊）"),
    FindingCode.DEVICE_REBOOTED: AlertSpec(
        "DeviceRebooted", "info", "設備曾重新開機",
        "請確認是否為計畫性重開機；若非，請檢查電源、UPS 與設備溫度", debounce=1),
    FindingCode.CLOCK_DRIFT: AlertSpec(
        "ClockDrift", "warning", "時間誤差過大",
        "請校正設備時間並設定 NTP 校時，以免錄影時間與實際不符"),
    FindingCode.FIRMWARE_CHANGED: AlertSpec(
        "FirmwareChanged", "info", "韌體版本已變更",
        "請確認韌體更新是否經過核准，並記錄於維護紀錄", debounce=1),
    FindingCode.SIGNAL_LOSS: AlertSpec(
        "SignalLoss", "critical", "影像訊號中斷",
        "請檢查攝影機電源與訊號線（同軸線或網路線），必要時通知廠商維修"),
    FindingCode.RECORDING_STOPPED: AlertSpec(
        "RecordingStopped", "critical", "錄影停止",
        "請立即檢查主機錄影排程與硬碟狀態，確認錄影恢復"),
    FindingCode.RECORDING_GAP: AlertSpec(
        "RecordingGap", "warning", "錄影有中斷時段",
        "請查明中斷原因（停電、重開機或硬碟）並記錄於維護紀錄"),
    FindingCode.DISK_FAILED: AlertSpec(
        "DiskFailed", "critical", "{subject}故障",
        "請通知廠商更換硬碟並確認錄影恢復"),
    FindingCode.DISK_FULL: AlertSpec(
        "DiskFull", "warning", "{subject}空間不足",
        "請確認主機已啟用循環覆寫，或擴充儲存空間"),
    FindingCode.DISK_FULL_OVERWRITE_UNKNOWN: AlertSpec(
        "DiskFullOverwriteUnknown", "warning", "{subject}已滿（無法確認是否循環覆寫）",
        "請在設備的儲存設定確認已啟用循環覆寫（硬碟滿時覆蓋最舊錄影）；確認後在清冊該主機填入 "
        "overwrite: true，未啟用則填 overwrite: false（之後每次檢查都會告警）。此提醒只發一次",
        debounce=1),
    FindingCode.RETENTION_TOO_SHORT: AlertSpec(
        "RetentionTooShort", "warning", "錄影保存天數不足",
        "請調整錄影保存設定或擴充硬碟，使影像至少保存規定天數（預設 30 日）"),
    FindingCode.RETENTION_TOO_LONG: AlertSpec(
        "RetentionTooLong", "warning", "錄影保存超過規定期限",
        "請依規定銷毀逾期影像；如因調查或法定需要保存，請在清冊登記保存理由與期限"),
    FindingCode.PICTURE_BLURRED: AlertSpec(
        "PictureBlurred", "warning", "畫面模糊",
        "請清潔鏡頭或重新對焦；如鏡罩起霧或刮傷請通知廠商"),
    FindingCode.PICTURE_COVERED: AlertSpec(
        "PictureCovered", "critical", "畫面遭遮蔽",
        "請至現場確認鏡頭是否被遮擋、噴漆或蓋住，並恢復監視範圍"),
    FindingCode.PICTURE_DARK: AlertSpec(
        "PictureDark", "warning", "畫面過暗",
        "請檢查夜間紅外線補光與現場照明"),
    FindingCode.PICTURE_OVEREXPOSED: AlertSpec(
        "PictureOverexposed", "warning", "畫面過曝",
        "請調整攝影機曝光或寬動態設定，避免逆光"),
    FindingCode.PICTURE_FROZEN: AlertSpec(
        "PictureFrozen", "warning", "畫面凍結（影像未更新）",
        "請重新啟動攝影機並確認影像串流恢復"),
    FindingCode.CAMERA_MOVED: AlertSpec(
        "CameraMoved", "warning", "鏡頭角度偏移",
        "請至現場將鏡頭調回原監視範圍"),
}

# A failed check that carried no finding still needs someone to look.
FALLBACK: dict[CheckKind, AlertSpec] = {
    CheckKind.HOST: AlertSpec("CheckFailed", "warning", "主機檢查未通過",
                              "請依原因檢查設備，必要時通知廠商"),
    CheckKind.RECORDING: AlertSpec("CheckFailed", "warning", "錄影檢查未通過",
                                   "請依原因檢查錄影設定與硬碟"),
    CheckKind.PICTURE: AlertSpec("CheckFailed", "warning", "畫面檢查未通過",
                                 "請至現場確認畫面"),
}
FLAPPING = AlertSpec("DeviceFlapping", "warning", "設備不穩定",
                     "請檢查電源、網路線、PoE 交換器埠與接頭是否鬆脫或接觸不良，"
                     "並查看設備日誌；狀態穩定後告警會自動解除", debounce=1)
DISK_CODES = {
    FindingCode.DISK_FAILED,
    FindingCode.DISK_FULL,
    FindingCode.DISK_FULL_OVERWRITE_UNKNOWN,
}
RUNBOOK = "alerts/RUNBOOK.md#{anchor}"


@dataclass(frozen=True)
class Inhibition:
    """While an alert named in `sources` is failing, alerts matching `targets` with the
    same `equal` label are held back (alerts/alertmanager.yml has the same rules)."""

    sources: frozenset[str]
    targets: re.Pattern[str]
    equal: str


INHIBITIONS: tuple[Inhibition, ...] = (
    # A recorder that is down takes its cameras and its own parts with it.
    Inhibition(frozenset({"RecorderDown"}), re.compile(r"(?!RecorderDown$).+"), "recorder"),
    # A camera that cannot be reached (or an input without signal) cannot be recorded
    # or judged for its picture: the recorder's channel saying so is the same fault.
    Inhibition(frozenset({"CameraUnreachable", "SignalLoss"}),
               re.compile(r"RecordingStopped|RecordingGap|Picture.*|CameraMoved|CheckFailed"),
               "device"),
    # A failed disk explains a full one and a gap in recording.
    Inhibition(frozenset({"DiskFailed"}), re.compile(r"DiskFull|RecordingGap"), "recorder"),
)
SOURCE_NAMES = frozenset(n for rule in INHIBITIONS for n in rule.sources)
SOURCE_LABELS = tuple(sorted({rule.equal for rule in INHIBITIONS}))

EventKind = Literal["fired", "resolved"]


@dataclass
class Alert:
    """One alert as Alertmanager sees it (labels identify it)."""

    key: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: dt.datetime
    ends_at: dt.datetime | None = None

    @property
    def alertname(self) -> str:
        return self.labels["alertname"]

    @property
    def device(self) -> str:
        return self.labels["device"]

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "labels": self.labels, "annotations": self.annotations,
                "starts_at": self.starts_at.isoformat(),
                "ends_at": self.ends_at.isoformat() if self.ends_at else None}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Alert:
        return cls(key=str(d["key"]), labels={str(k): str(v) for k, v in d["labels"].items()},
                   annotations={str(k): str(v) for k, v in d["annotations"].items()},
                   starts_at=dt.datetime.fromisoformat(d["starts_at"]),
                   ends_at=dt.datetime.fromisoformat(d["ends_at"]) if d.get("ends_at") else None)


@dataclass(frozen=True)
class AlertEvent:
    """A repair alert fired (報修) or resolved (修復)."""

    kind: EventKind
    alert: Alert
    at: dt.datetime  # when the engine decided (the observation's time)

    @property
    def alertname(self) -> str:
        return self.alert.alertname

    @property
    def device(self) -> str:
        return self.alert.device


@dataclass
class _Track:
    owner: tuple[str, str]  # (result.device, check)
    fails: int = 0
    oks: int = 0
    first_fail: dt.datetime | None = None
    alert: Alert | None = None  # set while firing
    # labels and text of the newest failing observation (held alerts fire with them)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"owner": list(self.owner), "fails": self.fails, "oks": self.oks,
                "first_fail": self.first_fail.isoformat() if self.first_fail else None,
                "alert": self.alert.to_json() if self.alert else None,
                "labels": self.labels, "annotations": self.annotations}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> _Track:
        owner = d["owner"]
        return cls(owner=(str(owner[0]), str(owner[1])), fails=int(d["fails"]),
                   oks=int(d["oks"]),
                   first_fail=(dt.datetime.fromisoformat(d["first_fail"])
                               if d.get("first_fail") else None),
                   alert=Alert.from_json(d["alert"]) if d.get("alert") else None,
                   labels={str(k): str(v) for k, v in (d.get("labels") or {}).items()},
                   annotations={str(k): str(v)
                                for k, v in (d.get("annotations") or {}).items()})


@dataclass
class _Flap:
    """The last judged answers of one (device, check): 'F' failed, 'O' ok."""

    history: str = ""
    alert: Alert | None = None
    last_reason: str = ""

    def changes(self) -> int:
        return sum(1 for a, b in zip(self.history, self.history[1:], strict=False) if a != b)

    def to_json(self) -> dict[str, Any]:
        return {"history": self.history, "last_reason": self.last_reason,
                "alert": self.alert.to_json() if self.alert else None}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> _Flap:
        history = str(d.get("history", ""))
        if set(history) - {"F", "O"}:
            raise ValueError("bad flap history")
        return cls(history=history, last_reason=str(d.get("last_reason", "")),
                   alert=Alert.from_json(d["alert"]) if d.get("alert") else None)


Listener = Callable[[AlertEvent], None]


@dataclass
class AlertEngine:
    inventory: Inventory
    debounce: int = 2
    recovery: int = 2
    flap_window: int = 10  # judged answers kept per (device, check); 0: no flap detection
    flap_changes: int = 4  # changes within the window that make a device unstable
    listeners: list[Listener] = field(default_factory=list)
    _tracks: dict[str, _Track] = field(default_factory=dict)
    # (device, check) -> keys of the tracks it owns (so observe() need not scan them all)
    _owned: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    # resolved alerts Alertmanager has not yet acknowledged (the pusher acks them)
    _unsent_resolved: dict[str, Alert] = field(default_factory=dict)
    _flaps: dict[tuple[str, str], _Flap] = field(default_factory=dict)
    _flap_alerts: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> owner
    # keys of alerts due but held back by a failing cause (tracks and flapping alerts)
    _held: set[str] = field(default_factory=set)
    # (alertname, label, value) -> keys of the tracks of inhibiting alerts: every track
    # alive is failing (pending, firing or recovering), so this is "what inhibits now"
    _sources: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)
    _recheck: bool = False  # a cause stopped failing: held alerts may fire
    changed: bool = False  # set on every state change; the owner of persistence clears it

    # -- observing ----------------------------------------------------------------------

    def observe_run(self, results: Sequence[CheckResult]) -> list[AlertEvent]:
        """The results of one probe run. A failed result without a finding of its own
        whose failure its channels' results explain (a recorder's recording check with
        「第 5 路錄影異常」) raises no CheckFailed: the channels' findings are the alerts."""
        explained = {
            r.device for r in results
            if r.status == Status.FAIL and not r.findings
            and any(o is not r and o.status == Status.FAIL and o.findings
                    and o.check == r.check and self._recorder(o.device) == r.device
                    for o in results)
        }
        events: list[AlertEvent] = []
        for r in results:
            events.extend(self.observe(r, explained=r.device in explained))
        return events

    def _recorder(self, device: str) -> str | None:
        cam = self.inventory.cameras.get(device)
        return cam.recorder if cam is not None else None

    def observe(self, result: CheckResult, *, explained: bool = False) -> list[AlertEvent]:
        owner = (result.device, result.check.value)
        events: list[AlertEvent] = []
        current: dict[str, tuple[AlertSpec, dict[str, str], dict[str, str]]] = {}
        findings = list(result.findings)
        if result.status == Status.FAIL and not findings and not explained:
            findings = [Finding(FindingCode.RECORDER_DOWN, result.reason)]  # placeholder
            spec_override: AlertSpec | None = FALLBACK[result.check]
        else:
            spec_override = None
        for f in findings:
            spec = spec_override or SPECS.get(f.code)
            if spec is None:
                continue
            labels, annotations = self.describe(result, f, spec)
            key = alert_key(labels)
            current[key] = (spec, labels, annotations)

        for key, (spec, labels, annotations) in current.items():
            track = self._tracks.get(key)
            if track is None:
                track = self._tracks[key] = _Track(owner=owner, labels=labels)
                self._owned.setdefault(owner, set()).add(key)
                self._index(key, track)
            track.fails += 1
            track.oks = 0
            track.labels, track.annotations = labels, annotations
            self.changed = True
            if track.first_fail is None:
                track.first_fail = result.at
            if track.alert is not None:
                track.alert.annotations = annotations  # the reason may have changed
                continue
            if key in self._held:
                continue
            needed = spec.debounce or self.debounce
            if track.fails >= needed:
                if self.inhibited_by(labels, key) is not None:
                    self._held.add(key)
                else:
                    events.append(self._fire(key, track, result.at))

        if result.status != Status.UNKNOWN:
            for key in sorted(self._owned.get(owner, set()) - set(current)):
                track = self._tracks[key]
                self.changed = True
                track.fails = 0
                track.first_fail = None
                if track.alert is None:
                    self._drop(key)
                    continue
                track.oks += 1
                if track.oks >= self.recovery:
                    alert = track.alert
                    alert.ends_at = result.at
                    self._unsent_resolved[key] = alert
                    self._drop(key)
                    events.append(AlertEvent("resolved", alert, result.at))

        if self.flap_window > 0 and result.status != Status.UNKNOWN and not explained:
            events.extend(self._observe_flap(result))
        events.extend(self._release_held(result.at))
        self._emit(events)
        return events

    def observe_all(self, results: list[CheckResult]) -> list[AlertEvent]:
        events: list[AlertEvent] = []
        for r in results:
            events.extend(self.observe(r))
        return events

    def forget_devices(self, keep: set[str], at: dt.datetime) -> list[AlertEvent]:
        """Resolve alerts of devices no longer in the inventory (after a reload)."""
        events = []
        for key, track in list(self._tracks.items()):
            if track.owner[0] in keep and track.labels.get("device", track.owner[0]) in keep:
                continue
            self._drop(key)
            self.changed = True
            if track.alert is not None:
                track.alert.ends_at = at
                self._unsent_resolved[key] = track.alert
                events.append(AlertEvent("resolved", track.alert, at))
        for owner, flap in list(self._flaps.items()):
            if owner[0] in keep:
                continue
            del self._flaps[owner]
            self.changed = True
            if flap.alert is not None:
                self._flap_alerts.pop(flap.alert.key, None)
            if flap.alert is not None and flap.alert.key not in self._held:
                flap.alert.ends_at = at
                self._unsent_resolved[flap.alert.key] = flap.alert
                events.append(AlertEvent("resolved", flap.alert, at))
            if flap.alert is not None:
                self._held.discard(flap.alert.key)
        events.extend(self._release_held(at))
        self._emit(events)
        return events

    def _emit(self, events: list[AlertEvent]) -> None:
        for ev in events:
            for listener in self.listeners:
                listener(ev)

    def _fire(self, key: str, track: _Track, at: dt.datetime) -> AlertEvent:
        track.alert = Alert(key=key, labels=dict(track.labels),
                            annotations=dict(track.annotations),
                            starts_at=track.first_fail or at)
        self._held.discard(key)
        self._unsent_resolved.pop(key, None)
        self.changed = True
        return AlertEvent("fired", track.alert, at)

    def _drop(self, key: str) -> None:
        track = self._tracks.pop(key)
        owned = self._owned.get(track.owner)
        if owned is not None:
            owned.discard(key)
            if not owned:
                del self._owned[track.owner]
        self._held.discard(key)
        name = track.labels.get("alertname", "")
        if name in SOURCE_NAMES:
            for label in SOURCE_LABELS:
                keys = self._sources.get((name, label, track.labels.get(label, "")))
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._sources[(name, label, track.labels.get(label, ""))]
            self._recheck = True

    # -- inhibition ---------------------------------------------------------------------

    def _index(self, key: str, track: _Track) -> None:
        name = track.labels.get("alertname", "")
        if name in SOURCE_NAMES:
            for label in SOURCE_LABELS:
                value = track.labels.get(label, "")
                if value:
                    self._sources.setdefault((name, label, value), set()).add(key)

    def inhibited_by(self, labels: dict[str, str], key: str | None = None) -> str | None:
        """The key of a failing alert that explains the alert with these labels."""
        name = labels.get("alertname", "")
        for rule in INHIBITIONS:
            value = labels.get(rule.equal, "")
            if not value or not rule.targets.fullmatch(name):
                continue
            for source in rule.sources:
                for other in self._sources.get((source, rule.equal, value), ()):
                    if other != key:
                        return other
        return None

    def _release_held(self, at: dt.datetime) -> list[AlertEvent]:
        """Fire the held alerts whose cause no longer fails (they are still due)."""
        events: list[AlertEvent] = []
        while self._recheck and self._held:
            self._recheck = False  # firing below never clears a cause, so one pass
            for key in sorted(self._held):
                track = self._tracks.get(key)
                if track is not None:
                    if self.inhibited_by(track.labels, key) is None:
                        events.append(self._fire(key, track, at))
                    continue
                owner = self._flap_alerts.get(key)
                flap = self._flaps.get(owner) if owner is not None else None
                if flap is None or flap.alert is None:
                    self._held.discard(key)
                elif self.inhibited_by(flap.alert.labels, key) is None:
                    self._held.discard(key)
                    events.append(AlertEvent("fired", flap.alert, at))
        self._recheck = False
        return events

    def held(self) -> list[tuple[dict[str, str], str]]:
        """Alerts due but held back: (labels, the key of the alert that explains them)."""
        out = []
        for key in sorted(self._held):
            track = self._tracks.get(key)
            if track is not None:
                out.append((dict(track.labels), self.inhibited_by(track.labels, key) or ""))
        return out

    # -- flapping -----------------------------------------------------------------------

    def _observe_flap(self, result: CheckResult) -> list[AlertEvent]:
        owner = (result.device, result.check.value)
        flap = self._flaps.get(owner)
        failed = result.status == Status.FAIL
        if flap is None:
            if not failed:
                return []  # a steady healthy device keeps no history
            flap = self._flaps[owner] = _Flap()
        flap.history = (flap.history + ("F" if failed else "O"))[-self.flap_window:]
        if failed:
            flap.last_reason = result.reason
        self.changed = True
        changes = flap.changes()
        events: list[AlertEvent] = []
        device_flapping = flap_key(result.device) in self._flap_alerts
        if flap.alert is None and changes >= self.flap_changes and not device_flapping:
            # one DeviceFlapping per device: a camera that drops off the network flaps
            # in its host check and in its recorder's channel alike
            labels, annotations = self._describe_flap(result, flap, changes)
            key = alert_key(labels)
            flap.alert = Alert(key=key, labels=labels, annotations=annotations,
                               starts_at=result.at)
            self._flap_alerts[key] = owner
            self._unsent_resolved.pop(key, None)
            if self.inhibited_by(labels, key) is not None:
                self._held.add(key)
            else:
                events.append(AlertEvent("fired", flap.alert, result.at))
        elif flap.alert is not None:
            if changes <= self.flap_changes // 2:
                alert = flap.alert
                flap.alert = None
                self._flap_alerts.pop(alert.key, None)
                if alert.key in self._held:
                    self._held.discard(alert.key)  # never sent: nothing to resolve
                else:
                    alert.ends_at = result.at
                    self._unsent_resolved[alert.key] = alert
                    events.append(AlertEvent("resolved", alert, result.at))
            else:
                flap.alert.annotations = self._describe_flap(result, flap, changes)[1]
        if flap.alert is None and "F" not in flap.history:
            del self._flaps[owner]
        return events

    def _describe_flap(self, result: CheckResult, flap: _Flap,
                       changes: int) -> tuple[dict[str, str], dict[str, str]]:
        n, fails = len(flap.history), flap.history.count("F")
        what = {"host": "主機", "recording": "錄影", "picture": "畫面"}[result.check.value]
        text = (f"最近 {n} 次{what}檢查中 {fails} 次異常、狀態變化 {changes} 次，時好時壞，"
                f"每次異常都未連續到達告警條件；最近一次異常：{flap.last_reason.rstrip('。')}")
        labels, annotations = self.describe(result, Finding(FindingCode.RECORDER_DOWN, text),
                                            FLAPPING)
        annotations["summary"] += f"（最近 {n} 次{what}檢查有 {fails} 次異常）"
        return labels, annotations

    # -- what is firing -----------------------------------------------------------------

    def firing(self) -> list[Alert]:
        """What is firing now (held-back alerts are not: their cause is what fires)."""
        alerts = [t.alert for t in self._tracks.values() if t.alert is not None]
        alerts += [f.alert for f in self._flaps.values()
                   if f.alert is not None and f.alert.key not in self._held]
        return sorted(alerts, key=lambda a: (a.starts_at, a.key))

    def unsent_resolved(self) -> list[Alert]:
        return list(self._unsent_resolved.values())

    def ack_resolved(self, keys: list[str]) -> None:
        for key in keys:
            if self._unsent_resolved.pop(key, None) is not None:
                self.changed = True

    # -- persistence --------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {"version": 1,
                "tracks": {k: t.to_json() for k, t in self._tracks.items()},
                "unsent_resolved": {k: a.to_json() for k, a in self._unsent_resolved.items()},
                "flaps": {f"{d}|{c}": f.to_json() for (d, c), f in self._flaps.items()},
                "held": sorted(self._held)}

    def load(self, data: dict[str, Any] | None) -> None:
        """Restore what `dump()` returned; anything unreadable is dropped, not raised."""
        self._tracks.clear()
        self._owned.clear()
        self._unsent_resolved.clear()
        self._flaps.clear()
        self._flap_alerts.clear()
        self._held.clear()
        self._sources.clear()
        if not data or data.get("version") != 1:
            return
        for k, t in (data.get("tracks") or {}).items():
            try:
                track = _Track.from_json(t)
                self._tracks[str(k)] = track
                self._owned.setdefault(track.owner, set()).add(str(k))
                self._index(str(k), track)
            except (KeyError, TypeError, ValueError, IndexError):
                continue
        for k, a in (data.get("unsent_resolved") or {}).items():
            try:
                self._unsent_resolved[str(k)] = Alert.from_json(a)
            except (KeyError, TypeError, ValueError):
                continue
        checks = {c.value for c in CheckKind}
        for k, f in (data.get("flaps") or {}).items():
            try:
                device, _, check = str(k).rpartition("|")
                if device and check in checks:
                    self._flaps[(device, check)] = _Flap.from_json(f)
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
        self._flap_alerts.update({f.alert.key: owner for owner, f in self._flaps.items()
                                  if f.alert is not None})
        known = set(self._tracks) | set(self._flap_alerts)
        self._held.update(str(k) for k in (data.get("held") or []) if str(k) in known)
        self._held.difference_update(k for k, t in self._tracks.items() if t.alert is not None)
        self._recheck = bool(self._held)

    # -- labels and text ----------------------------------------------------------------

    def describe(self, result: CheckResult, finding: Finding,
                 spec: AlertSpec) -> tuple[dict[str, str], dict[str, str]]:
        inv = self.inventory
        device = result.device
        extra: dict[str, str] = {}
        subject = finding.subject
        if subject and subject in inv.cameras and subject != device:
            device = subject  # a recorder's channel: the alert is about the camera
        elif subject and finding.code in DISK_CODES:
            extra["disk"] = subject.removeprefix("disk-")  # same id as the disk metric
        elif subject and subject != device:
            extra["subject"] = subject
        recorder, unit_id, unit_name, place, name = _where(inv, device)
        labels = {"alertname": spec.alertname, "device": device, "recorder": recorder,
                  "unit": unit_id, "location": place, "severity": spec.severity,
                  "check": result.check.value, **extra}
        if device in inv.cameras:
            cam = inv.cameras[device]
            labels["channel"] = str(cam.channel)
            rec_name = inv.recorders[cam.recorder].name if cam.recorder in inv.recorders else ""
            who = f"{name}（{rec_name} 第 {cam.channel} 路）" if rec_name else name
        else:
            who = name
        # 「硬碟 1」, 「儲存空間 1」, 「記憶卡 1」: the part as the device's page names it
        subject_text = f"{storage_label(extra['disk'])} " if "disk" in extra else "硬碟 "
        problem = spec.problem.format(subject=subject_text).replace("  ", " ")
        summary = " ".join(p for p in (place, who) if p) + " " + problem
        reason = finding.reason if spec.alertname != "CheckFailed" else result.reason
        description = f"{reason.rstrip('。')}。{spec.action}。"
        if unit_name:
            description += f"（業管單位：{unit_name}）"
        annotations = {
            "summary": summary.strip(),
            "description": description,
            "runbook": RUNBOOK.format(anchor=spec.alertname.lower()),
        }
        return labels, annotations


def flap_key(device: str) -> str:
    """The key of a device's DeviceFlapping alert (one per device)."""
    return alert_key({"alertname": FLAPPING.alertname, "device": device})


def alert_key(labels: dict[str, str]) -> str:
    """Identity of an alert: alertname, device and its part (disk/subject)."""
    parts = [labels["alertname"], labels["device"], labels.get("disk", ""),
             labels.get("subject", "")]
    return "|".join(parts)


def _where(inv: Inventory, device: str) -> tuple[str, str, str, str, str]:
    """(recorder, unit id, unit name, place, device name); blanks when unknown."""
    recorder = unit_id = unit_name = place = name = ""
    if device in inv.recorders:
        rec = inv.recorders[device]
        recorder, unit_id, name = rec.id, rec.unit, rec.name
    elif device in inv.cameras:
        cam = inv.cameras[device]
        recorder, name = cam.recorder, cam.name
        if cam.recorder in inv.recorders:
            unit_id = inv.recorders[cam.recorder].unit
    else:
        name = device
    if unit_id in inv.units:
        unit_name = inv.units[unit_id].name
    try:
        place = inv.place_of(device)
    except KeyError:
        place = ""
    return recorder, unit_id, unit_name, place, name
