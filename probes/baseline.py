"""Each camera's own picture baseline, learned automatically, kept per mode (day / night).

A camera is judged against itself: the first `learn_samples` usable samples of a mode
(not covered, dark, overexposed or frozen) give the median and MAD of the sharpness,
the median contrast-normalised high frequency, contrast and flat share, and the
per-pixel median thumbnail (the reference view). After that the baseline follows slow
changes (seasons, a repainted wall) by an exponential average with weight `adapt_rate`,
only from samples judged clear, so a fault never teaches the baseline that it is normal.

`reset()` forgets everything, e.g. after a lens was cleaned, refocused or re-aimed.
A change of resolution (another stream, a new camera) resets it too.

`to_dict()` / `from_dict()` give plain JSON-able data for DeviceMemory.baselines; a stored
dict that does not parse (an older format, a hand edit) starts a fresh baseline.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass, field
from typing import Any

from probes.scoring import Judgement, Metrics, Mode, Reference, Verdict, judge

LEARN_SAMPLES = 6  # 30 minutes at the default 5-minute picture interval
ADAPT_RATE = 0.05
FORMAT = 1

_NOT_LEARNABLE = {Verdict.COVERED, Verdict.DARK, Verdict.OVEREXPOSED, Verdict.FROZEN}


def _median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else 0.0


def _median_vector(vectors: list[Any]) -> list[float] | None:
    """Element-wise median of equal-length vectors (None if there are none)."""
    vs = [v for v in vectors if isinstance(v, list) and v]
    if not vs or any(len(v) != len(vs[0]) for v in vs):
        return None
    return [round(_median([float(v[i]) for v in vs]), 2) for i in range(len(vs[0]))]


def _follow(
    old: list[float] | None, new: tuple[float, ...] | tuple[int, ...], rate: float
) -> list[float] | None:
    if old is None or len(old) != len(new):
        return old
    return [round(o + rate * (float(v) - o), 2) for o, v in zip(old, new, strict=True)]


@dataclass
class ModeBaseline:
    n: int = 0
    # while learning: the samples so far (figures and thumbnails)
    samples: list[dict[str, Any]] = field(default_factory=list)
    # once learned
    sharpness: float | None = None
    sharpness_mad: float = 0.0
    hf_ratio: float = 0.0
    contrast: float = 0.0
    flat_fraction: float = 0.0
    thumb: list[float] | None = None
    blocks: list[float] | None = None

    @property
    def learned(self) -> bool:
        return self.sharpness is not None

    def reference(self) -> Reference | None:
        if self.sharpness is None:
            return None
        return Reference(
            sharpness=self.sharpness,
            sharpness_mad=self.sharpness_mad,
            hf_ratio=self.hf_ratio,
            contrast=self.contrast,
            flat_fraction=self.flat_fraction,
            thumb=tuple(round(v) for v in self.thumb) if self.thumb is not None else None,
            blocks=tuple(self.blocks) if self.blocks is not None else None,
        )

    def learn(self, m: Metrics, needed: int) -> None:
        self.samples.append(
            {
                "s": m.sharpness,
                "h": m.hf_ratio,
                "c": m.contrast,
                "f": m.flat_fraction,
                "t": list(m.thumb),
                "b": list(m.blocks),
            }
        )
        self.n = len(self.samples)
        if self.n >= needed:
            self._settle()

    def _settle(self) -> None:
        s = [float(x["s"]) for x in self.samples]
        med = _median(s)
        self.sharpness = med
        self.sharpness_mad = _median([abs(v - med) for v in s])
        self.hf_ratio = _median([float(x["h"]) for x in self.samples])
        self.contrast = _median([float(x["c"]) for x in self.samples])
        self.flat_fraction = _median([float(x["f"]) for x in self.samples])
        self.thumb = _median_vector([x.get("t") for x in self.samples])
        self.blocks = _median_vector([x.get("b") for x in self.samples])
        self.samples = []

    def adapt(self, m: Metrics, rate: float) -> None:
        if self.sharpness is None:
            return
        dev = abs(m.sharpness - self.sharpness)
        self.sharpness += rate * (m.sharpness - self.sharpness)
        self.sharpness_mad += rate * (dev - self.sharpness_mad)
        self.hf_ratio += rate * (m.hf_ratio - self.hf_ratio)
        self.contrast += rate * (m.contrast - self.contrast)
        self.flat_fraction += rate * (m.flat_fraction - self.flat_fraction)
        self.thumb = _follow(self.thumb, m.thumb, rate)
        self.blocks = _follow(self.blocks, m.blocks, rate)
        self.n += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "samples": self.samples,
            "sharpness": self.sharpness,
            "sharpness_mad": self.sharpness_mad,
            "hf_ratio": self.hf_ratio,
            "contrast": self.contrast,
            "flat_fraction": self.flat_fraction,
            "thumb": self.thumb,
            "blocks": self.blocks,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModeBaseline:
        sharp = d.get("sharpness")
        thumb = d.get("thumb")
        blocks = d.get("blocks")
        samples = d.get("samples") or []
        if not isinstance(samples, list):
            raise ValueError("samples")
        return cls(
            n=int(d.get("n", 0)),
            samples=[dict(x) for x in samples],
            sharpness=None if sharp is None else float(sharp),
            sharpness_mad=float(d.get("sharpness_mad", 0.0)),
            hf_ratio=float(d.get("hf_ratio", 0.0)),
            contrast=float(d.get("contrast", 0.0)),
            flat_fraction=float(d.get("flat_fraction", 0.0)),
            thumb=None if thumb is None else [float(v) for v in thumb],
            blocks=None if blocks is None else [float(v) for v in blocks],
        )


@dataclass
class CameraBaseline:
    learn_samples: int = LEARN_SAMPLES
    adapt_rate: float = ADAPT_RATE
    size: tuple[int, int] | None = None  # analysis frame width, height
    modes: dict[Mode, ModeBaseline] = field(
        default_factory=lambda: {Mode.DAY: ModeBaseline(), Mode.NIGHT: ModeBaseline()}
    )
    last_digest: str | None = None
    last_at: float | None = None  # unix seconds of the last sample

    def reset(self) -> None:
        """Forget what was learned (after a lens is serviced or re-aimed)."""
        self.size = None
        self.modes = {Mode.DAY: ModeBaseline(), Mode.NIGHT: ModeBaseline()}
        self.last_digest = None
        self.last_at = None

    def mode(self, mode: Mode) -> ModeBaseline:
        return self.modes.setdefault(mode, ModeBaseline())

    def reference_for(self, m: Metrics) -> Reference | None:
        """The learned reference for this frame's mode, or None while learning (or when
        the frame's size differs from the one learned)."""
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
        repeat = m.digest == self.last_digest
        self.last_digest = m.digest
        self.last_at = at
        if repeat:
            return  # the same picture again (a snapshot cache, or frozen): nothing new
        mb = self.mode(m.mode)
        if not mb.learned:
            if judgement.verdict not in _NOT_LEARNABLE:
                mb.learn(m, self.learn_samples)
        elif judgement.verdict == Verdict.CLEAR:
            mb.adapt(m, self.adapt_rate)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "learn_samples": self.learn_samples,
            "adapt_rate": self.adapt_rate,
            "size": list(self.size) if self.size is not None else None,
            "modes": {k.value: v.to_dict() for k, v in self.modes.items()},
            "last_digest": self.last_digest,
            "last_at": self.last_at,
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
            return cls(
                learn_samples=int(d.get("learn_samples", learn_samples)),
                adapt_rate=float(d.get("adapt_rate", ADAPT_RATE)),
                size=(int(size[0]), int(size[1])) if size else None,
                modes={Mode(k): ModeBaseline.from_dict(v) for k, v in d["modes"].items()},
                last_digest=d.get("last_digest"),
                last_at=None if d.get("last_at") is None else float(d["last_at"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            return cls(learn_samples=learn_samples)


def reset_baseline(baselines: dict[str, dict[str, Any]], device_id: str) -> bool:
    """Forget a camera's picture baseline (DeviceMemory.baselines); True if one existed."""
    return baselines.pop(device_id, None) is not None


@dataclass(frozen=True)
class Assessment:
    verdict: Verdict
    reason_zh: str
    learning: tuple[int, int] | None  # (n, N) while this mode's baseline is being learned
    baseline_sharpness: float | None
    similarity: float | None


# Snapshots taken closer together than this may legitimately be the same picture
# (cameras and recorders cache their snapshot for about a second).
FROZEN_MIN_GAP_S = 2.0


def assess(m: Metrics, base: CameraBaseline, at: float | None = None) -> Assessment:
    """Judge one sample (taken at unix time `at`; None: sequential video samples)
    against the camera's baseline for its mode, then update the baseline."""
    ref = base.reference_for(m)
    last = base.last_digest
    if at is not None and base.last_at is not None and at - base.last_at < FROZEN_MIN_GAP_S:
        last = None
    j = judge(m, ref, last)
    learning = base.progress(m.mode) if ref is None else None
    base.observe(m, j, at)
    return Assessment(
        verdict=j.verdict,
        reason_zh=j.reason_zh,
        learning=learning,
        baseline_sharpness=ref.sharpness if ref is not None else None,
        similarity=j.similarity,
    )


def learn_reference(m: Metrics, base: CameraBaseline, all_modes: bool = False) -> None:
    """Seed a baseline from a known-good frame (a reference photo of the view); with
    `all_modes`, for day and night alike (an installer's one reference photo)."""
    j = judge(m, None)
    base.observe(m, j)
    if all_modes and j.verdict not in _NOT_LEARNABLE:
        for mode in Mode:
            mb = base.mode(mode)
            if not mb.learned:
                mb.learn(dataclasses.replace(m, mode=mode), base.learn_samples)
