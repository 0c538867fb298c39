"""Trust (issue 8): hostile devices, through the full probe (probes.api.probe) and the
real drivers, side by side with a healthy simulated device.

D's tests/test_drivers_hostile.py covers the HTTP helper and the host/recording checks
against hostile ISAPI/ONVIF peers, E's tests/test_picture_probe.py hostile ISAPI
snapshots. This file covers what is left: the ONVIF picture path (snapshot/stream URIs
the device names, pointing at another host or at the link-local metadata address),
redirects and bodies through `probe(PICTURE, ...)`, bounded memory (tracemalloc), and
other devices unaffected in the same gather.

Guards: probes.drivers.frames (_same_host on device-named URIs before any request),
probes.drivers.http (redirect allow-list, size cap, overall deadline, safe XML),
probes.scoring (pixel cap before decoding), and `probe` never raising.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from camwatch.secrets import SecretStore
from inventory.models import Address, Inventory, Protocol
from probes.api import ProbeConfig, ProbeContext, probe
from probes.result import CheckKind, CheckResult, Status
from simulator.testing import SimulatedCampus, SmallCampus, small_campus
from tests.hostile import HitCounter, HostileDevice

TIMEOUT = 2.0
MAX_BODY = 2 * 1024 * 1024
HOSTILE_ID = "cam-hostile"


def with_hostile_camera(campus: SmallCampus, dev: HostileDevice) -> Inventory:
    """The campus inventory plus one ONVIF-only IP camera served by `dev`."""
    inv = campus.inventory
    template = inv.cameras[campus.ip_camera()]
    cam = template.model_copy(update={
        "id": HOSTILE_ID,
        "channel": 99,
        "protocols": [Protocol.ONVIF],
        "address": Address(host=dev.host, http_port=dev.port, rtsp_port=dev.port),
    })
    return inv.model_copy(update={"cameras": {**inv.cameras, HOSTILE_ID: cam}})


def context(inv: Inventory, allowed: tuple[str, ...] = ()) -> ProbeContext:
    return ProbeContext(inv, SecretStore(), ProbeConfig(
        timeout=TIMEOUT, max_body_bytes=MAX_BODY, allowed_redirect_hosts=allowed))


@pytest.fixture
async def campus(tmp_path: Path) -> AsyncIterator[SmallCampus]:
    c = small_campus(tmp_path, cameras=6, recorders=4, set_env=True)
    async with SimulatedCampus(c.inventory, c.passwords):
        yield c


async def probe_side_by_side(
    ctx: ProbeContext, healthy: str
) -> tuple[list[CheckResult], list[CheckResult], float, float, int]:
    """The hostile camera's picture and host checks and a healthy camera's picture check
    in one gather; (hostile picture, healthy picture, hostile took, healthy took, peak
    bytes allocated meanwhile)."""

    async def timed(check: CheckKind, device: str) -> tuple[list[CheckResult], float]:
        t0 = time.monotonic()
        res = await probe(check, device, ctx)
        return res, time.monotonic() - t0

    tracemalloc.start()
    try:
        (bad, bad_took), (good, good_took), (host, _) = await asyncio.gather(
            timed(CheckKind.PICTURE, HOSTILE_ID), timed(CheckKind.PICTURE, healthy),
            timed(CheckKind.HOST, HOSTILE_ID))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert host and host[0].status in (Status.OK, Status.UNKNOWN, Status.FAIL)
    return bad, good, bad_took, good_took, peak


CASES = [
    # mode, words expected in the reason
    ("snapshot-elsewhere", "未登錄"),
    ("snapshot-metadata", "169.254.169.254"),
    ("stream-elsewhere", "未登錄"),
    ("redirect-elsewhere", "拒絕"),
    ("redirect-metadata", "169.254.169.254"),
    ("gigabyte-snapshot", "過大"),
    ("endless-snapshot", "過大"),
    ("slow-bytes", "逾時"),
    ("stalled-body", "逾時"),
    ("billion-laughs", "不安全"),
    ("external-entity", "不安全"),
    ("huge-jpeg", "30000x30000"),
    ("truncated-jpeg", "截斷"),
    ("wrong-type", "JPEG"),
]


@pytest.mark.parametrize(("mode", "words"), CASES, ids=[c[0] for c in CASES])
async def test_hostile_camera_is_unknown_bounded_and_alone(
    campus: SmallCampus, mode: str, words: str
) -> None:
    healthy = campus.ip_camera()
    # warm up imports, zeep's WSDLs and the healthy camera's first frame outside the
    # measurement (tracemalloc slows a first WSDL load past the probe timeout)
    warm = context(campus.inventory)
    await probe(CheckKind.PICTURE, healthy, warm)
    async with HostileDevice("healthy") as ok_dev:
        await probe(CheckKind.PICTURE, HOSTILE_ID, context(with_hostile_camera(campus, ok_dev)))
    async with HitCounter("127.0.0.2") as other, HostileDevice(mode, other=other) as dev:
        ctx = context(with_hostile_camera(campus, dev))
        ctx.memory.baselines.update(warm.memory.baselines)
        bad, good, bad_took, good_took, peak = await probe_side_by_side(ctx, healthy)
        assert other.hits == 0, f"{mode}: a host the inventory does not name was contacted"
    r = bad[0]
    assert r.status in (Status.UNKNOWN, Status.FAIL), (mode, r)
    assert words in r.reason, (mode, r.reason)
    assert bad_took < 2 * TIMEOUT + 1.5, (mode, bad_took)
    assert peak < 64 * 1024 * 1024, f"{mode}: {peak / 1e6:.0f} MB allocated"
    # the healthy camera next to it was probed as usual
    assert good[0].status == Status.OK, good[0].reason
    assert good_took < 2 * TIMEOUT  # not held up by the hostile one (generous for busy CI)
    assert HOSTILE_ID not in ctx.memory.baselines  # nothing learned from a hostile frame
    if mode == "external-entity":
        assert "root:" not in r.reason and "/bin/" not in r.reason


async def test_healthy_hostile_server_is_ok_so_the_cases_above_mean_something(
    campus: SmallCampus,
) -> None:
    async with HitCounter("127.0.0.2") as other, HostileDevice("healthy", other=other) as dev:
        ctx = context(with_hostile_camera(campus, dev))
        res = await probe(CheckKind.PICTURE, HOSTILE_ID, ctx)
        assert res[0].status == Status.OK, res[0].reason
        assert "GetSnapshotUri" in dev.requests and "/snap.jpg" in dev.requests
        host = await probe(CheckKind.HOST, HOSTILE_ID, ctx)
        assert host[0].status == Status.OK, host[0].reason
        assert other.hits == 0


@pytest.mark.parametrize("mode", ["snapshot-elsewhere", "redirect-elsewhere"])
async def test_other_host_is_contacted_only_when_allowed(campus: SmallCampus, mode: str) -> None:
    async with HitCounter("127.0.0.2") as other, HostileDevice(mode, other=other) as dev:
        inv = with_hostile_camera(campus, dev)
        await probe(CheckKind.PICTURE, HOSTILE_ID, context(inv))
        assert other.hits == 0
        await probe(CheckKind.PICTURE, HOSTILE_ID, context(inv, allowed=("127.0.0.2",)))
        assert other.hits >= 1


async def test_invalid_device_time_is_unknown_clock_not_a_crash(campus: SmallCampus) -> None:
    async with HostileDevice("bad-time") as dev:
        res = await probe(CheckKind.HOST, HOSTILE_ID, context(with_hostile_camera(campus, dev)))
    r = res[0]
    assert r.status in (Status.OK, Status.UNKNOWN)
    assert getattr(r.values, "clock_offset_s", None) is None
    assert "時間" in r.reason
