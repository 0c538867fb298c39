"""Simulated pictures: deterministic per camera, day/night, faults as optics, video files.

Day and night are pinned (a SceneClock, or a ManualClock on the device), never read from
the wall clock: every test here passes at any hour, and those that depend on the light
run at both."""

from __future__ import annotations

import datetime as dt
import math

import cv2
import numpy as np
import pytest

from camwatch.clock import ManualClock
from inventory.models import Vendor
from simulator import scenes
from simulator.model import ChannelState, DeviceKind, FaultKind, SimDevice

NOON = scenes.SceneClock(at=dt.time(12, 40))
NIGHT = scenes.SceneClock(at=dt.time(2, 10))


def camera(seed: int, **kw) -> SimDevice:
    return SimDevice(
        id=f"cam-{seed}",
        kind=DeviceKind.CAMERA,
        vendor=Vendor.GENERIC,
        scene_seed=seed,
        channels=[ChannelState(channel=1)],
        **kw,
    )


def gray(img):
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[40:-40]


def test_scenes_are_deterministic_and_distinct():
    a1 = scenes.draw_scene(11, 320, 180)
    a2 = scenes.draw_scene(11, 320, 180)
    b = scenes.draw_scene(12, 320, 180)
    assert np.array_equal(a1, a2)
    assert not np.array_equal(a1, b)
    assert a1.shape == (270, 480, 3)


def test_low_texture_scenes_exist_and_are_smoother():
    low = [s for s in range(1, 40) if scenes.is_low_texture(s)]
    busy = [s for s in range(1, 40) if not scenes.is_low_texture(s)]
    assert low and busy

    def sharp(seed):
        g = cv2.cvtColor(scenes.draw_scene(seed, 320, 180), cv2.COLOR_BGR2GRAY)
        return cv2.Laplacian(g, cv2.CV_64F).var()

    assert max(sharp(s) for s in low[:4]) < min(sharp(s) for s in busy[:4])


def test_night_follows_the_device_local_time_and_is_grayscale_darker():
    r = scenes.SceneRenderer(320, 180)  # default: each device's own local time
    # 04:00 UTC is noon in Taipei (UTC+8); 12:00 UTC is 20:00 there.
    clock = ManualClock(dt.datetime(2026, 11, 30, 4, 0, tzinfo=dt.UTC))
    cam = camera(7, clock=clock)
    assert cam.utc_offset_s == 8 * 3600
    assert not scenes.is_night(cam)
    day = r.frame(cam)
    clock.set(dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC))
    assert scenes.is_night(cam)
    night = r.frame(cam)
    b, g, rr = cv2.split(night[40:-40])
    assert np.abs(b.astype(int) - g).max() <= 1 and np.abs(g.astype(int) - rr).max() <= 1
    assert gray(night).mean() < gray(day).mean()
    assert not np.array_equal(cv2.split(day)[0], cv2.split(day)[2])  # day is in colour
    # 05:59 is still night, 06:00 day, 17:59 day, 18:00 night (local).
    for utc_hour, minute, night_expected in [(21, 59, True), (22, 0, False),
                                             (9, 59, False), (10, 0, True)]:
        clock.set(dt.datetime(2026, 11, 30, utc_hour, minute, tzinfo=dt.UTC))
        assert scenes.is_night(cam) is night_expected, (utc_hour, minute)


# Sensor noise sigma per mode (scenes.SceneRenderer): the mean absolute difference of two
# independent noise samples is 2 sigma / sqrt(pi).
@pytest.mark.parametrize(("scene_clock", "sigma"), [(NOON, 1.5), (NIGHT, 5.0)],
                         ids=["day", "night"])
def test_consecutive_healthy_frames_differ_slightly(scene_clock, sigma):
    r = scenes.SceneRenderer(320, 180, scene_clock=scene_clock)
    cam = camera(8)
    f1, f2 = gray(r.frame(cam)), gray(r.frame(cam))
    diff = np.abs(f1.astype(int) - f2).mean()
    # fresh noise every frame (a frozen camera repeats itself; a healthy one never does),
    # and no more than noise: the picture itself did not change
    assert 0 < diff < 1.2 * 2 * sigma / math.sqrt(math.pi), diff
    cam.faults[FaultKind.MOVED] = 0.35
    moved = np.abs(f1.astype(int) - gray(r.frame(cam))).mean()
    assert moved > 2 * diff


def test_scene_clock_fixed_time_and_speed():
    clock = ManualClock(dt.datetime(2026, 11, 30, 4, 0, tzinfo=dt.UTC))
    cam = camera(12, clock=clock)
    assert scenes.DEVICE_TIME.local_time(cam) == dt.time(12, 0)  # Taipei noon
    assert scenes.SceneClock(at=dt.time(2, 10)).local_time(cam) == dt.time(2, 10)
    assert scenes.SceneClock(at=dt.time(2, 10)).is_night(cam)
    assert not scenes.SceneClock(at=dt.time(12, 40)).is_night(cam)
    elapsed = [0.0]
    fast = scenes.SceneClock(at=dt.time(17, 59), speed=60, timer=lambda: elapsed[0])
    assert not fast.is_night(cam)
    elapsed[0] = 60.0  # one real minute = one scene hour
    assert fast.local_time(cam) == dt.time(18, 59) and fast.is_night(cam)
    elapsed[0] = 60.0 * 24
    assert fast.local_time(cam) == dt.time(17, 59)  # a whole simulated day went by
    # speed alone runs from each device's local time
    from_device = scenes.SceneClock(speed=1440, timer=lambda: elapsed[0])
    elapsed[0] += 30.0  # half a simulated day (the device clock ran on 30 s meanwhile)
    clock.advance(30)
    assert from_device.local_time(cam) == dt.time(0, 0)
    assert scenes.parse_scene_time("02:10") == dt.time(2, 10)
    for bad in ("2", "25:00", "ab:cd", "12:60"):
        with pytest.raises(ValueError, match="HH:MM"):
            scenes.parse_scene_time(bad)
    with pytest.raises(ValueError):
        scenes.SceneClock(speed=-1)


def test_blur_severity_is_monotonic():
    r = scenes.SceneRenderer(320, 180)
    cam = camera(9)
    values = []
    for sigma in (None, 1.5, 4, 10):
        cam.faults.clear()
        if sigma is not None:
            cam.faults[FaultKind.BLURRED] = sigma
        values.append(cv2.Laplacian(gray(r.frame(cam)), cv2.CV_64F).var())
    assert values == sorted(values, reverse=True)


def test_frozen_bytes_and_forget():
    r = scenes.SceneRenderer(320, 180)
    cam = camera(10)
    cam.faults[FaultKind.FROZEN] = 1
    a = r.jpeg(cam)
    r._recent.clear()
    assert r.jpeg(cam) == a
    r.forget(cam.id)
    cam.faults.clear()
    assert r.jpeg(cam) != a


def test_camera_can_play_a_video_file(tmp_path):
    path = tmp_path / "clip.avi"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (160, 120))
    for i in range(5):
        frame = np.full((120, 160, 3), 40 * i, np.uint8)
        cv2.rectangle(frame, (10 + 5 * i, 10), (60 + 5 * i, 60), (255, 255, 255), -1)
        out.write(frame)
    out.release()
    r = scenes.SceneRenderer(320, 180, scene_clock=NOON)
    cam = camera(11, video_path=str(path))
    frames = [r.frame(cam) for _ in range(3)]
    assert frames[0].shape == (180, 320, 3)
    assert gray(frames[0]).mean() != gray(frames[2]).mean()  # it plays
