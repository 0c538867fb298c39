"""The state of one simulated device, and how each fault kind changes it.

Every protocol server (ONVIF, ISAPI, Dahua CGI, snapshots, SNMP, RTSP) reads the same
`SimDevice`, so a fault injected once shows up consistently in every protocol: a failed
disk is `error` in ISAPI's hddList, `Error` in Dahua's storageDevice reply and a bad
hrStorage/vendor disk row in SNMP.

Times are timezone-aware UTC `datetime`s. A device's own clock is `device.now()`: camwatch's
clock (`camwatch.clock`: the host's, or the one CAMWATCH_CLOCK pins, so a simulator and the
camwatch probing it agree on the time) plus the offset a `clock-drift` fault sets.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from camwatch.clock import Clock, default_clock
from camwatch.clock import now as clock_now
from inventory.models import Vendor

if TYPE_CHECKING:
    from probes.drivers.base import MediaConventions


class DeviceKind(StrEnum):
    RECORDER = "recorder"
    CAMERA = "camera"


class FaultKind(StrEnum):
    OFFLINE = "offline"  # connection refused
    SLOW = "slow"  # severity: seconds before each reply
    AUTH = "auth"  # the configured password is refused
    MALFORMED = "malformed"  # broken XML / truncated bodies
    REBOOT = "reboot"  # uptime resets (boot time = now)
    CLOCK_DRIFT = "clock-drift"  # severity: seconds the device clock is off (may be < 0)
    RECORDING_STOPPED = "recording-stopped"  # newest footage stops advancing
    RECORDING_GAP = "recording-gap"  # severity: minutes missing within the last 24 h
    DISK_FAILED = "disk-failed"  # severity: disk number (1-based) that failed
    DISK_FULL = "disk-full"  # every disk has no free space left
    RETENTION_SHORT = "retention-short"  # severity: days of footage kept
    RETENTION_LONG = "retention-long"  # severity: days of footage kept
    BLURRED = "blurred"  # severity: Gaussian sigma in pixels (at 640 px width)
    COVERED = "covered"  # severity: fraction of the frame covered (0..1)
    DARK = "dark"  # severity: gain (0..1, lower is darker)
    OVEREXPOSED = "overexposed"  # severity: 0..1 how washed out
    FROZEN = "frozen"  # the same frame bytes forever
    MOVED = "moved"  # severity: fraction of the frame width the view swung
    SIGNAL_LOSS = "signal-loss"  # analog video lost; on a recorder severity = channel


DEFAULT_SEVERITY: dict[FaultKind, float] = {
    FaultKind.OFFLINE: 1.0,
    FaultKind.SLOW: 12.0,
    FaultKind.AUTH: 1.0,
    FaultKind.MALFORMED: 1.0,
    FaultKind.REBOOT: 1.0,
    FaultKind.CLOCK_DRIFT: 300.0,
    FaultKind.RECORDING_STOPPED: 1.0,
    FaultKind.RECORDING_GAP: 30.0,
    FaultKind.DISK_FAILED: 1.0,
    FaultKind.DISK_FULL: 1.0,
    FaultKind.RETENTION_SHORT: 7.0,
    FaultKind.RETENTION_LONG: 400.0,
    FaultKind.BLURRED: 6.0,
    FaultKind.COVERED: 0.9,
    FaultKind.DARK: 0.08,
    FaultKind.OVEREXPOSED: 0.9,
    FaultKind.FROZEN: 1.0,
    FaultKind.MOVED: 0.35,
    FaultKind.SIGNAL_LOSS: 1.0,
}

# Faults that change what a camera's picture looks like (scenes.py reads them).
PICTURE_FAULTS = frozenset(
    {
        FaultKind.BLURRED,
        FaultKind.COVERED,
        FaultKind.DARK,
        FaultKind.OVEREXPOSED,
        FaultKind.FROZEN,
        FaultKind.MOVED,
    }
)
# Faults handled by the protocol servers, not by state changes.
TRANSPORT_FAULTS = frozenset(
    {FaultKind.OFFLINE, FaultKind.SLOW, FaultKind.AUTH, FaultKind.MALFORMED}
)
# Faults of a recorder's recording that may also be aimed at one camera (its channel).
CHANNEL_FAULTS = frozenset(
    {FaultKind.RECORDING_STOPPED, FaultKind.RECORDING_GAP, FaultKind.SIGNAL_LOSS}
)

DEFAULT_RETENTION_DAYS = 45.0
MB = 1024 * 1024


class Quirk(StrEnum):
    """How some real devices answer, kept so that camwatch is tested against them (each
    is the shape of a captured reply: ../shared/fixtures and the LibreNMS walks named
    in simulator/README.md)."""

    # SNMP: a Hikvision NVR agent that answers sysDescr alone ("Hikvision company
    # products": LibreNMS's hikvision-nvr_1 walk)
    SNMP_SYSDESCR_ONLY = "snmp-sysdescr-only"
    # SNMP: HIKVISION-MIB hikDiskTable with hikDiskFreeSpace and hikDiskCapability (MB)
    # only, rows indexed "N.0", no hikDiskStatus and no HOST-RESOURCES (hikvision-nvr)
    SNMP_DISKS_WITHOUT_STATUS = "snmp-disks-without-status"
    # SNMP: a Dahua NVR that serves DAHUA-SNMP-MIB's identity scalars (deviceType,
    # softwareRevision, serialNumber, deviceStatus) and no disk table (dahua-nvr)
    SNMP_NO_DISK_TABLE = "snmp-no-disk-table"
    # ISAPI: /ISAPI/ContentMgmt/InputProxy/channels/status not offered (older NVR
    # firmware, as the DS-7616NI-Q2 V4.30 the issue-13 capture came from)
    ISAPI_NO_PROXY_STATUS = "isapi-no-proxy-status"
    # ISAPI: the account may log in but not take pictures: 403 with ResponseStatus
    # statusCode 4 / subStatusCode lowPrivilege on /ISAPI/Streaming/channels/N01/picture
    # (the ISAPI error for a user without the remote live-view right)
    ISAPI_PICTURE_LOW_PRIVILEGE = "isapi-picture-low-privilege"


# Quirks of the models the simulated campus may use, from their captured replies.
MODEL_QUIRKS: dict[str, frozenset[Quirk]] = {
    "DS-7616NI-Q2": frozenset({Quirk.ISAPI_NO_PROXY_STATUS}),
    "DS-7616NI-Q2/16P": frozenset({Quirk.ISAPI_NO_PROXY_STATUS}),
}


def parse_fault(text: str) -> tuple[str, FaultKind, float]:
    """`DEVICE=KIND[:SEVERITY]` (the `--fault` option) -> (device, kind, severity)."""
    if "=" not in text:
        raise ValueError(f"{text!r}: expected DEVICE=KIND[:SEVERITY], e.g. cam-001=blurred:8")
    device, rest = text.split("=", 1)
    kind_text, _, sev_text = rest.partition(":")
    kind = fault_kind(kind_text)
    severity = float(sev_text) if sev_text else DEFAULT_SEVERITY[kind]
    return device.strip(), kind, severity


def fault_kind(text: str) -> FaultKind:
    try:
        return FaultKind(text.strip().lower().replace("_", "-"))
    except ValueError:
        names = ", ".join(k.value for k in FaultKind)
        raise ValueError(f"unknown fault kind {text!r} (one of: {names})") from None


@dataclass
class Disk:
    id: int  # 1-based, as devices number them
    capacity: int  # bytes
    free: int  # bytes
    status: str = "ok"  # ok | failed | full

    @property
    def capacity_mb(self) -> int:
        return self.capacity // MB

    @property
    def free_mb(self) -> int:
        return self.free // MB


@dataclass
class ChannelState:
    """One video input of a recorder (or the single stream of an IP camera)."""

    channel: int  # 1-based
    camera_id: str | None = None
    name: str = ""
    analog: bool = False
    recording: bool = True
    stopped_at: dt.datetime | None = None  # newest footage when recording stopped
    retention_days: float = DEFAULT_RETENTION_DAYS
    gaps: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)
    signal: bool = True

    def newest_footage(self, now: dt.datetime) -> dt.datetime:
        """The newest recorded second: 'now' while recording, frozen once stopped."""
        if self.recording and self.stopped_at is None:
            return now - dt.timedelta(seconds=2)
        return self.stopped_at or now

    def oldest_footage(self, now: dt.datetime) -> dt.datetime:
        return now - dt.timedelta(days=self.retention_days)

    def segments(
        self, start: dt.datetime, end: dt.datetime, now: dt.datetime
    ) -> list[tuple[dt.datetime, dt.datetime]]:
        """Recorded spans within [start, end]: one per hour of footage (as recorders
        cut files), minus gaps, clipped to the footage that exists."""
        lo = max(start, self.oldest_footage(now))
        hi = min(end, self.newest_footage(now))
        if hi <= lo:
            return []
        out: list[tuple[dt.datetime, dt.datetime]] = []
        t = lo
        while t < hi:
            nxt = min(hi, (t + dt.timedelta(hours=1)).replace(minute=0, second=0, microsecond=0))
            out.extend(_minus_gaps(t, nxt, self.gaps))
            t = nxt
        return out


def _minus_gaps(
    a: dt.datetime, b: dt.datetime, gaps: list[tuple[dt.datetime, dt.datetime]]
) -> list[tuple[dt.datetime, dt.datetime]]:
    spans = [(a, b)]
    for g0, g1 in gaps:
        nxt: list[tuple[dt.datetime, dt.datetime]] = []
        for s0, s1 in spans:
            if g1 <= s0 or g0 >= s1:
                nxt.append((s0, s1))
                continue
            if s0 < g0:
                nxt.append((s0, g0))
            if g1 < s1:
                nxt.append((g1, s1))
        spans = nxt
    return spans


def utcnow() -> dt.datetime:
    """The process clock (camwatch.clock), for devices built without one."""
    return clock_now()


@dataclass
class SimDevice:
    """A simulated recorder or camera (analog cameras exist only as a recorder channel
    plus this object, which carries their picture faults; they have no address)."""

    id: str
    kind: DeviceKind
    vendor: Vendor
    name: str = ""
    analog: bool = False
    dvr: bool = False  # a recorder of analog cameras (DVR/XVR)
    host: str | None = None  # loopback address the servers bind; None: not served
    http_port: int = 80
    onvif_port: int = 80
    rtsp_port: int = 554
    snmp_port: int = 161
    onvif_path: str = "/onvif/device_service"
    username: str = "admin"
    password: str = ""
    snmp_community: str | None = None
    model: str = ""
    firmware: str = ""
    firmware_build: str = ""
    serial: str = ""
    mac: str = "00:00:00:00:00:00"
    boot_time: dt.datetime = field(default_factory=utcnow)
    clock_offset_s: float = 0.0
    timezone: str = "CST-8:00:00"  # POSIX TZ as devices report it (Asia/Taipei)
    utc_offset_s: int = 8 * 3600
    disks: list[Disk] = field(default_factory=list)
    channels: list[ChannelState] = field(default_factory=list)
    scene_seed: int = 0
    video_path: str | None = None  # a camera may play a video file instead of a scene
    recorder_id: str | None = None  # cameras: the recorder that records them
    channel_no: int | None = None  # cameras: their channel on that recorder
    faults: dict[FaultKind, float] = field(default_factory=dict)
    quirks: frozenset[Quirk] = frozenset()
    # Listens on its HTTP (ONVIF, ISAPI, CGI) ports: not a recorder the inventory lists
    # with SNMP alone, which is then what a real one would be to camwatch (nothing on 80).
    serves_http: bool = True
    # The recorder's "disk full" setting: overwrite its oldest footage (the vendors'
    # default) or stop recording. The disk-full fault turns it off (a full disk is only
    # a fault on a recorder that does not overwrite).
    overwrite: bool = True
    _baseline: dict[str, Any] | None = field(default=None, repr=False)
    # Set by the world: the recorder channel recording this camera (for channel faults).
    recorder_channel: ChannelState | None = field(default=None, repr=False)
    camera_devices: dict[int, SimDevice] = field(default_factory=dict, repr=False)
    # The time the world runs on (build_world gives every device of a campus the same one).
    clock: Clock = field(default_factory=default_clock, repr=False, compare=False)

    # -- clock -------------------------------------------------------------------
    def now(self) -> dt.datetime:
        """The device's own clock (UTC), off by the clock-drift fault if any."""
        return self.clock.now() + dt.timedelta(seconds=self.clock_offset_s)

    def uptime_s(self) -> float:
        return max(0.0, (self.clock.now() - self.boot_time).total_seconds())

    @property
    def is_recorder(self) -> bool:
        return self.kind == DeviceKind.RECORDER

    @property
    def served(self) -> bool:
        return self.host is not None

    # -- faults ------------------------------------------------------------------
    def has(self, kind: FaultKind) -> bool:
        return kind in self.faults

    def severity(self, kind: FaultKind) -> float:
        return self.faults.get(kind, DEFAULT_SEVERITY[kind])

    def _snapshot(self) -> dict[str, Any]:
        return {
            "clock_offset_s": self.clock_offset_s,
            "overwrite": self.overwrite,
            "disks": copy.deepcopy(self.disks),
            "channels": [
                (c.recording, c.stopped_at, c.retention_days, list(c.gaps), c.signal)
                for c in self.channels
            ],
        }

    def _restore(self, snap: dict[str, Any]) -> None:
        self.clock_offset_s = snap["clock_offset_s"]
        self.overwrite = snap["overwrite"]
        self.disks = copy.deepcopy(snap["disks"])
        for ch, (rec, stopped, ret, gaps, sig) in zip(
            self.channels, snap["channels"], strict=False
        ):
            ch.recording, ch.stopped_at, ch.retention_days = rec, stopped, ret
            ch.gaps, ch.signal = list(gaps), sig

    def apply_fault(self, kind: FaultKind | str, severity: float | None = None) -> None:
        """Inject a fault. State faults change the device's state at once; transport
        and picture faults are read by the servers and scenes on every request."""
        kind = fault_kind(kind) if isinstance(kind, str) else kind
        sev = DEFAULT_SEVERITY[kind] if severity is None else float(severity)
        if self._baseline is None:
            self._baseline = self._snapshot()
        self.faults[kind] = sev
        now = self.clock.now()
        targets = self._channel_targets(kind, sev)
        if kind == FaultKind.OFFLINE and self.recorder_channel is not None:
            # The recorder cannot record a camera it cannot reach.
            ch = self.recorder_channel
            if ch.recording:
                ch.recording, ch.stopped_at = False, now - dt.timedelta(seconds=2)
        if kind == FaultKind.REBOOT:
            self.boot_time = now
        elif kind == FaultKind.CLOCK_DRIFT:
            self.clock_offset_s = sev
        elif kind == FaultKind.RECORDING_STOPPED:
            for ch in targets:
                if ch.recording:
                    ch.recording = False
                    ch.stopped_at = now - dt.timedelta(seconds=2)
        elif kind == FaultKind.RECORDING_GAP:
            for ch in targets:
                end = now - dt.timedelta(hours=2)
                ch.gaps.append((end - dt.timedelta(minutes=sev), end))
        elif kind == FaultKind.SIGNAL_LOSS:
            for ch in targets:
                ch.signal = False
        elif kind == FaultKind.DISK_FAILED:
            idx = max(1, int(sev)) if self.disks and int(sev) <= len(self.disks) else 1
            for d in self.disks:
                if d.id == idx:
                    d.status = "failed"
                    d.free = 0
            if self.disks and all(d.status == "failed" for d in self.disks):
                # No disk left to write to: a recorder stops recording.
                for ch in self.channels:
                    if ch.recording:
                        ch.recording = False
                        ch.stopped_at = now - dt.timedelta(seconds=2)
        elif kind == FaultKind.DISK_FULL:
            self.overwrite = False  # "disk full: stop recording"
            for d in self.disks:
                if d.status == "ok":
                    d.status = "full"
                    d.free = 0
        elif kind in (FaultKind.RETENTION_SHORT, FaultKind.RETENTION_LONG):
            for ch in self.channels:
                ch.retention_days = sev

    def _channel_targets(self, kind: FaultKind, sev: float) -> list[ChannelState]:
        if kind not in CHANNEL_FAULTS:
            return []
        if self.is_recorder:
            if kind == FaultKind.SIGNAL_LOSS:
                return [c for c in self.channels if c.channel == int(sev)] or self.channels[:1]
            return list(self.channels)
        # A camera: its own stream, and its channel on the recorder.
        out = list(self.channels)
        if self.recorder_channel is not None:
            out.append(self.recorder_channel)
        return out

    def clear_faults(self) -> None:
        """Back to healthy. A reboot is not undone (the uptime stays reset)."""
        if self._baseline is not None:
            self._restore(self._baseline)
        if not self.is_recorder and self.recorder_channel is not None:
            ch = self.recorder_channel
            ch.recording, ch.stopped_at, ch.signal, ch.gaps = True, None, True, []
        self.faults.clear()
        self._baseline = None

    # -- derived -----------------------------------------------------------------
    def picture_faults(self) -> dict[FaultKind, float]:
        return {k: v for k, v in self.faults.items() if k in PICTURE_FAULTS}

    def channel(self, no: int) -> ChannelState | None:
        for ch in self.channels:
            if ch.channel == no:
                return ch
        return None

    def camera_of_channel(self, no: int) -> SimDevice | None:
        """The camera device shown on a channel (the device itself for a camera)."""
        if not self.is_recorder:
            return self
        return self.camera_devices.get(no)

    def rtsp_path(self, channel: int = 1, sub: bool = False) -> str:
        """The RTSP path GetStreamUri names (the RTSP server serves these): the vendor's
        convention from its driver (probes.drivers.*.media), the same data the picture
        check falls back on."""
        media = vendor_media(self.vendor)
        path = media.stream_path(channel, sub=sub) if media else None
        return path or f"/ch{channel}/{'sub' if sub else 'main'}"

    def snapshot_path(self, channel: int = 1) -> str:
        """The HTTP path GetSnapshotUri names (digest auth)."""
        if self.vendor == Vendor.HIKVISION:
            # As Hikvision firmware answers GetSnapshotUri (ISAPI's
            # /ISAPI/Streaming/channels/{ch}01/picture serves the same picture).
            return (
                f"/onvif-http/snapshot?Profile_{channel}01"
                if self.is_recorder
                else ("/onvif-http/snapshot?Profile_1")
            )
        media = vendor_media(self.vendor)
        path = media.snapshot_path(channel) if media else None
        if self.vendor == Vendor.DAHUA and path:
            return path  # Dahua's GetSnapshotUri names its own CGI
        return f"/onvif/snapshot/{channel}.jpg"


def vendor_media(vendor: Vendor) -> MediaConventions | None:
    """A vendor's URL conventions, from the driver of its API (the probes' own data)."""
    from probes.drivers.table import DRIVERS

    return next((d.media for d in DRIVERS.values() if d.vendor == vendor), None)


def stable_int(text: str, bits: int = 31) -> int:
    """A deterministic integer from a string (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % (1 << bits)
