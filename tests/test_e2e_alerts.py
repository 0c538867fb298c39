"""End to end: the simulated campus, the camwatch service (real probes, real store) and
real Prometheus and Alertmanager binaries. Faults are injected in the simulator and the
answers are read from Alertmanager's own API (GET /api/v2/alerts).

The waits count what the service does, not seconds (tests/waits.py): an alert fires by
the recording result that completes its debounce, reaches Alertmanager by the next
successful pushes, and Prometheus shows a result by the next scrapes. A loaded CI
machine makes each of those later, never fewer.
"""

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
from probes.result import CheckKind
from tests.promstack import Alertmanager, Prometheus, alertmanager, prometheus
from tests.waits import Results, eventually, within

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

INTERVAL = 2.0  # seconds between checks of each kind in these tests
DEBOUNCE = RECOVERY = 2  # results in a row that fire / resolve an alert
# A result in flight when a fault is injected (or cleared) may have read the device
# before it: the alert fires (resolves) by the result after the debounce (recovery).
FIRES_BY = DEBOUNCE + 1
RESOLVES_BY = RECOVERY + 1
# Pushes after an event until Alertmanager has it: one may have been under way with
# the payload from before the event.
PUSHES = 2


@dataclass
class Stack:
    campus: Any  # simulator.testing.SmallCampus
    sim: Any  # simulator.testing.SimulatedCampus
    am: Alertmanager
    settings: Settings
    service: Service
    results: Results

    async def restart_service(self) -> None:
        await self.service.stop()
        self.service = Service(self.settings, self.campus.inventory,
                               extra_sinks=[self.results])
        await self.service.start()

    def pushed(self) -> int:
        """Batches Alertmanager accepted from the running service."""
        assert self.service.alerting is not None
        return int(self.service.alerting.pusher.sent_batches)  # type: ignore[attr-defined]

    async def fired(self, alertname: str, device: str, check: CheckKind) -> None:
        """The engine fires `alertname` by the result of `check` on `device` that
        completes the debounce."""
        alerting = self.service.alerting
        assert alerting is not None
        await within(lambda: any(a.alertname == alertname and a.labels["device"] == device
                                 for a in alerting.firing()),
                     f"engine fires {alertname}", count=self.results.counter(device, check),
                     n=FIRES_BY, unit=f"{check.value} results of {device}")

    async def in_alertmanager(self, **labels: str) -> list[dict[str, Any]]:
        """Active in Alertmanager by the next pushes (the engine has it already)."""
        found: list[dict[str, Any]] = await within(
            lambda: active(self.am, **labels), f"{labels} active in Alertmanager",
            count=self.pushed, n=PUSHES, unit="pushes to Alertmanager")
        return found


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
        alert_debounce=DEBOUNCE, alert_recovery=RECOVERY, alert_resend_interval=2.0,
    )


def active(am: Alertmanager, **labels: str) -> list[dict[str, Any]]:
    return [a for a in am.alerts(**labels) if a["status"]["state"] == "active"]


async def wait_first_cycle(service: Service) -> None:
    """Every planned check has answered once (baselines start learning, ONVIF is warm)."""
    assert service.scheduler is not None
    plan = service.scheduler.plan

    def done() -> bool:
        return all(service.state.get(d, c) is not None for c, d in plan)

    await eventually(done, "first probe cycle")


def scraped_after(prom: Prometheus, t: float) -> Callable[[], bool]:
    """Prometheus has ingested a scrape of camwatch that began after `t` (Unix time)."""
    def check() -> bool:
        got = prom.query('timestamp(up{job="camwatch"} == 1)')
        return bool(got) and float(got[0]["value"][1]) > t
    return check


