"""camwatch/logwriter.py: results that cannot be written wait and are written later with
their own times (the log reads as if nothing had happened); past the bound the loss is
recorded as a gap. A real SQLite log behind a switch that makes writes fail."""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from camwatch.logwriter import GAP_REASON, LogWriter
from camwatch.state import StoreHealth
from camwatch.store import Store
from probes.result import CheckKind, CheckResult, Finding, FindingCode, Status
from probes.values import HostValues
from tests.waits import CAP_S, HANG_S, LATE_S

T0 = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)


class Switch:
    """A real Store whose writes fail while `full` is set (like a full disk)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.full = False
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.full:
            raise OSError(28, "database or disk is full")

    def record_results(self, results: Sequence[CheckResult]) -> int:
        self._check()
        return self.store.record_results(results)

    def record_alert_event(self, *args: Any) -> bool:
        self._check()
        return self.store.record_alert_event(*args)

    def record_gap(self, *args: Any) -> None:
        self._check()
        self.store.record_gap(*args)


def results(n: int, seed: int = 1) -> list[CheckResult]:
    """n results of 6 devices over time, answers changing now and then."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        dev = f"cam-{i % 6}"
        fail = rng.random() < 0.3
        findings = (Finding(FindingCode.CAMERA_UNREACHABLE, "離線"),) if fail else ()
        out.append(CheckResult(dev, CheckKind.HOST, Status.FAIL if fail else Status.OK,
                               "離線" if fail else "正常", T0 + dt.timedelta(seconds=i),
                               values=HostValues(uptime_s=float(i)), findings=findings))
    return out


def history(store: Store) -> list[tuple[Any, ...]]:
    return [(t.device, t.status, t.started_at, t.last_seen_at, t.ended_at, t.values)
            for t in store.transitions()]


def wait_for(fn: Any, timeout: float = CAP_S) -> None:
    deadline = time.monotonic() + timeout
    while not fn():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.02)


def test_results_wait_through_an_outage_and_are_written_with_their_own_times(
    tmp_path: Path,
) -> None:
    rs = results(600)
    with Store.open(f"sqlite:///{tmp_path / 'ref.db'}") as ref:
        ref.record_results(rs)  # what the log holds when nothing goes wrong
        expected = history(ref)
    with Store.open(f"sqlite:///{tmp_path / 'log.db'}") as store:
        sw = Switch(store)
        health = StoreHealth()
        w = LogWriter(sw, health, max_delay=0.01, retry_initial=0.02, retry_max=0.05)
        w(rs[:100])
        assert w.flush(10)
        sw.full = True
        for i in range(100, 600, 50):
            w(rs[i:i + 50])
        wait_for(lambda: health.write_errors_total >= 2)
        assert not health.kept and health.failing_since is not None
        assert "disk is full" in (health.last_error or "")
        assert 0 < health.unwritten < 500  # repeats of an answer are compacted
        assert health.oldest_unwritten_at == rs[100].at
        assert not w.flush(2)  # cannot be written now: says so
        w.record_alert_event("fired", "CameraUnreachable", "cam-1", {"unit": "u"}, rs[150].at)
        sw.full = False
        assert w.flush(10)
        w.close()
        assert health.kept and health.unwritten == 0 and health.dropped_total == 0
        assert history(store) == expected  # as if nothing had happened
        assert [a.fired_at for a in store.alert_history(["cam-1"])] == [rs[150].at]
        assert store.gaps() == []


def test_past_the_bound_the_loss_is_a_gap_in_the_log(tmp_path: Path) -> None:
    rs = results(400, seed=2)
    with Store.open(f"sqlite:///{tmp_path / 'log.db'}") as store:
        sw = Switch(store)
        health = StoreHealth()
        w = LogWriter(sw, health, max_held=40, max_delay=0.01, retry_initial=0.02,
                      retry_max=0.05)
        sw.full = True
        w(rs)
        wait_for(lambda: health.write_errors_total >= 1)
        assert health.dropped_total > 0
        assert health.unwritten <= 40 + 6  # the bound, plus one marker per check
        sw.full = False
        assert w.flush(10)
        w.close()
        gaps = store.gaps()
        assert len(gaps) == 1
        assert gaps[0].started_at == rs[0].at and gaps[0].results_lost == health.dropped_total
        assert gaps[0].ended_at < rs[-1].at
        markers = [t for t in store.transitions() if t.reason == GAP_REASON]
        assert markers and all(t.status == Status.UNKNOWN for t in markers)
        # the newest answer of every check survived
        last = {r.device: r for r in rs}
        for dev, r in last.items():
            newest = [t for t in store.transitions([dev])][-1]
            assert newest.status == r.status and newest.last_seen_at == r.at


def test_close_during_an_outage_gives_up_quickly_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'log.db'}") as store:
        sw = Switch(store)
        sw.full = True
        # the next retry is minutes away: a close that waited for it would take them
        w = LogWriter(sw, StoreHealth(), max_delay=0.01, retry_initial=HANG_S,
                      retry_max=HANG_S)
        w(results(10))
        wait_for(lambda: sw.calls >= 1)
        started = time.monotonic()
        with caplog.at_level("ERROR"):
            w.close(timeout=HANG_S)
        assert time.monotonic() - started < LATE_S
        assert "results lost at shutdown" in caplog.text


def test_a_step_that_failed_after_another_committed_writes_nothing_twice(
    tmp_path: Path,
) -> None:
    """Results commit, then the repair event fails: the retry writes the event only (a
    second write of the same results would end rows at old times)."""
    rs = results(120, seed=3)
    with Store.open(f"sqlite:///{tmp_path / 'ref.db'}") as ref:
        ref.record_results(rs)
        expected = history(ref)

    class EventsFail(Switch):
        def record_alert_event(self, *args: Any) -> bool:
            self.calls += 1
            if self.full:
                raise OSError(28, "database or disk is full")
            return self.store.record_alert_event(*args)

        def record_results(self, results: Sequence[CheckResult]) -> int:
            return self.store.record_results(results)

    with Store.open(f"sqlite:///{tmp_path / 'log.db'}") as store:
        sw = EventsFail(store)
        sw.full = True
        health = StoreHealth()
        w = LogWriter(sw, health, max_delay=0.01, retry_initial=0.02, retry_max=0.05)
        w.record_alert_event("fired", "CameraUnreachable", "cam-1", {}, rs[5].at)
        for i in range(0, 120, 20):
            w(rs[i:i + 20])
        wait_for(lambda: health.write_errors_total >= 3)
        sw.full = False
        assert w.flush(10)
        w.close()
        assert history(store) == expected
        assert len(store.alert_history(["cam-1"])) == 1
