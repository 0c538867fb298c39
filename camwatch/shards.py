"""Shards of the inventory (`camwatch run --shard K/N`): which instance probes which
recorder, and how a shard is named in the inspection log.

The key is the recorder id, hashed with CRC-32 (stable on every machine, restart and
Python version, unlike hash()): a recorder and all its cameras are probed by the same
instance, and a device keeps its shard when the inventory grows.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable
from typing import TypeVar

ALL_SHARDS = "all"  # the shard text of an instance that probes the whole inventory

T = TypeVar("T")


class ShardError(ValueError):
    pass


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' with 1 <= K <= N (e.g. 2/3 is the second of three instances)."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m:
        raise ShardError(f"--shard {text!r}: expected K/N, e.g. 1/3")
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 1 <= k <= n:
        raise ShardError(f"--shard {text!r}: K must be between 1 and N (e.g. 1/3 … 3/3)")
    if n > 999:
        raise ShardError(f"--shard {text!r}: at most 999 shards")
    return k, n


def shard_of(key: str, n: int) -> int:
    """Stable shard (1-based) of a key: the same on every machine and every restart."""
    return zlib.crc32(key.encode("utf-8")) % n + 1


def shard_text(shard: tuple[int, int] | None) -> str:
    """How the log names an instance's shard: "all" or "K/N"."""
    return ALL_SHARDS if shard is None else f"{shard[0]}/{shard[1]}"


def covers(shard: str, recorder: str) -> bool:
    """Whether the instance of this shard text probes the devices of `recorder`."""
    if shard == ALL_SHARDS:
        return True
    try:
        k, n = parse_shard(shard)
    except ShardError:
        return True  # unreadable: assume it could have
    return shard_of(recorder, n) == k


def filter_shard(items: Iterable[T], shard: tuple[int, int],
                 recorder_of: Callable[[T], str]) -> list[T]:
    """The items (plan entries, devices) whose recorder falls in `shard`."""
    k, n = shard
    return [x for x in items if shard_of(recorder_of(x), n) == k]
