"""`camwatch baseline reset CAMERA`: forget a camera's picture baselines after its lens
was cleaned, refocused or re-aimed, in the running service; `camwatch baseline set
CAMERA --from FILE`: judge it against a known-good photo of its view from now on.

Each camera is judged against its own baseline (probes/baseline.py), learned
automatically per mode (day / night). After a lens is serviced the old baseline is
wrong — a lens refocused sharper than before, or a camera pointed elsewhere — so the
installer resets it and the next picture checks learn it again.

The command asks the running service (`camwatch run`) over HTTP:

    POST /admin/baselines/{camera}/reset   (Bearer CAMWATCH_HTTP_TOKEN, or basic auth)
    GET  /admin/baselines/{camera}         (the frame size to score a reference at)
    POST /admin/baselines/{camera}/reference  (the reference's figures, never the photo)

The service answers it with `camwatch.baselines.baseline_resetter()`: it drops the
camera's entry in the probe memory (ProbeContext.memory.baselines) and persists the
memory at once, so a restart does not bring the old baseline back.

Exit codes: 0 reset; 1 unknown camera, service not reachable, not authorised or any
other refusal, with one clear message; 2 usage.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

import click

from inventory.models import ID_PATTERN

DEFAULT_URL = "http://127.0.0.1:9745"
MODE_WORDS = {"day": "day (日間)", "night": "night (夜間, IR)"}

# --- the command ------------------------------------------------------------------------


def _fail(message: str) -> None:
    click.echo(f"camwatch baseline: {message}", err=True)
    raise SystemExit(1)


def _display(url: str) -> str:
    """The service URL without any credentials in it (never print those)."""
    import httpx

    u = httpx.URL(url)
    port = f":{u.port}" if u.port else ""
    return f"{u.scheme}://{u.host}{port}"


def auth_header(token: str | None, user: str | None, password: str | None) -> str | None:
    if token:
        return f"Bearer {token}"
    if user and password:
        raw = f"{user}:{password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")
    return None


def explain(status: int, body: dict[str, Any] | None, text: str, camera: str,
            where: str) -> str:
    """A refusal from the service in plain words."""
    msg = (body or {}).get("message")
    if status == 401:
        return (f"not authorised: the service at {where} refused the credentials. Pass the "
                "service's token with --token or CAMWATCH_HTTP_TOKEN (or set "
                "CAMWATCH_HTTP_USER and CAMWATCH_HTTP_PASSWORD).")
    if status == 403:
        if "disabled" in text:
            return (f"the service at {where} has no admin credentials configured: start "
                    "`camwatch run` with CAMWATCH_HTTP_TOKEN set, then try again.")
        return f"refused by the service at {where}: {text.strip() or 'forbidden'}"
    if status == 404:
        if body and body.get("error") == "unknown camera":
            return (f"unknown camera {camera!r}: {msg}. Camera ids are listed by "
                    "`camwatch inventory` and in the inventory YAML.")
        return (f"the service at {where} has no baseline reset endpoint (is it an older "
                "camwatch, or not camwatch at all?)")
    if status == 503:
        return f"the service at {where} cannot reset baselines now: {msg or text.strip()}"
    return f"the service at {where} answered HTTP {status}: {msg or text.strip()[:200]}"


def summary_lines(reply: dict[str, Any], camera: str) -> list[str]:
    """What happened, in plain words, from the service's reply."""
    name = reply.get("name") or camera
    place = reply.get("place") or ""
    where = f" at {place}" if place else ""
    n = reply.get("learn_samples")
    lines = []
    if reply.get("had_baseline"):
        lines.append(f"Reset the picture baselines of {camera} ({name}){where}.")
        for mode, info in (reply.get("before") or {}).items():
            word = MODE_WORDS.get(mode, mode)
            if info.get("learned"):
                lines.append(f"  {word}: forgotten (it had been learned).")
            elif info.get("samples"):
                lines.append(f"  {word}: still learning ({info['samples']} samples so far) — "
                             "started over.")
            else:
                lines.append(f"  {word}: nothing learned yet.")
    else:
        lines.append(f"{camera} ({name}){where} had no picture baseline yet; nothing to forget.")
    lines.append(
        f"The next {n or 'few'} usable pictures in each mode teach it again; until then its "
        "picture answer reads 基準學習中 (learning) and a blur or a moved view is not judged "
        "against the old lens.")
    return lines


@click.group("baseline")
def group() -> None:
    """Picture baselines (畫面基準) of the running service."""


