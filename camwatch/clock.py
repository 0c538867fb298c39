"""camwatch's one clock. Code that decides by the time of day or the date (a scene's day
or night, a month and its inspection periods, retention ages, "today" on a report, the
housekeeping after local midnight, the device clock the simulator serves) reads it here,
never `datetime.now()`: time is an input, so a test can pin it and prove a decision at
02:10, at noon, or on the last minute of a month.

Durations and timeouts are not decisions about the date: they stay on `time.monotonic()`.

Which clock a process uses is decided once, here, by the environment variable
`CAMWATCH_CLOCK` (so that `camwatch run` or `camwatch simulate` started by a test or a
person inherit it):

    unset, "" or "system"               the host's clock (what a school runs)
    2026-11-30T23:58:00+08:00           pinned: reads that instant when the process first
                                        asks, then runs on in real time (timeouts, intervals
                                        and debounce behave as usual)
    2026-11-30T23:58:00+08:00@1796053080.25
                                        the same instant, read at host Unix time
                                        1796053080.25: every process given this value agrees
                                        to the millisecond (`PinnedClock.env_value()` writes
                                        it; the tests hand it to their subprocesses)

In-process code is handed a `Clock` (or its `now` method) by whoever builds it: the
service builds the probes' context, the scheduler, the store, the HTTP server and the
alert pusher from one clock. Probes never import camwatch: they receive `now` through
their context. `ManualClock` is for tests that step time by hand.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

ENV = "CAMWATCH_CLOCK"


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The host's clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


@dataclass(frozen=True)
class PinnedClock:
    """Read `start` at host Unix time `anchor`, and runs on in real time from there."""

    start: dt.datetime  # timezone-aware
    anchor: float  # host time.time() at which this clock read `start`

    def now(self) -> dt.datetime:
        return (self.start + dt.timedelta(seconds=time.time() - self.anchor)).astimezone(dt.UTC)

    def env_value(self) -> str:
        """The CAMWATCH_CLOCK value that gives another process this very clock."""
        return f"{self.start.isoformat()}@{self.anchor!r}"  # repr: the float round-trips

    @classmethod
    def starting_now(cls, start: dt.datetime) -> PinnedClock:
        return cls(_aware(start), time.time())


class ManualClock:
    """A clock that moves only when told (`advance`, `set`): for unit tests."""

    def __init__(self, start: dt.datetime) -> None:
        self._at = _aware(start)
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._at.astimezone(dt.UTC)

    def set(self, at: dt.datetime) -> None:
        with self._lock:
            self._at = _aware(at)

    def advance(self, seconds: float = 0.0, **delta: float) -> dt.datetime:
        """Move on by `seconds` (and/or timedelta keywords: minutes=, hours=, days=)."""
        with self._lock:
            self._at += dt.timedelta(seconds=seconds, **delta)
            return self._at.astimezone(dt.UTC)

    def __repr__(self) -> str:
        return f"ManualClock({self._at.isoformat()})"


class ClockError(ValueError):
    """A CAMWATCH_CLOCK value that is not an instant; the message says the form."""


def parse(value: str) -> Clock:
    """A CAMWATCH_CLOCK value -> the clock it names (see the module docstring)."""
    text = value.strip()
    if text in ("", "system"):
        return SystemClock()
    instant, sep, anchor_text = text.partition("@")
    try:
        start = dt.datetime.fromisoformat(instant)
        anchor = float(anchor_text) if sep else time.time()
    except ValueError:
        raise ClockError(
            f"{ENV}={value!r}: expected an ISO 8601 instant with its UTC offset, e.g. "
            "2026-11-30T23:58:00+08:00 (or 'system')"
        ) from None
    if start.tzinfo is None:
        raise ClockError(
            f"{ENV}={value!r}: the instant needs its UTC offset, e.g. 2026-11-30T23:58:00+08:00"
        )
    return PinnedClock(start, anchor)


_parsed: dict[str, Clock] = {}
_parsed_lock = threading.Lock()


def from_env(environ: Mapping[str, str] | None = None) -> Clock:
    """The clock CAMWATCH_CLOCK names. The same value gives the same clock object for the
    life of the process, so a pinned clock without an anchor starts once, at first use."""
    value = (os.environ if environ is None else environ).get(ENV, "")
    with _parsed_lock:
        clock = _parsed.get(value)
        if clock is None:
            clock = _parsed[value] = parse(value)
        return clock


def default_clock() -> Clock:
    """The clock of this process: the host's, unless CAMWATCH_CLOCK pins it."""
    return from_env()


def now() -> dt.datetime:
    """default_clock().now(): for defaults of code that was handed no clock."""
    return from_env().now()


def local_now(clock: Clock, tz: str | dt.tzinfo) -> dt.datetime:
    """The clock's instant in a timezone (the campus' `timezone`, e.g. Asia/Taipei)."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    return clock.now().astimezone(zone)


def local_today(clock: Clock, tz: str | dt.tzinfo) -> dt.date:
    """The date on the campus' wall calendar (not the UTC date: 07:00 in Taipei is
    still yesterday in UTC)."""
    return local_now(clock, tz).date()


def _aware(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None:
        raise ValueError(f"{at!r}: a clock needs a timezone-aware instant")
    return at