@contextlib.asynccontextmanager
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    from simulator.testing import SimulatedCampus, small_campus

    campus = small_campus(tmp_path, cameras=8, recorders=4)
    with alertmanager(am_config()) as am:
        async with SimulatedCampus(campus.inventory) as sim:
            settings = e2e_settings(tmp_path, am.url)
            results = Results()
            service = Service(settings, campus.inventory, extra_sinks=[results])
            await service.start()
            st = Stack(campus, sim, am, settings, service, results)
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
            await st.fired("DiskFailed", rec, CheckKind.RECORDING)
            failing_since = time.time()
            fired = await st.in_alertmanager(alertname="DiskFailed", device=rec)
            took = time.monotonic() - t0
            alert = fired[0]
            assert alert["labels"]["recorder"] == rec
            assert alert["labels"]["severity"] in ("critical", "warning")
            assert alert["annotations"]["summary"]  # zh-TW text naming the place
            # Prometheus scraped the same answer from /metrics: the first scrape that
            # began after the engine fired shows it
            await eventually(scraped_after(prom, failing_since),
                             "Prometheus scrapes camwatch after the fault")
            assert prom.query(f'camwatch_check_ok{{device="{rec}",check="recording"}} == 0')

            await st.sim.clear(rec)
            alerting = st.service.alerting
            assert alerting is not None
            await within(lambda: not any(a.alertname == "DiskFailed" for a in alerting.firing()),
                         "engine resolves DiskFailed",
                         count=st.results.counter(rec, CheckKind.RECORDING), n=RESOLVES_BY,
                         unit=f"recording results of {rec}")
            await within(lambda: not active(st.am, alertname="DiskFailed", device=rec),
                         "DiskFailed resolved in Alertmanager", count=st.pushed, n=PUSHES,
                         unit="pushes to Alertmanager")
        print(f"DiskFailed in Alertmanager {took:.1f} s after the fault (interval {INTERVAL} s)")


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
        await st.fired("RecorderDown", rec, CheckKind.HOST)
        await st.in_alertmanager(alertname="RecorderDown", device=rec)

        # the camera's own alert is due but held back by its recorder's: one repair,
        # one alert (Alertmanager's inhibit rule says the same: tests/test_alerts_config)
        alerting = st.service.alerting
        assert alerting is not None
        engine = alerting.engine  # type: ignore[attr-defined]

        def camera_held() -> list[tuple[dict[str, str], str]]:
            return [h for h in engine.held() if h[0]["device"] == cams[0]]

        held = await within(camera_held, "camera alert held back by RecorderDown",
                            count=st.results.counter(cams[0], CheckKind.HOST), n=FIRES_BY,
                            unit=f"host results of {cams[0]}")
        assert held[0][0]["recorder"] == rec and held[0][1].startswith("RecorderDown|")
        # pushes went out since: nothing of the camera among them
        pushed = st.pushed()
        await eventually(lambda: st.pushed() >= pushed + PUSHES, "two more pushes")
        assert st.am.alerts(device=cams[0]) == []
        assert active(st.am, alertname="RecorderDown", device=rec)


async def test_no_alert_is_lost_while_alertmanager_is_down(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        rec = st.campus.recorder("hikvision")
        await wait_first_cycle(st.service)
        st.am.stop()
        await st.sim.fault(rec, "disk-failed", 1)
        await st.fired("DiskFailed", rec, CheckKind.RECORDING)
        pusher = st.service.alerting.pusher  # type: ignore[union-attr]
        failed = pusher.failed_attempts
        # the pusher tries, fails and backs off meanwhile
        await eventually(lambda: pusher.failed_attempts >= failed + 2,
                         "the pusher fails against the stopped Alertmanager")
        assert pusher.engine.firing()  # still queued
        await asyncio.to_thread(st.am.start)  # same port, same storage
        fired = await st.in_alertmanager(alertname="DiskFailed", device=rec)
        assert fired


async def test_camwatch_restart_keeps_active_alerts_as_the_same_alert(tmp_path: Path) -> None:
    async with stack(tmp_path) as st:
        rec = st.campus.recorder("hikvision")
        await wait_first_cycle(st.service)
        await st.sim.fault(rec, "disk-failed", 1)
        await st.fired("DiskFailed", rec, CheckKind.RECORDING)
        before = await st.in_alertmanager(alertname="DiskFailed", device=rec)
        starts_at = before[0]["startsAt"]
        fingerprint = before[0]["fingerprint"]

        await st.restart_service()
        assert st.service.alerting is not None
        assert any(a.alertname == "DiskFailed" for a in st.service.alerting.firing())
        sent_before = st.pushed()
        await eventually(lambda: st.pushed() > sent_before + 1, "the restarted service re-sends")
        after = active(st.am, alertname="DiskFailed", device=rec)
        assert len(after) == 1
        assert after[0]["startsAt"] == starts_at
        assert after[0]["fingerprint"] == fingerprint
