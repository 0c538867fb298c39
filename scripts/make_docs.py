"""Regenerate the README pictures in docs/ from a real run of `camwatch demo`.

    .venv/bin/python scripts/make_docs.py [--duration 120] [--out docs]

Two ways, both all on loopback and both built from `camwatch demo`'s own parts:

--via service (default) runs the demo's pieces in this process — the simulated campus
   (camwatch.commands.demo.SimulatorProcess), the service, Alertmanager and Prometheus
   when installed — and breaks the demo's three devices (a recorder disk, an offline
   camera, a blurred lens) only once the blurred camera's picture baseline is learned,
   so the pictures show all three faults even on a slow, busy machine. The terminal
   picture is the demo's live view (camwatch.tui.live_view) drawn from the service's
   state at the moment of the landing-page screenshot.
--via demo runs `camwatch demo --duration N` itself in a pseudo-terminal (120 x 80) and
   takes its pictures while the demo's own timed script has the faults on; the terminal
   picture is the last frame the demo drew. Faithful, but on a loaded machine the faults
   may come before the baselines are learned.

Either way:
- docs/landing.png: headless chromium's screenshot of the service's `/`, as served
  while the three faults show (a copy of it, so a busy service cannot half-load it);
- docs/terminal.png: the live view, turned back into rich text, laid out on the
  terminal's cell grid as HTML (CJK characters two cells wide) and rendered by chromium;
- docs/sheet.png: the first page of this month's 附件四 sheet of the unit whose recorder
  lost a disk, rendered with `pdftoppm -png -r 80`.

Needs chromium, pdftoppm (poppler-utils) and fonts-noto-cjk (scripts/setup.sh installs
them). The demo uses simulated devices only; no frame is written anywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import io
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probes.result import CHECK_TITLES

REPO = Path(__file__).resolve().parents[1]
COLS, ROWS = 120, 80
MAX_PNG_BYTES = 400 * 1024

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--no-pings", "--hide-scrollbars",
    # keep the browser on loopback: nothing resolves but 127.0.0.1
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]

ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
# rich's Live moves back to the top of its previous frame with: CR, erase line, then
# (cursor up, erase line) once per further line of that frame
REDRAW_RE = re.compile(rb"\r\x1b\[2K(?:\x1b\[1A\x1b\[2K)+")
URL_RE = re.compile(r"camwatch\s+(http://127\.0\.0\.1:\d+)/")
FAIL_ROW = "<tr class=fail>"
# the landing page's label of each check; the demo breaks one device for each
CHECK_LABELS = tuple(CHECK_TITLES.values())
SCRIPT_LENGTH_S = 130.0  # camwatch.commands.demo.SCRIPT_LENGTH_S


def strip_ansi(text: str) -> str:
    return ANSI_RE.sub("", text)


def last_frame(stream: bytes) -> bytes:
    """The last complete frame of rich's Live output in `stream` (the text between the
    last two redraws; the text after the last redraw if the stream ended after it)."""
    cuts = [m for m in REDRAW_RE.finditer(stream)]
    if not cuts:
        return stream
    if len(cuts) == 1:
        return stream[cuts[0].end():]
    return stream[cuts[-2].end():cuts[-1].start()]


TERMINAL_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>camwatch demo</title><style>
html,body{{margin:0;padding:0;background:{background}}}
pre{{margin:0;padding:14px 18px;color:{foreground};background:{background};
font-family:"DejaVu Sans Mono","Noto Sans Mono CJK TC",monospace;font-size:15px;
line-height:20px}}
/* a wide (CJK) character takes exactly two cells, whatever the fallback font's width */
.w{{display:inline-block;width:2ch;text-align:center}}
</style></head><body><pre>{code}</pre></body></html>
"""


