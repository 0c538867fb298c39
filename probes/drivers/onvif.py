"""ONVIF: device info, clock, services, media URIs, recordings — prepared requests.

Every request camwatch sends is built once per process by onvif-zeep-async's zeep from
the ONVIF WSDLs (`prepare()`: the operation and its parameters serialised as zeep
sends them) and kept as bytes. A check then only signs it — a WS-Security UsernameToken
PasswordDigest with a fresh nonce per request, timestamped in the device's clock (what
onvif-zeep-async's `adjust_time` does) — and sends it through the device's bounded HTTP
session (`probes.drivers.http`: its keep-alive connection outlives the check). No zeep
object is built per check: the library's own transport skips TLS verification, allows
90 s per call, follows no size limit and crashes on a non-XML 500, and its per-call
message building was a tenth of a check's CPU.

What a device's set-up discovers (its service addresses, media profiles and URIs, its
clock offset) is kept in the driver's state for the device (`link.state("onvif")`), so
the periodic checks are polls. Replies are read by the pure parsers below (lxml, no
entities, bounded size), which match elements by local name, parse times leniently (a
camera that says minute 61 gives an unknown clock, not a crash) and treat a missing
optional service as "not supported".
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit
from xml.sax.saxutils import escape

from lxml import etree

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


# --- prepared requests (built once from the WSDLs by onvif-zeep-async's zeep) ------


WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_DIGEST_TYPE = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
    "#PasswordDigest"
)
_NONCE_TYPE = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0"
    "#Base64Binary"
)
# A parameter's place in a prepared body: zeep serialises this marker where the value
# goes, and each request puts the (escaped) value there.
_MARK = "CAMWATCH-PARAM-{}"


@dataclass(frozen=True)
class SoapOp:
    """One ONVIF operation as zeep serialises it from the WSDL, ready to send: the
    envelope split where the WS-Security header and the parameters go, and zeep's
    HTTP headers (SOAP 1.2 Content-Type with the action)."""

    service: str  # devicemgmt, media, search, recording
    name: str
    head: bytes  # the envelope up to the Body (where the Header goes)
    parts: tuple[bytes, ...]  # the Body, split at the parameters
    headers: Mapping[str, str]

    def render(self, security: bytes | None, params: Sequence[str] = ()) -> bytes:
        if len(params) != len(self.parts) - 1:
            raise ValueError(f"{self.name} takes {len(self.parts) - 1} parameter(s)")
        out = [self.head]
        if security is not None:
            out += (b"<soap-env:Header>", security, b"</soap-env:Header>")
        out.append(self.parts[0])
        for value, part in zip(params, self.parts[1:], strict=True):
            out += (escape(value).encode(), part)
        return b"".join(out)


def username_token(user: str, password: str, created: str, nonce: bytes) -> bytes:
    """The WS-Security UsernameToken (PasswordDigest) header, as onvif-zeep-async's
    zeep writes it: digest = Base64(SHA-1(nonce + created + password))."""
    digest = base64.b64encode(
        hashlib.sha1(nonce + created.encode() + password.encode(), usedforsecurity=False).digest()
    ).decode()
    return (
        f'<wsse:Security xmlns:wsse="{WSSE_NS}"><wsse:UsernameToken>'
        f"<wsse:Username>{escape(user)}</wsse:Username>"
        f'<wsse:Password Type="{_DIGEST_TYPE}">{digest}</wsse:Password>'
        f'<wsse:Nonce EncodingType="{_NONCE_TYPE}">{base64.b64encode(nonce).decode()}'
        "</wsse:Nonce>"
        f'<wsu:Created xmlns:wsu="{WSU_NS}">{created}</wsu:Created>'
        "</wsse:UsernameToken></wsse:Security>"
    ).encode()


def wsse_created(offset: dt.timedelta | None) -> str:
    """Created, in the device's clock (camwatch's UTC + the device's offset, as
    onvif-zeep-async's adjust_time does), to the second, Zulu."""
    now = dt.datetime.now(dt.UTC)
    if offset is not None:
        now += offset
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


