"""Hikvision ISAPI as a simulated Hikvision recorder or camera answers it (after digest
auth, which server.py checks).

Modelled on ../shared/fixtures/hikvision_isapi: recorders answer in
`http://www.hikvision.com/ver20/XMLSchema` with version="1.0" (DS-7616NI-K2,
iDS-7208HQHI), cameras with version="2.0"; the content-management replies (record tracks,
search, daily distribution) use the older `http://www.hikvision.com/ver10/XMLSchema`, so
a client must read ISAPI namespace-agnostically, as with real devices. Capacities are MB.

Quirk kept from real recorders: ContentMgmt/search times are the recorder's *local* time
written with a `Z` suffix. A full disk keeps status `ok` with freeSpace 0 (as in overwrite
mode); a failed disk is `error`.
"""

from __future__ import annotations

import datetime as dt
import re
from xml.sax.saxutils import escape

from aiohttp import web
from lxml import etree

from simulator.model import ChannelState, FaultKind, Quirk, SimDevice

NS20 = "http://www.hikvision.com/ver20/XMLSchema"
NS10 = "http://www.hikvision.com/ver10/XMLSchema"
XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
SEARCH_TIMES_ARE_LOCAL = True  # the quirk described above
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


def _version(dev: SimDevice) -> str:
    return "1.0" if dev.is_recorder else "2.0"


def _xml(body: str, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=(XML_DECL + body).encode(), content_type="application/xml"
    )


# Endpoints real devices refuse with HTTP 403 although the login works (the status codes
# in ../shared/fixtures/hikvision_isapi/devices_json, and the DS-7616NI-Q2 of issue 13):
# an NVR without analog inputs refuses System/Video/inputs/channels, an IP camera the
# recorder's InputProxy endpoints.
FORBIDDEN_BY_MODEL: dict[str, frozenset[str]] = {
    "DS-7616NI-K2": frozenset({"/ISAPI/System/Video/inputs/channels"}),
    "DS-7608NXI-I2": frozenset({"/ISAPI/System/Video/inputs/channels"}),
    "DS-7616NI-Q2": frozenset({"/ISAPI/System/Video/inputs/channels"}),
    "DS-7616NI-Q2/16P": frozenset({"/ISAPI/System/Video/inputs/channels"}),
}
CAMERA_FORBIDDEN = frozenset(
    {"/ISAPI/ContentMgmt/InputProxy/channels", "/ISAPI/ContentMgmt/InputProxy/channels/status"}
)


def forbidden_paths(dev: SimDevice) -> frozenset[str]:
    if not dev.is_recorder:
        return CAMERA_FORBIDDEN
    return FORBIDDEN_BY_MODEL.get(dev.model, frozenset())


def response_status(
    url: str, code: int, text: str, sub: str, http: int | None = None
) -> web.Response:
    if http is None:
        http = {1: 200, 3: 503, 4: 403, 5: 400, 6: 400}.get(code, 400)
        if sub == "notSupport":
            http = 404
    return _xml(
        f'<ResponseStatus version="1.0" xmlns="{NS20}">\n'
        f"<requestURL>{escape(url)}</requestURL>\n<statusCode>{code}</statusCode>\n"
        f"<statusString>{text}</statusString>\n<subStatusCode>{sub}</subStatusCode>\n"
        "</ResponseStatus>\n",
        http,
    )


def local_time(dev: SimDevice) -> dt.datetime:
    """The device's local wall-clock time (naive)."""
    return (dev.now() + dt.timedelta(seconds=dev.utc_offset_s)).replace(tzinfo=None)


def iso_local(dev: SimDevice, t: dt.datetime | None = None) -> str:
    off = dev.utc_offset_s
    sign = "+" if off >= 0 else "-"
    tz = f"{sign}{abs(off) // 3600:02d}:{abs(off) % 3600 // 60:02d}"
    base = (t if t is not None else dev.now()) + dt.timedelta(seconds=off)
    return base.strftime("%Y-%m-%dT%H:%M:%S") + tz


