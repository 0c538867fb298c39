"""Each camera's own picture baseline, kept per mode (day / night).

A camera is judged against itself. A mode's baseline is learned from its first
`learn_samples` usable samples: the per-block median of the detail at every scale, the
median thumbnail (the reference view) and how much each part of it varied while it was
learned (a road, a doorway, swaying trees: not a stable background). A sample joins the
learning only when one look finds nothing wrong with it (`scoring.judge` without a
baseline: not covered, dark, overexposed, frozen, without signal, and not blurred on its
own evidence), so a lens blurred or covered before its baseline exists is reported, not
learned; `rejected` says why a camera is still learning.

After that the baseline follows slow changes (seasons, a repainted wall, a parked car
that stays) from the samples judged clear, with a time constant of ADAPT_TIME_S and each
step clipped, so a fault never teaches it that it is normal and a car parked for an
hour moves it by little.

An installer may give a known-good view instead (`reference_image:` in the inventory,
`camwatch baseline set`, `camwatch clarity --reference`): `learn_reference` makes it the
baseline of its mode at once. Only its figures and thumbnail are kept, never the picture.

`reset()` forgets everything, e.g. after a lens was cleaned, refocused or re-aimed.
A change of resolution (another stream, a new camera) resets the learned modes too.

`to_dict()` / `from_dict()` give plain JSON-able data for DeviceMemory.baselines (small
integers: detail on a log scale, so a camera's baseline is a few kilobytes); a stored
dict that does not parse (an older format, a hand edit) starts a fresh baseline.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from probes.scoring import (
    BLOCKS,
    LEVELS,
    THUMB_H,
    THUMB_W,
    Judgement,
    Metrics,
    Mode,
    Reference,
    Verdict,
    judge,
    thumb_windows,
)

LEARN_SAMPLES = 6  # 30 minutes at the default 5-minute picture interval
# Slow adaptation: a clear sample moves the baseline by 1 - exp(-dt / ADAPT_TIME_S) of
# the way (0.7 % for samples 5 minutes apart), each figure by at most ADAPT_CLIP of its
# scale per step, so a car parked for an hour shifts it by about 1 %.
ADAPT_TIME_S = 12 * 3600.0
# One sample stands for at most this much time: after a camera was away for a day its
# first picture moves the baseline by 8 %, not by 90 %.
ADAPT_MAX_GAP_S = 3600.0
ADAPT_CLIP = 0.25
# Video samples without a clock (`at` None): the step of one sample.
ADAPT_PER_SAMPLE = 0.002
FORMAT = 2
# Detail energies are kept on a log2 scale with this many steps per octave (9 % apart):
# small integers, precise enough for ratios judged at 0.3.
LOG_STEPS = 8
# Mode changes need the colourfulness to cross these (hysteresis): a grey-ish daytime
# scene hovering at the night threshold must not flip between its two baselines.
NIGHT_BELOW = 1.0
DAY_ABOVE = 3.0

_NOT_LEARNABLE = {
    Verdict.COVERED,
    Verdict.DARK,
    Verdict.OVEREXPOSED,
    Verdict.FROZEN,
    Verdict.NO_SIGNAL,
    Verdict.BLURRED,
}
REJECTED_ZH = {
    Verdict.BLURRED: "畫面疑似模糊",
    Verdict.COVERED: "畫面疑似被遮蔽",
    Verdict.DARK: "畫面過暗",
    Verdict.OVEREXPOSED: "畫面過亮",
    Verdict.FROZEN: "畫面凍結",
    Verdict.NO_SIGNAL: "無視訊訊號",
}


def encode_detail(detail: Any) -> list[list[int]]:
    """Block energies (LEVELS x 144) as small integers on a log scale, level by level."""
    d = np.asarray(detail, np.float64).reshape(LEVELS, BLOCKS)
    q = np.rint(LOG_STEPS * np.log2(1.0 + np.maximum(d, 0.0))).astype(int)
    return [[int(v) for v in row] for row in q]


def decode_detail(rows: Any) -> tuple[float, ...]:
    q = np.asarray(rows, np.float64).reshape(-1)
    return tuple(float(v) for v in np.exp2(q / LOG_STEPS) - 1.0)


def _median(xs: list[float]) -> float:
    return float(np.median(xs)) if xs else 0.0


def pack_ints(values: Any) -> str | list[int]:
    """A list of small non-negative integers as base64 of bytes ("b:") or of 16-bit
    words ("w:"), whichever holds them, as a camera's baseline keeps them between
    checks. 10,000 cameras hold their baselines in the probe memory of the process
    probing them (and in the parent's copy, with --workers): a camera with one learned
    mode took 16 kB there as Python lists and takes 6 kB so; its JSON in the store,
    6.8 kB before, is 2.8 kB. Values outside 0..65535 stay a list."""
    a = np.asarray(values, np.int64).reshape(-1)
    if a.size and (int(a.min()) < 0 or int(a.max()) > 0xFFFF):
        return [int(v) for v in a]
    if not a.size or int(a.max()) <= 0xFF:  # detail and thumbnails: bytes
        return "b:" + base64.b64encode(a.astype(np.uint8).tobytes()).decode("ascii")
    return "w:" + base64.b64encode(a.astype("<u2").tobytes()).decode("ascii")


def unpack_ints(value: Any) -> list[int]:
    """pack_ints() read back; a list (baselines stored before, or values that did not
    fit) is taken as it is. Raises ValueError for anything else."""
    if isinstance(value, str):
        kind, _, text = value.partition(":")
        if kind not in ("b", "w"):
            raise ValueError("packed integers")
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("packed integers") from exc
        if kind == "b":
            return list(raw)
        if len(raw) % 2:
            raise ValueError("packed integers")
        return [int(v) for v in np.frombuffer(raw, "<u2")]
    if isinstance(value, list):
        return [int(v) for v in value]
    raise ValueError("integers")


def _rows(flat: list[int], width: int) -> list[list[int]]:
    if len(flat) % width:
        raise ValueError("rows")
    return [flat[i : i + width] for i in range(0, len(flat), width)]


def _unpack_detail(value: Any) -> list[list[int]]:
    if isinstance(value, list) and value and isinstance(value[0], list):
        return [[int(v) for v in row] for row in value]  # stored before packing
    return _rows(unpack_ints(value), BLOCKS)


def _sample_with(x: Any, detail: Any, thumb: Any) -> dict[str, Any]:
    """A learning sample with its detail ("d") and thumbnail ("t") converted."""
    out = dict(x)
    if "d" in out:
        out["d"] = detail(out["d"])
    if "t" in out:
        out["t"] = thumb(out["t"])
    return out


def _pack_sample(x: dict[str, Any]) -> dict[str, Any]:
    return _sample_with(x, pack_ints, pack_ints)


def _unpack_sample(x: Any) -> dict[str, Any]:
    return _sample_with(x, _unpack_detail, unpack_ints)


def _round_stochastic(x: np.ndarray[Any, Any], seed: int) -> list[int]:
    """Unbiased rounding to integers: tiny adaptation steps still add up over time."""
    rng = np.random.default_rng(seed)
    return [int(v) for v in np.floor(x + rng.random(x.shape))]


@dataclass
class ModeBaseline:
    n: int = 0
    # while learning: the samples so far (figures and thumbnails)
    samples: list[dict[str, Any]] = field(default_factory=list)
    rejected: str | None = None  # the verdict of the last sample not learned
    # once learned
    sharpness: float | None = None
    sharpness_mad: float = 0.0
    contrast: float = 0.0
    flat_fraction: float = 0.0
    hf_ratio: float = 0.0
    structure: float = 1.0
    spectral: float | None = None
    detail: list[list[int]] | None = None  # LEVELS x 144, log scale (encode_detail)
    floors: list[float] | None = None
    thumb: list[int] | None = None
    spread: list[int] | None = None  # per 16x9 window: variation while learned
    source: str = "learned"  # or "reference"
    label: str | None = None  # the reference's name (a file name)
    adapted_at: float | None = None

    @property
    def learned(self) -> bool:
        return self.sharpness is not None

    def reference(self) -> Reference | None:
        if self.sharpness is None:
            return None
        spread = None
        if self.spread is not None and len(self.spread) == BLOCKS:
            spread = _spread_pixels(self.spread)
        return Reference(
            sharpness=self.sharpness,
            sharpness_mad=self.sharpness_mad,
            contrast=self.contrast,
            flat_fraction=self.flat_fraction,
            thumb=tuple(float(v) for v in self.thumb) if self.thumb is not None else None,
            detail=decode_detail(self.detail) if self.detail is not None else None,
            floors=tuple(self.floors) if self.floors is not None else None,
            spread=spread,
            structure=self.structure,
            hf_ratio=self.hf_ratio,
            spectral=self.spectral,
        )

    def learn(self, m: Metrics, needed: int) -> None:
        self.samples.append(_sample(m))
        self.n = len(self.samples)
        self.rejected = None
        if self.n >= needed:
            self._settle()

    def _settle(self) -> None:
        s = [float(x["s"]) for x in self.samples]
        med = _median(s)
        self.sharpness = med
        self.sharpness_mad = _median([abs(v - med) for v in s])
        self.contrast = _median([float(x["c"]) for x in self.samples])
        self.flat_fraction = _median([float(x["l"]) for x in self.samples])
        self.hf_ratio = _median([float(x.get("h", 0.0)) for x in self.samples])
        self.structure = _median([float(x.get("u", 1.0)) for x in self.samples])
        spectral = [float(x["r"]) for x in self.samples if x.get("r") is not None]
        self.spectral = round(_median(spectral), 4) if spectral else None
        details = np.asarray([x["d"] for x in self.samples], np.float64)
        self.detail = [[int(v) for v in row] for row in np.rint(np.median(details, axis=0))]
        self.floors = [
            round(float(v), 3) for v in np.median([x["f"] for x in self.samples], axis=0)
        ]
        thumbs = np.asarray([x["t"] for x in self.samples], np.float64)
        median = np.median(thumbs, axis=0)
        self.thumb = [int(v) for v in np.rint(median)]
        mad = np.median(np.abs(thumbs - median), axis=0)
        self.spread = [int(v) for v in np.rint(thumb_windows(mad).mean(axis=-1)).reshape(-1)]
        self.samples = []

    def adapt(self, m: Metrics, rate: float, seed: int) -> None:
        """Follow a clear sample by `rate` of the way, each figure clipped."""
        if self.sharpness is None or self.detail is None or self.thumb is None:
            return
        dev = abs(m.sharpness - self.sharpness)
        self.sharpness += rate * (m.sharpness - self.sharpness)
        self.sharpness_mad += rate * (dev - self.sharpness_mad)
        self.contrast += rate * (m.contrast - self.contrast)
        self.flat_fraction += rate * (m.flat_fraction - self.flat_fraction)
        self.hf_ratio += rate * (m.hf_ratio - self.hf_ratio)
        self.structure += rate * (m.structure - self.structure)
        if self.spectral is not None and m.spectral is not None:
            self.spectral += rate * (m.spectral - self.spectral)
        old = np.asarray(self.detail, np.float64)
        new = np.asarray(encode_detail(m.detail), np.float64)
        step = np.clip(new - old, -ADAPT_CLIP * 4 * LOG_STEPS, ADAPT_CLIP * 4 * LOG_STEPS)
        moved = old + rate * step
        self.detail = [
            _round_stochastic(row, seed + i) for i, row in enumerate(moved)
        ]
        t_old = np.asarray(self.thumb, np.float64)
        t_step = np.clip(np.asarray(m.thumb, np.float64) - t_old, -64 * ADAPT_CLIP, 64 * ADAPT_CLIP)
        self.thumb = _round_stochastic(t_old + rate * t_step, seed + LEVELS)
        if self.floors is not None and len(m.floors) == len(self.floors):
            self.floors = [
                round(math.exp(math.log(o + 1e-3) + rate * float(np.clip(
                    math.log(f + 1e-3) - math.log(o + 1e-3), -1.0, 1.0))) - 1e-3, 3)
                for o, f in zip(self.floors, m.floors, strict=True)
            ]
        self.n += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "samples": [_pack_sample(x) for x in self.samples],
            "rejected": self.rejected,
            "sharpness": self.sharpness,
            "sharpness_mad": self.sharpness_mad,
            "contrast": self.contrast,
            "flat_fraction": self.flat_fraction,
            "hf_ratio": self.hf_ratio,
            "structure": self.structure,
            "spectral": self.spectral,
            "detail": None if self.detail is None else pack_ints(self.detail),
            "floors": self.floors,
            "thumb": None if self.thumb is None else pack_ints(self.thumb),
            "spread": None if self.spread is None else pack_ints(self.spread),
            "source": self.source,
            "label": self.label,
            "adapted_at": self.adapted_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModeBaseline:
        sharp = d.get("sharpness")
        samples = d.get("samples") or []
        if not isinstance(samples, list):
            raise ValueError("samples")
        detail = None if d.get("detail") is None else _unpack_detail(d["detail"])
        if detail is not None and (
            len(detail) != LEVELS or any(len(row) != BLOCKS for row in detail)
        ):
            raise ValueError("detail")
        thumb = None if d.get("thumb") is None else unpack_ints(d["thumb"])
        if thumb is not None and len(thumb) != THUMB_W * THUMB_H:
            raise ValueError("thumb")
        spread = None if d.get("spread") is None else unpack_ints(d["spread"])
        floors = d.get("floors")
        return cls(
            n=int(d.get("n", 0)),
            samples=[_unpack_sample(x) for x in samples],
            rejected=d.get("rejected"),
            sharpness=None if sharp is None else float(sharp),
            sharpness_mad=float(d.get("sharpness_mad", 0.0)),
            contrast=float(d.get("contrast", 0.0)),
            flat_fraction=float(d.get("flat_fraction", 0.0)),
            hf_ratio=float(d.get("hf_ratio", 0.0)),
            structure=float(d.get("structure", 1.0)),
            spectral=None if d.get("spectral") is None else float(d["spectral"]),
            detail=detail,
            floors=None if floors is None else [float(v) for v in floors],
            thumb=thumb,
            spread=spread,
            source=str(d.get("source", "learned")),
            label=d.get("label"),
            adapted_at=None if d.get("adapted_at") is None else float(d["adapted_at"]),
        )


def _sample(m: Metrics) -> dict[str, Any]:
    return {
        "s": round(m.sharpness, 2),
        "c": round(m.contrast, 2),
        "l": round(m.flat_fraction, 4),
        "h": round(m.hf_ratio, 4),
        "u": round(m.structure, 4),
        "r": None if m.spectral is None else round(m.spectral, 4),
        "d": encode_detail(m.detail),
        "f": [round(float(v), 3) for v in m.floors],
        "t": list(m.thumb),
    }


def _spread_pixels(windows: list[int]) -> tuple[float, ...]:
    """Per-window variation back onto thumbnail pixels (each block's 2x2 pixels), so
    that compare_views' window average gives back about the window's figure."""
    grid = np.asarray(windows, np.float64).reshape(THUMB_H // 2, THUMB_W // 2)
    return tuple(float(v) for v in np.kron(grid, np.ones((2, 2))).reshape(-1))


@dataclass
class CameraBaseline:
    learn_samples: int = LEARN_SAMPLES
    size: tuple[int, int] | None = None  # analysis frame width, height
    scale: int = 1  # the frames' reduction to the analysis size (frame = size x scale)
    modes: dict[Mode, ModeBaseline] = field(
        default_factory=lambda: {Mode.DAY: ModeBaseline(), Mode.NIGHT: ModeBaseline()}
    )
    last_digest: str | None = None
    last_at: float | None = None  # unix seconds of the last sample
    last_mode: Mode | None = None
    same_since: float | None = None  # when the last sample's picture first appeared
    reference_key: str | None = None  # the inventory reference photo applied (path|mtime|size)

    def reset(self) -> None:
        """Forget what was learned (after a lens is serviced or re-aimed)."""
        self.size = None
        self.modes = {Mode.DAY: ModeBaseline(), Mode.NIGHT: ModeBaseline()}
        self.last_digest = None
        self.last_at = None
        self.last_mode = None
        self.same_since = None
        self.reference_key = None

    def mode(self, mode: Mode) -> ModeBaseline:
        return self.modes.setdefault(mode, ModeBaseline())

    def settle_mode(self, m: Metrics) -> Metrics:
        """The frame's mode, with hysteresis around the night threshold."""
        if (
            self.last_mode is not None
            and NIGHT_BELOW <= m.colourfulness <= DAY_ABOVE
            and m.mode != self.last_mode
        ):
            return dataclasses.replace(m, mode=self.last_mode)
        return m

    def reference_for(self, m: Metrics) -> Reference | None:
        """The reference for this frame's mode, or None while learning (or when the
        frame's size differs from the one learned)."""
        if self.size is not None and self.size != (m.width, m.height):
            return None
        return self.mode(m.mode).reference()

    def progress(self, mode: Mode) -> tuple[int, int]:
        mb = self.mode(mode)
        return (self.learn_samples if mb.learned else mb.n), self.learn_samples

    def observe(self, m: Metrics, judgement: Judgement, at: float | None = None) -> None:
        """Update after a sample was judged: learn, adapt slowly while clear, or keep."""
        if self.size is not None and self.size != (m.width, m.height):
            self.reset()
        self.size = (m.width, m.height)
        self.scale = m.scale
        repeat = m.digest == self.last_digest
        previous_at = self.last_at
        if not repeat:
            self.same_since = at
        self.last_digest = m.digest
        self.last_at = at
        self.last_mode = m.mode
        if repeat:
            return  # the same picture again (a snapshot cache, or frozen): nothing new
        mb = self.mode(m.mode)
        if not mb.learned:
            if judgement.verdict in _NOT_LEARNABLE:
                mb.rejected = judgement.verdict.value
            else:
                mb.learn(m, self.learn_samples)
                mb.adapted_at = at
        elif judgement.verdict == Verdict.CLEAR:
            since = mb.adapted_at if mb.adapted_at is not None else previous_at
            if at is not None and since is not None:
                gap = min(max(0.0, at - since), ADAPT_MAX_GAP_S)
                rate = 1.0 - math.exp(-gap / ADAPT_TIME_S)
            else:
                rate = ADAPT_PER_SAMPLE
            mb.adapt(m, rate, seed=int(m.digest[:8], 16) if m.digest else 0)
            mb.adapted_at = at

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "learn_samples": self.learn_samples,
            "size": list(self.size) if self.size is not None else None,
            "scale": self.scale,
            "modes": {k.value: v.to_dict() for k, v in self.modes.items()},
            "last_digest": self.last_digest,
            "last_at": self.last_at,
            "last_mode": self.last_mode.value if self.last_mode is not None else None,
            "same_since": self.same_since,
            "reference_key": self.reference_key,
        }

    @classmethod
    def from_dict(
        cls, d: dict[str, Any] | None, learn_samples: int = LEARN_SAMPLES
    ) -> CameraBaseline:
        """Parse stored data; anything unreadable gives a fresh baseline."""
        if not d or d.get("format") != FORMAT:
            return cls(learn_samples=learn_samples)
        try:
            size = d.get("size")
            last_mode = d.get("last_mode")
            return cls(
                learn_samples=int(d.get("learn_samples", learn_samples)),
                size=(int(size[0]), int(size[1])) if size else None,
                scale=int(d.get("scale", 1)),
                modes={Mode(k): ModeBaseline.from_dict(v) for k, v in d["modes"].items()},
                last_digest=d.get("last_digest"),
                last_at=None if d.get("last_at") is None else float(d["last_at"]),
                last_mode=None if last_mode is None else Mode(last_mode),
                same_since=None if d.get("same_since") is None else float(d["same_since"]),
                reference_key=d.get("reference_key"),
            )
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            return cls(learn_samples=learn_samples)

    def references(self) -> dict[str, str]:
        """Modes whose baseline is an installer's reference view: {mode: label}."""
        return {
            k.value: v.label or "reference"
            for k, v in self.modes.items()
            if v.learned and v.source == "reference"
        }


def reset_baseline(baselines: MutableMapping[str, dict[str, Any]], device_id: str) -> bool:
    """Forget a camera's picture baseline (DeviceMemory.baselines); True if one existed."""
    return baselines.pop(device_id, None) is not None


@dataclass(frozen=True)
class Assessment:
    verdict: Verdict
    reason_zh: str
    learning: tuple[int, int] | None  # (n, N) while this mode's baseline is being learned
    baseline_sharpness: float | None
    similarity: float | None
    mode: Mode = Mode.DAY
    rejected: str | None = None  # while learning: why the last sample was not learned
    reference: str | None = None  # the baseline is an installer's reference (its label)
    kept: float | None = None
    matching: float | None = None


# Snapshots taken closer together than this may legitimately be the same picture
# (cameras and recorders cache their snapshot for about a second).
FROZEN_MIN_GAP_S = 2.0


def assess(m: Metrics, base: CameraBaseline, at: float | None = None,
           frozen_gap_s: float = FROZEN_MIN_GAP_S) -> Assessment:
    """Judge one sample (taken at unix time `at`; None: sequential video samples)
    against the camera's baseline for its mode, then update the baseline. Two samples
    closer than `frozen_gap_s` may be the same cached snapshot: a picture is frozen once
    it has lasted that long."""
    m = base.settle_mode(m)
    ref = base.reference_for(m)
    last = base.last_digest
    since = base.same_since if base.same_since is not None else base.last_at
    if at is not None and since is not None and at - since < frozen_gap_s:
        last = None
    j = judge(m, ref, last)
    learning = base.progress(m.mode) if ref is None else None
    base.observe(m, j, at)
    mb = base.mode(m.mode)
    return Assessment(
        verdict=j.verdict,
        reason_zh=j.reason_zh,
        learning=learning,
        baseline_sharpness=ref.sharpness if ref is not None else None,
        similarity=j.similarity,
        mode=m.mode,
        rejected=mb.rejected if not mb.learned else None,
        reference=(mb.label or "reference") if ref is not None and mb.source == "reference"
        else None,
        kept=j.kept,
        matching=j.matching,
    )


def learn_reference(
    m: Metrics, base: CameraBaseline, all_modes: bool = False, label: str | None = None
) -> Judgement:
    """Make a known-good frame (an installer's photo of the view) the baseline of its
    mode, or of day and night alike with `all_modes`. Returns what one look says of the
    frame: a reference that is itself blurred, covered or dark is refused (not learned)."""
    j = judge(m, None)
    if j.verdict in _NOT_LEARNABLE:
        return j
    if base.size is not None and base.size != (m.width, m.height):
        base.reset()
    base.size = (m.width, m.height)
    base.scale = m.scale
    for mode in Mode if all_modes else (m.mode,):
        mb = ModeBaseline(source="reference", label=label)
        mb.learn(dataclasses.replace(m, mode=mode), 1)
        mb.source, mb.label = "reference", label
        base.modes[mode] = mb
    return j
