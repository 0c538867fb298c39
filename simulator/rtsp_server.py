"""RTSP cameras for the simulator, on GStreamer's RTSP server (gst-rtsp-server 1.22).

Runs under the SYSTEM Python (`/usr/bin/python3`, which has python3-gi and
gir1.2-gst-rtsp-server-1.0), not camwatch's virtualenv: `simulator/rtsp.py` launches it.
It imports nothing from camwatch.

One process serves many listening addresses (one GstRTSPServer per HOST:PORT, all on one
GLib main loop); a pipeline exists only while a client is connected, so idle cameras
cost a socket each. Every client gets a fresh pipeline, so a changed picture (a fault
injected while running) shows on the next connection.

A mount's picture is `PATTERN[:VARIANT[:SEVERITY]]`: PATTERN is a videotestsrc pattern
(smpte, ball, checkers-8, snow, black, ...), VARIANT one of
  soft       downscale then upscale (a cheap, strong defocus)
  blur       gaussianblur, sigma = SEVERITY (CPU-heavy at high resolutions)
  dark       brightness down (covered lens / night without IR)
  bright     brightness up, contrast down (glare, washed out)
  frozen     one frame, repeated (imagefreeze)
  moved      the view flipped and shifted (the camera swung away)
and `offline` removes the mount (DESCRIBE answers 404).

Usage:
  /usr/bin/python3 simulator/rtsp_server.py --listen 127.0.0.1:0 --mount /cam1=smpte \\
      --mount /cam1soft=smpte:soft
  /usr/bin/python3 simulator/rtsp_server.py --config -     (JSON on stdin, see below)

Once listening it prints one line `READY {"HOST:PORT": bound_port, ...}` (JSON) on
stdout. Then it reads commands from stdin, one JSON object a line:
  {"set": {"HOST:PORT": {"/path": "smpte:blur:6"}}}      change or add mounts
The JSON config: {"size": "640x360", "fps": 10, "servers": {"HOST:PORT": {"mounts":
{"/path": "smpte"}, "user": "admin", "password": "..."}}} (user/password optional: RTSP
basic auth, as cameras ask). On the command line, `--user NAME` takes the password from
the environment variable named by `--password-env`, never from an argument. Printed
URLs never carry credentials.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from typing import Any

import gi  # type: ignore[import-not-found,unused-ignore]

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # type: ignore[import-not-found,unused-ignore]  # noqa: E402

ENCODER = (
    "videoconvert ! video/x-raw,format=I420 ! "
    "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate={kbps} "
    "! rtph264pay name=pay0 pt=96 config-interval=1"
)


def launch_line(spec: str, width: int, height: int, fps: int) -> str | None:
    """The gst-launch description for a mount's picture; None for `offline`."""
    parts = spec.split(":")
    pattern = parts[0] or "smpte"
    variant = parts[1] if len(parts) > 1 else ""
    severity = float(parts[2]) if len(parts) > 2 and parts[2] else None
    if pattern == "offline" or variant == "offline":
        return None
    caps = f"video/x-raw,width={width},height={height},framerate={fps}/1"
    src = f"videotestsrc pattern={pattern} is-live=true ! {caps}"
    if variant == "frozen":
        src = f"videotestsrc pattern={pattern} num-buffers=1 ! {caps} ! imagefreeze is-live=true"
    middle = ""
    if variant == "soft":
        factor = max(2, int(severity or 8))
        small = f"video/x-raw,width={max(8, width // factor)},height={max(8, height // factor)}"
        middle = f"videoscale ! {small} ! videoscale ! video/x-raw,width={width},height={height}"
    elif variant == "blur":
        middle = f"videoconvert ! gaussianblur sigma={severity or 6.0:g} ! videoconvert"
    elif variant == "dark":
        middle = f"videoconvert ! videobalance brightness={-(severity or 0.8):g} contrast=0.2"
    elif variant == "bright":
        middle = f"videoconvert ! videobalance brightness={severity or 0.8:g} contrast=0.3"
    elif variant == "moved":
        middle = "videoflip method=horizontal-flip"
    elif variant not in ("", "none", "clear", "frozen"):
        raise ValueError(f"unknown picture variant {variant!r}")
    chain = f"{src} ! {middle} ! " if middle else f"{src} ! "
    enc = ENCODER.format(gop=max(1, fps), kbps=max(256, width * height * fps // 4000))
    return f"( {chain}{enc} )"


class Cameras:
    def __init__(self, width: int, height: int, fps: int) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.servers: dict[str, Any] = {}
        self.perms: dict[str, Any] = {}

    def listen(self, key: str, user: str | None = None, password: str | None = None) -> Any:
        host, _, port = key.rpartition(":")
        server = GstRtspServer.RTSPServer()
        server.set_address(host)
        server.set_service(port)
        if user and password is not None:
            auth = GstRtspServer.RTSPAuth()
            token = GstRtspServer.RTSPToken()
            token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
            server.set_auth(auth)
            perms = GstRtspServer.RTSPPermissions()
            for perm in (
                GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS,
                GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT,
            ):
                perms.add_permission_for_role("viewer", perm, True)
            self.perms[key] = perms
        if server.attach(None) == 0:
            raise OSError(f"cannot listen on {key}")
        self.servers[key] = server
        return server

    def mount(self, key: str, path: str, spec: str) -> None:
        """Serve `spec` at `path` (a query string is ignored: gst-rtsp-server matches
        the path, so Dahua's /cam/realmonitor?channel=N serves one picture)."""
        server = self.servers[key]
        points = server.get_mount_points()
        path = "/" + path.lstrip("/").split("?", 1)[0]
        points.remove_factory(path)
        line = launch_line(spec, self.width, self.height, self.fps)
        if line is None:
            return  # offline: DESCRIBE answers 404
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(line)
        factory.set_shared(False)  # a fresh pipeline per client: faults show at once
        if key in self.perms:
            factory.set_permissions(self.perms[key])
        points.add_factory(path, factory)

    def bound(self) -> dict[str, int]:
        return {key: int(s.get_bound_port()) for key, s in self.servers.items()}


def _parse_size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Simulated RTSP cameras (GStreamer RTSP server)")
    p.add_argument("--listen", action="append", default=[], help="HOST:PORT (0: any port)")
    p.add_argument("--mount", action="append", default=[], help="/PATH=PATTERN[:VARIANT[:SEV]]")
    p.add_argument("--config", help="JSON file ('-' for stdin): {servers: {HOST:PORT: {...}}}")
    p.add_argument("--size", default="640x360")
    p.add_argument("--fps", type=int, default=10)
    p.add_argument("--user", default=None)
    p.add_argument("--password-env", default=None)
    args = p.parse_args(argv)

    Gst.init(None)
    width, height = _parse_size(args.size)
    cli_password = os.environ.get(args.password_env) if args.password_env else None
    servers: dict[str, dict[str, Any]] = {}
    if args.config:
        if args.config == "-":
            text = sys.stdin.readline()
        else:
            with open(args.config, encoding="utf-8") as fh:
                text = fh.read()
        conf = json.loads(text)
        width, height = _parse_size(str(conf.get("size", args.size)))
        args.fps = int(conf.get("fps", args.fps))
        servers = {k: dict(v) for k, v in conf.get("servers", {}).items()}
    cams = Cameras(width, height, args.fps)
    for key in args.listen:
        entry = servers.setdefault(key, {"mounts": {}, "user": args.user, "password": cli_password})
        for m in args.mount:
            path, _, spec = m.partition("=")
            entry["mounts"][path] = spec or "smpte"
    if not servers:
        p.error("nothing to serve: give --listen/--mount or --config")
    try:
        for key, entry in servers.items():
            cams.listen(key, entry.get("user"), entry.get("password"))
            for path, spec in dict(entry.get("mounts", {})).items():
                cams.mount(key, path, spec)
    except Exception as exc:
        print(f"ERROR {type(exc).__name__}: {exc}", flush=True)
        return 2

    loop = GLib.MainLoop()

    def on_stdin(_source: Any, condition: Any) -> bool:
        line = sys.stdin.readline()
        if not line:  # the launcher went away: stop serving
            loop.quit()
            return False
        try:
            cmd = json.loads(line)
            for key, mounts in cmd.get("set", {}).items():
                if key not in cams.servers:
                    cams.listen(key)
                for path, spec in mounts.items():
                    cams.mount(key, path, spec)
            print("OK", flush=True)
        except Exception as exc:
            print(f"ERROR {type(exc).__name__}: {exc}", flush=True)
        return True

    GLib.io_add_watch(sys.stdin.fileno(), GLib.IO_IN | GLib.IO_HUP, on_stdin)
    print("READY " + json.dumps(cams.bound()), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
