"""The latest result of every check on every device, shared by the scheduler (writer)
and the exporters (readers). Exporters build metrics from it at scrape time; it keeps no
history (that is the store's job)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from probes.result import CheckKind, CheckResult


@dataclass
class SchedulerStats:
    last_cycle_end: dict[CheckKind, float] = field(default_factory=dict)  # unix seconds
    lag_seconds: dict[CheckKind, float] = field(default_factory=dict)
    checks_done: Counter[CheckKind] = field(default_factory=Counter)


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


class LatestState:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._results: dict[tuple[str, CheckKind], CheckResult] = {}
        self.scheduler = SchedulerStats()
        self.probes = ProbeStats()
        self.ready = False

    def update(self, results: Iterable[CheckResult]) -> None:
        with self._lock:
            for r in results:
                self._results[(r.device, r.check)] = r

    def get(self, device: str, check: CheckKind) -> CheckResult | None:
        with self._lock:
            return self._results.get((device, check))

    def snapshot(self) -> list[CheckResult]:
        with self._lock:
            return list(self._results.values())
