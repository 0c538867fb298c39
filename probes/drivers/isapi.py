"""Hikvision ISAPI over HTTP (digest auth): device info, time, uptime, disks, channels,
recording search.

Hikvision firmware mixes namespaces (isapi.org/ver20, hikvision.com/ver20 and ver10, OEM
std-cgi.com) even inside one reply, so every parser here matches elements by local name
only. Parsers are pure functions of the reply body; `IsapiClient` does the fetching.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import uuid
from xml.sax.saxutils import escape

from lxml import etree

from inventory.models import Protocol, Vendor
from probes.drivers.base import (
    Ability,
    ClockReading,
    DeviceLink,
    Driver,
    DriverSession,
    MediaConventions,
    RecordingSink,
    timed_clock,
)
from probes.drivers.http import (
    DeviceError,
    DeviceHttp,
    child,
    iter_local,
    local,
    parse_xml,
    text,
)
from probes.facts import (
    GAP_MIN,
    ChannelSignal,
    DaySearch,
    DeviceInfo,
    DeviceTime,
    Disk,
    DiskStatus,
    StorageKind,
    oldest_cached,
    parse_bool,
    parse_datetime,
    parse_int,
    remember_oldest,
    spans_to_recording,
)
from probes.reasons import ReasonCode

__all__ = ["IsapiClient", "IsapiDriver", "spans_to_recording"]

MB = 1024 * 1024

# ContentMgmt/Storage hdd status values (ISAPI docs): ok, unformatted, error, idle,
# mismatch, offline, smartFailed, reparing, formatting, notexist, unRecordHostFormatted,
# abnormal. "idle" is a sleeping disk in standby, not a fault.
_DISK_OK = {"ok", "idle", "sleeping", "formatting", "repairing", "reparing"}
_DISK_FAILED = {
    "error",
    "abnormal",
    "smartfailed",
    "unformatted",
    "mismatch",
    "offline",
    "notexist",
    "notonline",
    "unrecordhostformatted",
    "failed",
}
_DISK_FULL = {"full"}


def _root(body: bytes, expected: str | None = None) -> etree._Element:
    root = parse_xml(body)
    if local(root.tag) == "ResponseStatus":
        code = text(child(root, "statusCode"))
        sub = text(child(root, "subStatusCode")) or ""
        if code == "4" and "notSupport" in sub:
            raise DeviceError(ReasonCode.NOT_SUPPORTED, "主機不支援此功能（ISAPI）")
        raise DeviceError(ReasonCode.BAD_REPLY, f"主機回覆錯誤（ISAPI {sub or code or '?'}）")
    if expected is not None and local(root.tag) != expected:
        raise DeviceError(ReasonCode.BAD_REPLY, f"主機回覆的內容不是預期的 {expected}")
    return root


def parse_device_info(body: bytes) -> DeviceInfo:
    root = _root(body, "DeviceInfo")
    return DeviceInfo(
        manufacturer=text(child(root, "manufacturer")) or "Hikvision",
        model=text(child(root, "model")),
        firmware=_firmware(
            text(child(root, "firmwareVersion")), text(child(root, "firmwareReleasedDate"))
        ),
        serial=text(child(root, "serialNumber")),
        device_type=text(child(root, "deviceType")),
    )


def _firmware(version: str | None, released: str | None) -> str | None:
    if version and released:
        return f"{version} {released}"
    return version


def parse_time(body: bytes) -> DeviceTime:
    """/ISAPI/System/time: localTime carries its UTC offset (2024-05-01T10:00:00+08:00)."""
    root = _root(body, "Time")
    raw = text(child(root, "localTime"))
    return DeviceTime(utc=parse_datetime(raw), raw=raw)


_UPTIME_ZH = re.compile(
    r"(?:(\d+)\s*天)?\s*(?:(\d+)\s*[时時])?\s*(?:(\d+)\s*分)?\s*(?:(\d+)\s*秒)?"
)


def parse_uptime_value(raw: str | None) -> float | None:
    """deviceUpTime: seconds ("5400") or Chinese firmware text ("87天0时55分59秒")."""
    if raw is None:
        return None
    raw = raw.strip()
    if raw.isascii() and raw.isdigit():  # "²" is a digit to str, not to float
        return float(raw)
    m = _UPTIME_ZH.fullmatch(raw)
    if m and any(m.groups()):
        d, h, mi, s = (int(g) if g else 0 for g in m.groups())
        return float(((d * 24 + h) * 60 + mi) * 60 + s)
    return None


def parse_status(body: bytes) -> float | None:
    """/ISAPI/System/status → uptime in seconds (None when not given)."""
    root = _root(body, "DeviceStatus")
    return parse_uptime_value(text(child(root, "deviceUpTime")))


def _disk_status(raw: str | None) -> DiskStatus:
    if raw is None:
        return DiskStatus.UNKNOWN
    v = raw.strip().lower().replace(" ", "")
    if v in _DISK_OK:
        return DiskStatus.OK
    if v in _DISK_FAILED:
        return DiskStatus.FAILED
    if v in _DISK_FULL:
        return DiskStatus.FULL
    return DiskStatus.UNKNOWN


def parse_storage(body: bytes) -> list[Disk]:
    """/ISAPI/ContentMgmt/Storage: hdd and nas entries; capacity and freeSpace are MB
    (binary: a 2 TB disk is 1907729). The reply says nothing of overwrite: several
    recorders in overwrite mode report freeSpace 0 as their normal state."""
    root = _root(body, "storage")
    disks: list[Disk] = []
    for tag, kind in (("hdd", StorageKind.DISK), ("nas", StorageKind.NAS)):
        for el in iter_local(root, tag):
            if child(el, "id") is None:
                continue
            cap = parse_int(text(child(el, "capacity")))
            free = parse_int(text(child(el, "freeSpace")))
            raw = text(child(el, "status"))
            ident = text(child(el, "id")) or "?"
            disks.append(
                Disk(
                    id=ident if kind == StorageKind.DISK else f"nas-{ident}",
                    status=_disk_status(raw),
                    capacity_bytes=cap * MB if cap is not None else None,
                    free_bytes=free * MB if free is not None else None,
                    name=text(child(el, "hddName")) or text(child(el, "path")) or tag,
                    raw_status=raw,
                    kind=kind,
                )
            )
    return disks


def parse_video_inputs(body: bytes) -> list[ChannelSignal]:
    """/ISAPI/System/Video/inputs/channels on a DVR: resDesc "NO VIDEO" = signal loss."""
    root = _root(body)
    out: list[ChannelSignal] = []
    for el in iter_local(root, "VideoInputChannel"):
        ch = parse_int(text(child(el, "id")))
        if ch is None:
            continue
        res = text(child(el, "resDesc"))
        signal = None if res is None else res.strip().upper() != "NO VIDEO"
        out.append(ChannelSignal(channel=ch, signal=signal, name=text(child(el, "name"))))
    return out


def parse_input_proxy_status(body: bytes) -> list[ChannelSignal]:
    """/ISAPI/ContentMgmt/InputProxy/channels/status: online per channel."""
    root = _root(body)
    out: list[ChannelSignal] = []
    for el in iter_local(root, "InputProxyChannelStatus"):
        ch = parse_int(text(child(el, "id")))
        if ch is None:
            continue
        online = parse_bool(text(child(el, "online")))
        detect = text(child(el, "chanDetectResult"))
        if detect is not None and detect.strip().lower() not in ("connect", "ok"):
            online = False
        out.append(ChannelSignal(channel=ch, signal=online, name=text(child(el, "name"))))
    return out


def parse_tracks(body: bytes) -> dict[int, tuple[int, bool | None]]:
    """/ISAPI/ContentMgmt/record/tracks → {track id: (channel, enabled)} (main tracks)."""
    root = _root(body)
    tracks: dict[int, tuple[int, bool | None]] = {}
    for el in iter_local(root, "Track"):
        tid = parse_int(text(child(el, "id")))
        if tid is None:
            continue
        ch = parse_int(text(child(el, "Channel")))
        if ch is None:
            ch = tid // 100
        tracks[tid] = (ch, parse_bool(text(child(el, "Enable"))))
    return tracks


def utc_offset_of(raw: str | None) -> dt.timedelta | None:
    """The UTC offset in a localTime value (`2024-05-01T10:00:00+08:00` → 8 h)."""
    if not raw:
        return None
    m = re.search(r"([+-])(\d{2}):?(\d{2})$", raw.strip())
    if raw.strip().endswith("Z"):
        return dt.timedelta(0)
    if not m:
        return None
    sign = 1 if m.group(1) == "+" else -1
    return sign * dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))


def search_body(
    track: int,
    start: dt.datetime,
    end: dt.datetime,
    position: int,
    max_results: int,
    local_offset: dt.timedelta = dt.timedelta(0),
) -> bytes:
    """CMSearchDescription. Hikvision recorders read (and write) search times as their
    local wall clock even though they carry a "Z": pass the device's UTC offset."""

    def iso(t: dt.datetime) -> str:
        return (t.astimezone(dt.UTC) + local_offset).strftime("%Y-%m-%dT%H:%M:%SZ")

    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<CMSearchDescription version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">'
        f"<searchID>{uuid.uuid4()}</searchID>"
        f"<trackList><trackID>{track}</trackID></trackList>"
        f"<timeSpanList><timeSpan><startTime>{iso(start)}</startTime>"
        f"<endTime>{iso(end)}</endTime></timeSpan></timeSpanList>"
        f"<maxResults>{max_results}</maxResults>"
        f"<searchResultPostion>{position}</searchResultPostion>"
        "<metadataList><metadataDescriptor>"
        f"{escape('//recordType.meta.std-cgi.com')}"
        "</metadataDescriptor></metadataList></CMSearchDescription>"
    ).encode()


