"""Issue 13: what replies captured from real recorders showed, over SNMP and ISAPI.

Each defect has its test here, on data of the same shape as the real reply: walks
written to the shape of the LibreNMS captures of a Hikvision NVR (sysDescr alone; a
hikDiskTable with capacity and free space only, rows "1.0"), a Dahua NVR (DAHUA-SNMP-MIB
identity scalars and no disk table) and a Synology DS214se on DSM 7 (a "Volume 1" and a
"Storage Pool 1" row in raidTable, the volume's size in hrStorage "/volume1"), the
DS-7616NI-K2/Q2 answering 403 to /ISAPI/System/Video/inputs/channels, and the shared
fixtures (../shared/fixtures). End to end, the simulator serves the same shapes
(simulator.model.Quirk) and the checks run against it over real SNMP and HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from camwatch.secrets import SecretStore
from inventory.models import Inventory, Protocol, Vendor
from probes.api import ProbeConfig, ProbeContext
from probes.drivers import isapi
from probes.drivers.http import DeviceHttp, HttpLimits
from probes.drivers.snmp import (
    host_reading,
    no_storage_reason,
    parse_disks,
    read_recorder_from_pairs,
    read_snmprec,
    snmp_disks,
)
from probes.facts import Disk, DiskStatus, StorageKind
from probes.host import Gathered, judge_host, probe_host
from probes.picture import probe_picture
from probes.reasons import DeviceError, ReasonCode
from probes.recording import probe_recording
from probes.result import CheckResult, FindingCode, Status
from probes.storage import judge_disks
from probes.vendors_snmp import HIKVISION_DISK, profile_for
from probes.wording import fmt_bytes
from simulator.model import Quirk
from simulator.testing import SimulatedCampus, small_campus

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"

# ---- walks of the same shape as the captured ones ---------------------------------------

# A Hikvision NVR whose agent answers sysDescr alone (LibreNMS hikvision-nvr_1).
HIKVISION_SYSDESCR_ONLY = "1.3.6.1.2.1.1.1.0|4|Hikvision company products\n"

# A Hikvision NVR (LibreNMS hikvision-nvr): HIKVISION-MIB scalars, and hikDiskTable with
# hikDiskFreeSpace (.4) and hikDiskCapability (.5) in MB, index "1.0", no hikDiskStatus.
HIKVISION_NVR = """\
1.3.6.1.2.1.1.1.0|4|Hikvision company products
1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.50001
1.3.6.1.2.1.1.3.0|67|61234500
1.3.6.1.4.1.50001.1.1.0|64|10.20.30.40
1.3.6.1.4.1.50001.1.3.0|4|0820190412CCWR123456789WCVU
1.3.6.1.4.1.50001.1.100.0|2|2
1.3.6.1.4.1.50001.1.101.0|2|200
1.3.6.1.4.1.50001.1.220.0|2|169
1.3.6.1.4.1.50001.1.221.0|2|7
1.3.6.1.4.1.50001.1.241.1.4.1.0|2|1638400
1.3.6.1.4.1.50001.1.241.1.5.1.0|2|5723166
"""

# A Dahua NVR (LibreNMS dahua-nvr): the model in sysDescr and deviceType, the firmware in
# softwareRevision, deviceStatus good(1), and no disk table nor HOST-RESOURCES.
DAHUA_NVR = """\
1.3.6.1.2.1.1.1.0|4|DHI-NVR4216-4KS2
1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.1004849.3.2.10
1.3.6.1.2.1.1.3.0|67|12345600
1.3.6.1.4.1.1004849.2.1.1.1.0|4|4.000.0000000.1
1.3.6.1.4.1.1004849.2.1.2.4.0|4|7C02B8APAZ12345
1.3.6.1.4.1.1004849.2.1.2.6.0|4|DHI-NVR4216-4KS2
1.3.6.1.4.1.1004849.2.1.2.8.0|2|1
1.3.6.1.4.1.1004849.2.1.3.0|2|9
"""

# A Synology on DSM 7 (LibreNMS dsm_ds214se-dsm7): no sysUpTime but hrSystemUptime, the
# volume's size and use in hrStorage "/volume1", two disks, and in raidTable the volume
# and the storage pool under it, the pool's free size a few hundred MB (all allocated).
SYNOLOGY_DSM7 = """\
1.3.6.1.2.1.1.1.0|4|Linux nas 3.2.101 #42962 Mon May 29 14:34:16 CST 2023 armv7l
1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.8072.3.2.10
1.3.6.1.2.1.25.1.1.0|67|9689779
1.3.6.1.2.1.25.2.3.1.2.1|6|1.3.6.1.2.1.25.2.1.2
1.3.6.1.2.1.25.2.3.1.2.31|6|1.3.6.1.2.1.25.2.1.4
1.3.6.1.2.1.25.2.3.1.2.42|6|1.3.6.1.2.1.25.2.1.4
1.3.6.1.2.1.25.2.3.1.2.45|6|1.3.6.1.2.1.25.2.1.4
1.3.6.1.2.1.25.2.3.1.3.1|4|Physical memory
1.3.6.1.2.1.25.2.3.1.3.31|4|/
1.3.6.1.2.1.25.2.3.1.3.42|4|/tmp
1.3.6.1.2.1.25.2.3.1.3.45|4|/volume1
1.3.6.1.2.1.25.2.3.1.4.1|2|1024
1.3.6.1.2.1.25.2.3.1.4.31|2|4096
1.3.6.1.2.1.25.2.3.1.4.42|2|4096
1.3.6.1.2.1.25.2.3.1.4.45|2|4096
1.3.6.1.2.1.25.2.3.1.5.1|2|248508
1.3.6.1.2.1.25.2.3.1.5.31|2|612766
1.3.6.1.2.1.25.2.3.1.5.42|2|31063
1.3.6.1.2.1.25.2.3.1.5.45|2|1450978620
1.3.6.1.2.1.25.2.3.1.6.1|2|215960
1.3.6.1.2.1.25.2.3.1.6.31|2|269359
1.3.6.1.2.1.25.2.3.1.6.42|2|141
1.3.6.1.2.1.25.2.3.1.6.45|2|890511122
1.3.6.1.4.1.6574.1.1.0|2|1
1.3.6.1.4.1.6574.1.2.0|2|36
1.3.6.1.4.1.6574.1.3.0|2|1
1.3.6.1.4.1.6574.1.4.1.0|2|1
1.3.6.1.4.1.6574.1.4.2.0|2|1
1.3.6.1.4.1.6574.1.5.1.0|4|DS214se
1.3.6.1.4.1.6574.1.5.2.0|4|1380LWN012345
1.3.6.1.4.1.6574.1.5.3.0|4|DSM 7.1-42962
1.3.6.1.4.1.6574.1.5.4.0|2|2
1.3.6.1.4.1.6574.2.1.1.1.0|2|0
1.3.6.1.4.1.6574.2.1.1.1.1|2|1
1.3.6.1.4.1.6574.2.1.1.2.0|4|Disk 1
1.3.6.1.4.1.6574.2.1.1.2.1|4|Disk 2
1.3.6.1.4.1.6574.2.1.1.3.0|4|DT01ACA300
1.3.6.1.4.1.6574.2.1.1.3.1|4|DT01ACA300
1.3.6.1.4.1.6574.2.1.1.5.0|2|1
1.3.6.1.4.1.6574.2.1.1.5.1|2|1
1.3.6.1.4.1.6574.2.1.1.6.0|2|31
1.3.6.1.4.1.6574.2.1.1.6.1|2|33
1.3.6.1.4.1.6574.2.1.1.13.0|2|1
1.3.6.1.4.1.6574.2.1.1.13.1|2|1
1.3.6.1.4.1.6574.3.1.1.1.0|2|0
1.3.6.1.4.1.6574.3.1.1.1.1|2|1
1.3.6.1.4.1.6574.3.1.1.2.0|4|Volume 1
1.3.6.1.4.1.6574.3.1.1.2.1|4|Storage Pool 1
1.3.6.1.4.1.6574.3.1.1.3.0|2|1
1.3.6.1.4.1.6574.3.1.1.3.1|2|1
1.3.6.1.4.1.6574.3.1.1.4.0|70|2295748014208
1.3.6.1.4.1.6574.3.1.1.4.1|70|889192448
1.3.6.1.4.1.6574.3.1.1.5.0|70|5943208427520
1.3.6.1.4.1.6574.3.1.1.5.1|70|5991307411456
"""

MB = 1024 * 1024


def walk(text: str) -> list[tuple[str, int | str]]:
    return read_snmprec(text)


# ---- 1. an SNMP-only recorder that answers is up -----------------------------------------


def test_an_agent_answering_only_sysdescr_tells_who_it_is() -> None:
    reading = host_reading(dict(walk(HIKVISION_SYSDESCR_ONLY)), "hikvision")
    assert reading.ok and reading.identity is not None
    assert reading.identity.description == "Hikvision company products"
    assert reading.identity.manufacturer == "Hikvision"
    assert reading.system is not None and reading.system.uptime_s is None


@dataclass
class World:
    campus: Any
    sim: SimulatedCampus
    ctx: ProbeContext
    inventory: Inventory


def reshaped(inventory: Inventory, rec_id: str, **update: Any) -> Inventory:
    r = inventory.recorders[rec_id].model_copy(update=update)
    return inventory.model_copy(update={"recorders": {**inventory.recorders, rec_id: r}})


SNMP_ONLY: dict[str, Any] = {"protocols": [Protocol.SNMP], "credentials": None}


@contextlib.asynccontextmanager
async def world_with(
    pick: str, quirks: frozenset[Quirk] = frozenset(), timeout: float = 4.0, **update: Any
) -> AsyncIterator[tuple[World, str]]:
    """The small simulated campus with one recorder (a vendor's first, or an id) reshaped
    as `update` says (protocols, vendor, model, overwrite) and serving `quirks`."""
    campus = small_campus(None)
    rec = pick if pick in campus.inventory.recorders else campus.recorder(pick)
    inv = reshaped(campus.inventory, rec, **update) if update else campus.inventory
    async with SimulatedCampus(inv, campus.passwords) as sim:
        if quirks:
            sim.device(rec).quirks = quirks
        ctx = ProbeContext(inv, SecretStore(), ProbeConfig(timeout=timeout))
        yield World(campus, sim, ctx, inv), rec


def mine(results: list[CheckResult], device: str) -> CheckResult:
    return next(r for r in results if r.device == device)


async def test_snmp_only_nvr_answering_only_sysdescr_is_up() -> None:
    async with world_with("hikvision", frozenset({Quirk.SNMP_SYSDESCR_ONLY}), **SNMP_ONLY) as (
        w,
        rec,
    ):
        r = mine(await probe_host(rec, w.ctx), rec)
    assert r.status == Status.OK, r.reason
    assert r.driver == "snmp"
    assert "SNMP 有回應：Hikvision company products" in r.reason
    assert "埠 80" not in r.reason  # no TCP connect to an HTTP port it never listed
    assert r.values is not None and r.values.up is True


async def test_snmp_only_nvr_with_a_wrong_community_is_down_and_the_reason_names_snmp() -> None:
    class WrongCommunity:
        def resolve(self, ref: str) -> str:
            return "not-the-community" if "SNMP" in ref else SecretStore().resolve(ref)

    async with world_with("hikvision", **SNMP_ONLY) as (w, rec):
        ctx = ProbeContext(w.inventory, WrongCommunity(), ProbeConfig(timeout=3.0))
        r = mine(await probe_host(rec, ctx), rec)
    assert r.status == Status.FAIL
    assert [f.code for f in r.findings] == [FindingCode.RECORDER_DOWN]
    assert "SNMP 無回應" in r.reason and "community" in r.reason
    assert "埠 80" not in r.reason


# ---- 2. a disk row without a status column is judged on its sizes ----------------------


def test_hikvision_disk_rows_without_status_are_disks_with_their_sizes() -> None:
    pairs = walk(HIKVISION_NVR)
    (row,) = parse_disks(HIKVISION_DISK, pairs)
    assert row.index == "1.0"
    assert row.capacity_bytes == 5723166 * MB and row.free_bytes == 1638400 * MB
    reading = read_recorder_from_pairs(pairs, "hikvision")
    (disk,) = snmp_disks(reading, "hikvision")
    assert (disk.id, disk.kind, disk.status) == ("1", StorageKind.DISK, DiskStatus.UNKNOWN)
    verdict = judge_disks([disk], 95.0)
    assert verdict.problems == [] and verdict.values is not None
    assert verdict.values[0].capacity_bytes == 5723166 * MB
    assert "硬碟 1 已用 71%（6.0 TB 中剩 1.7 TB）" in verdict.summary
    # full is judged too, with no status at all
    full = read_recorder_from_pairs(
        [(o, 0) if o.endswith(".241.1.4.1.0") else (o, v) for o, v in pairs], "hikvision"
    )
    v = judge_disks(snmp_disks(full, "hikvision"), 95.0, overwrite=False)
    assert [f.code for f in v.findings] == [FindingCode.DISK_FULL]


async def test_snmp_only_nvr_with_statusless_disk_rows_gets_a_disk_answer() -> None:
    quirks = frozenset({Quirk.SNMP_DISKS_WITHOUT_STATUS})
    async with world_with("hikvision", quirks, **SNMP_ONLY) as (w, rec):
        results = await probe_recording(rec, w.ctx)
        host = mine(await probe_host(rec, w.ctx), rec)
    r = mine(results, rec)
    assert "沒有可查詢錄影的通訊協定" not in r.reason
    assert r.driver == "snmp" and r.values is not None
    disks = r.values.disks or ()
    assert disks and all(d.kind == "disk" and d.capacity_bytes for d in disks)
    assert [d.id for d in disks] == [str(n) for n in range(1, len(disks) + 1)]
    assert "硬碟 1 已用" in r.reason and "TB" in r.reason
    # footage cannot be searched over SNMP: said, and the storage still told
    assert r.status == Status.UNKNOWN and "snmp 只提供硬碟狀態" in r.reason
    # the host check reads the serial (hikEntityIndex) and the kind (hikEntityType)
    assert host.status == Status.OK and host.values is not None
    assert host.values.serial == w.sim.device(rec).serial


# ---- 3. a Synology storage pool is no full disk ----------------------------------------


def test_synology_dsm7_pool_is_not_a_full_disk_and_the_volume_tells_its_use() -> None:
    reading = read_recorder_from_pairs(walk(SYNOLOGY_DSM7), "synology")
    storage = snmp_disks(reading, "synology")
    assert [(d.id, d.kind.value, d.name) for d in storage] == [
        ("1", "disk", "Disk 1"),
        ("2", "disk", "Disk 2"),
        ("pool-1", "pool", "Storage Pool 1"),
        ("volume-1", "volume", "/volume1"),
    ]
    verdict = judge_disks(storage, 95.0, overwrite=False)
    assert verdict.findings == [] and verdict.problems == []
    assert "硬碟 4" not in verdict.summary and "硬碟 3" not in verdict.summary
    # the volume's size and use, as DSM's Storage Manager shows them
    assert "硬碟 2 顆正常" in verdict.summary
    assert "儲存空間 1（/volume1）已用 61%（5.9 TB 中剩 2.3 TB）" in verdict.summary
    values = {d.id: d for d in verdict.values or ()}
    assert values["pool-1"].free_bytes is None  # a pool's unallocated space is no free space
    assert values["volume-1"].capacity_bytes == 1450978620 * 4096
    assert values["1"].temperature_c == 31.0
    # a full volume is what fills (and a pool never does)
    assert any_full_volume(reading)


def any_full_volume(reading: Any) -> bool:
    import dataclasses

    storage = tuple(
        dataclasses.replace(s, used_bytes=s.size_bytes) if s.descr == "/volume1" else s
        for s in reading.storage
    )
    full = snmp_disks(dataclasses.replace(reading, storage=storage), "synology")
    v = judge_disks(full, 95.0, overwrite=False)
    return [(f.code, f.subject) for f in v.findings] == [(FindingCode.DISK_FULL, "disk-volume-1")]


async def test_synology_recorder_over_snmp_reports_its_volume_and_no_pool_as_disk() -> None:
    update = {**SNMP_ONLY, "vendor": Vendor.SYNOLOGY, "model": "DS920+"}
    async with world_with("generic", **update) as (w, rec):
        r = mine(await probe_recording(rec, w.ctx), rec)
        host = mine(await probe_host(rec, w.ctx), rec)
    assert FindingCode.DISK_FULL not in {f.code for f in r.findings}, r.reason
    assert r.values is not None and r.values.disks is not None
    assert {d.kind for d in r.values.disks} == {"disk", "pool", "volume"}
    assert "儲存空間 1（/volume1）已用" in r.reason and "顆正常" in r.reason
    assert "儲存集區 1（Storage Pool 1）正常" in r.reason
    # and the host check reads the model and DSM version (SYNOLOGY-SYSTEM-MIB)
    assert host.values is not None and host.values.model == "DS920+"
    assert host.values.firmware == "DSM 7.2.1-69057"


# ---- 4. a 403 on an optional ISAPI endpoint is not a refused login --------------------


async def test_a_403_is_one_endpoint_forbidden_and_a_401_the_login_refused() -> None:
    from aiohttp import web

    refused = (
        b'<?xml version="1.0" encoding="UTF-8"?><ResponseStatus version="1.0" '
        b'xmlns="http://www.hikvision.com/ver20/XMLSchema"><statusCode>4</statusCode>'
        b"<statusString>Invalid Operation</statusString>"
        b"<subStatusCode>lowPrivilege</subStatusCode></ResponseStatus>"
    )

    async def handler(request: web.Request) -> web.Response:
        if request.path == "/ISAPI/System/Video/inputs/channels":
            return web.Response(status=403, body=refused, content_type="application/xml")
        return web.Response(status=401)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with DeviceHttp(HttpLimits(timeout=3.0), ("admin", "pw")) as http:
            with pytest.raises(DeviceError) as err:
                await http.get(f"http://127.0.0.1:{port}/ISAPI/System/Video/inputs/channels")
            assert err.value.reason_code == ReasonCode.FORBIDDEN and not err.value.final
            assert "lowPrivilege" in err.value.zh_reason
            with pytest.raises(DeviceError) as err:
                await http.get(f"http://127.0.0.1:{port}/ISAPI/System/deviceInfo")
            assert err.value.reason_code == ReasonCode.AUTH and err.value.final
    finally:
        await runner.cleanup()


async def test_ds7616ni_q2_refusing_video_inputs_is_up_not_auth_failed() -> None:
    async with world_with("hikvision", model="DS-7616NI-Q2") as (w, rec):
        assert w.sim.device(rec).quirks  # the model's captured shape
        # its IP cameras reached only through it: their answer is the recorder's signal
        inv = w.inventory
        cams = {
            c.id: c.model_copy(update={"address": None, "credentials": None})
            for c in inv.cameras_of(rec)
        }
        fields = {name: getattr(inv, name) for name in Inventory.model_fields}
        inv = Inventory.model_construct(**{**fields, "cameras": {**inv.cameras, **cams}})
        ctx = ProbeContext(inv, SecretStore(), w.ctx.config)
        results = await probe_host(rec, ctx)
        recording = mine(await probe_recording(rec, ctx), rec)
    r = mine(results, rec)
    assert r.status == Status.OK, r.reason
    assert FindingCode.AUTH_FAILED not in {f.code for f in r.findings}
    # its channels: the recorder is up, the signal just not offered
    cams = [x for x in results if x.device != rec]
    assert cams and all(c.status == Status.OK for c in cams), [c.reason for c in cams]
    # deviceInfo and Storage work with the same login
    assert recording.values is not None and recording.values.disks


async def test_a_picture_endpoint_the_account_may_not_use_is_passed_over() -> None:
    # The login works (deviceInfo answers) but the ISAPI picture is refused for this
    # account: the picture is taken the next way (ONVIF's snapshot), not "wrong password".
    async with world_with("hikvision") as (w, _rec):
        cam = w.campus.ip_camera("hikvision")
        w.sim.device(cam).quirks = frozenset({Quirk.ISAPI_PICTURE_LOW_PRIVILEGE})
        host = mine(await probe_host(cam, w.ctx), cam)
        r = mine(await probe_picture(cam, w.ctx), cam)
    assert host.status == Status.OK, host.reason
    assert r.status == Status.OK, r.reason
    assert r.driver == "onvif" and "帳號或密碼" not in r.reason


def test_a_device_refusing_every_question_has_refused_the_login() -> None:
    campus = small_campus(None, set_env=False)
    from probes.context import target_of

    rec = campus.recorder("hikvision")
    t = target_of(rec, ProbeContext(campus.inventory, SecretStore()))
    assert t is not None
    forbid = DeviceError(ReasonCode.FORBIDDEN, "主機不開放此帳號使用此功能（HTTP 403）")
    v = judge_host(t, Gathered(errors=[forbid, forbid]), {}, 60, dt.datetime.now(dt.UTC))
    assert [f.code for f in v.findings] == [FindingCode.AUTH_FAILED]


# ---- 5. SNMP host checks read model, firmware, serial and status ------------------------


@pytest.mark.parametrize(
    ("text", "vendor", "model", "firmware", "serial", "status"),
    [
        (DAHUA_NVR, "dahua", "DHI-NVR4216-4KS2", "4.000.0000000.1", "7C02B8APAZ12345",
         "deviceStatus good"),
        (SYNOLOGY_DSM7, "synology", "DS214se", "DSM 7.1-42962", "1380LWN012345",
         "systemStatus Normal"),
        (HIKVISION_NVR, "hikvision", None, None, "0820190412CCWR123456789WCVU", None),
    ],
)  # fmt: skip
def test_identity_from_the_vendor_mib_scalars(
    text: str, vendor: str, model: str | None, firmware: str | None, serial: str,
    status: str | None,
) -> None:
    reading = host_reading(dict(walk(text)), vendor)
    info = reading.identity
    assert info is not None
    assert (info.model, info.firmware, info.serial, info.status) == (
        model, firmware, serial, status)
    assert info.healthy is (True if status else None)
    if vendor == "hikvision":
        assert info.device_type == "NVR"  # hikEntityType NVR(2)
    if vendor == "synology":
        assert reading.system is not None and reading.system.uptime_s == pytest.approx(96897.79)


def test_a_device_that_says_it_failed_is_failing() -> None:
    status = "1.3.6.1.4.1.1004849.2.1.2.8.0|2|"
    failed = DAHUA_NVR.replace(status + "1", status + "0")
    info = host_reading(dict(walk(failed)), "dahua").identity
    assert info is not None and info.healthy is False and info.status == "deviceStatus bad"
    syno = SYNOLOGY_DSM7.replace("1.3.6.1.4.1.6574.1.3.0|2|1", "1.3.6.1.4.1.6574.1.3.0|2|2")
    info = host_reading(dict(walk(syno)), "synology").identity
    assert info is not None and info.healthy is False
    assert "powerStatus Failed" in (info.status or "")


async def test_firmware_change_fires_on_an_snmp_only_recorder() -> None:
    async with world_with("dahua", **SNMP_ONLY) as (w, rec):
        first = mine(await probe_host(rec, w.ctx), rec)
        assert first.values is not None and first.values.firmware
        w.sim.device(rec).firmware = "4.001.0000009.0"
        again = mine(await probe_host(rec, w.ctx), rec)
    assert first.status == Status.OK and first.values.model == w.sim.device(rec).model
    assert [f.code for f in again.findings] == [FindingCode.FIRMWARE_CHANGED]
    assert "4.001.0000009.0" in again.reason


def test_identity_oids_are_the_mibs() -> None:
    from tests.test_snmp_parsing import _mib_objects

    mibs = FIXTURES / "snmp" / "mibs"
    if not mibs.is_dir():
        pytest.skip("MIBs absent")
    files = {
        "dahua": mibs / "dahua/DAHUA-SNMP-MIB",
        "synology": mibs / "synology/SYNOLOGY-SYSTEM-MIB",
        "hikvision": mibs / "hikvision/HIKVISION-MIB",
    }
    want = {
        "dahua": {"deviceType": "model", "softwareRevision": "firmware",
                  "serialNumber": "serial"},
        "synology": {"modelName": "model", "version": "firmware", "serialNumber": "serial"},
    }  # fmt: skip
    for vendor, names in want.items():
        oids, _ = _mib_objects(files[vendor])
        ident = profile_for(vendor).identity
        for name, field in names.items():
            assert f"{oids[name]}.0" in getattr(ident, field), (vendor, name)
    oids, _ = _mib_objects(*files.values())
    hik = profile_for("hikvision").identity
    assert f"{oids['hikEntityIndex']}.0" in hik.serial
    assert hik.device_type is not None and hik.device_type[0] == f"{oids['hikEntityType']}.0"
    dahua = {s.name: s.oid for s in profile_for("dahua").identity.status}
    assert dahua["deviceStatus"] == f"{oids['deviceStatus']}.0"
    syno = {s.name: s.oid for s in profile_for("synology").identity.status}
    for name in ("systemStatus", "powerStatus", "systemFanStatus", "cpuFanStatus"):
        assert syno[name] == f"{oids[name]}.0"


# ---- 6. numbers and words ---------------------------------------------------------------


def test_sizes_print_as_the_label_says() -> None:
    # A 6 TB disk (ST6000VX001: 6,001,175,126,016 bytes) as ISAPI reports it: 5723166 MB
    assert fmt_bytes(5723166 * MB) == "6.0 TB"
    assert fmt_bytes(1907729 * MB) == "2.0 TB"  # the DS-7608NXI-I2's 2 TB disk
    assert fmt_bytes(237708 * MB) == "249.3 GB"  # a "256 GB" card shows 249 GB formatted
    disk = Disk("1", DiskStatus.OK, 5723166 * MB, 0)
    v = judge_disks([disk], 95.0, overwrite=False)
    assert "6.0 TB" in v.problems[0] and "5589" not in v.problems[0]


async def test_snmp_that_answers_without_a_disk_table_says_so() -> None:
    quirks = frozenset({Quirk.SNMP_NO_DISK_TABLE})
    async with world_with("dahua", quirks, **SNMP_ONLY) as (w, rec):
        r = mine(await probe_recording(rec, w.ctx), rec)
    assert r.status == Status.UNKNOWN
    assert "沒有可查詢錄影的通訊協定" not in r.reason
    assert "SNMP 有回應，但未提供硬碟資訊" in r.reason and "DAHUA-SNMP-MIB" in r.reason
    reading = read_recorder_from_pairs(walk(DAHUA_NVR), "dahua")
    assert snmp_disks(reading, "dahua") == []
    assert "SNMP 有回應" in no_storage_reason(reading, "dahua")


async def test_a_picture_timeout_names_the_lens_position() -> None:
    from camwatch.scheduler import probe_once
    from camwatch.service import subject_for

    campus = small_campus(None, set_env=False)
    cam = next(iter(campus.inventory.cameras.values()))

    async def hangs(check: Any, device: str, deadline: float) -> list[CheckResult]:
        await asyncio.sleep(30)
        return []

    from probes.result import CheckKind

    (r,) = await probe_once(
        [(CheckKind.PICTURE, cam.id)], hangs, recorder_of=lambda d: "r", probe_timeout=0.2,
        retries=0, subject_of=subject_for(campus.inventory),
    )
    assert r.reason.startswith(f"{cam.position}鏡頭：") and "逾時" in r.reason


# ---- 7. only the listed protocols; no library noise under --json ------------------------


async def test_channels_of_an_snmp_only_recorder_are_not_probed_over_rtsp() -> None:
    async with world_with("dvr-004", **SNMP_ONLY) as (w, rec):
        r_addr = w.inventory.recorders[rec].address
        cam = next(c for c in w.inventory.cameras_of(rec) if c.address is None)
        with listener(r_addr.host, r_addr.rtsp_port) as seen:
            r = mine(await probe_picture(cam.id, w.ctx), cam.id)
            await asyncio.sleep(0.2)
    assert r.status == Status.UNKNOWN
    assert "snmp" in r.reason and cam.position in r.reason
    assert seen == []  # nothing was sent to its port 554


@contextlib.contextmanager
def listener(host: str, port: int) -> Iterator[list[str]]:
    """A TCP port that records who connected (and closes on them)."""
    seen: list[str] = []
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen()
    srv.settimeout(0.05)
    stop = False

    def accept() -> None:
        while not stop:
            try:
                conn, addr = srv.accept()
            except (TimeoutError, OSError):
                continue
            seen.append(str(addr))
            conn.close()

    import threading

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    try:
        yield seen
    finally:
        stop = True
        th.join(1)
        srv.close()


def rtsp_404_server(host: str) -> tuple[socket.socket, int]:
    """An RTSP server that answers every request 404 (FFmpeg then prints a warning)."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, 0))
    srv.listen()
    return srv, srv.getsockname()[1]


async def test_check_json_keeps_ffmpeg_noise_off_stdout_and_stderr(tmp_path: Path) -> None:
    import threading

    srv, port = rtsp_404_server("127.0.0.1")

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                data = conn.recv(4096).decode(errors="ignore")
                cseq = next(
                    (ln for ln in data.split("\r\n") if ln.lower().startswith("cseq")), "CSeq: 1"
                )
                conn.sendall(f"RTSP/1.0 404 Not Found\r\n{cseq}\r\n\r\n".encode())

    threading.Thread(target=serve, daemon=True).start()
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        f"""
campus: {{id: c, name: 測試學校}}
units:
  - {{id: u, name: 總務處, manager: {{name: 王, title: 組長}}, head: {{name: 陳, title: 主任}}}}
sites:
  buildings: [{{id: b, name: 教學大樓}}]
  machine_rooms: [{{id: m, building: b, name: 機房}}]
recorders:
  - {{id: r1, name: 主機, unit: u, machine_room: m, vendor: hikvision, protocols: [rtsp],
     address: {{host: 127.0.0.1, rtsp_port: {port}, http_port: {port}}},
     credentials: {{username: admin, password: "${{T13_PW}}"}}, channels: 1}}
cameras:
  - {{id: c1, name: 走廊, kind: analog, recorder: r1, channel: 1,
     location: {{building: b, floor: "1", area: 走廊}}, position: 教學大樓1樓走廊}}
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMWATCH_")}
    env.update(T13_PW="x", CAMWATCH_STORE_URL=f"sqlite:///{tmp_path}/log.db", CAMWATCH_TIMEOUT="4")
    cli = [sys.executable, "-c", "from camwatch.cli import main; main()"]
    try:
        done = await asyncio.to_thread(
            subprocess.run, [*cli, "check", "--inventory", str(inventory), "--json", "c1"],
            capture_output=True, text=True, env=env, timeout=90, stdin=subprocess.DEVNULL,
        )
    finally:
        srv.close()
    assert done.stderr == "", done.stderr
    answers = json.loads(done.stdout)
    picture = answers[0]["checks"]["picture"]
    assert picture["status"] == "unknown" and "教學大樓1樓走廊鏡頭" in picture["reason"]


# ---- 8. full is normal for a recorder that overwrites -----------------------------------


async def test_dahua_overwrite_setting_is_read_from_the_device() -> None:
    async with world_with("dahua") as (w, rec):
        dev = w.sim.device(rec)
        for d in dev.disks:
            d.free = 0  # full, and overwriting (StorageGroup OverWrite=true)
        ok = mine(await probe_recording(rec, w.ctx), rec)
        await w.sim.fault(rec, "disk-full")  # full, and set to stop
        bad = mine(await probe_recording(rec, w.ctx), rec)
    assert ok.status == Status.OK, ok.reason
    assert not ok.findings and "循環覆寫最舊錄影，屬正常" in ok.reason
    assert FindingCode.DISK_FULL in {f.code for f in bad.findings}


async def test_a_full_disk_with_overwrite_unknown_is_a_warning_once() -> None:
    async with world_with("hikvision") as (w, rec):
        for d in w.sim.device(rec).disks:
            d.free = 0  # as several real NVRs in overwrite mode report (freeSpace 0)
        first = mine(await probe_recording(rec, w.ctx), rec)
        second = mine(await probe_recording(rec, w.ctx), rec)
        # the custodian answers: overwrite is off
        ctx = ProbeContext(reshaped(w.inventory, rec, overwrite=False), SecretStore(),
                           w.ctx.config)
        off = mine(await probe_recording(rec, ctx), rec)
        # ... or on
        ctx = ProbeContext(reshaped(w.inventory, rec, overwrite=True), SecretStore(),
                           w.ctx.config)
        on = mine(await probe_recording(rec, ctx), rec)
    assert first.status == Status.OK, first.reason
    assert {f.code for f in first.findings} == {FindingCode.DISK_FULL_OVERWRITE_UNKNOWN}
    assert "無法確認是否循環覆寫" in first.reason
    assert not second.findings and "已提醒" in second.reason
    assert FindingCode.DISK_FULL in {f.code for f in off.findings}
    assert not on.findings and on.status == Status.OK


def test_an_sd_card_is_the_cameras_storage() -> None:
    fixture = FIXTURES / "hikvision_isapi/raw_xml/ContentMgmt.Storage/hdd1_nas1.xml"
    if not fixture.is_file():
        pytest.skip("fixture absent")
    campus = small_campus(None, set_env=False)
    from probes.context import target_of

    cam = campus.ip_camera("hikvision")
    t = target_of(cam, ProbeContext(campus.inventory, SecretStore()))
    assert t is not None and not t.is_recorder
    from dataclasses import replace

    disks = [
        replace(d, kind=StorageKind.CARD, id=f"card-{d.id}") if d.kind == StorageKind.DISK else d
        for d in isapi.parse_storage(fixture.read_bytes())
    ]
    failed = [replace(disks[0], status=DiskStatus.FAILED, raw_status="error"), disks[1]]
    from probes.facts import DeviceInfo, HostFacts

    got = Gathered(facts=HostFacts(info=DeviceInfo(model="DS-2CD2386G2-IU")), driver="isapi",
                   disks=failed)
    v = judge_host(t, got, {}, 60, dt.datetime.now(dt.UTC))
    assert v.status == Status.FAIL
    assert [(f.code, f.subject) for f in v.findings] == [(FindingCode.DISK_FAILED, "disk-card-1")]
    assert "記憶卡 1 故障（error）" in v.reason and "主機" not in v.reason
    assert v.values is not None and v.values.disks is not None
    assert {d.kind for d in v.values.disks} == {"card", "nas"}
    healthy = judge_host(t, Gathered(facts=got.facts, driver="isapi", disks=disks), {}, 60,
                         dt.datetime.now(dt.UTC))
    assert healthy.status == Status.OK and "記憶卡 1 已用" in healthy.reason


async def test_an_ip_cameras_failed_card_is_found_by_its_host_check() -> None:
    from simulator.model import Disk as SimDisk

    async with world_with("hikvision") as (w, _rec):
        cam = w.campus.ip_camera("hikvision")
        dev = w.sim.device(cam)
        dev.disks = [SimDisk(1, 237708 * MB, 213093 * MB, status="failed")]
        r = mine(await probe_host(cam, w.ctx), cam)
    assert r.status == Status.FAIL, r.reason
    assert FindingCode.DISK_FAILED in {f.code for f in r.findings}
    assert r.reason.startswith("攝影機") and "記憶卡 1" in r.reason and "主機" not in r.reason



def test_a_cameras_card_is_exported_as_its_disk() -> None:

    from camwatch.state import LatestState
    from exporters.metrics import Exposition
    from probes.result import CheckKind
    from probes.values import DiskValues, HostValues

    campus = small_campus(None, set_env=False)
    cam = campus.ip_camera("hikvision")
    card = DiskValues("card-1", ok=False, free_bytes=0, capacity_bytes=237708 * MB, kind="card")
    state = LatestState()
    state.update([CheckResult(cam, CheckKind.HOST, Status.FAIL, "攝影機記憶卡 1 故障",
                              dt.datetime.now(dt.UTC), HostValues(up=True, disks=(card,)))])
    text = Exposition(state, campus.inventory).render().decode()
    assert f'camwatch_disk_ok{{device="{cam}",disk="card-1"}} 0' in text
    assert f'camwatch_disk_capacity_bytes{{device="{cam}",disk="card-1"}}' in text


def test_a_cameras_offline_network_share_is_a_remark_not_a_failed_camera() -> None:
    # DS-2CD2146G2-ISU's Storage reply (devices_json): no card, an NFS share "offline"
    shaped = b"""<?xml version="1.0" encoding="UTF-8"?>
<storage version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<hddList version="1.0" xmlns="http://www.hikvision.com/ver10/XMLSchema" size="8"></hddList>
<nasList version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<nas version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema"><id>9</id>
<addressingFormatType>ipaddress</addressingFormatType><ipAddress>10.0.0.9</ipAddress>
<portNo>0</portNo><nasType>NFS</nasType><path>/volume2/Cameras</path>
<status>offline</status><capacity>0</capacity><freeSpace>0</freeSpace>
<property>RW</property><mountType>NFS</mountType></nas></nasList>
<workMode>quota</workMode></storage>"""
    campus = small_campus(None, set_env=False)
    from probes.context import target_of
    from probes.facts import DeviceInfo, HostFacts

    cam = campus.ip_camera("hikvision")
    t = target_of(cam, ProbeContext(campus.inventory, SecretStore()))
    assert t is not None
    (share,) = isapi.parse_storage(shaped)
    assert (share.id, share.kind, share.status) == ("nas-9", StorageKind.NAS, DiskStatus.FAILED)
    got = Gathered(facts=HostFacts(info=DeviceInfo(model="DS-2CD2146G2-ISU")), driver="isapi",
                   disks=[share])
    v = judge_host(t, got, {}, 60, dt.datetime.now(dt.UTC))
    assert v.status == Status.OK and v.findings == []
    assert "網路儲存 9（/volume2/Cameras）離線（offline）" in v.reason


@pytest.mark.parametrize(
    ("text", "profile", "model"),
    [(HIKVISION_NVR, "hikvision", None), (SYNOLOGY_DSM7, "synology", "DS214se"),
     (DAHUA_NVR, "dahua", "DHI-NVR4216-4KS2")],
)
def test_a_recorder_listed_as_generic_is_read_by_what_its_agent_says(
    text: str, profile: str, model: str | None
) -> None:
    # sysObjectID names Hikvision and Dahua; a DSM says net-snmp but answers its MIB
    reading = host_reading(dict(walk(text)), "generic")
    assert reading.profile == profile
    assert reading.identity is not None and reading.identity.model == model


async def test_an_snmp_only_synology_listed_as_generic_still_shows_its_volume() -> None:
    async with world_with("generic", **SNMP_ONLY) as (w, rec):
        w.sim.device(rec).vendor = Vendor.SYNOLOGY  # the inventory does not say so
        w.sim.device(rec).model = "DS920+"
        host = mine(await probe_host(rec, w.ctx), rec)
        r = mine(await probe_recording(rec, w.ctx), rec)
    assert host.values is not None and host.values.model == "DS920+"
    assert "儲存空間 1（/volume1）已用" in r.reason and "儲存集區 1" in r.reason


@pytest.mark.parametrize(
    ("vendor", "quirk", "text"),
    [
        ("hikvision", Quirk.SNMP_SYSDESCR_ONLY, HIKVISION_SYSDESCR_ONLY),
        ("hikvision", Quirk.SNMP_DISKS_WITHOUT_STATUS, HIKVISION_NVR),
        ("dahua", Quirk.SNMP_NO_DISK_TABLE, DAHUA_NVR),
    ],
)
def test_the_simulator_serves_the_captured_agent_shapes(vendor: str, quirk: Quirk,
                                                         text: str) -> None:
    """The simulated agent of each quirk serves the OIDs of the walk of that shape (the
    enterprise subtrees and the system group; a disk table's rows as the capture's)."""
    import re

    from simulator.model import DeviceKind, SimDevice
    from simulator.model import Disk as SimDisk
    from simulator.snmp import device_records

    dev = SimDevice("r", DeviceKind.RECORDER, Vendor(vendor), model="M", firmware="1.0",
                    serial="S", disks=[SimDisk(1, 6 * 10**12, 10**12)], quirks=frozenset({quirk}))
    ours = {oid for oid, _t, _v in device_records(dev)}
    real = {oid for oid, _v in walk(text)}

    def shape(oids: set[str]) -> set[str]:
        return {re.sub(r"\.241\.1\.(\d+)\.\d+\.0$", r".241.1.\1.N.0", o) for o in oids
                if o.startswith("1.3.6.1.4.1.") or o.startswith("1.3.6.1.2.1.1.")
                or o.startswith("1.3.6.1.2.1.25.")}

    system = {o for o in shape(ours) if o.startswith("1.3.6.1.2.1.1.")}
    assert shape(real) - system <= shape(ours), shape(real) - shape(ours)
    assert not {o for o in shape(ours) if o.startswith("1.3.6.1.2.1.25.")} - shape(real)
    vendor_ours = {o for o in shape(ours) if o.startswith("1.3.6.1.4.1.")}
    assert vendor_ours == {o for o in shape(real) if o.startswith("1.3.6.1.4.1.")}
