"""End to end: the simulated campus, the camwatch service (real probes, real store) and
real Prometheus and Alertmanager binaries. Faults are injected in the simulator and the
answers are read from Alertmanager's own API (GET /api/v2/alerts)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from camwatch.commands.demo import ALERTS_DIR, demo_alertmanager_config
from camwatch.service import Service
from camwatch.settings import Settings
from inventory.models import CameraKind
from tests.promstack import Alertmanager, alertmanager, prometheus

pytestmark = [pytest.mark.slow, pytest.mark.timeout(170)]

INTERVAL = 2.0  # seconds between checks of each kind in these tests


@dataclass
class Stack:
    campus: Any  # simulator.testing.SmallCampus
    sim: Any  # simulator.testing.SimulatedCampus
    am: Alertmanager
    settings: Settings
    service: Service

    async def restart_service(self) -> None:
        await self.service.stop()
        self.service = Service(self.settings, self.campus.inventory)
        await self.service.start()


def am_config() -> str:
    return yaml.safe_dump(demo_alertmanager_config(ALERTS_DIR / "alertmanager.yml"),
                          allow_unicode=True)


def e2e_settings(tmp_path: Path, am_url: str) -> Settings:
    return Settings(
        listen="127.0.0.1:0",
        store_url=f"sqlite:///{tmp_path / 'log.db'}",
        alertmanager_url=am_url,
        host_interval=INTERVAL, recording_interval=INTERVAL, picture_interval=INTERVAL,
        timeout=8.0, retries=0, jitter=0.1,
        alert_debounce=2, alert_recovery=2, alert_resend_interval=2.0,
    )


async def eventually(fn: Callable[[], Any], timeout: float, what: str,
                     every: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(fn)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(every)


def active(am: Alertmanager, **labels: str) -> list[dict[str, Any]]:
    return [a for a in am.alerts(**labels) if a["status"]["state"] == "active"]


async def wait_first_cycle(service: Service, timeout: float = 30.0) -> None:
    """Every planned check has answered once (baselines start learning, ONVIF is warm)."""
    assert service.scheduler is not None
    plan = service.scheduler.plan

    def done() -> bool:
        return all(service.state.get(d, c) is not None for c, d in plan)

    await eventually(done, timeout, "first probe cycle")


@contextlib.asynccontextmanager
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    from simulator.testing import SimulatedCampus, small_campus

    campus = small_campus(tmp_path, cameras=8, recorders=4)
    with alertmanager(am_config()) as am:
        async with SimulatedCampus(campus.inventory) as sim:
            settings = e2e_settings(tmp_path, am.url)
            service = Service(settings, campus.inventory)
            await service.start()
            st = Stack(campus, sim, am, settings, service)
            try:
                yield st
            finally:
                await st.service.stop()


async def test_disk_fault_fires_disk_failed_and_resolves(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        rec = st.campus.recorder("hikvision")
        target = f"127.0.0.1:{st.service.http.port}"
        with prometheus([target], interval="1s") as prom:
            await wait_first_cycle(st.service)
            assert not active(st.am, alertname="DiskFailed")

            await st.sim.fault(rec, "disk-failed", 1)
            t0 = time.monotonic()
            fired = await eventually(lambda: active(st.am, alertname="DiskFailed", device=rec),
                                     2 * INTERVAL + 6, "DiskFailed firing")
            took = time.monotonic() - t0
            alert = fired[0]
            assert alert["labels"]["recorder"] == rec
            assert alert["labels"]["severity"] in ("critical", "warning")
            assert alert["annotations"]["summary"]  # zh-TW text naming the place
            # Prometheus scraped the same answer from /metrics
            await eventually(
                lambda: prom.query(f'camwatch_check_ok{{device="{rec}",check="recording"}} == 0'),
                10, "Prometheus sees the recording check failing")

            await st.sim.clear(rec)
            await eventually(lambda: not active(st.am, alertname="DiskFailed", device=rec),
                             3 * INTERVAL + 8, "DiskFailed resolved")
        print(f"DiskFailed fired {took:.1f} s after the fault (interval {INTERVAL} s)")


async def test_recorder_down_inhibits_its_cameras_alerts(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        inv = st.campus.inventory
        rec = st.campus.recorder("hikvision")
        cams = [c.id for c in inv.cameras_of(rec)
                if c.kind == CameraKind.IP and c.address is not None]
        assert cams, "the small campus gives the hikvision NVR IP cameras"
        await wait_first_cycle(st.service)
        # the machine room's switch dies: the recorder and its camera are both unreachable
        await st.sim.fault(rec, "offline")
        await st.sim.fault(cams[0], "offline")
        await eventually(lambda: active(st.am, alertname="RecorderDown", device=rec),
                         2 * INTERVAL + 8, "RecorderDown firing")

        # the camera's own alert is due but held back by its recorder's: one repair,
        # one alert (Alertmanager's inhibit rule says the same: tests/test_alerts_config)
        alerting = st.service.alerting
        assert alerting is not None
        engine = alerting.engine  # type: ignore[attr-defined]

        def camera_held() -> list[tuple[dict[str, str], str]]:
            return [h for h in engine.held() if h[0]["device"] == cams[0]]

        held = await eventually(camera_held, 2 * INTERVAL + 8,
                                "camera alert held back by RecorderDown")
        assert held[0][0]["recorder"] == rec and held[0][1].startswith("RecorderDown|")
        await asyncio.sleep(2 * st.settings.alert_resend_interval)  # pushes went out
        assert st.am.alerts(device=cams[0]) == []  # nothing of the camera goes out
        assert active(st.am, alertname="RecorderDown", device=rec)


async def test_no_alert_is_lost_while_alertmanager_is_down(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        rec = st.campus.recorder("hikvision")
        await wait_first_cycle(st.service)
        st.am.stop()
        await st.sim.fault(rec, "disk-failed", 1)
        alerting = st.service.alerting
        assert alerting is not None
        await eventually(lambda: any(a.alertname == "DiskFailed" for a in alerting.firing()),
                         2 * INTERVAL + 8, "engine fires DiskFailed")
        await asyncio.sleep(3)  # the pusher fails and backs off meanwhile
        await asyncio.to_thread(st.am.start)  # same port, same storage
        fired = await eventually(lambda: active(st.am, alertname="DiskFailed", device=rec),
                                 40, "queued DiskFailed delivered after Alertmanager returns")
        assert fired


async def test_camwatch_restart_keeps_active_alerts_as_the_same_alert(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        rec = st.campus.recorder("hikvision")
        await wait_first_cycle(st.service)
        await st.sim.fault(rec, "disk-failed", 1)
        before = await eventually(lambda: active(st.am, alertname="DiskFailed", device=rec),
                                  2 * INTERVAL + 8, "DiskFailed firing")
        starts_at = before[0]["startsAt"]
        fingerprint = before[0]["fingerprint"]

        await st.restart_service()
        assert st.service.alerting is not None
        assert any(a.alertname == "DiskFailed" for a in st.service.alerting.firing())
        sent_before = st.service.alerting.pusher.sent_batches  # type: ignore[attr-defined]
        await eventually(
            lambda: st.service.alerting.pusher.sent_batches > sent_before + 1,  # type: ignore[union-attr]
            15, "the restarted service re-sends")
        after = active(st.am, alertname="DiskFailed", device=rec)
        assert len(after) == 1
        assert after[0]["startsAt"] == starts_at
        assert after[0]["fingerprint"] == fingerprint
