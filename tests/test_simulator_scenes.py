"""Simulated pictures: deterministic per camera, day/night, faults as optics, video files."""

from __future__ import annotations

import datetime as dt

import cv2
import numpy as np

from inventory.models import Vendor
from simulator import scenes
from simulator.model import ChannelState, DeviceKind, FaultKind, SimDevice


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


def test_night_is_grayscale_darker_noisier(monkeypatch):
    r = scenes.SceneRenderer(320, 180)
    cam = camera(7)
    cam.utc_offset_s = 0
    # Local noon, then local midnight (by moving the device clock).
    now = dt.datetime.now(dt.UTC)
    cam.clock_offset_s = (now.replace(hour=12) - now).total_seconds()
    day = r.frame(cam)
    cam.clock_offset_s = (now.replace(hour=0) - now).total_seconds()
    assert scenes.is_night(cam)
    night = r.frame(cam)
    b, g, rr = cv2.split(night[40:-40])
    assert np.abs(b.astype(int) - g).max() <= 1 and np.abs(g.astype(int) - rr).max() <= 1
    assert gray(night).mean() < gray(day).mean()
    assert not np.array_equal(cv2.split(day)[0], cv2.split(day)[2])  # day is in colour


def test_consecutive_healthy_frames_differ_slightly():
    r = scenes.SceneRenderer(320, 180)
    cam = camera(8)
    f1, f2 = gray(r.frame(cam)), gray(r.frame(cam))
    diff = np.abs(f1.astype(int) - f2).mean()
    assert 0 < diff < 5


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
    r = scenes.SceneRenderer(320, 180)
    cam = camera(11, video_path=str(path))
    cam.utc_offset_s = 0
    cam.clock_offset_s = (
        dt.datetime.now(dt.UTC).replace(hour=12) - dt.datetime.now(dt.UTC)
    ).total_seconds()
    frames = [r.frame(cam) for _ in range(3)]
    assert frames[0].shape == (180, 320, 3)
    assert gray(frames[0]).mean() != gray(frames[2]).mean()  # it plays
