"""How well the picture check judges real footage: labelled stretches and synthetic faults.

`camwatch clarity --labels FILE.csv` reads a labels file (the format of the shared
footage's labels.csv, described in its header):

    file,start_s,end_s,expect,reference,note

- `file`: a clip or still, relative to the labels file;
- `start_s`, `end_s`: the stretch of a clip (empty for a still);
- `expect`: `ok` (no fault verdict allowed), `a|b|c` (every sample must carry one of
  these fault verdicts; the first 0.5 s after `start_s` may still read clear), or `skip`;
- `reference`: the known-good view: a still beside the labels file, `@SECONDS` for a
  frame of the same clip, or empty (the clip's first second is learned);
- lines starting with `#` are comments.

Each file is judged once, the way the service judges a camera (probes.baseline.assess,
samples `rate` per second), and every stretch is scored: false alarms in `ok` stretches,
caught samples and the delay of the first in fault stretches.

`synthetic_faults` applies known faults in memory to the frames of `ok` stretches (a
defocused lens, Gaussian blur, covers, darkness, a turned or shifted view, a frozen
picture) to measure detection on real content, which the labelled faults alone are too
few to show. Frames exist only in memory here: decoded, changed, scored, dropped.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from probes.baseline import CameraBaseline, assess, learn_reference
from probes.scoring import FrameError, Verdict, frame_from_bgr, score, score_bytes

Image = npt.NDArray[Any]

FAULT_VERDICTS = {v.value for v in Verdict if v != Verdict.CLEAR}
# A clip is frozen once the same picture lasts this long: a live stream repeats a frame
# for a tenth of a second at most (the labelled restaurant stream: 9.6 distinct frames a
# second), and an on-screen clock changes every second.
VIDEO_FROZEN_S = 0.5
GRACE_S = 0.5  # the labels allow the first half second of a fault to still read clear
MAX_FILE_PIXELS = 8192 * 8192
VIDEO_SUFFIXES = {".gif", ".mp4", ".mkv", ".avi", ".mov", ".ts", ".m4v", ".webm", ".mpg", ".mpeg"}


class LabelError(ValueError):
    """A labels file that cannot be read: names the file, line and field."""


@dataclass(frozen=True)
class Stretch:
    file: str
    start_s: float | None
    end_s: float | None
    expect: tuple[str, ...]  # ("ok",), ("skip",) or fault verdicts
    reference: str
    note: str
    line: int

    @property
    def ok(self) -> bool:
        return self.expect == ("ok",)

    @property
    def skip(self) -> bool:
        return self.expect == ("skip",)

    @property
    def still(self) -> bool:
        return self.start_s is None

    def covers(self, t: float) -> bool:
        if self.start_s is None or self.end_s is None:
            return True
        return self.start_s - 1e-6 <= t <= self.end_s + 1e-6


def read_labels(path: Path) -> list[Stretch]:
    """Parse a labels file; a bad line raises LabelError naming the line and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LabelError(f"{path}: cannot read ({exc.strerror})") from None
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if not ln.startswith("#")]
    lines = [(i, ln) for i, ln in lines if ln.strip()]
    if not lines:
        raise LabelError(f"{path}: no header line (expected file,start_s,end_s,expect,...)")
    header_no = lines[0][0]
    reader = csv.DictReader(io.StringIO("\n".join(ln for _, ln in lines)))
    need = {"file", "start_s", "end_s", "expect"}
    missing = need - set(reader.fieldnames or [])
    if missing:
        raise LabelError(
            f"{path}:{header_no}: header lacks {', '.join(sorted(missing))} "
            "(expected file,start_s,end_s,expect,reference,note)"
        )
    out: list[Stretch] = []
    for (line_no, _), row in zip(lines[1:], reader, strict=False):
        def field_error(name: str, why: str, line: int = line_no) -> LabelError:
            return LabelError(f"{path}:{line}: field {name!r}: {why}")

        name = (row.get("file") or "").strip()
        if not name:
            raise field_error("file", "empty")
        times: list[float | None] = []
        for key in ("start_s", "end_s"):
            raw = (row.get(key) or "").strip()
            if not raw:
                times.append(None)
                continue
            try:
                value = float(raw)
            except ValueError:
                raise field_error(key, f"{raw!r} is not a number of seconds") from None
            if not math.isfinite(value) or value < 0:
                raise field_error(key, f"{raw!r} is not a time in the clip")
            times.append(value)
        start, end = times
        if (start is None) != (end is None):
            raise field_error("end_s" if end is None else "start_s",
                              "give both start_s and end_s (or neither, for a still)")
        if start is not None and end is not None and end < start:
            raise field_error("end_s", f"{end} is before start_s {start}")
        expect_raw = (row.get("expect") or "").strip()
        expect = tuple(p.strip() for p in expect_raw.split("|") if p.strip())
        if expect not in (("ok",), ("skip",)):
            unknown = [e for e in expect if e not in FAULT_VERDICTS]
            if not expect or unknown:
                raise field_error(
                    "expect",
                    f"{expect_raw!r}: use ok, skip, or verdicts joined by | "
                    f"({', '.join(sorted(FAULT_VERDICTS))})",
                )
        reference = (row.get("reference") or "").strip()
        if reference.startswith("@"):
            try:
                float(reference[1:])
            except ValueError:
                raise field_error("reference", f"{reference!r}: expected @SECONDS") from None
        out.append(Stretch(name, start, end, expect, reference, (row.get("note") or "").strip(),
                           line_no))
    return out


