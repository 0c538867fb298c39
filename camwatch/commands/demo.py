"""`camwatch demo`: the simulated campus, the service, and (when installed) real
Prometheus and Alertmanager, all on loopback; a scripted scenario breaks and repairs
things; on exit the month's 附件四 sheets are written.

Everything runs in this process except Prometheus and Alertmanager (child processes,
temporary storage, stopped on exit). Alertmanager gets the project's own routes and
inhibition (alerts/alertmanager.yml) with every receiver emptied: the demo never sends a
notification anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import httpx
import yaml
from rich.console import Console
from rich.live import Live

from camwatch.clock import default_clock, local_now
from camwatch.clock import now as clock_now
from camwatch.logs import event, setup_logging
from camwatch.service import (
    Service,
    StartupError,
    load_inventory_or_fail,
    load_settings_or_fail,
    render_report,
)
from camwatch.settings import Settings
from camwatch.tui import (
    FiringAlert,
    LiveInfo,
    baseline_progress,
    device_answers,
    live_view,
    plain_line,
)
from inventory.models import CameraKind, Inventory
from probes.result import CheckKind

log = logging.getLogger("camwatch.demo")

REPO = Path(__file__).resolve().parents[2]
DEFAULT_INVENTORY = REPO / "inventory" / "example-campus.yaml"
ALERTS_DIR = REPO / "alerts"
DEMO_ENV = ("CAMWATCH_DEMO_NVR_PASSWORD", "CAMWATCH_DEMO_CAM_PASSWORD",
            "CAMWATCH_DEMO_SNMP_COMMUNITY")
SCRIPT_LENGTH_S = 130.0


def ensure_demo_env() -> list[str]:
    """Random demo credentials for the simulated devices, when not set already."""
    made = []
    for name in DEMO_ENV:
        if not os.environ.get(name):
            os.environ[name] = secrets.token_urlsafe(12)
            made.append(name)
    return made


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- Prometheus and Alertmanager ----------------------------------------------------------


class Binary:
    """A real Prometheus or Alertmanager on 127.0.0.1, temporary storage."""

    def __init__(self, name: str, exe: str, workdir: Path) -> None:
        self.name = name
        self.exe = exe
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, args: list[str]) -> subprocess.Popen[bytes]:
        with (self.workdir / f"{self.name}.log").open("ab") as logf:
            return subprocess.Popen([self.exe, *args], cwd=self.workdir, stdout=logf,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    async def start(self, args: list[str]) -> None:
        self.proc = await asyncio.to_thread(self._spawn, args)
        async with httpx.AsyncClient(trust_env=False) as client:
            for _ in range(200):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited ({self.proc.returncode}); see "
                                       f"{self.workdir / (self.name + '.log')}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/-/ready", timeout=1)).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after 20 s")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def demo_alertmanager_config(source: Path | None) -> dict[str, Any]:
    """The project's Alertmanager config with every receiver emptied (routes, grouping
    and inhibition kept), or a minimal one when alerts/ has none."""
    if source is not None and source.is_file():
        cfg = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
        cfg["receivers"] = [{"name": r["name"]} for r in cfg.get("receivers", []) if "name" in r]
        cfg.pop("global", None)  # SMTP hosts and the like: nothing is sent anyway
        templates = cfg.get("templates") or []
        cfg["templates"] = [str((source.parent / t).resolve()) for t in templates]
        return dict(cfg)
    return {
        "route": {"receiver": "demo", "group_by": ["recorder"], "group_wait": "1s",
                  "group_interval": "5s", "repeat_interval": "1h"},
        "receivers": [{"name": "demo"}],
        "inhibit_rules": [{
            "source_matchers": ['alertname="RecorderDown"'],
            "target_matchers": ['alertname!="RecorderDown"'],
            "equal": ["recorder"],
        }],
    }


async def start_alertmanager(workdir: Path) -> Binary | None:
    exe = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if exe is None:
        return None
    am = Binary("alertmanager", exe, workdir)
    cfg_path = workdir / "alertmanager.yml"
    cfg_path.write_text(yaml.safe_dump(demo_alertmanager_config(ALERTS_DIR / "alertmanager.yml"),
                                       allow_unicode=True, sort_keys=False), encoding="utf-8")
    (workdir / "am-data").mkdir(exist_ok=True)
    await am.start([f"--config.file={cfg_path}", f"--storage.path={workdir / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{am.port}", "--cluster.listen-address=",
                    "--log.level=warn"])
    return am


async def start_prometheus(workdir: Path, target: str, am: Binary | None) -> Binary | None:
    exe = shutil.which("prometheus")
    if exe is None:
        return None
    prom = Binary("prometheus", exe, workdir)
    cfg: dict[str, Any] = {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "rule_files": [str(p) for p in sorted(ALERTS_DIR.glob("*.rules.yml"))],
        "scrape_configs": [{"job_name": "camwatch",
                            "static_configs": [{"targets": [target]}]}],
    }
    if am is not None:
        cfg["alerting"] = {"alertmanagers": [{"static_configs": [
            {"targets": [f"127.0.0.1:{am.port}"]}]}]}
    cfg_path = workdir / "prometheus.yml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    (workdir / "prom-data").mkdir(exist_ok=True)
    await prom.start([f"--config.file={cfg_path}",
                      f"--storage.tsdb.path={workdir / 'prom-data'}",
                      f"--web.listen-address=127.0.0.1:{prom.port}", "--log.level=warn"])
    return prom


# --- the simulated campus, in its own process (its own core) ---------------------------


class SimulatorProcess:
    """`camwatch simulate --inventory PATH --control HOST:PORT` as a child process; faults
    go through its control API (simulator/control.py)."""

    def __init__(self, inventory_path: Path, workdir: Path) -> None:
        self.inventory_path = inventory_path
        self.workdir = workdir
        self.control = f"127.0.0.1:{free_port()}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._client: Any = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        ready = self.workdir / "simulator.ready"
        with (self.workdir / "simulator.log").open("ab") as logf:
            return subprocess.Popen(
                [sys.executable, "-c", "from camwatch.cli import main; main()", "simulate",
                 "--inventory", str(self.inventory_path), "--control", self.control,
                 "--ready-file", str(ready)],
                cwd=self.workdir, stdout=logf, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)

    async def start(self, wait_s: float = 90.0) -> None:
        from simulator.control import ControlClient

        self.proc = await asyncio.to_thread(self._spawn)
        self._client = ControlClient(self.control)
        ready = self.workdir / "simulator.ready"
        loop = asyncio.get_running_loop()
        end = loop.time() + wait_s
        while not await asyncio.to_thread(ready.exists):
            if self.proc.poll() is not None:
                tail = (self.workdir / "simulator.log").read_text(errors="replace")[-800:]
                raise StartupError(f"the simulated campus did not start:\n{tail}")
            if loop.time() > end:
                raise StartupError(f"the simulated campus was not ready after {wait_s:.0f} s")
            await asyncio.sleep(0.2)

    async def fault(self, device: str, kind: str, severity: float | None = None) -> None:
        await self._client.afault(device, kind, severity)

    async def clear(self, device: str) -> None:
        await self._client.aclear(device)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# --- the scripted scenario ----------------------------------------------------------------


@dataclass
class Episode:
    """One fault: injected at `at_s` (or, with `ready`, once that holds — e.g. a camera's
    picture baseline is learned, so a blur can be told from its normal view — but no
    later than `latest_s`), cleared `hold_s` later."""

    at_s: float
    hold_s: float
    device: str
    kind: str
    severity: float | None
    broke: str
    fixed: str
    ready: Callable[[], bool] | None = None
    latest_s: float | None = None


@dataclass
class Scenario:
    sim: Any
    episodes: list[Episode] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    async def _note(self, t0: float, text: str, fn: Callable[[], Awaitable[None]]) -> None:
        at = asyncio.get_running_loop().time() - t0
        try:
            await fn()
            self.log.append(f"{at:4.0f} s  {text}")
        except Exception as exc:  # a broken step must not end the demo
            self.log.append(f"{at:4.0f} s  {text} — failed: {type(exc).__name__}")
        event(log, "scenario step", step=text)

    async def _episode(self, t0: float, ep: Episode) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, t0 + ep.at_s - loop.time()))
        if ep.ready is not None:
            latest = t0 + (ep.latest_s if ep.latest_s is not None else ep.at_s)
            while not ep.ready() and loop.time() < latest:  # noqa: ASYNC110 - polls state
                await asyncio.sleep(0.5)
        await self._note(t0, ep.broke, lambda: self.sim.fault(ep.device, ep.kind, ep.severity))
        await asyncio.sleep(ep.hold_s)
        await self._note(t0, ep.fixed, lambda: self.sim.clear(ep.device))

    async def run(self, t0: float) -> None:
        await asyncio.gather(*(self._episode(t0, ep) for ep in self.episodes))


def pick_devices(inventory: Inventory) -> tuple[str | None, str | None, str | None]:
    """(a camera to blur, a recorder whose disk fails, an IP camera to take offline)."""
    ip_cams = [c for c in inventory.cameras.values()
               if c.kind == CameraKind.IP and c.address is not None]
    disk = next(iter(inventory.recorders), None)
    blur = ip_cams[0].id if ip_cams else next(iter(inventory.cameras), None)
    offline = next((c.id for c in ip_cams if c.id != blur and c.recorder != disk),
                   next((c.id for c in ip_cams if c.id != blur), None))
    return blur, disk, offline


def build_scenario(sim: Any, inventory: Inventory, length_s: float,
                   baseline_learned: Callable[[str], bool] | None = None) -> Scenario:
    """A recorder disk fails, a camera goes offline, a lens goes blurry (once its
    baseline is learned); each is fixed after long enough to be detected (two check
    intervals and the alert debounce) and seen."""
    blur, disk, offline = pick_devices(inventory)
    sc = Scenario(sim)
    hold = min(45.0, 0.35 * length_s)

    def place(dev: str) -> str:
        return inventory.place_of(dev)

    if disk:
        sc.episodes.append(Episode(
            0.15 * length_s, hold, disk, "disk-failed", 1,
            f"硬碟故障 recorder disk fails: {place(disk)} ({disk})",
            f"已更換硬碟 disk replaced: {place(disk)} ({disk})"))
    if offline:
        sc.episodes.append(Episode(
            0.22 * length_s, hold, offline, "offline", None,
            f"攝影機斷線 camera offline: {place(offline)} ({offline})",
            f"攝影機恢復連線 camera back: {place(offline)} ({offline})"))
    if blur:
        ready = (lambda: baseline_learned(blur)) if baseline_learned is not None else None
        # A blur can only be told from the lens' own sharp view, and learning that view
        # takes several picture checks (longer on a busy machine): wait for it as long as
        # the script allows, keeping enough time to detect the blur and see it fixed.
        blur_hold = min(30.0, 0.25 * length_s)
        latest = max(0.25 * length_s, length_s - blur_hold - 20.0)
        sc.episodes.append(Episode(
            0.25 * length_s, blur_hold, blur, "blurred", 8,
            f"鏡頭失焦 lens goes blurry: {place(blur)} ({blur})",
            f"鏡頭已修復 lens refocused: {place(blur)} ({blur})",
            ready=ready, latest_s=latest))
    return sc


def learned_in(state: Any) -> Callable[[str], bool]:
    def learned(camera: str) -> bool:
        r = state.get(camera, CheckKind.PICTURE)
        return r is not None and getattr(r.values, "learning", None) is False

    return learned


# --- alerts as the live view shows them ---------------------------------------------------


async def alerts_from_alertmanager(client: httpx.AsyncClient, url: str,
                                   inventory: Inventory) -> list[FiringAlert]:
    r = await client.get(f"{url}/api/v2/alerts", timeout=3)
    r.raise_for_status()
    out = []
    for a in r.json():
        labels = a.get("labels", {})
        dev = labels.get("device", "")
        try:
            place = inventory.place_of(dev)
        except KeyError:
            place = labels.get("location", "")
        since = None
        with contextlib.suppress(KeyError, ValueError):
            since = dt.datetime.fromisoformat(a["startsAt"].replace("Z", "+00:00"))
        out.append(FiringAlert(labels.get("alertname", "?"), dev, place, since,
                               a.get("status", {}).get("state", "active")))
    return out


def alerts_from_engine(service: Service, inventory: Inventory) -> list[FiringAlert]:
    if service.alerting is None:
        return []
    out = []
    for a in service.alerting.firing():
        try:
            place = inventory.place_of(a.device)
        except KeyError:
            place = ""
        out.append(FiringAlert(a.alertname, a.device, place, a.starts_at))
    return out


def capture(path: Path, best: int, inventory: Inventory, state: Any, info: LiveInfo) -> int:
    """Save the view as SVG when it shows more (faults, alerts, learned baselines) than
    the last saved one; returns the score of the saved view."""
    answers = device_answers(inventory, state.get)
    learned, _ = baseline_progress(inventory, state.get)
    score = (10 * sum(len(a.failing) for a in answers) + 10 * len(info.alerts)
             + learned // 10 + len(info.events))
    if score <= best:
        return best
    rec = Console(record=True, width=140, file=io.StringIO(), force_terminal=True)
    rec.print(live_view(inventory, state.get, info, since=state.status_since,
                        now=clock_now()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(rec.export_svg(title="camwatch demo"), encoding="utf-8")
    return score


# --- sheets -------------------------------------------------------------------------------


def demo_months(inventory: Inventory, since: dt.datetime) -> list[str]:
    """The campus' months from `since` to now on camwatch's clock: one, or two when the
    demo ran across the end of a month (its sheets then cover both)."""
    tz = inventory.campus.timezone
    clock = default_clock()
    first = since.astimezone(local_now(clock, tz).tzinfo).strftime("%Y-%m")
    return sorted({first, local_now(clock, tz).strftime("%Y-%m")})


def write_sheets(store_url: str, inventory: Inventory, output: Path, interval_days: int,
                 months: list[str] | None = None) -> tuple[list[Path], list[str]]:
    """The sheet of every unit for each of `months` (default: the campus' month now)."""
    from camwatch.store import Store

    clock = default_clock()
    months = months or [local_now(clock, inventory.campus.timezone).strftime("%Y-%m")]
    output.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    problems: list[str] = []
    with Store.open(store_url) as store:
        for month in months:
            for unit in inventory.units:
                try:
                    data = render_report(store, inventory, month, unit, "pdf", interval_days,
                                         clock.now())
                except (LookupError, ValueError) as exc:
                    problems.append(f"{unit} {month}: {exc}")
                    continue
                path = output / f"{unit}-{month}.pdf"
                path.write_bytes(data)
                written.append(path)
    return written, problems


# --- the demo -----------------------------------------------------------------------------


def demo_settings(settings_path: Path | None, workdir: Path, am: Binary | None,
                  fast: bool) -> Settings:
    return load_settings_or_fail(
        settings_path,
        listen="127.0.0.1:0",
        store_url=f"sqlite:///{workdir / 'camwatch-demo.db'}",
        alertmanager_url=am.url if am is not None else None,
        host_interval=5.0,
        recording_interval=5.0 if fast else 10.0,
        picture_interval=3.0 if fast else 5.0,
        retries=0,
        jitter=0.1,
        alert_resend_interval=10.0,
        log_format="text",
    )


async def run_demo(inventory_path: Path, output: Path, duration: float | None,
                   settings_path: Path | None, console: Console, live: bool,
                   screenshot: Path | None = None) -> int:
    ensure_demo_env()
    inventory = load_inventory_or_fail([inventory_path])
    workdir = Path(tempfile.mkdtemp(prefix="camwatch-demo-"))
    log_path = output / "camwatch-demo.log"
    setup_logging("INFO", "text", log_path)
    fast = duration is not None and duration <= 90
    length = min(duration, SCRIPT_LENGTH_S) if duration else SCRIPT_LENGTH_S

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    sim = SimulatorProcess(inventory_path, workdir)
    am: Binary | None = None
    prom: Binary | None = None
    service: Service | None = None
    scenario_task: asyncio.Task[None] | None = None
    settings: Settings | None = None
    code = 0
    try:
        await sim.start()
        try:
            am = await start_alertmanager(workdir)
        except RuntimeError as exc:
            console.print(f"[yellow]Alertmanager not started: {exc}[/yellow]")
        settings = demo_settings(settings_path, workdir, am, fast)
        service = Service(settings, inventory)
        started = service.clock.now()
        await service.start()
        assert service.http is not None
        target = f"127.0.0.1:{service.http.port}"
        try:
            prom = await start_prometheus(workdir, target, am)
        except RuntimeError as exc:
            console.print(f"[yellow]Prometheus not started: {exc}[/yellow]")

        urls: list[tuple[str, str]] = [("camwatch", f"{service.url}/"),
                                       ("metrics", f"{service.url}/metrics")]
        urls.append(("Prometheus", prom.url if prom else "(not installed)"))
        urls.append(("Alertmanager", am.url if am else "(not installed)"))
        console.print(f"[bold]camwatch demo[/bold] — {inventory.campus.name}: "
                      f"{len(inventory.recorders)} recorders, {len(inventory.cameras)} cameras "
                      "(simulated, on loopback)")
        for name, url in urls:
            console.print(f"  {name:<13} {url}")
        console.print(f"  sheets        {output}  (written on exit)")
        console.print(f"  log           {log_path}")
        console.print("  Ctrl-C to stop" + (f"; stops by itself after {duration:.0f} s"
                                            if duration else ""))
        sys.stdout.flush()

        t0 = loop.time()
        scenario = build_scenario(sim, inventory, length, learned_in(service.state))
        scenario_task = asyncio.create_task(scenario.run(t0))
        info = LiveInfo(title=f"camwatch demo — {inventory.campus.name}", urls=urls,
                        sheets_dir=str(output), events=scenario.log, duration_s=duration)
        state = service.state
        client = httpx.AsyncClient(trust_env=False)
        last_plain = -1e9
        shot_score = -1
        seen_events = 0
        live_ctx: Any = (Live(console=console, refresh_per_second=2, transient=False)
                         if live else contextlib.nullcontext())
        try:
            with live_ctx as lv:
                while not stop.is_set():
                    info.elapsed_s = loop.time() - t0
                    if duration is not None and info.elapsed_s >= duration:
                        break
                    if am is not None:
                        with contextlib.suppress(httpx.HTTPError, ValueError):
                            info.alerts = await alerts_from_alertmanager(client, am.url,
                                                                         inventory)
                    else:
                        info.alerts = alerts_from_engine(service, inventory)
                    if screenshot is not None:
                        shot_score = capture(screenshot, shot_score, inventory, state, info)
                    if live:
                        lv.update(live_view(inventory, state.get, info,
                                            since=state.status_since,
                                            now=service.clock.now()))
                    else:
                        for line in scenario.log[seen_events:]:
                            console.print(f"scenario: {line}")
                        seen_events = len(scenario.log)
                        if info.elapsed_s - last_plain >= 10:
                            console.print(plain_line(inventory, state.get, info))
                            last_plain = info.elapsed_s
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=0.5)
        finally:
            await client.aclose()
    except StartupError as exc:
        console.print(f"[red]camwatch demo: {exc}[/red]")
        code = 1
    finally:
        if scenario_task is not None:
            scenario_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await scenario_task
        if service is not None:
            await service.stop()
        if prom is not None:
            prom.stop()
        if am is not None:
            am.stop()
        sim.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)

    if settings is not None and service is not None and code == 0:
        written, problems = await asyncio.to_thread(
            write_sheets, settings.store_url, inventory, output,
            settings.inspection_interval_days, demo_months(inventory, started))
        console.print("[bold]附件四 sheets written:[/bold]")
        for p in written:
            console.print(f"  {p}")
        for problem in problems:
            console.print(f"  [yellow]not written: {problem}[/yellow]")
        if not written:
            code = 1
    shutil.rmtree(workdir, ignore_errors=True)
    return code


