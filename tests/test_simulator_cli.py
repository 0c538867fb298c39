"""`camwatch simulate`: generating a campus, serving it, faults through the control API."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from camwatch.commands.simulate import group
from inventory.loader import load_inventory
from simulator.campus import generate_campus, to_inventory
from simulator.control import ControlClient, ControlError
from simulator.model import FaultKind, parse_fault
from simulator.testing import SimulatedCampus, free_port_triplet, small_campus


def test_generated_inventory_passes_the_loader(tmp_path, monkeypatch):
    for name in ("CAMWATCH_DEMO_NVR_PASSWORD", "CAMWATCH_DEMO_CAM_PASSWORD",
                 "CAMWATCH_DEMO_SNMP_COMMUNITY"):
        monkeypatch.setenv(name, "x" * 12)  # set: the inventory refers to the variables
    out = tmp_path / "campus.yaml"
    res = CliRunner().invoke(
        group, ["--cameras", "30", "--recorders", "4", "--write-inventory", str(out)]
    )
    assert res.exit_code == 0, res.output
    inv = load_inventory([out])
    assert len(inv.recorders) == 4 and len(inv.cameras) == 30
    hosts = [r.address.host for r in inv.recorders.values()] + [
        c.address.host for c in inv.cameras.values() if c.address
    ]
    assert len(hosts) == len(set(hosts)) and all(h.startswith("127.50.") for h in hosts)
    assert {r.credentials.password for r in inv.recorders.values()} == {
        "${CAMWATCH_DEMO_NVR_PASSWORD}"
    }
    assert any(c.kind == "analog" for c in inv.cameras.values())


def test_generate_campus_rejects_bad_input():
    with pytest.raises(ValueError, match="127"):
        generate_campus(3, 1, base="10.0")
    with pytest.raises(ValueError, match="recorder"):
        generate_campus(3, 0)
    inv = to_inventory(generate_campus(0, 1))
    assert inv.cameras == {} and len(inv.recorders) == 1


def test_parse_fault_option():
    assert parse_fault("cam-0001=blurred:8") == ("cam-0001", FaultKind.BLURRED, 8.0)
    assert parse_fault("nvr-001=disk_failed") == ("nvr-001", FaultKind.DISK_FAILED, 1.0)
    with pytest.raises(ValueError, match="unknown fault kind"):
        parse_fault("x=melted")
    with pytest.raises(ValueError, match="DEVICE=KIND"):
        parse_fault("blurred")


def test_control_client_refuses_non_loopback():
    with pytest.raises(ControlError, match="loopback"):
        ControlClient("192.0.2.1:80")
    with pytest.raises(ControlError, match="port"):
        ControlClient("127.0.0.1")


async def test_control_api_round_trip(tmp_path):
    campus = small_campus(tmp_path)
    host = f"{campus.base}.250.250"
    port = free_port_triplet(host)[0]
    async with SimulatedCampus(
        campus.inventory, campus.passwords, snmp=False, control=f"{host}:{port}"
    ) as sim:
        client = ControlClient(f"{host}:{port}")
        cam = campus.ip_camera()
        await client.afault(cam, "dark", 0.1)
        assert await client.afaults() == {cam: {"dark": 0.1}}
        assert sim.device(cam).has(FaultKind.DARK)
        with pytest.raises(ControlError, match="no simulated device"):
            await client.afault("nope", "dark")
        with pytest.raises(ControlError, match="unknown fault kind"):
            await client.afault(cam, "melted")
        await client.afault(cam, "offline")
        dev = sim.device(cam)
        async with httpx.AsyncClient() as http:
            with pytest.raises(httpx.ConnectError):
                await http.get(f"http://{dev.host}:{dev.http_port}/")
        await client.aclear(cam)
        assert await client.afaults() == {}
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://{dev.host}:{dev.http_port}/")).status_code == 200


def test_simulate_command_serves_until_stopped(tmp_path):
    campus = small_campus(tmp_path, cameras=6, recorders=2, set_env=False)
    ready = tmp_path / "ready"
    host = f"{campus.base}.250.251"
    port = free_port_triplet(host)[0]
    env = dict(os.environ, **campus.passwords)
    env.pop("CAMWATCH_DEMO_SNMP_COMMUNITY")  # the command sets unset ones itself
    cam = campus.ip_camera()
    proc = subprocess.Popen(
        [sys.executable, "-m", "camwatch", "simulate", "--inventory", str(campus.path),
         "--ready-file", str(ready), "--control", f"{host}:{port}",
         "--fault", f"{cam}=auth", "--rtsp", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "simulator not ready in 60 s"
            time.sleep(0.1)
        dev = campus.inventory.cameras[cam].address
        url = f"http://{dev.host}:{dev.http_port}/onvif/snapshot/1.jpg"
        auth = httpx.DigestAuth("admin", campus.passwords["CAMWATCH_DEMO_CAM_PASSWORD"])
        assert httpx.get(url, auth=auth).status_code == 401  # the --fault
        runner = CliRunner()
        res = runner.invoke(group, ["faults", "--control", f"{host}:{port}"])
        assert f"{cam}: auth=1" in res.output
        res = runner.invoke(group, ["clear", cam, "--control", f"{host}:{port}"])
        assert res.exit_code == 0, res.output
        assert httpx.get(url, auth=auth).status_code == 200
        res = runner.invoke(group, ["fault", cam, "slow", "0.3", "--control", f"{host}:{port}"])
        assert res.exit_code == 0 and "slow" in res.output
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    served = 2 + sum(1 for c in campus.inventory.cameras.values() if c.address)
    assert f"serving {served} devices" in out
    assert "CAMWATCH_DEMO_SNMP_COMMUNITY was not set" in out
    for value in campus.passwords.values():
        assert value not in out


def test_simulate_command_reports_unknown_device(tmp_path):
    campus = small_campus(tmp_path, cameras=2, recorders=1)
    res = CliRunner().invoke(group, ["--inventory", str(campus.path), "--fault", "ghost=dark"])
    assert res.exit_code == 1
    assert "no device 'ghost'" in res.output


def test_simulate_refuses_addresses_outside_loopback(tmp_path):
    campus = small_campus(tmp_path, cameras=2, recorders=1)
    text = campus.path.read_text(encoding="utf-8").replace(f"{campus.base}.0.1", "192.0.2.10")
    campus.path.write_text(text, encoding="utf-8")
    res = CliRunner().invoke(group, ["--inventory", str(campus.path), "--no-snmp", "--rtsp", "0"])
    assert res.exit_code == 1
    assert "loopback" in res.output and "192.0.2.10" in res.output


def test_fault_command_without_simulator_fails_cleanly():
    port = free_port_triplet()[0]
    res = CliRunner().invoke(group, ["fault", "cam-1", "dark", "--control", f"127.0.0.1:{port}"])
    assert res.exit_code == 1 and "control API" in res.output
    res = CliRunner().invoke(group, ["fault", "cam-1", "melted", "--control", f"127.0.0.1:{port}"])
    assert res.exit_code == 1 and "unknown fault kind" in res.output


def test_secrets_are_not_in_the_written_inventory(tmp_path):
    campus = small_campus(tmp_path)
    text = Path(campus.path).read_text(encoding="utf-8")
    for value in campus.passwords.values():
        assert value not in text


async def test_camera_plays_a_video_file(tmp_path):
    import cv2
    import numpy as np

    path = tmp_path / "clip.avi"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (160, 120))
    for _ in range(3):
        out.write(np.full((120, 160, 3), (0, 200, 0), np.uint8))  # green
    out.release()
    campus = small_campus(tmp_path)
    cam = campus.ip_camera()
    async with SimulatedCampus(
        campus.inventory, campus.passwords, snmp=False, videos={cam: str(path)}
    ) as sim:
        dev = sim.device(cam)
        auth = httpx.DigestAuth(dev.username, dev.password)
        async with httpx.AsyncClient(auth=auth) as http:
            r = await http.get(f"http://{dev.host}:{dev.http_port}{dev.snapshot_path(1)}")
        img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)[40:-40]
        b, g, red = (float(c.mean()) for c in cv2.split(img))
        assert cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).std() < 12  # the flat clip, no scene
        night = abs(b - g) < 3  # IR mode is grayscale
        assert night or (g > 120 and b < 60 and red < 60)
