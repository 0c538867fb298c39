"""The scheduler against real async probe callables (no mocks of asyncio): intervals,
jitter spread, limits, no overlap per device, timeouts, retries, lag, sinks, sharding.

The event loop of a loaded CI machine wakes timers late (measured: up to 0.4 s at load
17), so no test here counts runs in a fixed wall-clock window or bounds a delay from
above by a fixed figure: a test runs until the runs it needs have happened (`until`),
judges intervals by the gaps between one check's runs, delays by their lower bound (a
timer never fires early), and lag against the lateness measured meanwhile (LoopLag).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable

import pytest

from camwatch.scheduler import (
    Scheduler,
    ThreadedBatchSink,
    filter_shard,
    probe_once,
)
from camwatch.shards import ShardError, parse_shard, shard_of
from camwatch.state import LatestState
from probes.result import CheckKind, CheckResult, Status, utcnow
from tests.waits import CAP_S, LATE_S, NOT_UNDER_TEST_S, LoopLag

H, R, P = CheckKind.HOST, CheckKind.RECORDING, CheckKind.PICTURE


def campus(recorders: int, cams_per: int) -> tuple[list[tuple[CheckKind, str]], dict[str, str]]:
    plan: list[tuple[CheckKind, str]] = []
    rec_of: dict[str, str] = {}
    for r in range(recorders):
        rid = f"nvr{r}"
        rec_of[rid] = rid
        plan += [(H, rid), (R, rid)]
        for c in range(cams_per):
            cid = f"cam{r}-{c}"
            rec_of[cid] = rid
            plan += [(H, cid), (P, cid)]
    return plan, rec_of


def ok(check: CheckKind, device: str, status: Status = Status.OK) -> list[CheckResult]:
    return [CheckResult(device, check, status, "正常" if status == Status.OK else "?", utcnow())]


async def run_for(s: Scheduler, seconds: float) -> None:
    s.start()
    await asyncio.sleep(seconds)
    await s.stop()


async def until(s: Scheduler, done: Callable[[], bool], what: str) -> None:
    """Run the scheduler until `done()` (the runs a test needs have happened)."""
    s.start()
    try:
        deadline = time.monotonic() + CAP_S
        while not done():
            assert time.monotonic() < deadline, f"{what}: not within {CAP_S:.0f} s"
            await asyncio.sleep(0.01)
    finally:
        await s.stop()


async def test_each_check_runs_on_its_own_interval() -> None:
    plan, rec_of = campus(2, 3)
    intervals = {H: 0.1, R: 0.4, P: 0.2}
    starts: defaultdict[tuple[CheckKind, str], list[float]] = defaultdict(list)
    loop = asyncio.get_running_loop()

    async def probe(check: CheckKind, device: str, _deadline: float) -> list[CheckResult]:
        starts[(check, device)].append(loop.time())
        return ok(check, device)

    s = Scheduler(plan, probe, intervals=intervals, recorder_of=rec_of.__getitem__,
                  jitter=0.0, rng=random.Random(1))
    await until(s, lambda: len(starts) == len(plan) and all(
        len(t) >= 6 for t in starts.values()), "six runs of every check")
    assert set(starts) == set(plan)
    for (check, device), times in starts.items():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # typically on its interval: a late timer delays one run (and the next one keeps
        # to the plan, so it comes sooner), it does not move the median gap; the kinds'
        # intervals are 2x apart, so this tells them apart
        assert 0.75 * intervals[check] < statistics.median(gaps) < 1.5 * intervals[check], (
            check, device, gaps)


async def test_first_runs_are_spread_across_the_interval() -> None:
    plan, rec_of = campus(50, 3)  # 400 checks
    starts: list[float] = []
    loop = asyncio.get_running_loop()

    async def probe(check: CheckKind, device: str, _deadline: float) -> list[CheckResult]:
        starts.append(loop.time())
        return ok(check, device)

    s = Scheduler(plan, probe, intervals={H: 1.0, R: 1.0, P: 1.0},
                  recorder_of=rec_of.__getitem__, concurrency=1000, per_recorder=100)
    t0 = loop.time()
    async with LoopLag() as lag:
        s.start()
        dues = [e.due - t0 for e in s._heap]
        assert len(dues) == 400 and all(0 <= d < 1.0 for d in dues)
        buckets = Counter(int(d * 10) for d in dues)
        # uniform over 10 buckets: ~40 each; all at once would put 400 in one
        assert max(buckets.values()) < 80, buckets
        assert len(buckets) == 10
        deadline = time.monotonic() + CAP_S
        while len(starts) < 400:
            assert time.monotonic() < deadline, len(starts)
            await asyncio.sleep(0.05)
        await s.stop()
    # they really started spread out: as far apart as they were due, less what the loop
    # was late meanwhile (a stall starts everything due during it at once)
    spread = max(starts[:400]) - min(starts[:400])
    assert spread > max(dues) - min(dues) - lag.worst - 0.05, (spread, lag.worst)


async def test_global_and_per_recorder_limits_are_never_exceeded() -> None:
    plan, rec_of = campus(4, 6)
    active: Counter[str] = Counter()
    total = 0
    seen_total = 0
    seen_rec: Counter[str] = Counter()

    async def probe(check: CheckKind, device: str, _deadline: float) -> list[CheckResult]:
        nonlocal total, seen_total
        rec = rec_of[device]
        active[rec] += 1
        total += 1
        seen_total = max(seen_total, total)
        seen_rec[rec] = max(seen_rec[rec], active[rec])
        await asyncio.sleep(0.02)
        active[rec] -= 1
        total -= 1
        return ok(check, device)

    s = Scheduler(plan, probe, intervals={H: 0.05, R: 0.05, P: 0.05},
                  recorder_of=rec_of.__getitem__, concurrency=5, per_recorder=2)
    await run_for(s, 1.0)
    assert seen_total <= 5
    assert max(seen_rec.values()) <= 2
    # the limits are reached (the load is far above them), so the test can fail
    assert seen_total == 5
    assert max(seen_rec.values()) == 2
    assert s.max_in_flight == 5 and s.max_in_flight_per_recorder == 2


async def test_busy_recorder_does_not_hold_up_the_others() -> None:
    # nvr0's probes hang for a long time; nvr1's must keep running on time
    plan, rec_of = campus(2, 4)
    done: Counter[str] = Counter()

    async def probe(check: CheckKind, device: str, _deadline: float) -> list[CheckResult]:
        if rec_of[device] == "nvr0":
            await asyncio.Event().wait()  # never answers (and is never timed out here)
        done[rec_of[device]] += 1
        return ok(check, device)

    s = Scheduler(plan, probe, intervals={H: 0.1, R: 0.1, P: 0.1},
                  recorder_of=rec_of.__getitem__, concurrency=4, per_recorder=2,
                  timeout=CAP_S + NOT_UNDER_TEST_S)
    # nvr1's 10 checks run six times each while nvr0's first ones still hang
    await until(s, lambda: done["nvr1"] >= 10 * 6, "nvr1's checks")
    assert done["nvr0"] == 0


async def test_the_same_check_never_runs_twice_at_once_on_a_device() -> None:
    plan, rec_of = campus(1, 3)
    running: set[tuple[CheckKind, str]] = set()
    overlaps = 0
    runs = 0

    async def probe(check: CheckKind, device: str, _deadline: float) -> list[CheckResult]:
        nonlocal overlaps, runs
        if (check, device) in running:
            overlaps += 1
        running.add((check, device))
        await asyncio.sleep(0.15)  # slower than its 0.05 s interval
        running.discard((check, device))
        runs += 1
        return ok(check, device)

    s = Scheduler(plan, probe, intervals={H: 0.05, R: 0.05, P: 0.05},
                  recorder_of=rec_of.__getitem__, concurrency=100, per_recorder=100)
    # each of the 8 pairs runs several times back to back
    await until(s, lambda: runs >= 8 * 4, "four runs of each pair")
    assert overlaps == 0


async def test_a_probe_that_hangs_times_out_as_unknown_and_the_rest_go_on() -> None:
    plan, rec_of = campus(1, 2)
    received: list[CheckResult] = []

    async def probe(check: CheckKind, device: str, _deadline: float) -> list[CheckResult]:
        if device == "cam0-0":
            await asyncio.Event().wait()  # never answers
        return ok(check, device)

    state = LatestState()
    s = Scheduler(plan, probe, intervals={H: 0.1, R: 0.1, P: 0.1},
                  recorder_of=rec_of.__getitem__, timeout=0.2, retries=0,
                  sinks=[received.extend, state.update], state=state)

    def both_timed_out() -> bool:
        return {r.check for r in received if r.device == "cam0-0"} == {H, P}

    await until(s, both_timed_out, "both checks of the hung camera answered")
    hung = [r for r in received if r.device == "cam0-0"]
    assert hung and all(r.status == Status.UNKNOWN for r in hung)
    assert all("逾時" in r.reason for r in hung)
    # cut at the deadline (its guard: 0.22 s), never before, at most LATE_S after
    assert all(0.2 <= r.duration_s < 0.22 + LATE_S for r in hung), [r.duration_s for r in hung]
    assert s.timeouts[H] >= 1 and s.timeouts[P] >= 1
    assert state.probes.errors[("host", "timeout")] >= 1
    others = [r for r in received if r.device != "cam0-0"]
    assert others and all(r.status == Status.OK for r in others)
    got = state.get("cam0-0", P)
    assert got is not None and got.status == Status.UNKNOWN


async def test_a_probe_that_raises_becomes_unknown() -> None:
    plan, rec_of = [(H, "nvr0")], {"nvr0": "nvr0"}
    received: list[CheckResult] = []

    async def probe(check: CheckKind, device: str, _deadline: float) -> list[CheckResult]:
        raise RuntimeError("bug")

    s = Scheduler(plan, probe, intervals={H: 0.1}, recorder_of=rec_of.__getitem__,
                  retries=0, sinks=[received.extend])
    await until(s, lambda: len(received) >= 2, "two runs")
    assert received and all(r.status == Status.UNKNOWN for r in received)


@pytest.mark.parametrize(("retries", "status", "attempts_per_run"),
                         [(2, Status.UNKNOWN, 3), (2, Status.FAIL, 1), (0, Status.UNKNOWN, 1)])
async def test_unknown_answers_are_retried_a_bounded_number_of_times(
    retries: int, status: Status, attempts_per_run: int
) -> None:
    plan, rec_of = [(H, "nvr0")], {"nvr0": "nvr0"}
    attempts = 0
    received: list[CheckResult] = []
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def probe(check: CheckKind, device: str, _deadline: float) -> list[CheckResult]:
        nonlocal attempts
        attempts += 1
        times.append(loop.time())
        return ok(check, device, status)

    s = Scheduler(plan, probe, intervals={H: 10.0}, recorder_of=rec_of.__getitem__,
                  retries=retries, backoff=0.05, jitter=0.0, sinks=[received.extend],
                  rng=random.Random(3))
    s._intervals[H] = 10.0
    s.start()
    # the first run is due within the 10 s interval; move it to now
    s._heap[0].due = s._heap[0].base_due = loop.time()
    s._push(s._heap.pop())
    deadline = time.monotonic() + CAP_S
    while not received:  # the final answer; the next run is 10 s away
        assert time.monotonic() < deadline, attempts
        await asyncio.sleep(0.01)
    await s.stop()
    assert attempts == attempts_per_run
    assert len(received) == 1  # only the final answer goes out
    assert s.runs[H] == 1
    if attempts_per_run == 3:
        # backoff doubles: 0.05 then 0.1 s, each ±20 % — never sooner (a late timer
        # can only make a gap longer, so the upper bound allows the loop's lateness)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps[0] >= 0.04 and gaps[1] >= 0.08, gaps
        assert gaps[0] < 0.06 + LATE_S and gaps[1] < 0.12 + LATE_S, gaps


class _Offsets(random.Random):
    """A random source whose first draws are given: the first runs' offsets."""

    def __init__(self, offsets: list[float]) -> None:
        super().__init__(1)
        self._offsets = list(offsets)

    def uniform(self, a: float, b: float) -> float:
        return self._offsets.pop(0) if self._offsets else super().uniform(a, b)


