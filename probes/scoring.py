"""Picture scoring: small pure functions on one decoded frame, and the verdict.

Everything here works on memory only: a frame is decoded, measured and dropped; nothing
is written, logged or kept except figures and a 32x18 grey thumbnail signature (too
coarse to show a person).

Figures (`Metrics`), all on the analysis frame (a JPEG of 720p or more is decoded at
1/2 or 1/4 scale by libjpeg's DCT scaling, see ANALYSIS_MIN_PIXELS; `scale` says which):

- `sharpness`: variance of the Laplacian (3x3 aperture), the headline figure a
  custodian sees. It measures the sensor as much as the lens (IR noise raises it), so
  the verdicts use `detail` instead.
- `detail`: the energy of the Laplacian in each block of a 16x9 grid at five scales
  (the analysis frame and four halvings) with each scale's `floors` (what the flattest
  fifth of the picture holds: noise). Noise fades with every halving, edges do not, so
  the coarse scales see the lens through IR noise and JPEG artefacts; see docs/picture.md.
- `structure`: share of blocks with coarse structure (a covered lens has almost none).
- `spectral`: fine detail relative to coarse structure, the one-look blur figure.
- `brightness` (grey mean), `contrast` (grey standard deviation), `hf_ratio`
  (sqrt(sharpness) / contrast), `colourfulness` (Hasler and Süsstrunk 2003; near 0 in
  night IR mode), `dark_fraction` / `bright_fraction` / `flat_fraction`, and
  `uniform_fraction` / `saturation` (a recorder's generated "no video" screen).
- `thumb`: 32x18 grey signature, compared window by window with the baseline's
  (`compare_views`) for a moved camera and to find the part of the view that did not
  change; `digest` of the 1/8-scale picture tells a frozen picture.

The verdict (`judge`) first asks what one look shows (no signal, dark, overexposed,
covered), then compares the camera with ITS OWN baseline for the current mode (see
probes/baseline.py): no absolute sharpness threshold, because a sharp low-texture scene
can score under 20 and a defocused busy one over 100.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

# cv2 returns loosely typed arrays; uint8 in practice.
Gray = npt.NDArray[Any]
# figures passed around as sequences or arrays
Floats = Sequence[float] | npt.NDArray[Any]

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
    NO_SIGNAL = "no-signal"


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

GRID_W, GRID_H = 16, 9  # blocks across, down
DETAIL_GRID = (GRID_W, GRID_H)
BLOCKS = GRID_W * GRID_H
# Detail is measured at the analysis scale and four halvings (1, 1/2, 1/4, 1/8, 1/16).
# Sensor noise is independent from pixel to pixel, so every halving divides its energy
# by about four, while the edges of the scene keep theirs (natural scenes look alike at
# every scale): the coarse levels see the lens even where the fine ones see only noise.
LEVELS = 5
COARSE = 3  # 1/8 of the analysis size (80x45 for 640x360): the structure seen at a glance
# The floor of a level: the 20th percentile of its Laplacian energy over 8x8-pixel cells,
# i.e. what the flattest fifth of the picture holds (sensor noise, JPEG ringing, or a
# fine texture that covers everything). Measured on the simulator's IR frames (white
# noise, sigma 5) it is 0.8-1.1 x the true noise energy at levels 0 and 1.
FLOOR_CELL = 8
FLOOR_PERCENTILE = 20
# Noise at the coarse levels is estimated from level 1, where the floor is noise (or the
# scene's finest texture, which only makes the estimate cautious): white noise loses 3/4
# of its energy per halving; 1/2 allows for noise correlated over a few pixels (Bayer
# demosaicing, denoising), so a noise-only picture never passes for structure.
NOISE_FALLOFF = 0.5
# A block has structure when its level-3 energy beats the noise by this much: a 3-4 grey
# level edge crossing it. Covers (a hand, tape, a cap), being out of focus, give 0-2.
STRUCTURE_MIN = 4.0


def sharpness(gray: Gray) -> float:
    """Variance of the Laplacian: equal to cv2.Laplacian(g, CV_64F).var(), faster."""
    lap = cv2.Laplacian(gray, cv2.CV_32F)  # exact: integer results of a uint8 image
    return float(cv2.meanStdDev(lap)[1][0, 0]) ** 2


def detail_pyramid(gray: Gray) -> tuple[float, npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(variance of the Laplacian, block energies, floors) of an analysis frame.

    Block energies: for each level, the mean squared Laplacian of each block of the
    16x9 grid, shape (LEVELS, 9, 16). Each level is the previous one halved by area
    averaging (in float, so no rounding noise is added). Floors are measured at levels 0
    and 1 (the coarser ones follow from level 1, see noise_levels). About 2.5 ms at
    960x540 (a 1080p frame's analysis size).
    """
    energies = np.empty((LEVELS, GRID_H, GRID_W), np.float32)
    floors = np.zeros(LEVELS, np.float32)
    # level 0 in int16 (a uint8 image's Laplacian fits, and it is twice as fast), its
    # squares in float32: exact integers either way. The frame-sized intermediates go
    # into buffers kept per thread: fresh megabytes per frame cost page faults.
    h0, w0 = gray.shape[:2]
    if gray.dtype == np.uint8:
        lap = cv2.Laplacian(gray, cv2.CV_16S, dst=_scratch("lap0", (h0, w0), np.int16))
    else:
        lap = cv2.Laplacian(gray, cv2.CV_32F)
    var = 0.0
    level: Gray = gray
    for i in range(LEVELS):
        if i > 0:
            h, w = level.shape[:2]
            if level.dtype == np.float32:
                src = level
            else:
                src = _scratch("float0", (h, w), np.float32)
                src[...] = level
            level = cv2.resize(src, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
            lap = cv2.Laplacian(level, cv2.CV_32F)
        sq = cv2.multiply(lap, lap, dst=_scratch(f"sq{i}", lap.shape[:2], np.float32),
                          dtype=cv2.CV_32F)
        if i == 0:
            # var = E[L^2] - E[L]^2, accumulated in double: the same figure as
            # cv2.Laplacian(g, CV_64F).var(), for a third of meanStdDev's time
            mean_lap = cv2.mean(lap)[0]
            var = max(0.0, cv2.mean(sq)[0] - mean_lap * mean_lap)
        h, w = sq.shape[:2]
        energies[i] = cv2.resize(sq, (GRID_W, GRID_H), interpolation=cv2.INTER_AREA)
        if i <= 1:
            # cells of exactly FLOOR_CELL pixels (an integer reduction is the fast path)
            ch, cw = max(1, h // FLOOR_CELL), max(1, w // FLOOR_CELL)
            crop = sq[: ch * FLOOR_CELL, : cw * FLOOR_CELL] if min(h, w) >= FLOOR_CELL else sq
            cells = cv2.resize(crop, (max(2, cw), max(2, ch)), interpolation=cv2.INTER_AREA)
            flat = cells.reshape(-1)
            k = int(flat.size * FLOOR_PERCENTILE / 100)
            floors[i] = float(np.partition(flat, k)[k])
    floors[2:] = noise_levels(floors)[2:]
    return var, energies, floors


_buffers = threading.local()


def _scratch(name: str, shape: tuple[int, ...], dtype: Any) -> npt.NDArray[Any]:
    """A work array of this thread, reused while the frame size stays the same."""
    held: dict[str, npt.NDArray[Any]] | None = getattr(_buffers, "arrays", None)
    if held is None:
        held = _buffers.arrays = {}
    buf = held.get(name)
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        buf = held[name] = np.empty(shape, dtype)
    return buf


def noise_levels(floors: Floats) -> npt.NDArray[np.float64]:
    """The noise energy to discount at each level (see NOISE_FALLOFF)."""
    f = np.asarray(floors, np.float64)
    out = f.copy()
    for i in range(2, len(f)):
        out[i] = f[1] * NOISE_FALLOFF ** (i - 1)
    return out


def excess(detail: Any, floors: Floats) -> npt.NDArray[np.float64]:
    """Block energies above each level's noise: (LEVELS, 9, 16), never negative."""
    d = np.asarray(detail, np.float64).reshape(LEVELS, GRID_H, GRID_W)
    return np.maximum(0.0, d - noise_levels(floors)[:, None, None])


def structured_blocks(detail: Any, floors: Floats) -> npt.NDArray[np.bool_]:
    """Blocks whose coarse structure stands out of the noise (9, 16)."""
    out: npt.NDArray[np.bool_] = excess(detail, floors)[COARSE] >= STRUCTURE_MIN
    return out


# One-look blur: the fine detail of the structured blocks relative to their coarse
# structure. A sharp view keeps comparable energy at every scale; a defocused lens keeps
# the coarse shapes and loses the fine ones. The pair of levels used is the finest one
# where a sharp block's detail would stand out of the fine level's noise.
SPECTRAL_PAIRS = ((1, 3), (2, 4))
SPECTRAL_MIN_BLOCKS = 12  # more than an on-screen clock covers on its own
SPECTRAL_SHARP_SHARE = 0.3  # a sharp block keeps at least this share at the fine level


def spectral_ratio(detail: Any, floors: Floats) -> tuple[float | None, float | None]:
    """(median fine/coarse energy ratio of the structured blocks, median ratio of the
    fine level to the next one) with the finest measurable pair; (None, None) when no
    pair has enough blocks. A defocus dims every octave of detail: both are low."""
    s = excess(detail, floors)
    noise = noise_levels(floors)
    for fine, coarse in SPECTRAL_PAIRS:
        sel = (s[coarse] >= STRUCTURE_MIN) & (SPECTRAL_SHARP_SHARE * s[coarse] >= 2 * noise[fine])
        if int(sel.sum()) >= SPECTRAL_MIN_BLOCKS:
            ratio = float(np.median(s[fine][sel] / s[coarse][sel]))
            step = float(np.median(s[fine][sel] / np.maximum(s[fine + 1][sel], 1e-6)))
            return ratio, step
    return None, None


def block_ratios(
    detail: Any, floors: Floats, other_floors: Floats | None = None
) -> npt.NDArray[np.float64]:
    """Per block: fine/coarse energy ratio with the finest pair of levels that is
    measurable there (also under `other_floors`' noise, to compare two pictures with the
    same pair); NaN where no pair is (a flat block, or noise everywhere). (9, 16)"""
    s = excess(detail, floors)
    noise = noise_levels(floors)
    if other_floors is not None:
        noise = np.maximum(noise, noise_levels(other_floors))
    out = np.full((GRID_H, GRID_W), np.nan)
    for fine, coarse in reversed(SPECTRAL_PAIRS):
        sel = (s[coarse] >= STRUCTURE_MIN) & (SPECTRAL_SHARP_SHARE * s[coarse] >= 2 * noise[fine])
        out[sel] = s[fine][sel] / s[coarse][sel]
    return out


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


# A picture is uniform where its quarter-size copy is within this many grey levels of
# its median: sensor noise (sigma 1.5-5 per pixel, a quarter of that after the
# reduction, so +-1 to +-4 at 2 sigma) and a cover's shading exceed it over much of the
# picture; a recorder's generated "no video" screen does not.
UNIFORM_TOLERANCE = 3


def uniformity(hist: npt.NDArray[Any], median: int, small_bgr: Gray | None) -> tuple[float, float]:
    """(share of the quarter-size picture within UNIFORM_TOLERANCE grey levels of its
    median, saturation of its mean colour: max - min channel)."""
    total = float(hist.sum()) or 1.0
    lo, hi = max(0, median - UNIFORM_TOLERANCE), median + UNIFORM_TOLERANCE + 1
    share = float(hist[lo:hi].sum()) / total
    if small_bgr is None:
        return share, 0.0
    mean = cv2.mean(small_bgr)[:3]
    return share, float(max(mean) - min(mean))


def thumbnail(gray_small: Gray) -> tuple[int, ...]:
    t = cv2.resize(gray_small, (THUMB_W, THUMB_H), interpolation=cv2.INTER_AREA)
    return tuple(int(v) for v in t.reshape(-1))


@dataclass(frozen=True)
class Metrics:
    sharpness: float
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
    # block energies, (LEVELS, 9, 16) float32, level by level; see detail_pyramid. An
    # array, not a tuple: 720 Python floats per frame cost more than the measuring.
    detail: npt.NDArray[np.float32] | None = None
    floors: tuple[float, ...] = ()
    structure: float = 1.0  # share of blocks with coarse structure
    spectral: float | None = None  # one-look blur figure (spectral_ratio)
    spectral_step: float | None = None
    uniform_fraction: float = 0.0
    saturation: float = 0.0


def score(frame: Frame) -> Metrics:
    g = frame.gray
    mean, std = (float(x[0, 0]) for x in cv2.meanStdDev(g))
    sharp, energies, floors = detail_pyramid(g)
    if frame.small is not None:
        small_gray = cv2.cvtColor(frame.small, cv2.COLOR_BGR2GRAY)
    else:
        h, w = g.shape[:2]
        small_gray = cv2.resize(g, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    hist = cv2.calcHist([small_gray], [0], None, [256], [0, 256]).reshape(-1)
    total = float(hist.sum()) or 1.0
    cum = np.cumsum(hist)
    median = int(np.searchsorted(cum, total / 2))
    flat = float(hist[max(0, median - 10) : median + 11].sum()) / total
    colour = colourfulness(frame.small)
    fl = tuple(round(float(v), 3) for v in floors)
    spectral, spectral_step = spectral_ratio(energies, floors)
    uniform, saturation = uniformity(hist, median, frame.small)
    return Metrics(
        sharpness=sharp,
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
        detail=energies,
        floors=fl,
        structure=float(structured_blocks(energies, floors).mean()),
        spectral=spectral,
        spectral_step=spectral_step,
        uniform_fraction=uniform,
        saturation=saturation,
    )


def score_bytes(data: bytes, max_pixels: int, allow_other: bool = False) -> Metrics:
    """Decode and score, in one call meant for `asyncio.to_thread`."""
    return score(decode_image(data, max_pixels, allow_other=allow_other))


# --- Comparing views ---------------------------------------------------------------------


def _cells(t: tuple[int, ...] | list[int]) -> npt.NDArray[np.float64]:
    grid = np.asarray(t, np.float64).reshape(3, THUMB_H // 3, 4, THUMB_W // 4)
    return grid.transpose(0, 2, 1, 3).reshape(12, -1)


def similarity(a: Sequence[float], b: Sequence[float]) -> float | None:
    """How well two thumbnails show the same view: 1 same, ~0 unrelated.

    The median, over a 4x3 grid of 8x6 cells, of each cell's zero-mean normalised
    correlation; exposure changes cancel out. Flat cells are skipped; None when fewer
    than 3 cells have detail. A display figure (camwatch_picture_similarity); the
    verdict uses `compare_views`, which looks only at the stable background.
    """
    if len(a) != len(b) or len(a) != THUMB_W * THUMB_H:
        return None
    x = _cells(list(a))  # type: ignore[arg-type]
    y = _cells(list(b))  # type: ignore[arg-type]
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    nx = np.sqrt((x * x).mean(axis=1))
    ny = np.sqrt((y * y).mean(axis=1))
    usable = (nx >= 2.0) & (ny >= 2.0)
    if int(usable.sum()) < 3:
        return None
    corr = (x[usable] * y[usable]).mean(axis=1) / (nx[usable] * ny[usable])
    return float(np.median(corr))


def thumb_windows(t: Floats) -> npt.NDArray[np.float64]:
    """The 4x4 thumbnail pixels around each block of the 16x9 grid: (9, 16, 16).

    Each block is 2x2 thumbnail pixels; its window adds one pixel on every side, so that
    a view shifted by a fraction of a block already changes it.
    """
    grid = np.asarray(t, np.float64).reshape(THUMB_H, THUMB_W)
    padded = np.pad(grid, 1, mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(padded, (4, 4))[::2, ::2]
    return np.ascontiguousarray(win).reshape(GRID_H, GRID_W, 16)


# A window has texture at the scale of the thumbnail (1/20 of the frame width) when its
# standard deviation reaches this many grey levels: enough for a correlation to mean
# something. Bare asphalt, walls and sky stay under it and are judged by their mean.
WINDOW_TEXTURE = 2.5
# Same content: zero-mean normalised correlation at least this, and a contrast within
# this factor of the baseline's once the picture's overall gain is taken out. Measured on
# the labelled clips: unchanged windows correlate at 0.9-1.0 through noise, compression,
# rain and a 2x gain change; a window a car or a person entered falls under 0.5.
WINDOW_SAME_CORR = 0.7
WINDOW_SAME_CONTRAST = 1.7
# A flat window is unchanged while its mean stays within this many grey levels of the
# baseline's after the overall gain and offset are taken out, and it stays flat.
WINDOW_SAME_MEAN = 8.0


@dataclass(frozen=True)
class ViewMatch:
    """How the current thumbnail matches the baseline's, window by window (9x16)."""

    gain: float  # contrast of the current picture relative to the baseline's
    textured: npt.NDArray[np.bool_]  # windows with texture in the baseline
    stable: npt.NDArray[np.bool_]  # windows that were steady while the baseline was learned
    corr: npt.NDArray[np.float64]  # zero-mean normalised correlation per window
    unchanged: npt.NDArray[np.bool_]  # windows that still show what the baseline showed


def compare_views(
    cur: Sequence[float], base: Sequence[float], spread: Sequence[float] | None = None
) -> ViewMatch | None:
    """Window-by-window comparison of a thumbnail with the baseline's.

    `spread` is the baseline's per-pixel variation while it was learned (median absolute
    deviation): windows where things moved then (a road, a doorway, trees) are not
    `stable` and count neither for a blur nor for a moved camera.
    """
    if len(cur) != THUMB_W * THUMB_H or len(base) != len(cur):
        return None
    wc, wb = thumb_windows(cur), thumb_windows(base)
    mc, mb = wc.mean(axis=-1), wb.mean(axis=-1)
    sc, sb = wc.std(axis=-1), wb.std(axis=-1)
    cov = ((wc - mc[..., None]) * (wb - mb[..., None])).mean(axis=-1)
    corr = cov / np.maximum(sc * sb, 1e-6)
    textured = sb >= WINDOW_TEXTURE
    if spread is not None and len(spread) == len(base):
        ws = thumb_windows(spread).mean(axis=-1)
        # steady: the learning samples varied by less than a fifth of the window's
        # contrast (or than 2 grey levels in a flat window)
        stable = ws <= np.maximum(2.0, 0.2 * sb)
    else:
        stable = np.ones_like(textured)
    anchor = textured & stable & (corr >= 0.8)
    if int(anchor.sum()) >= 4:
        gain = float(np.median(sc[anchor] / np.maximum(sb[anchor], 1e-6)))
    else:
        gain = float(np.std(np.asarray(cur, np.float64)) / max(np.std(np.asarray(base)), 1e-6))
    gain = float(np.clip(gain, 0.2, 5.0))
    offset = float(np.median(mc - gain * mb))
    ratio = sc / np.maximum(gain * sb, 1e-6)
    same_textured = (
        textured
        & (corr >= WINDOW_SAME_CORR)
        & (ratio <= WINDOW_SAME_CONTRAST)
        & (ratio >= 1 / WINDOW_SAME_CONTRAST)
    )
    same_flat = (
        ~textured
        & (np.abs(mc - (gain * mb + offset)) <= WINDOW_SAME_MEAN)
        & (sc <= WINDOW_TEXTURE * max(gain, 1.0) + 1.0)
    )
    return ViewMatch(
        gain=gain,
        textured=textured,
        stable=stable,
        corr=corr,
        unchanged=(same_textured | same_flat) & stable,
    )


# The view's edges at the scale of the thumbnail: the thumbnail minus its blur (sigma 2
# thumbnail pixels), which takes out the light falling across the scene. A view is the
# same while its strong, steady edges correlate; a camera turned away leaves none of them
# in place, and a camera nudged finds them again a few pixels off (`edge_alignment`).
EDGE_BLUR = 2.0
EDGE_STRONG_PERCENTILE = 70
EDGE_MIN_PIXELS = 24
SHIFT_X, SHIFT_Y = 6, 4  # thumbnail pixels searched: 19 % of the width, 22 % of the height


def _edges(t: Sequence[float]) -> npt.NDArray[np.float32]:
    a = np.asarray(t, np.float32).reshape(THUMB_H, THUMB_W)
    return a - cv2.GaussianBlur(a, (0, 0), EDGE_BLUR)  # type: ignore[no-any-return]


def _zncc(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> float:
    a = a - a.mean()
    b = b - b.mean()
    d = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / d if d > 1e-6 else 0.0


def edge_correlation(
    cur: Sequence[float], base: Sequence[float], spread: Sequence[float] | None = None
) -> float | None:
    """Correlation of the current edges with the baseline's strong, steady edges; None
    when the baseline has too few of them (a bare wall)."""
    ec, eb = _edges(cur), _edges(base)
    mag = np.abs(eb)
    strong = mag >= max(1.0, float(np.percentile(mag, EDGE_STRONG_PERCENTILE)))
    if spread is not None and len(spread) == len(base):
        sp = np.asarray(spread, np.float32).reshape(THUMB_H, THUMB_W)
        strong &= sp <= np.maximum(2.0, 0.5 * mag)
    if int(strong.sum()) < EDGE_MIN_PIXELS:
        return None
    return _zncc(ec[strong], eb[strong])


def edge_alignment(cur: Sequence[float], base: Sequence[float]) -> tuple[float, int, int]:
    """(best correlation, dx, dy) of the current edges with the baseline's shifted by
    up to SHIFT_X, SHIFT_Y thumbnail pixels (0, 0 included)."""
    ec, eb = _edges(cur), _edges(base)
    best = (_zncc(ec, eb), 0, 0)
    h, w = ec.shape
    for dy in range(-SHIFT_Y, SHIFT_Y + 1):
        for dx in range(-SHIFT_X, SHIFT_X + 1):
            if dx == 0 and dy == 0:
                continue
            a = ec[max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)]
            b = eb[max(0, -dy) : h + min(0, -dy), max(0, -dx) : w + min(0, -dx)]
            c = _zncc(a, b)
            if c > best[0]:
                best = (c, dx, dy)
    return best


def detail_kept(
    cur_detail: Any,
    cur_floors: Floats,
    base_detail: Any,
    base_floors: Floats,
    where: npt.NDArray[np.bool_],
) -> list[tuple[float | None, int]]:
    """Per level: (median share of the baseline's detail the blocks `where` kept, blocks).

    Only blocks whose baseline detail stood well out of the noise (of either picture)
    count at a level. The shares are divided by the same share at the coarsest level, so
    a change of light or contrast (a cloud, lights switched, fog) cancels out while a
    defocus, which takes the fine levels first, does not.
    """
    sc = excess(cur_detail, cur_floors)
    sb = excess(base_detail, base_floors)
    noise = np.maximum(noise_levels(cur_floors), noise_levels(base_floors))
    out: list[tuple[float | None, int]] = []
    shares: list[npt.NDArray[np.float64] | None] = []
    for lvl in range(LEVELS):
        rel = where & (sb[lvl] >= np.maximum(STRUCTURE_MIN, 3 * noise[lvl]))
        shares.append(sc[lvl][rel] / sb[lvl][rel] if int(rel.sum()) >= KEPT_MIN_BLOCKS else None)
    top = shares[-1]
    norm = float(np.median(top)) if top is not None else 1.0
    norm = float(np.clip(norm, 0.25, 4.0))
    for lvl in range(LEVELS):
        s = shares[lvl]
        if s is None:
            out.append((None, 0))
        else:
            out.append((float(np.median(s)) / norm, int(s.size)))
    return out


KEPT_MIN_BLOCKS = SPECTRAL_MIN_BLOCKS  # more than an on-screen clock


# --- Judging ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """What a baseline tells the judge about one camera in one mode."""

    sharpness: float
    sharpness_mad: float
    contrast: float
    flat_fraction: float
    thumb: tuple[float, ...] | None
    detail: tuple[float, ...] | None = None
    floors: tuple[float, ...] | None = None
    spread: tuple[float, ...] | None = None
    structure: float = 1.0
    hf_ratio: float = 0.0
    spectral: float | None = None


@dataclass(frozen=True)
class Thresholds:
    # dark / overexposed: absolute
    dark_brightness: float = 40.0
    dark_fraction: float = 0.5
    overexposed_brightness: float = 215.0
    overexposed_fraction: float = 0.5
    overexposed_all: float = 0.8
    # a black picture with less variation than this is a cap or black paint, not a
    # dark scene (a dark scene still shows sensor noise)
    black_contrast: float = 1.0
    # covered, one look: nearly uniform, or no coarse structure in ~90 % of the picture.
    # The simulator's covers leave 6-8 % (the on-screen clock and name); the real clips
    # and photos keep 25 % or more (fog 33 %, an overhead car park 30 %).
    covered_contrast: float = 5.0
    covered_flat: float = 0.97
    covered_structure: float = 0.12
    # ... or under a fifth with structure and 85 % of the picture within 10 grey levels
    # of its median: a uniform object over the lens (the simulator's covers: 6-16 % and
    # 90-98 %; its bare walls at night 19-30 % and at most 74 %; real footage 64 %+)
    covered_structure_flat: float = 0.2
    covered_flat_most: float = 0.85
    # against the baseline, this share of the blocks that had structure lost it or its
    # focus: covered when the view is gone with it, blurred when the view stays
    covered_lost: float = 0.75
    # ... or this share lost while the coarsest shapes kept under `covered_coarse` of
    # their energy: something in front of the lens (a defocus keeps 0.5-1 of it; covers
    # of 3/4 of the picture and the labelled climber's body keep under 0.1)
    covered_most: float = 0.6
    covered_coarse: float = 0.2
    # a cover adds no shapes: new structured blocks at most this share of those gone
    # (the simulator's turned cameras: about 1x; its covers: under 0.05)
    covered_new: float = 0.25
    # the view gone and the picture this much softer than the baseline (fine/coarse
    # ratio): an object close to the lens, not a turned camera (which shows another
    # scene in focus: 0.4-1.1 of the baseline's ratio on the real turned cameras)
    covered_softer: float = 0.5
    # ... with fewer coarse shapes than before: a cover hides them, a new view (the
    # stairs camera pushed up: 1.9x) brings its own
    covered_shapes: float = 0.5
    # a block keeps its focus while its fine/coarse ratio stays over this share of the
    # baseline's (a defocus of sigma 2 at 640 px leaves under 0.2)
    soft_share: float = 0.3
    # the view stays while its strong edges still correlate this well (a defocus keeps
    # 0.8-1.0 at the thumbnail's scale; a hand over the lens 0.1-0.4)
    view_kept: float = 0.5
    # ... and is intact over this: nothing in front of the lens (a Gaussian defocus of
    # sigma 8 keeps 0.97; a cover of 3/4 of the picture 0.36-0.62)
    view_intact: float = 0.8
    # ... or this share of its textured windows still match (a car park's edges are its
    # cars, so a car driving in moves them; its windows hold)
    view_intact_windows: float = 0.7
    # no signal: a generated screen, uniform (no sensor noise) over most of the picture
    # in a saturated colour (blue screens: 130)
    no_signal_uniform: float = 0.85
    no_signal_saturation: float = 60.0
    # blurred, one look: fine/coarse ratio under this. Sharp real footage measured 0.13
    # (an overhead car park, heavily compressed) to 0.9; a Gaussian defocus of sigma 4
    # (at 640 px width) 0.01-0.05, sigma 6 under 0.03, by day and by IR night.
    blur_spectral: float = 0.06
    # ... and the fine level under this share of the next one: sharp footage measured
    # 0.27-1.8, sigma 4 0.07-0.14, a defocus disc of radius 6 0.08-0.17 (a picture of
    # random 8-pixel tiles, all its structure at one scale: 0.059 and 0.22) -- unless the
    # ratio is under `blur_spectral_sure`, which no sharp picture came near (the
    # simulator's defocused scenes with people, shadows and rain: 0.02-0.045 and 0.2-0.32)
    blur_spectral_step: float = 0.2
    blur_spectral_sure: float = 0.05
    # blurred against the baseline (detail kept by the unchanged blocks, see detail_kept):
    # the finest usable level kept under `blur_fine` and the next one under `blur_next`.
    # Unchanged blocks of the labelled clips kept 0.5-1.1 at every level; a defocus of
    # sigma 2 keeps under 0.3 at its finest usable level and under 0.65 at the next.
    blur_fine: float = 0.3
    blur_next: float = 0.65
    blur_min_unchanged: float = 0.2  # share of the blocks that must still show the view
    # the next level keeps this many times the finest level's share, unless the finest
    # kept under `blur_gone` (a Gaussian of sigma 2: 0.07 then 0.26; sigma 3: 0.02, 0.10;
    # a busy car park after its cars left: 0.26, 0.21)
    blur_steep: float = 1.5
    blur_gone: float = 0.1
    # moved, the view gone: the baseline's strong steady edges correlate under
    # `moved_edges` and under `moved_matching` of its textured windows still match. The
    # labelled clips stay over 0.6 through crowds, rain and shadows (a car park whose
    # cars all left: 0.23, with half its windows matching); turned cameras fall under 0.1.
    moved_edges: float = 0.3
    moved_matching: float = 0.3
    moved_min_windows: int = 6
    # ... or under `moved_windows_gone` of its windows match and its edges correlate
    # under `moved_edges_some` (a view panned and zoomed keeps some long edges; the sunny
    # crowded terrace matched 9 % of its windows but kept its edges at 0.69)
    moved_windows_gone: float = 0.2
    moved_edges_some: float = 0.6
    # moved, the view displaced: the edges line up again `moved_shift` thumbnail pixels
    # or more away (6 % of the width), correlating over `moved_aligned` and by
    # `moved_gain` more than in place. Real footage without a move never gained 0.2.
    moved_shift: int = 2
    moved_aligned: float = 0.6
    moved_gain: float = 0.35
    # ... while most of the stable background no longer matches in place (a big lorry
    # driving through lines up with itself a few pixels on; the background does not)
    moved_shift_matching: float = 0.5


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason_zh: str
    similarity: float | None = None
    # figures behind the verdict, for the values of a check result
    kept: float | None = None  # blur: detail kept at the deciding level
    matching: float | None = None  # moved: share of the stable view still matching


def _n(x: float) -> str:
    return f"{x:.0f}" if x >= 10 else f"{x:.1f}"


def judge_one_look(
    m: Metrics, th: Thresholds = DEFAULT_THRESHOLDS, structure: bool = True
) -> Judgement | None:
    """What a person sees in one look, without any baseline: no signal, dark, black,
    overexposed, covered. None when none applies. `structure`: also call a picture
    without coarse structure covered (with a baseline, `_judge_against` decides: a bare
    car park defocused loses its structure too, but keeps its view)."""
    if m.uniform_fraction >= th.no_signal_uniform and m.saturation >= th.no_signal_saturation:
        return Judgement(Verdict.NO_SIGNAL, "無視訊訊號（主機顯示無影像畫面）")
    if m.brightness < th.dark_brightness and m.dark_fraction >= th.dark_fraction:
        if m.contrast < th.black_contrast:
            # no signal at all, not even sensor noise: a cap, tape, or black paint
            return Judgement(
                Verdict.COVERED, f"畫面全黑，鏡頭可能被遮蔽（亮度 {_n(m.brightness)}）"
            )
        return Judgement(Verdict.DARK, f"畫面過暗（亮度 {_n(m.brightness)}）")
    if (
        m.brightness > th.overexposed_brightness and m.bright_fraction >= th.overexposed_fraction
    ) or m.bright_fraction >= th.overexposed_all:
        return Judgement(Verdict.OVEREXPOSED, f"畫面過亮（亮度 {_n(m.brightness)}）")
    if m.contrast < th.covered_contrast or m.flat_fraction >= th.covered_flat:
        return Judgement(Verdict.COVERED, f"畫面被遮蔽（對比 {_n(m.contrast)}）")
    if structure and m.detail is not None and (
        m.structure < th.covered_structure
        or (m.structure < th.covered_structure_flat and m.flat_fraction >= th.covered_flat_most)
    ):
        return Judgement(
            Verdict.COVERED,
            f"畫面被遮蔽（僅 {m.structure * 100:.0f}% 的畫面有景物輪廓）",
        )
    return None


def judge_blur_one_look(m: Metrics, th: Thresholds = DEFAULT_THRESHOLDS) -> Judgement | None:
    """Blurred on its own evidence: fine detail almost absent where coarse shapes are."""
    if m.spectral is not None and (
        m.spectral < th.blur_spectral_sure
        or (
            m.spectral < th.blur_spectral
            and m.spectral_step is not None
            and m.spectral_step < th.blur_spectral_step
        )
    ):
        return Judgement(
            Verdict.BLURRED,
            f"畫面模糊（細節僅輪廓的 {m.spectral * 100:.1f}%，無基準可比）",
        )
    return None


def judge(
    m: Metrics,
    baseline: Reference | None,
    last_digest: str | None = None,
    th: Thresholds = DEFAULT_THRESHOLDS,
) -> Judgement:
    """The verdict on one frame, with a zh-TW reason (without the camera's name).

    Order: what one look shows (no signal, dark, black, overexposed, covered: no baseline
    needed), frozen (the same picture as the previous sample, bit for bit at 1/8 scale:
    a live sensor never repeats itself; the caller passes `last_digest` only when the
    samples are far enough apart), then against the baseline: covered (most of the
    structure it had is gone), moved (its stable background no longer matches), blurred
    (the unchanged part of the view lost its fine detail); without a baseline, blurred
    only on strong evidence (`judge_blur_one_look`).
    """
    sim = None
    if baseline is not None and baseline.thumb is not None:
        sim = similarity(m.thumb, baseline.thumb)

    def out(j: Judgement) -> Judgement:
        return dataclasses.replace(j, similarity=sim)

    usable = (
        baseline is not None
        and bool(baseline.detail and baseline.floors)
        and m.detail is not None
    )
    look = judge_one_look(m, th, structure=not usable)
    if look is not None:
        return out(look)
    if last_digest is not None and m.digest == last_digest:
        return out(Judgement(Verdict.FROZEN, "畫面凍結（與上次取樣完全相同）"))
    if baseline is None or not usable:
        blur = judge_blur_one_look(m, th)
        if blur is not None:
            return out(blur)
        return out(Judgement(Verdict.CLEAR, f"畫面清晰（清晰度 {_n(m.sharpness)}，無基準）"))
    return out(_judge_against(m, baseline, th))


def _coarse_kept(m: Metrics, ref: Reference, had: npt.NDArray[np.bool_]) -> float:
    """Median share of their coarsest-level energy that the blocks `had` kept."""
    assert ref.detail is not None and ref.floors is not None
    if not bool(had.any()):
        return 1.0
    coarse = excess(m.detail, m.floors)[LEVELS - 1][had]
    coarse_base = excess(ref.detail, ref.floors)[LEVELS - 1][had]
    return float(np.median(coarse / np.maximum(coarse_base, 1e-6)))


def _lost_structure(
    m: Metrics, ref: Reference, th: Thresholds, intact: bool, kept_view: bool
) -> Judgement | None:
    """Covered or defocused: the structure the baseline had, gone or out of focus.

    A cover hides the view and adds no shapes of its own; a defocus keeps the view
    (every edge of the thumbnail in place) and its coarsest shapes, and takes the fine
    detail and, in a bare scene, the faint structure with it.
    """
    assert ref.detail is not None and ref.floors is not None
    had = structured_blocks(ref.detail, ref.floors)
    has = structured_blocks(m.detail, m.floors)
    n_had = int(had.sum())
    covered_look = m.structure < th.covered_structure or (
        m.structure < th.covered_structure_flat and m.flat_fraction >= th.covered_flat_most
    )
    if n_had < th.moved_min_windows:
        if covered_look and not intact:
            return Judgement(
                Verdict.COVERED,
                f"畫面被遮蔽（僅 {m.structure * 100:.0f}% 的畫面有景物輪廓）",
            )
        return None
    rb = block_ratios(ref.detail, ref.floors, m.floors)
    rc = block_ratios(m.detail, m.floors, ref.floors)
    with np.errstate(invalid="ignore"):
        soft = had & has & (rb > 0) & ~(rc >= th.soft_share * rb)
    gone = had & ~has
    n_gone = int(gone.sum())
    n_lost = int((gone | soft).sum())
    lost = n_lost / n_had
    coarse_kept = _coarse_kept(m, ref, had)
    no_new = int((has & ~had).sum()) <= th.covered_new * max(1, n_gone)
    covered = Judgement(
        Verdict.COVERED, f"畫面大部分被遮蔽（{lost * 100:.0f}% 的景物輪廓消失或失焦）"
    )
    blurred = Judgement(
        Verdict.BLURRED,
        f"畫面模糊（{lost * 100:.0f}% 的景物失焦，"
        f"清晰度 {_n(m.sharpness)}，基準 {_n(ref.sharpness)}）",
    )
    if not intact and no_new:
        if covered_look:
            return Judgement(
                Verdict.COVERED,
                f"畫面被遮蔽（僅 {m.structure * 100:.0f}% 的畫面有景物輪廓）",
            )
        gone_most = n_gone >= 0.5 * n_lost
        if lost >= th.covered_most and coarse_kept <= th.covered_coarse and (
            gone_most or not kept_view
        ):
            return covered
        if lost >= th.covered_lost and (gone_most or not kept_view):
            return covered
    if kept_view and lost >= th.covered_lost:
        return blurred
    return None


def _judge_against(m: Metrics, ref: Reference, th: Thresholds) -> Judgement:
    assert ref.detail is not None and ref.floors is not None
    view = compare_views(m.thumb, ref.thumb, ref.spread) if ref.thumb is not None else None
    edges = (
        edge_correlation(m.thumb, ref.thumb, ref.spread) if ref.thumb is not None else None
    )
    matching = None
    if view is not None:
        anchors = view.textured & view.stable
        if int(anchors.sum()) >= th.moved_min_windows:
            matching = float((view.unchanged & anchors).sum()) / int(anchors.sum())
    intact = (edges is not None and edges >= th.view_intact) or (
        matching is not None and matching >= th.view_intact_windows
    )
    kept_view = intact or (
        edges is None
        or edges >= th.view_kept
        or (matching is not None and matching >= th.view_kept)
    )
    lost_structure = _lost_structure(m, ref, th, intact, kept_view)
    if lost_structure is not None:
        return dataclasses.replace(lost_structure, matching=matching)
    # Moved: the view displaced, or its stable background gone.
    if ref.thumb is not None and not intact:
        here = edge_alignment(m.thumb, ref.thumb)
        best, dx, dy = here
        in_place = _zncc(_edges(m.thumb), _edges(ref.thumb))
        if (
            max(abs(dx), abs(dy)) >= th.moved_shift
            and best >= th.moved_aligned
            and best - in_place >= th.moved_gain
            and (matching is None or matching < th.moved_shift_matching)
        ):
            return Judgement(
                Verdict.MOVED,
                f"視角偏移（畫面移動約 {abs(dx) / THUMB_W * 100:.0f}% 寬、"
                f"{abs(dy) / THUMB_H * 100:.0f}% 高）",
                matching=matching,
            )
    view_gone = (
        edges is not None
        and edges < th.moved_edges
        and (matching is None or matching < th.moved_matching)
    ) or (
        matching is not None
        and matching < th.moved_windows_gone
        and (edges is None or edges < th.moved_edges_some)
    )
    if view_gone:
        if (
            ref.spectral is not None
            and m.spectral is not None
            and m.spectral < th.covered_softer * ref.spectral
            and _coarse_kept(m, ref, structured_blocks(ref.detail, ref.floors))
            <= th.covered_shapes
        ):
            return Judgement(
                Verdict.COVERED,
                "畫面被遮蔽（原有景物不見，眼前物體失焦，可能有物體貼近鏡頭）",
                matching=matching,
            )
        return Judgement(
            Verdict.MOVED,
            f"視角改變（基準畫面僅 {max(0.0, matching or edges or 0.0) * 100:.0f}% 吻合）",
            matching=matching,
        )
    # Blurred: the part of the view that did not change lost its fine detail.
    where = view.unchanged if view is not None else np.ones((GRID_H, GRID_W), np.bool_)
    kept = None
    judged = False
    if float(where.mean()) >= th.blur_min_unchanged:
        levels = detail_kept(m.detail, m.floors, ref.detail, ref.floors, where)
        # the coarsest level is the yardstick of the others (see detail_kept)
        usable = [k for k, _ in levels[:-1] if k is not None]
        if len(usable) >= 2:
            judged = True
            # the finest level, or the next one when the finest kept more than it (JPEG
            # blocking and ringing at the finest scale, which no lens blurs away)
            i = 1 if len(usable) >= 3 and usable[0] > usable[1] else 0
            fine, nxt = usable[i], usable[i + 1]
            kept = fine
            # a defocus takes the finest detail first: the loss must steepen towards the
            # fine end (a flat loss is a change of light or of what is in view)
            steep = fine < th.blur_gone or nxt >= th.blur_steep * fine
            if fine < th.blur_fine and nxt < th.blur_next and steep:
                return Judgement(
                    Verdict.BLURRED,
                    f"畫面模糊（細節僅剩基準的 {fine * 100:.0f}%，"
                    f"清晰度 {_n(m.sharpness)}，基準 {_n(ref.sharpness)}）",
                    kept=kept,
                    matching=matching,
                )
    if not judged:
        blur = judge_blur_one_look(m, th)
        if blur is not None:
            return dataclasses.replace(blur, matching=matching)
    return Judgement(
        Verdict.CLEAR,
        f"畫面清晰（清晰度 {_n(m.sharpness)}）",
        kept=kept,
        matching=matching,
    )


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
