"""camwatch.clock: the one clock, and CAMWATCH_CLOCK, the one place it is pinned."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time

import pytest

from camwatch import clock

TAIPEI = dt.timezone(dt.timedelta(hours=8))


def test_unset_or_system_is_the_host_clock():
    for env in ({}, {clock.ENV: ""}, {clock.ENV: "system"}):
        c = clock.from_env(env)
        assert isinstance(c, clock.SystemClock)
        assert abs((c.now() - dt.datetime.now(dt.UTC)).total_seconds()) < 1
        assert c.now().tzinfo is dt.UTC


def test_pinned_clock_starts_at_the_instant_and_runs_on_in_real_time():
    c = clock.parse("2026-11-30T23:58:00+08:00")
    assert isinstance(c, clock.PinnedClock)
    first = c.now()
    assert first.tzinfo is dt.UTC
    assert dt.timedelta(0) <= first - dt.datetime(2026, 11, 30, 15, 58, tzinfo=dt.UTC) \
        < dt.timedelta(seconds=5)
    time.sleep(0.05)
    assert c.now() > first  # timeouts and intervals still see time pass
    assert clock.local_now(c, "Asia/Taipei").strftime("%Y-%m-%d %H:%M") == "2026-11-30 23:58"
    assert clock.local_today(c, "Asia/Taipei") == dt.date(2026, 11, 30)
    # two minutes later it is the 1st of the next month on the campus' calendar
    later = clock.PinnedClock(c.start, c.anchor - 120)
    assert clock.local_today(later, "Asia/Taipei") == dt.date(2026, 12, 1)


def test_the_same_value_is_the_same_clock_for_the_life_of_the_process():
    env = {clock.ENV: "2026-11-30T02:10:00+08:00"}
    a = clock.from_env(env)
    time.sleep(0.01)
    assert clock.from_env(env) is a  # anchored once: it does not restart on each read


def test_an_anchored_value_gives_another_process_the_very_same_clock():
    pinned = clock.PinnedClock.starting_now(dt.datetime(2026, 11, 30, 23, 58, tzinfo=TAIPEI))
    value = pinned.env_value()
    assert clock.parse(value) == pinned
    code = ("from camwatch import clock; import sys; "
            "sys.stdout.write(clock.default_clock().now().isoformat())")
    env = {**os.environ, clock.ENV: value}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True, timeout=60).stdout
    theirs = dt.datetime.fromisoformat(out)
    ours = pinned.now()
    # the child read the clock before we did; both run on the host's time from one anchor
    assert dt.timedelta(0) <= ours - theirs < dt.timedelta(seconds=30)
    assert theirs.astimezone(TAIPEI).date() == dt.date(2026, 11, 30)


@pytest.mark.parametrize("bad", ["tomorrow", "2026-11-30 25:00", "2026-11-30T23:58:00",
                                 "2026-11-30T23:58:00+08:00@soon"])
def test_a_bad_value_says_the_form(bad):
    with pytest.raises(clock.ClockError, match="2026-11-30T23:58:00\\+08:00"):
        clock.parse(bad)


def test_manual_clock_moves_only_when_told():
    c = clock.ManualClock(dt.datetime(2026, 2, 28, 23, 59, 59, tzinfo=TAIPEI))
    assert c.now() == c.now()
    assert clock.local_today(c, "Asia/Taipei") == dt.date(2026, 2, 28)
    c.advance(1)
    assert clock.local_today(c, "Asia/Taipei") == dt.date(2026, 3, 1)
    c.advance(days=30)
    assert clock.local_today(c, "Asia/Taipei") == dt.date(2026, 3, 31)
    c.set(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert c.now() == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.ManualClock(dt.datetime(2026, 1, 1))


def test_each_test_and_its_subprocesses_run_on_the_one_clock():
    """Under `make test-clock` each test starts at the pinned instant (tests/conftest.py)
    and a process it starts reads the very same clock; otherwise both read the host's."""
    ours = clock.default_clock()
    code = ("from camwatch import clock; import sys; "
            "sys.stdout.write(clock.default_clock().now().isoformat())")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    theirs = dt.datetime.fromisoformat(out)
    assert abs((ours.now() - theirs).total_seconds()) < 30
    if isinstance(ours, clock.PinnedClock):
        assert dt.timedelta(0) <= theirs - ours.start < dt.timedelta(seconds=30)
