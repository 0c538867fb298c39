"""ONVIF through onvif-zeep-async: device info, clock, services, media URIs, recordings.

onvif-zeep-async (zeep) builds each SOAP request and signs it with the WS-Security
UsernameToken digest, shifted by the device's clock offset (what `adjust_time` does).
Its own transport is replaced by camwatch's bounded HTTP session (`probes.drivers.http`):
the library's transport skips TLS verification, allows 90 s per call, follows no size
limit and crashes on a non-XML 500. Replies come back raw (zeep's `raw_response`) and are
read by the pure parsers below, which match elements by local name, parse times
leniently (a camera that says minute 61 gives an unknown clock, not a crash) and treat a
missing optional service as "not supported".
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from lxml import etree
from zeep.settings import Settings

from inventory.models import Address, Protocol
from probes.drivers.base import (
    Ability,
    ClockReading,
    DeviceLink,
    Driver,
    DriverSession,
    RecordingSink,
)
from probes.drivers.http import (
    DeviceError,
    DeviceHttp,
    HttpLimits,
    HttpReply,
    child,
    children,
    host_of,
    iter_local,
    local,
    looks_like_xml,
    parse_xml,
    text,
)
from probes.facts import ChannelRecording, DeviceInfo, DeviceTime, parse_datetime, parse_int
from probes.reasons import ReasonCode

NS = {
    "devicemgmt": "http://www.onvif.org/ver10/device/wsdl",
    "media": "http://www.onvif.org/ver10/media/wsdl",
    "recording": "http://www.onvif.org/ver10/recording/wsdl",
    "search": "http://www.onvif.org/ver10/search/wsdl",
    "replay": "http://www.onvif.org/ver10/replay/wsdl",
    "events": "http://www.onvif.org/ver10/events/wsdl",
    "imaging": "http://www.onvif.org/ver20/imaging/wsdl",
    "ptz": "http://www.onvif.org/ver20/ptz/wsdl",
    "deviceio": "http://www.onvif.org/ver10/deviceIO/wsdl",
}
# GetCapabilities element names → service
_CAPABILITY_SERVICE = {
    "Device": "devicemgmt",
    "Media": "media",
    "Events": "events",
    "Imaging": "imaging",
    "PTZ": "ptz",
    "DeviceIO": "deviceio",
    "Recording": "recording",
    "Search": "search",
    "Replay": "replay",
}


@dataclass(frozen=True)
class Profile:
    token: str
    name: str | None = None
    video_source: str | None = None


@dataclass(frozen=True)
class RecordingSummary:
    data_from: dt.datetime | None
    data_until: dt.datetime | None
    number_recordings: int | None


@dataclass(frozen=True)
class RecordingInfo:
    token: str
    source_id: str | None = None
    source_name: str | None = None
    earliest: dt.datetime | None = None
    latest: dt.datetime | None = None
    status: str | None = None  # Initiated, Recording, Stopped, Removing, Removed, Unknown


@dataclass(frozen=True)
class RecordingJob:
    token: str
    recording_token: str | None = None
    mode: str | None = None  # Active / Idle
    state: str | None = None  # Active / PartiallyActive / Idle / Error (from job state)
    sources: list[str] = field(default_factory=list)


# --- pure parsers (reply body → facts) -------------------------------------------------


_AUTH_FAULT = re.compile(r"not ?authori[sz]ed|authentication|password|unauthori[sz]ed", re.I)
_UNSUPPORTED_FAULT = re.compile(
    r"ActionNotSupported|NotSupported|NoSuchService|not ?implemented|unknown action|"
    r"OperationProhibited",
    re.I,
)


def soap_body(body: bytes) -> etree._Element:
    """The first element inside the SOAP Body; a SOAP Fault raises DeviceError."""
    root = parse_xml(body)
    if local(root.tag) != "Envelope":
        raise DeviceError(ReasonCode.BAD_REPLY, "主機回覆不是 SOAP 訊息（ONVIF）")
    bod = child(root, "Body")
    if bod is None or len(bod) == 0:
        raise DeviceError(ReasonCode.BAD_REPLY, "主機回覆的 SOAP 訊息沒有內容（ONVIF）")
    first = bod[0]
    if local(first.tag) == "Fault":
        raise fault_error(first)
    return first


def fault_error(fault: etree._Element) -> DeviceError:
    codes = " ".join((n.text or "") for n in fault.iter() if local(n.tag) in ("Value", "faultcode"))
    reason = " ".join(
        (n.text or "").strip() for n in fault.iter() if local(n.tag) in ("Text", "faultstring")
    )
    words = f"{codes} {reason}"
    if _AUTH_FAULT.search(words):
        return DeviceError(ReasonCode.AUTH, "帳號或密碼錯誤，主機拒絕登入（ONVIF）")
    if _UNSUPPORTED_FAULT.search(words):
        return DeviceError(ReasonCode.NOT_SUPPORTED, "主機不支援此 ONVIF 功能")
    short = re.sub(r"\s+", " ", reason)[:80] or "?"
    return DeviceError(ReasonCode.FAULT, f"主機回覆 ONVIF 錯誤：{short}")


def parse_system_date_and_time(body: bytes) -> DeviceTime:
    """GetSystemDateAndTime → the device's UTC clock; invalid values → unknown clock."""
    el = soap_body(body)
    sdt = next(iter_local(el, "SystemDateAndTime"), None)
    utc = child(sdt, "UTCDateTime")
    if utc is None:
        return DeviceTime(utc=None, raw=None)
    parts = [
        parse_int(text(utc, "Date", "Year")),
        parse_int(text(utc, "Date", "Month")),
        parse_int(text(utc, "Date", "Day")),
        parse_int(text(utc, "Time", "Hour")),
        parse_int(text(utc, "Time", "Minute")),
        parse_int(text(utc, "Time", "Second")),
    ]
    raw = "{}-{}-{}T{}:{}:{}Z".format(*("?" if p is None else f"{p:02d}" for p in parts))
    if any(p is None for p in parts):
        return DeviceTime(utc=None, raw=raw)
    try:
        value = dt.datetime(*parts, tzinfo=dt.UTC)  # type: ignore[arg-type,misc]
    except (ValueError, OverflowError):
        return DeviceTime(utc=None, raw=raw)
    return DeviceTime(utc=value, raw=raw)


