"""The picture check (視訊畫面是否清晰): one frame, scored in memory, judged against the
camera's own baseline for the current mode (day / night).

Flow: fetch a frame (probes.drivers.frames) → decode and score off the event loop
(probes.scoring) → judge against the baseline kept in `ctx.memory.baselines[camera]`
(probes.baseline, plain JSON-able data) → one CheckResult with the figures and, for a
fault, a Finding whose zh-TW reason names the lens position.

While a mode's baseline is being learned the result is `ok` with 基準學習中 (n/N),
unless what one look shows applies (covered, dark, overexposed, no signal, frozen, or a
lens plainly out of focus): those fail from the first sample, and such a sample is not
learned (the reason says so while learning goes on). A camera with a `reference_image:`
in the inventory is judged against that known-good view at once (its figures and
thumbnail are kept, never the photo). A frame that cannot be had or decoded gives
`unknown` with the reason. Never raises (check_probe); the frame is fetched within the
run's deadline (the scheduler's).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from probes.baseline import REJECTED_ZH, CameraBaseline, assess, learn_reference
from probes.context import ProbeRun, SecretError, check_probe, resolve_login, target_of
from probes.drivers.base import DeviceLink
from probes.drivers.frames import Grab, grab_frame
from probes.reasons import DeviceError
from probes.result import CheckKind, CheckResult, Finding, FindingCode, Status
from probes.scoring import FrameError, Metrics, Verdict, frame_from_bgr, score, score_bytes
from probes.values import PictureValues

T = TypeVar("T")

# Frames are decoded and scored in threads of their own, this many per process: OpenCV
# and numpy let go of the interpreter while they work, so two overlap one frame's
# decoding with another's scoring, and more only queue for the same cores. Each thread
# keeps its work arrays for the frame size (probes.scoring's scratch, ~2.6 MB at
# 1080p): asyncio's default executor (cores + 4 threads) held ~16 MB of them per process.
SCORING_THREADS = 2


@functools.cache
def _scorers() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(SCORING_THREADS, thread_name_prefix="camwatch-score")


async def _in_scorer(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_scorers(), fn, *args)


FINDINGS: dict[Verdict, FindingCode] = {
    Verdict.BLURRED: FindingCode.PICTURE_BLURRED,
    Verdict.COVERED: FindingCode.PICTURE_COVERED,
    Verdict.DARK: FindingCode.PICTURE_DARK,
    Verdict.OVEREXPOSED: FindingCode.PICTURE_OVEREXPOSED,
    Verdict.FROZEN: FindingCode.PICTURE_FROZEN,
    Verdict.MOVED: FindingCode.CAMERA_MOVED,
    Verdict.NO_SIGNAL: FindingCode.SIGNAL_LOSS,
}
MODE_ZH = {"day": "日間", "night": "夜間"}


def _score(grab: Grab, max_pixels: int) -> Metrics:
    if grab.jpeg is not None:
        return score_bytes(grab.jpeg, max_pixels)
    h, w = grab.image.shape[:2]
    if w * h > max_pixels:
        raise FrameError("too-large", f"影像尺寸過大（{w}x{h}）")
    return score(frame_from_bgr(grab.image))


def _rounded(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None


def reference_key(path: str) -> str | None:
    """Identity of a reference photo as it is now (None when it cannot be read)."""
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return f"{path}|{st.st_mtime_ns}|{st.st_size}"


def apply_reference_image(base: CameraBaseline, path: str, frame_size: tuple[int, int],
                          analysis_size: tuple[int, int], max_pixels: int) -> str | None:
    """Make the inventory's reference photo the baseline of its mode, scored at the
    camera's own frame size; the photo is read, scored and dropped (once per version of
    the file). Returns why it could not be used (zh-TW), or None. Runs in a thread."""
    import cv2
    import numpy as np

    key = reference_key(path)
    if key is None:
        return "參考畫面檔案無法讀取"
    if base.reference_key == key and base.size == analysis_size:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError:
        return "參考畫面檔案無法讀取"
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return "參考畫面不是可讀取的影像"
    if image.shape[0] * image.shape[1] > max_pixels:
        return "參考畫面尺寸過大"
    if (image.shape[1], image.shape[0]) != frame_size:
        image = cv2.resize(image, frame_size, interpolation=cv2.INTER_AREA)
    j = learn_reference(score(frame_from_bgr(image)), base, label=Path(path).name)
    base.reference_key = key
    if j.verdict != Verdict.CLEAR:
        return f"參考畫面本身{REJECTED_ZH.get(j.verdict, j.verdict.value)}，未採用"
    return None


@check_probe(CheckKind.PICTURE)
async def probe_picture(device_id: str, run: ProbeRun) -> list[CheckResult]:
    ctx = run.ctx

    def result(
        status: Status,
        reason: str,
        values: PictureValues | None = None,
        findings: tuple[Finding, ...] = (),
        driver: str | None = None,
    ) -> list[CheckResult]:
        return [run.result(device_id, status, reason, findings, values, driver)]

    camera = ctx.inventory.cameras.get(device_id)
    if camera is None:
        return result(Status.UNKNOWN, "清冊中沒有這支攝影機")
    place = camera.position
    timeout = run.budget
    try:
        creds_model = (
            camera.credentials
            if camera.address is not None
            else ctx.inventory.recorders[camera.recorder].credentials
        )
        creds = resolve_login(creds_model, ctx.secrets)
    except SecretError as exc:  # its text never holds a secret
        return result(Status.UNKNOWN, f"{place}鏡頭：無法取得登入密碼（{exc}）")
    # The device spoken to: the camera itself, or the recorder it is behind (its
    # session and what its drivers set up are shared with that device's other checks).
    target = target_of(device_id if camera.address is not None else camera.recorder, ctx)
    if target is None:
        return result(Status.UNKNOWN, "清冊中沒有這支攝影機的主機")
    link = DeviceLink(target, ctx, creds)
    try:
        async with asyncio.timeout(run.remaining()):
            grab = await grab_frame(
                camera, ctx.inventory, creds, link.limits,
                http=await link.http(), states=link.state,
            )
        driver = grab.driver
        m = await _in_scorer(_score, grab, ctx.config.max_frame_pixels)
        del grab  # the frame is dropped here; only figures go on
    except TimeoutError:
        return result(Status.UNKNOWN, f"{place}鏡頭：取得畫面逾時（{timeout:g} 秒）")
    except DeviceError as exc:
        return result(Status.UNKNOWN, f"{place}鏡頭：無法取得畫面，{exc.zh_reason}")
    except FrameError as exc:
        return result(Status.UNKNOWN, f"{place}鏡頭：{exc.zh_reason}")
    finally:
        await link.aclose()

    base = CameraBaseline.from_dict(ctx.memory.baselines.get(device_id))
    problem = None
    if camera.reference_image:
        problem = await _in_scorer(
            apply_reference_image, base, camera.reference_image,
            (m.width * m.scale, m.height * m.scale), (m.width, m.height),
            ctx.config.max_frame_pixels)
    a = assess(m, base, run.at.timestamp())
    ctx.memory.put_baseline(device_id, base.to_dict())

    values = PictureValues(
        sharpness=round(m.sharpness, 2),
        brightness=round(m.brightness, 1),
        contrast=round(m.contrast, 1),
        hf_ratio=round(m.hf_ratio, 4),
        colourfulness=round(m.colourfulness, 2),
        mode=a.mode.value,
        baseline_sharpness=_rounded(a.baseline_sharpness, 2),
        verdict=a.verdict.value,
        similarity=_rounded(a.similarity, 3),
        learning=a.learning is not None,
        learning_refused=a.rejected,
        structure=round(m.structure, 3),
        fine_detail=_rounded(m.spectral, 4),
        detail_kept=_rounded(a.kept, 3),
        view_matching=_rounded(a.matching, 3),
        reference=a.reference,
    )
    note = f"；{problem}" if problem else ""
    if a.learning is not None and a.verdict == Verdict.CLEAR:
        n, total = a.learning
        mode = MODE_ZH.get(a.mode.value, "")
        if a.rejected:
            why = REJECTED_ZH.get(Verdict(a.rejected), a.rejected)
            note += f"；先前取樣{why}，未納入基準"
        return result(
            Status.OK,
            f"{place}鏡頭畫面正常；{mode}基準學習中（{min(n + 1, total)}/{total}）{note}",
            values,
            driver=driver,
        )
    if a.verdict == Verdict.CLEAR:
        return result(Status.OK, f"{place}鏡頭{a.reason_zh}{note}", values, driver=driver)
    reason = f"{place}鏡頭{a.reason_zh}"
    if a.learning is not None:
        mode = MODE_ZH.get(a.mode.value, "")
        reason += f"（{mode}基準學習中，此畫面不納入基準）"
    finding = Finding(FINDINGS[a.verdict], reason, device_id)
    return result(Status.FAIL, reason, values, (finding,), driver=driver)