def search_time(dev: SimDevice, t: dt.datetime) -> str:
    if SEARCH_TIMES_ARE_LOCAL:
        t = t + dt.timedelta(seconds=dev.utc_offset_s)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_search_time(dev: SimDevice, text: str) -> dt.datetime:
    text = text.strip()
    if text.endswith("Z"):
        t = dt.datetime.strptime(text[:-1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC)
        if SEARCH_TIMES_ARE_LOCAL:
            t -= dt.timedelta(seconds=dev.utc_offset_s)
        return t
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


# -- System ------------------------------------------------------------------------------


def device_info(dev: SimDevice) -> web.Response:
    kind = ("DVR" if dev.dvr else "NVR") if dev.is_recorder else "IPCamera"
    extra = (
        "<telecontrolID>255</telecontrolID>\n<hardwareVersion>0x0</hardwareVersion>\n"
        if dev.is_recorder
        else "<telecontrolID>88</telecontrolID>\n<supportBeep>false</supportBeep>\n"
        "<supportVideoLoss>false</supportVideoLoss>\n"
    )
    return _xml(
        f'<DeviceInfo version="{_version(dev)}" xmlns="{NS20}">\n'
        f"<deviceName>{escape(dev.id)}</deviceName>\n"
        f"<deviceID>{dev.serial[-8:].lower()}-0000-0000-0000-{dev.mac.replace(':', '')}"
        "</deviceID>\n"
        f"<model>{escape(dev.model)}</model>\n"
        f"<serialNumber>{escape(dev.serial)}</serialNumber>\n"
        f"<macAddress>{dev.mac}</macAddress>\n"
        f"<firmwareVersion>{escape(dev.firmware)}</firmwareVersion>\n"
        f"<firmwareReleasedDate>{escape(dev.firmware_build)}</firmwareReleasedDate>\n"
        "<encoderVersion>V7.3</encoderVersion>\n<encoderReleasedDate>build 240801"
        "</encoderReleasedDate>\n"
        f"<deviceType>{kind}</deviceType>\n{extra}"
        "<manufacturer>hikvision</manufacturer>\n"
        "</DeviceInfo>\n"
    )


def device_status(dev: SimDevice) -> web.Response:
    up = int(dev.uptime_s())
    boot = (dev.boot_time + dt.timedelta(seconds=dev.utc_offset_s + dev.clock_offset_s)).strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    return _xml(
        f'<DeviceStatus version="{_version(dev)}" xmlns="{NS20}">\n'
        f"<currentDeviceTime>{iso_local(dev)}</currentDeviceTime>\n"
        f"<deviceUpTime>{up}</deviceUpTime>\n"
        f"<bootTime>{boot}</bootTime>\n"
        "<CPUList>\n<CPU>\n<cpuDescription>1600MHz</cpuDescription>\n"
        f"<cpuUtilization>{5 + dev.scene_seed % 30}</cpuUtilization>\n</CPU>\n</CPUList>\n"
        "<MemoryList>\n<Memory>\n<memoryDescription>DDR Memory</memoryDescription>\n"
        "<memoryUsage>  182.218750</memoryUsage>\n<memoryAvailable>  329.781250"
        "</memoryAvailable>\n</Memory>\n</MemoryList>\n"
        "</DeviceStatus>\n"
    )


def system_time(dev: SimDevice) -> web.Response:
    return _xml(
        f'<Time version="{_version(dev)}" xmlns="{NS20}">\n'
        "<timeMode>NTP</timeMode>\n"
        f"<localTime>{iso_local(dev)}</localTime>\n"
        f"<timeZone>{dev.timezone}</timeZone>\n"
        "</Time>\n"
    )


# -- Storage and channels ---------------------------------------------------------------


def storage(dev: SimDevice) -> web.Response:
    # A camera's card is "hdde"/"SD1" in the captures; a recorder's disks "hdd1"...
    items = "".join(
        f'<hdd version="{_version(dev)}" xmlns="{NS20}">\n'
        f"<id>{d.id}</id>\n<hddName>{'hdd' if dev.is_recorder else 'SD'}{d.id}</hddName>\n"
        "<hddPath></hddPath>\n"
        f"<hddType>SATA</hddType>\n<status>{'error' if d.status == 'failed' else 'ok'}</status>\n"
        f"<capacity>{d.capacity_mb}</capacity>\n<freeSpace>{d.free_mb}</freeSpace>\n"
        "<property>RW</property>\n</hdd>\n"
        for d in dev.disks
    )
    return _xml(
        f'<storage version="{_version(dev)}" xmlns="{NS20}">\n'
        f"<hddList>\n{items}</hddList>\n<nasList>\n</nasList>\n<workMode>quota</workMode>\n"
        "</storage>\n"
    )


def channel_online(dev: SimDevice, ch: ChannelState) -> bool:
    cam = dev.camera_of_channel(ch.channel)
    return ch.signal and not (cam is not None and cam.has(FaultKind.OFFLINE))


def video_inputs(dev: SimDevice) -> web.Response:
    """/ISAPI/System/Video/inputs/channels: the analog inputs of a DVR; a lost signal
    shows as resDesc NO VIDEO."""
    items = []
    for ch in dev.channels:
        if not ch.analog:
            continue
        res = "1920*1080P25 TVI" if channel_online(dev, ch) else "NO VIDEO"
        items.append(
            f'<VideoInputChannel version="{_version(dev)}" xmlns="{NS20}">\n'
            f"<id>{ch.channel}</id>\n<inputPort>{ch.channel}</inputPort>\n"
            "<videoInputEnabled>true</videoInputEnabled>\n"
            f"<name>{escape(ch.name or f'Camera {ch.channel:02d}')}</name>\n"
            "<videoFormat>PAL</videoFormat>\n<portType>BNC</portType>\n"
            f"<resDesc>{res}</resDesc>\n"
            "</VideoInputChannel>\n"
        )
    return _xml(
        f'<VideoInputChannelList version="{_version(dev)}" xmlns="{NS20}">\n'
        f"{''.join(items)}</VideoInputChannelList>\n"
    )


def channels_status(dev: SimDevice) -> web.Response:
    items = []
    for ch in dev.channels:
        if ch.analog:
            continue  # analog inputs are in System/Video/inputs/channels
        cam = dev.camera_of_channel(ch.channel)
        online = channel_online(dev, ch)
        addr = cam.host if cam is not None and cam.host else "0.0.0.0"
        proto = "HIKVISION" if not ch.analog else "ANALOG"
        detect = "connect" if online else ("videoLoss" if ch.analog else "netUnreachable")
        items.append(
            "<InputProxyChannelStatus>\n"
            f"<id>{ch.channel}</id>\n"
            "<sourceInputPortDescriptor>\n"
            f"<proxyProtocol>{proto}</proxyProtocol>\n"
            "<addressingFormatType>ipaddress</addressingFormatType>\n"
            f"<ipAddress>{addr}</ipAddress>\n<managePortNo>8000</managePortNo>\n"
            "<srcInputPort>1</srcInputPort>\n<userName>admin</userName>\n"
            "<streamType>auto</streamType>\n</sourceInputPortDescriptor>\n"
            f"<online>{'true' if online else 'false'}</online>\n"
            f"<chanDetectResult>{detect}</chanDetectResult>\n"
            "</InputProxyChannelStatus>\n"
        )
    return _xml(
        f'<InputProxyChannelStatusList version="{_version(dev)}" xmlns="{NS20}" '
        f'size="{len(items)}">\n{"".join(items)}</InputProxyChannelStatusList>\n'
    )


def _track(dev: SimDevice, ch: ChannelState) -> str:
    tid = f"{ch.channel}01"
    rec = "true" if ch.recording else "false"
    return (
        "<Track>\n"
        f"<id>{tid}</id>\n<Channel>{ch.channel}</Channel>\n<Enable>{rec}</Enable>\n"
        f"<Description>trackType=standard,trackID={tid}</Description>\n"
        f"<TrackGUID>{dev.serial[-8:].lower()}-{tid:0>4}-0000-0000-000000000000</TrackGUID>\n"
        "<Size>0</Size>\n"
        f"<Duration>P{int(ch.retention_days)}DT0H</Duration>\n"
        "<DefaultRecordingMode>CMR</DefaultRecordingMode>\n<LoopEnable>true</LoopEnable>\n"
        "<SrcDescriptor>\n<SrcGUID>0</SrcGUID>\n"
        f"<SrcChannel>{ch.channel}</SrcChannel>\n<StreamHint>Video</StreamHint>\n"
        "<SrcDriver>RTSP</SrcDriver>\n<SrcType>DESC</SrcType>\n<SrcUrlMethods>RTSP"
        "</SrcUrlMethods>\n"
        f"<SrcUrl>rtsp://localhost/PSIA/Streaming/channels/{tid}</SrcUrl>\n"
        "<SrcLogin>admin</SrcLogin>\n</SrcDescriptor>\n"
        "<TrackSchedule>\n<ScheduleBlock>\n"
        "<ScheduleBlockGUID>{00000000-0000-0000-0000-000000000000}</ScheduleBlockGUID>\n"
        "<ScheduleBlockType>www.std-cgi.com/racm/schedule/ver10</ScheduleBlockType>\n"
        + "".join(
            f"<ScheduleAction>\n<id>{i + 1}</id>\n<ScheduleActionStartTime>\n"
            f"<DayOfWeek>{day}</DayOfWeek>\n<TimeOfDay>00:00:00</TimeOfDay>\n"
            "</ScheduleActionStartTime>\n<ScheduleActionEndTime>\n"
            f"<DayOfWeek>{day}</DayOfWeek>\n<TimeOfDay>24:00:00</TimeOfDay>\n"
            "</ScheduleActionEndTime>\n<ScheduleDSTEnable>false</ScheduleDSTEnable>\n"
            "<Description>nothing</Description>\n<Actions>\n"
            f"<Record>{rec}</Record>\n<Log>false</Log>\n<SaveImg>false</SaveImg>\n"
            "<ActionRecordingMode>CMR</ActionRecordingMode>\n</Actions>\n</ScheduleAction>\n"
            for i, day in enumerate(
                ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
            )
        )
        + "</ScheduleBlock>\n</TrackSchedule>\n"
        "<CustomExtensionList>\n<CustomExtension>\n"
        "<CustomExtensionName>www.hikvision.com/RaCM/trackCustomExt/ver10"
        "</CustomExtensionName>\n"
        f"<enableSchedule>{rec}</enableSchedule>\n<SaveAudio>false</SaveAudio>\n"
        "<PreRecordTimeSeconds>5</PreRecordTimeSeconds>\n"
        "<PostRecordTimeSeconds>5</PostRecordTimeSeconds>\n"
        "</CustomExtension>\n</CustomExtensionList>\n"
        "</Track>\n"
    )


def tracks(dev: SimDevice) -> web.Response:
    items = "".join(_track(dev, ch) for ch in dev.channels)
    return _xml(f'<TrackList version="{_version(dev)}" xmlns="{NS10}">\n{items}</TrackList>\n')


def _channel_of_track(dev: SimDevice, track: str) -> ChannelState | None:
    if not track.isdigit() or len(track) < 3:
        return None
    return dev.channel(int(track[:-2]))


def daily_distribution(dev: SimDevice, track: str, body: bytes) -> web.Response:
    ch = _channel_of_track(dev, track)
    if ch is None:
        return response_status(
            f"/ISAPI/ContentMgmt/record/tracks/{track}/dailyDistribution",
            4,
            "Invalid Operation",
            "notSupport",
        )
    now = dev.now()
    try:
        root = etree.fromstring(body, _PARSER) if body else None
    except etree.XMLSyntaxError:
        return response_status(
            "/ISAPI/ContentMgmt/record/tracks", 5, "Invalid XML Format", "badXmlFormat"
        )
    local = local_time(dev)
    year, month = local.year, local.month
    if root is not None:
        y = root.findtext(".//{*}year") or root.findtext(".//year")
        m = root.findtext(".//{*}monthOfYear") or root.findtext(".//monthOfYear")
        if y and y.strip().isdigit() and m and m.strip().isdigit():
            year, month = int(y), int(m)
    off = dt.timedelta(seconds=dev.utc_offset_s)
    days = []
    day = dt.date(year, month, 1)
    while day.month == month:
        start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) - off
        segs = ch.segments(start, start + dt.timedelta(days=1), now)
        days.append(
            f"<day>\n<id>{day.day}</id>\n<dayOfMonth>{day.day}</dayOfMonth>\n"
            f"<record>{'true' if segs else 'false'}</record>\n"
            f"<recordType>{'time' if segs else ''}</recordType>\n</day>\n"
        )
        day += dt.timedelta(days=1)
    return _xml(
        f'<trackDailyDistribution version="{_version(dev)}" xmlns="{NS10}">\n'
        f"<dayList>\n{''.join(days)}</dayList>\n</trackDailyDistribution>\n"
    )