# --- judging a file ------------------------------------------------------------------------


@dataclass
class Sample:
    t: float
    verdict: str
    reason: str
    learning: bool
    sharpness: float | None = None
    brightness: float | None = None
    baseline: float | None = None
    frame: int = 0


def is_video(path: Path) -> bool:
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return True
    with path.open("rb") as fh:
        head = fh.read(16)
    return head[4:8] == b"ftyp" or head[:4] == b"\x1a\x45\xdf\xa3"


def video_frames(path: Path, rate: float) -> Iterator[tuple[int, float, Image]]:
    """(frame index, time, BGR frame) sampled `rate` times per second, in memory."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise FrameError("not-video", f"{path}: 無法以影片開啟")
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
        if not fps or not math.isfinite(fps) or fps <= 0:
            fps = 25.0
        step = 1.0 / rate
        index, next_t = 0, 0.0
        while True:
            t = index / fps
            if t + 1e-6 >= next_t:
                ok, frame = cap.read()
                if not ok:
                    return
                yield index, t, frame
                while next_t <= t + 1e-6:
                    next_t += step
            elif not cap.grab():
                return
            index += 1
    finally:
        cap.release()


def frame_at(path: Path, seconds: float) -> Image:
    """The frame of a clip at `seconds`, in memory."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        cap.set(cv2.CAP_PROP_POS_MSEC, seconds * 1000.0)
        ok, frame = cap.read()
    finally:
        cap.release()
    if not ok or frame is None:
        raise FrameError("no-frame", f"{path}: 沒有 {seconds:g} 秒的畫面")
    return frame  # type: ignore[no-any-return]


def read_image(path: Path) -> Image:
    data = path.read_bytes()
    frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise FrameError("undecodable", f"{path}: 影像無法解碼")
    if frame.shape[0] * frame.shape[1] > MAX_FILE_PIXELS:
        raise FrameError("too-large", f"{path}: 影像尺寸過大")
    return frame  # type: ignore[no-any-return]


def reference_baseline(ref_bgr: Image, size: tuple[int, int], learn_samples: int,
                       label: str | None = None) -> CameraBaseline:
    """A baseline seeded from one known-good view, resized to the source's frame size."""
    image = ref_bgr
    h, w = image.shape[:2]
    if (w, h) != size:
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    base = CameraBaseline(learn_samples=learn_samples)
    learn_reference(score(frame_from_bgr(image)), base, all_modes=True, label=label)
    return base


