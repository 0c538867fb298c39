"""One frame of a camera, in memory: a snapshot JPEG over HTTP, or one RTSP frame.

Where the frame comes from, in order of preference:

- an IP camera with its own address: ISAPI `/ISAPI/Streaming/channels/101/picture`
  (Hikvision cameras listing isapi), else the ONVIF snapshot URI of its first profile;
- a camera without an address (analog, or an IP camera behind its recorder): the
  recorder's ISAPI `/ISAPI/Streaming/channels/{ch}01/picture` (Hikvision), Dahua
  `/cgi-bin/snapshot.cgi?channel=N`, else the recorder's ONVIF profile for the channel;
- failing a snapshot, one frame of the RTSP stream through OpenCV's FFmpeg backend
  (TCP transport, short probing), read in a worker thread under a hard deadline.

Every HTTP exchange goes through probes.drivers.http (digest auth, size and time
limits, no redirect to a host the inventory does not name). A snapshot or stream URI
that an ONVIF device names on another host is refused unless the configuration allows
that host. Frames are never written, logged or served; URLs appear in messages only
through `safe_url` (no credentials, no query).
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from inventory.models import Address, Camera, Credentials, Inventory, Protocol, Vendor
from probes.drivers.http import DeviceError, HttpLimits, fetch_bytes, host_of, safe_url

# FFmpeg options for the RTSP fallback (measured: first frame ~0.74 s instead of ~2 s).
FFMPEG_CAPTURE_OPTIONS = "rtsp_transport;tcp|analyzeduration;500000|probesize;500000"
_ffmpeg_env_lock = threading.Lock()


@dataclass(frozen=True)
class FrameSource:
    """Where to get a frame: a snapshot URL or an RTSP URL (without credentials)."""

    kind: str  # "snapshot" | "rtsp"
    url: str
    driver: str  # isapi | dahua | onvif | rtsp


@dataclass
class Grab:
    """A frame in memory: JPEG bytes (snapshot) or a decoded BGR array (RTSP)."""

    jpeg: bytes | None
    image: Any  # numpy BGR array from RTSP, else None
    source: str  # safe URL (no credentials)
    driver: str


def _base(addr: Address) -> str:
    host = f"[{addr.host}]" if ":" in addr.host else addr.host
    return f"{addr.scheme}://{host}:{addr.http_port}"


def _rtsp_base(addr: Address) -> str:
    host = f"[{addr.host}]" if ":" in addr.host else addr.host
    return f"rtsp://{host}:{addr.rtsp_port}"


def snapshot_sources(camera: Camera, inventory: Inventory) -> list[FrameSource]:
    """Snapshot and RTSP URLs known without asking the device (vendor conventions)."""
    out: list[FrameSource] = []
    if camera.address is not None:
        if Protocol.ISAPI in camera.protocols:
            url = f"{_base(camera.address)}/ISAPI/Streaming/channels/101/picture"
            out.append(FrameSource("snapshot", url, "isapi"))
        if Protocol.DAHUA in camera.protocols:
            url = f"{_base(camera.address)}/cgi-bin/snapshot.cgi?channel=1"
            out.append(FrameSource("snapshot", url, "dahua"))
        return out
    rec = inventory.recorders[camera.recorder]
    ch = camera.channel
    if rec.vendor == Vendor.HIKVISION and Protocol.ISAPI in rec.protocols:
        out.append(
            FrameSource(
                "snapshot",
                f"{_base(rec.address)}/ISAPI/Streaming/channels/{ch}01/picture",
                "isapi",
            )
        )
    if rec.vendor == Vendor.DAHUA and Protocol.DAHUA in rec.protocols:
        out.append(
            FrameSource(
                "snapshot", f"{_base(rec.address)}/cgi-bin/snapshot.cgi?channel={ch}", "dahua"
            )
        )
    return out


def rtsp_sources(camera: Camera, inventory: Inventory) -> list[FrameSource]:
    """RTSP URLs by vendor convention (used when ONVIF gives no stream URI)."""
    if camera.address is not None:
        rec = inventory.recorders[camera.recorder]
        if Protocol.ISAPI in camera.protocols or rec.vendor == Vendor.HIKVISION:
            return [
                FrameSource("rtsp", f"{_rtsp_base(camera.address)}/Streaming/Channels/101", "rtsp")
            ]
        return []
    rec = inventory.recorders[camera.recorder]
    ch = camera.channel
    if rec.vendor == Vendor.HIKVISION:
        return [FrameSource("rtsp", f"{_rtsp_base(rec.address)}/Streaming/Channels/{ch}01", "rtsp")]
    if rec.vendor == Vendor.DAHUA:
        url = f"{_rtsp_base(rec.address)}/cam/realmonitor?channel={ch}&subtype=0"
        return [FrameSource("rtsp", url, "rtsp")]
    return []


def with_credentials(url: str, user: str, password: str) -> str:
    """An RTSP URL carrying userinfo (for OpenCV only; never printed or logged)."""
    parts = urlsplit(url)
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def read_rtsp_frame(url: str, timeout: float) -> Any:
    """One decoded frame (BGR array) from a stream, blocking; call in a worker thread.

    Raises DeviceError. The URL may carry credentials; it never appears in an error.
    """
    import cv2

    ms = max(1000, int(timeout * 1000))
    with _ffmpeg_env_lock:
        os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = FFMPEG_CAPTURE_OPTIONS
        cap = cv2.VideoCapture(
            url,
            cv2.CAP_FFMPEG,
            [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms],
        )
    try:
        if not cap.isOpened():
            raise DeviceError("unreachable", "無法開啟即時影像串流（RTSP）")
        ok, frame = cap.read()
        if not ok or frame is None:
            raise DeviceError("bad-reply", "即時影像串流沒有畫面（RTSP）")
        return frame
    finally:
        cap.release()


async def rtsp_frame(url: str, deadline_s: float) -> Any:
    """`read_rtsp_frame` off the event loop, under a hard deadline. A reader that
    outlives the deadline ends by OpenCV's own open/read timeouts."""
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(read_rtsp_frame, url, deadline_s), deadline_s
        )
    except TimeoutError:
        raise DeviceError("timeout", f"即時影像串流無回應（逾時 {deadline_s:g} 秒）") from None


