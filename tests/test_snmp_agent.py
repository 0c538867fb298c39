"""The SNMP driver against the simulator's pysnmp agent: v2c, v3, faults, vendors.

Each test serves its own devices on random 127.x.y.z addresses and ephemeral ports.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from collections.abc import AsyncIterator

import pytest

from camwatch.clock import ManualClock
from inventory.models import Vendor
from probes.drivers.snmp import (
    V3,
    SnmpErrorKind,
    SnmpTarget,
    V2c,
    parse_disks,
    read_host,
    read_recorder,
    read_recorder_from_pairs,
    read_snmprec,
    snmp_disks,
)
from probes.recording import judge_disks
from probes.result import FindingCode
from probes.vendors_snmp import SYNOLOGY_DISK, DiskHealth
from simulator.model import DeviceKind, Disk, FaultKind, SimDevice
from simulator.snmp import (
    SnmpAgents,
    SnmpV3User,
    device_records,
    plain_pairs,
    snmprec_text,
    start_snmp_agents,
)
from tests.waits import LATE_S, NOT_UNDER_TEST_S

TB4 = 4_000_787_030_016
COMMUNITY = "sim-" + "".join(random.choices("abcdefgh", k=8))


def _host() -> str:
    return f"127.{random.randint(32, 250)}.{random.randint(0, 255)}.{random.randint(2, 254)}"


def _recorder(vendor: Vendor, name: str = "nvr", disks: int = 2) -> SimDevice:
    return SimDevice(
        id=f"{name}-{vendor.value}",
        kind=DeviceKind.RECORDER,
        vendor=vendor,
        name=f"{vendor.value} 主機",
        host=_host(),
        snmp_port=0,
        snmp_community=COMMUNITY,
        disks=[Disk(i + 1, TB4, TB4 // 5) for i in range(disks)],
    )


@pytest.fixture
async def campus() -> AsyncIterator[tuple[dict[str, SimDevice], SnmpAgents]]:
    devices = {v.value: _recorder(v) for v in Vendor}
    agents = await start_snmp_agents(
        devices.values(),
        v3_users={devices["generic"].id: SnmpV3User("cctv", "auth-pass-1", "priv-pass-1")},
    )
    yield devices, agents
    await agents.stop()


# The timeout of a read that an agent answers is not what these tests are about
# (tests/waits.py); one that it never answers waits SILENT_S.
SILENT_S = 0.5


def _target(
    agents: SnmpAgents, dev: SimDevice, auth: V2c | V3 | None = None, *,
    timeout: float = NOT_UNDER_TEST_S,
) -> SnmpTarget:
    """A target without retries; `timeout` is SILENT_S in the tests of a refusal or a
    timeout (which measure that it is bounded), else one no agent that answers reaches."""
    host, port = agents.addresses[dev.id]
    return SnmpTarget(host, port, auth or V2c(COMMUNITY), timeout=timeout, retries=0)


@pytest.mark.parametrize("vendor", ["hikvision", "dahua", "synology", "generic"])
async def test_v2c_reads_system_storage_and_vendor_disks(campus, vendor: str) -> None:
    devices, agents = campus
    dev = devices[vendor]
    reading = await read_recorder(_target(agents, dev), vendor)
    assert reading.ok, reading.error
    assert reading.system is not None
    assert reading.system.name == dev.id
    assert reading.system.uptime_s is not None and 0 <= reading.system.uptime_s < 120
    disks = [d for d in reading.disks if d.kind == "disk"]
    assert len(disks) == 2 and {d.health for d in disks} == {DiskHealth.OK}
    fixed = [s for s in reading.storage if s.kind == "fixed-disk"]
    if vendor == "synology":
        # DSM: system mounts and the one volume over both disks
        (volume,) = [s for s in fixed if s.descr == "/volume1"]
        assert volume.size_bytes == pytest.approx(2 * TB4 * 0.98, rel=1e-6)
        assert volume.used_pct == pytest.approx(80.0, abs=0.1)
    else:
        assert len(fixed) == 2
        assert fixed[0].size_bytes == TB4 // 4096 * 4096
        assert fixed[0].used_pct == pytest.approx(80.0, abs=0.1)
    assert reading.missing_tables == ()


async def test_disk_failed_fault_shows_as_failed(campus) -> None:
    devices, agents = campus
    for vendor in ("hikvision", "dahua", "synology", "generic"):
        dev = devices[vendor]
        dev.apply_fault(FaultKind.DISK_FAILED, 2)
        reading = await read_recorder(_target(agents, dev), vendor)
        assert reading.ok, reading.error
        health = {d.name: d.health for d in reading.disks if d.kind == "disk"}
        assert sorted(health.values()) == [DiskHealth.FAILED, DiskHealth.OK], vendor
        v = judge_disks(snmp_disks(reading, vendor), 95.0)
        assert any(f.code == FindingCode.DISK_FAILED and "故障" in f.reason for f in v.findings)
        if vendor == "synology":
            raids = {d.name: d.health for d in reading.disks if d.kind == "raid"}
            assert raids == {"Volume 1": DiskHealth.WARNING, "Storage Pool 1": DiskHealth.WARNING}
            # the degraded RAID is a remark, the failed disk the fault
            assert any("Degrade" in n for n in v.notes)
        dev.clear_faults()
        again = await read_recorder(_target(agents, dev), vendor)
        assert {d.health for d in again.disks} == {DiskHealth.OK}


async def test_disk_full_fault_shows_as_full(campus) -> None:
    devices, agents = campus
    for vendor in ("hikvision", "dahua", "generic"):
        dev = devices[vendor]
        dev.apply_fault(FaultKind.DISK_FULL)
        reading = await read_recorder(_target(agents, dev), vendor)
        v = judge_disks(snmp_disks(reading, vendor), 95.0, overwrite=False)
        full = [f for f in v.findings if f.code == FindingCode.DISK_FULL]
        assert full, (vendor, v.findings)
        assert all("空間不足" in f.reason for f in full)


async def test_reboot_makes_uptime_drop(campus) -> None:
    devices, agents = campus
    dev = devices["hikvision"]
    dev.boot_time = dev.boot_time.replace(year=dev.boot_time.year - 1)
    before = await read_host(_target(agents, dev))
    assert before.system is not None and before.system.uptime_s is not None
    assert before.system.uptime_s > 300 * 86400
    dev.apply_fault(FaultKind.REBOOT)
    after = await read_host(_target(agents, dev))
    assert after.system is not None and after.system.uptime_s is not None
    assert after.system.uptime_s < 60


async def test_v3_sha_aes_and_wrong_key(campus) -> None:
    devices, agents = campus
    dev = devices["generic"]
    good = await read_recorder(_target(agents, dev, V3("cctv", "auth-pass-1", "priv-pass-1")))
    assert good.ok, good.error
    assert good.system is not None and good.system.name == dev.id
    assert good.disks
    bad = await read_host(_target(agents, dev, V3("cctv", "wrong-pass-1", "priv-pass-1")))
    # the agent's report says so (the generous timeout cannot have decided it)
    assert bad.error is not None and bad.error.kind == SnmpErrorKind.AUTH
    assert "認證失敗" in bad.error.reason
    assert "wrong-pass-1" not in bad.error.reason + bad.error.detail


async def test_wrong_community_is_unknown_within_the_timeout(campus) -> None:
    devices, agents = campus
    dev = devices["dahua"]
    started = time.monotonic()
    reading = await read_recorder(_target(agents, dev, V2c("not-the-community"),
                                          timeout=SILENT_S), "dahua")
    elapsed = time.monotonic() - started
    assert not reading.ok
    assert reading.error is not None and reading.error.kind == SnmpErrorKind.TIMEOUT
    assert "SNMP 無回應" in reading.error.reason
    assert "not-the-community" not in reading.error.reason
    assert SILENT_S <= elapsed < SILENT_S + LATE_S, elapsed  # one timeout, then it gives up


async def test_community_of_another_device_is_refused() -> None:
    a, b = _recorder(Vendor.GENERIC, "a"), _recorder(Vendor.GENERIC, "b")
    b.snmp_community = COMMUNITY + "-b"
    agents = await start_snmp_agents([a, b])
    try:
        reading = await read_host(_target(agents, a, V2c(COMMUNITY + "-b"), timeout=SILENT_S))
        assert reading.error is not None and reading.error.kind == SnmpErrorKind.TIMEOUT
        assert (await read_host(_target(agents, b, V2c(COMMUNITY + "-b")))).ok
    finally:
        await agents.stop()


async def test_offline_auth_and_slow_faults(campus) -> None:
    devices, agents = campus
    dev = devices["synology"]
    for kind in (FaultKind.OFFLINE, FaultKind.AUTH):
        dev.apply_fault(kind)
        reading = await read_host(_target(agents, dev, timeout=SILENT_S))
        assert reading.error is not None and reading.error.kind == SnmpErrorKind.TIMEOUT
        dev.clear_faults()
    dev.apply_fault(FaultKind.SLOW, 1.0)
    started = time.monotonic()
    slow = await read_host(_target(agents, dev, timeout=SILENT_S))  # 0.5 s < the 1 s delay
    assert slow.error is not None and slow.error.kind == SnmpErrorKind.TIMEOUT
    assert time.monotonic() - started < SILENT_S + LATE_S
    patient = SnmpTarget(*agents.addresses[dev.id], V2c(COMMUNITY), timeout=NOT_UNDER_TEST_S,
                         retries=0)
    assert (await read_host(patient)).ok
    dev.clear_faults()


async def test_malformed_values_do_not_raise(campus) -> None:
    devices, agents = campus
    dev = devices["generic"]
    dev.apply_fault(FaultKind.MALFORMED)
    reading = await read_recorder(_target(agents, dev), "generic")
    assert reading.ok
    assert reading.system is not None and reading.system.uptime_s is None
    assert reading.storage == ()  # junk sizes are left out, never guessed


async def test_concurrent_polls_share_one_engine(campus) -> None:
    devices, agents = campus
    started = time.monotonic()
    for v, d in devices.items():
        assert (await read_recorder(_target(agents, d), v)).ok
    one_by_one = time.monotonic() - started
    started = time.monotonic()
    readings = await asyncio.gather(
        *(read_recorder(_target(agents, d), v) for v, d in devices.items() for _ in range(3))
    )
    assert all(r.ok for r in readings), [r.error for r in readings if not r.ok]
    # three times as many reads at once: no reply lost to another poll (each would cost
    # a whole timeout), no slower than one after another
    assert time.monotonic() - started < 3 * one_by_one + LATE_S


def test_simulated_records_parse_like_the_recordings() -> None:
    """The simulator's Synology table read through an .snmprec round trip gives the
    same fields as the real (centreon) Synology walk: names 'Disk N', two status columns."""
    dev = _recorder(Vendor.SYNOLOGY)
    # the same instant for both (sysUpTime counts hundredths of a second)
    dev.clock = ManualClock(dev.boot_time + dt.timedelta(hours=5))
    pairs = read_snmprec(snmprec_text(dev))
    assert pairs == plain_pairs(device_records(dev))
    disks = parse_disks(SYNOLOGY_DISK, pairs)
    assert [d.name for d in disks] == ["Disk 1", "Disk 2"]
    assert [d.index for d in disks] == ["0", "1"]  # DSM numbers rows from 0
    assert all(d.status_text == "Normal/Normal" for d in disks)
    reading = read_recorder_from_pairs(pairs, "synology")
    assert reading.system is not None and reading.system.name == dev.id


def test_records_are_sorted_and_unique() -> None:
    for vendor in Vendor:
        recs = device_records(_recorder(vendor))
        keys = [tuple(int(p) for p in oid.split(".")) for oid, _t, _v in recs]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)


async def test_endless_and_non_increasing_tables_end(campus, monkeypatch) -> None:
    """A broken agent that never ends a table, or answers with the OID it was asked,
    still gives a bounded reading."""
    from pysnmp.proto import rfc1902
    from pysnmp.proto.api import v2c

    from probes.drivers import snmp as driver
    from simulator.snmp import _Responder

    devices, agents = campus
    dev = devices["generic"]
    original = _Responder._answer

    def endless(self, device, pdu):
        tag = pdu.tagSet
        asked = [tuple(oid) for oid, _val in v2c.apiPDU.get_varbinds(pdu)]
        if tag != v2c.GetBulkRequestPDU.tagSet:
            return original(self, device, pdu)
        non_rep = int(v2c.apiBulkPDU.get_non_repeaters(pdu))
        out = [(rfc1902.ObjectName((*k, 0)), rfc1902.TimeTicks(100)) for k in asked[:non_rep]]
        cursors = asked[non_rep:]
        for _ in range(int(v2c.apiBulkPDU.get_max_repetitions(pdu))):
            # one row after another, forever: always increasing, never leaving the column
            cursors = [(*k[:-1], k[-1] + 1) if len(k) > 11 else (*k, 1) for k in cursors]
            out += [(rfc1902.ObjectName(k), rfc1902.Integer32(1)) for k in cursors]
        return out

    monkeypatch.setattr(_Responder, "_answer", endless)
    monkeypatch.setattr(driver, "MAX_ROWS", 300)
    async with asyncio.timeout(NOT_UNDER_TEST_S):  # the walk ends (MAX_ROWS)
        reading = await read_recorder(_target(agents, dev), "generic")
    # the system group is one GET, answered as usual; the endless table is cut
    assert reading.system is not None and reading.system.name == dev.id
    assert len(reading.storage) <= 300

    def same(self, device, pdu):
        asked = [tuple(oid) for oid, _val in v2c.apiPDU.get_varbinds(pdu)]
        return [(rfc1902.ObjectName(k), rfc1902.Integer32(1)) for k in asked]

    monkeypatch.setattr(_Responder, "_answer", same)
    async with asyncio.timeout(NOT_UNDER_TEST_S):  # the walk ends (no progress)
        reading = await read_recorder(_target(agents, dev), "generic")
    assert reading.storage == () and reading.disks == ()