async def test_runs_due_close_together_start_together() -> None:
    # host every 20 s: what falls due within 0.1 s (0.5 % of it) more starts with the top
    # of the heap; cam-a due at 0.30 s waits for cam-b due at 0.35 s, cam-c at 0.60 s apart
    plan = [(H, "cam-a"), (H, "cam-b"), (H, "cam-c")]
    loop = asyncio.get_running_loop()
    starts: dict[str, float] = {}
    in_flight_at_start: dict[str, int] = {}

    async def probe(check: CheckKind, device: str, _deadline: float) -> list[CheckResult]:
        starts.setdefault(device, loop.time())
        in_flight_at_start.setdefault(device, s.in_flight)
        return ok(check, device)

    s = Scheduler(plan, probe, intervals={H: 20.0, R: 20.0, P: 20.0},
                  recorder_of=lambda d: d, rng=_Offsets([0.30, 0.35, 0.60]))
    t0 = loop.time()
    await until(s, lambda: len(starts) == 3, "the first run of each camera")
    # a timer never fires early: cam-a started no sooner than its due time + the slack
    assert starts["cam-a"] >= t0 + 0.30 + 0.1 - 0.001, starts["cam-a"] - t0
    # ... and together with cam-b: both launched before either ran
    assert in_flight_at_start["cam-a"] == 2, in_flight_at_start
    assert starts["cam-c"] >= t0 + 0.60, starts["cam-c"] - t0


