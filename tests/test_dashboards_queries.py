"""Every panel query of every dashboard, run against a real Prometheus that scrapes
camwatch's /metrics, filled by the real probes against the simulated campus (with a
failed disk, so the "failing now" panels have something to show). Each must return data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from camwatch.clock import now as clock_now
from camwatch.secrets import SecretStore
from camwatch.settings import Settings
from camwatch.state import LatestState
from exporters.http import HttpServer
from probes.api import ProbeContext, planned_checks, probe
from probes.baseline import CameraBaseline
from probes.result import CheckKind
from simulator.testing import SimulatedCampus, small_campus
from tests.promstack import aprometheus
from tests.waits import CAP_S

DASH = Path(__file__).resolve().parents[1] / "dashboards"
NAMES = ["campus-overview", "device", "storage-retention"]


def substitute(expr: str, device: str) -> str:
    """What Grafana would send: template variables and built-ins replaced."""
    values = {"device": device, "unit": ".*", "recorder": ".*",
              "__rate_interval": "15s", "__range": "1m", "__interval": "1s"}
    for name, value in values.items():
        expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
    assert "$" not in expr.replace('"$1"', ""), expr
    return expr


def panel_queries(device: str) -> list[tuple[str, str, str]]:
    out = []
    for name in NAMES:
        d = json.loads((DASH / f"{name}.json").read_text())
        for p in d["panels"]:
            for t in p.get("targets", []):
                out.append((name, p["title"], substitute(t["expr"], device)))
        for v in d["templating"]["list"]:
            if v["type"] == "query":
                m = re.fullmatch(r"label_values\((\w+), (\w+)\)", v["query"]["query"])
                assert m, v["query"]
                out.append((name, f"variable {v['name']}", f"count by ({m[2]}) ({m[1]})"))
    return out


async def probe_rounds(ctx: ProbeContext, state: LatestState, stop: asyncio.Event) -> None:
    """What the scheduler does, in rounds: probe everything, publish, keep stats."""
    plan = planned_checks(ctx.inventory)
    while not stop.is_set():
        started = time.time()
        batches = await asyncio.gather(*(probe(c, d, ctx) for c, d in plan))
        for results in batches:
            state.update(results)
            for r in results:
                state.probes.observe(r.driver or r.check.value, r.duration_s)
        for check in CheckKind:
            state.scheduler.last_cycle_end[check] = time.time()
            state.scheduler.lag_seconds[check] = max(0.0, time.time() - started - 1.0)
            state.scheduler.checks_done[check] += sum(1 for c, _ in plan if c == check)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.5)


@pytest.mark.slow
async def test_every_panel_query_returns_data(tmp_path):
    campus = small_campus(tmp_path, cameras=4, recorders=4)
    device = campus.ip_camera("hikvision")  # reports uptime, has a picture and recording
    async with SimulatedCampus(campus.inventory, campus.passwords) as sim:
        await sim.fault(campus.recorder("hikvision"), "disk-failed", 1)
        ctx = ProbeContext(campus.inventory, SecretStore(), now=clock_now)
        for cam in campus.inventory.cameras:  # learn each baseline from one frame
            ctx.memory.baselines[cam] = CameraBaseline(learn_samples=1).to_dict()
        state = LatestState()
        state.ready = True
        server = HttpServer(Settings(listen="127.0.0.1:0"), state, campus.inventory)
        await server.start()
        stop = asyncio.Event()
        rounds = asyncio.create_task(probe_rounds(ctx, state, stop))
        target = f"127.0.0.1:{server.port}"
        try:
            async with aprometheus([target], interval="1s") as prom:
                queries = panel_queries(device)
                assert len(queries) > 25
                deadline = time.monotonic() + CAP_S  # rate() windows fill in seconds
                missing: list[tuple[str, str, str]] = queries
                while missing and time.monotonic() < deadline:
                    await asyncio.sleep(1.0)
                    missing = [qq for qq in missing if not await prom.aquery(qq[2])]
                assert not missing, "panels without data:\n" + "\n".join(
                    f"  {n} / {t}: {e}" for n, t, e in missing)
                # the failing-now table names the recorder with the failed disk and its place
                rows = await prom.aquery(
                    next(e for n, t, e in queries if t.startswith("目前異常設備")))
                failing = {r["metric"]["device"] for r in rows}
                assert campus.recorder("hikvision") in failing
                assert all(r["metric"].get("location") for r in rows)
            # and the exposition of real probe results is clean for promtool
            async with httpx.AsyncClient() as client:
                body = (await client.get(f"{server.url}/metrics")).content
            if shutil.which("promtool"):
                lint = await asyncio.to_thread(
                    subprocess.run, ["promtool", "check", "metrics"], input=body,
                    capture_output=True, timeout=30)
                assert lint.returncode == 0, lint.stdout + lint.stderr
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await rounds
            await server.stop()
