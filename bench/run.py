"""`make bench`: camwatch against a simulated district, measured side by side with the
exporters users already run (issues 7 and 16).

    .venv/bin/python bench/run.py [--quick] [--fleets 10000:500] [--workers N]
                                  [--window S] [--out bench/results/latest.json]

What it runs, each a separate process on loopback:

1. Fleets. Per fleet size the simulator (`camwatch simulate --rtsp 0`) starts once (its
   start-up time and RSS are recorded), then `camwatch run` (with `--workers N` probe
   processes when given; CPU and memory are summed over the whole process tree) is
   started several times against it: one phase per check kind with only that kind
   enabled (the others at 1e9 s) at its real interval, for CPU seconds per 1,000 checks
   of that kind from /proc (utime+stime) so the simulator's load does not blur it; then
   one combined phase with all three kinds for the scheduler lag (the larger of
   camwatch_scheduler_lag_seconds, which only sees runs that started, and
   camwatch_scheduler_oldest_overdue_seconds, the oldest run due but not started;
   / interval), the peak RSS (VmHWM) and one /metrics scrape's CPU. Each phase waits
   one interval first (the first cycle: every device set up) and then measures
   `--window` seconds (30 by default). The simulator's own CPU is reported per phase
   (it shares the cores).
2. blackbox_exporter: Debian's prometheus-blackbox-exporter probing the same fleet's
   ONVIF cameras with one GetSystemDateAndTime POST each (its http prober), asked
   through its own /probe endpoint, paced at the rate camwatch's host checks just ran
   (as Prometheus asks it, each camera a target once per interval) and flat out; its
   CPU per probe from /proc against camwatch's CPU per host check: the host-check ratio.
3. Recording check of 32-channel recorders of each vendor, in this process.
4. Frame path: a snapshot server process (bench/frameserver.py, digest auth) serves a
   1080p and a 4K JPEG; this process fetches, decodes and scores each the way the
   picture probe does (probes.drivers.http.fetch_bytes + probes.scoring.score_bytes +
   judge, scored in a worker thread) and compares its CPU time with the floor
   cv2.imdecode(GRAYSCALE) + Laplacian/meanStdDev on the same bytes.
5. SNMP: Debian's snmpd as the agent; camwatch's probes.drivers.snmp.read_recorder
   (generic plan: system group + hrStorage) against Debian's prometheus-snmp-exporter
   with a module walking the same OIDs (simulator.snmp.snmp_exporter_config), and
   pysnmp 7 tuned on the same plan (the alternative the choice was measured against),
   each repeated N times; CPU per poll of each (this process vs the exporter's /proc).
6. The simulator's own start-up at 2,000 cameras (simulator.bench).
7. Picture verdicts: `camwatch clarity --labels` on the shared labelled CCTV footage
   (../shared/fixtures/video/cctv/labels.csv; skipped when absent), and synthetic faults
   applied in memory to its ok stretches (not with --quick); tables on stderr.

Prints one JSON document and writes it to --out. Absolute times vary by machine;
compare ratios from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KINDS = ("host", "recording", "picture")
REAL_INTERVALS = {"host": 60.0, "recording": 300.0, "picture": 300.0}
QUICK_INTERVALS = {"host": 5.0, "recording": 1.0, "picture": 5.0}
CLK_TCK = os.sysconf("SC_CLK_TCK")
GOALS = {
    "lag_pct_max": 10.0,
    "rss_mb_max": 1024.0,
    # issue 12: the picture judge measures detail at five scales; the frame path may
    # cost up to 1.5x the bare decode + Laplacian (issue 7 had 1.3 for one scale)
    "frame_cost_ratio_max": 1.5,
    "host_cpu_ratio_blackbox_max": 2.0,
    "recording_32ch_ms_max": 30.0,
    "metrics_scrape_cpu_s_max": 0.3,
    "snmp_cpu_ratio_max": 2.0,
    "simulator_2000_start_s_max": 30.0,
    "simulator_2000_rss_mb_max": 1024.0,
}


# ---- /proc and sockets -------------------------------------------------------------------


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(
                f"/proc/{pid}/task/{task}/children", encoding="ascii"
            ) as fh:
                out += [int(c) for c in fh.read().split()]
    return out


def tree(pid: int) -> list[int]:
    """A process and all its descendants (camwatch run --workers N: parent + workers)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += _children(p)
    return found


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process tree: each live process's own, plus what the reaped
    ones (a worker that died and was restarted) left in their parents' cutime/cstime."""
    total = 0.0
    for p in tree(pid):
        with contextlib.suppress(OSError), open(f"/proc/{p}/stat", encoding="ascii") as fh:
            f = fh.read().rsplit(")", 1)[1].split()
            total += (int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])) / CLK_TCK
    return total


def tree_mem_mb(pid: int) -> tuple[float, float]:
    """(Σ VmRSS, Σ VmHWM) of a process tree in MiB: all workers together."""
    cur = peak = 0.0
    for p in tree(pid):
        with contextlib.suppress(OSError):
            c, h = mem_mb(p)
            cur, peak = cur + c, peak + h
    return cur, peak


def tree_pss_mb(pid: int) -> float:
    """Σ Pss of a process tree in MiB: the memory the tree uses, each shared page (the
    libraries every worker maps) counted once in all, not once per process."""
    total = 0.0
    for p in tree(pid):
        with contextlib.suppress(OSError), open(f"/proc/{p}/smaps_rollup", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) / 1024
    return total


def mem_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB."""
    cur = peak = 0.0
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                cur = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return cur, peak


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 30.0) -> bytes:
    req = urllib.request.Request(url, headers={"Accept-Encoding": "identity"})  # noqa: S310
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback only
        return bytes(resp.read())


def stop_process(proc: subprocess.Popen[Any], timeout: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def tail(path: Path, n: int = 1500) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-n:]
    except OSError:
        return ""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- machine -----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = platform.processor() or "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gb = 0.0
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 0
    return {
        "cpu_model": model,
        "cores": cores,
        "memory_gb": round(mem_gb, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


# ---- fleets --------------------------------------------------------------------------------

_SAMPLE = re.compile(
    r"^(camwatch_scheduler_checks_total|camwatch_scheduler_lag_seconds"
    r"|camwatch_scheduler_oldest_overdue_seconds|camwatch_scheduler_overdue_checks"
    r"|camwatch_probe_duration_seconds_sum|camwatch_probe_duration_seconds_count)"
    r'\{(?:check|driver)="([\w-]+)"\}\s+(\S+)'
)
_FAMILY = {
    "camwatch_scheduler_checks_total": "checks",
    "camwatch_scheduler_lag_seconds": "lag",
    "camwatch_scheduler_oldest_overdue_seconds": "overdue_s",
    "camwatch_scheduler_overdue_checks": "overdue_n",
    "camwatch_probe_duration_seconds_sum": "dur_sum",
    "camwatch_probe_duration_seconds_count": "dur_count",
}


def scrape(url: str) -> dict[str, dict[str, float]]:
    """{'checks': {kind: n}, 'lag': {kind: s}, 'overdue_s': {kind: s}, 'overdue_n':
    {kind: n}, 'dur_sum'/'dur_count': {driver: x}} from camwatch's /metrics."""
    out: dict[str, dict[str, float]] = {v: {} for v in _FAMILY.values()}
    for line in http_get(url).decode("utf-8", "replace").splitlines():
        m = _SAMPLE.match(line)
        if m:
            out[_FAMILY[m.group(1)]][m.group(2)] = float(m.group(3))
    return out