async def test_lag_is_measured_and_published() -> None:
    plan, rec_of = campus(1, 9)  # 20 checks
    state = LatestState()

    async def slow(check: CheckKind, device: str, _deadline: float) -> list[CheckResult]:
        await asyncio.sleep(0.05)
        return ok(check, device)

    # one probe at a time, 20 probes of 50 ms every 0.2 s: hopelessly behind
    s = Scheduler(plan, slow, intervals={H: 0.2, R: 0.2, P: 0.2},
                  recorder_of=rec_of.__getitem__, concurrency=1, per_recorder=1, state=state)
    await run_for(s, 1.5)
    assert s.lag.summary()["picture"]["max"] > 0.3
    assert state.scheduler.lag_seconds[P] > 0.3
    assert state.scheduler.checks_done[P] > 0

    state2 = LatestState()
    fast = Scheduler(plan, slow, intervals={H: 0.2, R: 0.2, P: 0.2},
                     recorder_of=rec_of.__getitem__, concurrency=100, per_recorder=100,
                     state=state2)
    async with LoopLag() as lag:
        await until(fast, lambda: state2.scheduler.checks_done[P] >= 9 * 3,
                    "three picture cycles")
    # not behind: each run starts when due, late only by as much as the loop itself was
    assert fast.lag.summary()["picture"]["p99"] < 0.05 + lag.worst, (
        fast.lag.summary(), lag.worst)
    assert P in state2.scheduler.last_cycle_end  # every camera had its picture check


