"""Grafana dashboards: up to date with dashboards/build.py, type-checked against npm
@grafana/schema (no Grafana server exists in any registry we can reach), provisioned."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DASH = ROOT / "dashboards"
CHECK = DASH / "schema-check"
NAMES = ["campus-overview", "device", "storage-retention"]


def load(name: str) -> dict:
    return json.loads((DASH / f"{name}.json").read_text())


def tsc() -> Path:
    path = CHECK / "node_modules" / ".bin" / "tsc"
    if not path.exists() or shutil.which("node") is None:
        pytest.skip("run `npm install` in dashboards/schema-check (scripts/setup.sh does)")
    return path


def test_json_files_are_what_build_py_writes():
    r = subprocess.run([sys.executable, str(DASH / "build.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("name", NAMES)
def test_dashboard_shape(name):
    d = load(name)
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    assert d["uid"].startswith("camwatch-") and d["title"].startswith("camwatch")
    assert (CHECK / f"check-{name}.ts").exists()
    for p in d["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24
        if p["type"] == "row":
            continue
        assert p["targets"], p["title"]
        assert p["datasource"]["uid"] == "${datasource}"
        for t in p["targets"]:
            assert t["expr"].strip() and t["refId"]


def test_typescript_check_passes_and_fails_on_a_broken_copy(tmp_path):
    binary = tsc()
    ok = subprocess.run([str(binary), "-p", "tsconfig.json"], cwd=CHECK, capture_output=True,
                        text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # a copy with one wrong type (gridPos.h as text) must fail
    work = tmp_path / "dashboards"
    (work / "schema-check").mkdir(parents=True)
    for f in ("tsconfig.json", "loose.ts", "check-device.ts", "package.json"):
        shutil.copy(CHECK / f, work / "schema-check" / f)
    os.symlink(CHECK / "node_modules", work / "schema-check" / "node_modules")
    broken = load("device")
    broken["panels"][0]["gridPos"]["h"] = "x"
    (work / "device.json").write_text(json.dumps(broken))
    bad = subprocess.run([str(binary), "-p", "tsconfig.json"], cwd=work / "schema-check",
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0
    assert "device.json" in bad.stdout or "check-device" in bad.stdout


def test_provisioning_points_at_the_dashboards():
    prov = yaml.safe_load((DASH / "provisioning" / "dashboards.yml").read_text())
    assert prov["providers"][0]["type"] == "file"
    ds = yaml.safe_load((DASH / "provisioning" / "datasources.yml").read_text())
    assert ds["datasources"][0]["type"] == "prometheus"
    compose = (ROOT / "docker-compose.yml")
    if compose.exists():
        text = compose.read_text()
        for name in NAMES:
            assert f"dashboards/{name}.json" in text