def search(dev: SimDevice, body: bytes) -> web.Response:
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError:
        return response_status("/ISAPI/ContentMgmt/search", 5, "Invalid XML Format", "badXmlFormat")

    def text(name: str) -> str | None:
        el = root.find(f".//{{*}}{name}")
        if el is None:
            el = root.find(f".//{name}")
        return None if el is None else (el.text or "").strip()

    search_id = text("searchID") or "0"
    track_ids = [
        (el.text or "").strip() for el in root.iter() if etree.QName(el).localname == "trackID"
    ]
    try:
        start = parse_search_time(dev, text("startTime") or "")
        end = parse_search_time(dev, text("endTime") or "")
        max_results = int(text("maxResults") or "40")
        position = int(text("searchResultPostion") or text("searchResultPosition") or "0")
    except ValueError:
        return response_status("/ISAPI/ContentMgmt/search", 6, "Invalid Content", "badParameters")
    max_results = max(1, min(max_results, 400))
    now = dev.now()
    matches: list[tuple[str, dt.datetime, dt.datetime]] = []
    for tid in track_ids or [f"{c.channel}01" for c in dev.channels]:
        ch = _channel_of_track(dev, tid)
        if ch is None:
            continue
        for s0, s1 in ch.segments(start, end, now):
            matches.append((tid, s0, s1))
    page = matches[position : position + max_results]
    more = position + len(page) < len(matches)
    status = "MORE" if more else ("OK" if page else "NO MATCHES")
    items = "".join(
        "<searchMatchItem>\n"
        f"<sourceID>{{0000000000-0000-0000-0000-{tid:0>12}}}</sourceID>\n"
        f"<trackID>{tid}</trackID>\n"
        f"<timeSpan>\n<startTime>{search_time(dev, s0)}</startTime>\n"
        f"<endTime>{search_time(dev, s1)}</endTime>\n</timeSpan>\n"
        "<mediaSegmentDescriptor>\n<contentType>video</contentType>\n"
        "<codecType>H.264-BP</codecType>\n"
        f"<playbackURI>rtsp://{dev.host}/Streaming/tracks/{tid}/?starttime="
        f"{search_time(dev, s0).replace('-', '').replace(':', '')}&amp;endtime="
        f"{search_time(dev, s1).replace('-', '').replace(':', '')}&amp;name=0000{i:06d}"
        "&amp;size=268435456</playbackURI>\n"
        "</mediaSegmentDescriptor>\n"
        "<metadataMatches>\n<metadataDescriptor>recordType.meta.hikvision.com/timing"
        "</metadataDescriptor>\n</metadataMatches>\n"
        "</searchMatchItem>\n"
        for i, (tid, s0, s1) in enumerate(page, start=position)
    )
    return _xml(
        f'<CMSearchResult version="{_version(dev)}" xmlns="{NS10}">\n'
        f"<searchID>{escape(search_id)}</searchID>\n"
        f"<responseStatus>true</responseStatus>\n"
        f"<responseStatusStrg>{status}</responseStatusStrg>\n"
        f"<numOfMatches>{len(page)}</numOfMatches>\n"
        f"<matchList>\n{items}</matchList>\n"
        "</CMSearchResult>\n"
    )


