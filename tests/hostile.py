"""A hostile test device (issue 8): an aiohttp server on 127.0.0.1 port 0 that speaks
just enough ONVIF (device + media service) and serves snapshots, and misbehaves in one
chosen way (`mode`). And `HitCounter`, a TCP listener on another loopback address that
counts every connection — the "other host" that camwatch must never contact unless
`allowed_redirect_hosts` names it.

    async with HitCounter("127.0.0.2") as other, HostileDevice("snapshot-elsewhere",
            other=other) as dev:
        ...  # an inventory camera at dev.host:dev.port, protocols [onvif]
        assert other.hits == 0

Modes (the ONVIF device service always answers time, device info and services):
- healthy            profiles, snapshot URI on itself, a real JPEG
- snapshot-elsewhere GetSnapshotUri names `other` (http)
- snapshot-metadata  GetSnapshotUri names http://169.254.169.254/latest/meta-data/
- stream-elsewhere   no snapshot URI; GetStreamUri names rtsp on `other`
- redirect-elsewhere the snapshot URL answers 302 to `other`
- redirect-metadata  the snapshot URL answers 302 to 169.254.169.254
- gigabyte-snapshot  the snapshot is 1 GB, streamed (never allocated here)
- endless-snapshot   the snapshot body never ends
- slow-bytes         GetProfiles dribbles its reply one byte every 50 ms, for minutes
                     (`HANG_S`: padded with whitespace)
- stalled-body       GetProfiles sends headers and a few bytes, then nothing
`dribble_done` says whether a dribbled reply was ever sent to its end: a probe that
returns while it is false was ended by its own deadline, not by the device.
- billion-laughs     GetProfiles is an entity-expansion bomb
- external-entity    GetProfiles declares an entity reading file:///etc/passwd
- huge-jpeg          the snapshot declares 30000x30000 pixels
- truncated-jpeg     the snapshot stops halfway
- wrong-type         the snapshot is text/html (a login page)
- bad-time           GetSystemDateAndTime says 00:61:16Z
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import struct
from dataclasses import dataclass, field

from aiohttp import web

from tests.waits import HANG_S

MODES = (
    "healthy", "snapshot-elsewhere", "snapshot-metadata", "stream-elsewhere",
    "redirect-elsewhere", "redirect-metadata", "gigabyte-snapshot", "endless-snapshot",
    "slow-bytes", "stalled-body", "billion-laughs", "external-entity", "huge-jpeg",
    "truncated-jpeg", "wrong-type", "bad-time",
)
METADATA = "http://169.254.169.254/latest/meta-data/"

SOAP_OPEN = (
    '<?xml version="1.0" encoding="UTF-8"?><env:Envelope '
    'xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" '
    'xmlns:trt="http://www.onvif.org/ver10/media/wsdl" '
    'xmlns:tt="http://www.onvif.org/ver10/schema"><env:Body>'
)
SOAP_CLOSE = "</env:Body></env:Envelope>"

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
    '<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">'
    '<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">'
    '<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">'
    '<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">'
    '<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">'
    '<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>'
    + SOAP_OPEN.split("?>", 1)[1]
    + '<trt:GetProfilesResponse><trt:Profiles token="p1"><tt:Name>&lol9;</tt:Name>'
    "</trt:Profiles></trt:GetProfilesResponse>" + SOAP_CLOSE
).encode()
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    + SOAP_OPEN.split("?>", 1)[1]
    + '<trt:GetProfilesResponse><trt:Profiles token="p1"><tt:Name>&xxe;</tt:Name>'
    "</trt:Profiles></trt:GetProfilesResponse>" + SOAP_CLOSE
).encode()


def soap(inner: str) -> bytes:
    return (SOAP_OPEN + inner + SOAP_CLOSE).encode()


def op_of(body: bytes) -> str:
    m = re.search(rb"<(?:[\w-]+:)?Body[^>]*>\s*<(?:[\w-]+:)?(\w+)", body)
    return m.group(1).decode() if m else "?"


def crafted_jpeg(width: int, height: int) -> bytes:
    """A JPEG header declaring width x height (baseline, 3 components), no real scan."""
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3)
    sof += b"\x01\x22\x00\x02\x11\x00\x03\x11\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 12, 3) + b"\x01\x00\x02\x11\x03\x11\x00\x3f\x00"
    return b"\xff\xd8" + sof + sos + b"\x00" * 64 + b"\xff\xd9"


def real_jpeg(width: int = 320, height: int = 180) -> bytes:
    import cv2
    import numpy as np

    rng = np.random.default_rng(7)
    noise = rng.integers(0, 255, (height, width, 3)).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", cv2.GaussianBlur(noise, (3, 3), 0))
    assert ok
    return bytes(buf.tobytes())


@dataclass
class HitCounter:
    """Counts TCP connections (HTTP or RTSP alike) on `host`, port 0."""

    host: str = "127.0.0.2"
    port: int = 0
    hits: int = 0
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> HitCounter:
        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.hits += 1
            try:
                await asyncio.wait_for(reader.read(4096), 1.0)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n"
                             b"Content-Length: 4\r\nConnection: close\r\n\r\n\xff\xd8\xff\xd9")
                await writer.drain()
            except (TimeoutError, ConnectionError):
                pass
            finally:
                writer.close()

        self._server = await asyncio.start_server(on_connect, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def url(self, scheme: str = "http", path: str = "/snap.jpg") -> str:
        return f"{scheme}://{self.host}:{self.port}{path}"


@dataclass
class HostileDevice:
    mode: str = "healthy"
    other: HitCounter | None = None
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[str] = field(default_factory=list)
    dribble_done: bool = False
    _runner: web.AppRunner | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r} (one of {', '.join(MODES)})")

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def __aenter__(self) -> HostileDevice:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/onvif/{service}", self._soap)
        app.router.add_get("/snap.jpg", self._snapshot)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _other_url(self, scheme: str = "http") -> str:
        assert self.other is not None, f"mode {self.mode} needs an `other` HitCounter"
        return self.other.url(scheme, "/snap.jpg" if scheme == "http" else "/live")

    async def _not_found(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        return web.Response(status=404, text="not found")

    # --- ONVIF ---------------------------------------------------------------------------

    async def _soap(self, request: web.Request) -> web.StreamResponse:
        op = op_of(await request.read())
        self.requests.append(op)
        mode = self.mode
        if op == "GetSystemDateAndTime":
            now = dt.datetime.now(dt.UTC)
            hour, minute, second = (0, 61, 16) if mode == "bad-time" else (
                now.hour, now.minute, now.second)
            return self._xml(soap(
                "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
                "<tt:DateTimeType>NTP</tt:DateTimeType><tt:UTCDateTime>"
                f"<tt:Time><tt:Hour>{hour}</tt:Hour><tt:Minute>{minute}</tt:Minute>"
                f"<tt:Second>{second}</tt:Second></tt:Time><tt:Date><tt:Year>{now.year}"
                f"</tt:Year><tt:Month>{now.month}</tt:Month><tt:Day>{now.day}</tt:Day>"
                "</tt:Date></tt:UTCDateTime></tds:SystemDateAndTime>"
                "</tds:GetSystemDateAndTimeResponse>"))
        if op == "GetDeviceInformation":
            return self._xml(soap(
                "<tds:GetDeviceInformationResponse><tds:Manufacturer>Hostile</tds:Manufacturer>"
                "<tds:Model>EVIL-1</tds:Model><tds:FirmwareVersion>6.6.6</tds:FirmwareVersion>"
                "<tds:SerialNumber>SN666</tds:SerialNumber><tds:HardwareId>1</tds:HardwareId>"
                "</tds:GetDeviceInformationResponse>"))
        if op == "GetServices":
            return self._xml(soap(
                "<tds:GetServicesResponse>"
                "<tds:Service><tds:Namespace>http://www.onvif.org/ver10/device/wsdl"
                f"</tds:Namespace><tds:XAddr>{self.base}/onvif/device_service</tds:XAddr>"
                "<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version>"
                "</tds:Service>"
                "<tds:Service><tds:Namespace>http://www.onvif.org/ver10/media/wsdl"
                f"</tds:Namespace><tds:XAddr>{self.base}/onvif/media_service</tds:XAddr>"
                "<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version>"
                "</tds:Service></tds:GetServicesResponse>"))
        if op == "GetProfiles":
            if mode == "billion-laughs":
                return self._xml(BILLION_LAUGHS)
            if mode == "external-entity":
                return self._xml(EXTERNAL_ENTITY)
            body = soap(
                '<trt:GetProfilesResponse><trt:Profiles token="p1" fixed="true">'
                "<tt:Name>main</tt:Name><tt:VideoSourceConfiguration token=\"v1\">"
                "<tt:Name>v1</tt:Name><tt:UseCount>1</tt:UseCount>"
                "<tt:SourceToken>src1</tt:SourceToken></tt:VideoSourceConfiguration>"
                "</trt:Profiles></trt:GetProfilesResponse>")
            if mode == "slow-bytes":
                pad = max(0, int(HANG_S / 0.05) - len(body))
                body = body.replace(b"</env:Body>", b" " * pad + b"</env:Body>")
                return await self._dribble(request, body, 0.05)
            if mode == "stalled-body":
                return await self._dribble(request, body[:40], 0.0, then_stall=True)
            return self._xml(body)
        if op == "GetSnapshotUri":
            if mode == "stream-elsewhere":
                return self._fault()
            uri = {"snapshot-elsewhere": self._other_url() if self.other else "",
                   "snapshot-metadata": METADATA}.get(mode, f"{self.base}/snap.jpg")
            return self._xml(soap(
                "<trt:GetSnapshotUriResponse><trt:MediaUri>"
                f"<tt:Uri>{uri}</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
                "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S"
                "</tt:Timeout></trt:MediaUri></trt:GetSnapshotUriResponse>"))
        if op == "GetStreamUri":
            uri = (self._other_url("rtsp") if mode == "stream-elsewhere"
                   else f"rtsp://{self.host}:{self.port}/live")
            return self._xml(soap(
                "<trt:GetStreamUriResponse><trt:MediaUri>"
                f"<tt:Uri>{uri}</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
                "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S"
                "</tt:Timeout></trt:MediaUri></trt:GetStreamUriResponse>"))
        return self._fault()

    @staticmethod
    def _xml(body: bytes, status: int = 200) -> web.Response:
        return web.Response(status=status, body=body, content_type="application/soap+xml")

    def _fault(self) -> web.Response:
        return self._xml(soap(
            "<env:Fault><env:Code><env:Value>env:Receiver</env:Value><env:Subcode>"
            "<env:Value>ter:ActionNotSupported</env:Value></env:Subcode></env:Code>"
            "<env:Reason><env:Text>Not supported</env:Text></env:Reason></env:Fault>"),
            status=500)

    async def _dribble(self, request: web.Request, body: bytes, delay: float,
                       then_stall: bool = False) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/soap+xml"})
        resp.content_length = len(body) + (1000 if then_stall else 0)
        await resp.prepare(request)
        try:
            for i in range(len(body)):
                await resp.write(body[i:i + 1])
                if delay:
                    await asyncio.sleep(delay)
            if then_stall:
                await asyncio.sleep(3600)
            self.dribble_done = True
        except (ConnectionError, RuntimeError):
            pass
        return resp

    # --- snapshots -----------------------------------------------------------------------

    async def _snapshot(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        mode = self.mode
        if mode == "redirect-elsewhere":
            raise web.HTTPFound(self._other_url())
        if mode == "redirect-metadata":
            raise web.HTTPFound(METADATA)
        if mode == "huge-jpeg":
            return web.Response(body=crafted_jpeg(30000, 30000), content_type="image/jpeg")
        if mode == "truncated-jpeg":
            data = real_jpeg()
            return web.Response(body=data[: len(data) // 2], content_type="image/jpeg")
        if mode == "wrong-type":
            return web.Response(text="<html><body>login</body></html>", content_type="text/html")
        if mode in ("gigabyte-snapshot", "endless-snapshot"):
            headers = {"Content-Type": "image/jpeg"}
            resp = web.StreamResponse(headers=headers)
            if mode == "gigabyte-snapshot":
                resp.content_length = 1024**3
            await resp.prepare(request)
            chunk = b"\xff\xd8\xff\xe0" + b"\0" * (64 * 1024 - 4)
            try:
                for _ in range(16 * 1024):  # 1 GB in 64 KB writes, if anyone reads it
                    await resp.write(chunk)
                while mode == "endless-snapshot":
                    await resp.write(chunk)
            except (ConnectionError, RuntimeError):
                pass
            return resp
        return web.Response(body=real_jpeg(), content_type="image/jpeg")
