"""The simulated RTSP cameras (GStreamer's RTSP server under the system Python), read
the way the picture check's RTSP fallback reads a stream: OpenCV's FFmpeg backend."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from inventory.models import Vendor
from simulator.model import ChannelState, DeviceKind, FaultKind, SimDevice
from simulator.rtsp import RtspCameras, rtsp_unavailable_reason, start_rtsp_cameras
from tests.waits import CAP_S, LATE_S, NOT_UNDER_TEST_S

REASON = rtsp_unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no RTSP server: {REASON}")

CAPTURE_OPTIONS = "rtsp_transport;tcp|analyzeduration;500000|probesize;500000"


def _host() -> str:
    return f"127.{random.randint(32, 250)}.{random.randint(0, 255)}.{random.randint(2, 254)}"


def _camera(cam_id: str, vendor: Vendor = Vendor.HIKVISION) -> SimDevice:
    return SimDevice(
        id=cam_id,
        kind=DeviceKind.CAMERA,
        vendor=vendor,
        host=_host(),
        rtsp_port=0,
        username="admin",
        password="pw-" + "".join(random.choices("abcdefgh", k=8)),
        channels=[ChannelState(channel=1)],
    )


# A mount that serves is given all the time it could want (tests/waits.py); one that
# fails is given FAILS_S and must be given up by its open and read timeouts (2 x FAILS_S)
# plus the lateness of a loaded machine.
FAILS_S = 3.0


def given_up(took: float, timeout_s: float = FAILS_S) -> bool:
    return took < 2 * timeout_s + LATE_S


def grab(url: str, timeout_s: float = NOT_UNDER_TEST_S) -> tuple[Any, float]:
    """(frame or None, seconds) through cv2's FFmpeg backend, as probes/drivers/frames.py."""
    import os

    import cv2

    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = CAPTURE_OPTIONS
    ms = int(timeout_s * 1000)
    started = time.monotonic()
    cap = cv2.VideoCapture(
        url,
        cv2.CAP_FFMPEG,
        [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms],
    )
    try:
        ok, frame = cap.read() if cap.isOpened() else (False, None)
    finally:
        cap.release()
    return (frame if ok else None), time.monotonic() - started


def sharpness(frame: Any) -> float:
    import cv2

    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


@pytest.fixture
async def cams() -> AsyncIterator[tuple[list[SimDevice], RtspCameras]]:
    devices = [_camera("cam-a"), _camera("cam-b", Vendor.GENERIC)]
    running = await start_rtsp_cameras(devices, size="320x180", fps=10, watch=False)
    yield devices, running
    await running.stop()


async def test_opencv_reads_a_frame(cams) -> None:
    devices, running = cams
    url = running.url_for(devices[0])
    assert url.startswith(f"rtsp://{devices[0].host}:") and url.endswith("/Streaming/Channels/101")
    frame, _ = await asyncio.to_thread(grab, url)
    assert frame is not None, url
    assert frame.shape[:2] == (180, 320)
    assert sharpness(frame) > 500  # smpte bars: hard edges
    sub, _ = await asyncio.to_thread(grab, running.url_for(devices[1]).replace("main", "sub"))
    assert sub is not None


async def test_absent_mount_and_closed_port_fail_in_bounded_time(cams) -> None:
    devices, running = cams
    host = devices[0].host
    assert host is not None
    frame, took = await asyncio.to_thread(grab, running.url(host, 0, "/no/such/stream"),
                                          FAILS_S)
    assert frame is None and given_up(took), took
    frame, took = await asyncio.to_thread(grab, f"rtsp://{_host()}:9/none", FAILS_S)
    assert frame is None and given_up(took), took


