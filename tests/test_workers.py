"""`camwatch run --workers N` (issue 16): N probe processes over stable shards under one
parent — one /metrics for all, a worker that dies is started again and its shard probed
anew, the log and probe memory kept by the parent."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from camwatch.service import load_memory
from camwatch.store import Store
from camwatch.workers import worker_shard
from probes.api import planned_checks, recorder_of

CLI = [sys.executable, "-c", "from camwatch.cli import main; main()"]


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as fh:
            out += [int(c) for c in fh.read().split()]
    return out


def test_worker_shards_split_the_plan_by_recorder(tmp_path: Path) -> None:
    from simulator.testing import small_campus

    campus = small_campus(tmp_path, cameras=40, recorders=12, set_env=False)
    inv = campus.inventory
    plan = planned_checks(inv)

    def rec_of(d: str) -> str:
        return recorder_of(inv, d)

    parts = [worker_shard(plan, k, 3, rec_of) for k in (1, 2, 3)]
    assert sorted(p for part in parts for p in part) == sorted(plan)  # all, once each
    owner = {rec_of(d): k for k, part in enumerate(parts) for _c, d in part}
    for k, part in enumerate(parts):
        assert all(owner[rec_of(d)] == k for _c, d in part)  # a recorder and its cameras
    assert sum(1 for part in parts if part) >= 2  # 12 recorders do not all hash alike
    # stable: the same split on every start
    assert parts == [worker_shard(plan, k, 3, rec_of) for k in (1, 2, 3)]


def test_a_worker_keeps_only_its_shard_of_the_inventory(tmp_path: Path) -> None:
    """Inventory.only: a worker's recorders and their cameras, and the plan of that
    part is the worker's plan (nothing it probes is missing)."""
    from simulator.testing import small_campus

    campus = small_campus(tmp_path, cameras=40, recorders=12, set_env=False)
    inv = campus.inventory
    plan = planned_checks(inv)
    part = worker_shard(plan, 1, 3, lambda d: recorder_of(inv, d))
    mine = {recorder_of(inv, d) for _c, d in part}
    sub = inv.only(mine)
    assert set(sub.recorders) == mine
    assert {c.recorder for c in sub.cameras.values()} <= mine
    for r in mine:
        assert sub.cameras_of(r) == inv.cameras_of(r)
    assert sorted(planned_checks(sub)) == sorted(part)
    assert len(sub.cameras) < len(inv.cameras)


def _timestamps(body: str) -> dict[str, float]:
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(
            r'camwatch_check_timestamp_seconds\{check="host",device="([^"]+)"\} (\S+)', body
        )
    }


