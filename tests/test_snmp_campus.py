"""SNMP end to end on a generated campus: the inventory's snmp block, credentials
resolved through SecretStore, the simulator's agents on each recorder's own loopback
address and snmp_port, and the driver reading what the SimDevice state says."""

from __future__ import annotations

import pytest

from camwatch.secrets import SecretStore
from probes.drivers.snmp import read_recorder, target_for
from probes.vendors_snmp import DiskHealth
from simulator.campus import build_world
from simulator.model import FaultKind
from simulator.snmp import start_snmp_agents
from simulator.testing import make_resolver, small_campus
from tests.waits import NOT_UNDER_TEST_S


async def test_generated_campus_recorders_answer_snmp(tmp_path, monkeypatch) -> None:
    campus = small_campus(tmp_path, set_env=False)
    for name, value in campus.passwords.items():
        monkeypatch.setenv(name, value)
    world = build_world(campus.inventory, make_resolver(campus.passwords))
    snmp_recorders = [r for r in campus.inventory.recorders.values() if r.snmp is not None]
    if not snmp_recorders:
        pytest.skip("the generated campus declares no SNMP recorder")
    agents = await start_snmp_agents(world.devices.values())
    try:
        secrets = SecretStore()
        for rec in snmp_recorders:
            dev = world.get(rec.id)
            assert agents.addresses[rec.id] == (rec.address.host, rec.address.snmp_port)
            target = target_for(rec, secrets, timeout=NOT_UNDER_TEST_S, retries=0)
            reading = await read_recorder(target, rec.vendor.value)
            assert reading.ok, (rec.id, reading.error)
            assert reading.system is not None and reading.system.name == rec.id
            disks = [d for d in reading.disks if d.kind == "disk"]
            assert len(disks) == len(dev.disks)
            assert all(d.health == DiskHealth.OK for d in disks)

        rec = snmp_recorders[0]
        dev = world.get(rec.id)
        dev.apply_fault(FaultKind.DISK_FAILED, 1)
        reading = await read_recorder(target_for(rec, secrets, 1.0, 0), rec.vendor.value)
        assert DiskHealth.FAILED in {d.health for d in reading.disks}
        dev.apply_fault(FaultKind.OFFLINE)
        reading = await read_recorder(target_for(rec, secrets, 0.5, 0), rec.vendor.value)
        assert reading.error is not None and "SNMP 無回應" in reading.error.reason
    finally:
        await agents.stop()


async def test_v3_recorder_from_the_inventory(tmp_path, monkeypatch) -> None:
    """An inventory recorder with `snmp: {version: "3", user, auth_key, priv_key}`:
    the simulator serves that USM user and the driver reads it with the same refs."""
    from inventory.models import Snmp
    from simulator.campus import to_inventory
    from simulator.snmp import v3_users_from_inventory

    campus = small_campus(tmp_path, set_env=False)
    for name, value in campus.passwords.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(
        "CAMWATCH_TEST_SNMP_AUTH", "auth-" + campus.passwords[next(iter(campus.passwords))]
    )
    monkeypatch.setenv("CAMWATCH_TEST_SNMP_PRIV", "priv-key-12345")
    f = campus.file
    rec = next(r for r in f.recorders if r.snmp is not None)
    v3 = Snmp(
        version="3",
        user="cctv",
        auth_key="${CAMWATCH_TEST_SNMP_AUTH}",
        priv_key="${CAMWATCH_TEST_SNMP_PRIV}",
    )
    recorders = [r.model_copy(update={"snmp": v3}) if r.id == rec.id else r for r in f.recorders]
    inventory = to_inventory(f.model_copy(update={"recorders": recorders}))
    secrets = SecretStore()
    world = build_world(inventory, make_resolver(campus.passwords))
    users = v3_users_from_inventory(inventory, secrets.resolve)
    assert set(users) == {rec.id}
    agents = await start_snmp_agents(world.devices.values(), v3_users=users)
    try:
        target = target_for(inventory.recorders[rec.id], secrets, timeout=NOT_UNDER_TEST_S,
                            retries=0)
        reading = await read_recorder(target, rec.vendor.value)
        assert reading.ok, reading.error
        assert reading.system is not None and reading.system.name == rec.id
        monkeypatch.setenv("CAMWATCH_TEST_SNMP_AUTH", "a-different-key")
        wrong = target_for(inventory.recorders[rec.id], SecretStore(), timeout=NOT_UNDER_TEST_S,
                           retries=0)  # the agent's report answers it
        bad = await read_recorder(wrong, rec.vendor.value)
        assert bad.error is not None and "認證失敗" in bad.error.reason
    finally:
        await agents.stop()
