"""Writes check results and repair events to the inspection log, and never loses one
silently.

The scheduler hands results over on the event loop; a worker thread writes them in
batches (a slow database never blocks the probes). When a write fails — the disk is
full, the database is locked or gone — nothing is dropped: the results wait in memory
and the writer retries with backoff, and when the log is writable again they are written
with their own times, so the history reads as if nothing had happened.

Waiting costs little: the log keeps state transitions, not every result, so the results
of one (device, check) that repeat the same answer are compacted to the first and the
newest of the run (exactly what the log would have kept). The wait is bounded
(`max_held` results). Past the bound the oldest runs give way to one `unknown` result
「紀錄中斷」 per check at the time the loss began, and the stretch is recorded as a gap in
the log (log_gaps) as soon as it can be written: the sheet then says 「紀錄中斷」 with its
times instead of ticking 是. A process that dies while results wait loses them too; its
session's `kept_until` says until when the log was kept, and the sheet marks that hole.

What the writer is doing is published in `StoreHealth` (camwatch/state.py), which
/metrics (camwatch_store_*), /ready and the landing page read.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from camwatch.clock import now as clock_now
from camwatch.logs import event
from camwatch.state import StoreHealth
from probes.result import CheckResult, Status

log = logging.getLogger("camwatch.logwriter")

GAP_REASON = "紀錄中斷：檢查紀錄無法寫入（磁碟已滿或資料庫無法寫入），此段結果未能保存"


class LogStore(Protocol):
    def record_results(self, results: Sequence[CheckResult]) -> int: ...
    def record_alert_event(self, kind: Any, alertname: str, device: str,
                           labels: Mapping[str, str] | None = None,
                           at: dt.datetime | None = None) -> bool: ...
    def record_gap(self, start: dt.datetime, end: dt.datetime, reason: str,
                   results_lost: int) -> None: ...


Slot = tuple[str, str]  # (device, check)


def _state(r: CheckResult) -> tuple[str, frozenset[tuple[str, str | None]]]:
    return (r.status.value, frozenset((f.code.value, f.subject) for f in r.findings))


@dataclasses.dataclass
class _Run:
    """Results of one slot with the same answer, waiting: the first and the newest."""

    first: CheckResult | None  # None once written (the newest still waits)
    last: CheckResult | None
    seq: int

    def held(self) -> list[CheckResult]:
        return [r for r in (self.first, self.last) if r is not None]

    @property
    def start(self) -> dt.datetime:
        r = self.first or self.last
        assert r is not None
        return r.at


@dataclasses.dataclass
class _AlertEvent:
    kind: str
    alertname: str
    device: str
    labels: dict[str, str]
    at: dt.datetime


def _error_text(exc: BaseException) -> str:
    """The database's own words (SQLAlchemy would add the SQL and its parameters)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).splitlines()[0] if str(exc) else ""
    return f"{type(orig or exc).__name__}: {text}"[:200]


