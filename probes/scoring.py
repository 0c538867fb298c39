"""Picture scoring: small pure functions on one decoded frame, and the verdict.

Everything here works on memory only: a frame is decoded, measured and dropped; nothing
is written, logged or kept except a 32x18 grey thumbnail signature (too coarse to show a
person) and the figures below.

Figures (`Metrics`), all on the analysis frame (a JPEG of 720p or more is decoded at
1/2 or 1/4 scale by libjpeg's DCT scaling, see ANALYSIS_MIN_PIXELS; `scale` says which):

- `sharpness`: variance of the Laplacian (3x3 aperture). `cv2.meanStdDev` on a CV_16S
  Laplacian gives exactly `cv2.Laplacian(g, cv2.CV_64F).var()` (a uint8 Laplacian fits in
  int16) and is the fastest form measured (1080p: 3.1 ms vs 4.7 ms CV_64F meanStdDev vs
  8.5 ms `.var()`).
- `brightness` (grey mean) and `contrast` (grey standard deviation).
- `hf_ratio`: sqrt(sharpness) / contrast, the high-frequency energy relative to the
  contrast. It does not depend on how much is in the scene or how it is lit; a sharp
  photo scores 0.15-0.9, a defocused one under 0.08 (see DESIGN notes in
  `judge_without_baseline`).
- `colourfulness` (Hasler and Süsstrunk 2003) on a quarter-size colour copy: near 0 when
  the camera has switched to night (IR, grey) mode. A single-component JPEG is grey.
- `dark_fraction` / `bright_fraction` / `flat_fraction`: share of pixels that are near
  black (<= 16), near white (>= 245), or within 10 grey levels of the median (a cover).
- `thumb`: 32x18 grey signature, compared with the camera's reference view for this
  mode (moved) by regional zero-mean normalised correlation (`similarity`), which ignores
  changes of exposure; `digest` of the 1/8-scale picture tells a frozen picture.

The verdict (`judge`) compares a camera with ITS OWN baseline for the current mode (see
probes/baseline.py); no absolute sharpness threshold is used, because a sharp
low-texture scene can score under 20 and a defocused busy one over 100.
"""

from __future__ import annotations

import hashlib
import math
import struct
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

# cv2 returns loosely typed arrays; uint8 in practice.
Gray = npt.NDArray[Any]

THUMB_W, THUMB_H = 32, 18
# A frame is analysed at the largest reduction (1/2, 1/4, 1/8; libjpeg's DCT scaling,
# almost free) that keeps at least this many pixels: 640x360 and D1 at full size,
# 720p and 1080p at 1/2, 4K at 1/4. Defocus spreads over many pixels at full size, so it
# survives the reduction, while the decode and the Laplacian cost a quarter.
ANALYSIS_MIN_PIXELS = 200_000
NIGHT_COLOURFULNESS = 2.0


class Verdict(StrEnum):
    CLEAR = "clear"
    BLURRED = "blurred"
    COVERED = "covered"
    DARK = "dark"
    OVEREXPOSED = "overexposed"
    FROZEN = "frozen"
    MOVED = "moved"


class Mode(StrEnum):
    DAY = "day"
    NIGHT = "night"


class FrameError(Exception):
    """A frame that cannot be scored; `zh_reason` is what a custodian reads."""

    def __init__(self, code: str, zh_reason: str) -> None:
        super().__init__(f"{code}: {zh_reason}")
        self.code = code
        self.zh_reason = zh_reason


# --- Headers: know the size before decoding ------------------------------------------

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass(frozen=True)
class ImageInfo:
    format: str  # "jpeg" | "png" | "other"
    width: int
    height: int
    components: int  # 1 grey, 3 colour (0 when unknown)


