"""Scale figures of the simulator: `python -m simulator.bench --cameras 2000 --recorders 100`.

Starts `camwatch simulate --cameras N --recorders M` as a subprocess (so the figure
includes interpreter start and imports), waits until every device listens, then fetches
snapshots and ONVIF device information from random devices, and prints the start time,
the resident memory and the request rates. A figure, not a pass/fail test.

The start is given twice: wall time, and the CPU time the simulator used until ready.
On a quiet machine they are about the same; on a loaded one the wall time stretches with
the load while the CPU time stays the work of starting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from simulator.campus import address_for, generate_campus
from simulator.testing import free_port_triplet


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) a running process has used (Linux)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()  # after "pid (comm)"
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process in MiB (Linux)."""
    cur = peak = 0.0
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                cur = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return cur, peak


async def _load(hosts: list[tuple[str, str]], port: int, password: str, seconds: float) -> int:
    done = 0
    deadline = time.monotonic() + seconds
    auth = httpx.DigestAuth("admin", password)
    async with httpx.AsyncClient(auth=auth, timeout=10) as http:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                host, path = random.choice(hosts)
                r = await http.get(f"http://{host}:{port}{path}")
                if r.status_code == 200:
                    done += 1

        await asyncio.gather(*(worker() for _ in range(8)))
    return done


def run(
    cameras: int, recorders: int, frame_size: str = "640x360", load_s: float = 5.0
) -> dict[str, Any]:
    base = f"127.{random.randint(60, 250)}"
    http_port, rtsp_port, snmp_port = free_port_triplet(f"{base}.0.1")
    env = dict(os.environ)
    cam_pw = secrets.token_hex(8)
    env.update(
        CAMWATCH_DEMO_NVR_PASSWORD=secrets.token_hex(8),
        CAMWATCH_DEMO_CAM_PASSWORD=cam_pw,
        CAMWATCH_DEMO_SNMP_COMMUNITY=secrets.token_hex(4),
    )
    with tempfile.TemporaryDirectory() as tmp:
        inv = Path(tmp) / "campus.yaml"
        ready = Path(tmp) / "ready"
        # The same campus the command generates, written first so the ports are ours.
        from simulator.campus import write_inventory

        write_inventory(
            generate_campus(
                cameras, recorders, base=base, http_port=http_port, rtsp_port=rtsp_port,
                snmp_port=snmp_port,
            ),
            str(inv),
        )  # fmt: skip
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "camwatch", "simulate", "--inventory", str(inv),
             "--ready-file", str(ready), "--frame-size", frame_size],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            while not ready.exists():
                if proc.poll() is not None:
                    out = proc.stdout.read() if proc.stdout else ""
                    raise RuntimeError(f"simulator exited early: {out[-2000:]}")
                if time.monotonic() - t0 > 120:
                    raise RuntimeError("simulator not ready after 120 s")
                time.sleep(0.05)
            start_s = time.monotonic() - t0
            start_cpu_s = cpu_s(proc.pid)
            rss_ready, _ = rss_mb(proc.pid)
            # The first IP cameras (every vendor also serves /onvif/snapshot/N.jpg).
            n_ip = min(200, max(1, cameras // 2))
            cams = [(address_for(base, 100, i), "/onvif/snapshot/1.jpg") for i in range(n_ip)]
            snaps = asyncio.run(_load(cams, http_port, cam_pw, load_s))
            rss_after, peak = rss_mb(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {
        "cameras": cameras,
        "recorders": recorders,
        "start_s": round(start_s, 2),
        "start_cpu_s": round(start_cpu_s, 2),
        "rss_ready_mb": round(rss_ready, 1),
        "rss_after_load_mb": round(rss_after, 1),
        "rss_peak_mb": round(peak, 1),
        "snapshots_per_s": round(snaps / load_s, 1),
        "frame_size": frame_size,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", type=int, default=2000)
    ap.add_argument("--recorders", type=int, default=100)
    ap.add_argument("--frame-size", default="640x360")
    ap.add_argument("--load-seconds", type=float, default=5.0)
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    a = ap.parse_args()
    res = run(a.cameras, a.recorders, a.frame_size, a.load_seconds)
    if a.json:
        print(json.dumps(res))
        return
    print(
        f"simulator: {res['cameras']} cameras + {res['recorders']} recorders ready in "
        f"{res['start_s']} s ({res['start_cpu_s']} s of CPU); "
        f"RSS {res['rss_ready_mb']} MiB at start, "
        f"{res['rss_after_load_mb']} MiB after {a.load_seconds:g} s of snapshots "
        f"(peak {res['rss_peak_mb']} MiB); {res['snapshots_per_s']} snapshots/s at "
        f"{res['frame_size']}"
    )


if __name__ == "__main__":
    main()