class LogWriter:
    """The store's sink: `writer(results)` from the event loop; `close()` at the end."""

    def __init__(
        self,
        store: LogStore,
        health: StoreHealth | None = None,
        *,
        max_held: int = 200_000,
        max_events: int = 10_000,
        max_batch: int = 500,
        max_delay: float = 1.0,
        chunk: int = 5_000,
        retry_initial: float = 0.5,
        retry_max: float = 15.0,
        now: Callable[[], dt.datetime] = clock_now,
        name: str = "log-writer",
    ) -> None:
        self._store = store
        self.health = health or StoreHealth()
        self.health.enabled = True
        self._max_held = max(1, max_held)
        self._max_events = max(1, max_events)
        self._max_batch = max_batch
        self._max_delay = max_delay
        self._chunk = chunk
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._now = now
        self._cv = threading.Condition()
        self._incoming: list[CheckResult] = []
        self._events: collections.deque[_AlertEvent] = collections.deque()
        self._runs: dict[Slot, list[_Run]] = {}
        self._order: list[tuple[dt.datetime, int, Slot]] = []  # heap: oldest run first
        self._seq = itertools.count()
        self._held = 0  # results waiting (after compaction)
        self._gap: tuple[dt.datetime, dt.datetime, int] | None = None  # lost, to record
        self._delay = retry_initial
        self._retry_at = 0.0
        self._flush_waiters: list[threading.Event] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- the producers' side (any thread) ------------------------------------------------

    def __call__(self, results: Sequence[CheckResult]) -> None:
        if not results:
            return
        with self._cv:
            self._incoming.extend(results)
            self._cv.notify()

    def record_alert_event(self, kind: Any, alertname: str, device: str,
                           labels: Mapping[str, str] | None = None,
                           at: dt.datetime | None = None) -> bool:
        """Queue a repair event (fired = 報修, resolved = 修復) with its own time."""
        with self._cv:
            if len(self._events) >= self._max_events:
                lost = self._events.popleft()
                self._note_lost(lost.at, lost.at, 1)
            self._events.append(_AlertEvent(str(kind), alertname, device, dict(labels or {}),
                                            at or self._now()))
            self._cv.notify()
        return True

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything handed over so far now; True when it is all in the log,
        False when the log cannot be written (or on timeout)."""
        done = threading.Event()
        with self._cv:
            self._flush_waiters.append(done)
            self._retry_at = 0.0  # try now, not after the backoff
            self._cv.notify()
        return done.wait(timeout) and not self.waiting()

    def waiting(self) -> bool:
        with self._cv:
            return bool(self._incoming) or self._pending()

    def close(self, timeout: float = 30.0) -> None:
        """One last try to write what waits, then stop. What still cannot be written is
        lost, and the service log says how much and since when."""
        if not self._thread.is_alive():
            return
        with self._cv:
            self._stopping = True
            self._retry_at = 0.0
            self._cv.notify()
        self._thread.join(timeout)
        with self._cv:
            self._absorb()
            if self._pending():
                oldest = self._oldest()
                event(log, "inspection log: results lost at shutdown (the disk was full or "
                           "the database unwritable)", logging.ERROR,
                      results=self._held, repair_events=len(self._events),
                      since=oldest.isoformat() if oldest else None)

    # -- the worker ------------------------------------------------------------------------

    def _run(self) -> None:
        gather_until: float | None = None
        while True:
            with self._cv:
                while True:
                    self._absorb()
                    now = time.monotonic()
                    if self._stopping:
                        break
                    if not self._pending():
                        gather_until = None
                        self._release_waiters()
                        self._cv.wait()
                        continue
                    if self._retry_at and now < self._retry_at:
                        self._cv.wait(self._retry_at - now)  # backing off after a failure
                        continue
                    if gather_until is None:
                        gather_until = now + self._max_delay
                    if (self._held >= self._max_batch or self._flush_waiters or self._retry_at
                            or self.health.failing_since is not None or now >= gather_until):
                        break
                    self._cv.wait(gather_until - now)  # gather a batch: fewer commits
                gather_until = None
                if self._stopping and not self._pending():
                    self._release_waiters()
                    return
            ok = self._write_some()
            with self._cv:
                if not ok or not self._pending():
                    self._release_waiters()
                if self._stopping and not ok:
                    return

    def _pending(self) -> bool:
        return bool(self._held or self._events or self._gap)

    def _absorb(self) -> None:
        """Move handed-over results into the waiting runs, compacting repeats."""
        incoming, self._incoming = self._incoming, []
        for r in sorted(incoming, key=lambda r: r.at):
            slot = (r.device, r.check.value)
            runs = self._runs.setdefault(slot, [])
            last = runs[-1] if runs else None
            newest = last.last or last.first if last is not None else None
            if last is not None and newest is not None and _state(newest) == _state(r) \
                    and r.at >= newest.at:
                if last.last is None:
                    self._held += 1
                last.last = r
                continue
            run = _Run(first=r, last=None, seq=next(self._seq))
            runs.append(run)
            heapq.heappush(self._order, (r.at, run.seq, slot))
            self._held += 1
        self._bound()
        self._publish()

    def _bound(self) -> None:
        """Past max_held, the oldest runs give way to a 「紀錄中斷」 marker per slot."""
        while self._held > self._max_held and self._order:
            start, seq, slot = heapq.heappop(self._order)
            runs = self._runs.get(slot, [])
            idx = next((i for i, r in enumerate(runs) if r.seq == seq), None)
            if idx is None or idx == len(runs) - 1:
                continue  # written already, or the slot's newest answer: kept
            run = runs[idx]
            lost = run.held()
            end = max(r.at for r in lost)
            self._held -= len(lost)
            del runs[idx]
            prev = runs[idx - 1] if idx > 0 else None
            marker_before = prev is not None and prev.first is not None \
                and prev.first.status == Status.UNKNOWN and prev.first.reason == GAP_REASON
            if not marker_before:
                first = lost[0]
                marker = dataclasses.replace(first, status=Status.UNKNOWN, reason=GAP_REASON,
                                             findings=(), values=None)
                runs.insert(idx, _Run(first=marker, last=None, seq=next(self._seq)))
                self._held += 1
            self._note_lost(start, end, len(lost))

    def _note_lost(self, start: dt.datetime, end: dt.datetime, n: int) -> None:
        if self._gap is None:
            self._gap = (start, end, n)
        else:
            a, b, m = self._gap
            self._gap = (min(a, start), max(b, end), m + n)
        self.health.dropped_total += n
        if self.health.gap_since is None:
            self.health.gap_since = start

    def _oldest(self) -> dt.datetime | None:
        starts = [runs[0].start for runs in self._runs.values() if runs]
        starts += [e.at for e in list(self._events)[:1]]
        return min(starts) if starts else None

    def _publish(self) -> None:
        h = self.health
        h.unwritten = self._held
        h.oldest_unwritten_at = self._oldest()
        h.pending_events = len(self._events)

    def _take(self, limit: int) -> list[tuple[Slot, _Run, CheckResult]]:
        """The oldest `limit` waiting results, in time order."""
        cand: list[tuple[dt.datetime, int, Slot, _Run, CheckResult]] = []
        for slot, runs in self._runs.items():
            for run in runs:
                for r in run.held():
                    cand.append((r.at, run.seq, slot, run, r))
        cand.sort(key=lambda c: (c[0], c[1], c[4] is c[3].last))
        return [(slot, run, r) for _, _, slot, run, r in cand[:limit]]

    def _write_some(self) -> bool:
        """One attempt: the recorded gap, the oldest results, the repair events. Each step
        that commits is booked at once, so a later step failing never writes it twice."""
        with self._cv:
            healthy = self.health.failing_since is None
            taken = self._take(self._max_batch if healthy else self._chunk)
            events = list(self._events)
            gap, self._gap = self._gap, None  # taken: a failure below puts it back
        try:
            if gap is not None:
                self._store.record_gap(gap[0], gap[1], GAP_REASON, gap[2])
                gap = None
                with self._cv:
                    if self._gap is None:
                        self.health.gap_since = None
            if taken:
                self._store.record_results([r for _, _, r in taken])
                with self._cv:
                    self._mark_written(taken)
                    taken = []
            while events:
                ev = events[0]
                self._store.record_alert_event(ev.kind, ev.alertname, ev.device, ev.labels,
                                               ev.at)
                with self._cv:
                    if self._events and self._events[0] is ev:
                        self._events.popleft()
                events.pop(0)
        except Exception as exc:  # the log cannot be written now: keep what is left
            with self._cv:
                if gap is not None:  # back, merged with any loss meanwhile
                    self._gap = gap if self._gap is None else (
                        min(gap[0], self._gap[0]), max(gap[1], self._gap[1]),
                        gap[2] + self._gap[2])
            self._failed(exc)
            return False
        with self._cv:
            self._succeeded()
            if not self._held:
                self._order.clear()
            self._publish()
        return True

    def _mark_written(self, taken: list[tuple[Slot, _Run, CheckResult]]) -> None:
        written = 0
        for slot, run, r in taken:
            runs = self._runs.get(slot, [])
            if run not in runs:
                continue  # given way to the bound meanwhile: already booked there
            if run.first is r:
                run.first = None
            elif run.last is r:
                run.last = None
            else:
                continue  # a newer result took its place meanwhile; that one still waits
            written += 1
            self._held -= 1
            if run.first is None and run.last is None:
                runs.remove(run)
                if not runs:
                    self._runs.pop(slot, None)
        self.health.written_total += written

    def _failed(self, exc: BaseException) -> None:
        with self._cv:
            h = self.health
            h.write_errors_total += 1
            h.last_error = _error_text(exc)
            first = h.failing_since is None
            if first:
                h.failing_since = self._now()
                self._delay = self._retry_initial
            else:
                self._delay = min(self._retry_max, self._delay * 2)
            self._retry_at = time.monotonic() + self._delay
            self._publish()
            waiting = self._held
        if first:
            event(log, "inspection log not being kept: writes fail; results wait and will "
                       "be written with their own times", logging.ERROR,
                  error=h.last_error, waiting=waiting)

    def _succeeded(self) -> None:
        h = self.health
        h.last_success_at = self._now().timestamp()
        self._retry_at = 0.0
        if h.failing_since is not None:
            since = h.failing_since
            h.failing_since = None
            h.last_error = None
            event(log, "inspection log writable again", since=since.isoformat(),
                  waiting=self._held)

    def _release_waiters(self) -> None:
        for w in self._flush_waiters:
            w.set()
        self._flush_waiters = []


class LoggedStore:
    """The store as the alert engine sees it: repair events go through the writer (they
    wait out an outage like results do); everything else is the store itself."""

    def __init__(self, store: Any, writer: LogWriter) -> None:
        self._store = store
        self._writer = writer

    def record_alert_event(self, kind: Any, alertname: str, device: str,
                           labels: Mapping[str, str] | None = None,
                           at: dt.datetime | None = None) -> bool:
        return self._writer.record_alert_event(kind, alertname, device, labels, at)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)
