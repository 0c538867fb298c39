"""Facts a driver reads from a device, whatever the protocol: plain data, no judgement.

Drivers (onvif, isapi, dahua, snmp) return these; the checks (host, recording) turn them
into results. Any field a device did not give is None ("unknown"), never a guess.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from probes.periods import due, read_now


@dataclass(frozen=True)
class DeviceInfo:
    manufacturer: str | None = None
    model: str | None = None
    firmware: str | None = None
    serial: str | None = None
    device_type: str | None = None  # e.g. "DVR", "NVR", "IPCamera"
    # The device's own verdict on itself (Synology systemStatus, Dahua deviceStatus), in
    # its own words, and whether that word means healthy (None: no such verdict).
    status: str | None = None
    healthy: bool | None = None
    description: str | None = None  # what the device calls itself (SNMP sysDescr)


@dataclass(frozen=True)
class DeviceTime:
    """The device's clock as it told us. `utc` is None when the value was invalid
    (a real camera sent minute 61): the clock is then unknown, not a crash."""

    utc: dt.datetime | None
    raw: str | None = None

    @property
    def valid(self) -> bool:
        return self.utc is not None


class DiskStatus(StrEnum):
    OK = "ok"
    WARNING = "warning"  # still working, but the device warns (SMART, a degraded RAID)
    FAILED = "failed"
    FULL = "full"
    UNKNOWN = "unknown"


class StorageKind(StrEnum):
    """What a storage entry is, as the device's own web page tells them apart: a disk
    in a bay (health, and on a recorder its free space), a storage pool or RAID group
    (health only: its space is allocated to volumes), a volume (a file system: its
    fullness), a camera's memory card, a network share the device records to."""

    DISK = "disk"
    POOL = "pool"
    VOLUME = "volume"
    CARD = "card"
    NAS = "nas"


@dataclass(frozen=True)
class Disk:
    id: str
    status: DiskStatus
    capacity_bytes: int | None = None
    free_bytes: int | None = None
    name: str | None = None
    raw_status: str | None = None
    kind: StorageKind = StorageKind.DISK
    temperature_c: float | None = None


@dataclass(frozen=True)
class ChannelRecording:
    channel: int
    recording: bool | None = None
    newest: dt.datetime | None = None
    oldest: dt.datetime | None = None
    gaps: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)


@dataclass(frozen=True)
class ChannelSignal:
    channel: int
    signal: bool | None  # False = video loss (no signal)
    name: str | None = None


@dataclass(frozen=True)
class HostFacts:
    info: DeviceInfo | None = None
    time: DeviceTime | None = None
    uptime_s: float | None = None
    signals: list[ChannelSignal] = field(default_factory=list)


# A pause in the recorded spans shorter than this is a file boundary, not a gap.
GAP_MIN = dt.timedelta(seconds=60)


def spans_to_recording(
    channel: int,
    enabled: bool | None,
    recent: list[tuple[dt.datetime, dt.datetime]],
    oldest: dt.datetime | None,
    min_gap: dt.timedelta = dt.timedelta(minutes=2),
) -> ChannelRecording:
    """Recorded spans of the last 24 h → newest footage and the gaps between spans."""
    spans = sorted(recent)
    gaps: list[tuple[dt.datetime, dt.datetime]] = []
    cursor: dt.datetime | None = None
    for start, end in spans:
        if cursor is not None and start - cursor > min_gap:
            gaps.append((cursor, start))
        cursor = end if cursor is None else max(cursor, end)
    newest = cursor
    first = spans[0][0] if spans else None
    if first is not None and (oldest is None or first < oldest):
        oldest = first
    return ChannelRecording(
        channel=channel, recording=enabled, newest=newest, oldest=oldest, gaps=gaps
    )


Span = tuple[dt.datetime, dt.datetime]


def coalesce(spans: list[Span], min_gap: dt.timedelta = GAP_MIN) -> list[Span]:
    """Recorded spans with every pause of at most `min_gap` closed (file boundaries):
    what is left between them are the gaps spans_to_recording would find, so the
    verdict from the coalesced spans is the verdict from the files."""
    out: list[Span] = []
    for start, end in sorted(spans):
        if out and start - out[-1][1] <= min_gap:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def extend_spans(known: list[Span], found: list[Span], since: dt.datetime,
                 window: dt.datetime, min_gap: dt.timedelta = GAP_MIN) -> list[Span]:
    """The spans of the day from the ones `known` before and the ones `found` by a
    search from `since`: what was found is the device's word from `since` on (a file
    still being written, footage overwritten meanwhile), what was known stands before
    it; spans that ended before `window` (24 h ago) are dropped."""
    before = [(a, min(b, since)) for a, b in known if a < since]
    after = [(max(a, since), b) for a, b in found if b > since]
    return [s for s in coalesce(before + after, min_gap) if s[1] > window]