def judge_frames(
    frames: Iterable[tuple[int, float, Image]], rate: float, ref_bgr: Image | None = None
) -> list[Sample]:
    """Judge sampled video frames the way the service judges a camera: the first second
    is learned (or `ref_bgr` is the baseline), the rest judged against it."""
    out: list[Sample] = []
    base: CameraBaseline | None = None
    for index, t, frame in frames:
        m = score(frame_from_bgr(frame))
        if base is None:
            learn = max(1, round(rate))
            if ref_bgr is not None:
                base = reference_baseline(ref_bgr, (m.width * m.scale, m.height * m.scale), learn)
            else:
                base = CameraBaseline(learn_samples=learn)
        a = assess(m, base, at=t, frozen_gap_s=VIDEO_FROZEN_S)
        reason = a.reason_zh
        if a.learning is not None:
            reason += f"；基準學習中（{min(a.learning[0] + 1, a.learning[1])}/{a.learning[1]}）"
        out.append(Sample(t, a.verdict.value, reason, a.learning is not None, m.sharpness,
                          m.brightness, a.baseline_sharpness, index))
    return out


def judge_still(data: bytes, ref_bgr: Image | None) -> Sample:
    """One image on its own, or against a reference view."""
    m = score_bytes(data, MAX_FILE_PIXELS, allow_other=True)
    if ref_bgr is not None:
        base = reference_baseline(ref_bgr, (m.width * m.scale, m.height * m.scale), 1)
    else:
        base = CameraBaseline()
    a = assess(m, base)
    return Sample(0.0, a.verdict.value, a.reason_zh, a.learning is not None, m.sharpness,
                  m.brightness, a.baseline_sharpness)


# --- scoring stretches -----------------------------------------------------------------------


@dataclass
class StretchResult:
    stretch: Stretch
    samples: int  # samples judged in the stretch (after the grace period for faults)
    false_alarms: int = 0  # ok stretches: samples with a fault verdict
    caught: int = 0  # fault stretches: samples with one of the expected verdicts
    first_delay_s: float | None = None  # fault stretches: onset to the first caught sample
    verdicts: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def caught_share(self) -> float | None:
        return self.caught / self.samples if self.samples and not self.stretch.ok else None

    def to_json(self) -> dict[str, Any]:
        s = self.stretch
        return {
            "file": s.file,
            "start_s": s.start_s,
            "end_s": s.end_s,
            "expect": "|".join(s.expect),
            "samples": self.samples,
            "false_alarms": self.false_alarms if s.ok else None,
            "caught": None if s.ok else self.caught,
            "caught_share": None if self.caught_share is None else round(self.caught_share, 3),
            "first_delay_s": None if self.first_delay_s is None else round(self.first_delay_s, 3),
            "verdicts": dict(sorted(self.verdicts.items())),
            "error": self.error,
        }


def score_stretch(stretch: Stretch, samples: list[Sample]) -> StretchResult:
    inside = [x for x in samples if stretch.covers(x.t)]
    res = StretchResult(stretch, 0)
    for x in inside:
        res.verdicts[x.verdict] = res.verdicts.get(x.verdict, 0) + 1
    if stretch.ok:
        res.samples = len(inside)
        res.false_alarms = sum(1 for x in inside if x.verdict != Verdict.CLEAR.value)
        return res
    start = stretch.start_s or 0.0
    judged = [x for x in inside if stretch.still or x.t >= start + GRACE_S - 1e-6]
    res.samples = len(judged)
    res.caught = sum(1 for x in judged if x.verdict in stretch.expect)
    first = next((x for x in inside if x.verdict in stretch.expect), None)
    if first is not None:
        res.first_delay_s = max(0.0, first.t - start)
    return res