def jpeg_info(data: bytes) -> ImageInfo:
    """Width, height and components from a JPEG's SOF header, without decoding.

    Raises FrameError for something that is not a JPEG, has no frame header before the
    scan, or ends before its end-of-image marker (a truncated transfer).
    """
    if len(data) < 4 or data[0] != 0xFF or data[1] != 0xD8:
        raise FrameError("not-jpeg", "影像格式不符（不是 JPEG）")
    pos, n = 2, len(data)
    info: ImageInfo | None = None
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise FrameError("bad-jpeg", "JPEG 影像格式錯誤")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # standalone markers
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2:
            raise FrameError("bad-jpeg", "JPEG 影像格式錯誤")
        if marker in _SOF:
            if pos + 10 > n:
                break
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            info = ImageInfo("jpeg", width, height, data[pos + 9])
        if marker == 0xDA:  # start of scan: the header is complete
            if info is None or info.width == 0 or info.height == 0:
                raise FrameError("bad-jpeg", "JPEG 影像缺少尺寸資訊")
            if data.rfind(b"\xff\xd9") < pos:
                raise FrameError("truncated", "影像不完整（JPEG 資料被截斷）")
            return info
        pos += 2 + length
    raise FrameError("truncated", "影像不完整（JPEG 資料被截斷）")


