"""A tiny snapshot server for the frame-path benchmark (run as its own process).

    python bench/frameserver.py --host 127.0.0.1 --port P --ready-file F

Serves /1080p.jpg and /4k.jpg behind HTTP Digest auth (user admin, password from
$BENCH_FRAME_PASSWORD), as a camera's snapshot URL would. The JPEGs are simulated
scenes (simulator.scenes) encoded once at quality 85 and kept in memory only; they are
never written to disk. Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
from aiohttp import web

from simulator.httpauth import challenge, check_digest
from simulator.scenes import draw_scene, view

SIZES = {"1080p": (1920, 1080), "4k": (3840, 2160)}
REALM = "bench-camera"


def make_jpeg(width: int, height: int, seed: int = 7, quality: int = 85) -> bytes:
    """A simulated camera picture of this size as JPEG bytes (in memory)."""
    frame = view(draw_scene(seed, width, height), width, height)
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return bytes(buf)


async def serve(host: str, port: int, password: str, ready: Path | None) -> None:
    jpegs = {name: make_jpeg(w, h) for name, (w, h) in SIZES.items()}

    async def snapshot(request: web.Request) -> web.Response:
        if not check_digest(
            request.headers.get("Authorization"), request.method, "admin", password, REALM
        ):
            return web.Response(status=401, headers={"WWW-Authenticate": challenge(REALM)})
        body = jpegs.get(request.match_info["name"])
        if body is None:
            return web.Response(status=404)
        return web.Response(body=body, content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/{name}.jpg", snapshot)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    if ready is not None:
        ready.write_text("ready\n", encoding="utf-8")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ready-file", type=Path, default=None)
    a = ap.parse_args()
    password = os.environ.get("BENCH_FRAME_PASSWORD", "")
    if not password:
        sys.exit("BENCH_FRAME_PASSWORD is not set")
    asyncio.run(serve(a.host, a.port, password, a.ready_file))


if __name__ == "__main__":
    main()