OUR_PACKAGES = ("camwatch", "probes", "exporters", "inventory", "reports", "alerts")


def _frame_parts(frame: str) -> tuple[str, str]:
    """('func (pkg/file.py)', 'pkg') of a py-spy frame 'func (pkg/file.py:123)'."""
    m = re.match(r"^(.*) \((.*?)(?::\d+)?\)$", frame)
    if m is None:
        return frame, "?"
    func, path = m.group(1), m.group(2)
    head = path.split("/", 1)[0]
    package = head if "/" in path else head.removesuffix(".py")
    return f"{func} ({path})", package


def summarise_profile(raw: Path, top: int = 12) -> dict[str, Any]:
    """From py-spy's raw (collapsed) stacks: where the CPU went by package (the leaf
    frame's top-level package: pyasn1, httpx, zeep, cv2 via probes.scoring...), the
    top leaf functions, and the inclusive share of camwatch's own functions."""
    by_pkg: dict[str, int] = {}
    self_n: dict[str, int] = {}
    ours: dict[str, int] = {}
    total = 0
    with contextlib.suppress(OSError), raw.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not count.isdigit() or not stack:
                continue
            n = int(count)
            total += n
            parts = [_frame_parts(f) for f in stack.split(";")]
            leaf, pkg = parts[-1]
            by_pkg[pkg] = by_pkg.get(pkg, 0) + n
            self_n[leaf] = self_n.get(leaf, 0) + n
            for func in {f for f, p in parts if p in OUR_PACKAGES}:
                ours[func] = ours.get(func, 0) + n

    def pct(d: dict[str, int], skip_over: float = 101.0) -> list[list[Any]]:
        if not total:
            return []
        rows = [(k, round(100 * v / total, 1)) for k, v in d.items()]
        rows = [r for r in rows if r[1] <= skip_over]
        return [list(r) for r in sorted(rows, key=lambda r: -r[1])[:top]]

    return {
        "samples": total,
        "self_pct_by_package": pct(by_pkg),
        "self_pct": pct(self_n),
        # frames every sample passes through (the CLI, the loop) say nothing: left out
        "camwatch_inclusive_pct": pct(ours, skip_over=90.0),
    }


