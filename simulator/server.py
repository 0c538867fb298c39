"""The simulator's HTTP side: one aiohttp application, bound once per device address.

Every served device (recorder or IP camera) listens on its own loopback address; a
request is dispatched to the device by the local socket address it arrived on, so
thousands of devices share one app, one runner and one event loop.

Transport faults are applied here: `offline` closes the device's listening sockets
(connection refused), `slow` delays every reply, `auth` refuses the configured password,
`malformed` truncates every body.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import ipaddress
import json
import logging
import resource
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from inventory.models import Vendor
from simulator import onvif
from simulator.campus import World
from simulator.httpauth import challenge, check_digest, nonce_valid, parse_digest
from simulator.model import FaultKind, Quirk, SimDevice, fault_kind, vendor_media

log = logging.getLogger("camwatch.simulator")


Handler = Callable[[web.Request, SimDevice], Awaitable[web.StreamResponse]]

# A vendor's own HTTP API: the path prefix it answers under and the simulator module
# that speaks it (behind digest auth). One line per vendor driver (docs/extending.md).
VENDOR_APIS: dict[Vendor, tuple[str, str]] = {
    Vendor.HIKVISION: ("/ISAPI/", "simulator.isapi"),
    Vendor.DAHUA: ("/cgi-bin/", "simulator.dahua"),
}


def raise_fd_limit(needed: int) -> None:
    """Thousands of listening sockets need more than the usual 1024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, needed + 256))
    if want > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def realm_of(dev: SimDevice) -> str:
    if dev.vendor == Vendor.HIKVISION:
        return dev.model or "IP Camera"
    if dev.vendor == Vendor.DAHUA:
        return f"Login to {dev.serial}"
    return "Digest"


