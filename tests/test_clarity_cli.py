"""`camwatch clarity` on real footage: sharp stays clear; real blur, covers and darkness
are reported from the moment they start (test clips made with the system ffmpeg)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from camwatch.commands.clarity import command

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
VIDEO = FIXTURES / "video"
IMAGES = FIXTURES / "images"
VIDEOS = sorted(VIDEO.glob("*.mp4")) if VIDEO.is_dir() else []
needs_video = pytest.mark.skipif(not VIDEOS, reason="../shared/fixtures/video/*.mp4 not present")
needs_images = pytest.mark.skipif(not IMAGES.is_dir(), reason="../shared/fixtures/images absent")
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")

RATE = 5.0
FAULT_AT = 3.0


def run(*args: str) -> tuple[int, list[dict[str, object]]]:
    result = CliRunner().invoke(command, [*args, "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def make_clip(src: Path, dst: Path, vf: str, seconds: float = 6.0) -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(src), "-t", str(seconds), "-vf", vf,
         "-an", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "20", str(dst)],
        check=True,
        timeout=60,
    )  # fmt: skip
    return dst


@needs_video
def test_real_sharp_footage_is_never_blurred() -> None:
    code, rows = run(*map(str, VIDEOS))
    assert rows, "no frames sampled"
    assert {r["source"] for r in rows} == {str(v) for v in VIDEOS}
    verdicts = [r["verdict"] for r in rows]
    assert "blurred" not in verdicts
    assert set(verdicts) == {"clear"}
    assert code == 0
    for r in rows:
        assert set(r) == {"source", "frame", "time_s", "sharpness", "brightness", "verdict"}
    # sampled at 5 per second
    one = [r for r in rows if r["source"] == str(VIDEOS[0])]
    assert one[5]["time_s"] == pytest.approx(1.0, abs=0.1)


def assert_from_fault_on(rows: list[dict[str, object]], verdict: str) -> None:
    """Before the fault: never `verdict`; from the fault on: `verdict`, allowing one
    sample of latency."""
    latency = 1.0 / RATE + 1e-6
    before = [r for r in rows if float(r["time_s"]) < FAULT_AT]  # type: ignore[arg-type]
    after = [r for r in rows if float(r["time_s"]) >= FAULT_AT + latency]  # type: ignore[arg-type]
    assert before and after
    assert all(r["verdict"] == "clear" for r in before), [r["verdict"] for r in before]
    assert all(r["verdict"] == verdict for r in after), [(r["time_s"], r["verdict"]) for r in after]


@needs_video
@needs_ffmpeg
@pytest.mark.parametrize("video", VIDEOS, ids=[v.stem for v in VIDEOS])
def test_gblur_from_three_seconds_is_blurred_from_then_on(video: Path, tmp_path: Path) -> None:
    clip = make_clip(video, tmp_path / "blur.mp4", f"gblur=sigma=8:enable='gte(t,{FAULT_AT})'")
    code, rows = run(str(clip))
    assert_from_fault_on(rows, "blurred")
    assert code == 1


@needs_video
@needs_ffmpeg
def test_mild_gblur_is_blurred_too(tmp_path: Path) -> None:
    clip = make_clip(VIDEOS[0], tmp_path / "blur2.mp4", f"gblur=sigma=3:enable='gte(t,{FAULT_AT})'")
    _, rows = run(str(clip))
    assert_from_fault_on(rows, "blurred")


@needs_video
@needs_ffmpeg
def test_lens_covered_black_is_covered(tmp_path: Path) -> None:
    vf = f"drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='gte(t,{FAULT_AT})'"
    clip = make_clip(VIDEOS[0], tmp_path / "covered.mp4", vf, 5.0)
    code, rows = run(str(clip))
    assert_from_fault_on(rows, "covered")
    assert code == 1


@needs_video
@needs_ffmpeg
def test_most_of_lens_covered_by_a_hand_is_covered(tmp_path: Path) -> None:
    vf = f"drawbox=x=0:y=0:w=iw:h=ih*0.92:color=0x3a2c26:t=fill:enable='gte(t,{FAULT_AT})'"
    clip = make_clip(VIDEOS[0], tmp_path / "hand.mp4", vf, 5.0)
    _, rows = run(str(clip))
    assert_from_fault_on(rows, "covered")


@needs_video
@needs_ffmpeg
def test_picture_turning_dark_is_dark(tmp_path: Path) -> None:
    vf = f"eq=brightness=-0.5:enable='gte(t,{FAULT_AT})'"
    clip = make_clip(VIDEOS[0], tmp_path / "dark.mp4", vf, 5.0)
    code, rows = run(str(clip))
    assert_from_fault_on(rows, "dark")
    assert code == 1


@needs_images
def test_single_images_are_judged_without_baseline() -> None:
    sharp = [IMAGES / n for n in ("astronaut.png", "camera.png", "coffee.png", "rocket.jpg")]
    code, rows = run(*map(str, sharp))
    assert [r["verdict"] for r in rows] == ["clear"] * len(sharp)
    assert all(r["frame"] == 0 and r["sharpness"] > 100 for r in rows)  # type: ignore[operator]
    assert code == 0


@needs_images
def test_truncated_image_is_unknown_and_fails() -> None:
    code, rows = run(str(IMAGES / "truncated.jpg"))
    assert rows[0]["verdict"] == "unknown"
    assert rows[0]["sharpness"] is None
    assert code == 1


@needs_images
def test_reference_view_catches_a_turned_camera(tmp_path: Path) -> None:
    img = cv2.imread(str(IMAGES / "coffee.png"), cv2.IMREAD_COLOR)
    rng = np.random.default_rng(7)
    again = np.clip(img.astype(np.float32) + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)
    h, w = img.shape[:2]
    turned = cv2.resize(np.roll(img, w // 3, axis=1)[: h * 3 // 4], (w, h))
    cv2.imwrite(str(tmp_path / "again.png"), again)
    cv2.imwrite(str(tmp_path / "turned.png"), turned)
    cv2.imwrite(str(tmp_path / "soft.png"), cv2.GaussianBlur(img, (0, 0), 2))
    code, rows = run(
        str(tmp_path / "again.png"),
        str(tmp_path / "turned.png"),
        str(tmp_path / "soft.png"),
        "--reference",
        str(IMAGES / "coffee.png"),
    )
    assert [r["verdict"] for r in rows] == ["clear", "moved", "blurred"]
    assert code == 1


@needs_images
def test_table_output_and_help_explain_the_numbers() -> None:
    runner = CliRunner()
    result = runner.invoke(command, [str(IMAGES / "camera.png")])
    assert result.exit_code == 0
    assert "camera.png" in result.stdout and "clear" in result.stdout
    help_text = runner.invoke(command, ["--help"]).stdout
    for word in ("sharpness", "Laplacian", "baseline", "brightness", "--rate", "--reference"):
        assert word in help_text


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(command, [str(tmp_path / "nope.jpg")])
    assert result.exit_code == 2