@click.command("demo")
@click.option("--duration", type=click.FloatRange(min=10), default=None,
              help="Stop after this many seconds (default: run until Ctrl-C).")
@click.option("--output", type=click.Path(path_type=Path), default=Path("out/sheets"),
              show_default=True, help="Where the month's 附件四 sheets are written on exit.")
@click.option("--inventory", "inventory_path", type=click.Path(path_type=Path),
              default=None, help="Inventory to simulate (default inventory/example-campus.yaml).")
@click.option("--settings", "settings_path", type=click.Path(path_type=Path), default=None,
              help="Settings YAML (the demo sets its own intervals and ports).")
@click.option("--plain", is_flag=True, help="Plain progress lines instead of the live view.")
@click.option("--screenshot", type=click.Path(path_type=Path), default=None,
              help="Save the live view as SVG when it shows the most (for the README).")
def command(duration: float | None, output: Path, inventory_path: Path | None,
            settings_path: Path | None, plain: bool, screenshot: Path | None) -> None:
    """Run a simulated campus end to end: probes, /metrics, alerts, the sheet.

    Breaks and repairs things on a script (a lens goes blurry, a recorder disk fails, a
    camera goes offline, then each is fixed) so detection and recovery show within about
    two minutes. On exit writes this month's 附件四 sheet of every unit into --output.
    """
    console = Console()
    live = console.is_terminal and not plain
    output = output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    # OpenCV and its FFmpeg print straight to stderr; in the demo that would tear the view
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    started = time.monotonic()
    try:
        inv_path = (inventory_path or DEFAULT_INVENTORY).resolve()
        code = asyncio.run(run_demo(inv_path, output, duration, settings_path, console, live,
                                    screenshot.resolve() if screenshot else None))
    except StartupError as exc:
        click.echo(f"camwatch demo: {exc}", err=True)
        sys.exit(1)
    console.print(f"demo ended after {time.monotonic() - started:.0f} s")
    sys.exit(code)