def frame_to_html(frame: bytes, width: int = COLS) -> tuple[str, int]:
    """An ANSI-coloured terminal frame as an HTML page laid out on the terminal's cell
    grid, and its height in lines."""
    from rich.cells import cell_len
    from rich.console import Console
    from rich.terminal_theme import MONOKAI
    from rich.text import Text

    text = frame.decode("utf-8", errors="replace")
    # keep colours (SGR), drop cursor movement and the like
    text = re.sub(r"\x1b\[\?[0-9;]*[A-Za-z]|\x1b\[[0-9;]*[A-Za-ln-z]", "", text)
    text = text.replace("\r", "").strip("\n")
    console = Console(record=True, width=width, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor")
    console.print(Text.from_ansi(text), crop=True, soft_wrap=False)
    page: str = console.export_html(theme=MONOKAI, inline_styles=True,
                                    code_format=TERMINAL_PAGE)
    # only text content holds wide characters (tags and styles are ASCII)
    page = re.sub(r"[^\x00-\u2e7f]", lambda m: f'<span class="w">{m.group(0)}</span>'
                  if cell_len(m.group(0)) == 2 else m.group(0), page)
    return page, text.count("\n") + 1


# --- the demo in a pseudo-terminal ----------------------------------------------------


@dataclass
class Demo:
    duration: float
    workdir: Path
    stream: bytearray = field(default_factory=bytearray)
    proc: subprocess.Popen[bytes] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def sheets(self) -> Path:
        return self.workdir / "sheets"

    def start(self) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(COLS), LINES=str(ROWS),
                   COLORTERM="truecolor")
        for var in ("NO_COLOR", "CI"):
            env.pop(var, None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "camwatch", "demo", "--duration", f"{self.duration:g}",
             "--output", str(self.sheets)],
            cwd=REPO, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
            start_new_session=True)
        os.close(slave)
        threading.Thread(target=self._read, args=(master,), daemon=True).start()

    def _read(self, fd: int) -> None:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            with self._lock:
                self.stream.extend(chunk)
        os.close(fd)

    def snapshot(self) -> bytes:
        with self._lock:
            return bytes(self.stream)

    def text(self) -> str:
        return strip_ansi(self.snapshot().decode("utf-8", errors="replace"))

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(2)  # Ctrl-C: the demo stops cleanly and writes sheets
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def fetch(url: str, timeout: float = 5.0) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as resp:
        body: bytes = resp.read()
    return body.decode("utf-8", errors="replace")


def wait_for_url(demo: Demo, deadline: float) -> str:
    while time.monotonic() < deadline:
        m = URL_RE.search(demo.text())
        if m:
            return m.group(1)
        if demo.proc is not None and demo.proc.poll() is not None:
            break
        time.sleep(0.5)
    raise SystemExit("make_docs: the demo did not print its URL; its output was:\n"
                     + demo.text()[-3000:])


def failing_checks(page: str) -> set[str]:
    """Which of the three checks have a failing row on the landing page."""
    rows = page.split(FAIL_ROW)[1:]
    return {label for row in rows for label in CHECK_LABELS
            if label in row.split("</tr>", 1)[0]}


def wait_for_faults(url: str, deadline: float) -> set[str]:
    """Poll the landing page until all three checks have a failing row (the demo's
    disk, offline camera and blurred lens), or the deadline; returns those seen."""
    seen: set[str] = set()
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            seen = failing_checks(fetch(url + "/"))
            if len(seen) == len(CHECK_LABELS):
                return seen
        time.sleep(1.0)
    return seen


# --- pictures -------------------------------------------------------------------------


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("make_docs: chromium is not installed (scripts/setup.sh installs it)")


def screenshot(target: str, out: Path, size: tuple[int, int], profile: Path) -> None:
    out.unlink(missing_ok=True)
    cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
           f"--window-size={size[0]},{size[1]}", f"--screenshot={out}", target]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if not out.exists():
        raise SystemExit(f"make_docs: chromium wrote no screenshot of {target}:\n"
                         + proc.stderr[-2000:])


def page_shot(page_html: str, out: Path, work: Path) -> None:
    """Screenshot of a page the service served, from a copy of it: a busy service can
    be slow to answer, and chromium may then capture a half-loaded page. The landing page
    is self-contained (inline style, no scripts, no images), so the copy looks the same."""
    page = work / "landing.html"
    page.write_text(page_html, encoding="utf-8")
    screenshot(page.as_uri(), out, (1200, 900), work / "profile-landing")


