"""Picture scoring and baselines: pure functions on frames in memory (no network)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from probes import scoring
from probes.baseline import CameraBaseline, assess, learn_reference, reset_baseline
from probes.scoring import (
    FrameError,
    Mode,
    Verdict,
    decode_image,
    frame_from_bgr,
    jpeg_info,
    judge,
    score,
    score_bytes,
    sharpness,
    similarity,
)

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
IMAGES = FIXTURES / "images"
VIDEO = FIXTURES / "video"
needs_images = pytest.mark.skipif(
    not IMAGES.is_dir(), reason="../shared/fixtures/images not present"
)
needs_video = pytest.mark.skipif(
    not any(VIDEO.glob("*.mp4")) if VIDEO.is_dir() else True,
    reason="../shared/fixtures/video/*.mp4 not present",
)
SHARP_PHOTOS = ["astronaut.png", "brick.png", "camera.png", "coffee.png", "rocket.jpg", "text.png"]
BIG = 1 << 26


def jpeg(img: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def video_frames(path: Path, seconds: list[float]) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    for t in seconds:
        cap.set(cv2.CAP_PROP_POS_MSEC, t * 1000)
        ok, frame = cap.read()
        assert ok
        out.append(frame)
    cap.release()
    return out


def noisy(img: np.ndarray, seed: int, sigma: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img.astype(np.float32) + rng.normal(0, sigma, img.shape), 0, 255).astype(
        np.uint8
    )


def noisy_grey(img: np.ndarray, seed: int, sigma: float = 5.0) -> np.ndarray:
    """Sensor noise of a monochrome (IR) picture: the same in every channel."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, sigma, (*img.shape[:2], 1))
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


# --- the sharpness figure ------------------------------------------------------------


@needs_images
@pytest.mark.parametrize("name", [*SHARP_PHOTOS, "clock_motion.png"])
def test_meanstddev_of_16bit_laplacian_equals_laplacian_var(name: str) -> None:
    g = cv2.imread(str(IMAGES / name), cv2.IMREAD_GRAYSCALE)
    reference = cv2.Laplacian(g, cv2.CV_64F).var()
    ours = sharpness(g)
    assert ours == pytest.approx(reference, rel=1e-9)
    ms = cv2.meanStdDev(cv2.Laplacian(g, cv2.CV_64F))[1][0, 0] ** 2
    assert ms == pytest.approx(reference, rel=1e-9)


def test_sharpness_equality_on_random_extremes() -> None:
    g = (np.random.default_rng(3).integers(0, 2, (240, 320)) * 255).astype(np.uint8)
    assert sharpness(g) == pytest.approx(cv2.Laplacian(g, cv2.CV_64F).var(), rel=1e-9)


# --- hostile and broken JPEGs ----------------------------------------------------------


def crafted_jpeg(width: int, height: int) -> bytes:
    """A JPEG whose frame header declares width x height, with a scan and an EOI."""
    soi = b"\xff\xd8"
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3)
    sof += b"\x01\x22\x00\x02\x11\x00\x03\x11\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 12, 3) + b"\x01\x00\x02\x11\x03\x11\x00\x3f\x00"
    return soi + app0 + sof + sos + b"\x00" * 64 + b"\xff\xd9"


def test_declared_30000x30000_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    data = crafted_jpeg(30000, 30000)
    assert jpeg_info(data).width == 30000
    calls: list[object] = []
    monkeypatch.setattr(scoring.cv2, "imdecode", lambda *a: calls.append(a))
    with pytest.raises(FrameError) as err:
        decode_image(data, max_pixels=4096 * 2160 * 2)
    assert err.value.code == "too-large"
    assert "30000x30000" in err.value.zh_reason
    assert calls == []  # no decoder ran, so no 2.7 GB buffer was allocated


@needs_images
def test_truncated_fixture_jpeg_is_unknown_with_reason() -> None:
    with pytest.raises(FrameError) as err:
        score_bytes((IMAGES / "truncated.jpg").read_bytes(), BIG)
    assert err.value.code == "truncated"
    assert "截斷" in err.value.zh_reason


