"""Issue 14, defect 2, end to end: one writer per inspection log.

- SQLite: a second `camwatch run` on the same log refuses to start and names the pid
  and host of the one that writes it; once that one is gone (even by kill -9) the log can
  be opened again.
- PostgreSQL with several instances (`--shard K/N`): each shard has one writer, all
  instances must split the inventory the same way, and what each keeps across restarts
  (probe memory, alert state) is keyed by its shard, so shards never collide.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from camwatch.shards import shard_of
from camwatch.store import Store, check_transitions, kv_state, log_sessions
from probes.api import planned_checks, recorder_of
from tests.servicerun import CLI, CamwatchProcess, clean_env, eventually
from tests.test_store_postgres import PG_BIN, pg_url  # noqa: F401 (the fixture)
from tests.waits import CAP_S

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def env_for(passwords: dict[str, str], url: str, **extra: str) -> dict[str, str]:
    return clean_env(passwords, {
        "CAMWATCH_STORE_URL": url, "CAMWATCH_HOST_INTERVAL": "1",
        "CAMWATCH_RECORDING_INTERVAL": "2", "CAMWATCH_PICTURE_INTERVAL": "2",
        "CAMWATCH_RETRIES": "0", "CAMWATCH_TIMEOUT": "5",
    }, **extra)


def open_rows(url: str) -> dict[tuple[str, str], int]:
    """(device, check) -> how many rows claim to be its current state."""
    t = check_transitions
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.device, t.c.check_kind, sa.func.count())
                .where(t.c.ended_at.is_(None)).group_by(t.c.device, t.c.check_kind)).all()
    finally:
        engine.dispose()
    return {(d, c): n for d, c, n in rows}


async def refused(inventory: Path, env: dict[str, str], *args: str
                  ) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [*CLI, "run", "--inventory", str(inventory), *args],
        capture_output=True, text=True, env=env, timeout=90, stdin=subprocess.DEVNULL)


async def test_a_second_instance_on_one_sqlite_log_refuses_naming_the_first(
    tmp_path: Path,
) -> None:
    from simulator.testing import SimulatedCampus, small_campus

    campus = small_campus(tmp_path, cameras=4, recorders=2, set_env=False)
    assert campus.path is not None
    url = f"sqlite:///{tmp_path / 'log.db'}"
    planned = len(planned_checks(campus.inventory))
    async with SimulatedCampus(campus.inventory, campus.passwords):
        first = CamwatchProcess(campus.path, env_for(campus.passwords, url), tmp_path,
                                name="first")
        async with first:
            await first.wait_checked(planned)
            assert first.proc is not None
            second = await refused(campus.path, env_for(campus.passwords, url,
                                                        CAMWATCH_LISTEN="127.0.0.1:0"))
            assert second.returncode == 1, second.stderr[-2000:]
            msg = second.stderr
            assert "already being written by camwatch" in msg, msg
            assert f"pid {first.proc.pid}" in msg and socket.gethostname() in msg
            assert "--shard" in msg  # and what to do instead
            first.assert_running()  # the first one never noticed
            t = await first.check_time(campus.recorder("hikvision"), "host")
            await first.next_result(campus.recorder("hikvision"), "host", t)
            first.kill()  # kill -9: no clean shutdown, and still no stale lock

        again = CamwatchProcess(campus.path, env_for(campus.passwords, url), tmp_path,
                                name="again")
        async with again:
            await again.wait_checked(planned)
    counts = open_rows(url)
    assert counts and set(counts.values()) == {1}, counts  # one current row per check


@pytest.mark.skipif(PG_BIN is None, reason="PostgreSQL server binaries not installed")
async def test_shards_on_postgresql_never_collide(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    from simulator.testing import SimulatedCampus, small_campus

    campus = small_campus(tmp_path, cameras=8, recorders=4, set_env=False)
    inv = campus.inventory
    assert campus.path is not None
    plan = planned_checks(inv)
    shard_plans = {k: [p for p in plan if shard_of(recorder_of(inv, p[1]), 2) == k]
                   for k in (1, 2)}
    async with SimulatedCampus(inv, campus.passwords) as sim:
        # a fault, so that each instance's alert engine has state to keep
        for rec in inv.recorders:
            await sim.fault(rec, "disk-failed", 1)
        # alerts on (an Alertmanager nobody answers at: the engine's state is kept anyway)
        env = env_for(campus.passwords, pg_url, CAMWATCH_ALERTMANAGER_URL="http://127.0.0.1:9")
        one = CamwatchProcess(campus.path, env, tmp_path, args=("--shard", "1/2"), name="one")
        two = CamwatchProcess(campus.path, env, tmp_path, args=("--shard", "2/2"), name="two")
        async with one, two:
            assert one.proc is not None
            await one.wait_checked(len(shard_plans[1]))
            await two.wait_checked(len(shard_plans[2]))
            probe_env = {**env, "CAMWATCH_LISTEN": "127.0.0.1:0"}
            same = await refused(campus.path, probe_env, "--shard", "1/2")
            assert same.returncode == 1, same.stderr[-2000:]
            assert "shard 1/2" in same.stderr and f"pid {one.proc.pid}" in same.stderr
            other_n = await refused(campus.path, probe_env, "--shard", "1/3")
            assert other_n.returncode == 1, other_n.stderr[-2000:]
            assert "the same N" in other_n.stderr, other_n.stderr
            whole = await refused(campus.path, probe_env)
            assert whole.returncode == 1 and "the same N" in whole.stderr, whole.stderr
            one.assert_running()
            two.assert_running()
        # both stopped cleanly: each kept its own state under its own key
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            keys = set(conn.execute(sa.select(kv_state.c.key)).scalars())
            shards = sorted(conn.execute(sa.select(log_sessions.c.shard)).scalars())
            ended = conn.execute(sa.select(sa.func.count()).where(
                log_sessions.c.ended_at.is_(None))).scalar()
    finally:
        engine.dispose()
    assert {"alert_engine@1/2", "alert_engine@2/2", "probe_memory@1/2#00",
            "probe_memory@2/2#00"} <= keys, keys
    assert not {"probe_memory", "probe_memory@1/2"} & keys  # parts only
    assert "alert_engine" not in keys  # nobody wrote the unsharded key
    assert shards == ["1/2", "2/2"] and ended == 0
    counts = open_rows(pg_url)
    assert set(counts.values()) == {1}, counts
    devices = {d for d, _ in counts}
    assert devices == {d for _, d in plan}  # both halves written, each once

    async def reopen() -> bool:  # the locks went with the processes
        with Store.open(pg_url, writer="1/2") as store:
            return store.session is not None

    assert await eventually(reopen, CAP_S, "shard 1/2 can be claimed again")