def sheet_png(pdf: Path, out: Path) -> None:
    if shutil.which("pdftoppm") is None:
        raise SystemExit("make_docs: pdftoppm is not installed (poppler-utils)")
    prefix = out.with_suffix("")
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile",
                    str(pdf), str(prefix)], check=True, timeout=120)


def shrink(png: Path) -> None:
    """Re-save a PNG with a palette when it is over the size limit (Pillow, if there)."""
    if png.stat().st_size <= MAX_PNG_BYTES:
        return
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(png) as im:
        small = im.convert("RGB").quantize(colors=128)
    small.save(png, optimize=True)


def disk_recorder(inventory: Any) -> str | None:
    """The recorder whose disk fails: the demo's choice (its first recorder)."""
    from camwatch.commands.demo import pick_devices

    _, disk, _ = pick_devices(inventory)
    return disk


def pick_sheet(sheets: Path) -> Path:
    """The sheet of the unit whose recorder lost a disk, else the first one."""
    pdfs = sorted(sheets.glob("*.pdf"))
    if not pdfs:
        raise SystemExit(f"make_docs: the demo wrote no sheet into {sheets}")
    with contextlib.suppress(Exception):
        from camwatch.commands.demo import DEFAULT_INVENTORY
        from inventory.loader import load_inventory

        inv = load_inventory([DEFAULT_INVENTORY])
        disk = disk_recorder(inv)
        if disk is not None:
            unit = inv.recorders[disk].unit
            for p in pdfs:
                if p.name.startswith(f"{unit}-"):
                    return p
    return pdfs[0]


def make_docs_via_demo(out: Path, duration: float) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="camwatch-docs-"))
    demo = Demo(duration, work)
    written: list[Path] = []
    try:
        t0 = time.monotonic()
        demo.start()
        url = wait_for_url(demo, t0 + 120)
        t_up = time.monotonic()
        print(f"make_docs: demo up at {url}", flush=True)
        # the demo's scripted faults are all active from 30 % to 60 % of its script
        length = min(duration, SCRIPT_LENGTH_S)
        seen = wait_for_faults(url, t_up + 0.58 * length)
        print(f"make_docs: failing on the landing page: {', '.join(sorted(seen)) or 'none'}",
              flush=True)
        stream = demo.snapshot()
        landing = out / "landing.png"
        page_shot(fetch(url + "/"), landing, work)
        written.append(landing)

        terminal = terminal_picture(last_frame(stream), out, work)
        written.append(terminal)

        rc = demo.wait(timeout=max(60.0, duration + 180 - (time.monotonic() - t0)))
        if rc != 0:
            print(f"make_docs: the demo exited with {rc}:\n{demo.text()[-2000:]}",
                  file=sys.stderr)
        sheet = out / "sheet.png"
        sheet_png(pick_sheet(demo.sheets), sheet)
        written.append(sheet)
        for p in (landing, terminal, sheet):
            shrink(p)
        return written
    finally:
        demo.stop()
        shutil.rmtree(work, ignore_errors=True)


# --- the demo's parts, driven here ----------------------------------------------------


def render_ansi(renderable: object, width: int = COLS) -> bytes:
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=True, color_system="truecolor")
    console.print(renderable)
    return buf.getvalue().encode("utf-8")


def terminal_picture(ansi: bytes, out: Path, work: Path) -> Path:
    page_html, lines = frame_to_html(ansi)
    page = work / "terminal.html"
    page.write_text(page_html, encoding="utf-8")
    terminal = out / "terminal.png"
    # 15 px DejaVu Sans Mono: 9 px a cell, 20 px a line, plus the padding
    size = (COLS * 9 + 36 + 8, lines * 20 + 28 + 4)
    screenshot(page.as_uri(), terminal, size, work / "profile-terminal")
    return terminal


