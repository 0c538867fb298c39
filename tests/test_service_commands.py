"""`camwatch check` and `camwatch run` as a user runs them (subprocesses), against a small
simulated campus served by this test's event loop."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from camwatch.service import load_memory
from camwatch.store import Store
from tests.conftest import env_without_settings
from tests.waits import CAP_S

CLI = [sys.executable, "-c", "from camwatch.cli import main; main()"]


def env_for(passwords: dict[str, str], **extra: str) -> dict[str, str]:
    env = env_without_settings()
    env.update(passwords)
    env.update(extra)
    return env


async def run_cli(args: list[str], env: dict[str, str],
                  timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [*CLI, *args], capture_output=True, text=True, env=env,
        timeout=timeout, stdin=subprocess.DEVNULL,
    )


@pytest.mark.timeout(150)
async def test_check_json_gives_three_answers_per_device_and_exit_1_on_failure(
    tmp_path: Path,
) -> None:
    from simulator.testing import SimulatedCampus, small_campus

    campus = small_campus(tmp_path, cameras=6, recorders=4, set_env=False)
    inv = campus.inventory
    rec = campus.recorder("hikvision")
    cam = campus.ip_camera("dahua")
    async with SimulatedCampus(inv, campus.passwords) as sim:
        env = env_for(campus.passwords)
        ok = await run_cli(["check", "--inventory", str(campus.path), "--json", cam], env)
        assert ok.returncode == 0, ok.stderr[-2000:]
        data: list[dict[str, Any]] = json.loads(ok.stdout)
        assert [d["device"] for d in data] == [cam]
        assert data[0]["kind"] == "camera"
        assert set(data[0]["checks"]) == {"host", "recording", "picture"}
        for answer in data[0]["checks"].values():
            assert answer["status"] == "ok", answer
            assert set(answer) == {"status", "reason", "values"}

        await sim.fault(cam, "offline")
        bad = await run_cli(["check", "--inventory", str(campus.path), "--json", cam, rec], env)
        assert bad.returncode == 1, bad.stderr[-2000:]
        by_dev = {d["device"]: d for d in json.loads(bad.stdout)}
        assert by_dev[cam]["checks"]["host"]["status"] == "fail"
        assert by_dev[cam]["checks"]["host"]["reason"]  # zh-TW reason for the custodian
        assert by_dev[rec]["kind"] == "recorder"
        assert by_dev[rec]["checks"]["host"]["status"] == "ok"

        table = await run_cli(["check", "--inventory", str(campus.path), cam], env)
        assert table.returncode == 1
        assert "否" in table.stdout and cam in table.stdout
        for secret in campus.passwords.values():
            assert secret not in bad.stdout + bad.stderr + table.stdout + table.stderr


async def test_check_rejects_an_unknown_device(tmp_path: Path) -> None:
    from simulator.testing import small_campus

    campus = small_campus(tmp_path, cameras=2, recorders=1, set_env=False)
    r = await run_cli(["check", "--inventory", str(campus.path), "no-such-cam"],
                      env_for(campus.passwords))
    assert r.returncode == 2
    assert "no-such-cam" in r.stderr


async def test_check_reports_a_bad_inventory_by_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "inv.yaml"
    bad.write_text("campus: {id: x, name: 學校}\nrecorders:\n  - id: Bad Id\n", encoding="utf-8")
    r = await run_cli(["check", "--inventory", str(bad)], env_for({}))
    assert r.returncode == 1
    assert str(bad) in r.stderr


@pytest.mark.timeout(150)
async def test_run_serves_metrics_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    import httpx

    from simulator.testing import SimulatedCampus, free_port_triplet, small_campus

    campus = small_campus(tmp_path, cameras=4, recorders=2, set_env=False)
    port = free_port_triplet()[0]
    db = tmp_path / "log.db"
    log_file = tmp_path / "camwatch.log"
    env = env_for(campus.passwords, CAMWATCH_LISTEN=f"127.0.0.1:{port}",
                  CAMWATCH_STORE_URL=f"sqlite:///{db}", CAMWATCH_HOST_INTERVAL="1",
                  CAMWATCH_RECORDING_INTERVAL="2", CAMWATCH_PICTURE_INTERVAL="2",
                  CAMWATCH_LOG_FILE=str(log_file))
    async with SimulatedCampus(campus.inventory, campus.passwords):
        proc = subprocess.Popen([*CLI, "run", "--inventory", str(campus.path)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + CAP_S
            body = ""
            async with httpx.AsyncClient(trust_env=False) as client:
                while time.monotonic() < deadline:
                    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
                    try:
                        r = await client.get(f"{url}/metrics", timeout=2)
                        body = r.text
                        # every device answered (ok/fail, or unknown on a busy machine)
                        if body.count("camwatch_check_timestamp_seconds{") >= 6:
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.3)
            assert "camwatch_check_" in body
            proc.send_signal(signal.SIGTERM)
            rc = await asyncio.to_thread(proc.wait, 30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert rc == 0
    text = log_file.read_text(encoding="utf-8")
    assert "camwatch stopped" in text
    for secret in campus.passwords.values():
        assert secret not in text
    with Store.open(f"sqlite:///{db}") as store:
        trans = store.transitions()
        assert trans  # flushed before exit
        assert load_memory(store, "probe_memory") is not None  # kept for the next start


async def test_run_refuses_a_bad_shard(tmp_path: Path) -> None:
    from simulator.testing import small_campus

    campus = small_campus(tmp_path, cameras=2, recorders=1, set_env=False)
    r = await run_cli(["run", "--inventory", str(campus.path), "--shard", "3/2"],
                      env_for(campus.passwords, CAMWATCH_STORE_URL=f"sqlite:///{tmp_path}/x.db"))
    assert r.returncode == 1
    assert "--shard" in r.stderr


@pytest.mark.timeout(150)
async def test_check_judges_pictures_against_what_the_service_learned(tmp_path: Path) -> None:
    from camwatch.service import Service
    from camwatch.settings import Settings
    from probes.result import CheckKind
    from simulator.testing import SimulatedCampus, small_campus

    campus = small_campus(tmp_path, cameras=3, recorders=1, set_env=True)
    cam = next(iter(campus.inventory.cameras))
    db = f"sqlite:///{tmp_path / 'log.db'}"
    async with SimulatedCampus(campus.inventory, campus.passwords):
        svc = Service(Settings(listen="127.0.0.1:0", store_url=db, host_interval=60,
                               recording_interval=60, picture_interval=0.5, retries=0),
                      campus.inventory)
        await svc.start()
        try:
            deadline = time.monotonic() + CAP_S
            while time.monotonic() < deadline:
                r = svc.state.get(cam, CheckKind.PICTURE)
                if r is not None and getattr(r.values, "learning", None) is False:
                    break
                await asyncio.sleep(0.3)
            else:
                raise AssertionError("the service never learned the baseline")
        finally:
            await svc.stop()

        env = env_for(campus.passwords)
        fresh = await run_cli(["check", "--inventory", str(campus.path), "--json", cam],
                              {**env, "CAMWATCH_STORE_URL": f"sqlite:///{tmp_path}/none.db"})
        learned = await run_cli(["check", "--inventory", str(campus.path), "--json", cam],
                                {**env, "CAMWATCH_STORE_URL": db})
    pic_fresh = json.loads(fresh.stdout)[0]["checks"]["picture"]
    pic_learned = json.loads(learned.stdout)[0]["checks"]["picture"]
    assert pic_fresh["values"]["learning"] is True
    assert pic_learned["values"]["learning"] is False, pic_learned
    assert not (tmp_path / "none.db").exists()  # a check never creates a log