def image_info(data: bytes) -> ImageInfo:
    """Header dimensions of a JPEG or PNG; `other` (size 0) for other formats."""
    if data[:2] == b"\xff\xd8":
        return jpeg_info(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if len(data) < 26 or data[12:16] != b"IHDR":
            raise FrameError("bad-png", "PNG 影像格式錯誤")
        width, height = struct.unpack(">II", data[16:24])
        colour_type = data[25]
        return ImageInfo("png", width, height, 1 if colour_type in (0, 4) else 3)
    return ImageInfo("other", 0, 0, 0)


def _reduction(width: int, height: int) -> int:
    """1, 2, 4 or 8: the largest reduction that leaves at least ANALYSIS_MIN_PIXELS."""
    r = 1
    while r < 8 and (width // (2 * r)) * (height // (2 * r)) >= ANALYSIS_MIN_PIXELS:
        r *= 2
    return r


_GRAY_FLAGS = {
    1: cv2.IMREAD_GRAYSCALE,
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
}
_COLOR_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


# --- Decoding --------------------------------------------------------------------------


@dataclass
class Frame:
    """A decoded frame, in memory only: grey analysis image and a small colour copy."""

    gray: Gray
    small: Gray | None  # BGR, 1/4 of the analysis size; None for a grey source
    scale: int  # analysis reduction: 1, 2, 4 or 8
    digest: str  # of the small image: equal for bit-identical frames (frozen)


def decode_image(data: bytes, max_pixels: int, allow_other: bool = False) -> Frame:
    """Decode image bytes (a snapshot JPEG; PNG and others for offline files).

    The declared size is read from the header first and a frame over `max_pixels` is
    refused before any pixel buffer is allocated (a hostile 30000x30000 declaration).
    """
    info = image_info(data)
    if info.format == "other":
        if not allow_other:
            raise FrameError("not-jpeg", "影像格式不符（不是 JPEG）")
    elif info.width * info.height > max_pixels:
        raise FrameError(
            "too-large",
            f"影像尺寸過大（宣告 {info.width}x{info.height}），已拒絕解碼",
        )
    buf = np.frombuffer(data, np.uint8)
    if info.format == "jpeg":
        r = _reduction(info.width, info.height)
        if info.components >= 3 and r == 1:
            # Small frames: a grey decode plus a 1/4-scale colour decode cost half of
            # one full colour decode (measured at 640x360: 0.45 + 0.54 ms vs 1.96 ms).
            gray = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
            small = cv2.imdecode(buf, cv2.IMREAD_REDUCED_COLOR_4)
            if gray is None or small is None:
                raise FrameError("undecodable", "影像無法解碼（JPEG 損壞）")
            return _frame(gray, small, r)
        if info.components >= 3:
            image = cv2.imdecode(buf, _COLOR_FLAGS[r])
            if image is None:
                raise FrameError("undecodable", "影像無法解碼（JPEG 損壞）")
            return _analysis(image, cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), r)
        gray = cv2.imdecode(buf, _GRAY_FLAGS[r])
        if gray is None:
            raise FrameError("undecodable", "影像無法解碼（JPEG 損壞）")
        return _analysis(None, gray, r)
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if image is None:
        raise FrameError("undecodable", "影像無法解碼")
    if image.shape[0] * image.shape[1] > max_pixels:
        raise FrameError("too-large", f"影像尺寸過大（{image.shape[1]}x{image.shape[0]}）")
    return frame_from_bgr(image, grey_source=info.components == 1)


def frame_from_bgr(image: Gray, grey_source: bool = False) -> Frame:
    """A frame from a decoded BGR (or grey) array: an RTSP or video frame. Reduced
    the way a JPEG of the same size is (INTER_AREA instead of DCT scaling)."""
    h, w = image.shape[:2]
    r = _reduction(w, h)
    if r > 1:
        image = cv2.resize(image, (-(-w // r), -(-h // r)), interpolation=cv2.INTER_AREA)
    if image.ndim == 2:
        return _analysis(None, image, r)
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return _analysis(None if grey_source else image, gray, r)


def _analysis(image: Gray | None, gray: Gray, scale: int) -> Frame:
    """The frame at analysis scale, with its quarter-size colour copy."""
    h, w = gray.shape[:2]
    size = (max(1, -(-w // 4)), max(1, -(-h // 4)))
    small = None if image is None else cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return _frame(gray, small, scale)


def _frame(gray: Gray, small: Gray | None, scale: int) -> Frame:
    ref = small if small is not None else gray
    digest = hashlib.blake2b(np.ascontiguousarray(ref).tobytes(), digest_size=12).hexdigest()
    return Frame(gray=gray, small=small, scale=scale, digest=digest)


# --- Measuring -------------------------------------------------------------------------


@dataclass(frozen=True)
class Metrics:
    sharpness: float
    blocks: tuple[float, ...]
    brightness: float
    contrast: float
    hf_ratio: float
    colourfulness: float
    dark_fraction: float
    bright_fraction: float
    flat_fraction: float
    mode: Mode
    width: int
    height: int
    scale: int
    thumb: tuple[int, ...]
    digest: str

    def values(self) -> dict[str, float | str]:
        return {
            "sharpness": round(self.sharpness, 2),
            "brightness": round(self.brightness, 1),
            "contrast": round(self.contrast, 1),
            "hf_ratio": round(self.hf_ratio, 4),
            "colourfulness": round(self.colourfulness, 2),
            "mode": self.mode.value,
        }


def sharpness(gray: Gray) -> float:
    """Variance of the Laplacian: equal to cv2.Laplacian(g, CV_64F).var(), faster."""
    return _sharpness_detail(gray)[0]


DETAIL_GRID = (16, 9)  # blocks across, down


def _sharpness_detail(gray: Gray) -> tuple[float, tuple[float, ...]]:
    """(variance of the Laplacian, mean absolute Laplacian of each block of a 16x9 grid).

    The block figures let the judge compare each part of the picture with the same part
    of the baseline: an on-screen display (timestamp, camera name) stays sharp whatever
    the lens does and would hide a defocus in the whole-frame figure. Block sums come
    from one integral image, so they cost about 1 ms on a 1080p frame.
    """
    lap = cv2.Laplacian(gray, cv2.CV_16S)
    var = float(cv2.meanStdDev(lap)[1][0, 0]) ** 2
    integral = cv2.integral(cv2.convertScaleAbs(lap))
    h, w = gray.shape[:2]
    gx, gy = DETAIL_GRID
    ys = np.linspace(0, h, gy + 1).astype(np.intp)
    xs = np.linspace(0, w, gx + 1).astype(np.intp)
    t = integral[np.ix_(ys, xs)].astype(np.float64)
    sums = t[1:, 1:] - t[:-1, 1:] - t[1:, :-1] + t[:-1, :-1]
    area = np.maximum(np.outer(np.diff(ys), np.diff(xs)), 1)
    blocks = tuple(round(float(v), 2) for v in (sums / area).ravel())
    return var, blocks


def block_detail_ratio(
    base: tuple[float, ...] | list[float], cur: tuple[float, ...] | list[float]
) -> tuple[float | None, int]:
    """How much of its fine detail the textured part of the picture kept.

    Each block's detail above the picture's own floor (its 10th-percentile block: noise
    and flat walls) is compared with the same block of the baseline, over the blocks
    that had real detail in the baseline; the median of those ratios, and how many
    blocks counted. About 1 for a sharp picture, under 0.2 for a defocused one; a
    person walking by or an object taken away changes only some blocks.
    """
    if len(base) != len(cur) or not base:
        return None, 0
    b = np.asarray(base, np.float64)
    c = np.asarray(cur, np.float64)
    excess = b - np.percentile(b, 10)
    textured = excess >= 1.0
    n = int(textured.sum())
    if n == 0:
        return None, 0
    ratio = np.maximum(0.0, c[textured] - np.percentile(c, 10)) / excess[textured]
    return float(np.median(ratio)), n


def colourfulness(small_bgr: Gray | None) -> float:
    """Hasler-Süsstrunk colourfulness; 0 for a grey source (night IR mode)."""
    if small_bgr is None:
        return 0.0
    b, g, r = (c.astype(np.float32) for c in cv2.split(small_bgr))
    rg = r - g
    yb = 0.5 * (r + g) - b
    rg_m, rg_s = (float(x[0, 0]) for x in cv2.meanStdDev(rg))
    yb_m, yb_s = (float(x[0, 0]) for x in cv2.meanStdDev(yb))
    return math.hypot(rg_s, yb_s) + 0.3 * math.hypot(rg_m, yb_m)


def thumbnail(gray_small: Gray) -> tuple[int, ...]:
    t = cv2.resize(gray_small, (THUMB_W, THUMB_H), interpolation=cv2.INTER_AREA)
    return tuple(int(v) for v in t.reshape(-1))


def score(frame: Frame) -> Metrics:
    g = frame.gray
    mean, std = (float(x[0, 0]) for x in cv2.meanStdDev(g))
    sharp, blocks = _sharpness_detail(g)
    if frame.small is not None:
        small_gray = cv2.cvtColor(frame.small, cv2.COLOR_BGR2GRAY)
    else:
        h, w = g.shape[:2]
        small_gray = cv2.resize(g, (max(1, w // 8), max(1, h // 8)), interpolation=cv2.INTER_AREA)
    hist = cv2.calcHist([small_gray], [0], None, [256], [0, 256]).reshape(-1)
    total = float(hist.sum()) or 1.0
    cum = np.cumsum(hist)
    median = int(np.searchsorted(cum, total / 2))
    flat = float(hist[max(0, median - 10) : median + 11].sum()) / total
    colour = colourfulness(frame.small)
    return Metrics(
        sharpness=sharp,
        blocks=blocks,
        brightness=mean,
        contrast=std,
        hf_ratio=math.sqrt(sharp) / max(std, 1.0),
        colourfulness=colour,
        dark_fraction=float(hist[:17].sum()) / total,
        bright_fraction=float(hist[245:].sum()) / total,
        flat_fraction=flat,
        mode=Mode.NIGHT if colour < NIGHT_COLOURFULNESS else Mode.DAY,
        width=int(g.shape[1]),
        height=int(g.shape[0]),
        scale=frame.scale,
        thumb=thumbnail(small_gray),
        digest=frame.digest,
    )


def score_bytes(data: bytes, max_pixels: int, allow_other: bool = False) -> Metrics:
    """Decode and score, in one call meant for `asyncio.to_thread`."""
    return score(decode_image(data, max_pixels, allow_other=allow_other))


def _cells(t: tuple[int, ...] | list[int]) -> npt.NDArray[np.float64]:
    grid = np.asarray(t, np.float64).reshape(3, THUMB_H // 3, 4, THUMB_W // 4)
    return grid.transpose(0, 2, 1, 3).reshape(12, -1)


def similarity(a: tuple[int, ...] | list[int], b: tuple[int, ...] | list[int]) -> float | None:
    """How well two thumbnails show the same view: 1 same, ~0 unrelated.

    The median, over a 4x3 grid of 8x6 cells, of each cell's zero-mean normalised
    correlation. Exposure changes cancel out, and a person walking close to the lens
    spoils a few cells but not the median, while a camera turned away spoils all of
    them. Flat cells (a bare wall) are skipped; None when fewer than 3 cells have
    detail (a uniform picture has no view to compare).
    """
    if len(a) != len(b) or len(a) != THUMB_W * THUMB_H:
        return None
    x = _cells(a)
    y = _cells(b)
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    nx = np.sqrt((x * x).mean(axis=1))
    ny = np.sqrt((y * y).mean(axis=1))
    usable = (nx >= 2.0) & (ny >= 2.0)
    if int(usable.sum()) < 3:
        return None
    corr = (x[usable] * y[usable]).mean(axis=1) / (nx[usable] * ny[usable])
    return float(np.median(corr))


# --- Judging ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """What a learned baseline tells the judge about one camera in one mode."""

    sharpness: float
    sharpness_mad: float
    hf_ratio: float
    contrast: float
    flat_fraction: float
    thumb: tuple[int, ...] | None
    blocks: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Thresholds:
    # covered: nearly uniform picture (any brightness)
    covered_contrast: float = 5.0
    # a black picture with less variation than this is a cover, not a dark scene
    black_contrast: float = 1.5
    covered_flat: float = 0.97
    # with a baseline: most of the picture turned flat where it was not
    covered_flat_vs_base: float = 0.85
    covered_flat_rise: float = 0.2
    # dark / overexposed: absolute
    dark_brightness: float = 40.0
    dark_fraction: float = 0.5
    overexposed_brightness: float = 215.0
    overexposed_fraction: float = 0.5
    # blurred vs own baseline: sharpness below this share of the baseline (and below
    # median - 5 sigma) AND the contrast-normalised high frequency below half of it
    blur_sharpness_ratio: float = 0.2
    blur_hf_ratio: float = 0.5
    # ... or, block by block: the textured blocks kept under this share of their detail
    blur_block_ratio: float = 0.3
    blur_min_blocks: int = 8
    # blurred without a baseline: strong evidence only
    blur_hf_absolute: float = 0.05
    blur_min_contrast: float = 8.0
    # moved: thumbnail correlation with the reference view below this
    moved_similarity: float = 0.5


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason_zh: str
    similarity: float | None = None


def _n(x: float) -> str:
    return f"{x:.0f}" if x >= 10 else f"{x:.1f}"


def judge(
    m: Metrics,
    baseline: Reference | None,
    last_digest: str | None = None,
    th: Thresholds = DEFAULT_THRESHOLDS,
) -> Judgement:
    """The verdict on one frame, with a zh-TW reason (without the camera's name).

    Order: dark (a pure black picture with no noise at all: covered), overexposed,
    covered (a nearly uniform picture; with a baseline, a picture mostly flat where it
    was not) -- these need no baseline --, frozen (the same picture as the previous
    sample, bit for bit at 1/8 scale: a live sensor never repeats itself; the caller
    passes `last_digest` only when the samples are far enough apart), moved (the view
    no longer matches the reference view), blurred (whole-frame sharpness far below the
    baseline with the contrast-normalised detail halved, or the textured blocks kept
    under 30 % of their detail), clear. Without a baseline, blurred only on strong
    evidence (`judge_without_baseline`).
    """
    sim = None
    if baseline is not None and baseline.thumb is not None:
        sim = similarity(m.thumb, baseline.thumb)

    def out(v: Verdict, reason: str) -> Judgement:
        return Judgement(v, reason, sim)

    if m.brightness < th.dark_brightness and m.dark_fraction >= th.dark_fraction:
        if m.contrast < th.black_contrast:
            # no signal at all, not even sensor noise: a cap, tape, or black paint
            return out(Verdict.COVERED, f"畫面全黑，鏡頭可能被遮蔽（亮度 {_n(m.brightness)}）")
        return out(Verdict.DARK, f"畫面過暗（亮度 {_n(m.brightness)}）")
    if (
        m.brightness > th.overexposed_brightness and m.bright_fraction >= th.overexposed_fraction
    ) or m.bright_fraction >= 0.8:
        return out(Verdict.OVEREXPOSED, f"畫面過亮（亮度 {_n(m.brightness)}）")
    if m.contrast < th.covered_contrast or m.flat_fraction >= th.covered_flat:
        return out(Verdict.COVERED, f"畫面被遮蔽（對比 {_n(m.contrast)}）")
    if (
        baseline is not None
        and m.flat_fraction >= th.covered_flat_vs_base
        and m.flat_fraction >= baseline.flat_fraction + th.covered_flat_rise
    ):
        return out(Verdict.COVERED, f"畫面大部分被遮蔽（對比 {_n(m.contrast)}）")
    if last_digest is not None and m.digest == last_digest:
        return out(Verdict.FROZEN, "畫面凍結（與上次取樣完全相同）")
    if baseline is not None:
        if sim is not None and sim < th.moved_similarity:
            return out(Verdict.MOVED, f"視角改變（與基準畫面相似度 {sim:.2f}）")
        blur = f"畫面模糊（清晰度 {_n(m.sharpness)}，基準 {_n(baseline.sharpness)}）"
        limit = min(
            th.blur_sharpness_ratio * baseline.sharpness,
            baseline.sharpness - 5 * 1.4826 * baseline.sharpness_mad,
        )
        if m.sharpness < limit and m.hf_ratio < th.blur_hf_ratio * baseline.hf_ratio:
            return out(Verdict.BLURRED, blur)
        if baseline.blocks is not None:
            kept, n = block_detail_ratio(baseline.blocks, m.blocks)
            if kept is not None and n >= th.blur_min_blocks and kept < th.blur_block_ratio:
                return out(Verdict.BLURRED, blur)
        return out(Verdict.CLEAR, f"畫面清晰（清晰度 {_n(m.sharpness)}）")
    return judge_without_baseline(m, th)


def judge_without_baseline(m: Metrics, th: Thresholds = DEFAULT_THRESHOLDS) -> Judgement:
    """A single image judged on its own (covered/dark/overexposed already ruled out).

    Only strong evidence calls it blurred: high-frequency energy (Laplacian standard
    deviation) under 5 % of the grey-level contrast. Sharp photographs measured 0.15
    (a texture-poor scene) to 0.94 (text); a Gaussian blur of sigma 1 on real footage
    already falls to 0.08 and sigma 2+ to 0.03-0.06; a motion-blurred photo
    (clock_motion) scores 0.24 and is not caught without a baseline.
    """
    if m.contrast >= th.blur_min_contrast and m.hf_ratio < th.blur_hf_absolute:
        return Judgement(
            Verdict.BLURRED,
            f"畫面模糊（高頻能量僅對比的 {m.hf_ratio * 100:.1f}%，無基準可比）",
        )
    return Judgement(Verdict.CLEAR, f"畫面清晰（清晰度 {_n(m.sharpness)}，無基準）")


# --- Measuring the cost ------------------------------------------------------------------


def measure_cost(jpeg: bytes, repeats: int = 30, max_pixels: int = 1 << 26) -> dict[str, Any]:
    """CPU milliseconds per frame (median of `repeats`) of the full path (header check,
    decode, score, judge) against the bare floor `cv2.imdecode(GRAYSCALE)` +
    `meanStdDev(Laplacian CV_64F)`, on the same JPEG. For `make bench` (issue 7 wants
    ratio <= 1.3)."""

    def floor() -> None:
        g = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert g is not None
        cv2.meanStdDev(cv2.Laplacian(g, cv2.CV_64F))

    def full() -> None:
        judge(score_bytes(jpeg, max_pixels), None)

    def cpu_ms(fn: Any) -> float:
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.process_time()
            fn()
            times.append(time.process_time() - t0)
        return float(np.median(times)) * 1000.0

    info = jpeg_info(jpeg)
    floor_ms, full_ms = cpu_ms(floor), cpu_ms(full)
    return {
        "size": f"{info.width}x{info.height}",
        "floor_ms": round(floor_ms, 2),
        "full_ms": round(full_ms, 2),
        "ratio": round(full_ms / floor_ms, 2) if floor_ms > 0 else None,
    }
