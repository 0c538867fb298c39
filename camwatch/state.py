"""The latest result of every check on every device, shared by the scheduler (writer)
and the exporters (readers). Exporters build metrics from it at scrape time; it keeps no
history (that is the store's job)."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from probes.result import CheckKind, CheckResult, Status


@dataclass
class SchedulerStats:
    last_cycle_end: dict[CheckKind, float] = field(default_factory=dict)  # unix seconds
    lag_seconds: dict[CheckKind, float] = field(default_factory=dict)
    checks_done: Counter[CheckKind] = field(default_factory=Counter)
    # Runs due but not started, per check: (how many, the oldest one's lateness in
    # seconds). Set by the service to Scheduler.overdue; lag_seconds only sees runs that
    # started, so under overload this is the honest "how far behind" figure.
    overdue_fn: Callable[[], Mapping[CheckKind, tuple[int, float]]] | None = None


@dataclass
class ProbeStats:
    # (driver, reason) -> count of probe errors
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    # driver -> (count, sum of seconds)
    duration_count: Counter[str] = field(default_factory=Counter)
    duration_sum: dict[str, float] = field(default_factory=dict)

    def observe(self, driver: str, seconds: float) -> None:
        self.duration_count[driver] += 1
        self.duration_sum[driver] = self.duration_sum.get(driver, 0.0) + seconds


@dataclass
class StoreHealth:
    """How the inspection log is being kept (camwatch/logwriter.py writes this; /metrics,
    /ready and the landing page read it). Plain attributes: a reader may see one update
    half done, never a broken value."""

    enabled: bool = False  # a log is configured
    written_total: int = 0  # results committed
    write_errors_total: int = 0  # failed write attempts
    dropped_total: int = 0  # results lost (waited past the bound): a gap in the log
    unwritten: int = 0  # results waiting to be written
    pending_events: int = 0  # repair events waiting
    oldest_unwritten_at: dt.datetime | None = None  # the oldest waiting result's time
    last_success_at: float | None = None  # unix seconds of the last commit
    failing_since: dt.datetime | None = None  # writes failing since (None: writable)
    last_error: str | None = None  # the database's words, without SQL or parameters
    gap_since: dt.datetime | None = None  # results lost since then, not yet recorded

    @property
    def kept(self) -> bool:
        """The log is being kept: writes succeed (or nothing needed writing)."""
        return self.failing_since is None


@dataclass
class ReloadStatus:
    """The last reload of inventory and settings (SIGHUP, POST /admin/reload), as
    Prometheus reports its own: start counts as the first successful load."""

    success: bool = True
    last_success_at: float | None = None  # unix seconds
    last_attempt_at: float | None = None
    source: str = "start"  # start | SIGHUP | POST /admin/reload
    errors: list[str] = field(default_factory=list)  # why the last attempt was refused
    warnings: list[str] = field(default_factory=list)  # accepted, with a caveat


class LatestState:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._results: dict[tuple[str, CheckKind], CheckResult] = {}
        # (device, check) -> (status, when that status began): "failing since" for the
        # landing page and dashboards.
        self._since: dict[tuple[str, CheckKind], tuple[Status, dt.datetime]] = {}
        self.scheduler = SchedulerStats()
        self.probes = ProbeStats()
        self.store = StoreHealth()
        self.reload = ReloadStatus()
        self.ready = False

    def update(self, results: Iterable[CheckResult]) -> None:
        with self._lock:
            for r in results:
                key = (r.device, r.check)
                self._results[key] = r
                prev = self._since.get(key)
                if prev is None or prev[0] != r.status:
                    self._since[key] = (r.status, r.at)

    def forget(self, keep: set[tuple[str, CheckKind]]) -> int:
        """Drop the results of checks no longer planned (after a reload)."""
        with self._lock:
            gone = [k for k in self._results if k not in keep]
            for k in gone:
                del self._results[k]
                self._since.pop(k, None)
            return len(gone)

    def get(self, device: str, check: CheckKind) -> CheckResult | None:
        with self._lock:
            return self._results.get((device, check))

    def status_since(self, device: str, check: CheckKind) -> dt.datetime | None:
        """When the current status of this check began (first result with it)."""
        with self._lock:
            entry = self._since.get((device, check))
            return entry[1] if entry else None

    def snapshot(self) -> list[CheckResult]:
        with self._lock:
            return list(self._results.values())