# service → [(operation, zeep keyword arguments; a _MARK.format(n) is parameter n)]
_OPERATIONS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "devicemgmt": [
        ("GetSystemDateAndTime", {}),
        ("GetDeviceInformation", {}),
        ("GetServices", {"IncludeCapability": False}),
        ("GetCapabilities", {"Category": "All"}),
    ],
    "media": [
        ("GetProfiles", {}),
        ("GetSnapshotUri", {"ProfileToken": _MARK.format(0)}),
        (
            "GetStreamUri",
            {
                "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
                "ProfileToken": _MARK.format(0),
            },
        ),
    ],
    "search": [
        ("GetRecordingSummary", {}),
        ("FindRecordings", {"Scope": {}, "MaxMatches": 256, "KeepAliveTime": "PT10S"}),
        (
            "GetRecordingSearchResults",
            {"SearchToken": _MARK.format(0), "MaxResults": 256, "WaitTime": "PT1S"},
        ),
        ("EndSearch", {"SearchToken": _MARK.format(0)}),
    ],
    "recording": [
        ("GetRecordingJobs", {}),
        ("GetRecordingJobState", {"JobToken": _MARK.format(0)}),
    ],
}
_WSDL_SERVICES = tuple(_OPERATIONS)
_OPS: dict[str, SoapOp] = {}
_PREPARE_LOCK: asyncio.Lock | None = None


def _soap_op(service: str, name: str, kwargs: dict[str, Any], svc: Any) -> SoapOp:
    """zeep's own serialisation of one operation of the service's WSDL binding (no
    header: the signature is added per request)."""
    binding = svc.zeep_client_authless.wsdl.bindings[svc.binding_name]
    operation = binding.get(name)
    serialized = operation.create(**kwargs)
    envelope = serialized.content
    # SOAP 1.2 carries the action in the media type (RFC 3902), as zeep's binding sends
    headers = dict(serialized.headers)
    headers["Content-Type"] = (
        f'application/soap+xml; charset=utf-8; action="{operation.soapaction}"'
    )
    xml = etree.tostring(envelope)
    head, sep, body = xml.partition(b"<soap-env:Body>")
    if not sep:
        raise RuntimeError(f"zeep's {name} envelope has no soap-env:Body")
    parts: list[bytes] = []
    n = 0
    while (mark := _MARK.format(n).encode()) in body:
        before, _, body = body.partition(mark)
        parts.append(before)
        n += 1
    parts.append(body)
    parts[0] = sep + parts[0]
    return SoapOp(service, name, head, tuple(parts), dict(headers))


async def prepare() -> None:
    """Build every request camwatch sends over ONVIF, once per process (~0.5 s of CPU
    parsing the WSDLs, in onvif-zeep-async).

    Through the library's own API: a camera object that is never contacted builds one
    service client per WSDL, and zeep serialises each operation with its parameters;
    what comes out is kept as bytes (`SoapOp`), so a check only signs and sends. Call
    it before a probe's deadline starts (the service does at start-up).
    """
    global _PREPARE_LOCK
    if len(_OPS) == sum(len(v) for v in _OPERATIONS.values()):
        return
    if _PREPARE_LOCK is None:
        _PREPARE_LOCK = asyncio.Lock()
    async with _PREPARE_LOCK:
        if _OPS:
            return
        cam = _onvif_camera_class()("127.0.0.1", 80, None, None, no_cache=True)
        try:
            built: dict[str, SoapOp] = {}
            for name in _WSDL_SERVICES:
                if name != "devicemgmt":
                    cam.xaddrs[NS[name]] = f"http://127.0.0.1:80/onvif/{name}"
                svc = await cam.create_onvif_service(name)
                for op, kwargs in _OPERATIONS[name]:
                    built[op] = _soap_op(name, op, kwargs, svc)
            _OPS.update(built)
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


# --- the client (prepared requests over the device's DeviceHttp) ---------------------

# What a device's one-time set-up found (service addresses, media URIs) is asked again
# after this long, so that a reconfigured device is seen.
SETUP_TTL_S = 3600.0