def _reference_for(stretches: list[Stretch]) -> str:
    return next((s.reference for s in stretches if s.reference), "")


def judge_file(folder: Path, name: str, reference: str, rate: float,
               change: Callable[[float, Image], Image] | None = None,
               until: float | None = None) -> list[Sample]:
    """Judge one labelled file (`change` alters each frame in memory: a synthetic fault;
    `until`: stop after this many seconds of a clip)."""
    path = folder / name
    if not path.is_file():
        raise FrameError("missing", f"{path}: 檔案不存在")
    ref_bgr = None
    if reference.startswith("@"):
        ref_bgr = frame_at(path, float(reference[1:]))
    elif reference:
        ref_bgr = read_image(folder / reference)
    if not is_video(path):
        image = read_image(path)
        if change is not None:
            image = change(0.0, image)
        ok, buf = cv2.imencode(".png", image)
        assert ok
        return [judge_still(buf.tobytes(), ref_bgr)]
    frames: Iterable[tuple[int, float, Image]] = video_frames(path, rate)
    if until is not None:
        frames = _until(frames, until)
    if change is not None:
        frames = ((i, t, change(t, f)) for i, t, f in frames)
    return judge_frames(frames, rate, ref_bgr)


def _until(frames: Iterable[tuple[int, float, Image]], until: float
           ) -> Iterator[tuple[int, float, Image]]:
    for item in frames:
        if item[1] > until + 1e-6:
            return
        yield item


def evaluate(labels_path: Path, rate: float = 5.0,
             progress: Callable[[str], None] | None = None,
             select: Callable[[Stretch], bool] | None = None) -> list[StretchResult]:
    """Judge every labelled file once and score each of its stretches (those `select`
    keeps, when given)."""
    stretches = [s for s in read_labels(labels_path) if select is None or select(s)]
    folder = labels_path.parent
    by_file: dict[str, list[Stretch]] = {}
    for s in stretches:
        by_file.setdefault(s.file, []).append(s)
    results: list[StretchResult] = []
    for name, group in by_file.items():
        if progress is not None:
            progress(name)
        judged = [s for s in group if not s.skip]
        if not judged:
            continue
        try:
            samples = judge_file(folder, name, _reference_for(group), rate)
        except (FrameError, OSError) as exc:
            why = exc.zh_reason if isinstance(exc, FrameError) else str(exc)
            results.extend(StretchResult(s, 0, error=why) for s in judged)
            continue
        results.extend(score_stretch(s, samples) for s in judged)
    return results


@dataclass(frozen=True)
class Totals:
    ok_samples: int
    false_alarms: int
    fault_samples: int
    caught: int
    worst_first_delay_s: float | None
    missed_onsets: int  # fault stretches never caught
    errors: int

    @property
    def caught_share(self) -> float | None:
        return self.caught / self.fault_samples if self.fault_samples else None

    def to_json(self) -> dict[str, Any]:
        share = self.caught_share
        return {
            "ok_samples": self.ok_samples,
            "false_alarms": self.false_alarms,
            "fault_samples": self.fault_samples,
            "caught": self.caught,
            "caught_share": None if share is None else round(share, 4),
            "worst_first_delay_s": self.worst_first_delay_s,
            "missed_onsets": self.missed_onsets,
            "errors": self.errors,
        }


def totals(results: list[StretchResult]) -> Totals:
    ok = [r for r in results if r.stretch.ok and r.error is None]
    faults = [r for r in results if not r.stretch.ok and r.error is None]
    delays = [r.first_delay_s for r in faults if r.first_delay_s is not None]
    return Totals(
        ok_samples=sum(r.samples for r in ok),
        false_alarms=sum(r.false_alarms for r in ok),
        fault_samples=sum(r.samples for r in faults),
        caught=sum(r.caught for r in faults),
        worst_first_delay_s=round(max(delays), 3) if delays else None,
        missed_onsets=sum(1 for r in faults if r.first_delay_s is None),
        errors=sum(1 for r in results if r.error is not None),
    )


