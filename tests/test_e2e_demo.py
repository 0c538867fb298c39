"""`camwatch demo --duration 60 --output DIR`, headless, as CI runs it: it exits 0, prints
the URLs and the sheet paths, and the sheets hold the scripted fault as 否.

The demo runs on a small random campus (--inventory) rather than the example campus, so
that it cannot collide with another test or demo using the example's fixed ports."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from camwatch.commands.demo import pick_devices
from tests.conftest import env_without_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(170)]


def test_demo_runs_headless_and_writes_the_sheets(tmp_path: Path) -> None:
    from simulator.testing import small_campus

    campus = small_campus(tmp_path, cameras=8, recorders=4, set_env=False)
    assert campus.path is not None
    out = tmp_path / "sheets"
    env = env_without_settings()
    env.update(campus.passwords)
    proc = subprocess.run(
        [sys.executable, "-c", "from camwatch.cli import main; main()", "demo", "--duration", "60",
         "--output", str(out), "--inventory", str(campus.path),
         "--screenshot", str(tmp_path / "view.svg")],
        capture_output=True, text=True, timeout=160, env=env, stdin=subprocess.DEVNULL,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-3000:]
    assert re.search(r"camwatch\s+http://127\.0\.0\.1:\d+/", proc.stdout)
    assert re.search(r"metrics\s+http://127\.0\.0\.1:\d+/metrics", proc.stdout)
    assert "scenario:" in proc.stdout  # plain progress lines, not a live view
    for secret in campus.passwords.values():
        assert secret not in text

    svg = (tmp_path / "view.svg").read_text(encoding="utf-8")
    assert svg.startswith("<svg") and "scenario" in svg  # the live view, for the README

    sheets = sorted(out.glob("*.pdf"))
    units = set(campus.inventory.units)
    assert {p.name.split("-20")[0] for p in sheets} == units
    for p in sheets:
        assert str(p) in proc.stdout.replace("\n", "")

    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed")
    _blur, disk, _offline = pick_devices(campus.inventory)
    assert disk is not None
    unit = campus.inventory.recorders[disk].unit
    # one sheet per unit, or two when the demo ran across the end of a month
    content = "".join(
        subprocess.run(["pdftotext", "-layout", str(p), "-"], capture_output=True, text=True,
                       check=True).stdout
        for p in sheets if p.name.startswith(unit + "-"))
    assert "保養紀錄簿" in content
    assert "■否" in content  # the recorder disk that failed during the demo