async def _drive(out: Path, work: Path, budget_s: float) -> list[Path]:
    import asyncio

    import httpx

    from camwatch.commands import demo
    from camwatch.logs import setup_logging
    from camwatch.service import Service, load_inventory_or_fail
    from camwatch.tui import LiveInfo, live_view
    from inventory.models import CameraKind
    from probes.result import CheckKind

    demo.ensure_demo_env()
    inventory = load_inventory_or_fail([demo.DEFAULT_INVENTORY])
    sheets = work / "sheets"
    sheets.mkdir()
    setup_logging("INFO", "text", work / "camwatch-demo.log")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    sim = demo.SimulatorProcess(demo.DEFAULT_INVENTORY, work)
    am = prom = None
    service = None
    written: list[Path] = []
    try:
        await sim.start()
        with contextlib.suppress(RuntimeError):
            am = await demo.start_alertmanager(work)
        # the demo's settings, with more patience (a docs run often shares the machine)
        # and the picture checks first: the faults wait for a learned baseline
        settings = demo.demo_settings(None, work, am, fast=False).model_copy(
            update={"timeout": 8.0, "host_interval": 20.0, "recording_interval": 20.0,
                    "picture_interval": 3.0})
        service = Service(settings, inventory)
        await service.start()
        assert service.http is not None and service.url is not None
        with contextlib.suppress(RuntimeError):
            prom = await demo.start_prometheus(work, f"127.0.0.1:{service.http.port}", am)
        url = service.url
        print(f"make_docs: service up at {url}", flush=True)
        urls = [("camwatch", f"{url}/"), ("metrics", f"{url}/metrics"),
                ("Prometheus", prom.url if prom else "(not installed)"),
                ("Alertmanager", am.url if am else "(not installed)")]
        info = LiveInfo(title=f"camwatch demo — {inventory.campus.name}", urls=urls,
                        sheets_dir="out/sheets", events=[], duration_s=None)
        state = service.state
        disk = disk_recorder(inventory)
        ip_cams = [c.id for c in inventory.cameras.values()
                   if c.kind == CameraKind.IP and c.address is not None]

        async def until(cond: object, limit: float, what: str,
                        note: Callable[[], str] = lambda: "") -> bool:
            end = loop.time() + limit
            next_note = loop.time() + 15
            while loop.time() < end:
                if callable(cond) and cond():
                    return True
                if loop.time() >= next_note:
                    next_note += 15
                    print(f"make_docs: {loop.time() - t0:.0f} s, waiting for {what} "
                          f"{note()}", flush=True)
                await asyncio.sleep(0.5)
            print(f"make_docs: gave up waiting for {what}", file=sys.stderr, flush=True)
            return False

        def learned(cam: str | None) -> bool:
            r = state.get(cam, CheckKind.PICTURE) if cam else None
            return r is not None and getattr(r.values, "learning", None) is False

        def first_learned() -> str | None:
            return next((c for c in ip_cams if learned(c)), None)

        demo_blur, _, _ = demo.pick_devices(inventory)

        def picture_note(cam: str | None = demo_blur) -> str:
            r = state.get(cam, CheckKind.PICTURE) if cam else None
            return f"({cam}: {r.status.value} {r.reason})" if r is not None else ""

        # the lens to blur: the demo's choice once its baseline is learned (a fault before
        # that would be learned, not detected), or else the first IP camera learned
        await until(lambda: learned(demo_blur), budget_s * 0.6,
                    f"{demo_blur}'s picture baseline", picture_note)
        blur = demo_blur if learned(demo_blur) else first_learned() or demo_blur
        offline = next((c for c in ip_cams if c != blur
                        and inventory.cameras[c].recorder != disk),
                       next((c for c in ip_cams if c != blur), None))
        # the demo's own three faults (camwatch.commands.demo.build_scenario)
        steps = [(disk, "disk-failed", 1.0, "硬碟故障 recorder disk fails"),
                 (offline, "offline", None, "攝影機斷線 camera offline"),
                 (blur, "blurred", 8.0, "鏡頭失焦 lens goes blurry")]
        for dev, kind, severity, text in steps:
            if dev:
                await sim.fault(dev, kind, severity)
                info.events.append(f"{loop.time() - t0:4.0f} s  {text}: "
                                   f"{inventory.place_of(dev)} ({dev})")

        client = httpx.AsyncClient(trust_env=False)
        try:
            page_faults: set[str] = set()
            page_html = ""

            async def refresh() -> bool:
                nonlocal page_faults, page_html
                with contextlib.suppress(httpx.HTTPError):
                    r = await client.get(f"{url}/", timeout=30)
                    if r.status_code == 200:
                        page_html = r.text
                        page_faults = failing_checks(page_html)
                if am is not None:
                    with contextlib.suppress(httpx.HTTPError, ValueError):
                        info.alerts = await demo.alerts_from_alertmanager(
                            client, am.url, inventory)
                else:
                    info.alerts = demo.alerts_from_engine(service, inventory)
                firing = {a.device for a in info.alerts if a.state == "active"}
                wanted = {d for d in (disk, offline, blur) if d}
                return len(page_faults) == len(CHECK_LABELS) and (
                    am is None or wanted <= firing)

            end = loop.time() + max(30.0, budget_s * 0.3)
            while loop.time() < end:
                if await refresh():
                    break
                await asyncio.sleep(1.0)
            print(f"make_docs: failing on the landing page: "
                  f"{', '.join(sorted(page_faults)) or 'none'}; alerts: "
                  f"{', '.join(a.alertname for a in info.alerts) or 'none'}; blurred lens "
                  f"{picture_note(blur)}", flush=True)
            info.elapsed_s = loop.time() - t0
            ansi = render_ansi(live_view(inventory, state.get, info,
                                         since=state.status_since))
            if not page_html:
                raise SystemExit(f"make_docs: the service at {url} never served its page")
            landing = out / "landing.png"
            await asyncio.to_thread(page_shot, page_html, landing, work)
            terminal = await asyncio.to_thread(terminal_picture, ansi, out, work)
            written += [landing, terminal]
        finally:
            await client.aclose()
        # repaired again, so the sheet shows a repair as well as the faults
        for dev in (disk, offline, blur):
            if dev:
                await sim.clear(dev)
        broken = {d for d in (disk, offline, blur) if d}
        await until(lambda: not any(r.status.value == "fail" and r.device in broken
                                    for r in state.snapshot()), 45, "the repairs to show")
    finally:
        if service is not None:
            await service.stop()
        for b in (prom, am):
            if b is not None:
                b.stop()
        sim.stop()
    done, problems = await asyncio.to_thread(
        demo.write_sheets, settings.store_url, inventory, sheets,
        settings.inspection_interval_days)
    for problem in problems:
        print(f"make_docs: sheet not written: {problem}", file=sys.stderr)
    del done
    sheet = out / "sheet.png"
    await asyncio.to_thread(sheet_png, pick_sheet(sheets), sheet)
    written.append(sheet)
    return written