# --- synthetic faults on real content ---------------------------------------------------------

Change = Callable[[Image], Image]


def defocus(radius_640: float) -> Change:
    """A lens out of focus: a disc (pillbox) kernel, the optics of defocus; radius in
    pixels at 640 px width."""

    def apply(img: Image) -> Image:
        r = max(0.5, radius_640 * img.shape[1] / 640.0)
        size = 2 * math.ceil(r) + 1
        yy, xx = np.mgrid[:size, :size] - size // 2
        kernel = np.clip(r + 0.5 - np.hypot(yy, xx), 0.0, 1.0).astype(np.float32)
        kernel /= kernel.sum()
        return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT)

    return apply


def gaussian(sigma_640: float) -> Change:
    """A soft lens (dirt, fog on the dome): Gaussian blur; sigma at 640 px width."""

    def apply(img: Image) -> Image:
        return cv2.GaussianBlur(img, (0, 0), max(0.3, sigma_640 * img.shape[1] / 640.0))

    return apply


def cover(fraction: float, seed: int = 0) -> Change:
    """Something close to the lens (a hand, tape, a bag): out of focus, dark, almost
    uniform, over `fraction` of the picture from one side, with sensor noise."""

    rng = np.random.default_rng(seed)  # fresh sensor noise on every frame

    def apply(img: Image) -> Image:
        h, w = img.shape[:2]
        mask = np.zeros((h, w), np.float32)
        if fraction >= 0.999:
            mask[:] = 1.0
        else:
            edge = round(w * fraction)
            mask[:, :edge] = 1.0
        soft = cv2.GaussianBlur(mask, (0, 0), max(2.0, w / 60.0))[..., None]
        tone = np.array([45, 52, 66], np.float32)  # a dark, warm cover (BGR)
        if img.ndim == 3 and float(np.abs(img[..., 0].astype(np.int16) - img[..., 2]).mean()) < 4:
            tone[:] = 52.0  # a camera in night (IR) mode sees it grey
        shade = np.linspace(0.85, 1.15, h, dtype=np.float32)[:, None, None]
        noise = rng.normal(0.0, 2.0, (h, w, 1)).astype(np.float32)
        covered = tone[None, None, :] * shade + noise
        out = img.astype(np.float32) * (1.0 - soft) + covered * soft
        result: Image = np.clip(out, 0, 255).astype(np.uint8)
        return result

    return apply


def darken(gain: float, seed: int = 0) -> Change:
    """The light is gone (IR illuminator failed, exposure stuck): the picture's gain
    collapses, with the sensor noise a camera shows in the dark."""
    rng = np.random.default_rng(seed)

    def apply(img: Image) -> Image:
        noise = rng.normal(0.0, 2.0, (*img.shape[:2], 1)).astype(np.float32)
        result: Image = np.clip(img.astype(np.float32) * gain + noise, 0, 255).astype(np.uint8)
        return result

    return apply


def turn(shift: float, angle_deg: float = 0.0) -> Change:
    """The camera turned: the view shifted by `shift` of its width (and rotated); the
    part that came into view is filled by reflection."""

    def apply(img: Image) -> Image:
        h, w = img.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle_deg, 1.0)
        m[0, 2] += shift * w
        m[1, 2] += 0.3 * shift * h
        return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)

    return apply


@dataclass(frozen=True)
class Fault:
    name: str
    expect: tuple[str, ...]
    change: Change | None  # None: frozen (the frame at onset, repeated)