def parse_device_information(body: bytes) -> DeviceInfo:
    el = soap_body(body)
    return DeviceInfo(
        manufacturer=text(child(el, "Manufacturer")),
        model=text(child(el, "Model")),
        firmware=text(child(el, "FirmwareVersion")),
        serial=text(child(el, "SerialNumber")),
    )


def parse_services(body: bytes) -> dict[str, str]:
    """GetServices → {namespace: XAddr}."""
    el = soap_body(body)
    out: dict[str, str] = {}
    for svc in children(el, "Service"):
        ns = text(child(svc, "Namespace"))
        xaddr = text(child(svc, "XAddr"))
        if ns and xaddr:
            out[ns] = xaddr
    return out


def parse_capabilities(body: bytes) -> dict[str, str]:
    """GetCapabilities → {namespace: XAddr} (including Extension's Recording/Search...)."""
    el = soap_body(body)
    out: dict[str, str] = {}
    for node in el.iter():
        service = _CAPABILITY_SERVICE.get(local(node.tag))
        xaddr = text(child(node, "XAddr"))
        if service and xaddr:
            out.setdefault(NS[service], xaddr)
    return out


def parse_profiles(body: bytes) -> list[Profile]:
    el = soap_body(body)
    out: list[Profile] = []
    for prof in children(el, "Profiles"):
        token = prof.get("token")
        if not token:
            continue
        vsc = child(prof, "VideoSourceConfiguration")
        out.append(
            Profile(
                token=token,
                name=text(child(prof, "Name")),
                video_source=text(child(vsc, "SourceToken")),
            )
        )
    return out


def parse_media_uri(body: bytes) -> str | None:
    """GetStreamUri / GetSnapshotUri → the Uri (None if absent)."""
    el = soap_body(body)
    return text(child(child(el, "MediaUri"), "Uri")) or text(child(el, "Uri"))


def parse_recording_summary(body: bytes) -> RecordingSummary:
    el = soap_body(body)
    summ = child(el, "Summary")
    return RecordingSummary(
        data_from=parse_datetime(text(child(summ, "DataFrom"))),
        data_until=parse_datetime(text(child(summ, "DataUntil"))),
        number_recordings=parse_int(text(child(summ, "NumberRecordings"))),
    )