# A recorder's whole day of recordings is searched once an hour; the checks between
# search from this long before the newest footage they knew (the file being written).
FULL_SEARCH_EVERY = 3600.0
SEARCH_OVERLAP = dt.timedelta(minutes=15)

SpanSearch = Callable[[dt.datetime, dt.datetime], Awaitable[list[Span]]]


class DaySearch:
    """One recording check's searches of a recorder's day, channel by channel.

    The day is searched in full once per FULL_SEARCH_EVERY; the checks between search
    each channel only from SEARCH_OVERLAP before the newest footage they knew, and keep
    the rest in `kept` (in-process, coalesced). A gap that forms while camwatch watches
    is seen at once; footage lost from the past (a failing disk, deleted files) at the
    next full search.
    """

    def __init__(self, kept: dict[str, Any], device_id: str, window: dt.datetime,
                 now: dt.datetime) -> None:
        self._kept, self._device = kept, device_id
        self._t = time.monotonic()
        self.full = due(kept, device_id, FULL_SEARCH_EVERY, self._t)
        if self.full:
            kept.clear()
        self._known: dict[Any, list[Span]] = kept.setdefault("spans", {})
        self.window, self.now = window, now

    async def spans(self, key: Any, search: SpanSearch) -> list[Span]:
        """The day's coalesced spans of one channel (`key`), from `search(start, end)`."""
        before = self._known.get(key)
        if before is None:
            spans = coalesce(await search(self.window, self.now))
        else:
            newest = before[-1][1] if before else self.window
            since = max(self.window, min(newest, self.now) - SEARCH_OVERLAP)
            spans = extend_spans(before, await search(since, self.now), since, self.window)
        self._known[key] = spans
        return spans

    def done(self) -> None:
        """Every channel searched: a full search holds until its period ends."""
        if self.full:
            read_now(self._kept, self._device, FULL_SEARCH_EVERY, self._t)


def oldest_cached(memory: dict[str, Any], ch: int, now: dt.datetime) -> dt.datetime | None:
    """Oldest footage changes slowly: searched again at most hourly (device memory)."""
    entry = memory.get("oldest", {}).get(str(ch))
    if not isinstance(entry, list) or len(entry) != 2:
        return None
    try:
        checked = dt.datetime.fromisoformat(entry[1])
        if now - checked > dt.timedelta(hours=1):
            return None
        return dt.datetime.fromisoformat(entry[0])
    except (TypeError, ValueError):
        return None


def remember_oldest(
    memory: dict[str, Any], ch: int, oldest: dt.datetime | None, now: dt.datetime
) -> None:
    if oldest is not None:
        memory.setdefault("oldest", {})[str(ch)] = [oldest.isoformat(), now.isoformat()]


# --- lenient parsing shared by the drivers ---------------------------------------------

_ISO = re.compile(
    r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})[T ]-?(\d{1,2}):(\d{1,2}):(\d{1,2})(?:[.,](\d+))?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?\s*$"
)


def parse_datetime(value: str | None, *, default_tz: dt.tzinfo = dt.UTC) -> dt.datetime | None:
    """An ISO-8601-ish timestamp as an aware UTC datetime; None when it is not valid.

    Devices send `2024-08-17T00:61:16Z`, `2010-01-01 00:00:00`, `0000-00-00T00:00:00Z`:
    all of these give None or a value, never an exception.
    """
    if not value:
        return None
    if (
        len(value) == 20
        and value[19] == "Z"
        and value[10] == "T"
        and value[4] == value[7] == "-"
        and value[13] == value[16] == ":"
        and value[:4].isascii() and value[:4].isdigit()
    ):
        # the common form (2024-05-01T10:00:00Z), parsed in C; anything odd (minute 61)
        # falls through to the lenient parser below
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            pass
    m = _ISO.match(value)
    if not m:
        return None
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    frac = m.group(7) or ""
    micro = int((frac + "000000")[:6]) if frac else 0
    tzs = m.group(8)
    try:
        if tzs is None:
            tz: dt.tzinfo = default_tz
        elif tzs == "Z":
            tz = dt.UTC
        else:
            sign = 1 if tzs[0] == "+" else -1
            digits = tzs[1:].replace(":", "")
            tz = dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=tz).astimezone(
            dt.UTC
        )
    except (ValueError, OverflowError):
        return None


def parse_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value.strip()))
    except (ValueError, OverflowError):
        return None


def parse_bool(value: str | None) -> bool | None:
    if value is None:
        return None
    v = value.strip().lower()
    if v in ("true", "1", "yes", "on"):
        return True
    if v in ("false", "0", "no", "off"):
        return False
    return None
