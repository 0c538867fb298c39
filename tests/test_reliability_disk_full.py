"""Issue 14, defect 1, end to end: the inspection log on a filesystem that fills up.

`camwatch run` (a real process) keeps its SQLite log on a small tmpfs; the test fills
that filesystem to the last block, injects a recorder outage while nothing can be
written, then frees the space, and reads the log back:

1. while full: /metrics (camwatch_store_*), /ready (503) and the landing page say the
   log is not being kept; probes and alerts carry on;
2. once space returns: the outage is in the log with its TRUE times (not the time the
   space came back), and so is the repair alert;
3. killed while the disk is full (the waiting results die with it): the next start
   leaves a hole, and the sheet of that period says 「紀錄中斷」 with its times and
   does not tick 是.

Needs root to mount a tmpfs (CI runs as root); skipped with the reason otherwise. The
alert rule that fires meanwhile is unit-tested with promtool (alerts/camwatch.rules.test.yml).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from camwatch.store import Store
from probes.api import planned_checks
from tests.promstack import alertmanager
from tests.servicerun import CamwatchProcess, clean_env, eventually, sample

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "16m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` for the duration of the block."""
    if os.geteuid() != 0:
        pytest.skip("filling a filesystem needs a small one of its own: mounting a tmpfs "
                    "needs root (CI runs as root)")
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755",
                        "camwatch-test", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip() or r.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(fs: Path) -> Path:
    """Write a file until the filesystem has no block left."""
    filler = fs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 4096, 512, 1):
            block = b"\0" * size
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, block)
    finally:
        os.close(fd)
    st = os.statvfs(fs)
    assert st.f_bavail == 0, "the filesystem still has room"
    return filler


