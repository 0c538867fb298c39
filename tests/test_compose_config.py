"""docker-compose.yml and the Prometheus config it mounts (no Docker engine needed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        pytest.skip("docker-compose not installed (scripts/setup.sh installs it)")
    return path


def test_docker_compose_config_is_valid_and_a_broken_copy_is_not(tmp_path):
    exe = compose()
    ok = subprocess.run([exe, "config", "-q"], cwd=ROOT, capture_output=True, text=True,
                        timeout=60)
    assert ok.returncode == 0, ok.stderr
    broken = (ROOT / "docker-compose.yml").read_text().replace("    ports:\n", "    portz:\n", 1)
    (tmp_path / "docker-compose.yml").write_text(broken)
    bad = subprocess.run([exe, "config", "-q"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode != 0


def test_every_mounted_project_file_exists_and_ports_stay_on_loopback():
    cfg = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = cfg["services"]
    assert {"camwatch", "simulator", "prometheus", "alertmanager", "grafana"} <= set(services)
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            src = vol.split(":", 1)[0]
            if src.startswith("./"):
                assert (ROOT / src).exists(), f"{name}: {src} missing"
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    env = services["camwatch"]["environment"]
    for key in ("CAMWATCH_LISTEN", "CAMWATCH_ALERTMANAGER_URL", "CAMWATCH_STORE_URL",
                "CAMWATCH_HOST_INTERVAL", "CAMWATCH_RECORDING_INTERVAL",
                "CAMWATCH_PICTURE_INTERVAL"):
        assert key in env
    # the simulator shares camwatch's loopback so the example campus' 127.20.R.1 answer
    assert services["simulator"]["network_mode"] == "service:camwatch"


def test_prometheus_config_passes_promtool(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed")
    cfg = yaml.safe_load((ROOT / "alerts" / "prometheus.yml").read_text())
    assert cfg["scrape_configs"][0]["job_name"] == "camwatch"  # the rules' job label
    cfg["rule_files"] = [str(ROOT / "alerts" / "camwatch.rules.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    r = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
