"""`camwatch run --workers N`: N probe processes over stable shards of the inventory,
under one parent that keeps everything else.

One Python process is one event loop, about one core; a fleet of 10,000 cameras needs
more. The parent (camwatch.service) keeps what must be one: the HTTP server (/metrics,
landing page, reports), the alert engine, the inspection log and its lock, the probe
memory it persists, and reloads. Each worker (`python -m camwatch.worker`) loads the
same inventory and settings, probes its shard — a recorder and its cameras stay
together (`worker_shard`), and with `--shard K/M` only within this machine's shard —
and sends what it learns up a pipe:

    parent → worker (stdin):  ("memory", facts, packed baselines) at start,
                              ("reset-baseline", camera), ("set-baseline", camera,
                              baseline), ("stop",)
    worker → parent (stdout): ("ready",), ("results", [CheckResult, ...]) every
                              RESULTS_EVERY_S while checks finish,
                              ("stats", {...}) every STATS_EVERY_S, ("memory", facts,
                              the baselines changed since the last one, packed) every
                              MEMORY_EVERY_S, and all of its shard's before it exits

Frames are a 4-byte length and a pickle: both ends are this program, on this machine,
through an anonymous pipe. A worker that dies is started again (after a growing pause)
with the memory its shard had last sent, and its shard is probed anew from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import struct
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from camwatch.logs import event
from camwatch.scheduler import filter_shard
from camwatch.state import LatestState
from probes.context import DeviceMemory
from probes.result import CheckKind, CheckResult

log = logging.getLogger("camwatch.workers")

STATS_EVERY_S = 2.0
RESULTS_EVERY_S = 0.05  # a worker's results go up in one frame per this long
MEMORY_EVERY_S = 30.0
RESTART_PAUSE_S = (1.0, 30.0)  # first pause, longest pause
_HEADER = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024


DEVICES_PER_WORKER = 1000


def cores() -> int:
    """The machine's cores (those this process may run on)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def default_workers(devices: int | None = None) -> int:
    """The machine's cores — but not more than one per DEVICES_PER_WORKER devices: a
    school's few hundred devices are probed in the service's own process (one event
    loop carries about 5,000 cameras), without processes that only wait."""
    n = cores()
    if devices is not None:
        n = min(n, max(1, -(-devices // DEVICES_PER_WORKER)))
    return n


def worker_shard(
    plan: Iterable[tuple[CheckKind, str]], k: int, n: int, recorder_of: Callable[[str], str]
) -> list[tuple[CheckKind, str]]:
    """Worker k's part of the plan (1-based, of n): by recorder, so a recorder and its
    cameras share one worker (the per-recorder limit holds, an analog camera's host
    answer comes from its recorder's check). The key is salted so that a machine's
    `--shard K/M` and its workers' shards are independent splits."""
    return filter_shard(plan, (k, n), lambda d: "worker:" + recorder_of(d))


# ---- frames -----------------------------------------------------------------------


def encode(message: tuple[Any, ...]) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> tuple[Any, ...] | None:
    """The next message, or None at the end of the stream."""
    try:
        head = await reader.readexactly(_HEADER.size)
        (size,) = _HEADER.unpack(head)
        if size > MAX_FRAME:
            raise ValueError(f"frame of {size} bytes")
        body = await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        return None
    message = pickle.loads(body)  # noqa: S301 - our own child process, through a pipe
    return message if isinstance(message, tuple) else None


# ---- the parent's side ---------------------------------------------------------------


@dataclass
class _Worker:
    k: int
    proc: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None
    ready: bool = False
    stats: dict[str, Any] = field(default_factory=dict)
    restarts: int = 0
    started_at: float = 0.0
    replacing: bool = False  # stopped on purpose (reload): start it again at once


@dataclass
class _Totals:
    """What workers that ended had counted (their counters start again at 0)."""

    checks_done: dict[str, int] = field(default_factory=dict)
    duration_count: dict[str, int] = field(default_factory=dict)
    duration_sum: dict[str, float] = field(default_factory=dict)
    errors: dict[tuple[str, str], int] = field(default_factory=dict)


class WorkerPool:
    """Starts, feeds and supervises the workers; hands their results to `sinks` and
    their figures to `state` (scheduler lag, overdue checks, probe durations)."""

    def __init__(
        self,
        n: int,
        *,
        inventory_paths: Sequence[Path],
        settings_path: Path | None,
        shard: tuple[int, int] | None,
        memory: DeviceMemory,
        state: LatestState,
        sinks: Sequence[Callable[[Sequence[CheckResult]], None]],
        env: dict[str, str] | None = None,
        devices: dict[int, set[str]] | None = None,
    ) -> None:
        """`devices`: each worker's devices (worker_devices), whose memory it is sent;
        None sends every device's."""
        self.n = n
        self.inventory_paths = list(inventory_paths)
        self.settings_path = settings_path
        self.shard = shard
        self.memory = memory
        self.state = state
        self.sinks = list(sinks)
        self.env = env
        self.devices = devices
        self.workers = [_Worker(k) for k in range(1, n + 1)]
        self._retired = _Totals()
        self._forget: tuple[set[str], set[str]] = (set(), set())
        self._stopping = False
        self._all_ready = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------

    async def start(self, ready_within_s: float = 300.0) -> None:
        for w in self.workers:
            await self._spawn(w)
        self.state.scheduler.overdue_fn = self.overdue
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ready_within_s):
                await self._all_ready.wait()

    async def stop(self, grace_s: float = 30.0) -> None:
        self._stopping = True
        for w in self.workers:
            self._send(w, ("stop",))
        for w in self.workers:
            if w.proc is None:
                continue
            try:
                async with asyncio.timeout(grace_s):
                    await w.proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.kill()
                await w.proc.wait()
        for w in self.workers:
            if w.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await w.task

    def reload(self, inventory_paths: Sequence[Path] | None = None,
               devices: dict[int, set[str]] | None = None,
               forget: tuple[set[str], set[str]] = (set(), set())) -> None:
        """Start every worker anew (an inventory or settings reload): each stops after
        sending its shard's memory, and a new one reads the files again as soon as it
        has (in the background: the reload does not wait for the processes). A worker
        being replaced is not a death: no pause, no error in the log. `forget`: the
        devices whose (facts, baselines) the reload dropped; what an old worker sends of
        them on its way out is dropped too."""
        if inventory_paths is not None:
            self.inventory_paths = list(inventory_paths)
        if devices is not None:
            self.devices = devices
        self._forget = forget
        for w in self.workers:
            w.replacing = True
            self._send(w, ("stop",))

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers if w.proc is not None]

    def reset_baseline(self, camera: str) -> None:
        """Tell the workers (the one probing `camera` applies it)."""
        for w in self.workers:
            self._send(w, ("reset-baseline", camera))

    def set_baseline(self, camera: str, stored: dict[str, Any]) -> None:
        """A camera's baseline set from the landing page or `camwatch baseline set`: the
        worker probing it takes it in place of its own."""
        for w in self.workers:
            self._send(w, ("set-baseline", camera, stored))

    # -- one worker ---------------------------------------------------------------

    def _argv(self, w: _Worker) -> list[str]:
        argv = [sys.executable, "-m", "camwatch.worker", "--worker", f"{w.k}/{self.n}"]
        for p in self.inventory_paths:
            argv += ["--inventory", str(p)]
        if self.settings_path is not None:
            argv += ["--settings", str(self.settings_path)]
        if self.shard is not None:
            argv += ["--shard", f"{self.shard[0]}/{self.shard[1]}"]
        return argv

    async def _spawn(self, w: _Worker) -> None:
        w.ready = False
        w.started_at = time.monotonic()
        w.proc = await asyncio.create_subprocess_exec(
            *self._argv(w),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=self.env,
            limit=MAX_FRAME,
        )
        # its shard's memory (a worker keeps only its own devices')
        mine = self.devices.get(w.k) if self.devices is not None else None
        facts, baselines = (
            shard_memory(self.memory, mine) if mine is not None
            else (self.memory.facts, self.memory.baselines.packed())
        )
        self._send(w, ("memory", facts, baselines))
        w.task = asyncio.create_task(self._serve(w), name=f"camwatch-worker-{w.k}")

    def _send(self, w: _Worker, message: tuple[Any, ...]) -> None:
        proc = w.proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, RuntimeError):
            proc.stdin.write(encode(message))

    async def _serve(self, w: _Worker) -> None:
        proc = w.proc
        assert proc is not None and proc.stdout is not None
        while True:
            try:
                message = await read_frame(proc.stdout)
            except Exception as exc:  # a garbled frame: the worker is restarted
                event(log, "worker sent garbage", logging.ERROR, worker=w.k,
                      error=type(exc).__name__)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                message = None
            if message is None:
                break
            self._handle(w, message)
        rc = await proc.wait()
        self._retire(w)
        if self._stopping:
            return
        if w.replacing:
            w.replacing = False
            facts, baselines = self._forget
            for d in facts:
                self.memory.facts.pop(d, None)
            for d in baselines:
                self.memory.baselines.pop(d, None)
            await self._spawn(w)
            return
        w.restarts += 1
        pause = min(RESTART_PAUSE_S[1], RESTART_PAUSE_S[0] * 2 ** min(w.restarts - 1, 5))
        if time.monotonic() - w.started_at > 10 * RESTART_PAUSE_S[1]:
            pause = RESTART_PAUSE_S[0]  # it ran for a good while: no penalty
        event(log, "worker ended, starting it again", logging.ERROR, worker=f"{w.k}/{self.n}",
              returncode=rc, restart_in_s=pause)
        await asyncio.sleep(pause)
        if not self._stopping:
            await self._spawn(w)

    def _handle(self, w: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "results":
            results: list[CheckResult] = message[1]
            for sink in self.sinks:
                try:
                    sink(results)
                except Exception as exc:  # one output's trouble is not the others'
                    event(log, "sink failed", logging.ERROR, error=type(exc).__name__)
        elif kind == "stats":
            w.stats = message[1]
            self._publish()
        elif kind == "memory":
            facts, baselines = message[1], message[2]
            self.memory.facts.update(facts)
            self.memory.baselines.put_packed(baselines)  # packed, as JsonValues keeps them
        elif kind == "ready":
            w.ready = True
            if all(x.ready for x in self.workers):
                self._all_ready.set()

    def _retire(self, w: _Worker) -> None:
        """Keep what an ended worker counted, so the counters never go back."""
        st, t = w.stats, self._retired
        for name, bucket in (("checks_done", t.checks_done), ("duration_count", t.duration_count),
                             ("duration_sum", t.duration_sum)):
            for key, value in st.get(name, {}).items():
                bucket[key] = bucket.get(key, 0) + value
        for key, value in st.get("errors", {}).items():
            t.errors[key] = t.errors.get(key, 0) + value
        w.stats = {}
        w.ready = False

    # -- the figures, all workers together ------------------------------------------

    def _publish(self) -> None:
        sched, probes, t = self.state.scheduler, self.state.probes, self._retired
        lag: dict[CheckKind, float] = {}
        cycle: dict[CheckKind, float] = {}
        done: dict[str, int] = dict(t.checks_done)
        count: dict[str, int] = dict(t.duration_count)
        total: dict[str, float] = dict(t.duration_sum)
        errors: dict[tuple[str, str], int] = dict(t.errors)
        for w in self.workers:
            st = w.stats
            for k, v in st.get("lag", {}).items():
                lag[CheckKind(k)] = max(lag.get(CheckKind(k), 0.0), v)
            for k, v in st.get("last_cycle_end", {}).items():
                # a full cycle of a check is over when every worker's is
                key = CheckKind(k)
                cycle[key] = min(cycle.get(key, v), v)
            for k, v in st.get("checks_done", {}).items():
                done[k] = done.get(k, 0) + v
            for k, v in st.get("duration_count", {}).items():
                count[k] = count.get(k, 0) + v
            for k, v in st.get("duration_sum", {}).items():
                total[k] = total.get(k, 0.0) + v
            for k, v in st.get("errors", {}).items():
                errors[k] = errors.get(k, 0) + v
        sched.lag_seconds = lag
        sched.last_cycle_end = cycle
        sched.checks_done.clear()
        sched.checks_done.update({CheckKind(k): v for k, v in done.items()})
        probes.duration_count.clear()
        probes.duration_count.update(count)
        probes.duration_sum = total
        probes.errors.clear()
        probes.errors.update(errors)

    def overdue(self) -> dict[CheckKind, tuple[int, float]]:
        out: dict[CheckKind, tuple[int, float]] = {}
        for w in self.workers:
            for k, (n, late) in w.stats.get("overdue", {}).items():
                key = CheckKind(k)
                have = out.get(key, (0, 0.0))
                out[key] = (have[0] + n, max(have[1], late))
        return out


# ---- the worker's side -------------------------------------------------------------


def stats_of(state: LatestState, overdue: dict[CheckKind, tuple[int, float]]) -> dict[str, Any]:
    """What a worker reports of its scheduler and probes (plain data)."""
    sched, probes = state.scheduler, state.probes
    return {
        "lag": {k.value: v for k, v in sched.lag_seconds.items()},
        "last_cycle_end": {k.value: v for k, v in sched.last_cycle_end.items()},
        "checks_done": {k.value: v for k, v in sched.checks_done.items()},
        "overdue": {k.value: v for k, v in overdue.items()},
        "duration_count": dict(probes.duration_count),
        "duration_sum": dict(probes.duration_sum),
        "errors": dict(probes.errors),
    }


def worker_devices(
    plan: Sequence[tuple[CheckKind, str]], k: int, n: int, recorder_of: Callable[[str], str],
    cameras_of: Callable[[str], Iterable[str]],
) -> set[str]:
    """The devices whose probe memory worker k keeps: its recorders and their cameras."""
    recorders = {recorder_of(d) for _c, d in worker_shard(plan, k, n, recorder_of)}
    return recorders | {c for r in recorders for c in cameras_of(r)}


def shard_memory(memory: DeviceMemory, devices: set[str], *, baselines: bool = True,
                 ) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The part of the probe memory of these devices: (facts, their baselines packed
    (JsonValues); none with `baselines=False`)."""
    facts = {d: v for d, v in memory.facts.items() if d in devices}
    if not baselines:
        return facts, {}
    return facts, memory.baselines.packed(devices)
