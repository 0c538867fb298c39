"""Helpers for tests (any engineer's) that need a simulated campus.

    from simulator.testing import SimulatedCampus, small_campus

    async def test_x(tmp_path):
        campus = small_campus(tmp_path)            # random 127.X base, random high port
        async with SimulatedCampus(campus.inventory, campus.passwords) as sim:
            await sim.fault("cam-0001", "blurred", 8)
            ...                                    # probe campus.inventory
            await sim.clear("cam-0001")

`small_campus` also sets the CAMWATCH_DEMO_* environment variables (so SecretStore()
resolves the inventory's ${...} references) and writes the inventory YAML to
`tmp_path / "inventory.yaml"`.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from camwatch.clock import Clock
from camwatch.secrets import SecretStore
from inventory.models import Inventory, InventoryFile
from simulator.campus import (
    CAM_PASSWORD_REF,
    NVR_PASSWORD_REF,
    SNMP_COMMUNITY_REF,
    World,
    build_world,
    generate_campus,
    to_inventory,
    write_inventory,
)
from simulator.model import FaultKind, SimDevice
from simulator.server import SimulatorServer, start_control


def _env_name(ref: str) -> str | None:
    return ref[2:-1] if ref.startswith("${") and ref.endswith("}") else None


def make_resolver(passwords: Mapping[str, str] | SecretStore | None) -> Any:
    """A resolver for credential refs: a mapping (keys: the ref itself, the env var
    name, or the secret KEY), falling back to a SecretStore (environment)."""
    store = passwords if isinstance(passwords, SecretStore) else SecretStore()
    table = dict(passwords) if isinstance(passwords, Mapping) else {}

    def resolve(ref: str) -> str:
        if ref in table:
            return table[ref]
        name = _env_name(ref)
        if name and name in table:
            return table[name]
        if ref.startswith("secret:") and ref[7:] in table:
            return table[ref[7:]]
        return store.resolve(ref)

    return resolve


class SimulatedCampus:
    """`async with SimulatedCampus(inventory, passwords) as sim:` serves every recorder
    and IP camera of the inventory (ONVIF, snapshots, ISAPI, Dahua CGI) on its own
    loopback address until the block ends.

    - `passwords`: mapping of ref/env-name/secret-key -> value, or a SecretStore, or
      None (resolve ${ENV} refs from the environment).
    - `port_offset`: added to every device port (for machines without 127/8 aliases).
    - `control`: "HOST:PORT" to also serve the fault control API.
    - `frame_size`: snapshot resolution (default 640x360).
    - `snmp`: also serve SNMP agents (engineer C's simulator/snmp.py) for the recorders
      with an snmp block (default True).
    - `rtsp`: serve GStreamer RTSP streams for up to this many devices (default 0 = none;
      simulator/rtsp.py). When GStreamer cannot run, `rtsp_unavailable` says why.
    - `videos`: camera id -> video file the camera plays instead of its scene.
    - `scene_time`: "HH:MM" (or a `datetime.time`): every scene lit for that local time of
      day (a test that depends on day or night pins it, and tests both);
      `scene_speed`: the scene time runs N times faster (simulator.scenes.SceneClock).
    - `clock`: the clock the devices run on (default: camwatch.clock's, CAMWATCH_CLOCK).
    """

    def __init__(
        self,
        inventory: Inventory | InventoryFile,
        passwords: Mapping[str, str] | SecretStore | None = None,
        port_offset: int = 0,
        control: str | None = None,
        frame_size: tuple[int, int] = (640, 360),
        snmp: bool = True,
        rtsp: int = 0,
        videos: Mapping[str, str] | None = None,
        scene_time: str | dt.time | None = None,
        scene_speed: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        inv = to_inventory(inventory) if isinstance(inventory, InventoryFile) else inventory
        self.inventory = inv
        self._resolve = make_resolver(passwords)
        self.world: World = build_world(inv, self._resolve, port_offset=port_offset, clock=clock)
        for cam_id, path in (videos or {}).items():
            self.world.get(cam_id).video_path = str(path)
        scene_clock = None
        if scene_time is not None or scene_speed is not None:
            from simulator.scenes import SceneClock, parse_scene_time

            at = parse_scene_time(scene_time) if isinstance(scene_time, str) else scene_time
            scene_clock = SceneClock(at=at, speed=scene_speed)
        self.scene_clock = scene_clock
        self.server = SimulatorServer(self.world, frame_size=frame_size, scene_clock=scene_clock)
        self.control = control
        self.snmp = snmp
        self.rtsp = rtsp
        self.rtsp_unavailable: str | None = None
        self.snmp_agents: Any = None
        self.rtsp_cameras: Any = None
        self._control_runner: web.AppRunner | None = None

    @property
    def devices(self) -> dict[str, SimDevice]:
        return self.world.devices

    def device(self, device_id: str) -> SimDevice:
        return self.world.get(device_id)

    async def start(self) -> None:
        await self.server.start()
        try:
            if self.snmp:
                from simulator.snmp import start_snmp_agents, v3_users_from_inventory

                users = v3_users_from_inventory(self.inventory, self._resolve)
                self.snmp_agents = await start_snmp_agents(
                    self.world.devices.values(), v3_users=users
                )
            if self.rtsp > 0:
                from simulator.rtsp import RtspUnavailable, start_rtsp_cameras

                try:
                    self.rtsp_cameras = await start_rtsp_cameras(
                        self.world.devices.values(), limit=self.rtsp
                    )
                except RtspUnavailable as exc:
                    self.rtsp_unavailable = str(exc)
        except BaseException:
            await self.stop()
            raise
        if self.control:
            host, _, port = self.control.rpartition(":")
            self._control_runner = await start_control(self.server, host, int(port))

    async def stop(self) -> None:
        if self._control_runner is not None:
            await self._control_runner.cleanup()
            self._control_runner = None
        if self.rtsp_cameras is not None:
            await self.rtsp_cameras.stop()
            self.rtsp_cameras = None
        if self.snmp_agents is not None:
            await self.snmp_agents.stop()
            self.snmp_agents = None
        await self.server.stop()

    async def __aenter__(self) -> SimulatedCampus:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def fault(
        self, device: str, kind: FaultKind | str, severity: float | None = None
    ) -> None:
        """Inject a fault (kinds: simulator.model.FaultKind; severity per kind)."""
        await self.server.fault(device, kind, severity)

    async def clear(self, device: str) -> None:
        await self.server.clear(device)

    async def clear_all(self) -> None:
        await self.server.clear_all()

    def faults(self) -> dict[str, dict[str, float]]:
        return self.world.faults()


@dataclass
class SmallCampus:
    inventory: Inventory
    file: InventoryFile
    passwords: dict[str, str]  # env var name -> value (also set in os.environ)
    base: str  # "127.X"
    http_port: int
    rtsp_port: int
    snmp_port: int
    path: Path | None = None  # the written inventory YAML
    env: dict[str, str] = field(default_factory=dict)

    def recorder(self, vendor: str | None = None) -> str:
        """The id of the first recorder (of a vendor: hikvision, dahua, generic)."""
        for r in self.inventory.recorders.values():
            if vendor is None or r.vendor.value == vendor:
                return r.id
        raise KeyError(f"no recorder of vendor {vendor!r}")

    def ip_camera(self, vendor: str | None = None) -> str:
        for c in self.inventory.cameras.values():
            rec = self.inventory.recorders[c.recorder]
            if c.address is not None and (vendor is None or rec.vendor.value == vendor):
                return c.id
        raise KeyError(f"no IP camera behind a {vendor!r} recorder")

    def analog_camera(self) -> str:
        for c in self.inventory.cameras.values():
            if c.address is None:
                return c.id
        raise KeyError("no analog camera")


def _ephemeral_low() -> int:
    """The first port the kernel hands out to client sockets (32768 on Linux)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(host: str, port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):  # TCP for HTTP/RTSP, UDP for SNMP
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def free_port_triplet(host: str = "127.0.0.1") -> tuple[int, int, int]:
    """Three random high ports free on `host` (TCP and UDP) at the time of asking.

    They are below the kernel's ephemeral range: a client socket anywhere on the machine
    (an SNMP or HTTP client of a test running beside this one) takes its port from that
    range bound to 0.0.0.0, which would collide with a simulated device binding it later."""
    rng = random.Random()
    high = max(20100, _ephemeral_low() - 1)
    out: list[int] = []
    while len(out) < 3:
        port = rng.randint(20000, high)
        if port in out or not _bindable(host, port):
            continue
        out.append(port)
    return out[0], out[1], out[2]


def small_campus(
    tmp_path: Path | None = None,
    cameras: int = 12,
    recorders: int = 4,
    set_env: bool = True,
    seed: int | None = None,
) -> SmallCampus:
    """A small random campus on a random 127.X.0.0/16 base and random high ports, so
    parallel tests never collide. Recorders: nvr-001 hikvision, nvr-002 dahua,
    nvr-003 generic ONVIF, dvr-004 hikvision DVR with analog cameras (with the default
    4 recorders). Passwords are random and set in the environment (set_env)."""
    base = f"127.{random.randint(60, 250)}"
    http_port, rtsp_port, snmp_port = free_port_triplet(f"{base}.0.1")
    f = generate_campus(
        cameras,
        recorders,
        base=base,
        http_port=http_port,
        rtsp_port=rtsp_port,
        snmp_port=snmp_port,
        seed=seed if seed is not None else random.randint(1, 10_000),
    )
    pw = {
        _env_name(NVR_PASSWORD_REF) or "": "nvr-" + secrets.token_hex(6),
        _env_name(CAM_PASSWORD_REF) or "": "cam-" + secrets.token_hex(6),
        _env_name(SNMP_COMMUNITY_REF) or "": "snmp" + secrets.token_hex(4),
    }
    if set_env:
        os.environ.update(pw)
    path = None
    if tmp_path is not None:
        path = Path(tmp_path) / "inventory.yaml"
        write_inventory(f, str(path))
    return SmallCampus(
        inventory=to_inventory(f),
        file=f,
        passwords=pw,
        base=base,
        http_port=http_port,
        rtsp_port=rtsp_port,
        snmp_port=snmp_port,
        path=path,
        env=pw,
    )