SYNTHETIC_FAULTS: tuple[Fault, ...] = (
    Fault("defocus r2", ("blurred",), defocus(2.0)),
    Fault("defocus r4", ("blurred",), defocus(4.0)),
    Fault("defocus r8", ("blurred",), defocus(8.0)),
    Fault("gaussian s2", ("blurred",), gaussian(2.0)),
    Fault("gaussian s4", ("blurred",), gaussian(4.0)),
    Fault("gaussian s8", ("blurred",), gaussian(8.0)),
    Fault("cover 75%", ("covered", "blurred", "dark"), cover(0.75)),
    Fault("cover 90%", ("covered", "blurred", "dark"), cover(0.9)),
    Fault("cover 100%", ("covered", "dark"), cover(1.0)),
    Fault("dark x0.1", ("dark",), darken(0.1)),
    Fault("shift 15%", ("moved",), turn(0.15)),
    Fault("turn 30% 10deg", ("moved",), turn(0.3, 10.0)),
    Fault("frozen", ("frozen",), None),
)


@dataclass
class SyntheticResult:
    source: str
    fault: str
    before: int  # samples before the onset (must read clear)
    false_alarms: int
    after: int  # samples from the onset on
    caught: int
    first_delay_s: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "fault": self.fault,
            "before": self.before,
            "false_alarms": self.false_alarms,
            "after": self.after,
            "caught": self.caught,
            "first_delay_s": None if self.first_delay_s is None else round(self.first_delay_s, 3),
        }


def _changed(fault: Fault, onset: float) -> Callable[[float, Image], Image]:
    held: list[Image] = []

    def change(t: float, img: Image) -> Image:
        if t < onset - 1e-6:
            return img
        if fault.change is not None:
            return fault.change(img)
        if not held:
            held.append(img.copy())
        return held[0]

    return change


def synthetic_faults(labels_path: Path, rate: float = 5.0, seconds: float = 6.0,
                     faults: tuple[Fault, ...] = SYNTHETIC_FAULTS,
                     progress: Callable[[str], None] | None = None) -> list[SyntheticResult]:
    """Each fault applied, in memory, to each `ok` stretch: the stretch's first
    `seconds` (at least 3 s after its start, so the first second is learned) judged as
    is, the rest of it with the fault. Stills are judged against their reference with the
    fault applied. Counts false alarms before the onset and caught samples after it."""
    stretches = [s for s in read_labels(labels_path) if s.ok]
    folder = labels_path.parent
    refs: dict[str, str] = {}
    for s in read_labels(labels_path):
        if s.reference:
            refs.setdefault(s.file, s.reference)
    out: list[SyntheticResult] = []
    for s in stretches:
        for fault in faults:
            if progress is not None:
                progress(f"{s.file} {fault.name}")
            if s.still:
                if fault.change is None:
                    continue  # a still cannot freeze
                samples = judge_file(folder, s.file, refs.get(s.file, ""), rate,
                                     change=lambda _t, img, f=fault: f.change(img))  # type: ignore[misc]
                x = samples[0]
                out.append(SyntheticResult(s.file, fault.name, 0, 0, 1,
                                           int(x.verdict in fault.expect), 0.0))
                continue
            start = s.start_s or 0.0
            end = s.end_s if s.end_s is not None else start + seconds
            onset = min(start + max(3.0, seconds / 2), end)
            stop = min(end, onset + seconds / 2)
            change = _changed(fault, onset)
            samples = judge_file(folder, s.file, refs.get(s.file, ""), rate, change=change,
                                 until=stop)
            before = [x for x in samples if start <= x.t < onset - 1e-6]
            after = [x for x in samples if onset - 1e-6 <= x.t <= stop]
            # as in the labels, the first half second after the onset may read clear
            # (a frozen picture shows from its second sample)
            judged = [x for x in after if x.t >= onset + GRACE_S - 1e-6]
            first = next((x for x in after if x.verdict in fault.expect), None)
            out.append(SyntheticResult(
                s.file, fault.name, len(before),
                sum(1 for x in before if x.verdict != Verdict.CLEAR.value),
                len(judged), sum(1 for x in judged if x.verdict in fault.expect),
                None if first is None else first.t - onset))
    return out