class OnvifClient:
    """Speaks ONVIF to one device with the prepared requests: each call signs its
    UsernameToken (a fresh nonce, the device's clock), sends through the device's
    DeviceHttp (its keep-alive connection) and returns the reply body for the pure
    parsers above; no zeep object is built.

    `state` is the device's ONVIF state kept across checks (link.state("onvif")):
    the service addresses (GetServices, else GetCapabilities), media URIs per
    channel, the device clock's offset for the WS-Security timestamps.
    """

    def __init__(
        self,
        http: DeviceHttp,
        address: Address,
        login: tuple[str, str] | None,
        state: dict[str, Any] | None = None,
    ) -> None:
        self.http = http
        self.login = login
        self.host = address.host
        self.port = address.effective_onvif_port
        self.scheme = address.scheme
        path = address.onvif_path
        path = path if path.startswith("/") else "/" + path
        base = self.host if ":" not in self.host else f"[{self.host}]"
        self.device_url = f"{self.scheme}://{base}:{self.port}{path}"
        self.state: dict[str, Any] = state if state is not None else {}

    @property
    def clock_offset(self) -> dt.timedelta | None:
        offset = self.state.get("clock_offset")
        return offset if isinstance(offset, dt.timedelta) else None

    def _security(self) -> bytes | None:
        if self.login is None:
            return None
        user, password = self.login
        return username_token(user, password, wsse_created(self.clock_offset), os.urandom(16))

    async def call(self, op: str, *params: str, authless: bool = False) -> bytes:
        """One prepared operation; its reply body. A SOAP fault raises DeviceError."""
        if not _OPS:
            await prepare()
        sop = _OPS[op]
        url = self.device_url if sop.service == "devicemgmt" else await self._service_url(sop)
        body = sop.render(None if authless else self._security(), params)
        reply = await self.http.request(
            "POST", url, content=body, headers=sop.headers, ok_statuses=(200, 400, 500)
        )
        if reply.status != 200:
            if looks_like_xml(reply.body):
                soap_body(reply.body)  # raises the fault's DeviceError
            raise DeviceError(ReasonCode.HTTP_STATUS, f"主機回覆錯誤（HTTP {reply.status}）")
        return reply.body

    async def _service_url(self, sop: SoapOp) -> str:
        xaddrs = await self.services()
        xaddr = xaddrs.get(NS[sop.service])
        if xaddr is None:
            raise DeviceError(ReasonCode.NOT_SUPPORTED, f"主機不支援 ONVIF {sop.service} 服務")
        return xaddr

    def _rewrite(self, xaddr: str) -> str:
        """A service address naming another host is pointed back at the device itself
        (never contacted elsewhere); an allowed host is kept."""
        host = host_of(xaddr)
        if host and (host == self.host.lower() or host in self.http.limits.allowed_hosts):
            return xaddr
        parts = urlsplit(xaddr)
        base = self.host if ":" not in self.host else f"[{self.host}]"
        return urlunsplit((self.scheme, f"{base}:{self.port}", parts.path or "/", parts.query, ""))

    def _fresh(self, key: str) -> Any:
        entry = self.state.get(key)
        if isinstance(entry, tuple) and time.monotonic() - entry[0] < SETUP_TTL_S:
            return entry[1]
        return None

    async def system_time(self) -> tuple[DeviceTime, float]:
        """GetSystemDateAndTime without auth (with auth if refused).

        Returns the device time and the probe's own clock (epoch seconds) at the middle of
        the exchange; a valid time also shifts the WS-Security timestamps (adjust_time).
        """
        t0 = time.time()
        try:
            body = await self.call("GetSystemDateAndTime", authless=True)
        except DeviceError as exc:
            if exc.reason_code not in (ReasonCode.AUTH, ReasonCode.FAULT):
                raise  # else: firmware that wants a login even for the clock
            t0 = time.time()
            body = await self.call("GetSystemDateAndTime")
        t1 = time.time()
        dtime = parse_system_date_and_time(body)
        mid = (t0 + t1) / 2
        if dtime.utc is not None:
            self.state["clock_offset"] = dtime.utc - dt.datetime.fromtimestamp(mid, dt.UTC)
        return dtime, mid

    async def device_info(self) -> DeviceInfo:
        return parse_device_information(await self.call("GetDeviceInformation"))

    async def services(self) -> dict[str, str]:
        """{namespace: XAddr} of the device's services, asked once per SETUP_TTL_S."""
        found = self._fresh("xaddrs")
        if found is not None:
            return cast(dict[str, str], found)
        try:
            found = parse_services(await self.call("GetServices"))
        except DeviceError as exc:
            if exc.final:
                raise
            found = {}  # older firmware: GetCapabilities
        if not found:
            found = parse_capabilities(await self.call("GetCapabilities"))
        found = {ns: self._rewrite(x) for ns, x in found.items()}
        self.state["xaddrs"] = (time.monotonic(), found)
        return found

    async def supports(self, name: str) -> bool:
        return NS[name] in await self.services()

    async def profiles(self) -> list[Profile]:
        return parse_profiles(await self.call("GetProfiles"))

    async def stream_uri(self, profile: str) -> str | None:
        return parse_media_uri(await self.call("GetStreamUri", profile))

    async def snapshot_uri(self, profile: str) -> str | None:
        return parse_media_uri(await self.call("GetSnapshotUri", profile))

    async def recording_summary(self) -> RecordingSummary:
        return parse_recording_summary(await self.call("GetRecordingSummary"))

    async def find_recordings(self, *, max_rounds: int = 5) -> list[RecordingInfo]:
        token = parse_search_token(await self.call("FindRecordings"))
        found: list[RecordingInfo] = []
        try:
            for _ in range(max_rounds):
                state, infos = parse_recording_search_results(
                    await self.call("GetRecordingSearchResults", token)
                )
                found.extend(infos)
                if state is None or state == "Completed" or not infos:
                    break
        finally:
            with contextlib.suppress(DeviceError):
                await self.call("EndSearch", token)
        return found

    async def recording_jobs(self, *, states: bool = True) -> list[RecordingJob]:
        """The recording jobs, and with `states` each one's state (one request per
        job; without, the configured mode stands for the state)."""
        jobs = parse_recording_jobs(await self.call("GetRecordingJobs"))
        if not states:
            return jobs
        out: list[RecordingJob] = []
        for job in jobs:
            state: str | None = None
            try:
                reply = await self.call("GetRecordingJobState", job.token)
                state = parse_recording_job_state(reply)
            except DeviceError as exc:
                if exc.final:
                    raise  # else: the configured mode stands for the state
            out.append(RecordingJob(job.token, job.recording_token, job.mode, state, job.sources))
        return out

    async def media_uris(
        self, channel: int, *, snapshot: bool = True
    ) -> tuple[str | None, str | None]:
        """(snapshot URI, stream URI) of a channel (see `media_uris`), asked once per
        SETUP_TTL_S and kept in the device's state."""
        key = f"media:{channel}:{int(snapshot)}"
        found = self._fresh(key)
        if found is None:
            found = await media_uris(self, channel, snapshot=snapshot)
            self.state[key] = (time.monotonic(), found)
        return cast(tuple[str | None, str | None], found)

    @staticmethod
    def forget(state: dict[str, Any], channel: int) -> None:
        """A media URI that failed: asked again at the next check."""
        for snap in (0, 1):
            state.pop(f"media:{channel}:{snap}", None)


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
    s: OnvifClient, channel: int, *, snapshot: bool = True
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
# The vendor APIs whose drivers (after this one in the table) search each channel's
# recorded spans (ISAPI ContentMgmt/search, Dahua mediaFileFind).
_SPAN_APIS = frozenset({Protocol.ISAPI, Protocol.DAHUA})


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
        state: dict[str, Any] | None = None,
    ) -> tuple[str | None, str | None] | None:
        client = OnvifClient(http, address, login, state)
        return await client.media_uris(channel, snapshot=snapshot)

    def forget_frame_uris(self, state: dict[str, Any], channel: int) -> None:
        OnvifClient.forget(state, channel)


