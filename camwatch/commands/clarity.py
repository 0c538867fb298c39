"""`camwatch clarity`: score image or video files offline, the way the service scores a
camera's picture. What an installer uses to check a lens after mounting or servicing it.

Frames are decoded and scored in memory; nothing is written.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from typing import Any

    import numpy.typing as npt

    from camwatch.picture_eval import StretchResult, SyntheticResult

    Image = npt.NDArray[Any]

HELP = """Score image or video files for picture clarity (視訊畫面是否清晰).

\b
Each image, and each sampled video frame, gets a verdict:
  clear        畫面清晰
  blurred      模糊 (out of focus, dirty or fogged lens)
  covered      遮蔽 (something over the lens, or a uniform / all-black picture)
  dark         過暗      overexposed  過亮
  no-signal    無視訊訊號 (the recorder's generated "no video" screen)
  frozen       凍結 (the same picture for half a second or more, bit for bit)
  moved        視角改變 (the view no longer matches the reference view)

\b
The numbers:
  sharpness    variance of the Laplacian (清晰度), the usual headline
               figure. It depends on the scene and rises with sensor noise,
               so the verdicts do not use it: they compare the detail of
               each part of the picture at five scales with the same parts
               of the camera's baseline (noise fades at the coarse scales,
               a defocused lens shows at all of them), looking only at the
               parts of the view that did not change (people, cars, a door
               near the lens do not count). See docs/picture.md.
  brightness   mean grey level, 0 (black) to 255 (white).
  baseline     the baseline sharpness, for reference.

\b
A video is sampled --rate times per second; its first second forms the
baseline (unless --reference is given). Images are judged one by one: with
--reference FILE (a photo of the same view taken when the lens was known to
be clean and focused) against that reference, otherwise on their own, where
only strong evidence (fine detail almost gone where there are shapes) counts
as blurred.

\b
LABELS (--labels FILE.csv) evaluates the judge on labelled footage: a CSV
  file,start_s,end_s,expect,reference,note
