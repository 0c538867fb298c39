"""One probe process of `camwatch run --workers N` (started by camwatch.workers, not by
hand): probes its shard of the inventory and sends what it learns to the parent.

    python -m camwatch.worker --worker K/N --inventory PATH [--settings PATH] [--shard K/M]

It ends when the parent says so, when the parent is gone (its stdin closes), or on
SIGTERM/SIGINT, sending its shard's probe memory first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from camwatch.clock import default_clock
from camwatch.heap import limit_arenas, trim
from camwatch.logs import event, setup_logging
from camwatch.scheduler import Scheduler, filter_shard
from camwatch.service import (
    StartupError,
    intervals,
    load_inventory_or_fail,
    load_key,
    load_settings_or_fail,
    probe_context,
    runner_for,
    with_secrets_beside,
)
from camwatch.shards import ShardError, parse_shard
from camwatch.state import LatestState
from camwatch.workers import (
    MEMORY_EVERY_S,
    RESULTS_EVERY_S,
    STATS_EVERY_S,
    encode,
    read_frame,
    shard_memory,
    stats_of,
    worker_shard,
)
from probes.api import planned_checks, prepare, recorder_of
from probes.context import DeviceMemory, JsonValues
from probes.result import CheckResult

log = logging.getLogger("camwatch.worker")


class _Channel:
    """The frames up to the parent, on the stdout this process was started with (any
    stray print goes to stderr instead, so it cannot break a frame)."""

    def __init__(self) -> None:
        self.fd = os.dup(1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        pipe = os.fdopen(self.fd, "wb", buffering=0)
        transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, pipe
        )
        self._writer = asyncio.StreamWriter(transport, protocol, None, loop)

    def send(self, message: tuple[Any, ...]) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(encode(message))

    async def close(self) -> None:
        """Once everything written has gone up the pipe (or the parent is gone)."""
        writer = self._writer
        if writer is None:
            return
        with contextlib.suppress(ConnectionError, TimeoutError):
            async with asyncio.timeout(10.0):
                await writer.drain()
        writer.close()


async def _stdin() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**31 - 1)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    return reader


async def run(args: argparse.Namespace) -> int:
    k, n = parse_shard(args.worker)
    settings = with_secrets_beside(load_settings_or_fail(args.settings), list(args.inventory))
    inventory = load_inventory_or_fail(list(args.inventory))
    clock = default_clock()  # the parent's, when CAMWATCH_CLOCK pins it
    channel = _Channel()
    await channel.open()
    stdin = await _stdin()
    first = await read_frame(stdin)
    memory = DeviceMemory()
    if first is not None and first[0] == "memory":
        memory = DeviceMemory(facts=dict(first[1]), baselines=JsonValues.of_packed(first[2]))
    ctx = probe_context(settings, inventory, memory, clock)

    def rec_of(device: str) -> str:
        return recorder_of(inventory, device)

    plan = planned_checks(inventory)
    if args.shard:
        plan = filter_shard(plan, parse_shard(args.shard), rec_of)
    plan = worker_shard(plan, k, n, rec_of)
    # the devices whose memory this worker keeps: its recorders and all their cameras
    recorders = {rec_of(d) for _c, d in plan}
    devices = recorders | {c.id for r in recorders for c in inventory.cameras_of(r)}
    # only this shard's devices and memory are kept here (the parent has them all)
    inventory = inventory.only(recorders)
    ctx.inventory = inventory
    ctx.memory.facts = {d: v for d, v in ctx.memory.facts.items() if d in devices}
    ctx.memory.baselines = JsonValues.of_packed(ctx.memory.baselines.packed(devices))

    await prepare(inventory)
    state = LatestState()

    # Results go up in batches (one frame per RESULTS_EVERY_S, not one per check): at
    # 10,000 cameras a frame per check was a pipe write here and a wake-up, a read and
    # an unpickling in the parent, 170 times a second.
    pending: list[CheckResult] = []

    def flush_results() -> None:
        if pending:
            channel.send(("results", list(pending)))
            pending.clear()

    def send_results(results: list[CheckResult] | Any) -> None:
        if not pending:
            asyncio.get_running_loop().call_later(RESULTS_EVERY_S, flush_results)
        pending.extend(results)

    scheduler = Scheduler(
        plan, runner_for(ctx), intervals=intervals(settings),
        recorder_of=lambda d: load_key(inventory, d),
        concurrency=settings.concurrency, per_recorder=settings.per_recorder_concurrency,
        timeout=settings.timeout, retries=settings.retries, jitter=settings.jitter,
        sinks=[send_results], state=state, now=clock.now,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    # a reload is the parent's to do (it starts the workers anew): a hang-up of the
    # terminal's process group must not end a worker
    with contextlib.suppress(AttributeError, ValueError):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    async def listen() -> None:
        while True:
            message = await read_frame(stdin)
            if message is None or message[0] == "stop":
                stop.set()
                return
            if message[0] == "reset-baseline" and message[1] in devices:
                from probes.baseline import reset_baseline

                reset_baseline(ctx.memory.baselines, message[1])
            elif message[0] == "set-baseline" and message[1] in devices:
                ctx.memory.baselines[message[1]] = dict(message[2])

    def memory_update(*, full: bool = False) -> tuple[str, dict[str, Any], dict[str, Any]]:
        # Every fact (small, changed in place by every check) and the baselines that
        # changed: the parent has the rest from before. On the way out all of them, so
        # that the parent's copy ends as this worker's.
        if full:
            ctx.memory.take_changed_baselines()
            return ("memory", *shard_memory(ctx.memory, devices))
        facts, _ = shard_memory(ctx.memory, devices, baselines=False)
        return ("memory", facts, ctx.memory.take_changed_baselines())

    async def report() -> None:
        since_memory = 0.0
        while True:
            await asyncio.sleep(STATS_EVERY_S)
            channel.send(("stats", stats_of(state, scheduler.overdue())))
            since_memory += STATS_EVERY_S
            if since_memory >= MEMORY_EVERY_S:
                since_memory = 0.0
                channel.send(memory_update())
                trim()  # the pickled copy is gone: give its pages back

    scheduler.start()
    trim()  # what reading the inventory and preparing the drivers left free
    channel.send(("ready",))
    event(log, "worker started", worker=f"{k}/{n}", checks=len(plan))
    tasks = [asyncio.create_task(listen()), asyncio.create_task(report())]
    try:
        await stop.wait()
    finally:
        await scheduler.stop()
        flush_results()
        for t in tasks:
            t.cancel()
        channel.send(("stats", stats_of(state, {})))
        channel.send(memory_update(full=True))
        if ctx.http_pool is not None:
            await ctx.http_pool.aclose()
        await channel.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="camwatch.worker", description=__doc__.splitlines()[0])
    ap.add_argument("--worker", required=True, metavar="K/N")
    ap.add_argument("--inventory", action="append", type=Path, required=True)
    ap.add_argument("--settings", type=Path, default=None)
    ap.add_argument("--shard", default=None, metavar="K/M")
    args = ap.parse_args(argv)
    limit_arenas()  # before any thread starts (camwatch.heap)
    try:
        settings = load_settings_or_fail(args.settings)
        setup_logging(settings.log_level, settings.log_format, settings.log_file)
        return asyncio.run(run(args))
    except (StartupError, ShardError) as exc:
        print(f"camwatch worker: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
