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

On a loaded CI machine a probe takes several times as long as on a quiet one, so no
figure here is a fixed number of seconds (tests/waits.py): a defence is given all the
time it could want (`NOT_UNDER_TEST_S`), so only the defence decides the reason; the
deadline, where it is what is tested, scales with a healthy probe measured in the same
test; and "alone" is judged against the same gather with a well-behaved device in the
hostile one's place.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from camwatch.secrets import SecretStore
from inventory.models import Address, Inventory, Protocol
from probes.api import ProbeConfig, ProbeContext, probe
from probes.result import CheckKind, CheckResult, Status
from simulator.testing import SimulatedCampus, SmallCampus, small_campus
from tests.hostile import HitCounter, HostileDevice
from tests.waits import LATE_S, NOT_UNDER_TEST_S

MAX_BODY = 2 * 1024 * 1024
HOSTILE_ID = "cam-hostile"
# The modes a deadline defends against: the device sends slowly or stops mid-reply.
DEADLINE_MODES = {"slow-bytes", "stalled-body"}
# Their deadline: at least this, and this many times a well-behaved probe of the same
# camera measured just before (so the probe surely reaches the hostile reply in time).
DEADLINE_MIN_S = 2.0
DEADLINE_PER_BENIGN = 3.0
# How much slower than beside a well-behaved device a probe may be beside a hostile one
# (the machine's load moves between two measurements; a hostile device that held the
# loop or a shared resource costs its whole misbehaviour, seconds to minutes).
SLOWER = 3.0
SLOWER_PLUS_S = 1.0


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


def context(inv: Inventory, allowed: tuple[str, ...] = (),
            timeout: float = NOT_UNDER_TEST_S) -> ProbeContext:
    return ProbeContext(inv, SecretStore(), ProbeConfig(
        timeout=timeout, max_body_bytes=MAX_BODY, allowed_redirect_hosts=allowed))


@pytest.fixture
async def campus(tmp_path: Path) -> AsyncIterator[SmallCampus]:
    c = small_campus(tmp_path, cameras=6, recorders=4, set_env=True)
    async with SimulatedCampus(c.inventory, c.passwords):
        yield c


@dataclass
class SideBySide:
    bad: list[CheckResult]  # the hostile (or stand-in) camera's picture check
    good: list[CheckResult]  # the healthy camera's, in the same gather
    bad_took: float
    good_took: float
    peak: int  # bytes allocated at most meanwhile (tracemalloc)


async def probe_side_by_side(ctx: ProbeContext, healthy: str,
                             deadline_s: float | None = None) -> SideBySide:
    """The hostile camera's picture and host checks and a healthy camera's picture check
    in one gather, sharing the context's memory and driver state. `deadline_s`: the
    hostile camera's probes get that deadline (the scheduler's), the healthy one keeps
    the context's generous timeout."""
    hostile_ctx = ctx if deadline_s is None else dataclasses.replace(
        ctx, config=dataclasses.replace(ctx.config, timeout=deadline_s))

    async def timed(check: CheckKind, device: str, c: ProbeContext
                    ) -> tuple[list[CheckResult], float]:
        t0 = time.monotonic()
        res = await probe(check, device, c)
        return res, time.monotonic() - t0

    tracemalloc.start()
    try:
        (bad, bad_took), (good, good_took), (host, _) = await asyncio.gather(
            timed(CheckKind.PICTURE, HOSTILE_ID, hostile_ctx),
            timed(CheckKind.PICTURE, healthy, ctx),
            timed(CheckKind.HOST, HOSTILE_ID, hostile_ctx))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert host and host[0].status in (Status.OK, Status.UNKNOWN, Status.FAIL)
    return SideBySide(bad, good, bad_took, good_took, peak)


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
    # measurement (tracemalloc slows a first WSDL load several times)
    await probe(CheckKind.PICTURE, healthy, context(campus.inventory))
    # the baseline: the same gather, a well-behaved device in the hostile one's place.
    # Each gather has a context of its own (as cold as the other, and no picture
    # memory: the simulated camera serves the same cached snapshot for 1 s, which a
    # camera with a baseline would call frozen)
    async with HostileDevice("healthy") as ok_dev:
        inv = with_hostile_camera(campus, ok_dev)
        await probe(CheckKind.PICTURE, HOSTILE_ID, context(inv))
        base = await probe_side_by_side(context(inv), healthy)
    assert base.bad[0].status == Status.OK, base.bad[0].reason
    assert base.good[0].status == Status.OK, base.good[0].reason

    deadline = None
    if mode in DEADLINE_MODES:
        deadline = round(max(DEADLINE_MIN_S, DEADLINE_PER_BENIGN * base.bad_took), 1)
    async with HitCounter("127.0.0.2") as other, HostileDevice(mode, other=other) as dev:
        ctx = context(with_hostile_camera(campus, dev))
        got = await probe_side_by_side(ctx, healthy, deadline)
        assert other.hits == 0, f"{mode}: a host the inventory does not name was contacted"
        assert not dev.dribble_done, f"{mode}: the probe waited for the device to finish"
    r = got.bad[0]
    assert r.status in (Status.UNKNOWN, Status.FAIL), (mode, r)
    assert words in r.reason, (mode, r.reason)
    assert got.peak < 64 * 1024 * 1024, f"{mode}: {got.peak / 1e6:.0f} MB allocated"
    # the healthy camera next to it was probed as usual
    assert got.good[0].status == Status.OK, got.good[0].reason
    assert HOSTILE_ID not in ctx.memory.baselines  # nothing learned from a hostile frame
    if deadline is not None:
        # bounded by its deadline, not by the device (which dribbles or stalls for
        # minutes): cut once the device was reached, answered by the deadline...
        assert "GetProfiles" in dev.requests, dev.requests
        assert f"{deadline:g} 秒" in r.reason, (r.reason, deadline)
        assert got.bad_took < deadline + LATE_S, (mode, got.bad_took, deadline)
        # ...and alone: the healthy camera answered while the hostile one still held
        # its probe
        assert got.good_took < got.bad_took, (mode, got.good_took, got.bad_took)
    else:
        # refused by its defence, about as fast as a well-behaved device answers
        assert got.bad_took < SLOWER * base.bad_took + SLOWER_PLUS_S, (
            mode, got.bad_took, base.bad_took)
        # and alone: the healthy camera about as fast as beside a well-behaved device
        assert got.good_took < SLOWER * base.good_took + SLOWER_PLUS_S, (
            mode, got.good_took, base.good_took)
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
