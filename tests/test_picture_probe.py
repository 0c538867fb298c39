"""The picture probe against the simulated campus (real ONVIF/ISAPI/Dahua snapshots with
digest auth), against hostile snapshot servers, and the RTSP reader against GStreamer."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Callable

import numpy as np
import pytest
from aiohttp import web

from camwatch.secrets import SecretStore
from inventory.models import Address, Protocol
from probes.api import ProbeConfig, ProbeContext
from probes.baseline import CameraBaseline, decode_detail
from probes.context import JsonValues
from probes.drivers.frames import rtsp_frame, with_credentials
from probes.drivers.http import DeviceError
from probes.picture import probe_picture
from probes.result import CheckKind, CheckResult, FindingCode, Status
from probes.scoring import Verdict, frame_from_bgr, score, structured_blocks
from probes.values import values_json
from tests.waits import LATE_S, NOT_UNDER_TEST_S, eventually

testing = pytest.importorskip("simulator.testing", reason="simulator not present")

# The scenes are lit for a pinned local time of day (never the wall clock's), so these
# tests pass at any hour; those whose outcome depends on the light run at day and night.
DAY, NIGHT = "12:40", "02:10"

LEARN = 3
CACHE_GAP = 1.1  # the simulated cameras cache a snapshot for 1 s, as real ones do


class Clock:
    """Probe time advancing 5 minutes per sample (the default picture interval)."""

    def __init__(self) -> None:
        self.t = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        self.t += dt.timedelta(minutes=5)
        return self.t


def context(inventory: object, **config: object) -> ProbeContext:
    """A probe context whose timeout, unless a test is about it, is not what decides
    (tests/waits.py)."""
    config.setdefault("timeout", NOT_UNDER_TEST_S)
    return ProbeContext(
        inventory=inventory,  # type: ignore[arg-type]
        secrets=SecretStore(),
        config=ProbeConfig(**config),  # type: ignore[arg-type]
        now=Clock(),
    )


async def probe_once(cam: str, ctx: ProbeContext) -> CheckResult:
    results = await probe_picture(cam, ctx)
    assert len(results) == 1
    r = results[0]
    assert r.device == cam and r.check == CheckKind.PICTURE
    return r


async def learn(cam: str, ctx: ProbeContext) -> list[CheckResult]:
    ctx.memory.baselines[cam] = CameraBaseline(learn_samples=LEARN).to_dict()
    out = []
    for _ in range(LEARN + 1):
        out.append(await probe_once(cam, ctx))
        await asyncio.sleep(CACHE_GAP)
    return out


@pytest.fixture
async def campus(tmp_path, request) -> AsyncIterator[tuple[object, object]]:  # type: ignore[no-untyped-def]
    """A small simulated campus whose scenes are lit for `request.param` (HH:MM; default
    day), whatever the hour the test runs at."""
    scene_time = getattr(request, "param", DAY)
    c = testing.small_campus(tmp_path)
    async with testing.SimulatedCampus(c.inventory, c.passwords, scene_time=scene_time) as sim:
        yield c, sim


@pytest.mark.parametrize("campus", [DAY, NIGHT], ids=["day", "night"], indirect=True)
async def test_healthy_cameras_learn_then_are_clear(campus) -> None:  # type: ignore[no-untyped-def]
    c, _sim = campus
    inv = c.inventory
    cams = [c.ip_camera("hikvision"), c.ip_camera("dahua"), c.ip_camera("generic"),
            c.analog_camera()]  # fmt: skip
    ctxs = {cam: context(inv) for cam in cams}
    runs = await asyncio.gather(*(learn(cam, ctxs[cam]) for cam in cams))
    drivers = set()
    for cam, results in zip(cams, runs, strict=True):
        position = inv.cameras[cam].position
        for r in results[:LEARN]:
            assert r.status == Status.OK, r.reason
            assert "基準學習中" in r.reason and position in r.reason
            assert r.values.learning is True
        last = results[-1]
        assert last.status == Status.OK, last.reason
        assert last.values.verdict == "clear"
        assert last.values.baseline_sharpness is not None
        assert last.values.mode in ("day", "night")
        assert {"sharpness", "brightness", "contrast"} <= set(values_json(last.values))
        assert last.findings == ()
        drivers.add(last.driver)
        for secret in c.passwords.values():
            assert all(secret not in r.reason for r in results)
        assert isinstance(ctxs[cam].memory.baselines[cam], dict)
        # what a worker hands up next: this camera's baselines, changed by its checks
        changed = ctxs[cam].memory.take_changed_baselines()
        assert list(changed) == [cam]
        assert JsonValues.unpack(changed[cam]) == ctxs[cam].memory.baselines[cam]
        assert ctxs[cam].memory.take_changed_baselines() == {}
    assert drivers >= {"onvif", "isapi"}


def textured(ctx: ProbeContext, cam: str) -> int:
    base = CameraBaseline.from_dict(ctx.memory.baselines[cam])
    for mb in base.modes.values():
        if mb.detail is not None and mb.floors is not None:
            return int(structured_blocks(decode_detail(mb.detail), mb.floors).sum())
    return 0


FAULTS: list[tuple[str, Verdict, FindingCode]] = [
    ("blurred", Verdict.BLURRED, FindingCode.PICTURE_BLURRED),
    ("moved", Verdict.MOVED, FindingCode.CAMERA_MOVED),
    ("covered", Verdict.COVERED, FindingCode.PICTURE_COVERED),
    ("dark", Verdict.DARK, FindingCode.PICTURE_DARK),
    ("overexposed", Verdict.OVEREXPOSED, FindingCode.PICTURE_OVEREXPOSED),
    ("frozen", Verdict.FROZEN, FindingCode.PICTURE_FROZEN),
]


@pytest.mark.parametrize("campus", [
    pytest.param(DAY, id="day"),
    # at night a covered lens is covered in one look, whatever mode its colour suggests
    pytest.param(NIGHT, id="night"),
], indirect=True)
async def test_each_picture_fault_gives_its_verdict(campus) -> None:  # type: ignore[no-untyped-def]
    c, sim = campus
    inv = c.inventory
    cams = list(inv.cameras)
    ctxs = {cam: context(inv) for cam in cams}
    await asyncio.gather(*(learn(cam, ctxs[cam]) for cam in cams))
    # Blur and a swung view need a scene with detail; some simulated scenes are bare
    # walls whose only sharp part is the on-screen clock (nothing there to defocus).
    by_detail = sorted(cams, key=lambda cam: -textured(ctxs[cam], cam))
    assert textured(ctxs[by_detail[1]], by_detail[1]) >= 20
    chosen = dict(zip([f[0] for f in FAULTS], by_detail, strict=False))

    async def run(kind: str) -> list[CheckResult]:
        cam = chosen[kind]
        await sim.fault(cam, kind)
        first = await probe_once(cam, ctxs[cam])
        await asyncio.sleep(CACHE_GAP)
        second = await probe_once(cam, ctxs[cam])
        return [first, second]

    outcomes = await asyncio.gather(*(run(kind) for kind, _, _ in FAULTS))
    for (kind, verdict, code), (first, second) in zip(FAULTS, outcomes, strict=True):
        cam = chosen[kind]
        position = inv.cameras[cam].position
        # frozen: the first sample after the fault is still a new picture
        r = second if kind == "frozen" else first
        assert r.status == Status.FAIL, (kind, r.reason, r.values)
        assert r.values.verdict == verdict.value, (kind, r.reason)
        assert [f.code for f in r.findings] == [code]
        assert r.findings[0].reason.startswith(position)
        assert r.findings[0].subject == cam
        assert second.values.verdict == verdict.value
    blurred = outcomes[0][0]
    assert "模糊" in blurred.reason and "基準" in blurred.reason
    # A fault is never learned as normal: after clearing it, the camera is clear again.
    cam = chosen["blurred"]
    await sim.clear(cam)
    r = await probe_once(cam, ctxs[cam])
    assert r.status == Status.OK and r.values.verdict == "clear", r.reason


async def test_unreachable_and_wrong_password_are_unknown(campus) -> None:  # type: ignore[no-untyped-def]
    c, sim = campus
    inv = c.inventory
    cam = c.ip_camera("hikvision")
    await sim.fault(cam, "offline")
    r = await probe_once(cam, context(inv))  # refused, not timed out
    assert r.status == Status.UNKNOWN and "無法取得畫面" in r.reason
    await sim.clear(cam)
    await sim.fault(cam, "auth")
    r = await probe_once(cam, context(inv))
    assert r.status == Status.UNKNOWN and "密碼" in r.reason
    assert c.passwords[testing._env_name("${CAMWATCH_DEMO_CAM_PASSWORD}")] not in r.reason


async def test_unknown_device_never_raises() -> None:
    c = testing.small_campus(None, set_env=False)
    r = await probe_once("no-such-cam", context(c.inventory))
    assert r.status == Status.UNKNOWN


# --- hostile snapshot servers ------------------------------------------------------------


def crafted_jpeg(width: int, height: int) -> bytes:
    import struct

    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3)
    sof += b"\x01\x22\x00\x02\x11\x00\x03\x11\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 12, 3) + b"\x01\x00\x02\x11\x03\x11\x00\x3f\x00"
    return b"\xff\xd8" + sof + sos + b"\x00" * 64 + b"\xff\xd9"


def real_jpeg() -> bytes:
    import cv2

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (360, 640, 3)).astype(np.uint8)
    return cv2.imencode(".jpg", img)[1].tobytes()


HOSTILE: dict[str, Callable[[web.Request], object]] = {}


async def _serve(kind: str, request: web.Request) -> web.StreamResponse:
    if kind == "huge":
        return web.Response(body=crafted_jpeg(30000, 30000), content_type="image/jpeg")
    if kind == "truncated":
        return web.Response(body=real_jpeg()[:3000], content_type="image/jpeg")
    if kind == "html":
        return web.Response(text="<html>login</html>", content_type="text/html")
    if kind == "redirect":
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")
    if kind == "endless":
        resp = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        await resp.prepare(request)
        chunk = b"\xff\xd8" + b"\x00" * 65536
        while True:
            await resp.write(chunk)
    if kind == "slow":
        resp = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        await resp.prepare(request)
        for b in real_jpeg():
            await resp.write(bytes([b]))
            await asyncio.sleep(0.05)
    raise web.HTTPNotFound()


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("huge", "30000x30000"),
        ("truncated", "截斷"),
        ("html", "JPEG"),
        ("redirect", "拒絕"),
        ("endless", "過大"),
        ("slow", "逾時"),
    ],
)
async def test_hostile_snapshot_is_unknown_in_bounded_time(kind: str, words: str) -> None:
    c = testing.small_campus(None)
    app = web.Application()
    app.router.add_get("/ISAPI/Streaming/channels/101/picture", lambda r: _serve(kind, r))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        cam_id = c.ip_camera("hikvision")
        cam = c.inventory.cameras[cam_id].model_copy(
            update={
                "address": Address(host="127.0.0.1", http_port=port, rtsp_port=port),
                "protocols": [Protocol.ISAPI],
            }
        )
        inv = c.inventory.model_copy(update={"cameras": {**c.inventory.cameras, cam_id: cam}})
        # the deadline decides only the slow one; each other defence decides its own
        timeout = 2.0 if kind == "slow" else NOT_UNDER_TEST_S
        ctx = context(inv, timeout=timeout, max_body_bytes=2 * 1024 * 1024)
        start = time.monotonic()
        r = await probe_once(cam_id, ctx)
        if kind == "slow":  # a 30 KB JPEG at 20 bytes a second: ended by the deadline
            assert time.monotonic() - start < timeout + LATE_S
        assert r.status == Status.UNKNOWN
        assert words in r.reason, r.reason
        assert cam_id not in ctx.memory.baselines  # nothing learned from a broken frame
    finally:
        await runner.cleanup()


# --- RTSP ----------------------------------------------------------------------------------


async def test_rtsp_reader_scores_a_live_stream_and_follows_faults() -> None:
    rtsp = pytest.importorskip("simulator.rtsp")
    reason = await asyncio.to_thread(rtsp.rtsp_unavailable_reason)
    if reason is not None:
        pytest.skip(reason)
    c = testing.small_campus(None)
    sim = testing.SimulatedCampus(c.inventory, c.passwords)
    cam_id = c.ip_camera("hikvision")
    dev = sim.device(cam_id)
    cams = await rtsp.start_rtsp_cameras([dev], auth=True)
    try:
        url = cams.url_for(dev)
        frame = await rtsp_frame(with_credentials(url, dev.username, dev.password),
                                 NOT_UNDER_TEST_S)
        m = score(frame_from_bgr(frame))
        assert m.width >= 320 and m.sharpness > 0
        # The probe falls back to RTSP (vendor path convention) for a camera with no
        # snapshot protocol, with its credentials, and says which driver answered.
        assert dev.host is not None
        cam = c.inventory.cameras[cam_id]
        assert cam.address is not None
        addr = cam.address.model_copy(update={"rtsp_port": cams.port(dev.host, dev.rtsp_port)})
        only_rtsp = cam.model_copy(update={"address": addr, "protocols": [Protocol.RTSP]})
        inv = c.inventory.model_copy(update={"cameras": {**c.inventory.cameras, cam_id: only_rtsp}})
        r = await probe_once(cam_id, context(inv))
        assert r.status == Status.OK, r.reason
        assert r.driver == "rtsp"
        sim.world.fault(cam_id, testing.FaultKind.COVERED, 1.0)
        await cams.sync()

        async def covered() -> bool:  # the stream shows it soon after
            frame = await rtsp_frame(with_credentials(url, dev.username, dev.password),
                                     NOT_UNDER_TEST_S)
            return bool(score(frame_from_bgr(frame)).contrast < 10)

        await eventually(covered, "the covered fault in the RTSP stream", every=0.3)
        with pytest.raises(DeviceError) as err:
            await rtsp_frame(with_credentials(url, dev.username, "wrong-" + "x"), 5.0)
        assert "wrong-x" not in err.value.zh_reason
    finally:
        await cams.stop()


# --- issue 12: what one look shows, before any baseline ------------------------------------


async def test_a_lens_blurred_before_learning_is_reported_and_not_learned(campus) -> None:  # type: ignore[no-untyped-def]
    c, sim = campus
    inv = c.inventory
    ctxs = {cam: context(inv) for cam in inv.cameras}
    await asyncio.gather(*(learn(cam, ctxs[cam]) for cam in inv.cameras))
    cam = max(inv.cameras, key=lambda x: textured(ctxs[x], x))  # a scene with detail
    ctx = context(inv)
    ctx.memory.baselines[cam] = CameraBaseline(learn_samples=LEARN).to_dict()
    await sim.fault(cam, "blurred")  # mis-focused from the first picture on
    for _ in range(LEARN + 1):
        r = await probe_once(cam, ctx)
        assert r.status == Status.FAIL, r.reason
        assert [f.code for f in r.findings] == [FindingCode.PICTURE_BLURRED]
        assert "不納入基準" in r.reason and r.values.learning is True  # type: ignore[union-attr]
        await asyncio.sleep(CACHE_GAP)
    base = CameraBaseline.from_dict(ctx.memory.baselines[cam])
    assert not any(mb.learned for mb in base.modes.values())
    await sim.clear(cam)
    r = await probe_once(cam, ctx)
    assert r.status == Status.OK and "基準學習中" in r.reason, r.reason


async def test_covered_and_no_signal_need_no_baseline(campus) -> None:  # type: ignore[no-untyped-def]
    c, sim = campus
    inv = c.inventory
    ip, analog = c.ip_camera("hikvision"), c.analog_camera()
    await sim.fault(ip, "covered")
    await sim.fault(analog, "signal-loss")
    r = await probe_once(ip, context(inv))
    assert r.status == Status.FAIL and [f.code for f in r.findings] == [
        FindingCode.PICTURE_COVERED], r.reason
    r = await probe_once(analog, context(inv))
    assert r.status == Status.FAIL, r.reason
    assert r.values.verdict == Verdict.NO_SIGNAL.value  # type: ignore[union-attr]
    assert [f.code for f in r.findings] == [FindingCode.SIGNAL_LOSS]


async def test_a_reference_image_in_the_inventory_is_the_baseline_at_once(
    tmp_path, campus,  # type: ignore[no-untyped-def]
) -> None:
    import cv2

    c, sim = campus
    inv = c.inventory
    probe_ctx = context(inv)
    await asyncio.gather(*(learn(cam, probe_ctx) for cam in inv.cameras))
    cam = max(inv.cameras, key=lambda x: textured(probe_ctx, x))
    # the installer's photo: a snapshot of the simulated (synthetic) view
    dev = sim.device(cam)
    photo = tmp_path / "ref.jpg"
    photo.write_bytes(sim.server._renderer.jpeg(dev))
    assert cv2.imread(str(photo)) is not None
    cam_model = inv.cameras[cam].model_copy(update={"reference_image": str(photo)})
    inv2 = inv.model_copy(update={"cameras": {**inv.cameras, cam: cam_model}})
    ctx = context(inv2)
    await asyncio.sleep(CACHE_GAP)
    r = await probe_once(cam, ctx)
    assert r.status == Status.OK, r.reason
    assert r.values.learning is False  # type: ignore[union-attr]
    assert r.values.reference == "ref.jpg"  # type: ignore[union-attr]
    stored = json.dumps(ctx.memory.baselines[cam])
    assert len(stored) < 64 * 1024  # figures, not the photo
    await sim.fault(cam, "blurred")
    r = await probe_once(cam, ctx)
    assert r.status == Status.FAIL and [f.code for f in r.findings] == [
        FindingCode.PICTURE_BLURRED], r.reason


async def test_frames_are_scored_in_the_few_scoring_threads(campus, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Every camera of a fleet scored at once still uses SCORING_THREADS threads, not
    asyncio's default executor: each scoring thread keeps frame-sized work arrays."""
    import threading

    import probes.picture as picture_mod

    c, _sim = campus
    inv = c.inventory
    used: set[str] = set()
    real = picture_mod._score

    def recording(*args: object) -> object:
        used.add(threading.current_thread().name)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(picture_mod, "_score", recording)
    cams = sorted(inv.cameras)
    ctx = context(inv)
    results = await asyncio.gather(*(probe_once(cam, ctx) for cam in cams))
    assert all(r.status != Status.UNKNOWN for r in results), [r.reason for r in results]
    assert len(cams) > picture_mod.SCORING_THREADS
    assert used and all(n.startswith("camwatch-score") for n in used), used
    assert len(used) <= picture_mod.SCORING_THREADS