async def test_a_failing_sink_does_not_stop_the_others() -> None:
    plan, rec_of = [(H, "nvr0")], {"nvr0": "nvr0"}
    got: list[CheckResult] = []

    def broken(results: object) -> None:
        raise OSError("disk full")

    async def probe(check: CheckKind, device: str, _deadline: float) -> list[CheckResult]:
        return ok(check, device)

    s = Scheduler(plan, probe, intervals={H: 0.05}, recorder_of=rec_of.__getitem__,
                  sinks=[broken, got.extend])
    await until(s, lambda: len(got) >= 3, "three results past the broken sink")


def test_threaded_batch_sink_writes_in_batches_off_the_caller_thread() -> None:
    batches: list[int] = []
    threads: set[int] = set()

    def write(batch: list[CheckResult]) -> None:
        threads.add(threading.get_ident())
        if len(batches) == 0:
            batches.append(-len(batch))
            raise RuntimeError("database locked")  # the first write fails
        batches.append(len(batch))

    sink = ThreadedBatchSink(write, max_batch=50, max_delay=0.05)
    for i in range(120):
        sink(ok(H, f"cam{i}"))
    assert sink.flush(CAP_S)
    sink(ok(H, "late"))
    sink.close()
    assert threading.get_ident() not in threads
    assert sink.failures == 1
    assert -batches[0] + sum(batches[1:]) == 121
    assert max(abs(b) for b in batches) <= 50


