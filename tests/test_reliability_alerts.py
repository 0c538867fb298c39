"""Issue 14, defects 5 and 6, end to end: `camwatch run` (a real process, real probes,
real store) against the simulated campus, pushing to a real Alertmanager with the
project's own alerts/alertmanager.yml (receivers emptied).

5. One offline camera is one alert (CameraUnreachable), not three: the channel's
   RecordingStopped is held back by the camera's own alert, and the recorder's
   「第 N 路錄影異常」 raises no CheckFailed. Alertmanager's inhibit rules say the same.
6. A camera that is down every other check (debounce never reached) raises
   DeviceFlapping 「設備不穩定」, and it resolves once the camera is steady.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from camwatch.commands.demo import ALERTS_DIR, demo_alertmanager_config
from camwatch.store import Store
from probes.api import planned_checks
from tests.promstack import Alertmanager, alertmanager
from tests.servicerun import CamwatchProcess, clean_env, eventually, sample
from tests.waits import CAP_S

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def am_config() -> str:
    return yaml.safe_dump(demo_alertmanager_config(ALERTS_DIR / "alertmanager.yml"),
                          allow_unicode=True)


def service_env(tmp_path: Path, passwords: dict[str, str], am: Alertmanager,
                **extra: str) -> dict[str, str]:
    return clean_env(passwords, {
        "CAMWATCH_STORE_URL": f"sqlite:///{tmp_path / 'log.db'}",
        "CAMWATCH_ALERTMANAGER_URL": am.url,
        "CAMWATCH_HOST_INTERVAL": "1.5", "CAMWATCH_RECORDING_INTERVAL": "1.5",
        "CAMWATCH_PICTURE_INTERVAL": "3", "CAMWATCH_TIMEOUT": "5", "CAMWATCH_RETRIES": "0",
        "CAMWATCH_ALERT_DEBOUNCE": "2", "CAMWATCH_ALERT_RECOVERY": "2",
        "CAMWATCH_ALERT_RESEND_INTERVAL": "2",
    }, **extra)


async def am_alerts(am: Alertmanager, **labels: str) -> list[dict[str, Any]]:
    return await am.aalerts(**labels)


def names(alerts: list[dict[str, Any]], state: str | None = None) -> list[str]:
    return sorted(a["labels"]["alertname"] for a in alerts
                  if state is None or a["status"]["state"] == state)


def fired_in_log(db: Path, devices: set[str]) -> list[tuple[str, str]]:
    with Store.open(f"sqlite:///{db}", migrate=False) as store:
        return sorted((a.alertname, a.device) for a in store.alert_history(devices))


async def test_one_offline_camera_is_one_alert_in_alertmanager_and_the_log(
    tmp_path: Path,
) -> None:
    from simulator.testing import SimulatedCampus, small_campus

    campus = small_campus(tmp_path, cameras=8, recorders=4, set_env=False)
    inv = campus.inventory
    cam = campus.ip_camera("hikvision")
    rec = inv.cameras[cam].recorder
    assert campus.path is not None
    with alertmanager(am_config()) as am:
        async with SimulatedCampus(inv, campus.passwords) as sim:
            env = service_env(tmp_path, campus.passwords, am)
            async with CamwatchProcess(campus.path, env, tmp_path) as cw:
                await cw.wait_checked(len(planned_checks(inv)))
                await sim.fault(cam, "offline")

                async def unreachable() -> list[dict[str, Any]]:
                    return [a for a in await am_alerts(am, device=cam)
                            if a["labels"]["alertname"] == "CameraUnreachable"
                            and a["status"]["state"] == "active"]

                await eventually(unreachable, 60, "CameraUnreachable active in Alertmanager")

                # the consequences are real: the channel has stopped recording ...
                async def channel_failing() -> bool:
                    got = await cw.metric("camwatch_check_ok", device=cam, check="recording")
                    return list(got.values()) == [0.0]

                await eventually(channel_failing, 60, "the camera's channel failing")
                # ... for several recording checks of its recorder, past the debounce
                t = await cw.check_time(rec, "recording")
                for _ in range(3):
                    t = await cw.next_result(rec, "recording", t)
                await cw.next_result(cam, "host", await cw.check_time(cam, "host"))

                # one alert: nothing about the channel, nothing about the recorder
                assert names(await am_alerts(am, device=cam)) == ["CameraUnreachable"]
                assert names(await am_alerts(am, device=rec)) == []
                page = (await cw.get("/")).text
                assert "CameraUnreachable" in page
                assert "RecordingStopped" not in page and "CheckFailed" not in page
                db = tmp_path / "log.db"
                logged = await eventually(
                    lambda: _async(fired_in_log, db, {cam, rec}), 30,
                    "the repair request in the inspection log")
                assert logged == [("CameraUnreachable", cam)]

                # back online: the alert resolves and no consequence fires late
                await sim.clear(cam)

                async def resolved() -> bool:
                    return not await unreachable()

                await eventually(resolved, 60, "CameraUnreachable resolved")
                t = await cw.check_time(rec, "recording")
                for _ in range(2):
                    t = await cw.next_result(rec, "recording", t)
                assert names(await am_alerts(am, device=cam), "active") == []
                assert fired_in_log(db, {cam, rec}) == [("CameraUnreachable", cam)]


async def _async(fn: Any, *args: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(fn, *args)


def test_alertmanager_inhibits_the_channel_consequences_of_an_unreachable_camera(
    tmp_path: Path,
) -> None:
    """The same rule on Alertmanager's side: the project's config, a real Alertmanager,
    alerts posted as a sender would."""
    now = dt.datetime.now(dt.UTC)

    def alert(name: str, device: str, recorder: str = "nvr-main") -> dict[str, Any]:
        return {"labels": {"alertname": name, "device": device, "recorder": recorder,
                           "unit": "xuean", "severity": "warning"},
                "annotations": {"summary": "x"}, "startsAt": now.isoformat(),
                "endsAt": (now + dt.timedelta(minutes=5)).isoformat()}

    with alertmanager(am_config()) as am:
        am.post_alerts([
            alert("CameraUnreachable", "cam-05"),
            alert("RecordingStopped", "cam-05"),
            alert("CheckFailed", "cam-05"),
            alert("PictureFrozen", "cam-05"),
            alert("RecordingStopped", "cam-06"),  # another camera: its own fault
            alert("SignalLoss", "cam-07"),
            alert("RecordingGap", "cam-07"),
        ])
        deadline = time.monotonic() + CAP_S  # Alertmanager evaluates inhibition soon
        while True:
            got = {(a["labels"]["alertname"], a["labels"]["device"]): a["status"]
                   for a in am.alerts()}
            if len(got) == 7 and got[("RecordingStopped", "cam-05")]["state"] == "suppressed":
                break
            assert time.monotonic() < deadline, got
            time.sleep(0.2)
        state = {k: v["state"] for k, v in got.items()}
        assert state == {
            ("CameraUnreachable", "cam-05"): "active",
            ("RecordingStopped", "cam-05"): "suppressed",
            ("CheckFailed", "cam-05"): "suppressed",
            ("PictureFrozen", "cam-05"): "suppressed",
            ("RecordingStopped", "cam-06"): "active",
            ("SignalLoss", "cam-07"): "active",
            ("RecordingGap", "cam-07"): "suppressed",
        }


async def test_a_camera_down_every_other_check_raises_device_flapping(tmp_path: Path) -> None:
    """Offline for one host check, back for the next, again and again: never two
    failures in a row, so debounce never fires; flap detection does."""
    from simulator.testing import SimulatedCampus, small_campus

    campus = small_campus(tmp_path, cameras=4, recorders=2, set_env=False)
    inv = campus.inventory
    cam = campus.ip_camera("hikvision")
    assert campus.path is not None
    with alertmanager(am_config()) as am:
        async with SimulatedCampus(inv, campus.passwords) as sim:
            # recording and picture checks rarely, so the host check is what flaps; a
            # debounce of 3 leaves room for one result missed under load
            env = service_env(tmp_path, campus.passwords, am, CAMWATCH_HOST_INTERVAL="1",
                              CAMWATCH_RECORDING_INTERVAL="60",
                              CAMWATCH_PICTURE_INTERVAL="60", CAMWATCH_ALERT_DEBOUNCE="3")
            async with CamwatchProcess(campus.path, env, tmp_path) as cw:
                await cw.next_result(cam, "host", None, timeout=90)

                async def result_with(ok: float, after: float) -> float:
                    async def seen() -> float | None:
                        text = await cw.metrics()
                        t = sample(text, "camwatch_check_timestamp_seconds", device=cam,
                                   check="host")
                        v = sample(text, "camwatch_check_ok", device=cam, check="host")
                        return t if t is not None and t > after and v == ok else None

                    value: float = await eventually(seen, 60, f"host result ok={ok}",
                                                    every=0.05)
                    return value

                t = await cw.check_time(cam, "host") or 0.0
                for _ in range(3):  # F O F O F O: five changes within ten checks
                    await sim.fault(cam, "offline")
                    t = await result_with(0.0, t)
                    await sim.clear(cam)
                    t = await result_with(1.0, t)

                async def flapping(state: str = "active") -> list[dict[str, Any]]:
                    return [a for a in await am_alerts(am, device=cam)
                            if a["labels"]["alertname"] == "DeviceFlapping"
                            and a["status"]["state"] == state]

                got = await eventually(flapping, 60, "DeviceFlapping active in Alertmanager")
                alert = got[0]
                assert alert["labels"]["check"] == "host"
                assert "設備不穩定" in alert["annotations"]["summary"]
                assert alert["annotations"]["runbook"] == "alerts/RUNBOOK.md#deviceflapping"

                # steady again: it resolves by itself
                async def gone() -> bool:
                    return not await flapping()

                await eventually(gone, 90, "DeviceFlapping resolved after the camera is steady")
                logged = fired_in_log(tmp_path / "log.db", {cam})
                assert ("DeviceFlapping", cam) in logged