def ts(value: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(value, dt.UTC)


def read_log(db: Path) -> Any:
    return Store.open(f"sqlite:///{db}", migrate=False)


async def test_a_full_disk_loses_nothing_and_a_lost_stretch_is_said_on_the_sheet(
    tmp_path: Path,
) -> None:
    from reports.sheet import build_sheet, log_holes, unit_devices
    from simulator.testing import SimulatedCampus, small_campus

    campus = small_campus(tmp_path, cameras=4, recorders=2, set_env=False)
    inv = campus.inventory
    rec = campus.recorder("dahua")  # the recorder that goes down while the disk is full
    other = campus.recorder("hikvision")
    assert campus.path is not None
    planned = len(planned_checks(inv))
    with small_filesystem(tmp_path / "logfs") as fs, alertmanager() as am:
        db = fs / "log.db"
        env = clean_env(campus.passwords, {
            "CAMWATCH_STORE_URL": f"sqlite:///{db}", "CAMWATCH_ALERTMANAGER_URL": am.url,
            "CAMWATCH_HOST_INTERVAL": "1", "CAMWATCH_RECORDING_INTERVAL": "2",
            "CAMWATCH_PICTURE_INTERVAL": "2", "CAMWATCH_TIMEOUT": "5",
            "CAMWATCH_RETRIES": "0", "CAMWATCH_ALERT_DEBOUNCE": "2",
            "CAMWATCH_ALERT_RESEND_INTERVAL": "2", "CAMWATCH_LOG_GAP_MIN_S": "3",
        })
        async with SimulatedCampus(inv, campus.passwords) as sim:
            cw = CamwatchProcess(campus.path, env, tmp_path, name="first")
            await cw.start()
            try:
                await cw.wait_checked(planned)

                # -- 1. the disk fills: said everywhere, probes and alerts carry on
                filler = await asyncio.to_thread(fill, fs)

                async def not_kept() -> bool:
                    return await cw.metric("camwatch_store_writable") == {"": 0.0}

                await eventually(not_kept, 90, "camwatch_store_writable 0 on a full disk")
                text = await cw.metrics()
                assert (sample(text, "camwatch_store_write_errors_total") or 0) > 0
                assert (sample(text, "camwatch_store_unwritten_results") or 0) > 0
                ready = await cw.get("/ready")
                assert ready.status_code == 503
                assert "inspection log is not being kept" in ready.text
                assert "檢查紀錄目前無法寫入" in (await cw.get("/")).text

                t_fault = time.time()
                await sim.fault(rec, "offline")

                async def recorder_down() -> bool:
                    return any(a["labels"]["alertname"] == "RecorderDown"
                               and a["status"]["state"] == "active"
                               for a in await am.aalerts(device=rec))

                await eventually(recorder_down, 60, "RecorderDown while the disk is full")
                await sim.clear(rec)
                t_clear = time.time()
                t = await cw.check_time(rec, "host")

                async def back() -> float | None:
                    text = await cw.metrics()
                    when = sample(text, "camwatch_check_timestamp_seconds", device=rec,
                                  check="host")
                    ok = sample(text, "camwatch_check_ok", device=rec, check="host")
                    return when if when and t and when > t and ok == 1.0 else None

                await eventually(back, 60, "the recorder answering again")
                age = sample(await cw.metrics(),
                             "camwatch_store_oldest_unwritten_result_age_seconds") or 0
                assert age >= time.time() - t_fault - 1  # still waiting, from before the fault
                await asyncio.sleep(2)  # the space returns well after the recovery
                t_free = time.time()
                filler.unlink()

                async def kept() -> bool:
                    text = await cw.metrics()
                    return (sample(text, "camwatch_store_writable") == 1.0
                            and sample(text, "camwatch_store_unwritten_results") == 0.0)

                await eventually(kept, 90, "every waiting result written once space returned")
                assert (await cw.get("/ready")).status_code == 200

                # -- 2. the outage is in the log with its true times
                def outage() -> tuple[Any, Any]:
                    with read_log(db) as store:
                        fails = [x for x in store.transitions([rec]) if x.check.value == "host"
                                 and x.status.value == "fail"]
                        alerts = store.alert_history([rec])
                    return fails, alerts

                fails, alerts = await asyncio.to_thread(outage)
                assert len(fails) == 1, fails
                down = fails[0]
                assert ts(t_fault - 1) <= down.started_at <= ts(t_clear + 1)
                assert down.ended_at is not None
                assert ts(t_clear - 1) <= down.ended_at < ts(t_free)  # not when space came back
                fired = [a for a in alerts if a.alertname == "RecorderDown"]
                assert len(fired) == 1 and ts(t_fault) <= fired[0].fired_at < ts(t_free)

                # -- 3. killed while full: what waited dies with it, the sheet says so
                filler = await asyncio.to_thread(fill, fs)
                await eventually(not_kept, 90, "the disk full again")
                hole_start = await asyncio.to_thread(
                    lambda: _kept_until(db))
                cw.kill()
            finally:
                await cw.stop(signal.SIGKILL)
            filler.unlink()
            await asyncio.sleep(4)  # longer than CAMWATCH_LOG_GAP_MIN_S
            second = CamwatchProcess(campus.path, env, tmp_path, name="second")
            async with second:
                await second.wait_checked(planned)
            with read_log(db) as store:
                sessions = store.sessions()
            assert len(sessions) == 2 and sessions[1].started_at > hole_start
            hole_end = sessions[1].started_at
            made_at = sessions[1].kept_until  # the sheet as of the second run's end

        # (still inside the mount: the log lives there)
        zone = ZoneInfo(inv.campus.timezone)
        month = hole_start.astimezone(zone).strftime("%Y-%m")
        unit = inv.recorders[other].unit
        with read_log(db) as store:
            holes = log_holes(store, [other, rec], dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
                              made_at, gap_min_s=3)
            assert [(a, b) for a, b, _ in holes[other]] == [(hole_start, hole_end)], holes
            assert not any(a < ts(t_free) and b > ts(t_fault) for a, b, _ in holes[rec])
            sheet = build_sheet(store, inv, unit, month, now=made_at, gap_min_s=3)
        assert other in unit_devices(inv, unit)
        row = max((r for r in sheet.rows if r.recorder_id == other
                   and dt.datetime.fromisoformat(r.period_start) <= hole_start),
                  key=lambda r: r.period_start)  # the period the hole falls in
        said = [m for m in row.remarks if m.startswith("紀錄中斷")]
        assert said, row.remarks
        hm = "%m/%d %H:%M"
        assert hole_start.astimezone(zone).strftime(hm) in said[0]
        # its end, or the period's if the hole ran on past it (a midnight that closes one)
        ends = {hole_end.astimezone(zone).strftime(hm),
                dt.datetime.fromisoformat(row.period_end).strftime(hm)}
        assert any(e in said[0] for e in ends), said
        assert True not in (row.host, row.recording, row.picture)  # never 是 across a hole
        assert "本期三項檢查均正常" not in row.remarks


def _kept_until(db: Path) -> dt.datetime:
    with read_log(db) as store:
        return store.sessions()[-1].kept_until
