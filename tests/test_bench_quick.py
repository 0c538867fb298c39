"""`bench/run.py --quick` runs end to end and its JSON has every key issue 7 asks for,
each a number. Proves the harness works; says nothing about speed."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    (shutil.which("snmpd") is None and not Path("/usr/sbin/snmpd").exists())
    or shutil.which("prometheus-snmp-exporter") is None
    or shutil.which("prometheus-blackbox-exporter") is None,
    reason="snmpd and the SNMP and blackbox exporters are needed (scripts/setup.sh installs them)",
)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_quick_bench_writes_every_key(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = json.loads(proc.stdout)
    written = json.loads(out.read_text(encoding="utf-8"))
    assert printed == written

    for key in ("frame_cost_ratio_1080p", "frame_cost_ratio_4k", "snmp_cpu_ratio",
                "host_cpu_ratio_blackbox", "host_cpu_ratio_blackbox_flat_out"):
        assert _number(written[key]) and written[key] > 0, key
    # blackbox_exporter really probed the simulated cameras (its probes succeeded), paced
    # at the rate camwatch's host checks ran, and flat out
    bb = written["fleets"][0]["blackbox"]
    assert bb["succeeded"] == bb["probes"] > 0
    assert bb["paced_at_per_s"] == written["fleets"][0]["checks_per_s_alone"]["host"] > 0
    assert bb["flat_out"]["succeeded"] == bb["flat_out"]["probes"] > 0
    rec32 = written["recording_32ch"]
    for label in ("nvr-hikvision", "nvr-dahua", "nvr-generic", "dvr-hikvision"):
        assert _number(rec32[label]["cpu_ms_per_check"]), label
        assert all(r.startswith("ok:") for r in rec32[label]["results"]), rec32[label]
    m = written["machine"]
    assert m["cores"] >= 1 and m["cpu_model"] and m["python"] and m["date"]
    assert _number(m["memory_gb"])

    assert len(written["fleets"]) == 1
    fleet = written["fleets"][0]
    assert (fleet["cameras"], fleet["recorders"]) == (100, 5)
    for key in ("lag_pct", "rss_mb"):
        assert _number(fleet[key]), key
    assert fleet["rss_mb"] > 20  # a Python process with OpenCV loaded: a real reading
    for kind in ("host", "recording", "picture"):
        assert _number(fleet["cpu_s_per_1000_checks"][kind]), kind
        assert fleet["cpu_s_per_1000_checks"][kind] > 0, kind
        assert _number(fleet["checks_per_s"][kind]), kind
    # the host phase really ran checks against the simulator
    assert fleet["checks_per_s_alone"]["host"] > 0

    if (ROOT.parent / "shared" / "fixtures" / "video" / "cctv" / "labels.csv").is_file():
        pictures = written["picture_verdicts"]
        assert pictures["totals"]["ok_samples"] > 0 and pictures["labels"]
        assert "picture_labels_no_false_alarm" in written["goals"]
        assert "picture verdicts on the labelled footage" in proc.stderr

    startup = written["simulator_startup"]
    assert startup and all(_number(s["start_s"]) and s["rss_mb"] > 0 for s in startup)
    assert isinstance(written["goals"], dict) and written["goals"]