def parse_search(
    body: bytes, local_offset: dt.timedelta = dt.timedelta(0)
) -> tuple[list[tuple[dt.datetime, dt.datetime]], bool]:
    """CMSearchResult → ([(start, end)...] in UTC, more); unparseable spans dropped.

    `local_offset`: the device's UTC offset, for firmware that writes local time with a
    "Z" (see search_body)."""
    root = _root(body, "CMSearchResult")
    status = (text(child(root, "responseStatusStrg")) or "").upper()
    spans: list[tuple[dt.datetime, dt.datetime]] = []
    for item in iter_local(root, "searchMatchItem"):
        span = child(item, "timeSpan")
        raw = text(span, "startTime")
        start = parse_datetime(raw)
        end = parse_datetime(text(span, "endTime"))
        if start is not None and end is not None:
            if local_offset and (raw or "").endswith("Z"):
                start, end = start - local_offset, end - local_offset
            spans.append((start, end))
    return spans, status == "MORE"


class IsapiClient:
    """Fetches ISAPI facts from one device through a DeviceHttp session."""

    def __init__(self, http: DeviceHttp, base_url: str) -> None:
        self.http = http
        self.base = base_url.rstrip("/")
        # The device's UTC offset, learnt from System/time (search times are local).
        self.local_offset = dt.timedelta(0)

    async def _get(self, path: str) -> bytes:
        return (await self.http.get(self.base + path)).body

    async def device_info(self) -> DeviceInfo:
        return parse_device_info(await self._get("/ISAPI/System/deviceInfo"))

    async def time(self) -> DeviceTime:
        dtime = parse_time(await self._get("/ISAPI/System/time"))
        offset = utc_offset_of(dtime.raw)
        if offset is not None:
            self.local_offset = offset
        return dtime

    async def uptime(self) -> float | None:
        return parse_status(await self._get("/ISAPI/System/status"))

    async def disks(self) -> list[Disk]:
        return parse_storage(await self._get("/ISAPI/ContentMgmt/Storage"))

    async def signals(self) -> list[ChannelSignal]:
        try:
            return parse_input_proxy_status(
                await self._get("/ISAPI/ContentMgmt/InputProxy/channels/status")
            )
        except DeviceError as exc:
            if exc.final:
                raise  # else: a DVR without IP channels: its analog inputs
        return parse_video_inputs(await self._get("/ISAPI/System/Video/inputs/channels"))

    async def tracks(self) -> dict[int, tuple[int, bool | None]]:
        return parse_tracks(await self._get("/ISAPI/ContentMgmt/record/tracks"))

    async def search(
        self,
        track: int,
        start: dt.datetime,
        end: dt.datetime,
        *,
        max_pages: int = 10,
        page: int = 50,
    ) -> list[tuple[dt.datetime, dt.datetime]]:
        spans: list[tuple[dt.datetime, dt.datetime]] = []
        for n in range(max_pages):
            reply = await self.http.request(
                "POST",
                self.base + "/ISAPI/ContentMgmt/search",
                content=search_body(track, start, end, n * page, page, self.local_offset),
                headers={"Content-Type": "application/xml"},
            )
            found, more = parse_search(reply.body, self.local_offset)
            spans.extend(found)
            if not more or not found:
                break
        return spans

    async def oldest(self, track: int, now: dt.datetime) -> dt.datetime | None:
        start = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        reply = await self.http.request(
            "POST",
            self.base + "/ISAPI/ContentMgmt/search",
            content=search_body(track, start, now, 0, 1, self.local_offset),
            headers={"Content-Type": "application/xml"},
        )
        found, _ = parse_search(reply.body, self.local_offset)
        return min((s for s, _ in found), default=None)