async def test_faults_change_the_stream(cams) -> None:
    devices, running = cams
    cam = devices[0]
    url = running.url_for(cam)
    sharp, _ = await asyncio.to_thread(grab, url)
    assert sharp is not None
    cam.apply_fault(FaultKind.BLURRED)
    assert await running.sync() == 2  # main and sub stream
    blurred, _ = await asyncio.to_thread(grab, url)
    assert blurred is not None
    assert sharpness(blurred) < sharpness(sharp) / 20
    cam.clear_faults()
    cam.apply_fault(FaultKind.COVERED)
    await running.sync()
    covered, _ = await asyncio.to_thread(grab, url)
    assert covered is not None and float(covered.mean()) < 5
    cam.clear_faults()
    cam.apply_fault(FaultKind.OFFLINE)
    await running.sync()
    gone, took = await asyncio.to_thread(grab, url, FAILS_S)
    assert gone is None and given_up(took), took
    cam.clear_faults()
    await running.sync()
    back, _ = await asyncio.to_thread(grab, url)
    assert back is not None and sharpness(back) > 500


async def test_basic_auth_and_urls_without_credentials() -> None:
    cam = _camera("cam-auth")
    running = await start_rtsp_cameras([cam], auth=True, size="320x180", watch=False)
    try:
        url = running.url_for(cam)
        assert "@" not in url and cam.password not in url
        denied, took = await asyncio.to_thread(grab, url, FAILS_S)
        assert denied is None and given_up(took), took
        with_creds = url.replace("rtsp://", f"rtsp://admin:{cam.password}@")
        frame, _ = await asyncio.to_thread(grab, with_creds)
        assert frame is not None
        wrong = url.replace("rtsp://", "rtsp://admin:wrong@")
        refused, _ = await asyncio.to_thread(grab, wrong, FAILS_S)
        assert refused is None
    finally:
        await running.stop()


async def test_recorder_channels_follow_their_cameras() -> None:
    rec = SimDevice(
        id="nvr-rtsp",
        kind=DeviceKind.RECORDER,
        vendor=Vendor.HIKVISION,
        host=_host(),
        rtsp_port=0,
        channels=[ChannelState(channel=1), ChannelState(channel=2)],
    )
    cam2 = SimDevice(id="cam-ch2", kind=DeviceKind.CAMERA, vendor=Vendor.HIKVISION, analog=True)
    rec.camera_devices[2] = cam2
    running = await start_rtsp_cameras([rec, cam2], size="320x180", watch=True)
    try:
        cam2.apply_fault(FaultKind.COVERED)
        deadline = time.monotonic() + CAP_S
        while True:  # the watcher applies the fault within half a second
            frame, _ = await asyncio.to_thread(grab, running.url_for(rec, 2))
            if frame is not None and float(frame.mean()) < 5:
                break
            assert time.monotonic() < deadline, "covered fault never reached channel 2"
            await asyncio.sleep(0.3)
        ch1, _ = await asyncio.to_thread(grab, running.url_for(rec, 1))
        assert ch1 is not None and float(ch1.mean()) > 50
        rec.apply_fault(FaultKind.OFFLINE)
        await running.sync()
        off, _ = await asyncio.to_thread(grab, running.url_for(rec, 1), FAILS_S)
        assert off is None
    finally:
        await running.stop()


async def test_the_picture_checks_rtsp_reader_reads_the_simulator(cams) -> None:
    """Engineer E's reader (probes/drivers/frames.py) against this server: a frame from a
    live mount, a DeviceError with a zh-TW reason from a missing one, both bounded."""
    frames = pytest.importorskip("probes.drivers.frames")
    devices, running = cams
    frame = await frames.rtsp_frame(running.url_for(devices[0]), NOT_UNDER_TEST_S)
    assert frame.shape[:2] == (180, 320)
    host = devices[0].host
    assert host is not None
    started = time.monotonic()
    with pytest.raises(frames.DeviceError) as info:
        await frames.rtsp_frame(running.url(host, 0, "/missing"), FAILS_S)
    assert time.monotonic() - started < FAILS_S + LATE_S  # one hard deadline
    assert "串流" in info.value.zh_reason
