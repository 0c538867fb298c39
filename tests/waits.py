"""How the tests wait and time things on CI: a loaded 2-core machine, at any hour.

A test that needs a margin measures what it promises — an event seen, a count reached,
an ordering — never how many seconds passed on the wall clock. On a machine at load 13
(measured: timers wake up to 0.4 s late, a zeep ONVIF exchange or an OpenCV decode takes
several times its quiet-machine time) a fixed "within 12 s" or "took < 3 s" fails for a
reason that is in no change. So:

- A timeout that is not what the test is about is `NOT_UNDER_TEST_S`: only the behaviour
  under test decides the answer (an exchange that succeeds returns at once; only a fault
  would wait for it, and then the test fails saying so).
- A deadline that *is* under test is short, the peer that tests it misbehaves for far
  longer (`HANG_S`, or forever), and the bound asserted is "ended by the deadline, not by
  the peer": at most `LATE_S` after it. A bug (a per-read timeout instead of an overall
  one, a deadline not passed on) makes the call last as long as the peer does.
- Waiting for something the service does in cycles is bounded by cycles: `within(...)`
  fails when the promised number of check results (or pushes, or scrapes) went by
  without it; `CAP_S` only stops a test whose service stopped working altogether.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from probes.result import CheckKind, CheckResult, Status

# A timeout (probe, HTTP client, SNMP) that the test is not about.
NOT_UNDER_TEST_S = 30.0
# How late a call kept by a deadline may return on a loaded machine, after the deadline.
LATE_S = 5.0
# How long a hostile peer hangs or dribbles: far beyond any deadline under test + LATE_S.
HANG_S = 120.0
# The wall-clock cap of an event wait: only a service that stopped working reaches it.
CAP_S = 120.0


class Results:
    """A result sink (Service(extra_sinks=[...]), Scheduler(sinks=[...])) that counts the
    conclusive results (ok or fail; unknown ones, e.g. a probe that timed out on a loaded
    machine, prove nothing) per (device, check) — the clock of a test of the service."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, CheckKind]] = Counter()
        self.seen: list[CheckResult] = []

    def __call__(self, results: Iterable[CheckResult]) -> None:
        for r in results:
            self.seen.append(r)
            if r.status != Status.UNKNOWN:
                self.counts[(r.device, r.check)] += 1

    def counter(self, device: str, check: CheckKind) -> Callable[[], int]:
        return lambda: self.counts[(device, check)]


async def _value(fn: Callable[[], Any]) -> Any:
    value = await asyncio.to_thread(fn)  # a blocking HTTP call must not stall the loop
    if inspect.isawaitable(value):
        value = await value
    return value


async def within(fn: Callable[[], Any], what: str, *, count: Callable[[], int], n: int,
                 unit: str, every: float = 0.1) -> Any:
    """Poll `fn` (run in a thread; it may also return an awaitable) until it is truthy and
    return that; AssertionError once `count()` has gone up by `n` (`unit`: what it
    counts, for the message) and `fn` is still false. The count is read before `fn`, so
    every one of the `n` events had its effect before the last look."""
    start = count()
    cap = time.monotonic() + CAP_S
    while True:
        seen = count() - start
        value = await _value(fn)
        if value:
            return value
        if seen >= n:
            raise AssertionError(f"{what}: not within {n} {unit}")
        if time.monotonic() > cap:
            raise AssertionError(f"{what}: only {seen} of {n} {unit} in {CAP_S:.0f} s")
        await asyncio.sleep(every)


async def eventually(fn: Callable[[], Any], what: str, *, cap: float = CAP_S,
                     every: float = 0.1) -> Any:
    """Poll `fn` (in a thread; it may return an awaitable) until truthy. For an event
    with nothing to count; `cap` only stops a test whose peer stopped working."""
    deadline = time.monotonic() + cap
    while True:
        value = await _value(fn)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {cap:.0f} s")
        await asyncio.sleep(every)


class LoopLag:
    """How late this event loop's timers fire while the block runs (a ticker task): the
    measured lateness of the machine, to compare a timing figure against.

        async with LoopLag() as lag:
            ...
        lag.worst  # seconds
    """

    def __init__(self, tick: float = 0.01) -> None:
        self.tick = tick
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(self.tick)
            self.worst = max(self.worst, loop.time() - t - self.tick)

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