class SimulatorServer:
    """Serves every device of a World over HTTP (ONVIF, snapshots, ISAPI, Dahua CGI)."""

    def __init__(
        self,
        world: World,
        frame_size: tuple[int, int] = (640, 360),
        scene_clock: Any = None,
    ) -> None:
        self.world = world
        self.frame_size = frame_size
        # simulator.scenes.SceneClock (None: each device's local time); typed Any so that
        # the server does not import OpenCV until the first snapshot.
        self.scene_clock = scene_clock
        self.by_addr: dict[tuple[str, int], SimDevice] = {}
        self._sites: dict[str, list[web.TCPSite]] = {}
        self._app = web.Application(client_max_size=1024 * 1024)
        self._app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        self._renderer: Any = None
        self._started = False

    # -- lifecycle -------------------------------------------------------------------
    @property
    def devices(self) -> list[SimDevice]:
        return self.world.served()

    async def start(self) -> None:
        devices = self.devices
        outside = [d for d in devices if not is_loopback(d.host)]
        if outside:
            names = ", ".join(f"{d.id} ({d.host})" for d in outside[:5])
            raise ValueError(
                f"the simulator serves loopback addresses (127.0.0.0/8) only; "
                f"{len(outside)} device(s) have other addresses: {names}"
            )
        raise_fd_limit(2 * len(devices) + 64)
        await self._runner.setup()
        for dev in devices:
            assert dev.host is not None
            for port in {dev.http_port, dev.onvif_port}:
                self.by_addr[(dev.host, port)] = dev
        self._started = True
        # Bind in batches: create_server is cheap, but thousands at once is pointless.
        batch = 200
        for i in range(0, len(devices), batch):
            await asyncio.gather(
                *(self._bind(d) for d in devices[i : i + batch] if not d.has(FaultKind.OFFLINE))
            )

    async def _bind(self, dev: SimDevice) -> None:
        assert dev.host is not None
        sites: list[web.TCPSite] = []
        if not dev.serves_http:
            self._sites[dev.id] = sites
            return
        for port in sorted({dev.http_port, dev.onvif_port}):
            site = web.TCPSite(self._runner, dev.host, port, backlog=64, reuse_address=True)
            await site.start()
            sites.append(site)
        self._sites[dev.id] = sites

    async def _unbind(self, dev: SimDevice) -> None:
        for site in self._sites.pop(dev.id, []):
            await site.stop()

    async def stop(self) -> None:
        if self._started:
            await self._runner.cleanup()
            self._started = False
            self._sites.clear()

    async def __aenter__(self) -> SimulatorServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- faults ----------------------------------------------------------------------
    async def fault(
        self, device_id: str, kind: FaultKind | str, severity: float | None = None
    ) -> None:
        k = fault_kind(kind) if isinstance(kind, str) else kind
        dev = self.world.get(device_id)
        self.world.fault(device_id, k, severity)
        if k == FaultKind.OFFLINE and dev.id in self._sites:
            await self._unbind(dev)
        if k == FaultKind.FROZEN and self._renderer is not None:
            self._renderer.forget(dev.id)

    async def clear(self, device_id: str) -> None:
        dev = self.world.get(device_id)
        was_offline = dev.has(FaultKind.OFFLINE)
        self.world.clear(device_id)
        if self._renderer is not None:
            self._renderer.forget(dev.id)
        if was_offline and self._started and dev.served and dev.id not in self._sites:
            await self._bind(dev)

    async def clear_all(self) -> None:
        for dev_id in list(self.world.faults()):
            await self.clear(dev_id)

    # -- dispatch --------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        transport = request.transport
        sock = transport.get_extra_info("sockname") if transport else None
        dev = self.by_addr.get((sock[0], sock[1])) if sock else None
        if dev is None:
            raise web.HTTPNotFound()
        if dev.has(FaultKind.OFFLINE):
            # A kept-alive connection to a device that went away.
            if transport is not None:
                transport.abort()
            raise web.HTTPServiceUnavailable()
        if dev.has(FaultKind.SLOW):
            await asyncio.sleep(dev.severity(FaultKind.SLOW))
        response = await self._route(request, dev)
        if dev.has(FaultKind.MALFORMED) and isinstance(response, web.Response):
            body = response.body
            if isinstance(body, bytes) and len(body) > 8:
                response.body = body[: len(body) * 3 // 5]
        return response

    async def _route(self, request: web.Request, dev: SimDevice) -> web.StreamResponse:
        path = request.path
        if (
            path.startswith("/onvif/snapshot/")
            or path == "/onvif-http/snapshot"
            or vendor_snapshot_channel(request, dev) is not None
        ):
            return await self._snapshot_route(request, dev)
        if path.startswith("/onvif/") or path == dev.onvif_path:
            if request.method != "POST":
                raise web.HTTPMethodNotAllowed(request.method, ["POST"])
            body = await request.read()
            host = request.transport.get_extra_info("sockname")[0] if request.transport else ""
            base = f"http://{dev.host or host}:{dev.http_port}"
            rtsp = f"rtsp://{dev.host or host}:{dev.rtsp_port}"
            status, xml = onvif.handle(dev, body, base, rtsp)
            return web.Response(
                status=status, body=xml, content_type="application/soap+xml", charset="utf-8"
            )
        api = VENDOR_APIS.get(dev.vendor)
        if api is not None and path.startswith(api[0]):
            handle: Handler = importlib.import_module(api[1]).handle
            return await self._authed(request, dev, handle)
        if path == "/":
            return web.Response(
                text="<html><body>Web Service</body></html>", content_type="text/html"
            )
        raise web.HTTPNotFound()

    async def _authed(
        self, request: web.Request, dev: SimDevice, handler: Handler
    ) -> web.StreamResponse:
        realm = realm_of(dev)
        header = request.headers.get("Authorization")
        ok = not dev.has(FaultKind.AUTH) and check_digest(
            header, request.method, dev.username, dev.password, realm
        )
        if not ok:
            stale = bool(header) and not nonce_valid(parse_digest(header or "").get("nonce", "x"))
            return unauthorized(dev, realm, stale)
        return await handler(request, dev)

    async def _snapshot_route(self, request: web.Request, dev: SimDevice) -> web.StreamResponse:
        async def serve(req: web.Request, d: SimDevice) -> web.StreamResponse:
            ch = snapshot_channel(req, d)
            if ch is None:
                raise web.HTTPNotFound()
            if Quirk.ISAPI_PICTURE_LOW_PRIVILEGE in d.quirks and req.path.startswith("/ISAPI/"):
                from simulator.isapi import response_status

                return response_status(req.path, 4, "Invalid Operation", "lowPrivilege", 403)
            return await self.snapshot_response(d, ch)

        return await self._authed(request, dev, serve)

    async def snapshot_response(self, dev: SimDevice, channel: int) -> web.Response:
        jpeg = await self.render(dev, channel)
        return web.Response(body=jpeg, content_type="image/jpeg")

    async def render(self, dev: SimDevice, channel: int) -> bytes:
        if self._renderer is None:
            from simulator.scenes import DEVICE_TIME, SceneRenderer

            self._renderer = SceneRenderer(
                *self.frame_size, scene_clock=self.scene_clock or DEVICE_TIME
            )
        renderer = self._renderer
        fast = renderer.cached(dev, channel)
        if fast is not None:
            assert isinstance(fast, bytes)
            return fast
        jpeg = await asyncio.to_thread(renderer.jpeg, dev, channel)
        assert isinstance(jpeg, bytes)
        return jpeg


def snapshot_channel(request: web.Request, dev: SimDevice) -> int | None:
    path = request.path
    if path.startswith("/onvif/snapshot/") and path.endswith(".jpg"):
        text = path[len("/onvif/snapshot/") : -4]
        ch = int(text) if text.isdigit() else -1
    elif path == "/onvif-http/snapshot":
        token = request.query_string
        ch = onvif.channel_of_token(dev, token) or -1
    elif (vendor_ch := vendor_snapshot_channel(request, dev)) is not None:
        ch = vendor_ch
    else:
        return None
    return ch if dev.channel(ch) is not None else None


def vendor_snapshot_channel(request: web.Request, dev: SimDevice) -> int | None:
    """The channel of a snapshot by the device's vendor convention (ISAPI picture,
    Dahua snapshot.cgi), read from the same data the probes build the URL from."""
    media = vendor_media(dev.vendor)
    return media.snapshot_channel(request.path_qs) if media else None


def unauthorized(dev: SimDevice, realm: str, stale: bool = False) -> web.Response:
    headers = {"WWW-Authenticate": challenge(realm, stale)}
    if dev.vendor == Vendor.HIKVISION:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<ResponseStatus version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">\n'
            "<requestURL></requestURL>\n<statusCode>4</statusCode>\n"
            "<statusString>Invalid Operation</statusString>\n"
            "<subStatusCode>notAuthenticated</subStatusCode>\n</ResponseStatus>\n"
        )
        return web.Response(status=401, text=body, content_type="application/xml", headers=headers)
    return web.Response(status=401, text="Error\r\nUnauthorized\r\n", headers=headers)