class Fleet:
    """A generated campus served by the simulator in its own process."""

    def __init__(self, cameras: int, recorders: int, tmp: Path) -> None:
        from inventory.models import Protocol
        from probes.api import planned_checks
        from simulator.campus import generate_campus, to_inventory, write_inventory
        from simulator.testing import free_port_triplet

        self.cameras, self.recorders = cameras, recorders
        self.tmp = tmp
        self.base = f"127.{random.randint(60, 250)}"
        http_port, rtsp_port, snmp_port = free_port_triplet(f"{self.base}.0.1")
        campus = generate_campus(
            cameras,
            recorders,
            base=self.base,
            http_port=http_port,
            rtsp_port=rtsp_port,
            snmp_port=snmp_port,
        )
        self.inventory = tmp / "campus.yaml"
        write_inventory(campus, str(self.inventory))
        inv = to_inventory(campus)
        # the ONVIF device services of the IP cameras (what blackbox_exporter probes)
        self.onvif_urls = [
            f"http://{c.address.host}:{c.address.effective_onvif_port}{c.address.onvif_path}"
            for c in inv.cameras.values()
            if c.address is not None and Protocol.ONVIF in c.protocols
        ]
        self.workers: int | None = None
        self.plan_counts: dict[str, int] = {}
        for check, _dev in planned_checks(inv):
            self.plan_counts[check.value] = self.plan_counts.get(check.value, 0) + 1
        self.devices = len(campus.recorders) + len(campus.cameras)
        self.env = dict(os.environ)
        self.env.update(
            CAMWATCH_DEMO_NVR_PASSWORD=secrets.token_hex(8),
            CAMWATCH_DEMO_CAM_PASSWORD=secrets.token_hex(8),
            CAMWATCH_DEMO_SNMP_COMMUNITY=secrets.token_hex(6),
        )
        self.proc: subprocess.Popen[Any] | None = None

    def start(self) -> dict[str, Any]:
        ready = self.tmp / "sim-ready"
        out = self.tmp / "simulator.out"
        t0 = time.monotonic()
        with out.open("wb") as fh:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "camwatch",
                    "simulate",
                    "--inventory",
                    str(self.inventory),
                    "--rtsp",
                    "0",
                    "--ready-file",
                    str(ready),
                ],
                env=self.env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        while not ready.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"simulator exited early: {tail(out)}")
            if time.monotonic() - t0 > 300:
                raise RuntimeError("simulator not ready after 300 s")
            time.sleep(0.05)
        start_s = time.monotonic() - t0
        rss, peak = mem_mb(self.proc.pid)
        return {
            "cameras": self.cameras,
            "recorders": self.recorders,
            "start_s": round(start_s, 2),
            "rss_mb": round(rss, 1),
            "peak_rss_mb": round(peak, 1),
        }

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def phase(
        self,
        kinds: tuple[str, ...],
        intervals: dict[str, float],
        window: float,
        name: str,
        profile: Path | None = None,
        warmup: float = 0.0,
    ) -> dict[str, Any]:
        """Run `camwatch run` with only `kinds` enabled for `window` seconds after it is
        ready; its CPU, checks, lag and memory over that window."""
        port = free_port()
        env = dict(self.env)
        env.update(
            CAMWATCH_LISTEN=f"127.0.0.1:{port}",
            CAMWATCH_STORE_URL=f"sqlite:///{self.tmp / f'camwatch-{name}.db'}",
            CAMWATCH_LOG_LEVEL="WARNING",
            CAMWATCH_LOG_FILE=str(self.tmp / f"camwatch-{name}.log"),
        )
        for kind in KINDS:
            value = intervals[kind] if kind in kinds else 1e9
            env[f"CAMWATCH_{kind.upper()}_INTERVAL"] = repr(value)
        out = self.tmp / f"camwatch-{name}.out"
        base = f"http://127.0.0.1:{port}"
        t0 = time.monotonic()
        with out.open("wb") as fh:
            workers = ["--workers", str(self.workers)] if self.workers else []
            proc = subprocess.Popen(
                [sys.executable, "-m", "camwatch", "run", "--inventory", str(self.inventory),
                 *workers],
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"camwatch run exited early: {tail(out)}")
                if time.monotonic() - t0 > 300:
                    raise RuntimeError("camwatch run not ready after 300 s")
                try:
                    http_get(base + "/ready", timeout=5)
                    break
                except OSError:
                    time.sleep(0.1)
            startup_s = time.monotonic() - t0
            startup_cpu = tree_cpu_s(proc.pid)
            # after the first cycle: every device has had its first check (set-up done)
            time.sleep(warmup)
            ta = time.monotonic()
            m0 = scrape(base + "/metrics")
            tb = time.monotonic()
            spy = None
            if profile is not None:
                profile.mkdir(parents=True, exist_ok=True)
                spy = subprocess.Popen(
                    [
                        str(Path(sys.executable).parent / "py-spy"),
                        "record",
                        "--pid",
                        str(proc.pid),
                        "--duration",
                        str(int(window)),
                        "--rate",
                        "50",
                        "--nonblocking",
                        "--subprocesses",
                        "--format",
                        "raw",
                        "-o",
                        str(profile / f"{name}.txt"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            sim0 = cpu_s(self.proc.pid) if self.proc else 0.0
            c0, tc0 = tree_cpu_s(proc.pid), time.monotonic()
            wait = window
            while True:
                time.sleep(wait)
                c1, tc1 = tree_cpu_s(proc.pid), time.monotonic()
                sim1 = cpu_s(self.proc.pid) if self.proc else 0.0
                # the scrape's CPU is the serving process's own (the workers go on
                # probing meanwhile)
                s1 = cpu_s(proc.pid)
                td = time.monotonic()
                m1 = scrape(base + "/metrics")
                te = time.monotonic()
                s2 = cpu_s(proc.pid)
                # a one-kind phase needs at least one finished check to divide by
                done = sum(m1["checks"].get(k, 0.0) - m0["checks"].get(k, 0.0) for k in kinds)
                if len(kinds) > 1 or done > 0 or te - tc0 > 3 * window:
                    break
                wait = 2.0
            rss, peak = tree_mem_mb(proc.pid)
            pss = tree_pss_mb(proc.pid)
            procs = len(tree(proc.pid))
            if spy is not None:
                spy.wait(timeout=60)
        finally:
            stop_process(proc)
        # Counters are read during the scrapes: take the rate between the scrapes'
        # midpoints, and the CPU (which excludes the first scrape) over its own span.
        span = (td + te) / 2 - (ta + tb) / 2
        cpu_rate = (c1 - c0) / (tc1 - tc0)
        res: dict[str, Any] = {
            "phase": name,
            "startup_s": round(startup_s, 2),
            "startup_cpu_s": round(startup_cpu, 2),
            "warmup_s": round(warmup, 1),
            "processes": procs,
            "pss_mb": round(pss, 1),
            "window_s": round(tc1 - tc0, 2),
            "cpu_s": round(c1 - c0, 3),
            "cpu_util_pct": round(100 * cpu_rate, 1),
            "simulator_cpu_util_pct": round(100 * (sim1 - sim0) / (tc1 - tc0), 1),
            "scrape_s": round(te - td, 3),
            "scrape_cpu_s": round(s2 - s1, 3),
            "rss_mb": round(rss, 1),
            "peak_rss_mb": round(peak, 1),
            "checks": {},
            "checks_per_s": {},
            "expected_per_s": {},
            "lag_s": {},
            "lag_pct": {},
            "started_lag_s": {},
            "oldest_overdue_s": {},
            "overdue_checks": {},
            "cpu_s_per_1000_checks": None,
            "keeps_up": {},
            "probe_wall_s": {},
        }
        for driver, count in m1["dur_count"].items():
            dn = count - m0["dur_count"].get(driver, 0.0)
            if dn > 0:
                ds = m1["dur_sum"].get(driver, 0.0) - m0["dur_sum"].get(driver, 0.0)
                res["probe_wall_s"][driver] = round(ds / dn, 3)
        if profile is not None:
            res["profile"] = summarise_profile(profile / f"{name}.txt")
        total_rate = 0.0
        for kind in kinds:
            n = m1["checks"].get(kind, 0.0) - m0["checks"].get(kind, 0.0)
            rate = n / span if span > 0 else 0.0
            total_rate += rate
            res["checks"][kind] = int(n)
            res["checks_per_s"][kind] = round(rate, 2)
            res["expected_per_s"][kind] = round(self.planned(kind) / intervals[kind], 2)
            # The lag gauge only sees runs that started; under overload many due runs
            # never start, and the oldest of those is how far behind it really is.
            started_lag = m1["lag"].get(kind, 0.0)
            oldest_overdue = m1["overdue_s"].get(kind, 0.0)
            lag = max(started_lag, oldest_overdue)
            res["started_lag_s"][kind] = round(started_lag, 3)
            res["oldest_overdue_s"][kind] = round(oldest_overdue, 3)
            res["overdue_checks"][kind] = int(m1["overdue_n"].get(kind, 0.0))
            res["lag_s"][kind] = round(lag, 3)
            res["lag_pct"][kind] = round(100 * lag / intervals[kind], 2)
            # A scheduler that runs fewer checks than are due falls further behind
            # every cycle, whatever lag a short window shows. First runs are spread at
            # random, so a window's count varies by about its square root: allow that.
            due = res["expected_per_s"][kind] * span
            res["keeps_up"][kind] = n >= 0.9 * due - 2 * math.sqrt(due)
        if len(kinds) == 1 and total_rate > 0:
            res["cpu_s_per_1000_checks"] = round(1000 * cpu_rate / total_rate, 3)
            sim_rate = (sim1 - sim0) / (tc1 - tc0)
            res["simulator_cpu_s_per_1000_checks"] = round(1000 * sim_rate / total_rate, 3)
        return res

    def planned(self, kind: str) -> int:
        """How many checks of a kind one cycle has (probes.api.planned_checks)."""
        return self.plan_counts.get(kind, 0)


def run_fleet(
    cameras: int,
    recorders: int,
    window: float,
    intervals: dict[str, float],
    parallel: bool = False,
    profile: Path | None = None,
    *,
    first_cycle: bool = True,
    workers: int | None = None,
    blackbox_probes: int = 0,
) -> dict[str, Any]:
    """One fleet: the simulator once, then a phase per check kind and a combined one,
    each measured for `window` seconds after its first cycle (`first_cycle`: wait one
    interval, so every device has had its first check and its set-up), then
    blackbox_exporter probing the same ONVIF cameras. `parallel` runs the four phases
    at once (--quick only: it proves the harness in a quarter of the time, but the
    phases then compete for the CPU)."""
    warm = {k: (intervals[k] + 2.0 if first_cycle else 0.0) for k in KINDS}
    with tempfile.TemporaryDirectory(prefix="camwatch-bench-") as tmpdir:
        fleet = Fleet(cameras, recorders, Path(tmpdir))
        fleet.workers = workers
        log(f"fleet {cameras}:{recorders}: starting the simulator ({fleet.devices} devices)")
        sim = fleet.start()
        log(f"simulator ready in {sim['start_s']} s, RSS {sim['rss_mb']} MiB")
        try:
            phases: dict[str, dict[str, Any]] = {}
            blackbox: dict[str, Any] | None = None
            jobs: list[tuple[str, tuple[str, ...]]] = [(k, (k,)) for k in KINDS]
            jobs.append(("combined", KINDS))
            if parallel:
                with ThreadPoolExecutor(len(jobs)) as pool:
                    futs = {n: pool.submit(fleet.phase, ks, intervals, window, n) for n, ks in jobs}
                    phases = {n: f.result() for n, f in futs.items()}
            else:
                for n, ks in jobs:
                    where = profile / f"{cameras}-{recorders}" if profile else None
                    wait = max(warm[k] for k in ks)
                    log(f"  {n}: first cycle {wait:g} s, then {window:g} s measured")
                    phases[n] = fleet.phase(ks, intervals, window, n, where, warmup=wait)
                    if n == "host" and blackbox_probes and fleet.onvif_urls:
                        # right after camwatch's host checks, on the same cameras under
                        # the same load: side by side, not twenty minutes apart
                        # paced at the rate camwatch's host checks just ran
                        blackbox = blackbox_cost(
                            fleet.onvif_urls, blackbox_probes, Path(tmpdir),
                            rate=phases[n]["checks_per_s"].get("host"), seconds=window,
                        )
                        log(f"  blackbox_exporter: {blackbox}")
                    log(
                        f"  {n}: {phases[n]['checks_per_s']} checks/s, "
                        f"{phases[n]['cpu_s_per_1000_checks']} CPU s/1000 checks, "
                        f"lag {phases[n]['lag_pct']} %"
                    )
            combined = phases.pop("combined")
            log(f"  combined: lag {combined['lag_pct']} %, peak RSS {combined['peak_rss_mb']} MiB")
            sim_rss, sim_peak = mem_mb(fleet.proc.pid) if fleet.proc else (0.0, 0.0)
            if parallel and blackbox_probes and fleet.onvif_urls:
                blackbox = blackbox_cost(
                    fleet.onvif_urls, blackbox_probes, Path(tmpdir),
                    rate=phases["host"]["checks_per_s"].get("host"), seconds=window,
                )
        finally:
            fleet.stop()
    lag_pct = max(combined["lag_pct"].values(), default=0.0)
    # What the intervals ask of camwatch's CPU: due checks per second x CPU per check
    # (robust to other load on the machine, unlike the checks a short window achieved).
    cores = sum(
        combined["expected_per_s"][k] * (phases[k]["cpu_s_per_1000_checks"] or 0.0) / 1000
        for k in KINDS
    )
    host_ms = phases["host"]["cpu_s_per_1000_checks"]
    bb_ms = blackbox["ms_per_probe"] if blackbox else None
    bb_flat_ms = (blackbox.get("flat_out") or {}).get("ms_per_probe") if blackbox else None
    return {
        "cameras": cameras,
        "recorders": recorders,
        "devices": fleet.devices,
        "workers": workers,
        "intervals_s": intervals,
        "blackbox": blackbox,
        "host_check_cpu_ms": host_ms,
        "host_cpu_ratio_blackbox": round(host_ms / bb_ms, 3) if host_ms and bb_ms else None,
        # against blackbox asked flat out, 4 at a time: a harder figure than users see
        "host_cpu_ratio_blackbox_flat_out": (
            round(host_ms / bb_flat_ms, 3) if host_ms and bb_flat_ms else None
        ),
        "window_s": window,
        "lag_pct": lag_pct,
        "lag_s": combined["lag_s"],
        "started_lag_s": combined["started_lag_s"],
        "oldest_overdue_s": combined["oldest_overdue_s"],
        "overdue_checks": combined["overdue_checks"],
        "rss_mb": combined["peak_rss_mb"],
        "pss_mb": combined["pss_mb"],
        "cpu_s_per_1000_checks": {k: phases[k]["cpu_s_per_1000_checks"] for k in KINDS},
        "checks_per_s": combined["checks_per_s"],
        "expected_checks_per_s": combined["expected_per_s"],
        "checks_per_s_alone": {k: phases[k]["checks_per_s"][k] for k in KINDS},
        "cpu_cores_needed": round(cores, 2),
        "keeps_up": combined["keeps_up"],
        "keeps_up_alone": {k: phases[k]["keeps_up"][k] for k in KINDS},
        "probe_wall_s": combined["probe_wall_s"],
        "camwatch_cpu_util_pct": combined["cpu_util_pct"],
        "simulator_cpu_util_pct": combined["simulator_cpu_util_pct"],
        "metrics_scrape_s": combined["scrape_s"],
        "metrics_scrape_cpu_s": combined["scrape_cpu_s"],
        "camwatch_startup_s": combined["startup_s"],
        "simulator": {
            **sim,
            "rss_after_mb": round(sim_rss, 1),
            "peak_rss_after_mb": round(sim_peak, 1),
        },
        "phases": [*phases.values(), combined],
    }


def run_steady(cameras: int, recorders: int, interval: float, window: float) -> dict[str, Any]:
    """CPU per 1,000 checks once every device has had its first check (per-device
    set-up such as ONVIF discovery done): each kind alone at a short interval, measured
    after one interval of warm-up."""
    steady = dict.fromkeys(KINDS, interval)
    with tempfile.TemporaryDirectory(prefix="camwatch-bench-steady-") as tmpdir:
        fleet = Fleet(cameras, recorders, Path(tmpdir))
        log(f"steady state {cameras}:{recorders} at {interval:g} s intervals")
        fleet.start()
        try:
            phases = {
                k: fleet.phase((k,), steady, window, f"steady-{k}", warmup=interval + 2)
                for k in KINDS
            }
        finally:
            fleet.stop()
    out = {
        "cameras": cameras,
        "recorders": recorders,
        "interval_s": interval,
        "window_s": window,
        "cpu_s_per_1000_checks": {k: phases[k]["cpu_s_per_1000_checks"] for k in KINDS},
        "checks_per_s": {k: phases[k]["checks_per_s"][k] for k in KINDS},
        "keeps_up": {k: phases[k]["keeps_up"][k] for k in KINDS},
        "phases": list(phases.values()),
    }
    log(f"  steady CPU s/1000 checks: {out['cpu_s_per_1000_checks']}")
    return out


# ---- recording check of a 32-channel recorder, by vendor -------------------------------------


def recording_32_bench(rounds: int) -> dict[str, Any]:
    """CPU per recording check of 32-channel recorders of each kind, measured in this
    process (probes.api.probe, as the service calls it, with the service's HTTP pool)
    against the simulator in its own process, after two checks of set-up."""
    with tempfile.TemporaryDirectory(prefix="camwatch-bench-rec32-") as tmpdir:
        fleet = Fleet(32 * 8, 8, Path(tmpdir))
        fleet.start()
        saved = {k: os.environ.get(k) for k in fleet.env if k.startswith("CAMWATCH_DEMO_")}
        os.environ.update({k: fleet.env[k] for k in saved})
        try:
            return asyncio.run(_recording_32(fleet.inventory, rounds))
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            fleet.stop()


async def _recording_32(path: Path, rounds: int) -> dict[str, Any]:
    import probes.facts as facts
    from camwatch.secrets import SecretStore
    from inventory.loader import load_inventory
    from probes.api import prepare, probe
    from probes.context import ProbeContext
    from probes.drivers.http import HttpPool
    from probes.result import CheckKind

    inv = load_inventory([path])
    ctx = ProbeContext(inventory=inv, secrets=SecretStore())
    ctx.http_pool = HttpPool()
    await prepare(inv)
    kinds: dict[str, list[str]] = {}
    for rec in inv.recorders.values():
        kinds.setdefault(f"{rec.kind.value}-{rec.vendor.value}", []).append(rec.id)
    # A Hikvision or Dahua recorder's day is searched in full once per FULL_SEARCH_EVERY and
    # from the newest footage it knew in between: at the real recording interval an
    # hour has one full check and the rest lean ones. Both are measured, and the
    # figure is their average over that hour.
    every = facts.FULL_SEARCH_EVERY
    per_full = max(1, round(every / REAL_INTERVALS["recording"]))
    out: dict[str, Any] = {"channels": 32, "rounds": rounds, "checks_per_full_search": per_full}

    async def measure(recs: list[str], statuses: set[str]) -> float:
        t0 = time.process_time()
        for _ in range(rounds):
            for r in recs:
                res = await probe(CheckKind.RECORDING, r, ctx)
                statuses.add(f"{res[0].status.value}:{res[0].driver}")
        return 1000 * (time.process_time() - t0) / (rounds * len(recs))

    try:
        for label, recs in sorted(kinds.items()):
            for _ in range(2):  # set-up: service addresses, oldest footage, digest
                for r in recs:
                    await probe(CheckKind.RECORDING, r, ctx)
            statuses: set[str] = set()
            lean = await measure(recs, statuses)
            facts.FULL_SEARCH_EVERY = 0.0  # every check a full search
            try:
                full = await measure(recs, statuses)
            finally:
                facts.FULL_SEARCH_EVERY = every
            ms = (full + (per_full - 1) * lean) / per_full
            out[label] = {"cpu_ms_per_check": round(ms, 2), "full_ms": round(full, 2),
                          "lean_ms": round(lean, 2), "results": sorted(statuses)}
    finally:
        await ctx.http_pool.aclose()
    out["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    return out


# ---- blackbox_exporter on the same ONVIF cameras --------------------------------------------

# What users run instead for "is the camera up": blackbox_exporter's http prober POSTing
# the ONVIF GetSystemDateAndTime (no login), which every ONVIF device answers.
ONVIF_TIME_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
    '<tds:GetSystemDateAndTime xmlns:tds="http://www.onvif.org/ver10/device/wsdl"/>'
    "</s:Body></s:Envelope>"
)


def blackbox_config() -> str:
    return (
        "modules:\n"
        "  onvif_time:\n"
        "    prober: http\n"
        "    timeout: 5s\n"
        "    http:\n"
        "      method: POST\n"
        "      preferred_ip_protocol: ip4\n"
        "      valid_status_codes: [200]\n"
        "      headers:\n"
        '        Content-Type: "application/soap+xml; charset=utf-8"\n'
        f"      body: '{ONVIF_TIME_ENVELOPE}'\n"
        "      fail_if_body_not_matches_regexp: ['UTCDateTime']\n"
    )


def blackbox_cost(
    urls: list[str], n: int, tmp: Path, rate: float | None = None, seconds: float = 30.0
) -> dict[str, Any]:
    """CPU per probe of Debian's prometheus-blackbox-exporter (from its /proc) asked
    through its own /probe endpoint, as Prometheus asks it, over the fleet's ONVIF
    cameras; and how many succeeded.

    Two figures: `n` probes flat out (4 at a time), and — with `rate` — probes paced at
    `rate` per second for `seconds`, the way Prometheus asks it when every camera is a
    target scraped once per interval (scrapes spread over the interval). The paced one
    is the side-by-side figure: camwatch's host checks are measured at the rate its
    scheduler runs them, and a process woken for each probe pays for every wake-up (a
    cold cache, the runtime's scheduling) that a flat-out loop shares between probes.
    """
    exporter = shutil.which("prometheus-blackbox-exporter")
    if exporter is None:
        raise RuntimeError("prometheus-blackbox-exporter is not installed (scripts/setup.sh)")
    conf = tmp / "blackbox.yml"
    conf.write_text(blackbox_config(), encoding="utf-8")
    web = free_port()
    proc = subprocess.Popen(
        [exporter, f"--config.file={conf}", f"--web.listen-address=127.0.0.1:{web}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    from urllib.parse import quote

    def probe(url: str) -> bool:
        body = http_get(
            f"http://127.0.0.1:{web}/probe?module=onvif_time&target={quote(url, safe='')}",
            timeout=10,
        )
        return b"probe_success 1" in body

    try:
        t0 = time.monotonic()
        while True:
            try:
                probe(urls[0])
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() - t0 > 30:
                    raise RuntimeError("prometheus-blackbox-exporter did not come up") from None
                time.sleep(0.1)
        picks = [urls[i % len(urls)] for i in range(n)]
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(probe, picks[:50]))  # warm-up
            c0, w0 = cpu_s(proc.pid), time.monotonic()
            ok = sum(pool.map(probe, picks))
            c1, w1 = cpu_s(proc.pid), time.monotonic()
        flat: dict[str, Any] = {
            "probes": n,
            "succeeded": ok,
            "ms_per_probe": round(1000 * (c1 - c0) / n, 3),
            "probes_per_s": round(n / (w1 - w0), 1),
        }
        out = (
            {**_paced_probes(probe, urls, rate, seconds, proc.pid), "flat_out": flat}
            if rate else flat
        )
    finally:
        stop_process(proc)
    out["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    return out


def _paced_probes(
    probe: Callable[[str], bool], urls: list[str], rate: float, seconds: float, pid: int
) -> dict[str, Any]:
    """`probe` started at `rate` per second for `seconds` (at least 20 probes, and on
    until 5 clock ticks of the exporter's CPU have passed, at most 60 s more): the
    exporter's CPU per probe."""
    done = 0
    with ThreadPoolExecutor(16) as pool:
        futures = []
        c0, w0 = cpu_s(pid), time.monotonic()
        while True:
            due = w0 + done / rate
            now = time.monotonic()
            if done >= max(20, rate * seconds) and (
                cpu_s(pid) - c0 >= 5 / CLK_TCK or now - w0 > seconds + 60
            ):
                break
            if due > now:
                time.sleep(due - now)
            futures.append(pool.submit(probe, urls[done % len(urls)]))
            done += 1
        ok = sum(f.result() for f in futures)
        c1, w1 = cpu_s(pid), time.monotonic()
    return {
        "probes": done,
        "succeeded": ok,
        "ms_per_probe": round(1000 * (c1 - c0) / done, 3),
        "probes_per_s": round(done / (w1 - w0), 1),
        "paced_at_per_s": round(rate, 2),
    }


# ---- frame path ------------------------------------------------------------------------------


def floor_cost(jpeg: bytes, n: int) -> float:
    """CPU seconds per frame of the bare floor: grey decode + Laplacian meanStdDev."""
    import cv2
    import numpy as np

    buf = np.frombuffer(jpeg, np.uint8)
    t0 = time.process_time()
    for _ in range(n):
        g = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
        assert g is not None
        cv2.meanStdDev(cv2.Laplacian(g, cv2.CV_64F))
    return (time.process_time() - t0) / n


async def camwatch_frame_cost(url: str, password: str, n: int) -> tuple[float, bytes]:
    """CPU seconds per frame of camwatch's path: fetch (digest auth), decode, score, judge
    (the scoring in a worker thread as the picture probe does). Returns (cost, jpeg)."""
    from probes.api import ProbeConfig
    from probes.drivers.http import HttpLimits, fetch_bytes
    from probes.scoring import judge, score_bytes

    cfg = ProbeConfig()
    limits = HttpLimits(
        timeout=cfg.timeout,
        max_body_bytes=cfg.max_body_bytes,
        allowed_hosts=frozenset({"127.0.0.1"}),
        expect_content=("image/",),
    )

    async def one() -> bytes:
        data = await fetch_bytes(url, ("admin", password), limits)
        m = await asyncio.to_thread(score_bytes, data, cfg.max_frame_pixels)
        judge(m, None)
        return data

    jpeg = await one()  # warm-up: imports, first connection
    t0 = time.process_time()
    for _ in range(n):
        await one()
    return (time.process_time() - t0) / n, jpeg


def frame_bench(n: int) -> dict[str, Any]:
    port = free_port()
    password = secrets.token_hex(8)
    with tempfile.TemporaryDirectory(prefix="camwatch-bench-frames-") as tmpdir:
        ready = Path(tmpdir) / "ready"
        env = dict(os.environ, BENCH_FRAME_PASSWORD=password)
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "frameserver.py"),
                "--port",
                str(port),
                "--ready-file",
                str(ready),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        try:
            t0 = time.monotonic()
            while not ready.exists():
                if proc.poll() is not None:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"frame server exited early: {err[-1500:]}")
                if time.monotonic() - t0 > 60:
                    raise RuntimeError("frame server not ready after 60 s")
                time.sleep(0.05)
            out: dict[str, Any] = {}
            for name in ("1080p", "4k"):
                url = f"http://127.0.0.1:{port}/{name}.jpg"
                cost, jpeg = asyncio.run(camwatch_frame_cost(url, password, n))
                floor = floor_cost(jpeg, n)
                out[name] = {
                    "jpeg_kb": round(len(jpeg) / 1024, 1),
                    "frames": n,
                    "camwatch_ms": round(cost * 1000, 2),
                    "floor_ms": round(floor * 1000, 2),
                    "ratio": round(cost / floor, 3) if floor > 0 else None,
                }
                del jpeg
        finally:
            stop_process(proc)
    return out


# ---- picture verdicts on real footage -------------------------------------------------------

SHARED_LABELS = ROOT.parent / "shared" / "fixtures" / "video" / "cctv" / "labels.csv"


def picture_bench(quick: bool, labels: Path = SHARED_LABELS) -> dict[str, Any] | None:
    """The picture judge on the shared labelled CCTV footage (`camwatch clarity
    --labels`): false alarms in ok stretches, caught fault samples and the delay of the
    first; with synthetic faults applied in memory to the ok stretches (skipped with
    --quick). None when the footage is not beside the project."""
    from camwatch.picture_eval import evaluate, synthetic_faults, totals

    if not labels.is_file():
        log(f"picture verdicts: {labels} not present, skipped")
        return None
    t0 = time.monotonic()
    # --quick proves the harness on the stills and the shortest clip
    results = evaluate(labels, select=(lambda st: st.still or "ladder" in st.file)
                       if quick else None)
    t = totals(results)
    log("picture verdicts on the labelled footage (camwatch clarity --labels):")
    log(f"  {'file':38s} {'stretch':>11s} {'expect':22s} {'samples':>7s} {'FA':>4s} "
        f"{'caught':>9s} {'first s':>7s}")
    for r in results:
        st = r.stretch
        span = "still" if st.still else f"{st.start_s:g}-{st.end_s:g}"
        caught = "-" if st.ok else f"{r.caught}/{r.samples}"
        first = "-" if r.first_delay_s is None else f"{r.first_delay_s:.2f}"
        fa = str(r.false_alarms) if st.ok else "-"
        log(f"  {st.file[:38]:38s} {span:>11s} {'|'.join(st.expect)[:22]:22s} "
            f"{r.samples:>7d} {fa:>4s} {caught:>9s} {first:>7s}")
    log(f"  totals: {t.to_json()}")
    out: dict[str, Any] = {"labels": [r.to_json() for r in results], "totals": t.to_json()}
    if not quick:
        syn = synthetic_faults(labels)
        agg: dict[str, dict[str, Any]] = {}
        for x in syn:
            if not x.after:
                continue
            a = agg.setdefault(x.fault, {"sources": 0, "before": 0, "false_alarms": 0,
                                         "after": 0, "caught": 0, "worst_first_s": 0.0,
                                         "never": 0})
            a["sources"] += 1
            a["before"] += x.before
            a["false_alarms"] += x.false_alarms
            a["after"] += x.after
            a["caught"] += x.caught
            if x.first_delay_s is None:
                a["never"] += 1
            else:
                a["worst_first_s"] = round(max(a["worst_first_s"], x.first_delay_s), 3)
        log("synthetic faults applied in memory to the ok stretches:")
        for name, a in agg.items():
            share = a["caught"] / max(1, a["after"])
            a["caught_share"] = round(share, 4)
            log(f"  {name:16s} sources {a['sources']:3d}  false alarms before "
                f"{a['false_alarms']}/{a['before']}  caught {a['caught']}/{a['after']} "
                f"({share:.1%})  first after at most {a['worst_first_s']} s"
                + (f"  never caught on {a['never']}" if a["never"] else ""))
        out["synthetic"] = agg
    out["elapsed_s"] = round(time.monotonic() - t0, 1)
    return out


# ---- SNMP ----------------------------------------------------------------------------------


@contextlib.contextmanager
def snmpd_agent(tmp: Path, community: str) -> Iterator[int]:
    snmpd = shutil.which("snmpd") or "/usr/sbin/snmpd"
    port = free_port(socket.SOCK_DGRAM)
    conf = tmp / "snmpd.conf"
    conf.write_text(
        f"agentAddress udp:127.0.0.1:{port}\n"
        f"rocommunity {community} 127.0.0.1\n"
        "sysName bench-nvr\nsysLocation bench\nsysContact bench\n",
        encoding="utf-8",
    )
    conf.chmod(0o600)
    proc = subprocess.Popen(
        [snmpd, "-f", "-Lo", "-C", "-c", str(conf), "-p", str(tmp / "snmpd.pid")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, MIBS=""),
    )
    try:
        yield port
    finally:
        stop_process(proc)


async def camwatch_snmp_cost(port: int, community: str, n: int) -> tuple[float, int]:
    """CPU seconds per read_recorder poll (generic plan) in this process (its worker
    threads included); storage rows seen."""
    from probes.drivers.snmp import SnmpTarget, V2c, close_sessions, read_recorder

    target = SnmpTarget("127.0.0.1", port, V2c(community), timeout=2.0, retries=1)
    reading = None
    for _ in range(50):  # the agent needs a moment
        reading = await read_recorder(target, "generic")
        if reading.ok:
            break
        await asyncio.sleep(0.1)
    if reading is None or not reading.ok:
        raise RuntimeError(f"snmpd did not answer: {reading.error if reading else None}")
    rows = len(reading.storage)
    t0 = time.process_time()
    for _ in range(n):
        r = await read_recorder(target, "generic")
        if not r.ok:
            raise RuntimeError(f"SNMP poll failed: {r.error}")
    cost = (time.process_time() - t0) / n
    close_sessions()
    return cost, rows


async def pysnmp_cost(port: int, community: str, n: int) -> float:
    """The alternative measured for the choice (issue 16): pysnmp 7 tuned — one engine,
    auth and transport objects made once, no MIB lookups, the same plan (one GET of the
    system group, the columns side by side with GETBULK) — CPU seconds per poll."""
    from pyasn1.type.univ import Null
    from pysnmp.hlapi.v3arch import asyncio as h

    from probes.drivers.snmp import HR_STORAGE_COLUMNS, SYSTEM_OIDS

    engine = h.SnmpEngine()
    auth = h.CommunityData(community, mpModel=1)  # noqa: S508 - the bench's own agent
    transport = await h.UdpTransportTarget.create(("127.0.0.1", port), timeout=2, retries=1)
    ctx = h.ContextData()
    scalars = [h.ObjectType(h.ObjectIdentity(o)) for o in SYSTEM_OIDS]

    async def one() -> int:
        await h.get_cmd(engine, auth, transport, ctx, *scalars, lookupMib=False)
        cursors = {c: c for c in HR_STORAGE_COLUMNS}
        rows = 0
        while cursors:
            active = list(cursors)
            _e, _s, _i, vbs = await h.bulk_cmd(
                engine, auth, transport, ctx, 0, max(2, 60 // len(active)),
                *[h.ObjectType(h.ObjectIdentity(cursors[b]), Null("")) for b in active],
                lookupMib=False,
            )
            if not vbs:
                break
            done = set()
            for i, (oid, _val) in enumerate(vbs):
                base = active[i % len(active)]
                name = str(oid)
                if base in done or not name.startswith(base + "."):
                    done.add(base)
                    continue
                cursors[base] = name
                rows += 1
            for b in done:
                cursors.pop(b, None)
        return rows

    await one()
    t0 = time.process_time()
    for _ in range(n):
        await one()
    cost = (time.process_time() - t0) / n
    engine.close_dispatcher()
    return cost


def exporter_snmp_cost(port: int, community: str, n: int, tmp: Path) -> tuple[float, float]:
    """CPU seconds per scrape of prometheus-snmp-exporter walking the same OIDs; and
    the number of samples it returned."""
    from simulator.snmp import snmp_exporter_config

    exporter = shutil.which("prometheus-snmp-exporter")
    if exporter is None:
        raise RuntimeError("prometheus-snmp-exporter is not installed (scripts/setup.sh)")
    conf = tmp / "snmp.yml"
    conf.write_text(snmp_exporter_config("generic", community), encoding="utf-8")
    conf.chmod(0o600)
    web = free_port()
    proc = subprocess.Popen(
        [exporter, f"--config.file={conf}", f"--web.listen-address=127.0.0.1:{web}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{web}/snmp?module=camwatch&target=127.0.0.1:{port}"
    try:
        t0 = time.monotonic()
        while True:
            try:
                body = http_get(url, timeout=10)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() - t0 > 30:
                    raise RuntimeError("prometheus-snmp-exporter did not come up") from None
                time.sleep(0.1)
        samples = sum(1 for line in body.decode().splitlines() if line.startswith("w_"))
        for _ in range(3):
            http_get(url)
        # The kernel counts a process' CPU in clock ticks (10 ms): keep scraping past `n`
        # until enough ticks have passed to mean something (a quick run's 10 scrapes
        # can cost less than one tick, which read as 0 CPU and an undefined ratio).
        c0 = cpu_s(proc.pid)
        done, t0 = 0, time.monotonic()
        while done < n or (cpu_s(proc.pid) - c0 < 5 / CLK_TCK and time.monotonic() - t0 < 60):
            http_get(url)
            done += 1
        c1 = cpu_s(proc.pid)
    finally:
        stop_process(proc)
    return (c1 - c0) / done, samples


def snmp_bench(n: int) -> dict[str, Any]:
    community = "b" + secrets.token_hex(6)
    with tempfile.TemporaryDirectory(prefix="camwatch-bench-snmp-") as tmpdir:
        tmp = Path(tmpdir)
        with snmpd_agent(tmp, community) as port:
            cw, rows = asyncio.run(camwatch_snmp_cost(port, community, n))
            # the alternative, on the same agent in the same run
            alt = asyncio.run(pysnmp_cost(port, community, n))
            ex, samples = exporter_snmp_cost(port, community, n, tmp)
    return {
        "agent": "net-snmp snmpd (generic plan: system group + hrStorageTable)",
        "client": "ezsnmp (Net-SNMP's library), worker threads",
        "polls": n,
        "storage_rows": rows,
        "exporter_walk_samples": samples,
        "camwatch_ms_per_poll": round(cw * 1000, 3),
        "exporter_ms_per_poll": round(ex * 1000, 3),
        "ratio": round(cw / ex, 3) if ex > 0 else None,
        "pysnmp_tuned_ms_per_poll": round(alt * 1000, 3),
        "ratio_pysnmp_tuned": round(alt / ex, 3) if ex > 0 else None,
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


# ---- main ---------------------------------------------------------------------------------


def parse_fleets(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        cams, _, recs = part.strip().partition(":")
        out.append((int(cams), int(recs or max(1, int(cams) // 20))))
    return out


def goals(summary: dict[str, Any]) -> dict[str, Any]:
    biggest = max(summary["fleets"], key=lambda f: f["cameras"], default=None)
    sim2000 = summary.get("simulator_2000") or {}
    out: dict[str, Any] = {}
    if biggest is not None:
        # lag_pct counts the oldest run due but not started too; a scheduler running
        # fewer checks than fall due has not met the goal whatever the gauge says
        lag_ok = biggest["lag_pct"] < GOALS["lag_pct_max"]
        out[f"lag_under_10pct_at_{biggest['cameras']}"] = lag_ok and all(
            biggest["keeps_up"].values()
        )
        out[f"rss_under_1gb_at_{biggest['cameras']}"] = biggest["rss_mb"] < GOALS["rss_mb_max"]
        scrape = biggest["metrics_scrape_cpu_s"]
        out[f"scrape_cpu_le_0.3s_at_{biggest['cameras']}"] = (
            scrape <= GOALS["metrics_scrape_cpu_s_max"]
        )
        ratio = biggest.get("host_cpu_ratio_blackbox")
        if ratio is not None:
            out["host_cpu_le_2x_blackbox"] = ratio <= GOALS["host_cpu_ratio_blackbox_max"]
    rec32 = summary.get("recording_32ch") or {}
    worst = max((v["cpu_ms_per_check"] for v in rec32.values() if isinstance(v, dict)),
                default=None)
    if worst is not None:
        out["recording_32ch_le_30ms"] = worst <= GOALS["recording_32ch_ms_max"]
    for key in ("frame_cost_ratio_1080p", "frame_cost_ratio_4k"):
        out[f"{key}_le_1.5"] = summary[key] <= GOALS["frame_cost_ratio_max"]
    pictures = summary.get("picture_verdicts")
    if pictures:
        t = pictures["totals"]
        share = t["caught_share"]
        out["picture_labels_no_false_alarm"] = t["false_alarms"] == 0 and t["errors"] == 0
        out["picture_labels_caught_95pct"] = share is not None and share >= 0.95
        delay = t["worst_first_delay_s"]
        out["picture_labels_first_within_1s"] = (
            delay is not None and delay <= 1.0 and t["missed_onsets"] == 0
        )
    out["snmp_cpu_ratio_le_2"] = summary["snmp_cpu_ratio"] <= GOALS["snmp_cpu_ratio_max"]
    if sim2000:
        out["simulator_2000_start_under_30s"] = (
            sim2000["start_s"] < GOALS["simulator_2000_start_s_max"]
        )
        out["simulator_2000_rss_under_1gb"] = (
            sim2000["rss_peak_mb"] < GOALS["simulator_2000_rss_mb_max"]
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="one tiny fleet, short windows, few frames (CI: proves the harness)",
    )
    ap.add_argument(
        "--fleets", default=None, help="CAMERAS:RECORDERS,... (default 1000:50,5000:250,10000:500)"
    )
    ap.add_argument("--window", type=float, default=None, help="seconds measured per phase")
    ap.add_argument("--frames", type=int, default=None, help="frames per size")
    ap.add_argument(
        "--polls",
        type=int,
        default=None,
        help="SNMP polls per client (default 1000: the exporter's CPU is read in 10 ms ticks)",
    )
    ap.add_argument(
        "--sim-cameras",
        type=int,
        default=None,
        help="cameras for the simulator start-up figure (default 2000; 0: skip)",
    )
    ap.add_argument(
        "--intervals",
        default=None,
        help="KIND:SECONDS,... overriding the real intervals (host:60,recording:300,picture:300)",
    )
    ap.add_argument(
        "--steady",
        default=None,
        metavar="CAMERAS:RECORDERS",
        help="also measure steady-state CPU per check on this fleet at 10 s intervals (+~2 min)",
    )
    ap.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="record each phase of camwatch with py-spy (raw stacks into DIR, top in JSON)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=None,
        help="camwatch run --workers N (default: camwatch's own default, the machine's cores)",
    )
    ap.add_argument(
        "--blackbox-probes",
        type=int,
        default=None,
        help="blackbox_exporter probes of the fleet's ONVIF cameras (default 2000; 0 skips)",
    )
    ap.add_argument(
        "--no-first-cycle",
        action="store_true",
        help="measure from the start instead of after one interval (first cycle) per phase",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    a = ap.parse_args(argv)

    quick = a.quick
    fleets = parse_fleets(a.fleets or ("100:5" if quick else "10000:500"))
    window = a.window if a.window is not None else (6.0 if quick else 30.0)
    bb_probes = a.blackbox_probes if a.blackbox_probes is not None else (40 if quick else 2000)
    frames = a.frames if a.frames is not None else (3 if quick else 20)
    polls = a.polls if a.polls is not None else (10 if quick else 1000)
    sim_cameras = a.sim_cameras if a.sim_cameras is not None else (0 if quick else 2000)
    intervals = dict(QUICK_INTERVALS if quick else REAL_INTERVALS)
    for part in (a.intervals or "").split(","):
        if part.strip():
            kind, _, secs = part.partition(":")
            intervals[kind.strip()] = float(secs)

    started = time.monotonic()
    summary: dict[str, Any] = {"machine": machine(), "quick": quick}
    log(f"frame path: {frames} frames per size")
    frame = frame_bench(frames)
    summary["frame_path"] = frame
    summary["frame_cost_ratio_1080p"] = frame["1080p"]["ratio"]
    summary["frame_cost_ratio_4k"] = frame["4k"]["ratio"]
    log(f"frame ratios: 1080p {frame['1080p']['ratio']}, 4K {frame['4k']['ratio']}")
    summary["picture_verdicts"] = picture_bench(quick)
    log(f"SNMP: {polls} polls per client")
    snmp = snmp_bench(polls)
    summary["snmp"] = snmp
    summary["snmp_cpu_ratio"] = snmp["ratio"]
    summary["snmp_cpu_ratio_pysnmp_tuned"] = snmp["ratio_pysnmp_tuned"]
    log(f"SNMP ratio {snmp['ratio']}")
    if sim_cameras > 0:
        from simulator import bench as sim_bench

        log(f"simulator start-up at {sim_cameras} cameras")
        summary["simulator_2000"] = sim_bench.run(
            sim_cameras, max(1, sim_cameras // 20), load_s=3.0
        )
    log("recording check of 32-channel recorders, by vendor")
    summary["recording_32ch"] = recording_32_bench(2 if quick else 10)
    log(f"  {summary['recording_32ch']}")
    summary["fleets"] = [
        run_fleet(
            c, r, window, intervals, parallel=quick, profile=a.profile,
            first_cycle=not (quick or a.no_first_cycle), workers=a.workers,
            blackbox_probes=bb_probes,
        )
        for c, r in fleets
    ]
    biggest = max(summary["fleets"], key=lambda f: f["cameras"])
    summary["host_cpu_ratio_blackbox"] = biggest["host_cpu_ratio_blackbox"]
    summary["host_cpu_ratio_blackbox_flat_out"] = biggest["host_cpu_ratio_blackbox_flat_out"]
    bb = biggest["blackbox"] or {}
    log(f"host check vs blackbox_exporter at the same rate: "
        f"{biggest['host_cpu_ratio_blackbox']} x ({biggest['host_check_cpu_ms']} vs "
        f"{bb.get('ms_per_probe')} ms CPU); vs blackbox flat out "
        f"{biggest['host_cpu_ratio_blackbox_flat_out']} x "
        f"({(bb.get('flat_out') or {}).get('ms_per_probe')} ms)")
    if a.steady:
        (sc, sr), *_ = parse_fleets(a.steady)
        summary["steady_state"] = run_steady(sc, sr, 10.0, window)
    summary["simulator_startup"] = [
        {
            "devices": f["devices"],
            **{k: f["simulator"][k] for k in ("cameras", "recorders", "start_s", "rss_mb")},
        }
        for f in summary["fleets"]
    ]
    if summary.get("simulator_2000"):
        s = summary["simulator_2000"]
        summary["simulator_startup"].insert(
            0,
            {
                "devices": s["cameras"] + s["recorders"],
                "cameras": s["cameras"],
                "recorders": s["recorders"],
                "start_s": s["start_s"],
                "rss_mb": s["rss_peak_mb"],
            },
        )
    summary["goals"] = goals(summary)
    summary["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    summary["elapsed_s"] = round(time.monotonic() - started, 1)
    text = json.dumps(summary, indent=2, ensure_ascii=False)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