def parse_search_token(body: bytes) -> str:
    el = soap_body(body)
    token = text(child(el, "SearchToken"))
    if not token:
        raise DeviceError(ReasonCode.BAD_REPLY, "主機未回覆錄影查詢代碼（ONVIF）")
    return token


def _recording_info(info: etree._Element) -> RecordingInfo | None:
    token = text(child(info, "RecordingToken"))
    if not token:
        return None
    src = child(info, "Source")
    return RecordingInfo(
        token=token,
        source_id=text(child(src, "SourceId")),
        source_name=text(child(src, "Name")),
        earliest=parse_datetime(text(child(info, "EarliestRecording"))),
        latest=parse_datetime(text(child(info, "LatestRecording"))),
        status=text(child(info, "RecordingStatus")),
    )


def parse_recording_search_results(body: bytes) -> tuple[str | None, list[RecordingInfo]]:
    """GetRecordingSearchResults → (SearchState, recordings)."""
    el = soap_body(body)
    result = child(el, "ResultList")
    state = text(child(result, "SearchState"))
    infos = [r for r in map(_recording_info, children(result, "RecordingInformation")) if r]
    return state, infos


def parse_recording_information(body: bytes) -> RecordingInfo | None:
    el = soap_body(body)
    info = child(el, "RecordingInformation")
    return _recording_info(info) if info is not None else None


def parse_recording_jobs(body: bytes) -> list[RecordingJob]:
    el = soap_body(body)
    jobs: list[RecordingJob] = []
    for item in children(el, "JobItem"):
        token = text(child(item, "JobToken"))
        if not token:
            continue
        conf = child(item, "JobConfiguration")
        sources = (
            [t for t in (text(n) for n in iter_local(conf, "Token")) if t]
            if conf is not None
            else []
        )
        jobs.append(
            RecordingJob(
                token=token,
                recording_token=text(child(conf, "RecordingToken")),
                mode=text(child(conf, "Mode")),
                sources=sources,
            )
        )
    return jobs


def parse_recording_job_state(body: bytes) -> str | None:
    el = soap_body(body)
    state = child(el, "State")
    return text(child(state, "State")) if state is not None else None


# --- the session (onvif-zeep-async + camwatch's bounded HTTP) -----------------------


class _BoundedTransport:
    """What zeep calls to send a SOAP envelope, through camwatch's DeviceHttp."""

    def __init__(self, http: DeviceHttp) -> None:
        self.http = http
        self.cache = None

    async def post_xml(self, address: str, envelope: Any, headers: dict[str, str]) -> HttpReply:
        from zeep.wsdl.utils import etree_to_string

        message = etree_to_string(envelope)  # type: ignore[no-untyped-call]
        reply = await self.http.request(
            "POST", address, content=message, headers=headers, ok_statuses=(200, 400, 500)
        )
        if reply.status != 200:
            if looks_like_xml(reply.body):
                soap_body(reply.body)  # raises the fault's DeviceError
            raise DeviceError(ReasonCode.HTTP_STATUS, f"主機回覆錯誤（HTTP {reply.status}）")
        return reply

    async def post(self, address: str, message: str, headers: dict[str, str]) -> HttpReply:
        return await self.http.request("POST", address, content=message.encode(), headers=headers)

    def load(self, url: str) -> bytes:
        raise DeviceError(ReasonCode.NOT_SUPPORTED, "不從裝置下載 WSDL")

    async def aclose(self) -> None:
        return None


def _raw_settings() -> Settings:
    s = Settings()
    s.strict = False
    s.raw_response = True
    s.xml_huge_tree = False
    s.forbid_dtd = True
    s.forbid_entities = True
    s.forbid_external = True
    return s


_PREPARED: set[str] = set()
_PREPARE_LOCK: asyncio.Lock | None = None
_WSDL_SERVICES = ("devicemgmt", "media", "search", "recording")


