"""ONVIF (SOAP 1.2) as a simulated device answers it: device management, media, recording
search and recording control, modelled on captured replies in ../shared/fixtures/onvif.

`handle(device, body, base_url)` returns (HTTP status, XML bytes). WS-UsernameToken is
checked for every operation except GetSystemDateAndTime (as the ONVIF core spec allows
and real devices do).

Vendor quirk: Hikvision recorders advertise the search and recording services but their
ONVIF search is empty (no recordings, no jobs), so probes must fall back to ISAPI.
"""

from __future__ import annotations

import datetime as dt
from xml.sax.saxutils import escape

from lxml import etree

from inventory.models import Vendor
from simulator.httpauth import check_username_token
from simulator.model import ChannelState, FaultKind, SimDevice

SOAP_ENV = "http://www.w3.org/2003/05/soap-envelope"
NS = {
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tse": "http://www.onvif.org/ver10/search/wsdl",
    "trc": "http://www.onvif.org/ver10/recording/wsdl",
    "tt": "http://www.onvif.org/ver10/schema",
    "ter": "http://www.onvif.org/ver10/error",
}
_ENVELOPE_OPEN = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<env:Envelope xmlns:env="{SOAP_ENV}" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    + " ".join(f'xmlns:{p}="{u}"' for p, u in NS.items())
    + "><env:Header/><env:Body>"
)
_ENVELOPE_CLOSE = "</env:Body></env:Envelope>\n"

MANUFACTURER = {
    Vendor.HIKVISION: "HIKVISION",
    Vendor.DAHUA: "Dahua",
    Vendor.AXIS: "AXIS",
    Vendor.SYNOLOGY: "Synology",
    Vendor.GENERIC: "ONVIF",
}

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def envelope(body: str) -> bytes:
    return (_ENVELOPE_OPEN + body + _ENVELOPE_CLOSE).encode()


def fault(code: str, subcode: str, reason: str) -> bytes:
    return envelope(
        "<env:Fault><env:Code>"
        f"<env:Value>env:{code}</env:Value>"
        f"<env:Subcode><env:Value>{subcode}</env:Value></env:Subcode>"
        "</env:Code>"
        f'<env:Reason><env:Text xml:lang="en">{escape(reason)}</env:Text></env:Reason>'
        "</env:Fault>"
    )


NOT_AUTHORIZED = fault("Sender", "ter:NotAuthorized", "Sender not authorized")


