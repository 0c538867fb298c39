"""The periods of what a check re-reads only now and then (probes.periods): a device
re-reads once per period, and a fleet's re-reads are spread over the period."""

from __future__ import annotations

from probes.periods import due, period_slot


def test_a_device_re_reads_once_per_period() -> None:
    every = 300.0
    slots = {period_slot("cam-0001", every, 1000.0 + t) for t in range(0, 3000, 7)}
    assert len(slots) in (10, 11)  # 3,000 s of checks: ten periods (and the edges)


def test_due_when_never_read_when_the_period_changed_or_when_turned_off() -> None:
    every, t = 300.0, 12345.0
    assert due({}, "cam-1", every, t)
    kept = {"slot": period_slot("cam-1", every, t)}
    assert not due(kept, "cam-1", every, t + 0.001)
    assert due(kept, "cam-1", every, t + every)  # one period on: always a new slot
    assert due(kept, "cam-1", 0.0, t)  # 0: every check reads everything


def test_a_fleet_re_reads_spread_over_the_period() -> None:
    """After a restart every device reads in full at its first check; the next full
    reads must not all fall one period later at once (a burst every five minutes)."""
    every, start = 300.0, 5000.0
    ids = [f"cam-{n:05d}" for n in range(2000)]
    kept = {d: period_slot(d, every, start) for d in ids}
    # Within the first tenth of the period, about a tenth of the fleet re-reads.
    early = sum(period_slot(d, every, start + every / 10) != kept[d] for d in ids)
    assert 0.05 * len(ids) < early < 0.15 * len(ids)
    # Within one period, every device has.
    assert all(period_slot(d, every, start + every) != kept[d] for d in ids)