_DAILY = re.compile(r"^/ISAPI/ContentMgmt/record/tracks/(\d+)/dailyDistribution$")


async def handle(request: web.Request, dev: SimDevice) -> web.StreamResponse:
    path = request.path
    method = request.method
    if path in forbidden_paths(dev):
        # 403 with the login accepted: this model does not offer it to this account
        return response_status(path, 4, "Invalid Operation", "notSupport", http=403)
    if method == "GET":
        simple = {
            "/ISAPI/System/deviceInfo": device_info,
            "/ISAPI/System/status": device_status,
            "/ISAPI/System/time": system_time,
            "/ISAPI/ContentMgmt/Storage": storage,
            "/ISAPI/ContentMgmt/record/tracks": tracks,
        }
        fn = simple.get(path)
        if fn is not None:
            return fn(dev)
        # A DVR has no IP channels (InputProxy) and an NVR no analog inputs.
        if (
            path == "/ISAPI/ContentMgmt/InputProxy/channels/status"
            and Quirk.ISAPI_NO_PROXY_STATUS not in dev.quirks
            and any(not c.analog for c in dev.channels if dev.is_recorder)
        ):
            return channels_status(dev)
        if path == "/ISAPI/System/Video/inputs/channels" and any(
            c.analog for c in dev.channels if dev.is_recorder
        ):
            return video_inputs(dev)
    if method in ("POST", "GET"):
        m = _DAILY.match(path)
        if m and dev.is_recorder:
            return daily_distribution(dev, m.group(1), await request.read())
    if method == "POST" and path == "/ISAPI/ContentMgmt/search" and dev.is_recorder:
        return search(dev, await request.read())
    return response_status(path, 4, "Invalid Operation", "notSupport")