async def prepare() -> None:
    """Parse the ONVIF WSDLs once per process (~0.5 s of CPU, in a worker thread).

    Call it before a probe's deadline starts (the service does at start-up, the checks
    on their first ONVIF probe), so that the first probe is not the one that times out.
    Through the library's own API: a camera object that is never contacted builds one
    service client per WSDL, which loads and keeps the parsed document.
    """
    global _PREPARE_LOCK
    if len(_PREPARED) == len(_WSDL_SERVICES):
        return
    if _PREPARE_LOCK is None:
        _PREPARE_LOCK = asyncio.Lock()
    async with _PREPARE_LOCK:
        cam = _onvif_camera_class()("127.0.0.1", 80, None, None, no_cache=True)
        try:
            for name in _WSDL_SERVICES:
                if name in _PREPARED:
                    continue
                if name != "devicemgmt":
                    cam.xaddrs[NS[name]] = f"http://127.0.0.1:80/onvif/{name}"
                await cam.create_onvif_service(name)
                _PREPARED.add(name)
        finally:
            await cam.close()


def _onvif_camera_class() -> Any:
    """onvif-zeep-async's ONVIFCamera, imported without its side effect on logging
    (the module calls logging.basicConfig(level=INFO) at import, which would make every
    library's INFO lines, request URLs included, appear in the service's output)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from onvif import ONVIFCamera

    for h in root.handlers[:]:
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    return ONVIFCamera


class OnvifSession:
    """One conversation with one ONVIF device (`async with OnvifSession(...) as s`)."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str | None,
        password: str | None,
        limits: HttpLimits,
        *,
        scheme: str = "http",
        path: str = "/onvif/device_service",
        http: DeviceHttp | None = None,
    ) -> None:
        """`http`: an open DeviceHttp of the same device, credentials and limits to
        send through (its connection is kept for the caller's next requests); the
        session then neither opens nor closes it. Default: a session of its own."""
        self.host = host
        self.path = path if path.startswith("/") else "/" + path
        self.port = port
        self.scheme = scheme
        self.user = user
        self.password = password
        self.limits = limits
        # Some firmware (Axis among others) wants HTTP digest auth on top of, or instead
        # of, WS-Security: answered only when the device challenges with a 401.
        self._own_http = http is None
        self.http = http or DeviceHttp(limits, (user, password) if user and password else None)
        self._transport = _BoundedTransport(self.http)
        self._cam: Any = None
        self.xaddrs: dict[str, str] | None = None
        self.clock_offset: dt.timedelta | None = None

    async def __aenter__(self) -> OnvifSession:
        camera_cls = _onvif_camera_class()
        if self._own_http:
            await self.http.__aenter__()
        base = self.host if ":" not in self.host else f"[{self.host}]"
        self._cam = camera_cls(
            f"{self.scheme}://{base}",
            self.port,
            self.user,
            self.password,
            no_cache=True,
            adjust_time=True,
        )
        if self.path != "/onvif/device_service":
            # onvif-zeep-async fixes the device service path; honour the inventory's.
            original = self._cam.get_definition
            device_xaddr = f"{self.scheme}://{base}:{self.port}{self.path}"

            def get_definition(name: str, port_type: str | None = None) -> Any:
                xaddr, wsdl, binding = original(name, port_type)
                return (device_xaddr if name == "devicemgmt" else xaddr), wsdl, binding

            self._cam.get_definition = get_definition
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._cam is not None:
                await self._cam.close()
        finally:
            if self._own_http:
                await self.http.aclose()

    def _rewrite(self, xaddr: str) -> str:
        """A service address naming another host is pointed back at the device itself
        (never contacted elsewhere); an allowed host is kept."""
        host = host_of(xaddr)
        if host and (host == self.host.lower() or host in self.limits.allowed_hosts):
            return xaddr
        parts = urlsplit(xaddr)
        base = self.host if ":" not in self.host else f"[{self.host}]"
        return urlunsplit((self.scheme, f"{base}:{self.port}", parts.path or "/", parts.query, ""))

    async def _service(self, name: str) -> Any:
        cam = self._cam
        if name != "devicemgmt":
            if self.xaddrs is None:
                await self.services()
            assert self.xaddrs is not None
            ns = NS[name]
            if ns not in self.xaddrs:
                raise DeviceError(ReasonCode.NOT_SUPPORTED, f"主機不支援 ONVIF {name} 服務")
            cam.xaddrs[ns] = self._rewrite(self.xaddrs[ns])
        svc = await cam.create_onvif_service(name)
        for client in (svc.zeep_client, svc.zeep_client_authless):
            if client.transport is not self._transport:
                client.transport = self._transport
                client.settings = _raw_settings()
        if self.clock_offset is not None and svc.zeep_client.wsse is not None:
            svc.zeep_client.wsse.dt_diff = self.clock_offset
        return svc

    async def call(
        self, service: str, op: str, params: dict[str, Any] | None = None, *, authless: bool = False
    ) -> bytes:
        svc = await self._service(service)
        fn = getattr(svc, ("authless_" if authless else "") + op)
        try:
            reply = await fn(params)
        except DeviceError:
            raise
        except (TypeError, ValueError, AttributeError, LookupError) as exc:
            # zeep could not build the request (never a device reply problem)
            raise DeviceError(ReasonCode.BAD_REPLY, f"無法建立 ONVIF 請求 {op}") from exc
        except Exception as exc:  # zeep/onvif wrap everything in their own errors
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, DeviceError):
                raise cause from None
            raise DeviceError(ReasonCode.BAD_REPLY, f"ONVIF {op} 失敗") from None
        if not isinstance(reply, HttpReply):
            raise DeviceError(ReasonCode.BAD_REPLY, f"ONVIF {op} 回覆無法解讀")
        return reply.body

    async def system_time(self) -> tuple[DeviceTime, float]:
        """GetSystemDateAndTime without auth (with auth if refused).

        Returns the device time and the probe's own clock (epoch seconds) at the middle of
        the exchange; a valid time also shifts the WS-Security timestamps (adjust_time).
        """
        t0 = time.time()
        try:
            body = await self.call("devicemgmt", "GetSystemDateAndTime", authless=True)
        except DeviceError as exc:
            if exc.reason_code not in (ReasonCode.AUTH, ReasonCode.FAULT):
                raise  # else: firmware that wants a login even for the clock
            t0 = time.time()
            body = await self.call("devicemgmt", "GetSystemDateAndTime")
        t1 = time.time()
        dtime = parse_system_date_and_time(body)
        mid = (t0 + t1) / 2
        if dtime.utc is not None:
            self.clock_offset = dtime.utc - dt.datetime.fromtimestamp(mid, dt.UTC)
            for svc in self._cam.services.values():
                if svc.zeep_client is not None and svc.zeep_client.wsse is not None:
                    svc.zeep_client.wsse.dt_diff = self.clock_offset
            self._cam.dt_diff = self.clock_offset
        return dtime, mid

    async def device_info(self) -> DeviceInfo:
        return parse_device_information(await self.call("devicemgmt", "GetDeviceInformation"))

    async def services(self) -> dict[str, str]:
        if self.xaddrs is None:
            try:
                found = parse_services(
                    await self.call("devicemgmt", "GetServices", {"IncludeCapability": False})
                )
            except DeviceError as exc:
                if exc.final:
                    raise
                found = {}  # older firmware: GetCapabilities
            if not found:
                found = parse_capabilities(
                    await self.call("devicemgmt", "GetCapabilities", {"Category": "All"})
                )
            self.xaddrs = found
        return self.xaddrs

    async def supports(self, name: str) -> bool:
        return NS[name] in await self.services()

    async def profiles(self) -> list[Profile]:
        return parse_profiles(await self.call("media", "GetProfiles"))

    async def stream_uri(self, profile: str) -> str | None:
        return parse_media_uri(
            await self.call(
                "media",
                "GetStreamUri",
                {
                    "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
                    "ProfileToken": profile,
                },
            )
        )

    async def snapshot_uri(self, profile: str) -> str | None:
        return parse_media_uri(
            await self.call("media", "GetSnapshotUri", {"ProfileToken": profile})
        )

    async def recording_summary(self) -> RecordingSummary:
        return parse_recording_summary(await self.call("search", "GetRecordingSummary"))

    async def find_recordings(self, *, max_rounds: int = 5) -> list[RecordingInfo]:
        token = parse_search_token(
            await self.call(
                "search",
                "FindRecordings",
                {"Scope": {}, "MaxMatches": 256, "KeepAliveTime": "PT10S"},
            )
        )
        found: list[RecordingInfo] = []
        try:
            for _ in range(max_rounds):
                state, infos = parse_recording_search_results(
                    await self.call(
                        "search",
                        "GetRecordingSearchResults",
                        {"SearchToken": token, "MaxResults": 256, "WaitTime": "PT1S"},
                    )
                )
                found.extend(infos)
                if state is None or state == "Completed" or not infos:
                    break
        finally:
            with contextlib.suppress(DeviceError):
                await self.call("search", "EndSearch", {"SearchToken": token})
        return found

    async def recording_jobs(self) -> list[RecordingJob]:
        jobs = parse_recording_jobs(await self.call("recording", "GetRecordingJobs"))
        out: list[RecordingJob] = []
        for job in jobs:
            state: str | None = None
            try:
                state = parse_recording_job_state(
                    await self.call("recording", "GetRecordingJobState", {"JobToken": job.token})
                )
            except DeviceError as exc:
                if exc.final:
                    raise  # else: the configured mode stands for the state
            out.append(RecordingJob(job.token, job.recording_token, job.mode, state, job.sources))
        return out