class IsapiDriver(Driver):
    """Hikvision ISAPI: everything a recorder or camera tells, and Hikvision's URLs."""

    name = "isapi"
    protocol = Protocol.ISAPI
    abilities = frozenset(
        {
            Ability.DEVICE_INFO,
            Ability.CLOCK,
            Ability.UPTIME,
            Ability.SIGNALS,
            Ability.DISKS,
            Ability.RECORDINGS,
            Ability.FRAMES,
        }
    )
    vendor = Vendor.HIKVISION
    media = MediaConventions(
        snapshot="/ISAPI/Streaming/channels/{channel}01/picture",
        stream="/Streaming/Channels/{channel}01",
        stream_sub="/Streaming/Channels/{channel}02",
    )

    def session(self, link: DeviceLink) -> DriverSession:
        return _IsapiSession(self, link)


class _IsapiSession(DriverSession):
    _client: IsapiClient | None = None
    _clock: ClockReading | None = None

    async def client(self) -> IsapiClient:
        if self._client is None:
            self._client = IsapiClient(await self.link.http(), self.link.base_url)
        return self._client

    async def device_info(self) -> DeviceInfo:
        return await (await self.client()).device_info()

    async def clock(self) -> ClockReading:
        if self._clock is None:
            # System/time also teaches the client the device's UTC offset (searches).
            self._clock = await timed_clock((await self.client()).time, self.link)
        return self._clock

    async def uptime(self) -> float | None:
        return await (await self.client()).uptime()

    async def signals(self, channels: list[int]) -> list[ChannelSignal]:
        return await (await self.client()).signals()

    async def disks(self) -> list[Disk] | None:
        return await (await self.client()).disks()

    async def recordings(self, now: dt.datetime, out: RecordingSink) -> bool:
        c = await self.client()
        try:
            out.clock((await self.clock()).offset_s)
        except DeviceError as exc:
            if exc.final:
                raise  # else: searched in UTC; the host check reports the clock
        memory = self.link.memory
        tracks = await c.tracks()
        day = DaySearch(self.link.state("isapi-spans"), self.link.target.id,
                        now - dt.timedelta(hours=24), now)
        for tid, (ch, enabled) in sorted(tracks.items()):
            if tid % 100 != 1:
                continue  # main stream tracks only (x01)
            spans = await day.spans(tid, functools.partial(c.search, tid))
            oldest = oldest_cached(memory, ch, now)
            if oldest is None:
                oldest = await c.oldest(tid, now)
                remember_oldest(memory, ch, oldest, now)
            out.channel(spans_to_recording(ch, enabled, spans, oldest, GAP_MIN), spans=True)
        day.done()
        return True