with one stretch per line (# lines are comments): `file` relative to the
CSV, `start_s`,`end_s` the stretch (empty for a still), `expect` `ok` (no
fault verdict allowed), verdicts joined by | (every sample must carry one;
the first 0.5 s may still read clear) or `skip`, `reference` a still beside
the CSV, @SECONDS (a frame of the same clip) or empty (the first second).
It prints, per stretch, the false alarms in ok stretches and the caught
samples in fault stretches with the delay of the first one from the onset;
--synthetic adds known faults applied in memory to the ok stretches.

Exit status: 0 when every frame is clear (with --labels: no false alarm and
every fault stretch caught in 95 % of its samples), 1 otherwise.
"""

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


def _image_rows(path: Path, ref_bgr: Image | None) -> list[Row]:
    from camwatch.picture_eval import judge_still
    from probes.scoring import FrameError

    try:
        x = judge_still(path.read_bytes(), ref_bgr)
    except FrameError as exc:
        return [Row(str(path), 0, 0.0, None, None, "unknown", exc.zh_reason)]
    except OSError as exc:
        return [Row(str(path), 0, 0.0, None, None, "unknown", f"無法讀取檔案（{exc.strerror}）")]
    return [Row(str(path), 0, 0.0, x.sharpness, x.brightness, x.verdict, x.reason, x.baseline)]


def _video_rows(path: Path, rate: float, ref_bgr: Image | None) -> list[Row]:
    from camwatch.picture_eval import judge_frames, video_frames
    from probes.scoring import FrameError

    try:
        samples = judge_frames(video_frames(path, rate), rate, ref_bgr)
    except FrameError:
        raise click.ClickException(f"{path}: cannot open as a video (not a video file?)") from None
    rows = [Row(str(path), x.frame, x.t, x.sharpness, x.brightness, x.verdict, x.reason,
                x.baseline) for x in samples]
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


def _print_evaluation(results: list[StretchResult], synthetic: list[SyntheticResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    from camwatch.picture_eval import totals

    console = Console(width=None if sys.stdout.isatty() else 160)
    table = Table(title="clarity --labels: labelled stretches")
    for col in ("file", "stretch s", "expect", "samples", "false alarms", "caught",
                "first after s", "verdicts"):
        table.add_column(col, justify="left" if col in ("file", "expect", "verdicts")
                         else "right", overflow="fold")
    for r in results:
        s = r.stretch
        span = "still" if s.still else f"{s.start_s:g}-{s.end_s:g}"
        shown = Path(s.file).name if Path(s.file).is_absolute() else s.file
        if r.error is not None:
            table.add_row(shown, span, "|".join(s.expect), "-", "-", "-", "-",
                          f"[bold red]{r.error}[/]")
            continue
        share = r.caught_share
        caught = "-" if s.ok else (f"{r.caught}/{r.samples} ({(share or 0) * 100:.0f}%)"
                                   if r.samples else "(ends in 0.5 s)")
        fa = f"{r.false_alarms}" if s.ok else "-"
        style = "green" if _passes(r) else "bold red"
        delay = "-" if r.first_delay_s is None else f"{r.first_delay_s:.2f}"
        verdicts = ", ".join(f"{k} {v}" for k, v in sorted(r.verdicts.items()))
        table.add_row(shown, span, "|".join(s.expect), str(r.samples),
                      f"[{style}]{fa}[/]", f"[{style}]{caught}[/]", delay, verdicts)
    console.print(table)
    t = totals(results)
    share = t.caught_share
    console.print(
        f"ok samples {t.ok_samples}, false alarms {t.false_alarms}; fault samples "
        f"{t.fault_samples}, caught {t.caught}"
        + (f" ({share * 100:.1f}%)" if share is not None else "")
        + (f", first caught at most {t.worst_first_delay_s:.2f} s after onset"
           if t.worst_first_delay_s is not None else "")
        + (f"; {t.missed_onsets} fault stretch(es) never caught" if t.missed_onsets else "")
        + (f"; {t.errors} error(s)" if t.errors else ""))
    if not synthetic:
        return
    table = Table(title="clarity --labels --synthetic: faults applied to the ok stretches")
    for col in ("fault", "sources", "false alarms before", "caught after", "worst first s"):
        table.add_column(col, justify="left" if col == "fault" else "right")
    for name, group in _by_fault(synthetic).items():
        n_before = sum(x.before for x in group)
        n_fa = sum(x.false_alarms for x in group)
        n_after = sum(x.after for x in group)
        n_caught = sum(x.caught for x in group)
        delays = [x.first_delay_s for x in group if x.first_delay_s is not None]
        missed = sum(1 for x in group if x.first_delay_s is None)
        worst = f"{max(delays):.2f}" if delays else "-"
        if missed:
            worst += f" ({missed} never)"
        table.add_row(name, str(len(group)), f"{n_fa}/{n_before}",
                      f"{n_caught}/{n_after} ({n_caught / max(1, n_after) * 100:.0f}%)", worst)
    console.print(table)


def _by_fault(synthetic: list[SyntheticResult]) -> dict[str, list[SyntheticResult]]:
    out: dict[str, list[SyntheticResult]] = {}
    for x in synthetic:
        if x.after:
            out.setdefault(x.fault, []).append(x)
    return out


# A fault stretch passes when this share of its samples carry an expected verdict (the
# labels' own rule).
PASS_SHARE = 0.95


def evaluate_labels(labels: Path, rate: float, as_json: bool, synthetic: bool) -> int:
    """`--labels`: judge every labelled file and score the stretches. Exit status 0 when
    no ok stretch has a false alarm and every fault stretch is caught in 95 % of its
    samples, 1 otherwise."""
    from rich.console import Console

    from camwatch.picture_eval import LabelError, evaluate, synthetic_faults, totals

    err = Console(stderr=True)

    def progress(what: str) -> None:
        if err.is_terminal:
            err.print(f"[dim]judging {what}[/]")

    try:
        results = evaluate(labels, rate, progress=progress)
        syn = synthetic_faults(labels, rate, progress=progress) if synthetic else []
    except LabelError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        doc: dict[str, object] = {
            "labels": str(labels),
            "rate": rate,
            "stretches": [r.to_json() for r in results],
            "totals": totals(results).to_json(),
        }
        if synthetic:
            doc["synthetic"] = [x.to_json() for x in syn]
        click.echo(json.dumps(doc, ensure_ascii=False))
    else:
        _print_evaluation(results, syn)
    return 0 if all(_passes(r) for r in results) else 1


def _passes(r: StretchResult) -> bool:
    """No false alarm in an ok stretch; in a fault stretch 95 % of the samples caught
    (one shorter than the grace period: caught at all)."""
    if r.error is not None:
        return False
    if r.stretch.ok:
        return r.false_alarms == 0
    if r.samples == 0:
        return r.first_delay_s is not None
    return (r.caught_share or 0.0) >= PASS_SHARE


@click.command(help=HELP)
@click.argument(
    "files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--reference",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Image of the correct view, sharp (基準畫面): sets the baseline and reference view.",
)
@click.option(
    "--labels",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Evaluate against a labels CSV (file,start_s,end_s,expect,reference,note; "
    "see LABELS below) instead of judging FILES.",
)
@click.option("--synthetic", is_flag=True,
              help="With --labels: also apply known faults (defocus, covers, dark, a "
              "turned view, frozen) in memory to the ok stretches and count detection.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--rate",
    type=click.FloatRange(min=0.1, max=60.0),
    default=5.0,
    show_default=True,
    help="Video frames sampled per second.",
)
def command(files: tuple[Path, ...], reference: Path | None, labels: Path | None,
            synthetic: bool, as_json: bool, rate: float) -> None:
    import cv2
    import numpy as np

    from camwatch.picture_eval import is_video
    from probes.scoring import FrameError, image_info

    if labels is not None:
        if files or reference is not None:
            raise click.UsageError("--labels judges the files the labels name; give no "
                                   "FILES and no --reference with it")
        sys.exit(evaluate_labels(labels, rate, as_json, synthetic))
    if synthetic:
        raise click.UsageError("--synthetic needs --labels FILE.csv")
    if not files:
        raise click.UsageError("give image or video FILES, or --labels FILE.csv")
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
        if is_video(path):
            rows.extend(_video_rows(path, rate, ref_bgr))
        else:
            rows.extend(_image_rows(path, ref_bgr))
    if as_json:
        click.echo(json.dumps([r.to_json() for r in rows], ensure_ascii=False))
    else:
        _print_table(rows)
    sys.exit(0 if all(r.verdict == "clear" for r in rows) else 1)