def test_shard_parsing_and_partition() -> None:
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/3", "4/3", "x", "1/0", "-1/2"):
        with pytest.raises(ShardError):
            parse_shard(bad)
    plan, rec_of = campus(30, 4)
    parts = [filter_shard(plan, (k, 3), rec_of.__getitem__) for k in (1, 2, 3)]
    # a partition: nothing lost or doubled
    assert sorted(itertools.chain.from_iterable(parts)) == sorted(plan)
    assert all(len(p) > len(plan) / 6 for p in parts)  # roughly even
    for part in parts:  # a recorder and its cameras stay together
        recs = {rec_of[d] for _, d in part}
        assert all(rec_of[d] in recs for _, d in part)
        assert {(c, d) for c, d in plan if rec_of[d] in recs} == set(part)
    assert shard_of("nvr-a", 7) == shard_of("nvr-a", 7)  # stable (crc32, not hash())


async def test_probe_once_runs_everything_once_within_limits() -> None:
    plan, rec_of = campus(3, 5)
    per_rec: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    calls: Counter[tuple[CheckKind, str]] = Counter()

    async def probe(check: CheckKind, device: str, _deadline: float) -> list[CheckResult]:
        calls[(check, device)] += 1
        rec = rec_of[device]
        per_rec[rec] += 1
        peak[rec] = max(peak[rec], per_rec[rec])
        await asyncio.sleep(0.01)
        per_rec[rec] -= 1
        if device == "cam1-1" and check == P:
            await asyncio.Event().wait()  # never answers
        return ok(check, device)

    done: list[tuple[CheckKind, str]] = []
    # a timeout that the other probes (10 ms each) meet on a loaded machine too
    results = await probe_once(plan, probe, recorder_of=rec_of.__getitem__, per_recorder=2,
                               probe_timeout=2.0, retries=1, backoff=0.01,
                               on_done=lambda c, d, r: done.append((c, d)))
    assert max(peak.values()) == 2
    assert sorted(done) == sorted(plan)
    assert calls[(P, "cam1-1")] == 2  # timed out, retried once
    assert all(v == 1 for k, v in calls.items() if k != (P, "cam1-1"))
    timed_out = [r for r in results if r.device == "cam1-1" and r.check == P]
    assert timed_out[0].status == Status.UNKNOWN and "逾時" in timed_out[0].reason


