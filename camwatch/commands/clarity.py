"""`camwatch clarity`: score image or video files offline, the way the service scores a
camera's picture. What an installer uses to check a lens after mounting or servicing it.

Frames are decoded and scored in memory; nothing is written.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from typing import Any

    import numpy.typing as npt

    from probes.baseline import CameraBaseline

    Image = npt.NDArray[Any]

HELP = """Score image or video files for picture clarity (視訊畫面是否清晰).

\b
Each image, and each sampled video frame, gets a verdict:
  clear        畫面清晰
  blurred      模糊 (out of focus, dirty or fogged lens)
  covered      遮蔽 (lens covered, or the picture is uniform / all black)
  dark         過暗      overexposed  過亮
  frozen       凍結 (the same picture as the previous sample, bit for bit)
  moved        視角改變 (the view no longer matches the reference view)

\b
The numbers:
  sharpness    variance of the Laplacian (清晰度): the energy of fine detail.
               It depends on the scene: a sharp, texture-poor corridor can
               score under 20 and a busy defocused scene over 100, so it is
               compared with the SAME camera's baseline, never with a fixed
               threshold. Blurred means far below the baseline (under 1/5)
               with fine detail low relative to contrast too, or the detailed
               parts of the picture keeping under 30 % of their detail (so an
               on-screen clock, always sharp, cannot hide a defocused lens).
               Frames of 720p and more are measured at 1/2 size (4K at 1/4):
               compare a camera's figures only with its own.
  brightness   mean grey level, 0 (black) to 255 (white).
  baseline     the baseline sharpness the frame was compared with.

\b
A video is sampled --rate times per second; its first second forms the
baseline (unless --reference is given). Images are judged one by one: with
--reference FILE (a photo of the same view taken when the lens was known to
be clean and focused) against that reference, otherwise on their own, where
only strong evidence (almost no fine detail at all) counts as blurred.

Exit status: 0 when every frame is clear, 1 otherwise.
"""

VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".ts", ".m4v", ".webm", ".mpg", ".mpeg"}
MAX_FILE_PIXELS = 8192 * 8192


@dataclass
class Row:
    source: str
    frame: int
    time_s: float
    sharpness: float | None
    brightness: float | None
    verdict: str
    reason: str
    baseline: float | None = None

    def to_json(self) -> dict[str, object]:
        def r(x: float | None, nd: int) -> float | None:
            return None if x is None else round(x, nd)

        return {
            "source": self.source,
            "frame": self.frame,
            "time_s": round(self.time_s, 3),
            "sharpness": r(self.sharpness, 2),
            "brightness": r(self.brightness, 1),
            "verdict": self.verdict,
        }


def _reference_baseline(ref_bgr: Image, size: tuple[int, int]) -> CameraBaseline:
    """A baseline learned from one reference image, resized to the source's frame size."""
    import cv2

    from probes.baseline import CameraBaseline, learn_reference
    from probes.scoring import frame_from_bgr, score

    image = ref_bgr
    h, w = image.shape[:2]
    if (w, h) != size:
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    base = CameraBaseline(learn_samples=1)
    learn_reference(score(frame_from_bgr(image)), base, all_modes=True)
    return base


def _is_video(path: Path) -> bool:
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return True
    with path.open("rb") as fh:
        head = fh.read(16)
    return head[4:8] == b"ftyp" or head[:4] == b"\x1a\x45\xdf\xa3"


def _image_rows(path: Path, ref_bgr: Image | None) -> list[Row]:
    from probes.baseline import CameraBaseline, assess
    from probes.scoring import FrameError, score_bytes

    try:
        data = path.read_bytes()
        m = score_bytes(data, MAX_FILE_PIXELS, allow_other=True)
    except FrameError as exc:
        return [Row(str(path), 0, 0.0, None, None, "unknown", exc.zh_reason)]
    except OSError as exc:
        return [Row(str(path), 0, 0.0, None, None, "unknown", f"無法讀取檔案（{exc.strerror}）")]
    base = (
        _reference_baseline(ref_bgr, (m.width * m.scale, m.height * m.scale))
        if ref_bgr is not None
        else CameraBaseline()
    )
    a = assess(m, base)
    return [
        Row(
            str(path),
            0,
            0.0,
            m.sharpness,
            m.brightness,
            a.verdict.value,
            a.reason_zh,
            a.baseline_sharpness,
        )
    ]


