"""The host and recording checks against the simulated campus (real SOAP / ISAPI / Dahua
CGI over loopback, onvif-zeep-async as the ONVIF client): a healthy device is ok, and
every fault kind gives the right check the right status and finding.

small_campus(): nvr-001 Hikvision (ONVIF + ISAPI), nvr-002 Dahua (ONVIF + CGI), nvr-003
generic ONVIF, dvr-004 Hikvision DVR with analog cameras.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from camwatch.clock import now as clock_now
from camwatch.secrets import SecretStore
from probes.api import ProbeConfig, ProbeContext
from probes.drivers.onvif import prepare as onvif_prepare
from probes.host import probe_host
from probes.recording import probe_recording
from probes.result import CheckResult, FindingCode, Status
from tests.waits import LATE_S, NOT_UNDER_TEST_S

testing = pytest.importorskip("simulator.testing", reason="the simulator is not present")


@dataclass
class Sim:
    campus: object
    sim: object
    ctx: ProbeContext

    async def fault(self, device: str, kind: str, severity: float | None = None) -> None:
        await self.sim.fault(device, kind, severity)  # type: ignore[attr-defined]

    def recorder(self, vendor: str) -> str:
        return self.campus.recorder(vendor)  # type: ignore[attr-defined, no-any-return]


@pytest.fixture
async def world(tmp_path: object) -> AsyncIterator[Sim]:
    await onvif_prepare()  # WSDLs parsed before any timing (the checks do this too)
    campus = testing.small_campus(None)
    async with testing.SimulatedCampus(campus.inventory, campus.passwords) as sim:
        ctx = ProbeContext(campus.inventory, SecretStore(), ProbeConfig(timeout=NOT_UNDER_TEST_S),
                           now=clock_now)
        yield Sim(campus, sim, ctx)


def by_device(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.device: r for r in results}


def codes(r: CheckResult) -> set[FindingCode]:
    return {f.code for f in r.findings}


RECORDERS = ["hikvision", "dahua", "generic"]


@pytest.mark.parametrize("vendor", RECORDERS)
async def test_healthy_recorder_is_ok_on_host_and_recording(world: Sim, vendor: str) -> None:
    rec = world.recorder(vendor)
    host = by_device(await probe_host(rec, world.ctx))
    assert host[rec].status == Status.OK, host[rec].reason
    assert host[rec].values.model
    assert abs(float(host[rec].values.clock_offset_s or 0)) < 3.0  # type: ignore[arg-type]
    recording = await probe_recording(rec, world.ctx)
    assert recording[0].device == rec
    assert recording[0].status == Status.OK, recording[0].reason
    cams = world.ctx.inventory.cameras_of(rec)
    assert {r.device for r in recording[1:]} == {c.id for c in cams}
    for r in recording[1:]:
        assert r.status == Status.OK, r.reason
        assert float(r.values.newest_age_s) < 60  # type: ignore[arg-type]
    assert 30 <= float(recording[0].values.retention_days) <= 365  # type: ignore[arg-type]


async def test_healthy_dvr_reports_signal_per_analog_camera(world: Sim) -> None:
    dvr = "dvr-004"
    res = by_device(await probe_host(dvr, world.ctx))
    analog = [c for c in world.ctx.inventory.cameras_of(dvr) if c.address is None]
    assert analog
    assert res[dvr].status == Status.OK
    assert res[dvr].values.uptime_s is not None  # ISAPI System/status
    for cam in analog:
        assert res[cam.id].status == Status.OK
        assert res[cam.id].values.signal is True


async def test_ip_camera_host_is_ok(world: Sim) -> None:
    cam = world.campus.ip_camera("generic")  # type: ignore[attr-defined]
    res = await probe_host(cam, world.ctx)
    assert res[0].status == Status.OK and res[0].device == cam


async def test_offline_recorder_is_down_and_offline_camera_unreachable(world: Sim) -> None:
    rec = world.recorder("generic")
    await world.fault(rec, "offline")
    res = by_device(await probe_host(rec, world.ctx))
    assert res[rec].status == Status.FAIL
    assert codes(res[rec]) == {FindingCode.RECORDER_DOWN}
    cam = world.campus.ip_camera("hikvision")  # type: ignore[attr-defined]
    await world.fault(cam, "offline")
    r = (await probe_host(cam, world.ctx))[0]
    assert r.status == Status.FAIL and codes(r) == {FindingCode.CAMERA_UNREACHABLE}


@pytest.mark.parametrize("vendor", ["hikvision", "dahua"])
async def test_wrong_password_is_auth_failed(world: Sim, vendor: str) -> None:
    rec = world.recorder(vendor)
    await world.fault(rec, "auth")
    r = (await probe_host(rec, world.ctx))[0]
    assert r.status == Status.FAIL
    assert codes(r) == {FindingCode.AUTH_FAILED}
    assert (await probe_recording(rec, world.ctx))[0].status == Status.UNKNOWN


async def test_slow_device_is_unknown_with_timeout_in_bounded_time(world: Sim) -> None:
    rec = world.recorder("hikvision")
    timeout = 1.5
    # slower than the deadline and any lateness (the simulator's shutdown waits for it)
    await world.fault(rec, "slow", timeout + LATE_S + 1.5)
    ctx = ProbeContext(world.ctx.inventory, SecretStore(), ProbeConfig(timeout=timeout),
                       now=clock_now)
    t0 = time.monotonic()
    r = (await probe_host(rec, ctx))[0]
    assert time.monotonic() - t0 < timeout + LATE_S  # the deadline ended it, not the device
    assert r.status == Status.UNKNOWN and "逾時" in r.reason


@pytest.mark.parametrize("vendor", ["hikvision", "generic"])
async def test_malformed_replies_are_unknown(world: Sim, vendor: str) -> None:
    rec = world.recorder(vendor)
    await world.fault(rec, "malformed")
    # Without SNMP: nothing usable came back, so nothing is judged.
    r = (await probe_host(rec, without_snmp(world.ctx, rec)))[0]
    assert r.status == Status.UNKNOWN, r.reason
    assert "無法" in r.reason
    # Its SNMP agent still answers: the recorder is up, and the reason says which of
    # its protocols is broken.
    up = (await probe_host(rec, world.ctx))[0]
    assert up.status == Status.OK and up.driver == "snmp", up.reason
    assert "無法使用" in up.reason
    rr = (await probe_recording(rec, world.ctx))[0]
    assert rr.status == Status.UNKNOWN


def without_snmp(ctx: ProbeContext, rec: str) -> ProbeContext:
    from inventory.models import Protocol

    inv = ctx.inventory
    r = inv.recorders[rec]
    listed = [p for p in r.protocols if p != Protocol.SNMP]
    recorders = {**inv.recorders, rec: r.model_copy(update={"protocols": listed, "snmp": None})}
    return ProbeContext(inv.model_copy(update={"recorders": recorders}), ctx.secrets, ctx.config)


def facts_every(ctx: ProbeContext, seconds: float) -> ProbeContext:
    """The same context (memory, driver state) with another host_facts_every_s."""
    return dataclasses.replace(
        ctx, config=dataclasses.replace(ctx.config, host_facts_every_s=seconds))


@pytest.mark.parametrize("vendor", ["hikvision", "generic"])  # ISAPI status; SNMP uptime
async def test_reboot_is_seen_as_uptime_going_down(world: Sim, vendor: str) -> None:
    ctx = facts_every(world.ctx, 0)  # every check reads everything
    rec = world.recorder(vendor)
    first = (await probe_host(rec, ctx))[0]
    assert first.status == Status.OK and not first.findings
    await world.fault(rec, "reboot")
    r = (await probe_host(rec, ctx))[0]
    assert r.status == Status.FAIL
    assert codes(r) == {FindingCode.DEVICE_REBOOTED}
    assert "重新開機" in r.reason


class Asked:
    """What the checks asked of the devices: one entry per HTTP exchange (the SOAP
    operation or the path)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import re

        import probes.drivers.http as http_mod

        self.seen: list[str] = []
        real = http_mod.DeviceHttp.request

        async def request(http: object, method: str, url: str, **kw: object) -> object:
            body = kw.get("content")
            found = re.search(rb"Body[^>]*>\s*<(?:[\w-]+:)?(\w+)", body) if isinstance(
                body, bytes) else None
            self.seen.append(found.group(1).decode() if found else url.split("/", 3)[-1])
            return await real(http, method, url, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(http_mod.DeviceHttp, "request", request)

    def take(self) -> list[str]:
        """What was asked since the last take, but for a camera's own storage (read on
        a period of its own, probes.host.STORAGE_EVERY)."""
        out, self.seen = self.seen, []
        return [x for x in out if "storage" not in x.lower()]


@pytest.mark.parametrize("vendor", ["hikvision", "dahua"])
async def test_host_checks_between_full_reads_ask_only_the_clock(
    world: Sim, vendor: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full read asks the device info (the login), the clock and the vendor API's
    uptime; the checks until the device's next period ask only the unauthenticated
    clock, and carry the uptime on. A reboot meanwhile is seen at the next full read."""
    api = "isapi" if vendor == "hikvision" else "dahua"
    cam = next(
        c.id for c in world.ctx.inventory.cameras.values()
        if c.address is not None and api in [p.value for p in c.protocols]
    )
    ctx = facts_every(world.ctx, 1e6)  # one period for the whole test
    asked = Asked(monkeypatch)
    first = (await probe_host(cam, ctx))[0]
    full = asked.take()
    assert first.status == Status.OK, first.reason
    assert "GetDeviceInformation" in full and "GetSystemDateAndTime" in full
    assert len(full) >= 3, full  # and the vendor API's uptime
    up0 = first.values.uptime_s
    assert up0 is not None

    await world.fault(cam, "reboot")
    lean = (await probe_host(cam, ctx))[0]
    assert asked.take() == ["GetSystemDateAndTime"]
    assert lean.status == Status.OK and not lean.findings, lean.reason
    assert lean.driver == first.driver  # the same series, lean or full
    assert (lean.values.model, lean.values.firmware) == (first.values.model,
                                                          first.values.firmware)
    assert lean.values.uptime_s is not None and lean.values.uptime_s >= up0

    # The next full read (here forced: a period of 0) compares with the carried uptime.
    again = (await probe_host(cam, facts_every(ctx, 0)))[0]
    assert len(asked.take()) >= 3
    assert codes(again) == {FindingCode.DEVICE_REBOOTED}, again.reason


async def test_a_silent_device_is_read_in_full_when_it_answers_again(
    world: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept facts never make a silent device up, and after an outage (it may have
    rebooted, or had its password changed) the next answer is a full read."""
    rec = world.recorder("hikvision")
    ctx = facts_every(world.ctx, 1e6)
    asked = Asked(monkeypatch)
    assert (await probe_host(rec, ctx))[0].status == Status.OK
    asked.take()
    await world.fault(rec, "offline")
    down = (await probe_host(rec, ctx))[0]
    assert down.status == Status.FAIL and codes(down) == {FindingCode.RECORDER_DOWN}
    await world.sim.clear(rec)  # type: ignore[attr-defined]
    asked.take()
    back = (await probe_host(rec, ctx))[0]
    assert back.status == Status.OK, back.reason
    assert "GetDeviceInformation" in asked.take()


@pytest.mark.parametrize("vendor", ["hikvision", "generic"])
async def test_clock_drift(world: Sim, vendor: str) -> None:
    rec = world.recorder(vendor)
    await world.fault(rec, "clock-drift", 300)
    r = (await probe_host(rec, world.ctx))[0]
    assert r.status == Status.FAIL and codes(r) == {FindingCode.CLOCK_DRIFT}
    assert 295 < float(r.values.clock_offset_s) < 305  # type: ignore[arg-type]
    # Footage times are the device's: a drifting clock is not a recording problem.
    assert (await probe_recording(rec, world.ctx))[0].status == Status.OK


async def test_firmware_change_is_noticed_after_the_first_sighting(world: Sim) -> None:
    rec = world.recorder("generic")
    first = (await probe_host(rec, world.ctx))[0]
    assert not first.findings  # the first sighting only records
    world.ctx.memory.fact(rec)["firmware"] = "0.0.1 build 000000"
    r = (await probe_host(rec, world.ctx))[0]
    assert codes(r) == {FindingCode.FIRMWARE_CHANGED}
    assert "0.0.1" in r.findings[0].reason


@pytest.mark.parametrize("vendor", RECORDERS)
async def test_recording_stopped(world: Sim, vendor: str) -> None:
    rec = world.recorder(vendor)
    await world.fault(rec, "recording-stopped")
    res = await probe_recording(rec, world.ctx)
    assert res[0].status == Status.FAIL
    for r in res[1:]:
        assert r.status == Status.FAIL
        assert FindingCode.RECORDING_STOPPED in codes(r)
        assert f"第 {r.values.channel} 路" in r.reason


@pytest.mark.parametrize("vendor", ["hikvision", "dahua"])
async def test_recording_gap(world: Sim, vendor: str) -> None:
    rec = world.recorder(vendor)
    await world.fault(rec, "recording-gap", 30)
    res = await probe_recording(rec, world.ctx)
    assert res[0].status == Status.FAIL
    for r in res[1:]:
        assert codes(r) == {FindingCode.RECORDING_GAP}, r.reason
        assert 1700 < float(r.values.gap_s_24h) < 1900  # type: ignore[arg-type]


@pytest.mark.parametrize("vendor", ["hikvision", "dahua", "generic"])  # generic: SNMP disks
async def test_disk_failed(world: Sim, vendor: str) -> None:
    rec = world.recorder(vendor)
    await world.fault(rec, "disk-failed", 1)
    r = (await probe_recording(rec, world.ctx))[0]
    assert r.status == Status.FAIL
    assert FindingCode.DISK_FAILED in codes(r)
    assert "硬碟 1 故障" in r.reason
    assert r.values.disk("1").ok is False


async def test_disk_full_where_the_recorder_says_it_does_not_overwrite(world: Sim) -> None:
    # Dahua tells its "disk full" setting (StorageGroup OverWrite=false under this fault)
    rec = world.recorder("dahua")
    await world.fault(rec, "disk-full")
    r = (await probe_recording(rec, world.ctx))[0]
    assert r.status == Status.FAIL and FindingCode.DISK_FULL in codes(r)
    assert r.values.disk("1").free_bytes == 0


async def test_disk_full_with_overwrite_unknown_is_said_once(world: Sim) -> None:
    # Hikvision's Storage reply does not say whether it overwrites: one warning, then a
    # remark, never DiskFull every check.
    rec = world.recorder("hikvision")
    await world.fault(rec, "disk-full")
    first = (await probe_recording(rec, world.ctx))[0]
    assert codes(first) == {FindingCode.DISK_FULL_OVERWRITE_UNKNOWN}, first.reason
    assert first.status == Status.OK and "無法確認是否循環覆寫" in first.reason
    assert first.values.disk("1").free_bytes == 0
    again = (await probe_recording(rec, world.ctx))[0]
    assert codes(again) == set() and again.status == Status.OK
    assert "已提醒" in again.reason


@pytest.mark.parametrize("vendor", ["hikvision", "generic"])
async def test_retention_short_and_long(world: Sim, vendor: str) -> None:
    rec = world.recorder(vendor)
    await world.fault(rec, "retention-short", 7)
    r = (await probe_recording(rec, world.ctx))[0]
    assert r.status == Status.FAIL and codes(r) == {FindingCode.RETENTION_TOO_SHORT}
    assert 6.5 < float(r.values.retention_days) < 7.5  # type: ignore[arg-type]
    assert "30 天" in r.reason

    await world.sim.clear(rec)  # type: ignore[attr-defined]
    world.ctx.memory.facts.clear()  # forget the cached oldest footage
    await world.fault(rec, "retention-long", 400)
    r = (await probe_recording(rec, world.ctx))[0]
    assert r.status == Status.FAIL and codes(r) == {FindingCode.RETENTION_TOO_LONG}


async def test_legal_hold_excuses_long_retention(world: Sim) -> None:
    from inventory.models import LegalHold, Policy

    rec = world.recorder("generic")
    await world.fault(rec, "retention-long", 400)
    inv = world.ctx.inventory
    hold = LegalHold(
        recorder=rec, reason="校安事件調查", until=clock_now().date() + dt.timedelta(days=30)
    )
    held = inv.model_copy(
        update={"policy": Policy(retention=inv.policy.retention, legal_holds=[hold])}
    )
    ctx = ProbeContext(held, SecretStore(), world.ctx.config, now=clock_now)
    r = (await probe_recording(rec, ctx))[0]
    assert r.status == Status.OK, r.reason
    assert r.values.legal_hold is True


@pytest.mark.parametrize(("until", "in_force"), [("2026-11-30", False), ("2026-12-01", True)])
async def test_a_legal_hold_ends_with_the_campus_day_not_the_utc_day(
    until: str, in_force: bool
) -> None:
    """At Taipei 02:10 on 1 December (UTC still says 30 November) a hold until 30
    November is over, and one until 1 December still excuses long retention — as the
    legal-hold metric reads the same date."""
    from camwatch.clock import PinnedClock
    from inventory.models import LegalHold, Policy

    taipei = dt.timezone(dt.timedelta(hours=8))
    clock = PinnedClock.starting_now(dt.datetime(2026, 12, 1, 2, 10, tzinfo=taipei))
    await onvif_prepare()
    campus = testing.small_campus(None)
    rec = campus.recorder("generic")
    inv = campus.inventory
    hold = LegalHold(recorder=rec, reason="校安事件調查", until=dt.date.fromisoformat(until))
    held = inv.model_copy(
        update={"policy": Policy(retention=inv.policy.retention, legal_holds=[hold])}
    )
    async with testing.SimulatedCampus(inv, campus.passwords, clock=clock) as sim:
        await sim.fault(rec, "retention-long", 400)
        ctx = ProbeContext(held, SecretStore(), ProbeConfig(timeout=5.0), now=clock.now)
        r = (await probe_recording(rec, ctx))[0]
    if in_force:
        assert r.status == Status.OK, r.reason
        assert r.values.legal_hold is True
    else:
        assert r.status == Status.FAIL and codes(r) == {FindingCode.RETENTION_TOO_LONG}, r.reason


async def test_signal_loss_on_an_analog_channel(world: Sim) -> None:
    dvr = "dvr-004"
    cams = sorted(
        (c for c in world.ctx.inventory.cameras_of(dvr) if c.address is None),
        key=lambda c: c.channel,
    )
    lost = cams[1]
    await world.fault(dvr, "signal-loss", lost.channel)
    res = by_device(await probe_host(dvr, world.ctx))
    assert res[dvr].status == Status.OK  # the DVR itself runs
    assert res[lost.id].status == Status.FAIL
    assert codes(res[lost.id]) == {FindingCode.SIGNAL_LOSS}
    assert lost.position in res[lost.id].reason
    others = [c for c in cams if c.id != lost.id]
    assert all(res[c.id].status == Status.OK for c in others)


@pytest.mark.parametrize("vendor", ["hikvision", "dahua"])
async def test_host_check_uses_one_http_session_for_onvif_and_vendor_api(
    world: Sim, vendor: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ONVIF and the vendor API (uptime) of one device share one DeviceHttp: one client
    and its keep-alive connection per host check, not one per protocol."""
    import probes.drivers.base as link_mod
    import probes.drivers.onvif as onvif_mod

    opened: list[object] = []

    class Counting(link_mod.DeviceHttp):
        async def __aenter__(self) -> link_mod.DeviceHttp:
            opened.append(self)
            return await super().__aenter__()

    monkeypatch.setattr(link_mod, "DeviceHttp", Counting)
    monkeypatch.setattr(onvif_mod, "DeviceHttp", Counting)
    rec = world.recorder(vendor)
    host = by_device(await probe_host(rec, world.ctx))
    assert host[rec].status == Status.OK, host[rec].reason
    assert host[rec].driver == f"onvif+{'isapi' if vendor == 'hikvision' else 'dahua'}"
    assert host[rec].values.uptime_s is not None
    assert len(opened) == 1


@pytest.mark.parametrize("vendor", ["hikvision", "dahua"])
async def test_recording_checks_between_full_searches_search_only_what_is_new(
    world: Sim, monkeypatch: pytest.MonkeyPatch, vendor: str
) -> None:
    """A recorder's day is searched in full once per FULL_SEARCH_EVERY; the checks
    between search each channel from a little before the newest footage they knew.
    Footage lost from the past meanwhile is seen at the next full search."""
    import probes.drivers.dahua as dahua_mod
    import probes.drivers.isapi as isapi_mod
    import probes.facts as facts_mod

    searched: list[tuple[dt.datetime, dt.datetime]] = []
    cls: Any = isapi_mod.IsapiClient if vendor == "hikvision" else dahua_mod.MediaFinder
    name = "search" if vendor == "hikvision" else "spans"
    real = getattr(cls, name)

    async def search(client: object, channel: int, start: dt.datetime, end: dt.datetime,
                     **kw: int) -> list[tuple[dt.datetime, dt.datetime]]:
        if kw.get("max_pages") != 1:  # not Dahua's search for the oldest footage
            searched.append((start, end))
        return await real(client, channel, start, end, **kw)  # type: ignore[no-any-return]

    monkeypatch.setattr(cls, name, search)
    monkeypatch.setattr(facts_mod, "FULL_SEARCH_EVERY", 1e6)  # one period for the test
    rec = world.recorder(vendor)
    first = await probe_recording(rec, world.ctx)
    assert first[0].status == Status.OK, first[0].reason
    assert searched and all(e - s == dt.timedelta(hours=24) for s, e in searched)
    channels = len(searched)

    searched.clear()
    await world.fault(rec, "recording-gap", 30)  # footage of two hours ago lost
    lean = await probe_recording(rec, world.ctx)
    assert len(searched) == channels
    assert all(e - s < dt.timedelta(hours=1) for s, e in searched), searched
    assert [r.status for r in lean] == [r.status for r in first]
    assert [r.values.newest_age_s is not None for r in lean[1:]] == [True] * (len(lean) - 1)

    monkeypatch.setattr(facts_mod, "FULL_SEARCH_EVERY", 0.0)  # the next full search
    again = await probe_recording(rec, world.ctx)
    assert again[0].status == Status.FAIL
    for r in again[1:]:
        assert codes(r) == {FindingCode.RECORDING_GAP}, r.reason