_TRAILING_NUMBER = re.compile(r"(\d+)\D*$")


def channel_of(rec: RecordingInfo | RecordingJob | str, fallback: int) -> int:
    """A recording's camera channel: the number a device puts at the end of the
    recording token, source name or source id (Recording_003, "Camera 03", SourceId_3);
    else the position in the list (1-based). Numbers 0 and above 512 are not channels
    (Dahua's MediaProfile00100 style profile tokens)."""
    if isinstance(rec, RecordingInfo):
        candidates = [rec.token, rec.source_name, rec.source_id]
    elif isinstance(rec, RecordingJob):
        candidates = [rec.recording_token, *rec.sources, rec.token]
    else:
        candidates = [rec]
    for cand in candidates:
        if cand:
            m = _TRAILING_NUMBER.search(cand)
            if m and 0 < int(m.group(1)) <= 512:
                return int(m.group(1))
    return fallback


# ---- recordings and jobs per channel ----------------------------------------------

_JOB_ACTIVE = {"active", "partiallyactive"}
_REC_ACTIVE = {"recording", "initiated"}


def onvif_channels(
    infos: list[RecordingInfo], jobs: list[RecordingJob]
) -> dict[int, ChannelRecording]:
    """ONVIF recordings and jobs → per channel (no gaps: ONVIF search has no spans)."""
    job_by_rec: dict[str, RecordingJob] = {}
    for j in jobs:
        if j.recording_token:
            job_by_rec[j.recording_token] = j
    out: dict[int, ChannelRecording] = {}
    for n, info in enumerate(infos, start=1):
        ch = channel_of(info, n)
        job: RecordingJob | None = job_by_rec.get(info.token)
        recording: bool | None = None
        if job is not None and (job.state or job.mode):
            recording = (job.state or job.mode or "").lower() in _JOB_ACTIVE
        elif info.status:
            recording = info.status.lower() in _REC_ACTIVE
        out[ch] = ChannelRecording(
            channel=ch, recording=recording, newest=info.latest, oldest=info.earliest
        )
    return out


