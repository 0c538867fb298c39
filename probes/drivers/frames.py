"""One frame of a camera, in memory: a snapshot JPEG over HTTP, or one RTSP frame.

Where the frame comes from, in order of preference, from the drivers of the device's
protocols (probes.drivers.table) — no vendor is named here:

1. a snapshot known without asking: a driver's `media.snapshot` convention (ISAPI's
   `/ISAPI/Streaming/channels/{ch}01/picture`, Dahua's `/cgi-bin/snapshot.cgi?channel=N`)
   — for an IP camera with its own address, channel 1 of each protocol it lists; for a
   camera behind a recorder, its channel on the recorder, by the recorder's vendor;
2. the snapshot URI a driver asks the device for (ONVIF GetSnapshotUri of the
   channel's profile);
3. one frame of the RTSP stream (probes.drivers.rtsp): the stream URI the device named
   (ONVIF GetStreamUri: its own media), else — only when `rtsp` is listed — the vendor's
   `media.stream` convention.

Only the protocols the inventory lists are used: a recorder listed with `snmp` alone has
no frame source, and nothing is sent to its port 554.

Every HTTP exchange of one grab goes through one probes.drivers.http session (digest
auth, size and time limits, no redirect to a host the inventory does not name). A
snapshot or stream URI that a device names on another host is refused unless the
configuration allows that host. Frames are never written, logged or served; URLs
appear in messages only through `safe_url` (no credentials, no query).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from inventory.models import Address, Camera, Credentials, Inventory, Protocol
from probes.drivers.base import Ability, Driver
from probes.drivers.http import DeviceHttp, HttpLimits, base_url, host_of, safe_url
from probes.drivers.rtsp import RtspDriver, rtsp_base, rtsp_frame, with_credentials
from probes.drivers.table import DRIVERS, drivers_for
from probes.reasons import DeviceError, ReasonCode

__all__ = [
    "FrameSource",
    "Grab",
    "grab_frame",
    "resolve_credentials",
    "rtsp_frame",
    "rtsp_sources",
    "snapshot_sources",
    "with_credentials",
]


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


# The stream reader: any stream URI, whichever driver or convention named it.
_reader = DRIVERS[Protocol.RTSP]
assert isinstance(_reader, RtspDriver)
STREAMS: RtspDriver = _reader


def _framing(protocols: Iterable[Protocol]) -> list[Driver]:
    return [d for d in drivers_for(protocols) if Ability.FRAMES in d.abilities]


def snapshot_sources(camera: Camera, inventory: Inventory) -> list[FrameSource]:
    """Snapshot URLs known without asking the device (the drivers' conventions)."""
    out: list[FrameSource] = []
    if camera.address is not None:
        for d in _framing(camera.protocols):
            path = d.media.snapshot_path(1) if d.media else None
            if path:
                out.append(FrameSource("snapshot", base_url(camera.address) + path, d.name))
        return out
    rec = inventory.recorders[camera.recorder]
    for d in _framing(rec.protocols):
        path = d.media.snapshot_path(camera.channel) if d.media else None
        if path and d.vendor == rec.vendor:
            out.append(FrameSource("snapshot", base_url(rec.address) + path, d.name))
    return out


def rtsp_sources(camera: Camera, inventory: Inventory) -> list[FrameSource]:
    """The RTSP URL by the vendor's convention (used when the device names none), when
    the device spoken to lists `rtsp`: an IP camera's by a protocol it lists or its
    recorder's vendor; a camera behind a recorder, its channel by the recorder's
    vendor."""
    rec = inventory.recorders[camera.recorder]
    listed = camera.protocols if camera.address is not None else rec.protocols
    if Protocol.RTSP not in listed:
        return []
    if camera.address is not None:
        candidates = [
            d for d in _all_with_media() if d.protocol in camera.protocols or d.vendor == rec.vendor
        ]
        addr, channel = camera.address, 1
    else:
        candidates = [d for d in _all_with_media() if d.vendor == rec.vendor]
        addr, channel = rec.address, camera.channel
    for d in candidates:
        path = d.media.stream_path(channel) if d.media else None
        if path:
            return [FrameSource("rtsp", rtsp_base(addr) + path, "rtsp")]
    return []


def _all_with_media() -> list[Driver]:
    return [d for d in drivers_for(list(Protocol)) if d.media is not None]


def _same_host(url: str, allowed: set[str]) -> None:
    host = host_of(url)
    if host not in allowed:
        raise DeviceError(
            ReasonCode.REDIRECT_REFUSED,
            f"設備提供的影像位址指向未登錄的主機 {host or '?'}，已拒絕",
        )


def _jpeg(data: bytes) -> bytes:
    """A snapshot reply must be a JPEG (some devices answer 200 with an XML error)."""
    if not data.startswith(b"\xff\xd8"):
        raise DeviceError(ReasonCode.BAD_CONTENT, "主機回覆的不是 JPEG 影像")
    return data


async def _fetch(url: str, http: DeviceHttp) -> bytes:
    return (await http.get(url)).body


async def _asked_uris(
    driver: Driver,
    http: DeviceHttp,
    addr: Address,
    creds: tuple[str, str] | None,
    channel: int,
    snapshot: bool,
) -> tuple[str | None, str | None] | None:
    return await driver.frame_uris(http, addr, creds, channel, snapshot=snapshot)


def _gives_up(exc: DeviceError) -> bool:
    """A final failure ends the search — except an unreachable HTTP port: the RTSP
    port may still answer."""
    return exc.final and exc.reason_code != ReasonCode.UNREACHABLE


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
    protocols = (
        camera.protocols if camera.address else inventory.recorders[camera.recorder].protocols
    )
    channel = 1 if camera.address else camera.channel
    errors: list[DeviceError] = []
    async with DeviceHttp(limits, credentials) as http:
        for src in snapshot_sources(camera, inventory):
            try:
                data = _jpeg(await _fetch(src.url, http))
                return Grab(jpeg=data, image=None, source=safe_url(src.url), driver=src.driver)
            except DeviceError as exc:
                if _gives_up(exc):
                    raise
                errors.append(exc)

        stream: str | None = None
        if credentials is not None:
            for d in _framing(protocols):
                try:
                    uris = await _asked_uris(d, http, addr, credentials, channel, True)
                    if uris is None:
                        continue  # this driver names no source by asking
                    snap, stream = uris
                    if snap:
                        _same_host(snap, hosts)
                        data = _jpeg(await _fetch(snap, http))
                        return Grab(jpeg=data, image=None, source=safe_url(snap), driver=d.name)
                except DeviceError as exc:
                    if _gives_up(exc):
                        raise
                    errors.append(exc)
                if stream is None:
                    try:
                        uris = await _asked_uris(d, http, addr, credentials, channel, False)
                        stream = uris[1] if uris else None
                    except DeviceError as exc:
                        errors.append(exc)
                if stream:
                    break

    rtsp_urls = [stream] if stream else [s.url for s in rtsp_sources(camera, inventory)]
    for url in rtsp_urls:
        try:
            _same_host(url, hosts)
            image = await STREAMS.read_frame(url, credentials, limits.timeout)
            return Grab(jpeg=None, image=image, source=safe_url(url), driver="rtsp")
        except DeviceError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]  # the preferred source's failure says the most
    if not _framing(protocols):
        listed = "、".join(p.value for p in protocols)
        raise DeviceError(
            ReasonCode.NO_DRIVER,
            f"清冊列出的通訊協定（{listed}）無法取得畫面；請列出 onvif、isapi、dahua 或 rtsp",
        )
    raise DeviceError(ReasonCode.NOT_SUPPORTED, "沒有可取得畫面的方式（無快照或串流位址）")


def resolve_credentials(creds: Credentials | None, resolve: Any) -> tuple[str, str] | None:
    """(user, password) with the password resolved by `resolve(ref)` (SecretStore)."""
    if creds is None:
        return None
    return creds.username, str(resolve(creds.password))