def _video_frames(path: Path, rate: float) -> Iterator[tuple[int, float, Image]]:
    import cv2

    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise click.ClickException(f"{path}: cannot open as a video (not a video file?)")
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


def _video_rows(path: Path, rate: float, ref_bgr: Image | None) -> list[Row]:
    from probes.baseline import CameraBaseline, assess
    from probes.scoring import frame_from_bgr, score

    rows: list[Row] = []
    base: CameraBaseline | None = None
    for index, t, frame in _video_frames(path, rate):
        m = score(frame_from_bgr(frame))
        if base is None:
            if ref_bgr is not None:
                base = _reference_baseline(ref_bgr, (m.width * m.scale, m.height * m.scale))
            else:
                base = CameraBaseline(learn_samples=max(1, round(rate)))
        a = assess(m, base)
        reason = a.reason_zh
        if a.learning is not None:
            reason += f"；基準學習中（{a.learning[0] + 1}/{a.learning[1]}）"
        rows.append(
            Row(
                str(path),
                index,
                t,
                m.sharpness,
                m.brightness,
                a.verdict.value,
                reason,
                a.baseline_sharpness,
            )
        )
    if not rows:
        rows.append(Row(str(path), 0, 0.0, None, None, "unknown", "影片沒有可讀取的畫面"))
    return rows


def _print_table(rows: list[Row]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="clarity (視訊畫面是否清晰)")
    for col in (
        "source",
        "frame",
        "time s",
        "sharpness",
        "baseline",
        "brightness",
        "verdict",
        "reason",
    ):
        table.add_column(
            col, justify="right" if col not in ("source", "verdict", "reason") else "left"
        )
    for r in rows:
        style = "green" if r.verdict == "clear" else "bold red"
        table.add_row(
            Path(r.source).name,
            str(r.frame),
            f"{r.time_s:.1f}",
            "-" if r.sharpness is None else f"{r.sharpness:.1f}",
            "-" if r.baseline is None else f"{r.baseline:.1f}",
            "-" if r.brightness is None else f"{r.brightness:.0f}",
            f"[{style}]{r.verdict}[/]",
            r.reason,
        )
    # Piped output keeps whole reasons rather than wrapping them into an 80-column box.
    Console(width=None if sys.stdout.isatty() else 160).print(table)


@click.command(help=HELP)
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--reference",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Image of the correct view, sharp (基準畫面): sets the baseline and reference view.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows instead of a table.")
@click.option(
    "--rate",
    type=click.FloatRange(min=0.1, max=60.0),
    default=5.0,
    show_default=True,
    help="Video frames sampled per second.",
)
def command(files: tuple[Path, ...], reference: Path | None, as_json: bool, rate: float) -> None:
    import cv2
    import numpy as np

    from probes.scoring import FrameError, image_info

    ref_bgr = None
    if reference is not None:
        data = reference.read_bytes()
        try:
            info = image_info(data)
        except FrameError as exc:
            raise click.ClickException(f"{reference}: {exc.zh_reason}") from None
        if info.width * info.height > MAX_FILE_PIXELS:
            raise click.ClickException(f"{reference}: image too large")
        ref_bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if ref_bgr is None:
            raise click.ClickException(f"{reference}: not an image OpenCV can read")

    rows: list[Row] = []
    for path in files:
        if _is_video(path):
            rows.extend(_video_rows(path, rate, ref_bgr))
        else:
            rows.extend(_image_rows(path, ref_bgr))
    if as_json:
        click.echo(json.dumps([r.to_json() for r in rows], ensure_ascii=False))
    else:
        _print_table(rows)
    sys.exit(0 if all(r.verdict == "clear" for r in rows) else 1)