class _OnvifDriverSession(DriverSession):
    _s: OnvifClient | None = None
    _clock: ClockReading | None = None

    @property
    def abilities(self) -> frozenset[Ability]:
        if self._spans_follow() and _known_empty(self.link.memory, self.link.ctx.now()):
            return self.driver.abilities - {Ability.RECORDINGS}
        return self.driver.abilities

    async def setup(self) -> None:
        await prepare()  # once per process; nothing after

    async def session(self) -> OnvifClient:
        if self._s is None:
            link = self.link
            self._s = OnvifClient(
                await link.http(), link.address, link.login, link.state(self.driver.name)
            )
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
                # A vendor API that follows searches each channel's spans (hence its
                # newest footage) anyway: the jobs' configured modes are enough here,
                # not one GetRecordingJobState per channel on top.
                jobs = await s.recording_jobs(states=not self._spans_follow())
            except DeviceError as exc:
                if exc.final:
                    raise
        for rec in onvif_channels(infos, jobs).values():
            out.channel(rec, spans=False)
        return bool(infos)

    def _spans_follow(self) -> bool:
        """Whether a vendor API after this driver searches each channel's spans."""
        return bool(_SPAN_APIS & set(self.link.target.protocols))


def _known_empty(memory: dict[str, Any], now: dt.datetime) -> bool:
    seen = memory.get(_EMPTY_SEARCH_KEY)
    if not isinstance(seen, str):
        return False
    try:
        return now - dt.datetime.fromisoformat(seen) < _EMPTY_SEARCH_KEPT
    except (TypeError, ValueError):
        return False
