"""The one driver interface: what a protocol can tell about a device, and how a check
asks it.

A `Driver` (one per protocol, listed in `probes.drivers.table.DRIVERS`) declares its
`abilities` — device info, clock, uptime, channel signals, disks, recordings, frame
sources — and, for a vendor API, the vendor's URL conventions as data (`media`), which
the simulator imports too. For one check of one device it opens a `DriverSession` on a
`DeviceLink` (the device, its login, its limits and one HTTP session that every HTTP
driver of that device shares).

A session answers the abilities it has; the checks never branch on the protocol: they
ask each listed driver, in the table's order of preference, for what is still missing
(`probes.gather`). A session may narrow its `abilities` for this device (firmware that
is known not to answer), and does any one-time set-up in `setup()`: what it discovers
(service addresses, profiles, templates) goes into `link.state` (in-process, per device
and driver) or `link.memory` (persisted with the device memory), so that the checks
that follow are cheap polls.

Failures are `DeviceError`s with a `ReasonCode` (probes.reasons); a session never
catches a final one.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from inventory.models import Address, Vendor
from inventory.models import Protocol as DeviceProtocol
from probes.context import ProbeContext, Target, campus_tz
from probes.drivers.http import DeviceHttp, HttpLimits, base_url, limits_for
from probes.facts import ChannelRecording, ChannelSignal, DeviceInfo, DeviceTime, Disk
from probes.reasons import DeviceError, ReasonCode


class Ability(StrEnum):
    DEVICE_INFO = "device-info"  # manufacturer, model, firmware, serial
    CLOCK = "clock"  # the device's clock (and its offset from camwatch's)
    UPTIME = "uptime"
    SIGNALS = "signals"  # video signal per recorder channel
    DISKS = "disks"
    # whether the recorder overwrites its oldest footage when its disks are full (asked
    # only when a disk is full and the inventory does not say)
    OVERWRITE = "overwrite"
    RECORDINGS = "recordings"  # recorded footage per channel (newest, oldest, gaps)
    FRAMES = "frames"  # where a frame of a camera can be had


@dataclass(frozen=True)
class MediaConventions:
    """A vendor's URL conventions, known without asking the device. Paths are
    templates with `{channel}` (1-based; 1 on a camera)."""

    snapshot: str | None = None  # a JPEG over HTTP (digest auth), on the HTTP port
    stream: str | None = None  # the main RTSP stream, on the RTSP port
    stream_sub: str | None = None  # the sub stream

    def snapshot_path(self, channel: int = 1) -> str | None:
        return self.snapshot.format(channel=channel) if self.snapshot else None

    def stream_path(self, channel: int = 1, *, sub: bool = False) -> str | None:
        template = self.stream_sub if sub else self.stream
        return template.format(channel=channel) if template else None

    def snapshot_channel(self, path_qs: str) -> int | None:
        """The channel a snapshot request (path and query) asks for by this
        convention; None when it is no such request (the simulator routes by it)."""
        if not self.snapshot:
            return None
        pattern = re.escape(self.snapshot).replace(re.escape("{channel}"), r"(\d+)")
        m = re.fullmatch(pattern, path_qs, re.IGNORECASE)
        return int(m.group(1)) if m else None


@dataclass(frozen=True)
class ClockReading:
    """The device's clock as read, and its offset from camwatch's clock at the middle
    of the exchange (device - camwatch; None when the clock was invalid)."""

    time: DeviceTime
    offset_s: float | None


async def timed_clock(read: Callable[[], Awaitable[DeviceTime]], link: DeviceLink) -> ClockReading:
    t0 = time.time()
    dtime = await read()
    mid = (t0 + time.time()) / 2
    return link.clock_reading(dtime, mid)


def clock_offset(dtime: DeviceTime, probe_epoch: float) -> float | None:
    if dtime.utc is None:
        return None
    return round(dtime.utc.timestamp() - probe_epoch, 3)


class RecordingSink(Protocol):
    """Where a driver puts recorded footage as it learns it, channel by channel, so
    that a recorder too slow for every channel still has the others judged. The
    recording check merges by one rule (probes.recording.RecFacts)."""

    def channel(self, rec: ChannelRecording, *, spans: bool) -> None:
        """One channel; `spans`: with the recorded spans (hence its gaps)."""

    def summary(self, newest: dt.datetime | None, oldest: dt.datetime | None) -> None:
        """Only the whole recorder's newest and oldest footage (no per-channel search)."""

    def clock(self, offset_s: float | None) -> None:
        """The device clock's offset, measured on the way (footage times are its)."""