async def media_uris(
    s: OnvifSession, channel: int, *, snapshot: bool = True
) -> tuple[str | None, str | None]:
    """(snapshot URI, stream URI) of the media profile of a channel (1-based; the
    first profile when there are fewer); the stream only when there is no snapshot."""
    profiles = await s.profiles()
    if not profiles:
        if not snapshot:
            return None, None
        raise DeviceError(ReasonCode.NOT_SUPPORTED, "主機沒有 ONVIF 影像設定檔")
    profile = profiles[channel - 1] if 0 < channel <= len(profiles) else profiles[0]
    snap: str | None = None
    if snapshot:
        try:
            snap = await s.snapshot_uri(profile.token)
        except DeviceError as exc:
            if exc.final:
                raise  # else: no snapshot service; the stream will do
    stream = None if snap else await s.stream_uri(profile.token)
    return snap, stream


# ---- the driver ------------------------------------------------------------------

# A recorder whose ONVIF search came back empty is not searched over ONVIF again for
# this long when a vendor API answers instead (Hikvision answers ONVIF search with
# nothing: five empty SOAP calls per check otherwise).
_EMPTY_SEARCH_KEPT = dt.timedelta(hours=1)
_EMPTY_SEARCH_KEY = "onvif_search_empty_at"


class OnvifDriver(Driver):
    """ONVIF (Profile S/G): device info, the clock without a login, recording search
    and job state, media URIs."""

    name = "onvif"
    protocol = Protocol.ONVIF
    abilities = frozenset(
        {Ability.DEVICE_INFO, Ability.CLOCK, Ability.RECORDINGS, Ability.FRAMES}
    )

    def session(self, link: DeviceLink) -> DriverSession:
        return _OnvifDriverSession(self, link)

    async def prepare(self) -> None:
        await prepare()

    async def frame_uris(
        self,
        http: DeviceHttp,
        address: Address,
        login: tuple[str, str] | None,
        channel: int,
        *,
        snapshot: bool = True,
    ) -> tuple[str | None, str | None] | None:
        user, pw = login if login else (None, None)
        async with OnvifSession(
            address.host,
            address.effective_onvif_port,
            user,
            pw,
            http.limits,
            scheme=address.scheme,
            path=address.onvif_path,
            http=http,
        ) as s:
            return await media_uris(s, channel, snapshot=snapshot)