def make_docs_via_service(out: Path, budget_s: float) -> list[Path]:
    import asyncio

    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="camwatch-docs-"))
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    try:
        written = asyncio.run(_drive(out, work, budget_s))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for p in written:
        shrink(p)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--via", choices=("service", "demo"), default="service",
                    help="drive the demo's parts here (default), or run `camwatch demo` "
                         "in a pseudo-terminal")
    ap.add_argument("--duration", type=float, default=120.0,
                    help="--via demo: how long the demo runs (default 120)")
    ap.add_argument("--budget", type=float, default=300.0,
                    help="--via service: the most seconds to wait for a learned baseline "
                         "and then for the faults to show (default 300)")
    ap.add_argument("--out", type=Path, default=REPO / "docs",
                    help="where the pictures go (default docs/)")
    args = ap.parse_args(argv)
    if args.via == "demo":
        written = make_docs_via_demo(args.out, args.duration)
    else:
        written = make_docs_via_service(args.out, max(args.budget, 60.0))
    for p in written:
        print(f"  {p}  ({p.stat().st_size // 1024} KB)")
    big = [p for p in written if p.suffix == ".png" and p.stat().st_size > MAX_PNG_BYTES]
    if big:
        print(f"make_docs: over {MAX_PNG_BYTES // 1024} KB: {', '.join(map(str, big))}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