async def test_ten_thousand_cameras_on_one_loop() -> None:
    """10,000 cameras and 500 recorders (21,000 checks): one dispatcher, not 21,000
    sleeping tasks, and little CPU per check (CPU time, so a busy machine does not
    make it fail; the lag it measures is printed)."""
    plan, rec_of = campus(500, 20)
    assert len(plan) == 21_000
    seen: set[tuple[CheckKind, str]] = set()
    most_tasks = 0

    async def probe(check: CheckKind, device: str, _deadline: float) -> list[CheckResult]:
        nonlocal most_tasks
        seen.add((check, device))
        if len(seen) % 1000 == 0:
            most_tasks = max(most_tasks, len(asyncio.all_tasks()))
        await asyncio.sleep(0.001)
        return ok(check, device)

    state = LatestState()
    cpu0 = time.process_time()
    t0 = time.monotonic()
    s = Scheduler(plan, probe, intervals={H: 3.0, R: 3.0, P: 3.0},
                  recorder_of=rec_of.__getitem__, concurrency=64, per_recorder=2,
                  state=state, sinks=[state.update])
    s.start()
    while len(seen) < len(plan) and time.monotonic() - t0 < CAP_S:
        await asyncio.sleep(0.1)
    await s.stop()
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - t0
    assert len(seen) == len(plan)
    assert most_tasks < 100  # the dispatcher plus the runs in flight (≤ 64)
    print(f"21,000 checks: first cycle in {wall:.1f} s wall, {cpu:.2f} s CPU; "
          f"lag {s.lag.summary()}")
    assert cpu < 8.0


@pytest.mark.parametrize("per_recorder", [1, 2, 100])
async def test_overdue_counts_due_runs_that_never_started(per_recorder: int) -> None:
    # One slot, and the first probe never answers until released: every other run falls
    # due and waits. per_recorder 1 keeps them in the recorder's queue, 2 makes the
    # dispatcher hold one while it waits for the global slot, 100 leaves them in the heap.
    plan, rec_of = campus(1, 9)  # 20 checks: 10 host, 1 recording, 9 picture
    planned = Counter(c for c, _ in plan)
    release = asyncio.Event()
    started: list[tuple[CheckKind, str]] = []

    async def stuck(check: CheckKind, device: str, _deadline: float) -> list[CheckResult]:
        started.append((check, device))
        await release.wait()
        return ok(check, device)

    s = Scheduler(plan, stuck, intervals={H: 0.3, R: 0.3, P: 0.3},
                  recorder_of=rec_of.__getitem__, concurrency=1, per_recorder=per_recorder,
                  jitter=0.0, rng=random.Random(3))
    loop = asyncio.get_running_loop()
    s.start()
    try:
        assert all(n == 0 for n, _ in s.overdue(loop.time() - 1.0).values())
        await asyncio.sleep(0.4)  # every first run (spread over 0.3 s) is due
        assert len(started) == 1
        running = started[0][0]
        t1 = loop.time()
        first = s.overdue(t1)
        expected = planned - Counter([running])
        assert {k: n for k, (n, _) in first.items()} == {k: expected[k] for k in planned}
        assert first[H][1] > 0.1  # the oldest host run was due at least 0.1 s ago
        await asyncio.sleep(0.2)
        t2 = loop.time()
        second = s.overdue(t2)
        for kind in planned:
            if expected[kind]:
                assert second[kind][0] == first[kind][0]
                # the same runs are still waiting: later by as much as time went on
                assert abs(second[kind][1] - first[kind][1] - (t2 - t1)) < 1e-6, kind
            else:
                assert second[kind] == (0, 0.0)
        # callable from another thread, as the /metrics scrape does
        from_thread = await asyncio.to_thread(s.overdue)
        assert sum(n for n, _ in from_thread.values()) == sum(expected.values())

        # 20 instant runs, the next ones far away (however late the loop is): caught up
        s._intervals = {k: 3600.0 for k in planned}
        release.set()
        deadline = time.monotonic() + CAP_S
        while len(started) < len(plan) or s.in_flight:
            assert time.monotonic() < deadline, len(started)
            await asyncio.sleep(0.01)
        assert s.overdue() == {k: (0, 0.0) for k in planned}
    finally:
        release.set()
        await s.stop()
