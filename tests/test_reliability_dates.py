"""Issue 14, defects 4 and 8, end to end on camwatch's own clock pinned (CAMWATCH_CLOCK,
camwatch/clock.py) — never on today's date or hour:

4. `camwatch run` stopped at 23:59 on an inspection date and started again after
   midnight: the day's snapshot and its inspection are written at start.
8. `camwatch report --month 2030-01` on 2 December (Taipei) names 2 December as today;
   a fault that began at 23:59 on 30 November and was reported at 00:00 on 1 December
   is, on the November sheet, a repair request — not 「未報修（故障未達告警條件）」.

How long `camwatch run` takes to start is load, not a promise: the evening run starts
ten minutes before midnight, and the fault of the 30th, which must be injected at
23:59:50 by a process started before it, is set up again with more time if the start
took longer than the time left (measured in the same test: the cushion scales with it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import subprocess
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from camwatch.clock import PinnedClock
from camwatch.store import Store
from probes.api import planned_checks
from tests.servicerun import CLI, CamwatchProcess, clean_env, eventually

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

TZ = ZoneInfo("Asia/Taipei")


def pinned(at: dt.datetime) -> PinnedClock:
    return PinnedClock.starting_now(at)


async def wait_until(clock: PinnedClock, when: dt.datetime) -> None:
    delay = (when - clock.now()).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)


def run_env(campus: Any, tmp_path: Path, clock: PinnedClock, **extra: str) -> dict[str, str]:
    return clean_env(campus.passwords, {
        "CAMWATCH_STORE_URL": f"sqlite:///{tmp_path / 'log.db'}",
        "CAMWATCH_HOST_INTERVAL": "1", "CAMWATCH_RECORDING_INTERVAL": "2",
        "CAMWATCH_PICTURE_INTERVAL": "2", "CAMWATCH_TIMEOUT": "5", "CAMWATCH_RETRIES": "0",
        "CAMWATCH_CLOCK": clock.env_value(),
    }, **extra)


async def test_a_restart_across_midnight_loses_no_day(tmp_path: Path) -> None:
    from simulator.testing import SimulatedCampus, small_campus

    d14 = dt.date(2026, 11, 14)  # an inspection date (every 14 days from the 1st)
    # any time that evening: only the checks' day counts, not how close to midnight
    evening = pinned(dt.datetime(2026, 11, 14, 23, 50, tzinfo=TZ))
    campus = small_campus(tmp_path, cameras=2, recorders=1, set_env=False)
    assert campus.path is not None
    async with SimulatedCampus(campus.inventory, campus.passwords, clock=evening):
        cw = CamwatchProcess(campus.path, run_env(campus, tmp_path, evening), tmp_path,
                             name="evening")
        async with cw:
            await cw.wait_checked(len(planned_checks(campus.inventory)))
            assert evening.now().astimezone(TZ).date() == d14, "started too late to test"
        # stopped before midnight: nothing ran at 00:00
        morning = pinned(dt.datetime(2026, 11, 15, 0, 0, 30, tzinfo=TZ))
        cw2 = CamwatchProcess(campus.path, run_env(campus, tmp_path, morning), tmp_path,
                              name="morning")
        async with cw2:
            def written() -> bool:
                with Store.open(f"sqlite:///{tmp_path / 'log.db'}", migrate=False) as store:
                    return bool(store.daily_snapshots(d14, d14) and store.inspections(d14, d14))

            async def check() -> bool:
                return await asyncio.to_thread(written)

            await eventually(check, 60, "the 14th's snapshot and inspection written at start")
    with Store.open(f"sqlite:///{tmp_path / 'log.db'}", migrate=False) as store:
        insp = store.inspections(d14, d14)
        snaps = store.daily_snapshots(d14, d14)
    rec = campus.recorder()
    assert {r.device for r in insp} >= {rec}
    mine = next(r for r in insp if r.device == rec)
    assert mine.answers["host"] in ("ok", "fail")  # judged from the transitions
    assert mine.period_start == dt.datetime(2026, 11, 1, tzinfo=TZ)
    assert {s.device for s in snaps} >= {rec}


def test_report_names_the_campus_today_for_a_future_month(tmp_path: Path) -> None:
    from simulator.testing import small_campus

    campus = small_campus(tmp_path, cameras=2, recorders=1, set_env=False)
    assert campus.path is not None
    unit = next(iter(campus.inventory.units))
    # 00:30 on 2 December in Taipei is still 1 December in UTC
    for instant in (dt.datetime(2026, 12, 2, 0, 30, tzinfo=TZ),
                    dt.datetime(2026, 12, 2, 23, 30, tzinfo=TZ)):
        clock = pinned(instant)
        r = subprocess.run(
            [*CLI, "report", "--month", "2030-01", "--unit", unit, "--inventory",
             str(campus.path), "--store-url", f"sqlite:///{tmp_path / 'none.db'}"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
            env=clean_env(campus.passwords, CAMWATCH_CLOCK=clock.env_value()))
        assert r.returncode == 1, r.stderr
        assert "today is 2026-12-02" in r.stderr, r.stderr


async def test_a_fault_of_the_30th_reported_at_midnight_is_on_the_november_sheet(
    tmp_path: Path,
) -> None:
    from openpyxl import load_workbook

    from simulator.testing import SimulatedCampus, small_campus

    first_dec = dt.datetime(2026, 12, 1, tzinfo=TZ)
    fault_at = dt.datetime(2026, 11, 30, 23, 59, 50, tzinfo=TZ)
    campus = small_campus(tmp_path, cameras=2, recorders=1, set_env=False)
    inv = campus.inventory
    cam = campus.ip_camera()
    unit = inv.recorders[inv.cameras[cam].recorder].unit
    assert campus.path is not None
    cushion = 6.0  # seconds from the start to the fault: enough on a quiet machine
    for attempt in range(4):
        clock = pinned(fault_at - dt.timedelta(seconds=cushion))
        db = tmp_path / f"log-{attempt}.db"
        # 12 failures in a row before alerting: a fault from 23:59:50 is reported
        # after midnight, whatever the load. The alert engine runs with an Alertmanager
        # URL; none answers there (a real one keeps the host's clock and would drop
        # alerts that end in its past): the repair requests are read from the log.
        env = run_env(campus, tmp_path, clock, CAMWATCH_ALERTMANAGER_URL="http://127.0.0.1:9",
                      CAMWATCH_ALERT_DEBOUNCE="12", CAMWATCH_ALERT_RECOVERY="1",
                      CAMWATCH_STORE_URL=f"sqlite:///{db}")
        async with (SimulatedCampus(inv, campus.passwords, clock=clock) as sim,
                    CamwatchProcess(campus.path, env, tmp_path, name=f"run-{attempt}") as cw):
            await cw.next_result(cam, "host", None, timeout=90)
            started_in = cushion - (fault_at - clock.now()).total_seconds()
            if clock.now() > fault_at - dt.timedelta(seconds=1):
                cushion = 2 * started_in + 5  # too late to test: again, with more time
                continue
            await wait_until(clock, fault_at)
            await sim.fault(cam, "offline")

            def history(db: Path = db) -> list[Any]:
                with Store.open(f"sqlite:///{db}", migrate=False) as store:
                    return [a for a in store.alert_history([cam])
                            if a.alertname == "CameraUnreachable"]

            async def alert() -> list[Any]:
                return await asyncio.to_thread(history)

            got = (await eventually(alert, 90, "CameraUnreachable fired"))[0]
            await sim.clear(cam)

            async def resolved() -> bool:
                return any(a.resolved_at is not None for a in await alert())

            await eventually(resolved, 90, "CameraUnreachable resolved (recovery 1)")
            cw.send(signal.SIGTERM)
            break
    else:
        pytest.fail(f"camwatch run never started in time (last: {cushion:.0f} s)")
    with Store.open(f"sqlite:///{db}", migrate=False) as store:
        fails = [x for x in store.transitions([cam]) if x.status.value == "fail"]
    assert fails and fails[0].started_at < first_dec <= got.fired_at, (fails, got)

    out = tmp_path / "nov.xlsx"
    sheet_clock = pinned(dt.datetime(2026, 12, 1, 9, 0, tzinfo=TZ))
    r = subprocess.run(
        [*CLI, "report", "--month", "2026-11", "--unit", unit, "--format", "xlsx", "-o",
         str(out), "--inventory", str(campus.path), "--store-url", f"sqlite:///{db}"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env=clean_env(campus.passwords, CAMWATCH_CLOCK=sheet_clock.env_value()))
    assert r.returncode == 0, r.stderr
    cells = [str(c.value) for ws in load_workbook(out) for row in ws.iter_rows()
             for c in row if c.value]
    about = [c for c in cells if "［主機］" in c]  # the camera's host fault, in the remarks
    assert about, cells
    fired_hm = got.fired_at.astimezone(TZ).strftime("%m/%d %H:%M")
    assert any(f"已申請修復 {fired_hm}（CameraUnreachable）" in c for c in about), about
    assert not any("未報修" in c for c in about), about
