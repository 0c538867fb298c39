"""2000 cameras + 100 recorders start within 30 s and stay under 1 GB (slow: run with -m slow;
`python -m simulator.bench` prints the same figures)."""

from __future__ import annotations

import pytest

from simulator.bench import run


@pytest.mark.slow
def test_two_thousand_cameras_start_fast_and_small():
    res = run(2000, 100, load_s=1.0)
    assert res["start_s"] < 30, res
    assert res["rss_peak_mb"] < 1024, res
    assert res["snapshots_per_s"] > 0, res
