"""Issue 14, defect 3, end to end: SIGHUP and POST /admin/reload re-read inventory and
settings of a running `camwatch run` (a real process) instead of killing it.

- a valid new inventory takes effect (a camera added is probed, one removed is gone)
  and the devices that did not change keep their state (status since, a firing alert
  with its startsAt);
- an invalid one is refused whole: the process keeps running the previous inventory,
  camwatch_inventory_last_reload_success is 0 and the landing page says what is wrong;
- settings are read again too (a new token opens /admin), and a setting only a restart
  can change is said as a warning.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
import yaml

from probes.api import planned_checks
from tests.promstack import alertmanager
from tests.servicerun import CamwatchProcess, clean_env, eventually, sample

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def write_settings(path: Path, token: str, **extra: Any) -> None:
    doc = {"http_token": token, "host_interval": 1, "recording_interval": 2,
           "picture_interval": 2, "timeout": 5, "retries": 0, "alert_debounce": 2,
           "alert_resend_interval": 2, **extra}
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")


async def test_sighup_and_admin_reload_apply_a_valid_inventory_and_refuse_a_broken_one(
    tmp_path: Path,
) -> None:
    from simulator.testing import SimulatedCampus, small_campus

    campus = small_campus(tmp_path, cameras=4, recorders=2, set_env=False)
    inv = campus.inventory
    assert campus.path is not None
    full = yaml.safe_load(campus.path.read_text(encoding="utf-8"))
    added, removed = "cam-0004", "cam-0001"
    keeper = campus.recorder("hikvision")  # unchanged, with a disk alert firing
    start_doc = {**full, "cameras": [c for c in full["cameras"] if c["id"] != added]}
    inv_path = tmp_path / "campus.yaml"
    inv_path.write_text(yaml.safe_dump(start_doc, allow_unicode=True), encoding="utf-8")
    settings_path = tmp_path / "settings.yaml"
    write_settings(settings_path, "old-token")

    with alertmanager() as am:
        env = clean_env(campus.passwords, CAMWATCH_STORE_URL=f"sqlite:///{tmp_path / 'l.db'}",
                        CAMWATCH_ALERTMANAGER_URL=am.url)
        async with SimulatedCampus(inv, campus.passwords) as sim:
            cw = CamwatchProcess(inv_path, env, tmp_path, args=("--settings", str(settings_path)))
            async with cw:
                planned = len(planned_checks(inv)) - 2  # cam-0004: host and picture
                await cw.wait_checked(planned)
                await sim.fault(keeper, "disk-failed", 1)

                async def disk_alert() -> list[dict[str, Any]]:
                    return [a for a in await am.aalerts(device=keeper)
                            if a["labels"]["alertname"] == "DiskFailed"
                            and a["status"]["state"] == "active"]

                before = (await eventually(disk_alert, 60, "DiskFailed firing"))[0]
                since = await cw.metric("camwatch_check_status_since_timestamp_seconds",
                                        device=keeper, check="host")
                assert since
                t0 = sample(await cw.metrics(),
                            "camwatch_inventory_last_reload_success_timestamp_seconds")

                # -- a valid change by SIGHUP: one camera in, one out
                new_doc = {**full, "cameras": [c for c in full["cameras"] if c["id"] != removed]}
                inv_path.write_text(yaml.safe_dump(new_doc, allow_unicode=True), "utf-8")
                write_settings(settings_path, "new-token", concurrency=7)
                cw.send(signal.SIGHUP)

                async def reloaded() -> bool:
                    text = await cw.metrics()
                    t = sample(text, "camwatch_inventory_last_reload_success_timestamp_seconds")
                    return bool(t and t0 and t > t0)

                await eventually(reloaded, 30, "a successful reload after SIGHUP")
                cw.assert_running()
                await cw.next_result(added, "host", None)  # the new camera is probed
                text = await cw.metrics()
                assert sample(text, "camwatch_inventory_last_reload_success") == 1.0
                assert sample(text, "camwatch_device_info", device=added) == 1.0
                assert sample(text, "camwatch_device_info", device=removed) is None
                assert sample(text, "camwatch_check_ok", device=removed, check="host") is None
                # the unchanged recorder kept its state, and its alert is the same alert
                assert await cw.metric("camwatch_check_status_since_timestamp_seconds",
                                       device=keeper, check="host") == since
                after = await disk_alert()
                assert [a["startsAt"] for a in after] == [before["startsAt"]]
                # settings were read again: the new token opens /admin, the old one not
                old = await cw.post("/admin/reload",
                                    headers={"Authorization": "Bearer old-token"})
                assert old.status_code == 401
                page = (await cw.get("/")).text
                assert "concurrency changed: takes effect at the next restart" in page

                # -- a broken change by POST /admin/reload: refused, the old one runs on
                broken = {**new_doc, "recorders": [dict(r) for r in new_doc["recorders"]]}
                broken["recorders"][0]["address"] = {**broken["recorders"][0]["address"],
                                                     "host": "999.1.1.1"}
                inv_path.write_text(yaml.safe_dump(broken, allow_unicode=True), "utf-8")
                r = await cw.post("/admin/reload", headers={"Authorization": "Bearer new-token"})
                assert r.status_code == 422, r.text
                body = r.json()
                assert body["ok"] is False
                assert any(str(inv_path) in e and "999.1.1.1" in e for e in body["errors"])
                unauth = await cw.post("/admin/reload")
                assert unauth.status_code in (401, 403)
                text = await cw.metrics()
                assert sample(text, "camwatch_inventory_last_reload_success") == 0.0
                page = (await cw.get("/")).text
                assert "清冊或設定重新載入失敗" in page and "999.1.1.1" in page
                # SIGHUP with the broken file: refused again, and nothing dies
                cw.send(signal.SIGHUP)
                t = await cw.check_time(added, "host")
                await cw.next_result(added, "host", t)  # still probing the last good one
                cw.assert_running()
                assert "reload refused" in cw.log()

                # -- fixed: accepted again
                inv_path.write_text(yaml.safe_dump(new_doc, allow_unicode=True), "utf-8")
                ok = await cw.post("/admin/reload", headers={"Authorization": "Bearer new-token"})
                assert ok.status_code == 200 and ok.json()["ok"] is True
                assert sample(await cw.metrics(), "camwatch_inventory_last_reload_success") == 1.0
                assert "清冊或設定重新載入失敗" not in (await cw.get("/")).text
