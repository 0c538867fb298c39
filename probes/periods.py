"""Periods for what a check re-reads only now and then (a device's model and uptime, a
recorder's full day of recordings): which period a moment falls in, per device.

A device re-reads once its period changes. Each device's periods start at its own
offset (from a hash of its id, so the same in every process and run): after a restart
the fleet's full reads are spread evenly over the period instead of all arriving
together one period later. Times are `time.monotonic()` seconds: a duration, not a
decision about the date.
"""

from __future__ import annotations

import zlib
from typing import Any


def period_slot(device_id: str, every: float, t: float) -> int:
    """Which period of `every` seconds the monotonic time `t` falls in, for this device
    (0 when `every` is 0: due() then reads every time anyway)."""
    if every <= 0:
        return 0
    offset = every * (zlib.crc32(device_id.encode()) / 2**32)
    return int((t + offset) // every)


def read_now(kept: dict[str, Any], device_id: str, every: float, t: float) -> None:
    """Record in `kept` that what it holds was read at `t` (see due)."""
    kept["slot"] = period_slot(device_id, every, t)


def due(kept: dict[str, Any], device_id: str, every: float, t: float) -> bool:
    """Whether what `kept` holds (read in period `kept["slot"]`) must be read again at
    `t`: never read, a new period, or `every` 0 (read every time)."""
    if every <= 0 or "slot" not in kept:
        return True
    return bool(period_slot(device_id, every, t) != kept["slot"])