@dataclass
class DeviceLink:
    """One device during one check: where it is, its login, its limits, one HTTP
    session shared by every HTTP driver (one client, one keep-alive connection), and
    the drivers' state for this device."""

    target: Target
    ctx: ProbeContext
    login: tuple[str, str] | None
    # camwatch's clock minus the host's (ProbeRun.clock_skew_s); 0 unless it is pinned
    clock_skew_s: float = 0.0
    limits: HttpLimits = field(init=False)
    _http: DeviceHttp | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.limits = limits_for(self.target.address, self.ctx.config)

    @property
    def address(self) -> Address:
        return self.target.address

    def clock_reading(self, dtime: DeviceTime, host_epoch: float) -> ClockReading:
        """The device's clock read at host time `host_epoch`, and its offset from
        camwatch's clock."""
        return ClockReading(dtime, clock_offset(dtime, host_epoch + self.clock_skew_s))

    @property
    def base_url(self) -> str:
        return base_url(self.target.address)

    @property
    def memory(self) -> dict[str, Any]:
        """The device's remembered facts (persisted; plain JSON values)."""
        return self.ctx.memory.fact(self.target.id)

    def state(self, driver: str) -> dict[str, Any]:
        """A driver's in-process state for this device (what its set-up found)."""
        return self.ctx.driver_state.setdefault((self.target.id, driver), {})

    @property
    def tz(self) -> dt.tzinfo:
        return campus_tz(self.ctx)

    def channels(self) -> list[int]:
        """The recorder's camera channels in the inventory."""
        return sorted({c.channel for c in self.ctx.inventory.cameras_of(self.target.id)})

    async def http(self) -> DeviceHttp:
        """The device's HTTP session, opened on first use. The same device, login and
        limits (redirects, TLS pin, body size) throughout, so nothing reaches another
        host."""
        if self._http is None:
            http = DeviceHttp(self.limits, self.login)
            await http.__aenter__()
            self._http = http
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()


class DriverSession:
    """One driver speaking to one device during one check. The default of every
    ability is "cannot"; a driver overrides those it declares."""

    def __init__(self, driver: Driver, link: DeviceLink) -> None:
        self.driver = driver
        self.link = link

    @property
    def abilities(self) -> frozenset[Ability]:
        """What this session can answer for this device (the driver's abilities,
        narrowed where the device is known not to answer)."""
        return self.driver.abilities

    async def setup(self) -> None:
        """Before the first question of a check. Cheap when its work is cached."""

    async def device_info(self) -> DeviceInfo:
        raise self._cannot(Ability.DEVICE_INFO)

    async def clock(self) -> ClockReading:
        raise self._cannot(Ability.CLOCK)

    async def uptime(self) -> float | None:
        raise self._cannot(Ability.UPTIME)

    async def signals(self, channels: list[int]) -> list[ChannelSignal]:
        raise self._cannot(Ability.SIGNALS)

    async def disks(self) -> list[Disk] | None:
        raise self._cannot(Ability.DISKS)

    async def overwrite(self) -> bool | None:
        """True: the device overwrites its oldest footage when full; False: it stops
        recording; None: its setting does not say."""
        raise self._cannot(Ability.OVERWRITE)

    async def recordings(self, now: dt.datetime, out: RecordingSink) -> bool:
        """Put what the device recorded into `out`; False when it offered nothing."""
        raise self._cannot(Ability.RECORDINGS)

    async def aclose(self) -> None:
        """Ends this session (the link's HTTP session is closed by the check)."""

    def _cannot(self, ability: Ability) -> DeviceError:
        return DeviceError(ReasonCode.NO_DRIVER, f"{self.driver.name} 無法提供 {ability.value}")


class Driver:
    """A protocol's driver: its name (as results name it), the protocol, what it can
    answer, and for a vendor API the vendor and its URL conventions."""

    name: ClassVar[str]
    protocol: ClassVar[DeviceProtocol]
    abilities: ClassVar[frozenset[Ability]]
    vendor: ClassVar[Vendor | None] = None  # whose URL conventions `media` are
    media: ClassVar[MediaConventions | None] = None
    http: ClassVar[bool] = True  # speaks HTTP (through the link's shared session)

    def session(self, link: DeviceLink) -> DriverSession:
        return DriverSession(self, link)

    async def prepare(self) -> None:
        """Once per process, before the first check (e.g. parse the WSDLs)."""

    async def frame_uris(
        self, http: DeviceHttp, address: Address, login: tuple[str, str] | None, channel: int,
        *, snapshot: bool = True,
    ) -> tuple[str | None, str | None] | None:
        """(snapshot URI, stream URI) the device names for a channel, for a driver that
        asks the device for them (ONVIF); None for a driver that does not."""
        return None