def _same_host(url: str, allowed: set[str]) -> None:
    host = host_of(url)
    if host not in allowed:
        raise DeviceError(
            "redirect-refused", f"設備提供的影像位址指向未登錄的主機 {host or '?'}，已拒絕"
        )


async def _onvif_uris(
    addr: Address, creds: tuple[str, str], channel: int, limits: HttpLimits
) -> tuple[str | None, str | None]:
    """(snapshot URI, stream URI) of the ONVIF profile for this channel (1-based)."""
    from probes.drivers.onvif import OnvifSession

    async with OnvifSession(
        addr.host, addr.effective_onvif_port, creds[0], creds[1], limits, scheme=addr.scheme
    ) as s:
        profiles = await s.profiles()
        if not profiles:
            raise DeviceError("not-supported", "主機沒有 ONVIF 影像設定檔")
        profile = profiles[channel - 1] if 0 < channel <= len(profiles) else profiles[0]
        snap: str | None = None
        try:
            snap = await s.snapshot_uri(profile.token)
        except DeviceError as exc:
            if exc.reason_code not in ("not-supported", "bad-reply", "http-status"):
                raise
        stream: str | None = None
        if not snap:
            stream = await s.stream_uri(profile.token)
        return snap, stream


async def _onvif_stream_uri(
    addr: Address, creds: tuple[str, str], channel: int, limits: HttpLimits
) -> str | None:
    from probes.drivers.onvif import OnvifSession

    async with OnvifSession(
        addr.host, addr.effective_onvif_port, creds[0], creds[1], limits, scheme=addr.scheme
    ) as s:
        profiles = await s.profiles()
        if not profiles:
            return None
        profile = profiles[channel - 1] if 0 < channel <= len(profiles) else profiles[0]
        return await s.stream_uri(profile.token)


def _jpeg(data: bytes) -> bytes:
    """A snapshot reply must be a JPEG (some devices answer 200 with an XML error)."""
    if not data.startswith(b"\xff\xd8"):
        raise DeviceError("bad-content", "主機回覆的不是 JPEG 影像")
    return data


async def grab_frame(
    camera: Camera,
    inventory: Inventory,
    credentials: tuple[str, str] | None,
    limits: HttpLimits,
) -> Grab:
    """A frame of `camera`, by the first source that works. Raises DeviceError.

    `credentials` are those of the device spoken to (the camera itself when it has an
    address, else its recorder), already resolved.
    """
    addr = camera.address or inventory.recorders[camera.recorder].address
    hosts = {addr.host.lower(), *(h.lower() for h in limits.allowed_hosts)}
    auth = credentials
    errors: list[DeviceError] = []

    for src in snapshot_sources(camera, inventory):
        try:
            data = _jpeg(await fetch_bytes(src.url, auth, limits))
            return Grab(jpeg=data, image=None, source=safe_url(src.url), driver=src.driver)
        except DeviceError as exc:
            if exc.reason_code in ("auth", "timeout", "too-large", "redirect-refused", "tls"):
                raise
            errors.append(exc)

    protocols = (
        camera.protocols if camera.address else inventory.recorders[camera.recorder].protocols
    )
    channel = 1 if camera.address else camera.channel
    stream: str | None = None
    if Protocol.ONVIF in protocols and credentials is not None:
        try:
            snap, stream = await _onvif_uris(addr, credentials, channel, limits)
            if snap:
                _same_host(snap, hosts)
                data = _jpeg(await fetch_bytes(snap, auth, limits))
                return Grab(jpeg=data, image=None, source=safe_url(snap), driver="onvif")
        except DeviceError as exc:
            if exc.reason_code in ("auth", "timeout", "too-large", "redirect-refused", "tls"):
                raise
            errors.append(exc)
        if stream is None:
            try:
                stream = await _onvif_stream_uri(addr, credentials, channel, limits)
            except DeviceError as exc:
                errors.append(exc)

    rtsp_urls = [stream] if stream else [s.url for s in rtsp_sources(camera, inventory)]
    for url in rtsp_urls:
        try:
            _same_host(url, hosts)
            full = with_credentials(url, *credentials) if credentials else url
            image = await rtsp_frame(full, limits.timeout)
            return Grab(jpeg=None, image=image, source=safe_url(url), driver="rtsp")
        except DeviceError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]  # the preferred source's failure says the most
    raise DeviceError("not-supported", "沒有可取得畫面的方式（無快照或串流位址）")


def resolve_credentials(creds: Credentials | None, resolve: Any) -> tuple[str, str] | None:
    """(user, password) with the password resolved by `resolve(ref)` (SecretStore)."""
    if creds is None:
        return None
    return creds.username, str(resolve(creds.password))