@pytest.mark.timeout(240)
async def test_two_workers_one_metrics_and_a_killed_worker_comes_back(tmp_path: Path) -> None:
    import httpx

    from simulator.testing import SimulatedCampus, free_port_triplet, small_campus

    campus = small_campus(tmp_path, cameras=8, recorders=6, set_env=False)
    inv = campus.inventory
    hosts = {d for c, d in planned_checks(inv) if c.value == "host"}
    port = free_port_triplet()[0]
    db = tmp_path / "log.db"
    log_file = tmp_path / "camwatch.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMWATCH_")}
    env.update(campus.passwords)
    env.update(CAMWATCH_LISTEN=f"127.0.0.1:{port}", CAMWATCH_STORE_URL=f"sqlite:///{db}",
               CAMWATCH_HOST_INTERVAL="1", CAMWATCH_RECORDING_INTERVAL="1e9",
               CAMWATCH_PICTURE_INTERVAL="1e9", CAMWATCH_LOG_FILE=str(log_file))
    url = f"http://127.0.0.1:{port}/metrics"
    async with SimulatedCampus(inv, campus.passwords):
        proc = subprocess.Popen(
            [*CLI, "run", "--inventory", str(campus.path), "--workers", "2"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        )
        try:
            async with httpx.AsyncClient(trust_env=False) as client:

                async def until(pred, limit: float = 90.0) -> dict[str, float]:  # type: ignore[no-untyped-def]
                    deadline = time.monotonic() + limit
                    while time.monotonic() < deadline:
                        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]  # type: ignore[union-attr]
                        try:
                            seen = _timestamps((await client.get(url, timeout=5)).text)
                        except httpx.HTTPError:
                            seen = {}
                        if pred(seen):
                            return seen
                        await asyncio.sleep(0.3)
                    raise AssertionError(f"not seen in {limit:g} s")

                # one /metrics has every shard's devices
                await until(lambda seen: hosts <= set(seen))
                workers = children(proc.pid)
                assert len(workers) == 2, workers
                killed_at = time.time()
                os.kill(workers[0], signal.SIGKILL)
                # a new worker takes its place, and every device is probed again after
                await until(lambda seen: hosts <= set(seen)
                            and all(seen[d] > killed_at for d in hosts))
                now = children(proc.pid)
                assert len(now) == 2 and workers[0] not in now, (workers, now)
            proc.send_signal(signal.SIGTERM)
            rc = await asyncio.to_thread(proc.wait, 60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert rc == 0
    text = log_file.read_text(encoding="utf-8")
    assert "worker ended, starting it again" in text
    assert "camwatch stopped" in text
    with Store.open(f"sqlite:///{db}") as store:
        memory = load_memory(store, "probe_memory")
        assert memory is not None
        # the workers' probe memory reached the parent, which keeps it
        assert set(memory.facts) & hosts


@pytest.mark.timeout(180)
async def test_reload_starts_every_worker_anew_without_a_pause(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              ) -> None:
    """What an inventory reload does to the workers: each sends its memory and stops, a
    new one reads the files again at once (no restart pause, no 'worker ended' error)."""
    from camwatch.state import LatestState
    from camwatch.workers import WorkerPool
    from probes.context import DeviceMemory
    from probes.result import CheckResult
    from simulator.testing import SimulatedCampus, small_campus

    campus = small_campus(tmp_path, cameras=4, recorders=2, set_env=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMWATCH_")}
    env.update(campus.passwords)
    env.update(CAMWATCH_HOST_INTERVAL="0.5", CAMWATCH_RECORDING_INTERVAL="1e9",
               CAMWATCH_PICTURE_INTERVAL="1e9")
    seen: list[CheckResult] = []
    state = LatestState()
    pool = WorkerPool(2, inventory_paths=[campus.path], settings_path=None, shard=None,
                      memory=DeviceMemory(), state=state, sinks=[seen.extend], env=env)
    async with SimulatedCampus(campus.inventory, campus.passwords):
        await pool.start()
        try:
            first = pool.pids()
            assert len(first) == 2
            for _ in range(200):
                if len(seen) >= 4:
                    break
                await asyncio.sleep(0.1)
            before = len(seen)
            t0 = time.monotonic()
            pool.reload()
            for _ in range(200):
                if len(pool.pids()) == 2 and len(seen) > before + 4:
                    break
                await asyncio.sleep(0.1)
            assert set(pool.pids()).isdisjoint(first)
            assert len(seen) > before + 4  # the new workers probe
            assert time.monotonic() - t0 < 60
            assert all(w.restarts == 0 for w in pool.workers)  # no death, no pause
            assert state.scheduler.checks_done  # the figures kept counting
        finally:
            await pool.stop()


def test_default_workers_are_the_cores_but_not_for_a_few_devices() -> None:
    from camwatch.workers import cores, default_workers

    assert default_workers() == cores()
    assert default_workers(300) == 1  # a school's few hundred devices: in-process
    assert default_workers(10_500) == min(cores(), 11)


@pytest.mark.timeout(240)
async def test_a_baseline_set_or_reset_reaches_the_worker_probing_the_camera(
    tmp_path: Path,
) -> None:
    """The landing page and `camwatch baseline` change a camera's baseline in the
    parent; with workers, the one probing the camera must take it too, or its next
    memory hand-over (every 30 s, and on its way out) would bring the old one back."""
    from camwatch.state import LatestState
    from camwatch.workers import WorkerPool, worker_devices
    from probes.context import DeviceMemory
    from simulator.testing import small_campus

    campus = small_campus(tmp_path, cameras=8, recorders=4, set_env=False)
    inv = campus.inventory
    plan = planned_checks(inv)
    cams = sorted(c.id for c in inv.cameras.values())
    kept, learned = cams[0], cams[1]
    memory = DeviceMemory(baselines={learned: {"day": {"n": 3, "marker": "old"}}})
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMWATCH_")}
    env.update(campus.passwords)
    env.update(CAMWATCH_HOST_INTERVAL="1e9", CAMWATCH_RECORDING_INTERVAL="1e9",
               CAMWATCH_PICTURE_INTERVAL="1e9", CAMWATCH_LOG_LEVEL="WARNING")
    devices = {k: worker_devices(plan, k, 2, lambda d: recorder_of(inv, d),
                                 lambda r: [c.id for c in inv.cameras_of(r)])
               for k in (1, 2)}
    pool = WorkerPool(2, inventory_paths=[campus.path], settings_path=None, shard=None,
                      memory=memory, state=LatestState(), sinks=[], env=env,
                      devices=devices)
    await pool.start(ready_within_s=120)
    try:
        assert all(w.ready for w in pool.workers)
        chosen = {"day": {"n": 6, "source": "reference", "marker": "new"}}
        pool.set_baseline(kept, chosen)
        memory.baselines.pop(learned)  # the parent's own reset, as the service does it
        pool.reset_baseline(learned)
    finally:
        await pool.stop()  # each worker hands its shard's memory over on its way out
    assert memory.baselines.get(kept) == chosen
    assert learned not in memory.baselines


def test_a_memory_hand_over_carries_the_baselines_changed_since_the_last() -> None:
    """A camera's baselines are kilobytes and change only at its picture checks: a
    worker's periodic hand-over carries those a check changed, never those that stood."""
    from probes.context import DeviceMemory, JsonValues

    memory = DeviceMemory(baselines={"a": {"day": {"n": 6}}, "b": {"day": {"n": 6}}})
    assert memory.take_changed_baselines() == {}
    memory.put_baseline("a", {"day": {"n": 7}})
    memory.put_baseline("c", {"day": {"n": 1}})
    memory.baselines.pop("c")  # reset before the hand-over: nothing to carry
    changed = memory.take_changed_baselines()
    assert {k: JsonValues.unpack(v) for k, v in changed.items()} == {"a": {"day": {"n": 7}}}
    assert memory.take_changed_baselines() == {}
    assert memory.baselines["b"] == {"day": {"n": 6}}
    # the parent keeps them packed as they came, and reads them back as baselines
    parent = DeviceMemory(baselines={"a": {"day": {"n": 6}}, "b": {"day": {"n": 6}}})
    parent.baselines.put_packed(changed)
    assert dict(parent.baselines) == {"a": {"day": {"n": 7}}, "b": {"day": {"n": 6}}}

