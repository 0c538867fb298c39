"""What each simulated camera sees, and how faults change it the way optics do.

Each camera has its own deterministic scene (seeded by its id): a wall or corridor with
gradients, windows and doors, posters with text, railings, a few objects; roughly one in
five scenes is low-texture (a plain wall, a dim corridor) so that absolute sharpness
thresholds fail on them, as on real cameras. The scene is drawn larger than the frame so
that a `moved` camera shows a shifted, slightly rotated crop of the same place.

Day and night (06:00-18:00 day) follow a `SceneClock`: by default each device's local time,
or one fixed time of day for every scene (`--scene-time HH:MM`), or a scene time running N
times faster (`--scene-speed N`, a simulated day in minutes). At night the picture is
grayscale (IR), darker and noisier. Every healthy frame carries an OSD timestamp and fresh
sensor noise, so consecutive frames differ slightly; a `frozen` camera repeats the exact
same JPEG bytes.

Faults: blurred = Gaussian defocus (severity = sigma at 640 px width), covered = a dark,
low-texture blob over most of the frame (severity = fraction), dark = gain down (severity
= gain), overexposed = washed out (severity = 0..1), moved = the view swung (severity =
fraction of the width), frozen = the same frame forever. An analog channel without signal
shows the recorder's blue "NO VIDEO" screen.

Frames exist only in memory and are served only to the simulator's own clients.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from simulator.model import FaultKind, SimDevice

Image = npt.NDArray[Any]

CACHE_SECONDS = 1.0
BASE_CACHE = 48  # scenes kept drawn (LRU); a scene takes ~1.5 MB at 640x360


DAY_STARTS, NIGHT_STARTS = 6, 18  # local hours
_DAY_S = 86400


@dataclass(frozen=True)
class SceneClock:
    """The local time of day the scenes are lit for.

    - neither `at` nor `speed`: each device's own local time (its clock, which follows
      camwatch's clock, plus its UTC offset);
    - `at` alone: that time of day for every scene, always;
    - `speed`: the scene time runs `speed` times as fast as real time, from `at` (or from
      each device's local time when this clock was made): 1440 makes a day last a minute.
    `timer` is the elapsed-time source (monotonic seconds); tests may step it.
    """

    at: dt.time | None = None
    speed: float | None = None
    timer: Callable[[], float] = field(default=time.monotonic, compare=False)
    started: float | None = None  # timer() when made (filled in by __post_init__)

    def __post_init__(self) -> None:
        if self.speed is not None and self.speed < 0:
            raise ValueError("scene speed must not be negative")
        if self.started is None:
            object.__setattr__(self, "started", self.timer())

    @property
    def follows_devices(self) -> bool:
        return self.at is None and self.speed is None

    def local_time(self, dev: SimDevice) -> dt.time:
        """The time of day `dev`'s scene is lit for, now."""
        device_local = dev.now() + dt.timedelta(seconds=dev.utc_offset_s)
        if self.follows_devices:
            return device_local.time()
        assert self.started is not None
        elapsed = self.timer() - self.started
        speed = 0.0 if self.speed is None else self.speed  # `at` alone: fixed
        if self.at is not None:
            base = float(self.at.hour * 3600 + self.at.minute * 60 + self.at.second)
        else:  # the device's local time when this clock was made
            t = device_local.time()
            base = t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6 - elapsed
        secs = (base + speed * elapsed) % _DAY_S
        whole = int(secs)
        return dt.time(whole // 3600, whole % 3600 // 60, whole % 60)

    def is_night(self, dev: SimDevice) -> bool:
        hour = self.local_time(dev).hour
        return hour < DAY_STARTS or hour >= NIGHT_STARTS

    def describe(self) -> str:
        if self.follows_devices:
            return "each device's local time"
        start = self.at.strftime("%H:%M") if self.at else "the devices' local time"
        if not self.speed:
            return f"fixed at {start}"
        return f"from {start}, {self.speed:g}x real time"


DEVICE_TIME = SceneClock()  # scenes follow each device's local time


def parse_scene_time(text: str) -> dt.time:
    """`HH:MM` (24 h, local time of day) -> time; ValueError with the expected form."""
    try:
        hh, mm = text.strip().split(":")
        return dt.time(int(hh), int(mm))
    except ValueError:
        raise ValueError(
            f"{text!r}: expected a local time of day HH:MM, e.g. 02:10 or 12:40"
        ) from None


def is_night(dev: SimDevice, clock: SceneClock = DEVICE_TIME) -> bool:
    return clock.is_night(dev)


def is_low_texture(seed: int) -> bool:
    """About one scene in five is a plain wall or dim corridor."""
    return seed % 5 == 0


def draw_scene(seed: int, width: int, height: int) -> Image:
    """The whole place a camera looks at (1.5x the frame in each direction), in color."""
    rng = np.random.default_rng(seed)
    w, h = int(width * 1.5), int(height * 1.5)
    low_texture = is_low_texture(seed)
    base = rng.integers(60, 200, size=3)
    top = np.clip(base + rng.integers(-40, 40, size=3), 0, 255)
    ys = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    column = (top[None, :] * (1 - ys) + base[None, :] * ys).astype(np.uint8)  # (h, 3)
    canvas: Image = cv2.resize(column[:, None, :], (w, h), interpolation=cv2.INTER_NEAREST)
    # Floor.
    horizon = int(h * rng.uniform(0.55, 0.75))
    floor = np.clip(base * 0.6 + rng.integers(-20, 20, size=3), 0, 255)
    canvas[horizon:, :, :] = floor.astype(np.uint8)
    if low_texture:
        # A plain wall: one door, a faint skirting line, a small sign.
        x = int(rng.uniform(0.2, 0.7) * w)
        color = [int(c) for c in np.clip(base - 30, 0, 255)]
        cv2.rectangle(canvas, (x, int(h * 0.25)), (x + w // 10, horizon), color, -1)
        cv2.line(canvas, (0, horizon), (w - 1, horizon), [int(c) for c in floor * 0.8], 3)
        cv2.putText(
            canvas,
            "EXIT",
            (x, int(h * 0.22)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.7,
            (40, 160, 40),
            2,
            cv2.LINE_AA,
        )
        canvas = cv2.GaussianBlur(canvas, (0, 0), 1.2)
        return canvas
    # Tiles on the floor.
    step = int(rng.integers(24, 48))
    for x in range(0, w, step):
        cv2.line(canvas, (x, horizon), (int(w / 2 + (x - w / 2) * 1.8), h - 1), (90, 90, 90), 1)
    for y in range(horizon, h, step // 2):
        cv2.line(canvas, (0, y), (w - 1, y), (100, 100, 100), 1)
    # Windows, doors, posters.
    for _ in range(int(rng.integers(4, 9))):
        x0 = int(rng.uniform(0, w * 0.9))
        y0 = int(rng.uniform(h * 0.1, horizon * 0.8))
        ww = int(rng.uniform(w * 0.05, w * 0.18))
        hh = int(rng.uniform(h * 0.1, horizon - y0 + 1))
        color = [int(c) for c in rng.integers(0, 255, size=3)]
        cv2.rectangle(canvas, (x0, y0), (x0 + ww, min(horizon, y0 + hh)), color, -1)
        cv2.rectangle(canvas, (x0, y0), (x0 + ww, min(horizon, y0 + hh)), (30, 30, 30), 2)
        if rng.random() < 0.5:  # window panes
            for k in range(1, 3):
                cv2.line(
                    canvas, (x0 + ww * k // 3, y0), (x0 + ww * k // 3, y0 + hh), (20, 20, 20), 2
                )
    # Railing.
    if rng.random() < 0.6:
        yr = int(horizon - h * 0.12)
        cv2.line(canvas, (0, yr), (w - 1, yr), (50, 50, 50), 3)
        for x in range(0, w, 18):
            cv2.line(canvas, (x, yr), (x, horizon), (60, 60, 60), 2)
    # Objects: plants, bins, a bicycle-ish circle pair.
    for _ in range(int(rng.integers(3, 8))):
        cx, cy = int(rng.uniform(0, w)), int(rng.uniform(horizon, h))
        r = int(rng.uniform(8, 40))
        color = [int(c) for c in rng.integers(0, 255, size=3)]
        cv2.circle(canvas, (cx, cy), r, color, -1)
        cv2.circle(canvas, (cx, cy), r, (20, 20, 20), 2)
    # Text (signs, notice boards).
    words = ["CLASS 3-2", "LIBRARY", "NO RUNNING", "LAB 201", "OFFICE", "GATE", "STAIRS B"]
    for _ in range(int(rng.integers(2, 5))):
        org = (int(rng.uniform(0, w * 0.8)), int(rng.uniform(h * 0.1, horizon)))
        cv2.putText(
            canvas,
            str(rng.choice(words)),
            org,
            cv2.FONT_HERSHEY_SIMPLEX,
            float(rng.uniform(0.5, 1.2)),
            (255, 255, 255),
            2,
            cv2.LINE_AA,
        )
    # Fine texture (brick, plaster): a window into one shared texture field.
    tex = _texture(h, w)
    oy, ox = int(rng.integers(0, h)), int(rng.integers(0, w))
    out = canvas.astype(np.int16)
    out += tex[oy : oy + h, ox : ox + w]
    np.clip(out, 0, 255, out=out)
    result: Image = out.astype(np.uint8)
    return result


_textures: dict[tuple[int, int], Image] = {}


def _texture(h: int, w: int) -> Image:
    """Gaussian texture (sigma 6) twice the scene size, made once per size."""
    key = (h, w)
    if key not in _textures:
        rng = np.random.default_rng(7)
        _textures[key] = (rng.standard_normal((2 * h, 2 * w, 1), np.float32) * 6).astype(np.int16)
    return _textures[key]


def view(scene: Image, width: int, height: int, moved: float = 0.0, seed: int = 0) -> Image:
    """The crop of the scene the camera frames; `moved` swings it sideways and tilts."""
    h, w = scene.shape[:2]
    cx, cy = (w - width) // 2, (h - height) // 2
    if moved > 0:
        direction = 1 if seed % 2 == 0 else -1
        dx = int(direction * moved * width)
        dy = int(moved * height * 0.4)
        cx = int(np.clip(cx + dx, 0, w - width))
        cy = int(np.clip(cy + dy, 0, h - height))
        angle = direction * moved * 20.0
        m = cv2.getRotationMatrix2D((cx + width / 2, cy + height / 2), angle, 1.0)
        scene = cv2.warpAffine(scene, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    return np.ascontiguousarray(scene[cy : cy + height, cx : cx + width])


def apply_optics(
    frame: Image, faults: dict[FaultKind, float], seed: int, night: bool = False
) -> Image:
    h, w = frame.shape[:2]
    out = frame
    if FaultKind.BLURRED in faults:
        sigma = max(0.5, faults[FaultKind.BLURRED] * w / 640.0)
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    if FaultKind.COVERED in faults:
        frac = float(np.clip(faults[FaultKind.COVERED], 0.1, 1.0))
        # A hand or tape close to the lens: out of focus, dark, almost uniform.
        mask = np.zeros((h, w), np.uint8)
        center = (int(w * (0.45 + 0.1 * ((seed >> 3) % 3 - 1))), int(h * 0.55))
        axes = (int(w * frac * 0.75) + 1, int(h * frac * 0.85) + 1)
        cv2.ellipse(mask, center, axes, (seed % 40) - 20, 0, 360, 255, -1)
        if frac >= 0.95:
            mask[:] = 255
        soft = cv2.GaussianBlur(mask, (0, 0), max(3, w / 40)).astype(np.float32)[..., None] / 255
        # dark, warm (BGR); grey in night mode, where the camera sees in IR and grey
        skin = np.full(3, 46, np.float32) if night else np.array([38, 44, 58], np.float32)
        shade = np.linspace(0.8, 1.2, w, dtype=np.float32)[None, :, None]
        cover = skin[None, None, :] * shade
        out = (out.astype(np.float32) * (1 - soft) + cover * soft).clip(0, 255).astype(np.uint8)
    if FaultKind.DARK in faults:
        gain = float(np.clip(faults[FaultKind.DARK], 0.0, 1.0))
        out = (out.astype(np.float32) * gain).clip(0, 255).astype(np.uint8)
    if FaultKind.OVEREXPOSED in faults:
        s = float(np.clip(faults[FaultKind.OVEREXPOSED], 0.0, 1.0))
        f = out.astype(np.float32) * (1 + 3 * s) + 255 * s
        out = f.clip(0, 255).astype(np.uint8)
    return out


def night_mode(frame: Image) -> Image:
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    gray = cv2.convertScaleAbs(gray, alpha=0.55, beta=8)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)


def no_video(width: int, height: int, label: str) -> Image:
    img = np.zeros((height, width, 3), np.uint8)
    img[:] = (140, 40, 10)  # recorder blue
    cv2.putText(
        img,
        "NO VIDEO",
        (width // 2 - 90, height // 2),
        cv2.FONT_HERSHEY_SIMPLEX,
        1.0,
        (255, 255, 255),
        2,
        cv2.LINE_AA,
    )
    cv2.putText(
        img,
        label,
        (10, height - 12),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    return img


class SceneRenderer:
    """Renders JPEG snapshots for devices; thread-safe (called via asyncio.to_thread)."""

    def __init__(
        self,
        width: int = 640,
        height: int = 360,
        quality: int = 85,
        scene_clock: SceneClock = DEVICE_TIME,
        events: bool = True,
    ) -> None:
        self.width, self.height, self.quality = width, height, quality
        self.scene_clock = scene_clock
        self.events = events  # people, cars, light and weather through the day
        self._lock = threading.Lock()
        self._scenes: OrderedDict[int, Image] = OrderedDict()
        self._recent: dict[tuple[str, int], tuple[float, tuple[object, ...], bytes]] = {}
        self._frozen: dict[str, bytes] = {}
        self._videos: dict[str, cv2.VideoCapture] = {}
        rng = np.random.default_rng(12345)
        self._noise = {
            sigma: (rng.standard_normal((height * 2, width * 2, 1), np.float32) * sigma).astype(
                np.int16
            )
            for sigma in (1.5, 5.0)
        }

    def forget(self, camera_id: str) -> None:
        with self._lock:
            self._frozen.pop(camera_id, None)
            for key in [k for k in self._recent if k[0] == camera_id]:
                del self._recent[key]

    def _source(self, dev: SimDevice, channel: int) -> tuple[SimDevice | None, bool]:
        """The camera shown on a device's channel, and whether it has a signal."""
        if not dev.is_recorder:
            return dev, True
        state = dev.channel(channel)
        cam = dev.camera_of_channel(channel)
        offline = cam is not None and cam.has(FaultKind.OFFLINE)  # an unreachable IP camera
        signal = state is not None and state.signal and not offline
        return cam, signal

    def _key(self, dev: SimDevice, channel: int) -> tuple[object, ...]:
        cam, signal = self._source(dev, channel)
        faults = tuple(sorted(cam.picture_faults().items())) if cam else ()
        return (cam.id if cam else None, signal, faults, self.scene_clock.is_night(dev))

    def cached(self, dev: SimDevice, channel: int) -> bytes | None:
        cam, _ = self._source(dev, channel)
        if cam is not None and cam.has(FaultKind.FROZEN) and cam.id in self._frozen:
            return self._frozen[cam.id]
        hit = self._recent.get((dev.id, channel))
        if hit and time.monotonic() - hit[0] < CACHE_SECONDS and hit[1] == self._key(dev, channel):
            return hit[2]
        return None

    def jpeg(self, dev: SimDevice, channel: int = 1) -> bytes:
        cached = self.cached(dev, channel)
        if cached is not None:
            return cached
        key = self._key(dev, channel)
        frame = self.frame(dev, channel)
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:  # pragma: no cover - cv2 does not fail on a valid uint8 image
            raise RuntimeError("JPEG encoding failed")
        data = buf.tobytes()
        cam, _ = self._source(dev, channel)
        with self._lock:
            now = time.monotonic()
            if len(self._recent) > 256:  # keep only what may still be served from cache
                for k in [k for k, v in self._recent.items() if now - v[0] >= CACHE_SECONDS]:
                    del self._recent[k]
            self._recent[(dev.id, channel)] = (now, key, data)
            if cam is not None and cam.has(FaultKind.FROZEN):
                data = self._frozen.setdefault(cam.id, data)
        return data

    def _scene(self, seed: int) -> Image:
        with self._lock:
            img = self._scenes.get(seed)
            if img is not None:
                self._scenes.move_to_end(seed)
                return img
        img = draw_scene(seed, self.width, self.height)
        with self._lock:
            self._scenes[seed] = img
            while len(self._scenes) > BASE_CACHE:
                self._scenes.popitem(last=False)
        return img

    def _video_frame(self, cam: SimDevice) -> Image | None:
        assert cam.video_path is not None
        with self._lock:
            cap = self._videos.get(cam.id)
            if cap is None:
                cap = cv2.VideoCapture(cam.video_path)
                self._videos[cam.id] = cap
            ok, frame = cap.read()
            if not ok:
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, frame = cap.read()
        if not ok or frame is None:
            return None
        return cv2.resize(frame, (self.width, self.height), interpolation=cv2.INTER_AREA)

    def frame(self, dev: SimDevice, channel: int = 1) -> Image:
        """One raw BGR frame as the device would encode it now."""
        cam, signal = self._source(dev, channel)
        if cam is None or not signal:
            return no_video(self.width, self.height, f"CH{channel:02d}")
        faults = cam.picture_faults()
        img: Image | None = None
        if cam.video_path:
            img = self._video_frame(cam)
            if img is not None and FaultKind.MOVED in faults:
                shift = int(faults[FaultKind.MOVED] * self.width)
                img = np.roll(img, shift, axis=1)
        if img is None:
            scene = self._scene(cam.scene_seed)
            img = view(
                scene, self.width, self.height, faults.get(FaultKind.MOVED, 0.0), cam.scene_seed
            )
            if self.events:
                tod = self.scene_clock.local_time(dev)
                secs = tod.hour * 3600 + tod.minute * 60 + tod.second
                img = apply_scene_events(img, scene_events(cam.scene_seed, secs))
        night = self.scene_clock.is_night(dev)
        if night:
            img = night_mode(img)
        img = apply_optics(img, faults, cam.scene_seed, night=night)
        # Sensor noise, stronger at night; a random window into a fixed noise field.
        rng = np.random.default_rng()
        oy = int(rng.integers(0, self.height))
        ox = int(rng.integers(0, self.width))
        field = self._noise[5.0 if night else 1.5]
        noisy = img.astype(np.int16)
        noisy += field[oy : oy + self.height, ox : ox + self.width]
        np.clip(noisy, 0, 255, out=noisy)
        img = noisy.astype(np.uint8)
        # OSD: the camera's local time and name, drawn after the optics (it is digital).
        local = dev.now() + dt.timedelta(seconds=dev.utc_offset_s)
        stamp = local.strftime("%Y-%m-%d %H:%M:%S") + f".{local.microsecond // 1000:03d}"
        scale = self.width / 640.0
        cv2.putText(
            img,
            stamp,
            (int(10 * scale), int(24 * scale)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.6 * scale,
            (255, 255, 255),
            max(1, int(2 * scale)),
            cv2.LINE_AA,
        )
        cv2.putText(
            img,
            cam.id.upper(),
            (int(10 * scale), self.height - int(12 * scale)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5 * scale,
            (255, 255, 255),
            max(1, int(scale)),
            cv2.LINE_AA,
        )
        return img


# --- what happens in front of the cameras ------------------------------------------------
#
# Real cameras see more than a still scene: people and cars crossing and stopping, a car
# parking for an hour, a passer-by close to the lens, lights switched off at lunch, the
# light falling at dusk before the IR switch and rising after it at dawn, a lamp lit in
# the evening, the shadow of a building moving with the sun, rain. Each camera has its
# own deterministic schedule (seeded by its scene), laid over its scene by the time of
# day of the scene clock, so a simulated day shows all of it in order.

DAY_S = 86400.0


@dataclass(frozen=True)
class SceneEvents:
    """What is in front of one camera at one time of day (fractions of the frame)."""

    figures: tuple[tuple[float, float, float, tuple[int, int, int]], ...] = ()  # x, y, h, BGR
    cars: tuple[tuple[float, float, float, tuple[int, int, int]], ...] = ()  # x, y, w, BGR
    near: float = 0.0  # a passer-by close to the lens covers this share of the width
    light: float = 1.0  # gain of the light on the scene (lights off, dusk, dawn)
    lamp: bool = False  # a lamp lit in part of the view (evening)
    shadow: float | None = None  # where a moving shadow's edge crosses the view (0..1)
    rain: float = 0.0  # 0 dry .. 1 heavy


def _ramp(t: float, t0: float, t1: float, a: float, b: float) -> float:
    if t <= t0:
        return a
    if t >= t1:
        return b
    return a + (b - a) * (t - t0) / (t1 - t0)


def scene_events(seed: int, seconds_of_day: float) -> SceneEvents:
    """The events of camera `seed`'s scene at this local time of day (seconds)."""
    t = seconds_of_day % DAY_S
    hour = t / 3600.0
    rng = np.random.default_rng(seed * 7919 + 17)
    busy = 6.5 <= hour < 21.0
    figures = []
    for k in range(4 if busy else 1):
        period = float(rng.uniform(240.0, 900.0))
        phase = float(rng.uniform(0.0, period))
        y = float(rng.uniform(0.72, 0.9))
        h = float(rng.uniform(0.22, 0.4))
        colour = tuple(int(c) for c in rng.integers(20, 230, size=3))
        stop_at = float(rng.uniform(0.2, 0.8))
        u = ((t + phase) % period) / period
        direction = 1.0 if k % 2 == 0 else -1.0
        if u < 0.6:  # walking across
            x = -0.1 + 1.2 * (u / 0.6)
        elif u < 0.8:  # standing a while
            x = stop_at
        else:
            continue  # out of view
        if direction < 0:
            x = 1.0 - x
        figures.append((x, y, h, (colour[0], colour[1], colour[2])))
    cars = []
    for _ in range(2):
        period = float(rng.uniform(300.0, 1200.0))
        phase = float(rng.uniform(0.0, period))
        y = float(rng.uniform(0.8, 0.92))
        colour = tuple(int(c) for c in rng.integers(20, 230, size=3))
        u = ((t + phase) % period) / period
        if busy and u < 0.25:
            cars.append((-0.3 + 1.6 * (u / 0.25), y, 0.22, (colour[0], colour[1], colour[2])))
    park_from = float(rng.uniform(8.5, 14.0))
    if park_from <= hour < park_from + float(rng.uniform(1.0, 2.5)):  # a car parks a while
        cars.append((float(rng.uniform(0.15, 0.7)), 0.86, 0.24, (40, 40, 170)))
    near = 0.0
    near_phase = float(rng.uniform(0.0, 3600.0))
    if busy and (t + near_phase) % 3600.0 < 25.0:  # someone walks right past the lens
        near = float(rng.uniform(0.2, 0.33))
    light = 1.0
    if 12.0 <= hour < 13.0 and seed % 3 == 0:
        light = 0.75  # lights off at lunch (indoor cameras)
    # dusk darkens the scene until the camera switches to IR at 18:00; dawn brightens it
    # from 06:00 (at night the IR illuminator lights it: night_mode)
    if 17.0 <= hour < 18.0:
        light *= _ramp(hour, 17.0, 18.0, 1.0, 0.55)
    elif 6.0 <= hour < 7.0:
        light *= _ramp(hour, 6.0, 7.0, 0.55, 1.0)
    lamp = 18.0 <= hour < 23.0 and seed % 2 == 1
    shadow = (hour - 8.0) / 8.0 if 8.0 <= hour < 16.0 and seed % 4 != 3 else None
    rain_start = 9.0 + float(seed % 7)
    rain = 0.0
    if rain_start <= hour < rain_start + 1.5 and seed % 3 != 1:
        rain = 0.6 + 0.4 * float(rng.random())
    return SceneEvents(tuple(figures), tuple(cars), near, light, lamp, shadow, rain)


def apply_scene_events(img: Image, ev: SceneEvents, rng: np.random.Generator | None = None
                       ) -> Image:
    """The scene with its events drawn in (before the lens, the IR switch and noise)."""
    h, w = img.shape[:2]
    out = img.copy()
    for x, y, fh, colour in ev.figures:  # people: a body and a head, feet at y
        ph = int(fh * h)
        pw = max(4, ph // 3)
        cx, foot = int(x * w), int(y * h)
        cv2.rectangle(out, (cx - pw // 2, foot - int(ph * 0.8)), (cx + pw // 2, foot), colour, -1)
        cv2.circle(out, (cx, foot - int(ph * 0.88)), max(2, pw // 2), (60, 80, 120), -1)
    for x, y, cw, colour in ev.cars:  # cars: a body, windows, wheels
        x0, bottom = int(x * w), int(y * h)
        cwid = int(cw * w)
        chi = int(cwid * 0.4)
        cv2.rectangle(out, (x0, bottom - chi), (x0 + cwid, bottom), colour, -1)
        cv2.rectangle(out, (x0 + cwid // 5, bottom - chi + 3),
                      (x0 + cwid * 4 // 5, bottom - chi // 2), (200, 210, 220), -1)
        for wx in (x0 + cwid // 5, x0 + cwid * 4 // 5):
            cv2.circle(out, (wx, bottom), max(2, chi // 5), (20, 20, 20), -1)
    if ev.shadow is None and not ev.lamp and ev.rain <= 0 and ev.near <= 0 and ev.light == 1.0:
        return out  # nothing that changes the light: no float pass (the simulator serves
        # thousands of snapshots a second in the benches)
    f = out.astype(np.float32)
    if ev.shadow is not None:  # the shadow of a building, edge slanting, moving with the sun
        edge = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]
        slant = np.linspace(-0.15, 0.15, h, dtype=np.float32)[:, None]
        hard = (edge < ev.shadow * 0.6 + slant + 0.1).astype(np.float32)
        inside = cv2.GaussianBlur(hard, (0, 0), 6)[..., None]
        f *= 1.0 - 0.35 * inside
    if ev.lamp:  # a lamp's pool of light
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        pool = np.exp(-(((xx - 0.7 * w) / (0.2 * w)) ** 2 + ((yy - 0.75 * h) / (0.2 * h)) ** 2))
        f += 60.0 * pool[..., None]
    if ev.rain > 0:  # haze and streaks
        f = f * (1.0 - 0.15 * ev.rain) + 20.0 * ev.rain
        r = rng if rng is not None else np.random.default_rng()
        streaks = np.zeros((h, w), np.float32)
        for _ in range(int(120 * ev.rain)):
            x0, y0 = int(r.integers(0, w)), int(r.integers(0, h))
            cv2.line(streaks, (x0, y0), (x0 + 3, y0 + 14), 1.0, 1)
        f += 40.0 * ev.rain * streaks[..., None]
    if ev.near > 0:  # a passer-by at the lens: big, dark, out of focus, from one side
        side = np.zeros((h, w), np.float32)
        side[:, : int(ev.near * w)] = 1.0
        mask = cv2.GaussianBlur(side, (0, 0), max(3.0, w / 30))[..., None]
        f = f * (1.0 - mask) + np.float32(50.0) * mask
    f *= ev.light
    result: Image = np.clip(f, 0, 255).astype(np.uint8)
    return result
