"""What a probe produces: plain values that every output (metrics, alerts, log, sheet) reads.

Probes know nothing of Prometheus, Alertmanager or the sheet; they return these.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from probes.values import CheckValues, HostValues, PictureValues, RecordingValues, values_json


class Status(StrEnum):
    OK = "ok"
    FAIL = "fail"
    UNKNOWN = "unknown"


class CheckKind(StrEnum):
    """The three questions of the maintenance log (附件四)."""

    HOST = "host"  # 監視主機是否正常運作
    RECORDING = "recording"  # 錄影監材是否正常運轉
    PICTURE = "picture"  # 視訊畫面是否清晰

    @property
    def question(self) -> str:
        """The question as 附件四 writes it (the sheet, the landing page, alerts)."""
        return CHECK_TITLES[self]


# The one table of the three questions of 附件四, as the paper form words them.
CHECK_TITLES: dict[CheckKind, str] = {
    CheckKind.HOST: "監視主機是否正常運作",
    CheckKind.RECORDING: "錄影監材是否正常運轉",
    CheckKind.PICTURE: "視訊畫面是否清晰",
}


class FindingCode(StrEnum):
    """A specific fault; the alert engine maps each to an alertname."""

    RECORDER_DOWN = "recorder-down"
    CAMERA_UNREACHABLE = "camera-unreachable"
    AUTH_FAILED = "auth-failed"
    DEVICE_REBOOTED = "device-rebooted"
    CLOCK_DRIFT = "clock-drift"
    FIRMWARE_CHANGED = "firmware-changed"
    SIGNAL_LOSS = "signal-loss"
    RECORDING_STOPPED = "recording-stopped"
    RECORDING_GAP = "recording-gap"
    DISK_FAILED = "disk-failed"
    DISK_FULL = "disk-full"
    # full, and whether the recorder overwrites its oldest footage cannot be read: said once
    DISK_FULL_OVERWRITE_UNKNOWN = "disk-full-overwrite-unknown"
    RETENTION_TOO_SHORT = "retention-too-short"
    RETENTION_TOO_LONG = "retention-too-long"
    PICTURE_BLURRED = "picture-blurred"
    PICTURE_COVERED = "picture-covered"
    PICTURE_DARK = "picture-dark"
    PICTURE_OVEREXPOSED = "picture-overexposed"
    PICTURE_FROZEN = "picture-frozen"
    CAMERA_MOVED = "camera-moved"


@dataclass(frozen=True, slots=True)
class Finding:
    """One fault found by a check, about the device checked or one of its parts.

    `subject` names the part: a camera id for a recorder's channel, a disk id, or the
    device itself. `reason` is zh-TW text a custodian understands.
    """

    code: FindingCode
    reason: str
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class CheckResult:
    device: str
    check: CheckKind
    status: Status
    reason: str
    at: dt.datetime
    values: CheckValues | None = None  # None: nothing was measured
    findings: tuple[Finding, ...] = ()
    driver: str | None = None
    duration_s: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "status": self.status.value,
            "reason": self.reason,
            "values": values_json(self.values),
            "findings": [
                {"code": f.code.value, "reason": f.reason, "subject": f.subject}
                for f in self.findings
            ],
            "at": self.at.isoformat(),
            "driver": self.driver,
        }


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class ResultFactory:
    """Builds the results of one probe run: the check, its time and its start are fixed,
    so each answer names only what differs (device, status, reason, findings, values)."""

    check: CheckKind
    at: dt.datetime
    started: float  # time.monotonic() when the probe began

    def __call__(
        self,
        device: str,
        status: Status,
        reason: str,
        findings: list[Finding] | tuple[Finding, ...] = (),
        values: CheckValues | None = None,
        driver: str | None = None,
    ) -> CheckResult:
        return CheckResult(
            device=device,
            check=self.check,
            status=status,
            reason=reason,
            at=self.at,
            values=values,
            findings=tuple(findings),
            driver=driver,
            duration_s=round(time.monotonic() - self.started, 3),
        )


_VALUES: dict[CheckKind, type[HostValues] | type[RecordingValues] | type[PictureValues]] = {
    CheckKind.HOST: HostValues,
    CheckKind.RECORDING: RecordingValues,
    CheckKind.PICTURE: PictureValues,
}


def values_from_json(check: CheckKind, doc: Mapping[str, Any] | None) -> CheckValues | None:
    """Stored or served values back as the check's typed values (None for none)."""
    if not isinstance(doc, Mapping) or not doc:
        return None
    return _VALUES[check].from_json(doc)