def test_jpeg_cut_in_the_middle_of_its_scan_is_truncated() -> None:
    img = noisy(np.full((120, 160, 3), 128, np.uint8), 1, 20)
    data = jpeg(img)
    assert score_bytes(data, BIG).sharpness > 0
    with pytest.raises(FrameError) as err:
        score_bytes(data[: len(data) // 2], BIG)
    assert err.value.code == "truncated"


@pytest.mark.parametrize(
    "data", [b"", b"\xff\xd8", b"<html>login</html>", b"\xff\xd8\xff\x00\x00", b"\xff\xd8" * 50]
)
def test_garbage_is_a_frame_error_never_a_crash(data: bytes) -> None:
    with pytest.raises(FrameError):
        score_bytes(data, BIG)


# --- single images, no baseline ----------------------------------------------------------


@needs_images
@pytest.mark.parametrize("name", SHARP_PHOTOS)
def test_sharp_photos_are_clear_without_baseline(name: str) -> None:
    m = score_bytes((IMAGES / name).read_bytes(), BIG, allow_other=True)
    assert judge(m, None).verdict == Verdict.CLEAR


@needs_images
@pytest.mark.parametrize("name", ["astronaut.png", "camera.png", "coffee.png", "rocket.jpg"])
def test_strongly_defocused_photo_is_blurred_without_baseline(name: str) -> None:
    img = cv2.imread(str(IMAGES / name), cv2.IMREAD_COLOR)
    blurred = cv2.GaussianBlur(img, (0, 0), 4)
    j = judge(score_bytes(jpeg(blurred), BIG), None)
    assert j.verdict == Verdict.BLURRED
    assert "無基準" in j.reason_zh


def test_uniform_and_black_pictures_are_covered() -> None:
    grey = noisy(np.full((360, 640, 3), (60, 70, 80), np.uint8), 2, 1.0)
    assert judge(score_bytes(jpeg(grey), BIG), None).verdict == Verdict.COVERED
    black = np.zeros((360, 640, 3), np.uint8)
    assert judge(score_bytes(jpeg(black), BIG), None).verdict == Verdict.COVERED


@needs_video
def test_dark_and_overexposed_scenes() -> None:
    (frame,) = video_frames(VIDEO / "bottle-detection.mp4", [1.0])
    dark = noisy((frame.astype(np.float32) * 0.08).astype(np.uint8), 4, 1.5)
    assert judge(score_bytes(jpeg(dark), BIG), None).verdict == Verdict.DARK
    bright = np.clip(frame.astype(np.float32) * 3 + 200, 0, 255).astype(np.uint8)
    assert judge(score_bytes(jpeg(bright), BIG), None).verdict == Verdict.OVEREXPOSED


# --- baselines: blur, day/night, frozen, moved -------------------------------------------


@needs_video
def test_blur_against_own_baseline_and_not_on_sharp_low_texture_scene() -> None:
    frames = video_frames(VIDEO / "bottle-detection.mp4", [0.0, 0.4, 0.8, 19.0, 21.0])
    base = CameraBaseline(learn_samples=3)
    for i, f in enumerate(frames[:3]):
        a = assess(score(frame_from_bgr(f)), base, at=i * 300.0)
        assert a.learning is not None
    # Fewer objects on the table later: a third of the sharpness, still sharp.
    for i, f in enumerate(frames[3:]):
        a = assess(score(frame_from_bgr(f)), base, at=1000.0 + i * 300)
        assert a.verdict == Verdict.CLEAR, a.reason_zh
    blurred = cv2.GaussianBlur(frames[1], (0, 0), 3)
    a = assess(score(frame_from_bgr(blurred)), base, at=5000.0)
    assert a.verdict == Verdict.BLURRED
    assert a.baseline_sharpness is not None and "基準" in a.reason_zh


def test_on_screen_timestamp_does_not_hide_a_defocus() -> None:
    rng = np.random.default_rng(5)
    scene = cv2.resize(
        rng.integers(0, 255, (45, 80, 3)).astype(np.uint8),
        (640, 360),
        interpolation=cv2.INTER_NEAREST,
    )

    def shot(img: np.ndarray, seed: int) -> np.ndarray:
        out = noisy(img, seed, 1.5)
        cv2.putText(
            out,
            f"2026-01-01 08:00:{seed:02d}",
            (10, 24),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.6,
            (255, 255, 255),
            2,
            cv2.LINE_AA,
        )
        return out

    base = CameraBaseline(learn_samples=3)
    for i in range(4):
        a = assess(score_bytes(jpeg(shot(scene, i)), BIG), base, at=i * 300.0)
    assert a.verdict == Verdict.CLEAR
    soft = cv2.GaussianBlur(scene, (0, 0), 6)
    a = assess(score_bytes(jpeg(shot(soft, 9)), BIG), base, at=9000.0)
    assert a.verdict == Verdict.BLURRED


@needs_images
def test_day_and_night_baselines_are_kept_apart() -> None:
    day = cv2.imread(str(IMAGES / "coffee.png"), cv2.IMREAD_COLOR)
    night = cv2.cvtColor(cv2.cvtColor(day, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    night = cv2.convertScaleAbs(night, alpha=0.55, beta=8)
    base = CameraBaseline(learn_samples=2)
    for i in range(3):
        m = score_bytes(jpeg(noisy(day, i)), BIG)
        assert m.mode == Mode.DAY
        assess(m, base, at=i * 300.0)
    day_ref = base.mode(Mode.DAY).reference()
    assert day_ref is not None
    m = score_bytes(jpeg(noisy_grey(night, 10)), BIG)
    assert m.mode == Mode.NIGHT
    a = assess(m, base, at=5000.0)
    assert a.learning == (0, 2)  # night starts learning; day figures are not used
    assert a.verdict == Verdict.CLEAR
    assert base.mode(Mode.DAY).sharpness == day_ref.sharpness
    assert not base.mode(Mode.NIGHT).learned
    assess(score_bytes(jpeg(noisy_grey(night, 11)), BIG), base, at=5300.0)
    assert base.mode(Mode.NIGHT).learned
    assert base.mode(Mode.NIGHT).sharpness != base.mode(Mode.DAY).sharpness


@needs_images
def test_frozen_needs_the_same_picture_minutes_apart() -> None:
    img = noisy(cv2.imread(str(IMAGES / "astronaut.png"), cv2.IMREAD_COLOR), 1)
    data = jpeg(img)
    base = CameraBaseline(learn_samples=2)
    assert assess(score_bytes(data, BIG), base, at=0.0).verdict == Verdict.CLEAR
    # a snapshot cached by the camera for a second is not a frozen picture
    assert assess(score_bytes(data, BIG), base, at=0.5).verdict == Verdict.CLEAR
    a = assess(score_bytes(data, BIG), base, at=300.0)
    assert a.verdict == Verdict.FROZEN
    assert "凍結" in a.reason_zh
    fresh = jpeg(noisy(cv2.imread(str(IMAGES / "astronaut.png"), cv2.IMREAD_COLOR), 2))
    assert assess(score_bytes(fresh, BIG), base, at=600.0).verdict != Verdict.FROZEN


@needs_video
def test_moved_view_against_reference_view() -> None:
    frames = video_frames(VIDEO / "one-by-one-person-detection.mp4", [0.0, 0.5, 1.0, 30.0])
    base = CameraBaseline(learn_samples=3)
    for i, f in enumerate(frames[:3]):
        assess(score(frame_from_bgr(f)), base, at=i * 300.0)
    same = assess(score(frame_from_bgr(frames[3])), base, at=2000.0)
    assert same.verdict == Verdict.CLEAR, same.reason_zh
    assert same.similarity is not None and same.similarity > 0.6
    h, w = frames[3].shape[:2]
    turned = cv2.resize(frames[3][:, int(w * 0.35) :], (w, h))
    a = assess(score(frame_from_bgr(turned)), base, at=2300.0)
    assert a.verdict == Verdict.MOVED
    assert a.similarity is not None and a.similarity < 0.5


def test_similarity_ignores_exposure_and_needs_detail() -> None:
    rng = np.random.default_rng(1)
    t = tuple(int(v) for v in rng.integers(20, 200, scoring.THUMB_W * scoring.THUMB_H))
    brighter = tuple(min(255, int(v * 1.2 + 10)) for v in t)
    assert similarity(t, brighter) == pytest.approx(1.0, abs=0.02)
    flat = (128,) * len(t)
    assert similarity(t, flat) is None
    other = tuple(int(v) for v in rng.integers(20, 200, len(t)))
    s = similarity(t, other)
    assert s is not None and abs(s) < 0.4


# --- baseline persistence ------------------------------------------------------------------


@needs_images
def test_baseline_round_trips_through_json_and_resets() -> None:
    img = cv2.imread(str(IMAGES / "coffee.png"), cv2.IMREAD_COLOR)
    base = CameraBaseline(learn_samples=2)
    for i in range(4):
        assess(score_bytes(jpeg(noisy(img, i)), BIG), base, at=i * 300.0)
    data = json.loads(json.dumps(base.to_dict()))
    again = CameraBaseline.from_dict(data)
    assert again.to_dict() == base.to_dict()
    assert again.mode(Mode.DAY).reference() == base.mode(Mode.DAY).reference()
    store = {"cam-1": data}
    assert reset_baseline(store, "cam-1") and "cam-1" not in store
    assert not CameraBaseline.from_dict(store.get("cam-1")).mode(Mode.DAY).learned
    base.reset()
    assert not base.mode(Mode.DAY).learned and base.last_digest is None


@pytest.mark.parametrize(
    "junk", [None, {}, {"format": 99}, {"format": 1, "modes": 3}, {"format": 1, "size": "x"}]
)
def test_unreadable_stored_baseline_starts_fresh(junk: object) -> None:
    base = CameraBaseline.from_dict(junk)  # type: ignore[arg-type]
    assert not base.mode(Mode.DAY).learned


@needs_images
def test_reference_photo_seeds_both_modes() -> None:
    img = cv2.imread(str(IMAGES / "coffee.png"), cv2.IMREAD_COLOR)
    base = CameraBaseline(learn_samples=1)
    learn_reference(score(frame_from_bgr(img)), base, all_modes=True)
    assert base.mode(Mode.DAY).learned and base.mode(Mode.NIGHT).learned


def test_measure_cost_reports_floor_and_ratio() -> None:
    img = noisy(np.full((360, 640, 3), 100, np.uint8), 3, 20)
    out = scoring.measure_cost(jpeg(img), repeats=3)
    assert out["size"] == "640x360"
    assert out["floor_ms"] > 0 and out["full_ms"] > 0 and out["ratio"] > 0
