"""The pusher against a real Alertmanager binary (Debian `prometheus-alertmanager`)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time

import httpx

from exporters.alerting import AlertEngine
from exporters.alertmanager import AlertmanagerPusher, alert_payload
from exporters.sample import sample_inventory
from probes.result import CheckKind, CheckResult, Finding, FindingCode, Status
from tests.promstack import alertmanager, free_port
from tests.waits import CAP_S, NOT_UNDER_TEST_S

T0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=10)


def disk_fail(i: int) -> CheckResult:
    return CheckResult("nvr1", CheckKind.RECORDING, Status.FAIL, "硬碟 2 故障",
                       T0 + dt.timedelta(minutes=i),
                       findings=(Finding(FindingCode.DISK_FAILED, "硬碟 2 狀態為故障", "2"),))


def rec_ok(i: int) -> CheckResult:
    return CheckResult("nvr1", CheckKind.RECORDING, Status.OK, "ok", T0 + dt.timedelta(minutes=i))


def am_alerts(url: str, **filters: str) -> list[dict]:
    params = [("filter", f'{k}="{v}"') for k, v in filters.items()]
    return httpx.get(f"{url}/api/v2/alerts", params=params, timeout=NOT_UNDER_TEST_S).json()


async def wait_until(cond, timeout: float = CAP_S) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


def test_payload_shape_has_rfc3339_times():
    e = AlertEngine(sample_inventory(), debounce=1)
    e.observe(disk_fail(0))
    now = T0 + dt.timedelta(minutes=1)
    p = alert_payload(e.firing()[0], now=now, valid_for=240)
    assert p["startsAt"] == T0.isoformat().replace("+00:00", "Z")
    assert p["endsAt"] == (now + dt.timedelta(seconds=240)).isoformat().replace("+00:00", "Z")
    assert p["labels"]["alertname"] == "DiskFailed"


async def test_fire_resolve_and_queue_while_alertmanager_is_down():
    saved: list[dict] = []
    with alertmanager() as am:
        engine = AlertEngine(sample_inventory(), debounce=2, recovery=2)
        async with httpx.AsyncClient() as client:
            pusher = AlertmanagerPusher(engine, am.url, client, resend_interval=1.0,
                                        save=saved.append, backoff_initial=0.1,
                                        backoff_max=0.3)
            task = asyncio.create_task(pusher.run())
            try:
                engine.observe(disk_fail(0))
                engine.observe(disk_fail(1))
                await wait_until(lambda: am_alerts(am.url, alertname="DiskFailed"))
                got = am_alerts(am.url, alertname="DiskFailed")[0]
                assert got["labels"]["device"] == "nvr1" and got["labels"]["disk"] == "2"
                summary = got["annotations"]["summary"]
                assert summary == "教學大樓1樓機房 教學大樓1樓主機 硬碟 2 故障"
                assert got["startsAt"].startswith(T0.strftime("%Y-%m-%dT%H:%M:%S"))
                assert saved and saved[-1]["tracks"]  # persisted after the change

                # Alertmanager goes away; the fault clears meanwhile; nothing is lost
                am.stop()
                engine.observe(rec_ok(2))
                engine.observe(rec_ok(3))
                await wait_until(lambda: pusher.failed_attempts >= 2)
                assert engine.unsent_resolved()  # still queued
                am.start()  # same port, same storage
                await wait_until(lambda: not engine.unsent_resolved())
                await wait_until(lambda: not am_alerts(am.url, alertname="DiskFailed"))
                assert pusher.reachable is True
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def test_alert_fired_while_alertmanager_is_down_arrives_when_it_returns():
    with alertmanager() as am:
        am.stop()
        engine = AlertEngine(sample_inventory(), debounce=1)
        async with httpx.AsyncClient() as client:
            pusher = AlertmanagerPusher(engine, am.url, client, resend_interval=60,
                                        backoff_initial=0.1, backoff_max=0.2)
            task = asyncio.create_task(pusher.run())
            try:
                engine.observe(disk_fail(0))
                await wait_until(lambda: pusher.failed_attempts >= 1)
                am.start()
                await wait_until(lambda: am_alerts(am.url, alertname="DiskFailed"))
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def test_restart_resends_the_same_alert_not_a_new_one():
    with alertmanager() as am:
        engine = AlertEngine(sample_inventory(), debounce=1)
        engine.observe(disk_fail(0))
        async with httpx.AsyncClient() as client:
            assert await AlertmanagerPusher(engine, am.url, client).push_once()
            first = am_alerts(am.url, alertname="DiskFailed")
            state = engine.dump()
            # camwatch restarts: a new engine loads the saved state and pushes again
            engine2 = AlertEngine(sample_inventory(), debounce=1)
            engine2.load(state)
            engine2.observe(disk_fail(5))
            assert await AlertmanagerPusher(engine2, am.url, client).push_once()
            again = am_alerts(am.url, alertname="DiskFailed")
        assert len(first) == len(again) == 1
        assert again[0]["fingerprint"] == first[0]["fingerprint"]
        assert again[0]["startsAt"] == first[0]["startsAt"]


async def test_push_to_nothing_listening_fails_quietly():
    engine = AlertEngine(sample_inventory(), debounce=1)
    engine.observe(disk_fail(0))
    async with httpx.AsyncClient() as client:
        pusher = AlertmanagerPusher(engine, f"http://127.0.0.1:{free_port()}", client,
                                    request_timeout=1)
        assert await pusher.push_once() is False
        assert pusher.reachable is False and engine.firing()
