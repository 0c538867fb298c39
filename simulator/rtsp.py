"""Launching the simulated RTSP cameras (simulator/rtsp_server.py) from camwatch's venv.

GStreamer's RTSP server lives in Debian's python3-gi, which only the system Python has,
so the server runs as a child process of `/usr/bin/python3`; this module starts it,
hands it the mounts as JSON on stdin, and keeps each mount's picture in step with its
device's faults (offline → 404, covered → black, dark, overexposed, blurred → soft,
frozen, moved), polling the SimDevices twice a second.

    cams = await start_rtsp_cameras(world.devices.values())     # None: no GStreamer
    cams.url_for(device)        # rtsp://127.21.0.5:18554/Streaming/Channels/101
    await cams.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from simulator.model import FaultKind, SimDevice

SYSTEM_PYTHON = os.environ.get("CAMWATCH_GST_PYTHON", "/usr/bin/python3")
SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
DEFAULT_LIMIT = 64  # devices served over RTSP by default (each is one listening socket)


class RtspUnavailable(RuntimeError):
    """GStreamer's RTSP server cannot run here; the message says why."""


@functools.lru_cache(maxsize=4)
def rtsp_unavailable_reason(python: str = SYSTEM_PYTHON) -> str | None:
    """None when `python` can import GstRtspServer, else why not (for skip messages)."""
    if not Path(python).exists():
        return f"{python} not found (GStreamer's RTSP server needs the system Python)"
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); "
        "gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
        "assert Gst.ElementFactory.find('x264enc') is not None, 'x264enc missing'"
    )
    try:
        done = subprocess.run(
            [python, "-c", probe], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{python} cannot run: {type(exc).__name__}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
        return (
            f"{python} cannot import GstRtspServer ({last}); install python3-gi "
            "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-ugly"
        )
    return None


def picture_spec(dev: SimDevice | None, pattern: str = "smpte") -> str:
    """The RTSP picture of a device's stream from its faults (see rtsp_server.py)."""
    if dev is None:
        return pattern
    if dev.has(FaultKind.OFFLINE):
        return "offline"
    if dev.has(FaultKind.COVERED):
        return "black"
    if dev.has(FaultKind.DARK):
        return f"{pattern}:dark"
    if dev.has(FaultKind.OVEREXPOSED):
        return f"{pattern}:bright"
    if dev.has(FaultKind.BLURRED):
        return f"{pattern}:soft"  # down/upscale: as blurred as gaussianblur, far cheaper
    if dev.has(FaultKind.FROZEN):
        return f"{pattern}:frozen"
    if dev.has(FaultKind.MOVED):
        return f"{pattern}:moved"
    return pattern


def _key(host: str, port: int) -> str:
    return f"{host}:{port}"


def _path(path: str) -> str:
    return "/" + path.lstrip("/").split("?", 1)[0]


@dataclass
class _Mount:
    key: str
    path: str  # as the device names it (may carry a query, e.g. Dahua)
    device: SimDevice | None  # whose faults decide the picture
    owner: SimDevice | None = None  # the device serving the stream (its offline counts)
    spec: str = ""

    def wanted(self) -> str:
        if self.owner is not None and self.owner.has(FaultKind.OFFLINE):
            return "offline"
        return picture_spec(self.device)


@dataclass
class RtspCameras:
    """A running rtsp_server.py child and its mounts."""

    mounts: list[_Mount]
    auth: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (user, pw)
    size: str = "640x360"
    fps: int = 10
    python: str = SYSTEM_PYTHON
    ports: dict[str, int] = field(default_factory=dict)  # key -> bound port
    _proc: asyncio.subprocess.Process | None = None
    _watch: asyncio.Task[None] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def start(self, start_timeout_s: float = 20.0, watch: bool = True) -> None:
        reason = await asyncio.to_thread(rtsp_unavailable_reason, self.python)
        if reason is not None:
            raise RtspUnavailable(reason)
        servers: dict[str, dict[str, object]] = {}
        for m in self.mounts:
            m.spec = m.wanted()
            entry = servers.setdefault(m.key, {"mounts": {}})
            if m.key in self.auth:
                entry["user"], entry["password"] = self.auth[m.key]
            mounts = entry["mounts"]
            assert isinstance(mounts, dict)
            mounts.setdefault(_path(m.path), m.spec)
        self._proc = await asyncio.create_subprocess_exec(
            self.python,
            str(SERVER_SCRIPT),
            "--config",
            "-",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        conf = {"size": self.size, "fps": self.fps, "servers": servers}
        self._proc.stdin.write((json.dumps(conf) + "\n").encode())
        await self._proc.stdin.drain()
        try:
            async with asyncio.timeout(start_timeout_s):
                line = (await self._proc.stdout.readline()).decode(errors="replace").strip()
        except TimeoutError:
            await self.stop()
            raise RtspUnavailable(
                f"RTSP server did not start within {start_timeout_s:g} s"
            ) from None
        if not line.startswith("READY "):
            await self.stop()
            raise RtspUnavailable(f"RTSP server failed: {line or 'exited'}")
        self.ports = {k: int(v) for k, v in json.loads(line[6:]).items()}
        if watch and self.mounts:
            self._watch = asyncio.create_task(self._follow_faults())

    def port(self, host: str, port: int) -> int:
        """The port actually bound for a configured HOST:PORT (differs when 0)."""
        return self.ports.get(_key(host, port), port)

    def url(self, host: str, port: int, path: str) -> str:
        """The stream URL, without credentials (safe to print)."""
        return f"rtsp://{host}:{self.port(host, port)}/{path.lstrip('/')}"

    def url_for(self, dev: SimDevice, channel: int = 1) -> str:
        assert dev.host is not None
        return self.url(dev.host, dev.rtsp_port, dev.rtsp_path(channel))

    async def set_picture(self, host: str, port: int, path: str, spec: str) -> None:
        """Change one mount's picture now (`offline` removes it)."""
        await self._send({"set": {_key(host, port): {_path(path): spec}}})

    async def _send(self, cmd: Mapping[str, object]) -> None:
        async with self._lock:
            proc = self._proc
            if proc is None or proc.stdin is None or proc.stdout is None:
                raise RtspUnavailable("RTSP server is not running")
            proc.stdin.write((json.dumps(cmd) + "\n").encode())
            await proc.stdin.drain()
            async with asyncio.timeout(10):
                reply = (await proc.stdout.readline()).decode(errors="replace").strip()
            if reply != "OK":
                raise RtspUnavailable(f"RTSP server refused the change: {reply}")

    async def sync(self) -> int:
        """Bring every mount's picture in line with its device's faults; the number
        of mounts changed."""
        changes: dict[str, dict[str, str]] = {}
        for m in self.mounts:
            spec = m.wanted()
            if spec != m.spec:
                m.spec = spec
                changes.setdefault(m.key, {})[_path(m.path)] = spec
        if changes:
            await self._send({"set": changes})
        return sum(len(v) for v in changes.values())

    async def _follow_faults(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            with contextlib.suppress(RtspUnavailable, TimeoutError, OSError):
                await self.sync()

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # EOF: the server leaves its main loop
        try:
            async with asyncio.timeout(3):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


def rtsp_mounts(devices: Iterable[SimDevice], limit: int = DEFAULT_LIMIT) -> list[_Mount]:
    """Mounts for up to `limit` served devices: an IP camera's main and sub stream at
    its own address; a recorder's channels (each showing its camera's picture)."""
    out: list[_Mount] = []
    served = 0
    for dev in devices:
        if not dev.served or dev.host is None or (not dev.is_recorder and dev.analog):
            continue
        if served >= limit:
            break
        served += 1
        key = _key(dev.host, dev.rtsp_port)
        if dev.is_recorder:
            seen: set[str] = set()
            for ch in dev.channels or []:
                path = dev.rtsp_path(ch.channel)
                if _path(path) in seen:
                    continue  # Dahua's query-string channels share one mount
                seen.add(_path(path))
                cam = dev.camera_of_channel(ch.channel)
                out.append(_Mount(key, path, cam if cam is not None else dev, dev))
        else:
            out.append(_Mount(key, dev.rtsp_path(1), dev, dev))
            out.append(_Mount(key, dev.rtsp_path(1, sub=True), dev, dev))
    return out


async def start_rtsp_cameras(
    devices: Iterable[SimDevice],
    *,
    limit: int = DEFAULT_LIMIT,
    auth: bool = False,
    size: str = "640x360",
    fps: int = 10,
    watch: bool = True,
) -> RtspCameras:
    """Start the RTSP server for up to `limit` served devices (cameras and recorder
    channels). `auth=True` asks for each device's username/password (basic), as real
    cameras do. Raises RtspUnavailable (with the reason) when GStreamer cannot run."""
    devs = list(devices)
    mounts = rtsp_mounts(devs, limit)
    creds: dict[str, tuple[str, str]] = {}
    if auth:
        for d in devs:
            if d.host is not None and d.password:
                creds.setdefault(_key(d.host, d.rtsp_port), (d.username, d.password))
    cams = RtspCameras(mounts=mounts, auth=creds, size=size, fps=fps)
    await cams.start(watch=watch)
    return cams
