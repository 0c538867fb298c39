"""The picture judge on what real cameras see (issue 12): sensor noise, moving scenes,
covers, no-signal screens, lenses blurred before a baseline exists. Pure functions on
frames made in memory (the simulator's scene drawing, no network); nothing is written.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from probes.baseline import CameraBaseline, assess, learn_reference, unpack_ints
from probes.scoring import (
    LEVELS,
    Verdict,
    detail_kept,
    judge,
    score_bytes,
    sharpness,
)
from simulator.scenes import draw_scene, night_mode, no_video, view

BIG = 1 << 26
W, H = 640, 360
TEXTURED = 11  # a scene with detail (seed % 5 != 0; multiples of 5 are bare walls)


def jpeg(img: np.ndarray, quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def camera(seed: int = TEXTURED, *, night: bool = False, blur: float = 0.0, k: int = 0,
           gain: float = 1.0, cover: float = 0.0, shift: float = 0.0) -> bytes:
    """A snapshot as a camera takes it: the view, night (IR grey) mode, the lens, sensor
    noise (sigma 1.5 by day, 5 at night, fresh each time), an OSD clock, JPEG."""
    img = view(draw_scene(seed, W, H), W, H, shift, seed)
    if night:
        img = night_mode(img)
    if blur:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    if cover:
        mask = np.zeros((H, W), np.float32)
        mask[:, : int(W * cover)] = 1.0
        mask = cv2.GaussianBlur(mask, (0, 0), 12)[..., None]
        tone = np.float32(48) if night else np.array([40, 46, 60], np.float32)
        img = (img * (1 - mask) + tone * mask).astype(np.uint8)
    rng = np.random.default_rng(1000 + k)
    sigma = 5.0 if night else 1.5
    noise = rng.normal(0, sigma, (H, W, 1)) if night else rng.normal(0, sigma, img.shape)
    out = np.clip(img.astype(np.float32) * gain + noise, 0, 255).astype(np.uint8)
    cv2.putText(out, f"2026-03-02 08:00:{k % 60:02d}", (10, 24), cv2.FONT_HERSHEY_SIMPLEX,
                0.6, (255, 255, 255), 2, cv2.LINE_AA)
    return jpeg(out)


def learned(seed: int = TEXTURED, night: bool = False, n: int = 6) -> CameraBaseline:
    base = CameraBaseline(learn_samples=n)
    for k in range(n):
        a = assess(score_bytes(camera(seed, night=night, k=k), BIG), base, at=300.0 * k)
        assert a.verdict == Verdict.CLEAR, a.reason_zh
    assert base.mode(score_bytes(camera(seed, night=night), BIG).mode).learned
    return base


def verdict(base: CameraBaseline, data: bytes, at: float = 1e5) -> Verdict:
    return assess(score_bytes(data, BIG), base, at=at).verdict


# --- measures that see the lens, not the noise ----------------------------------------


def test_ir_noise_raises_the_laplacian_but_not_the_detail_a_defocus_takes() -> None:
    sharp = score_bytes(camera(night=True, k=1), BIG)
    soft = score_bytes(camera(night=True, k=2, blur=6), BIG)
    # the headline figure is fooled: the noise keeps a defocused IR picture "sharp"
    assert soft.sharpness > 0.3 * sharp.sharpness
    # the coarse levels, where the noise has faded, see the lens
    levels = detail_kept(soft.detail, soft.floors, sharp.detail, sharp.floors,
                         np.ones((9, 16), bool))
    usable = [k for k, _ in levels[:-1] if k is not None]
    assert usable and min(usable) < 0.1


@pytest.mark.parametrize("night", [False, True], ids=["day", "night"])
def test_defocus_reads_far_below_its_own_baseline_by_day_and_by_ir_night(night: bool) -> None:
    base = learned(night=night)
    for k in range(10, 14):
        assert verdict(base, camera(night=night, k=k), at=1e5 + k) == Verdict.CLEAR
    a = assess(score_bytes(camera(night=night, k=20, blur=6), BIG), base, at=2e5)
    assert a.verdict == Verdict.BLURRED, a.reason_zh
    assert "基準" in a.reason_zh


@pytest.mark.parametrize("night", [False, True], ids=["day", "night"])
def test_a_defocused_lens_is_blurred_in_one_look(night: bool) -> None:
    assert judge(score_bytes(camera(night=night, blur=6), BIG), None).verdict == Verdict.BLURRED
    assert judge(score_bytes(camera(night=night), BIG), None).verdict == Verdict.CLEAR


@pytest.mark.parametrize("night", [False, True], ids=["day", "night"])
def test_a_covered_lens_with_noise_and_an_osd_clock_is_covered_in_one_look(night: bool) -> None:
    m = score_bytes(camera(night=night, cover=1.0), BIG)
    j = judge(m, None)
    assert j.verdict == Verdict.COVERED, (j.reason_zh, m.structure, m.contrast)
    assert m.contrast > 5  # the old contrast test alone would have called it clear


def test_the_recorders_no_signal_screen_is_no_signal_in_one_look() -> None:
    j = judge(score_bytes(jpeg(no_video(W, H, "CH03")), BIG), None)
    assert j.verdict == Verdict.NO_SIGNAL
    assert "訊號" in j.reason_zh


def test_black_and_white_out_in_one_look() -> None:
    assert judge(score_bytes(camera(gain=0.05), BIG), None).verdict == Verdict.DARK
    black = np.zeros((H, W, 3), np.uint8)
    assert judge(score_bytes(jpeg(black), BIG), None).verdict == Verdict.COVERED
    white = np.full((H, W, 3), 252, np.uint8)
    assert judge(score_bytes(jpeg(white), BIG), None).verdict == Verdict.OVEREXPOSED


# --- the stable part of the view --------------------------------------------------------


def car_park(cars: list[tuple[int, int]], k: int, blur: float = 0.0) -> bytes:
    """Bare asphalt with a few painted lines and cars (bright boxes) at `cars`."""
    rng = np.random.default_rng(7)
    img = np.full((H, W, 3), 92, np.uint8)
    for x in range(40, W, 120):
        cv2.line(img, (x, 60), (x, 300), (200, 200, 200), 3)
    for x, y in cars:
        cv2.rectangle(img, (x, y), (x + 70, y + 36), (30, 40, 180), -1)
        cv2.rectangle(img, (x + 12, y + 6), (x + 58, y + 30), (200, 220, 230), -1)
    if blur:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    noise = np.random.default_rng(k).normal(0, 1.5, img.shape)
    del rng
    return jpeg(np.clip(img + noise, 0, 255).astype(np.uint8))


def test_cars_crossing_and_parking_on_bare_asphalt_are_neither_blur_nor_a_moved_camera() -> None:
    parked = [(60, 80), (300, 200)]
    base = CameraBaseline(learn_samples=6)
    for k in range(6):
        assess(score_bytes(car_park(parked, k), BIG), base, at=300.0 * k)
    # the parked cars leave, others arrive and cross
    for k, cars in enumerate([[], [(480, 120)], [(200, 240), (420, 90)], [(520, 250)]]):
        a = assess(score_bytes(car_park(cars, 10 + k), BIG), base, at=1e5 + 300 * k)
        assert a.verdict == Verdict.CLEAR, a.reason_zh
    assert verdict(base, car_park([], 20, blur=6), at=2e5) == Verdict.BLURRED


def test_lights_dimmed_are_not_a_blur_but_a_defocus_under_them_is() -> None:
    base = learned()
    assert verdict(base, camera(k=30, gain=0.5), at=1e5) == Verdict.CLEAR
    assert verdict(base, camera(k=31, gain=0.5, blur=5), at=1e5 + 300) == Verdict.BLURRED


def test_a_person_close_to_the_lens_covering_a_third_is_not_a_fault() -> None:
    base = learned()
    a = assess(score_bytes(camera(k=40, cover=0.33), BIG), base, at=1e5)
    assert a.verdict == Verdict.CLEAR, a.reason_zh


def test_covered_moved_and_dark_against_the_baseline() -> None:
    base = learned()
    assert verdict(base, camera(k=50, cover=0.85), at=1e5) == Verdict.COVERED
    assert verdict(base, camera(k=51), at=1e5 + 300) == Verdict.CLEAR
    assert verdict(base, camera(k=52, shift=0.35), at=1e5 + 600) == Verdict.MOVED
    assert verdict(base, camera(k=53, gain=0.06), at=1e5 + 900) == Verdict.DARK


# --- learning never adopts what one look calls a fault --------------------------------------


def test_a_lens_blurred_before_its_baseline_is_reported_and_never_learned() -> None:
    base = CameraBaseline(learn_samples=3)
    for k in range(8):
        a = assess(score_bytes(camera(k=k, blur=6), BIG), base, at=300.0 * k)
        assert a.verdict == Verdict.BLURRED, a.reason_zh
        assert a.learning == (0, 3)
        assert a.rejected == Verdict.BLURRED.value
    # refocused: learning starts from the sharp pictures, the refusal is forgotten
    a = assess(score_bytes(camera(k=20), BIG), base, at=1e4)
    assert a.verdict == Verdict.CLEAR and a.learning == (0, 3) and a.rejected is None


def test_a_reference_view_that_is_itself_blurred_is_refused() -> None:
    base = CameraBaseline()
    j = learn_reference(score_bytes(camera(blur=6), BIG), base, label="bad.jpg")
    assert j.verdict == Verdict.BLURRED
    assert not base.mode(score_bytes(camera(), BIG).mode).learned
    j = learn_reference(score_bytes(camera(k=2), BIG), base, label="good.jpg")
    assert j.verdict == Verdict.CLEAR
    a = assess(score_bytes(camera(k=3), BIG), base, at=1e5)
    assert a.learning is None and a.reference == "good.jpg"
    assert verdict(base, camera(k=4, blur=4), at=1e5 + 300) == Verdict.BLURRED


def test_frozen_needs_the_same_picture_for_the_gap() -> None:
    base = learned()
    data = camera(k=60)
    assert verdict(base, data, at=1e5) == Verdict.CLEAR
    assert verdict(base, data, at=1e5 + 0.5) == Verdict.CLEAR  # a cached snapshot
    assert verdict(base, data, at=1e5 + 300) == Verdict.FROZEN


# --- what the baseline keeps --------------------------------------------------------------


def test_a_baseline_keeps_small_figures_and_a_coarse_signature_only() -> None:
    base = learned(n=6)
    for k in range(6, 12):
        assess(score_bytes(camera(night=True, k=k), BIG), base, at=300.0 * k)
    doc = json.dumps(base.to_dict())
    # 10,000 cameras keep this in memory and in the store: packed, about 3 kB per mode
    assert len(doc) < 8 * 1024, len(doc)

    def longest(x: object) -> int:
        """The most values any one field holds (packed integers unpacked)."""
        if isinstance(x, str) and x[:2] in ("b:", "w:"):
            return len(unpack_ints(x))
        if isinstance(x, list):
            return max([len(x), *(longest(v) for v in x)])
        if isinstance(x, dict):
            return max([0, *(longest(v) for v in x.values())])
        return 0

    # figures per block of the 16x9 grid at 5 scales, and a 32x18 thumbnail: never a
    # picture a person could be recognised in
    assert longest(base.to_dict()) <= LEVELS * 144
    again = CameraBaseline.from_dict(json.loads(doc))
    assert again.to_dict() == base.to_dict()
    ref = again.modes[next(iter(again.modes))].reference()
    assert ref is not None and ref.detail is not None and len(ref.detail) == LEVELS * 144


def test_slow_adaptation_follows_a_clear_scene_but_little_per_sample() -> None:
    base = learned()
    mb = base.mode(score_bytes(camera(), BIG).mode)
    before = list(mb.thumb or [])
    for k in range(12):  # an hour of 5-minute samples, all a little brighter
        assess(score_bytes(camera(k=70 + k, gain=1.1), BIG), base, at=1e5 + 300 * k)
    after = mb.thumb or []
    moved = float(np.mean(np.abs(np.asarray(after) - np.asarray(before))))
    assert 0 < moved < 3  # grey levels: it follows, slowly


def test_the_variance_of_the_laplacian_is_still_exact() -> None:
    g = (np.random.default_rng(3).integers(0, 256, (360, 640))).astype(np.uint8)
    m = score_bytes(jpeg(cv2.cvtColor(g, cv2.COLOR_GRAY2BGR), 100), BIG)
    ref = cv2.Laplacian(cv2.imdecode(np.frombuffer(jpeg(cv2.cvtColor(g, cv2.COLOR_GRAY2BGR),
                                                             100), np.uint8),
                                     cv2.IMREAD_GRAYSCALE), cv2.CV_64F).var()
    assert m.sharpness == pytest.approx(ref, rel=1e-6)
    assert sharpness(g) == pytest.approx(cv2.Laplacian(g, cv2.CV_64F).var(), rel=1e-9)


def test_packed_baseline_figures_read_back_and_old_lists_still_read() -> None:
    from probes.baseline import pack_ints

    for values in ([], [0, 7, 255], [0, 256, 65535], list(range(720))):
        assert unpack_ints(pack_ints(values)) == values
    assert pack_ints([-1, 3]) == [-1, 3]  # what does not fit stays a list
    for bad in ("x:AAAA", "b:not base64!", "w:AAAA"):  # w: 3 bytes: no whole word
        with pytest.raises(ValueError):
            unpack_ints(bad)
    # a baseline stored before packing (plain lists) is read as it was
    base = learned()
    old = base.to_dict()
    for mode in old["modes"].values():
        for key in ("thumb", "spread"):
            if isinstance(mode[key], str):
                mode[key] = unpack_ints(mode[key])
        if isinstance(mode["detail"], str):
            flat = unpack_ints(mode["detail"])
            mode["detail"] = [flat[i:i + 144] for i in range(0, len(flat), 144)]
    assert CameraBaseline.from_dict(old).to_dict() == base.to_dict()