def xml_time(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dt_block(t: dt.datetime) -> str:
    return (
        f"<tt:Time><tt:Hour>{t.hour}</tt:Hour><tt:Minute>{t.minute}</tt:Minute>"
        f"<tt:Second>{t.second}</tt:Second></tt:Time>"
        f"<tt:Date><tt:Year>{t.year}</tt:Year><tt:Month>{t.month}</tt:Month>"
        f"<tt:Day>{t.day}</tt:Day></tt:Date>"
    )


def profile_token(dev: SimDevice, ch: int) -> str:
    if dev.vendor == Vendor.HIKVISION:
        return f"Profile_{ch}01" if dev.is_recorder else "Profile_1"
    if dev.vendor == Vendor.DAHUA:
        return f"MediaProfile{ch - 1:03d}00"
    return f"profile_{ch}_main"


def channel_of_token(dev: SimDevice, token: str) -> int | None:
    for ch in dev.channels:
        if profile_token(dev, ch.channel) == token:
            return ch.channel
    return None


def recording_token(ch: int) -> str:
    return f"Recording_{ch:03d}"


def job_token(ch: int) -> str:
    return f"RecordingJob_{ch:03d}"


class OnvifRequest:
    def __init__(self, dev: SimDevice, base_url: str, rtsp_base: str, body: bytes) -> None:
        self.dev = dev
        self.base = base_url  # http://host:port
        self.rtsp_base = rtsp_base  # rtsp://host:port
        self.root = etree.fromstring(body, _PARSER)
        body_el = self.root.find(f"{{{SOAP_ENV}}}Body")
        if body_el is None or len(body_el) == 0:
            raise ValueError("no SOAP body")
        self.op_el = body_el[0]
        self.op = etree.QName(self.op_el).localname

    def arg(self, name: str) -> str | None:
        for el in self.op_el.iter():
            if isinstance(el.tag, str) and etree.QName(el).localname == name:
                return (el.text or "").strip()
        return None


def handle(dev: SimDevice, body: bytes, base_url: str, rtsp_base: str) -> tuple[int, bytes]:
    try:
        req = OnvifRequest(dev, base_url, rtsp_base, body)
    except (etree.XMLSyntaxError, ValueError):
        return 400, fault("Sender", "ter:WellFormed", "XML not well-formed")
    if req.op != "GetSystemDateAndTime":
        authorized = not dev.has(FaultKind.AUTH) and check_username_token(
            req.root, dev.username, dev.password
        )
        if not authorized:
            return 400, NOT_AUTHORIZED
    fn = _OPS.get(req.op)
    if fn is None or (req.op in _RECORDER_OPS and not dev.is_recorder):
        return 400, fault("Receiver", "ter:ActionNotSupported", "Optional Action Not Implemented")
    try:
        return 200, envelope(fn(req))
    except _NoSuchToken as exc:
        return 400, fault("Sender", "ter:InvalidArgVal", f"No such token: {exc}")


class _NoSuchToken(Exception):
    pass


# -- device management --------------------------------------------------------------


def get_system_date_and_time(r: OnvifRequest) -> str:
    now = r.dev.now()
    local = now + dt.timedelta(seconds=r.dev.utc_offset_s)
    return (
        "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
        "<tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
        f"<tt:TimeZone><tt:TZ>{r.dev.timezone}</tt:TZ></tt:TimeZone>"
        f"<tt:UTCDateTime>{_dt_block(now)}</tt:UTCDateTime>"
        f"<tt:LocalDateTime>{_dt_block(local)}</tt:LocalDateTime>"
        "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
    )


def get_device_information(r: OnvifRequest) -> str:
    d = r.dev
    fw = f"{d.firmware} {d.firmware_build}".strip()
    return (
        "<tds:GetDeviceInformationResponse>"
        f"<tds:Manufacturer>{MANUFACTURER.get(d.vendor, 'ONVIF')}</tds:Manufacturer>"
        f"<tds:Model>{escape(d.model)}</tds:Model>"
        f"<tds:FirmwareVersion>{escape(fw)}</tds:FirmwareVersion>"
        f"<tds:SerialNumber>{escape(d.serial)}</tds:SerialNumber>"
        f"<tds:HardwareId>88</tds:HardwareId>"
        "</tds:GetDeviceInformationResponse>"
    )


def _services(r: OnvifRequest) -> list[tuple[str, str, int, int]]:
    out = [
        (NS["tds"], r.dev.onvif_path, 17, 12),
        (NS["trt"], "/onvif/Media", 17, 12),
    ]
    if r.dev.is_recorder:
        out += [
            (NS["trc"], "/onvif/Recording", 17, 12),
            (NS["tse"], "/onvif/SearchRecording", 17, 12),
        ]
    return out


def get_services(r: OnvifRequest) -> str:
    items = "".join(
        f"<tds:Service><tds:Namespace>{ns}</tds:Namespace>"
        f"<tds:XAddr>{r.base}{path}</tds:XAddr>"
        f"<tds:Version><tt:Major>{ma}</tt:Major><tt:Minor>{mi}</tt:Minor></tds:Version>"
        "</tds:Service>"
        for ns, path, ma, mi in _services(r)
    )
    return f"<tds:GetServicesResponse>{items}</tds:GetServicesResponse>"


def get_capabilities(r: OnvifRequest) -> str:
    ext = ""
    if r.dev.is_recorder:
        ext = (
            "<tt:Extension>"
            f"<tt:Recording><tt:XAddr>{r.base}/onvif/Recording</tt:XAddr>"
            "<tt:ReceiverSource>false</tt:ReceiverSource>"
            "<tt:MediaProfileSource>true</tt:MediaProfileSource>"
            "<tt:DynamicRecordings>false</tt:DynamicRecordings>"
            "<tt:DynamicTracks>false</tt:DynamicTracks>"
            "<tt:MaxStringLength>64</tt:MaxStringLength></tt:Recording>"
            f"<tt:Search><tt:XAddr>{r.base}/onvif/SearchRecording</tt:XAddr>"
            "<tt:MetadataSearch>false</tt:MetadataSearch></tt:Search>"
            "</tt:Extension>"
        )
    return (
        "<tds:GetCapabilitiesResponse><tds:Capabilities>"
        f"<tt:Device><tt:XAddr>{r.base}{r.dev.onvif_path}</tt:XAddr>"
        "<tt:Network><tt:IPFilter>false</tt:IPFilter><tt:ZeroConfiguration>false"
        "</tt:ZeroConfiguration><tt:IPVersion6>false</tt:IPVersion6>"
        "<tt:DynDNS>false</tt:DynDNS></tt:Network>"
        "<tt:System><tt:DiscoveryResolve>false</tt:DiscoveryResolve>"
        "<tt:DiscoveryBye>true</tt:DiscoveryBye><tt:RemoteDiscovery>false</tt:RemoteDiscovery>"
        "<tt:SystemBackup>false</tt:SystemBackup><tt:SystemLogging>true</tt:SystemLogging>"
        "<tt:FirmwareUpgrade>true</tt:FirmwareUpgrade>"
        "<tt:SupportedVersions><tt:Major>17</tt:Major><tt:Minor>12</tt:Minor>"
        "</tt:SupportedVersions></tt:System>"
        "<tt:Security><tt:TLS1.1>false</tt:TLS1.1><tt:TLS1.2>false</tt:TLS1.2>"
        "<tt:OnboardKeyGeneration>false</tt:OnboardKeyGeneration>"
        "<tt:AccessPolicyConfig>false</tt:AccessPolicyConfig>"
        "<tt:X.509Token>false</tt:X.509Token><tt:SAMLToken>false</tt:SAMLToken>"
        "<tt:KerberosToken>false</tt:KerberosToken><tt:RELToken>false</tt:RELToken>"
        "</tt:Security></tt:Device>"
        f"<tt:Media><tt:XAddr>{r.base}/onvif/Media</tt:XAddr>"
        "<tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast>"
        "<tt:RTP_TCP>true</tt:RTP_TCP><tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP>"
        "</tt:StreamingCapabilities></tt:Media>"
        f"{ext}"
        "</tds:Capabilities></tds:GetCapabilitiesResponse>"
    )


# -- media --------------------------------------------------------------------------


def _profile(dev: SimDevice, ch: ChannelState) -> str:
    tok = profile_token(dev, ch.channel)
    n = ch.channel
    return (
        f'<trt:Profiles token="{tok}" fixed="true">'
        f"<tt:Name>mainStream</tt:Name>"
        f'<tt:VideoSourceConfiguration token="VideoSourceConfig_{n}">'
        f"<tt:Name>{escape(ch.name or f'Camera {n:02d}')}</tt:Name><tt:UseCount>2</tt:UseCount>"
        f"<tt:SourceToken>VideoSource_{n}</tt:SourceToken>"
        '<tt:Bounds x="0" y="0" width="1920" height="1080"/>'
        "</tt:VideoSourceConfiguration>"
        f'<tt:VideoEncoderConfiguration token="VideoEncoder_{n}">'
        f"<tt:Name>VideoEncoder_{n}</tt:Name><tt:UseCount>1</tt:UseCount>"
        "<tt:Encoding>H264</tt:Encoding>"
        "<tt:Resolution><tt:Width>1920</tt:Width><tt:Height>1080</tt:Height></tt:Resolution>"
        "<tt:Quality>3</tt:Quality>"
        "<tt:RateControl><tt:FrameRateLimit>15</tt:FrameRateLimit>"
        "<tt:EncodingInterval>1</tt:EncodingInterval><tt:BitrateLimit>4096</tt:BitrateLimit>"
        "</tt:RateControl>"
        "<tt:H264><tt:GovLength>30</tt:GovLength><tt:H264Profile>Main</tt:H264Profile></tt:H264>"
        "<tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type>"
        "<tt:IPv4Address>0.0.0.0</tt:IPv4Address></tt:Address><tt:Port>8860</tt:Port>"
        "<tt:TTL>128</tt:TTL><tt:AutoStart>false</tt:AutoStart></tt:Multicast>"
        "<tt:SessionTimeout>PT5S</tt:SessionTimeout>"
        "</tt:VideoEncoderConfiguration>"
        "</trt:Profiles>"
    )


def get_profiles(r: OnvifRequest) -> str:
    items = "".join(_profile(r.dev, ch) for ch in r.dev.channels)
    return f"<trt:GetProfilesResponse>{items}</trt:GetProfilesResponse>"


def _channel_arg(r: OnvifRequest) -> int:
    token = r.arg("ProfileToken") or ""
    ch = channel_of_token(r.dev, token)
    if ch is None:
        raise _NoSuchToken(token)
    return ch


def get_profile(r: OnvifRequest) -> str:
    ch = _channel_arg(r)
    state = r.dev.channel(ch)
    assert state is not None
    body = _profile(r.dev, state).replace("trt:Profiles", "trt:Profile")
    return f"<trt:GetProfileResponse>{body}</trt:GetProfileResponse>"


def get_video_sources(r: OnvifRequest) -> str:
    items = "".join(
        f'<trt:VideoSources token="VideoSource_{ch.channel}"><tt:Framerate>15</tt:Framerate>'
        "<tt:Resolution><tt:Width>1920</tt:Width><tt:Height>1080</tt:Height></tt:Resolution>"
        "</trt:VideoSources>"
        for ch in r.dev.channels
    )
    return f"<trt:GetVideoSourcesResponse>{items}</trt:GetVideoSourcesResponse>"


def _media_uri(uri: str) -> str:
    return (
        f"<trt:MediaUri><tt:Uri>{escape(uri)}</tt:Uri>"
        "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
        "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot>"
        "<tt:Timeout>PT0S</tt:Timeout></trt:MediaUri>"
    )


def get_snapshot_uri(r: OnvifRequest) -> str:
    ch = _channel_arg(r)
    uri = r.base + r.dev.snapshot_path(ch)
    return f"<trt:GetSnapshotUriResponse>{_media_uri(uri)}</trt:GetSnapshotUriResponse>"


def get_stream_uri(r: OnvifRequest) -> str:
    ch = _channel_arg(r)
    uri = r.rtsp_base + r.dev.rtsp_path(ch)
    return f"<trt:GetStreamUriResponse>{_media_uri(uri)}</trt:GetStreamUriResponse>"


# -- search -------------------------------------------------------------------------


def _searchable(dev: SimDevice) -> list[ChannelState]:
    if dev.vendor == Vendor.HIKVISION:
        return []  # the quirk: ONVIF search is empty on Hikvision recorders
    return list(dev.channels)


def get_recording_summary(r: OnvifRequest) -> str:
    now = r.dev.now()
    chans = _searchable(r.dev)
    if chans:
        data_from = min(c.oldest_footage(now) for c in chans)
        data_until = max(c.newest_footage(now) for c in chans)
    else:
        data_from = data_until = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (
        "<tse:GetRecordingSummaryResponse><tse:Summary>"
        f"<tt:DataFrom>{xml_time(data_from)}</tt:DataFrom>"
        f"<tt:DataUntil>{xml_time(data_until)}</tt:DataUntil>"
        f"<tt:NumberRecordings>{len(chans)}</tt:NumberRecordings>"
        "</tse:Summary></tse:GetRecordingSummaryResponse>"
    )


def find_recordings(r: OnvifRequest) -> str:
    return (
        "<tse:FindRecordingsResponse><tse:SearchToken>RecordingSearchToken_1"
        "</tse:SearchToken></tse:FindRecordingsResponse>"
    )


def _recording_info(dev: SimDevice, ch: ChannelState, now: dt.datetime) -> str:
    t0 = xml_time(ch.oldest_footage(now))
    t1 = xml_time(ch.newest_footage(now))
    status = "Recording" if ch.recording else "Stopped"
    return (
        f"<tt:RecordingToken>{recording_token(ch.channel)}</tt:RecordingToken>"
        f"<tt:Source><tt:SourceId>{profile_token(dev, ch.channel)}</tt:SourceId>"
        f"<tt:Name>{escape(ch.name or f'Camera {ch.channel:02d}')}</tt:Name>"
        f"<tt:Location>{escape(ch.camera_id or '')}</tt:Location>"
        "<tt:Description>Channel recording</tt:Description>"
        "<tt:Address>http://www.onvif.org/ver10/schema/Profile</tt:Address></tt:Source>"
        f"<tt:EarliestRecording>{t0}</tt:EarliestRecording>"
        f"<tt:LatestRecording>{t1}</tt:LatestRecording>"
        "<tt:Content>RecordContent</tt:Content>"
        f"<tt:Track><tt:TrackToken>VIDEO{ch.channel:03d}</tt:TrackToken>"
        "<tt:TrackType>Video</tt:TrackType><tt:Description>VideoTrack</tt:Description>"
        f"<tt:DataFrom>{t0}</tt:DataFrom><tt:DataTo>{t1}</tt:DataTo></tt:Track>"
        f"<tt:RecordingStatus>{status}</tt:RecordingStatus>"
    )


def get_recording_search_results(r: OnvifRequest) -> str:
    now = r.dev.now()
    items = "".join(
        f"<tt:RecordingInformation>{_recording_info(r.dev, ch, now)}</tt:RecordingInformation>"
        for ch in _searchable(r.dev)
    )
    return (
        "<tse:GetRecordingSearchResultsResponse><tse:ResultList>"
        f"<tt:SearchState>Completed</tt:SearchState>{items}"
        "</tse:ResultList></tse:GetRecordingSearchResultsResponse>"
    )


def _recording_channel(r: OnvifRequest, arg: str, token_fn: object) -> ChannelState:
    token = r.arg(arg) or ""
    for ch in _searchable(r.dev):
        if callable(token_fn) and token_fn(ch.channel) == token:
            return ch
    raise _NoSuchToken(token)


def get_recording_information(r: OnvifRequest) -> str:
    ch = _recording_channel(r, "RecordingToken", recording_token)
    info = _recording_info(r.dev, ch, r.dev.now())
    return (
        "<tse:GetRecordingInformationResponse><tse:RecordingInformation>"
        f"{info}</tse:RecordingInformation></tse:GetRecordingInformationResponse>"
    )


def end_search(r: OnvifRequest) -> str:
    return (
        f"<tse:EndSearchResponse><tse:Endpoint>{xml_time(r.dev.now())}</tse:Endpoint>"
        "</tse:EndSearchResponse>"
    )


def get_search_state(r: OnvifRequest) -> str:
    return (
        "<tse:GetSearchStateResponse><tse:State>Completed</tse:State></tse:GetSearchStateResponse>"
    )


# -- recording control --------------------------------------------------------------


def _job_state(dev: SimDevice, ch: ChannelState) -> str:
    if dev.disks and all(d.status == "failed" for d in dev.disks):
        return "Error"
    return "Active" if ch.recording else "Idle"


def get_recording_jobs(r: OnvifRequest) -> str:
    items = "".join(
        f"<trc:JobItem><trc:JobToken>{job_token(ch.channel)}</trc:JobToken>"
        "<trc:JobConfiguration>"
        f"<tt:RecordingToken>{recording_token(ch.channel)}</tt:RecordingToken>"
        f"<tt:Mode>{'Active' if ch.recording else 'Idle'}</tt:Mode><tt:Priority>1</tt:Priority>"
        '<tt:Source><tt:SourceToken Type="http://www.onvif.org/ver10/schema/Profile">'
        f"<tt:Token>{profile_token(r.dev, ch.channel)}</tt:Token></tt:SourceToken>"
        "<tt:AutoCreateReceiver>false</tt:AutoCreateReceiver>"
        f"<tt:Tracks><tt:SourceTag>tag0</tt:SourceTag><tt:Destination>VIDEO{ch.channel:03d}"
        "</tt:Destination></tt:Tracks></tt:Source>"
        "</trc:JobConfiguration></trc:JobItem>"
        for ch in _searchable(r.dev)
    )
    return f"<trc:GetRecordingJobsResponse>{items}</trc:GetRecordingJobsResponse>"


def get_recording_job_state(r: OnvifRequest) -> str:
    ch = _recording_channel(r, "JobToken", job_token)
    state = _job_state(r.dev, ch)
    return (
        "<trc:GetRecordingJobStateResponse><trc:State>"
        f"<tt:RecordingToken>{recording_token(ch.channel)}</tt:RecordingToken>"
        f"<tt:State>{state}</tt:State>"
        '<tt:Sources><tt:SourceToken Type="http://www.onvif.org/ver10/schema/Profile">'
        f"<tt:Token>{profile_token(r.dev, ch.channel)}</tt:Token></tt:SourceToken>"
        f"<tt:State>{state}</tt:State>"
        f"<tt:Tracks><tt:Track><tt:SourceTag>tag0</tt:SourceTag>"
        f"<tt:Destination>VIDEO{ch.channel:03d}</tt:Destination>"
        f"<tt:State>{state}</tt:State></tt:Track></tt:Tracks>"
        "</tt:Sources></trc:State></trc:GetRecordingJobStateResponse>"
    )


_OPS = {
    "GetSystemDateAndTime": get_system_date_and_time,
    "GetDeviceInformation": get_device_information,
    "GetServices": get_services,
    "GetCapabilities": get_capabilities,
    "GetProfiles": get_profiles,
    "GetProfile": get_profile,
    "GetVideoSources": get_video_sources,
    "GetSnapshotUri": get_snapshot_uri,
    "GetStreamUri": get_stream_uri,
    "GetRecordingSummary": get_recording_summary,
    "FindRecordings": find_recordings,
    "GetRecordingSearchResults": get_recording_search_results,
    "GetRecordingInformation": get_recording_information,
    "GetSearchState": get_search_state,
    "EndSearch": end_search,
    "GetRecordingJobs": get_recording_jobs,
    "GetRecordingJobState": get_recording_job_state,
}
_RECORDER_OPS = frozenset(
    {
        "GetRecordingSummary",
        "FindRecordings",
        "GetRecordingSearchResults",
        "GetRecordingInformation",
        "GetSearchState",
        "EndSearch",
        "GetRecordingJobs",
        "GetRecordingJobState",
    }
)
