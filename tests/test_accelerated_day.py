"""One simulated day on 20 cameras, the service running (issue 12's bar for the
simulated campus).

The simulator's scene clock runs a day in about five minutes from 07:00: people and cars
cross and stop (on the bare-wall scenes too), a car parks for an hour or two, passers-by
walk right past a lens, lights go off at lunch, the light falls at dusk and the cameras
switch to IR at 18:00 and back at 06:00, a lamp is lit in the evening, a building's
shadow moves with the sun, it rains. `camwatch`'s service (real probes over HTTP, the
real alert engine) checks every picture every few seconds. Picture faults are injected
at set scene times, by day and by night, one camera each, and one lens is blurred from
the start, before any baseline exists. Every injected fault must raise its alert on its
camera, and no other picture alert may fire all day.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from camwatch import clock as camwatch_clock
from camwatch.service import Service, default_alerting
from camwatch.settings import Settings
from exporters.alerting import AlertEvent
from inventory.models import Inventory

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DAY_REAL_S = 300.0  # a simulated day lasts this many real seconds
SPEED = 86400.0 / DAY_REAL_S
START = dt.time(7, 0)
PICTURE_INTERVAL = 2.5  # 12 scene-minutes between samples of a camera
CAMERAS = 20

PICTURE_ALERTS = {"PictureBlurred", "PictureCovered", "PictureDark", "PictureOverexposed",
                  "PictureFrozen", "CameraMoved", "SignalLoss", "CheckFailed"}
EXPECTED = {"blurred": "PictureBlurred", "covered": "PictureCovered", "dark": "PictureDark",
            "overexposed": "PictureOverexposed", "frozen": "PictureFrozen",
            "moved": "CameraMoved", "signal-loss": "SignalLoss"}


@dataclass(frozen=True)
class Injected:
    kind: str
    start_h: float  # scene hours after START
    hours: float
    needs_detail: bool = False  # a blur or a swung view needs a scene with detail
    analog: bool = False


# Scene times (hours after 07:00): day 07:00-18:00, night 18:00-06:00.
SCHEDULE = [
    Injected("blurred", 0.0, 2.0, needs_detail=True),  # before any baseline: one look
    Injected("blurred", 3.0, 1.5, needs_detail=True),  # 10:00, day
    Injected("moved", 4.5, 1.5, needs_detail=True),  # 11:30, day (lights off at lunch)
    Injected("covered", 6.0, 1.5),  # 13:00, day
    Injected("signal-loss", 7.0, 1.5, analog=True),  # 14:00, the recorder's no-video screen
    Injected("overexposed", 8.0, 1.5),  # 15:00, day
    Injected("dark", 13.0, 1.5),  # 20:00, night
    Injected("moved", 15.0, 1.5, needs_detail=True),  # 22:00, night
    Injected("blurred", 17.0, 1.5, needs_detail=True),  # 00:00, night
    Injected("frozen", 19.0, 1.5),  # 02:00, night
    Injected("covered", 21.0, 1.5),  # 04:00, night
]


def choose(inv: Inventory, seeds: dict[str, int]) -> list[tuple[Injected, str]]:
    """One camera per injected fault: the analog ones for signal loss, scenes with
    detail (not the bare walls, seed % 5 == 0) for blur and a swung view."""
    cams = sorted(inv.cameras)
    analog = [c for c in cams if inv.cameras[c].address is None]
    detailed = [c for c in cams if seeds[c] % 5 != 0 and inv.cameras[c].address is not None]
    others = [c for c in cams if c not in analog]
    used: set[str] = set()
    out = []
    for f in SCHEDULE:
        pool = analog if f.analog else detailed if f.needs_detail else others
        cam = next(c for c in [*pool, *others] if c not in used)
        used.add(cam)
        out.append((f, cam))
    return out


async def test_a_simulated_day_raises_every_injected_picture_fault_and_nothing_else(
    tmp_path: Path,
) -> None:
    from simulator.testing import SimulatedCampus, small_campus

    campus = small_campus(tmp_path, cameras=CAMERAS, recorders=4)
    inv = campus.inventory
    assert len(inv.cameras) == CAMERAS
    events: list[AlertEvent] = []

    def alerting(settings: Settings, inventory: Inventory, store: Any, saved: Any) -> Any:
        a = default_alerting(settings, inventory, store, saved)
        a.engine.listeners.append(events.append)  # type: ignore[attr-defined]
        return a

    settings = Settings(
        listen="127.0.0.1:0", store_url=f"sqlite:///{tmp_path / 'log.db'}",
        picture_interval=PICTURE_INTERVAL, host_interval=3600.0, recording_interval=3600.0,
        timeout=8.0, retries=0, jitter=0.1, alert_debounce=2, alert_recovery=2,
    )
    async with SimulatedCampus(inv, campus.passwords, scene_time=START,
                               scene_speed=SPEED) as sim:
        clock = sim.scene_clock
        assert clock is not None and clock.started is not None
        seeds = {c: sim.device(c).scene_seed for c in inv.cameras}
        plan = choose(inv, seeds)
        begun = clock.started  # monotonic time of scene 07:00
        # camwatch's clock (the alerts' times) against the monotonic one
        offset = camwatch_clock.now().timestamp() - time.monotonic()

        def real(hours: float) -> float:
            return begun + hours * 3600.0 / SPEED

        windows: dict[str, tuple[str, float, float]] = {}  # camera -> kind, start, end
        for f, cam in plan:
            windows[cam] = (f.kind, real(f.start_h), real(f.start_h + f.hours))

        async def inject(f: Injected, cam: str) -> None:
            await asyncio.sleep(max(0.0, real(f.start_h) - time.monotonic()))
            await sim.fault(cam, f.kind)
            await asyncio.sleep(max(0.0, real(f.start_h + f.hours) - time.monotonic()))
            await sim.clear(cam)

        # the lens blurred before the service starts: nothing learned yet
        first = [(f, cam) for f, cam in plan if f.start_h == 0.0]
        for f, cam in first:
            await sim.fault(cam, f.kind)
        service = Service(settings, inv, alerting_factory=alerting)
        await service.start()
        seen: dict[float, list[str]] = {}
        try:
            tasks = [asyncio.create_task(inject(f, cam)) for f, cam in plan if f.start_h > 0]
            for f, cam in first:
                tasks.append(asyncio.create_task(_clear_at(sim, cam, real(f.hours))))
            end = real(24.0)
            while time.monotonic() < end:
                await asyncio.sleep(5.0)
                seen[time.monotonic()] = [a.labels["alertname"] for a in
                                          service.alerting.firing()]  # type: ignore[union-attr]
            await asyncio.gather(*tasks)
        finally:
            await service.stop()

    fired = [e for e in events if e.kind == "fired" and e.alertname in PICTURE_ALERTS]
    # every injected fault raised its alert on its camera, within its window
    late = 3 * PICTURE_INTERVAL + settings.timeout  # the second failing sample, under load
    for f, cam in plan:
        kind, t0, t1 = windows[cam]
        wanted = EXPECTED[kind]
        hits = [e for e in fired if e.device == cam and e.alertname == wanted
                and t0 - 1.0 <= e.at.timestamp() - offset <= t1 + late]
        assert hits, (f"{kind} on {cam} at scene +{f.start_h} h raised no {wanted}",
                      [(e.alertname, e.device) for e in fired])
    # and nothing else: no picture alert on a camera without a fault, none of another kind
    false = [(e.alertname, e.device, e.alert.annotations.get("description", ""))
             for e in fired
             if e.device not in windows or e.alertname != EXPECTED[windows[e.device][0]]]
    assert not false, false
    assert seen  # the service ran through the day


async def _clear_at(sim: Any, cam: str, at: float) -> None:
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    await sim.clear(cam)
