"""Dahua CGI over HTTP (digest auth): `key=value` bodies with CRLF line ends.

Tables come as flattened keys: `list.info[0].Detail[0].TotalBytes=63989415936.000000`,
`items[3].StartTime=2024-05-01 10:00:00`. Parsers are pure functions of the body;
`DahuaClient` fetches. Dahua times are the device's local time without an offset, so
the caller passes the campus time zone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import re
from urllib.parse import quote

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
from probes.drivers.http import DeviceError, DeviceHttp
from probes.facts import (
    GAP_MIN,
    ChannelSignal,
    DaySearch,
    DeviceInfo,
    DeviceTime,
    Disk,
    DiskStatus,
    oldest_cached,
    parse_bool,
    parse_datetime,
    parse_int,
    remember_oldest,
    spans_to_recording,
)
from probes.reasons import ReasonCode

_MAX_LINES = 200_000


def parse_kv(body: bytes) -> dict[str, str]:
    """`key=value` lines → dict. A body that is not key=value text raises DeviceError."""
    try:
        txt = body.decode("utf-8")
    except UnicodeDecodeError:
        txt = body.decode("latin-1")
    if txt.lstrip().startswith("<"):
        raise DeviceError(ReasonCode.BAD_REPLY, "主機回覆不是預期的 key=value 格式")
    out: dict[str, str] = {}
    for n, line in enumerate(txt.splitlines()):
        if n > _MAX_LINES:
            break
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep:
            if line.upper() == "OK":
                out.setdefault("result", "OK")
                continue
            if line.lower().startswith("error"):
                raise DeviceError(ReasonCode.BAD_REPLY, "主機回覆錯誤（Dahua CGI）")
            continue
        out[key.strip()] = value.strip()
    return out


_INDEX = re.compile(r"^(?P<name>[A-Za-z_.]+?)\[(?P<i>\d+)\]\.(?P<rest>.+)$")


def table(kv: dict[str, str], prefix: str) -> dict[int, dict[str, str]]:
    """Rows of a flattened table: table(kv, "items") → {0: {"StartTime": ...}, ...}."""
    rows: dict[int, dict[str, str]] = {}
    head = prefix + "["
    cut = len(head)
    for key, value in kv.items():
        if not key.startswith(head):
            continue
        index, sep, field = key[cut:].partition("].")
        if sep and field and index.isdecimal():
            rows.setdefault(int(index), {})[field] = value
    return rows


def parse_system_info(
    body: bytes, software: bytes | None = None, vendor: bytes | None = None
) -> DeviceInfo:
    """magicBox getSystemInfo (+ getSoftwareVersion, getVendor when fetched).

    NVR firmware sends a numeric deviceType (`deviceType=31`): then the model is
    `updateSerial`.
    """
    kv = parse_kv(body)
    model = kv.get("deviceType")
    if model is None or model.isdigit():
        model = kv.get("updateSerial") or model
    firmware = None
    if software is not None:
        firmware = parse_kv(software).get("version")
    manufacturer = "Dahua"
    if vendor is not None:
        manufacturer = parse_kv(vendor).get("vendor") or manufacturer
    if not kv.get("serialNumber") and not model:
        raise DeviceError(ReasonCode.BAD_REPLY, "主機回覆缺少型號與序號")
    return DeviceInfo(
        manufacturer=manufacturer,
        model=model,
        firmware=firmware,
        serial=kv.get("serialNumber"),
        device_type=kv.get("deviceType"),
    )


_DAHUA_TIME = re.compile(
    r"\s*(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2}):(\d{1,2}):(\d{1,2})\s*"
)


def parse_dahua_time(value: str | None, tz: dt.tzinfo) -> dt.datetime | None:
    """`2024-5-1 10:00:00` (device local time, no offset) → aware UTC, None if invalid."""
    if not value:
        return None
    if len(value) == 19 and value[10] == " " and value[4] == value[7] == "-":
        # the usual form (2024-05-01 10:00:00), parsed in C; anything odd falls through
        try:
            return dt.datetime.fromisoformat(value).replace(tzinfo=tz).astimezone(dt.UTC)
        except ValueError:
            pass
    m = _DAHUA_TIME.fullmatch(value)
    if not m:
        return parse_datetime(value, default_tz=tz)
    try:
        y, mo, d, h, mi, se = (int(g) for g in m.groups())
        local = dt.datetime(y, mo, d, h, mi, se, tzinfo=tz)
    except ValueError:
        return None
    return local.astimezone(dt.UTC)


def parse_current_time(body: bytes, tz: dt.tzinfo) -> DeviceTime:
    """global.cgi getCurrentTime → `result=2024-5-1 10:00:00`."""
    raw = parse_kv(body).get("result")
    return DeviceTime(utc=parse_dahua_time(raw, tz), raw=raw)


def parse_uptime(body: bytes) -> float | None:
    """magicBox getUpTime → `up=123456` seconds (firmware dependent)."""
    kv = parse_kv(body)
    for key in ("up", "uptime", "UpTime", "result"):
        if key in kv:
            val = parse_int(kv[key])
            if val is not None:
                return float(val)
    return None


def parse_storage(body: bytes) -> list[Disk]:
    """storageDevice getDeviceAllInfo → one Disk per physical device (list.info[N]).

    State: Success = healthy; Error / Failed / Abnormal = failed; Detail[].IsError
    marks a failed partition. Bytes come as floats (`63989415936.000000`).
    """
    kv = parse_kv(body)
    disks: list[Disk] = []
    for idx, row in sorted(table(kv, "list.info").items()):
        state = row.get("State")
        total = used = 0
        any_size = False
        part_error = False
        details: dict[int, dict[str, str]] = {}
        for key, value in row.items():
            m = _INDEX.match(key)
            if m and m.group("name") == "Detail":
                details.setdefault(int(m.group("i")), {})[m.group("rest")] = value
        for det in details.values():
            t = parse_int(det.get("TotalBytes"))
            u = parse_int(det.get("UsedBytes"))
            if t is not None:
                total += t
                any_size = True
            if u is not None:
                used += u
            if parse_bool(det.get("IsError")):
                part_error = True
        st = (state or "").strip().lower()
        if part_error or st in ("error", "failed", "abnormal", "fault", "offline"):
            status = DiskStatus.FAILED
        elif st in ("success", "normal", "ok", "sleep", "sleeping", "idle"):
            status = DiskStatus.OK
        elif st == "full":
            status = DiskStatus.FULL
        else:
            status = DiskStatus.UNKNOWN
        disks.append(
            Disk(
                id=str(idx + 1),
                status=status,
                capacity_bytes=total if any_size else None,
                free_bytes=max(total - used, 0) if any_size else None,
                name=row.get("Name"),
                raw_status=state,
            )
        )
    return disks


def parse_storage_group(body: bytes) -> bool | None:
    """configManager getConfig&name=StorageGroup → whether the recorder overwrites its
    oldest footage when full (`table.StorageGroup[0].OverWrite=true`; the "Disk Full:
    Overwrite / Stop" setting of its web page, NetSDK's AV_CFG_StorageGroup.bOverWrite).
    Several groups: True only if every group overwrites. None: the reply does not say."""
    kv = parse_kv(body)
    found = [
        parse_bool(v)
        for k, v in kv.items()
        if re.fullmatch(r"(?:table\.)?StorageGroup(?:\[\d+\])?\.OverWrite", k)
    ]
    known = [v for v in found if v is not None]
    if not known:
        return None
    return all(known)


def parse_find_next(body: bytes, tz: dt.tzinfo) -> list[tuple[dt.datetime, dt.datetime]]:
    """mediaFileFind findNextFile → recorded spans [(start, end)]."""
    kv = parse_kv(body)
    spans: list[tuple[dt.datetime, dt.datetime]] = []
    for _i, row in sorted(table(kv, "items").items()):
        start = parse_dahua_time(row.get("StartTime"), tz)
        end = parse_dahua_time(row.get("EndTime"), tz)
        if start is not None and end is not None:
            spans.append((start, end))
    return spans


def parse_video_loss(body: bytes, channels: list[int]) -> list[ChannelSignal]:
    """eventManager getEventIndexes&code=VideoLoss → `channels[0]=2` lines name the
    (0-based) inputs that have lost video now; every other listed channel has signal."""
    kv = parse_kv(body)
    # ASCII digits only: "²" is a digit to str.isdigit() and not to int()
    lost = {int(v) + 1 for k, v in kv.items()
            if k.startswith("channels[") and v.strip().isascii() and v.strip().isdigit()}
    return [ChannelSignal(channel=ch, signal=ch not in lost) for ch in channels]


def _fmt(t: dt.datetime, tz: dt.tzinfo) -> str:
    return quote(t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"))


class DahuaClient:
    def __init__(self, http: DeviceHttp, base_url: str, tz: dt.tzinfo) -> None:
        self.http = http
        self.base = base_url.rstrip("/")
        self.tz = tz

    async def get(self, path: str) -> bytes:
        return (await self.http.get(self.base + path)).body

    async def device_info(self) -> DeviceInfo:
        body = await self.get("/cgi-bin/magicBox.cgi?action=getSystemInfo")
        try:
            software: bytes | None = await self.get(
                "/cgi-bin/magicBox.cgi?action=getSoftwareVersion"
            )
        except DeviceError as exc:
            if exc.final:
                raise
            software = None  # older firmware: the model and serial still tell
        return parse_system_info(body, software)

    async def time(self) -> DeviceTime:
        return parse_current_time(
            await self.get("/cgi-bin/global.cgi?action=getCurrentTime"), self.tz
        )

    async def uptime(self) -> float | None:
        return parse_uptime(await self.get("/cgi-bin/magicBox.cgi?action=getUpTime"))

    async def signals(self, channels: list[int]) -> list[ChannelSignal]:
        """Video loss per analog input (a DVR); firmware without it: DeviceError."""
        body = await self.get("/cgi-bin/eventManager.cgi?action=getEventIndexes&code=VideoLoss")
        return parse_video_loss(body, channels)

    async def disks(self) -> list[Disk]:
        return parse_storage(await self.get("/cgi-bin/storageDevice.cgi?action=getDeviceAllInfo"))

    async def overwrite(self) -> bool | None:
        return parse_storage_group(
            await self.get("/cgi-bin/configManager.cgi?action=getConfig&name=StorageGroup")
        )

    async def find_spans(
        self, channel: int, start: dt.datetime, end: dt.datetime, *, max_pages: int = 10
    ) -> list[tuple[dt.datetime, dt.datetime]]:
        async with MediaFinder(self) as finder:
            return await finder.spans(channel, start, end, max_pages=max_pages)


class MediaFinder:
    """One mediaFileFind object for a whole recording check: created once, then per
    search findFile, findNextFile (pages of 100) and close, destroyed at the end —
    as Dahua's HTTP API describes the finder's life, without a new one per channel."""

    def __init__(self, client: DahuaClient) -> None:
        self.client = client
        self.obj: str | None = None

    async def __aenter__(self) -> MediaFinder:
        created = parse_kv(
            await self.client.get("/cgi-bin/mediaFileFind.cgi?action=factory.create")
        )
        obj = created.get("result")
        if not obj or not (obj.isascii() and obj.isdigit()):
            raise DeviceError(ReasonCode.BAD_REPLY, "主機無法建立錄影查詢")
        self.obj = obj
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.obj is not None:
            obj, self.obj = self.obj, None
            with contextlib.suppress(DeviceError):
                await self.client.get(f"/cgi-bin/mediaFileFind.cgi?action=destroy&object={obj}")

    async def spans(
        self, channel: int, start: dt.datetime, end: dt.datetime, *, max_pages: int = 10
    ) -> list[tuple[dt.datetime, dt.datetime]]:
        c, obj = self.client, self.obj
        if obj is None:
            raise RuntimeError("MediaFinder used outside 'async with'")
        spans: list[tuple[dt.datetime, dt.datetime]] = []
        try:
            await c.get(
                f"/cgi-bin/mediaFileFind.cgi?action=findFile&object={obj}"
                f"&condition.Channel={channel}"
                f"&condition.StartTime={_fmt(start, c.tz)}"
                f"&condition.EndTime={_fmt(end, c.tz)}"
            )
            for _ in range(max_pages):
                page = await c.get(
                    f"/cgi-bin/mediaFileFind.cgi?action=findNextFile&object={obj}&count=100"
                )
                found = parse_find_next(page, c.tz)
                spans.extend(found)
                if len(found) < 100:
                    break
        finally:
            with contextlib.suppress(DeviceError):
                await c.get(f"/cgi-bin/mediaFileFind.cgi?action=close&object={obj}")
        return spans


class DahuaDriver(Driver):
    """Dahua CGI: everything a recorder or camera tells, and Dahua's URLs."""

    name = "dahua"
    protocol = Protocol.DAHUA
    abilities = frozenset(
        {
            Ability.DEVICE_INFO,
            Ability.CLOCK,
            Ability.UPTIME,
            Ability.SIGNALS,
            Ability.DISKS,
            Ability.OVERWRITE,
            Ability.RECORDINGS,
            Ability.FRAMES,
        }
    )
    vendor = Vendor.DAHUA
    media = MediaConventions(
        snapshot="/cgi-bin/snapshot.cgi?channel={channel}",
        stream="/cam/realmonitor?channel={channel}&subtype=0",
        stream_sub="/cam/realmonitor?channel={channel}&subtype=1",
    )

    def session(self, link: DeviceLink) -> DriverSession:
        return _DahuaSession(self, link)


class _DahuaSession(DriverSession):
    _client: DahuaClient | None = None
    _clock: ClockReading | None = None

    async def client(self) -> DahuaClient:
        if self._client is None:
            self._client = DahuaClient(await self.link.http(), self.link.base_url, self.link.tz)
        return self._client

    async def device_info(self) -> DeviceInfo:
        return await (await self.client()).device_info()

    async def clock(self) -> ClockReading:
        if self._clock is None:
            self._clock = await timed_clock((await self.client()).time, self.link)
        return self._clock

    async def uptime(self) -> float | None:
        return await (await self.client()).uptime()

    async def signals(self, channels: list[int]) -> list[ChannelSignal]:
        return await (await self.client()).signals(channels)

    async def disks(self) -> list[Disk] | None:
        return await (await self.client()).disks()

    async def overwrite(self) -> bool | None:
        return await (await self.client()).overwrite()

    async def recordings(self, now: dt.datetime, out: RecordingSink) -> bool:
        c = await self.client()
        try:
            out.clock((await self.clock()).offset_s)
        except DeviceError as exc:
            if exc.final:
                raise
        memory = self.link.memory
        day = DaySearch(self.link.state("dahua-spans"), self.link.target.id,
                        now - dt.timedelta(hours=24), now)
        async with MediaFinder(c) as finder:
            for ch in self.link.channels():
                recent = await day.spans(ch, functools.partial(finder.spans, ch))
                oldest = oldest_cached(memory, ch, now)
                if oldest is None:
                    early = await finder.spans(
                        ch, dt.datetime(2000, 1, 1, tzinfo=dt.UTC), now, max_pages=1
                    )
                    oldest = min((s for s, _ in early), default=None)
                    remember_oldest(memory, ch, oldest, now)
                out.channel(spans_to_recording(ch, None, recent, oldest, GAP_MIN), spans=True)
        day.done()
        return True