def _call(method: str, url: str, camera: str, suffix: str, token: str | None,
          timeout: float, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """One request to the running service; any refusal ends the command with a clear
    message (exit status 1)."""
    import httpx

    header = auth_header(token, os.environ.get("CAMWATCH_HTTP_USER"),
                         os.environ.get("CAMWATCH_HTTP_PASSWORD"))
    try:
        where = _display(url)
        base = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        _fail(f"not a URL: {url!r} (expected e.g. {DEFAULT_URL})")
        raise AssertionError from None  # _fail exits
    if base.scheme not in ("http", "https"):
        _fail(f"not an http(s) URL: {where}")
    if not re.match(ID_PATTERN, camera):
        _fail(f"not a camera id: {camera!r} (ids are lower-case letters, digits, - and _)")
    if header is None:
        _fail("no credentials: pass --token or set CAMWATCH_HTTP_TOKEN (the same token "
              "`camwatch run` was started with).")
    target = base.copy_with(path=base.path.rstrip("/") + f"/admin/baselines/{camera}{suffix}",
                            userinfo=b"")
    try:
        with httpx.Client(trust_env=False, timeout=timeout) as client:
            resp = client.request(method, target, headers={"Authorization": header or ""},
                                  json=payload)
    except httpx.TimeoutException:
        _fail(f"the service at {where} did not answer within {timeout:g} s.")
        raise AssertionError from None
    except httpx.HTTPError as exc:
        _fail(f"the service is not reachable at {where} ({type(exc).__name__}). Is "
              "`camwatch run` running there? Use --url to point at it.")
        raise AssertionError from None
    body: dict[str, Any] | None = None
    try:
        parsed = resp.json()
        if isinstance(parsed, dict):
            body = parsed
    except ValueError:
        body = None
    if resp.status_code != 200 or body is None:
        _fail(explain(resp.status_code, body, resp.text, camera, where))
        raise AssertionError
    return body


URL_OPTION = click.option("--url", default=DEFAULT_URL, show_default=True,
                          help="The running service (`camwatch run`).")
TOKEN_OPTION = click.option(
    "--token", envvar="CAMWATCH_HTTP_TOKEN", default=None, show_envvar=True,
    help="The service's admin token (CAMWATCH_HTTP_TOKEN of `camwatch run`). "
         "Without it, CAMWATCH_HTTP_USER and CAMWATCH_HTTP_PASSWORD are used.")
TIMEOUT_OPTION = click.option("--timeout", type=click.FloatRange(min=0.5), default=10.0,
                              show_default=True, help="Seconds to wait for the service.")


@group.command("reset")
@click.argument("camera")
@URL_OPTION
@TOKEN_OPTION
@TIMEOUT_OPTION
def reset(camera: str, url: str, token: str | None, timeout: float) -> None:
    """Forget CAMERA's picture baselines (day and night) after its lens was cleaned,
    refocused or re-aimed (鏡頭保養後重設畫面基準).

    CAMERA is the camera's id in the inventory. The service learns the baselines again
    from the next picture checks.
    """
    body = _call("POST", url, camera, "/reset", token, timeout)
    for line in summary_lines(body, camera):
        click.echo(line)


def reference_baseline(data: bytes, frame_size: tuple[int, int] | None,
                       label: str) -> tuple[dict[str, Any] | None, str, str]:
    """(the CameraBaseline dict a reference photo makes, its mode, why not) scored at the
    camera's frame size; None with the reason (zh-TW) when one look finds the photo
    itself blurred, covered, dark... The photo stays in memory; only figures leave."""
    import cv2
    import numpy as np

    from probes.baseline import REJECTED_ZH, CameraBaseline, learn_reference
    from probes.scoring import FrameError, Verdict, frame_from_bgr, image_info, score

    try:
        info = image_info(data)
    except FrameError as exc:
        return None, "", exc.zh_reason
    if info.format == "other" or info.width * info.height > 8192 * 8192:
        return None, "", "不是可用的 JPEG 或 PNG 影像"
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return None, "", "影像無法解碼"
    if frame_size is not None and (image.shape[1], image.shape[0]) != frame_size:
        image = cv2.resize(image, frame_size, interpolation=cv2.INTER_AREA)
    m = score(frame_from_bgr(image))
    base = CameraBaseline(learn_samples=1)
    j = learn_reference(m, base, label=label)
    if j.verdict != Verdict.CLEAR:
        return None, m.mode.value, f"{REJECTED_ZH.get(j.verdict, j.verdict.value)}（{j.reason_zh}）"
    return base.to_dict(), m.mode.value, ""


@group.command("set")
@click.argument("camera")
@click.option("--from", "source", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A photo of CAMERA's view (JPEG or PNG), taken when the lens was clean "
                   "and in focus: ideally the camera's own snapshot.")
@URL_OPTION
@TOKEN_OPTION
@TIMEOUT_OPTION
def set_reference(camera: str, source: Path, url: str, token: str | None,
                  timeout: float) -> None:
    """Judge CAMERA against a known-good view from now on (設定參考畫面).

    The photo is scored here, at the frame size the service sees from CAMERA, and only
    its figures and a 32x18 grey thumbnail are sent and kept, never the photo. It
    becomes the baseline of its mode (day, or night for a grey IR picture); a photo that
    is itself blurred, covered, dark or overexposed is refused. A lens mis-focused at
    installation is then reported from the next picture check, where learning would have
    taken the blur for normal.
    """
    info = _call("GET", url, camera, "", token, timeout)
    size = info.get("frame_size")
    if not (isinstance(size, list) and len(size) == 2):
        size = None
        _fail(f"the service has not had a picture from {camera} yet, so the frame size to "
              "score the photo at is unknown: wait for its first picture check (or give "
              "reference_image: in the inventory instead).")
    assert size is not None
    try:
        data = source.read_bytes()
    except OSError as exc:
        _fail(f"{source}: cannot be read ({exc.strerror})")
        return
    doc, mode, why = reference_baseline(data, (int(size[0]), int(size[1])), source.name)
    if doc is None:
        _fail(f"{source}: not used as the reference of {camera}: {why}. Take the photo "
              "again with the lens clean and in focus.")
        return
    body = _call("POST", url, camera, "/reference", token, timeout,
                 {"baseline": doc, "label": source.name})
    name = body.get("name") or camera
    place = body.get("place") or ""
    word = MODE_WORDS.get(mode, mode)
    click.echo(f"{camera} ({name}){' at ' + place if place else ''}: {source.name} is now "
               f"its {word} reference view (參考畫面).")
    click.echo("Only its figures and a 32x18 grey thumbnail were sent; the next picture "
               "check judges the lens against it.")
