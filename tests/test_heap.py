"""camwatch.heap: the glibc settings that keep a long-running process small."""

from __future__ import annotations

import pytest

from camwatch import heap

# camwatch.heap does nothing where the C library is not glibc (macOS, musl): these
# calls exist only there. Debian, the CI machine and the Dockerfile's image are glibc.
glibc = pytest.mark.skipif(not heap.available(),
                           reason="not glibc: camwatch.heap has no mallopt/malloc_trim to call")


def rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@glibc
def test_arenas_can_be_limited() -> None:
    assert heap.limit_arenas(8) is True


@glibc
def test_trim_gives_freed_heap_back() -> None:
    # Medium blocks (above pymalloc's 512 bytes, below glibc's mmap threshold) freed
    # in the middle of the heap stay in the process until trimmed.
    keep = []
    blocks = []
    for n in range(40_000):
        blocks.append(bytes(1000 + n % 7))
        if n % 1000 == 0:
            keep.append(bytes(1000))  # pins the heap's top: no plain shrink
    del blocks
    before = rss_kb()
    assert heap.trim() is True
    assert rss_kb() < before - 10_000, (before, rss_kb())
    assert keep