class _OnvifDriverSession(DriverSession):
    _s: OnvifSession | None = None
    _clock: ClockReading | None = None

    @property
    def abilities(self) -> frozenset[Ability]:
        vendor_api = {Protocol.ISAPI, Protocol.DAHUA} & set(self.link.target.protocols)
        if vendor_api and _known_empty(self.link.memory, self.link.ctx.now()):
            return self.driver.abilities - {Ability.RECORDINGS}
        return self.driver.abilities

    async def setup(self) -> None:
        await prepare()  # once per process; nothing after

    async def session(self) -> OnvifSession:
        if self._s is None:
            link = self.link
            user, pw = link.login if link.login else (None, None)
            addr = link.address
            s = OnvifSession(
                addr.host,
                addr.effective_onvif_port,
                user,
                pw,
                link.limits,
                scheme=addr.scheme,
                path=addr.onvif_path,
                http=await link.http(),
            )
            await s.__aenter__()
            self._s = s
        return self._s

    async def clock(self) -> ClockReading:
        """GetSystemDateAndTime (no login needed); it also aligns the WS-Security
        timestamps of every later request with the device's clock."""
        if self._clock is None:
            dtime, mid = await (await self.session()).system_time()
            self._clock = self.link.clock_reading(dtime, mid)
        return self._clock

    async def device_info(self) -> DeviceInfo:
        await self.clock()
        return await (await self.session()).device_info()

    async def recordings(self, now: dt.datetime, out: RecordingSink) -> bool:
        try:
            found = await self._recordings(out)
        except DeviceError as exc:
            if not exc.final:
                self.link.memory[_EMPTY_SEARCH_KEY] = now.isoformat()
            raise
        if not found:
            self.link.memory[_EMPTY_SEARCH_KEY] = now.isoformat()
        return found

    async def _recordings(self, out: RecordingSink) -> bool:
        out.clock((await self.clock()).offset_s)
        s = await self.session()
        if not await s.supports("search"):
            return False
        try:
            infos = await s.find_recordings()
        except DeviceError as exc:
            if exc.final:
                raise
            # No per-recording search: the summary still says what the recorder holds.
            summary = await s.recording_summary()
            if summary.number_recordings and summary.data_until is not None:
                out.summary(summary.data_until, summary.data_from)
                return True
            return False
        jobs: list[RecordingJob] = []
        if infos and await s.supports("recording"):
            try:
                jobs = await s.recording_jobs()
            except DeviceError as exc:
                if exc.final:
                    raise
        for rec in onvif_channels(infos, jobs).values():
            out.channel(rec, spans=False)
        return bool(infos)

    async def aclose(self) -> None:
        if self._s is not None:
            s, self._s = self._s, None
            await s.__aexit__(None, None, None)


def _known_empty(memory: dict[str, Any], now: dt.datetime) -> bool:
    seen = memory.get(_EMPTY_SEARCH_KEY)
    if not isinstance(seen, str):
        return False
    try:
        return now - dt.datetime.fromisoformat(seen) < _EMPTY_SEARCH_KEPT
    except (TypeError, ValueError):
        return False