# ---------------------------------------------------------------------------------------
# Control API (loopback): POST /faults {device, kind, severity}; DELETE /faults/DEVICE;
# GET /faults
# ---------------------------------------------------------------------------------------


def control_app(server: SimulatorServer) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)

    async def list_faults(_: web.Request) -> web.Response:
        return web.json_response({"faults": server.world.faults()})

    async def add_fault(request: web.Request) -> web.Response:
        try:
            data = await request.json()
            device = str(data["device"])
            kind = fault_kind(str(data["kind"]))
            sev = data.get("severity")
            severity = None if sev is None else float(sev)
        except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if device not in server.world.devices:
            return web.json_response({"error": f"no simulated device {device!r}"}, status=404)
        await server.fault(device, kind, severity)
        return web.json_response({"device": device, "faults": server.world.faults().get(device)})

    async def clear_fault(request: web.Request) -> web.Response:
        device = request.match_info["device"]
        if device not in server.world.devices:
            return web.json_response({"error": f"no simulated device {device!r}"}, status=404)
        await server.clear(device)
        return web.json_response({"device": device, "faults": {}})

    async def clear_every(_: web.Request) -> web.Response:
        await server.clear_all()
        return web.json_response({"faults": {}})

    app.router.add_get("/faults", list_faults)
    app.router.add_post("/faults", add_fault)
    app.router.add_delete("/faults", clear_every)
    app.router.add_delete("/faults/{device}", clear_fault)
    return app


async def start_control(server: SimulatorServer, host: str, port: int) -> web.AppRunner:
    if not host.startswith("127.") and host not in ("localhost", "::1"):
        raise ValueError("the control API listens on loopback only (127.0.0.0/8)")
    runner = web.AppRunner(control_app(server), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner
