"""`camwatch check` (one look, nothing learned) answers what a person sees in one look
(issue 12): a covered, black, white-out or no-signal picture from the first sample, a
frozen one from the second look the command takes itself; a healthy camera stays
clear. Against the simulated campus, real snapshots over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from simulator.testing import SimulatedCampus, small_campus


@pytest.mark.parametrize("scene_time", ["12:40", "02:10"], ids=["day", "night"])
async def test_check_answers_one_look_faults_and_frozen(tmp_path: Path, scene_time: str) -> None:
    campus = small_campus(tmp_path, cameras=8, recorders=4, set_env=False)
    assert campus.path is not None
    ips = [c.id for c in campus.inventory.cameras.values() if c.address is not None]
    analog = campus.analog_camera()
    assert len(ips) >= 5
    faults = {ips[0]: "covered", ips[1]: "dark", ips[2]: "overexposed", ips[3]: "frozen"}
    healthy = ips[4]
    # camwatch's clock is not a setting: the subprocess keeps it (tests/conftest.py)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CAMWATCH_") or k == "CAMWATCH_CLOCK"}
    env.update(campus.passwords, CAMWATCH_TIMEOUT="6", HOME=str(tmp_path / "home"),
               CAMWATCH_STORE_URL=f"sqlite:///{tmp_path / 'none.db'}")
    async with SimulatedCampus(campus.inventory, campus.passwords,
                               scene_time=scene_time) as sim:
        for cam, kind in faults.items():
            await sim.fault(cam, kind)
        await sim.fault(analog, "signal-loss")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "camwatch", "check", "--json", "--inventory",
            str(campus.path), *faults, analog, healthy,
            env=env, cwd=str(tmp_path), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 1, err.decode()[-3000:]  # faults found: exit status 1
    pictures = {a["device"]: a["checks"]["picture"] for a in json.loads(out)}
    for cam, kind in faults.items():
        p = pictures[cam]
        assert p["status"] == "fail", (kind, p)
        assert p["values"]["verdict"] == kind, (kind, p["reason"])
    assert pictures[analog]["status"] == "fail"
    assert pictures[analog]["values"]["verdict"] == "no-signal", pictures[analog]["reason"]
    assert pictures[healthy]["status"] == "ok", pictures[healthy]
    assert "基準學習中" in pictures[healthy]["reason"]
