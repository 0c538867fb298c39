"""The C heap of a long-running camwatch process, on glibc (elsewhere these do nothing).

Two settings that keep `camwatch run` and its workers small at a school's scale
(measured at 10,000 cameras, README "Latest figures"):

- `limit_arenas()`: glibc gives each thread that allocates its own heap ("arena"), up to
  eight per core; camwatch's threads (the log writer, the SNMP and frame-decoding pools)
  each kept tens of MB of freed memory to themselves. Two arenas are enough for threads
  that mostly wait.
- `trim()`: hands the heap's free pages back to the system after a large transient
  (the inventory read at start, the probe memory written as JSON every minute), which
  glibc otherwise keeps for reuse.
"""

from __future__ import annotations

import ctypes
import sys
from functools import cache

_M_ARENA_MAX = -8  # malloc.h


@cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt  # noqa: B018 - absent on musl: then nothing is done
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def available() -> bool:
    """Whether this process runs on glibc, where these settings exist."""
    return _libc() is not None


def limit_arenas(arenas: int = 2) -> bool:
    """Cap the heaps threads get (before the threads start); True when it took effect."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(_M_ARENA_MAX, arenas) == 1)


def trim() -> bool:
    """Return the heap's free memory to the system; True when some was returned."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0) == 1)
