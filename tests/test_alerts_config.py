"""alerts/: Alertmanager config and templates, Prometheus rules and their unit tests,
checked with the real amtool/promtool and a real Alertmanager for inhibition."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from exporters.alerting import FLAPPING, SPECS
from tests.promstack import alertmanager
from tests.waits import CAP_S

ALERTS = Path(__file__).resolve().parents[1] / "alerts"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (scripts/setup.sh installs it)")
    return path


def run(*args: str, cwd: Path = ALERTS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=60)


def test_amtool_check_config_passes_and_fails_on_a_broken_copy(tmp_path):
    amtool = tool("amtool")
    ok = run(amtool, "check-config", "alertmanager.yml")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    shutil.copytree(ALERTS / "templates", tmp_path / "templates")
    broken = (ALERTS / "alertmanager.yml").read_text().replace("receiver: unit-sped",
                                                               "receiver: nobody", 1)
    (tmp_path / "alertmanager.yml").write_text(broken)
    bad = run(amtool, "check-config", "alertmanager.yml", cwd=tmp_path)
    assert bad.returncode != 0


def test_alertmanager_routes_each_unit_of_the_example_campus():
    cfg = yaml.safe_load((ALERTS / "alertmanager.yml").read_text())
    assert cfg["route"]["group_by"] == ["alertname", "recorder"]
    routed = " ".join(m for r in cfg["route"]["routes"] for m in r.get("matchers", []))
    inventory = Path(__file__).resolve().parents[1] / "inventory" / "example-campus.yaml"
    if not inventory.exists():
        pytest.skip("inventory/example-campus.yaml not present")
    units = [u["id"] for u in yaml.safe_load(inventory.read_text())["units"]]
    for unit in units:
        assert f'unit="{unit}"' in routed, f"no route for unit {unit}"
    rd = [r for r in cfg["inhibit_rules"] if 'alertname="RecorderDown"' in r["source_matchers"]]
    assert rd and rd[0]["equal"] == ["recorder"]


def test_templates_render_in_traditional_chinese(tmp_path):
    amtool = tool("amtool")
    data = {
        "receiver": "unit-xuean", "status": "firing", "externalURL": "http://am",
        "groupLabels": {"alertname": "DiskFailed"},
        "commonLabels": {"alertname": "DiskFailed", "recorder": "nvr-main"},
        "commonAnnotations": {},
        "alerts": [{"status": "firing",
                    "labels": {"alertname": "DiskFailed", "severity": "critical"},
                    "annotations": {"summary": "教學大樓1樓機房 教學大樓1樓主機 硬碟 2 故障",
                                    "description": "請通知廠商更換硬碟並確認錄影恢復。",
                                    "runbook": "alerts/RUNBOOK.md#diskfailed"},
                    "startsAt": "2026-11-25T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}],
    }
    (tmp_path / "data.json").write_text(json.dumps(data, ensure_ascii=False))
    out = run(amtool, "template", "render", "--template.glob=templates/*.tmpl",
              f"--template.data={tmp_path / 'data.json'}",
              '--template.text={{ template "camwatch.subject" . }}\n'
              '{{ template "camwatch.text" . }}{{ template "camwatch.html" . }}')
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("【報修】監視系統 DiskFailed（1 件異常） 主機 nvr-main")
    assert "教學大樓1樓機房 教學大樓1樓主機 硬碟 2 故障" in out.stdout
    assert "等級：緊急" in out.stdout and "<table" in out.stdout


def test_promtool_checks_and_unit_tests_the_rules(tmp_path):
    promtool = tool("promtool")
    check = run(promtool, "check", "rules", "camwatch.rules.yml")
    assert check.returncode == 0, check.stdout + check.stderr
    test = run(promtool, "test", "rules", "camwatch.rules.test.yml")
    assert test.returncode == 0, test.stdout + test.stderr
    # the unit tests can fail: a rule that waits longer than tested is caught
    shutil.copy(ALERTS / "camwatch.rules.test.yml", tmp_path)
    rules = (ALERTS / "camwatch.rules.yml").read_text().replace("for: 2m", "for: 4m", 1)
    (tmp_path / "camwatch.rules.yml").write_text(rules)
    assert run(promtool, "test", "rules", "camwatch.rules.test.yml", cwd=tmp_path).returncode


def test_every_alert_has_a_runbook_section():
    runbook = (ALERTS / "RUNBOOK.md").read_text()
    anchors = set(re.findall(r'<a id="([a-z]+)"></a>', runbook))
    for spec in [*SPECS.values(), FLAPPING]:
        assert spec.alertname.lower() in anchors
    for rule in yaml.safe_load((ALERTS / "camwatch.rules.yml").read_text())["groups"][0]["rules"]:
        assert rule["annotations"]["runbook"].split("#")[1] in anchors


def test_recorder_down_inhibits_its_cameras_in_a_real_alertmanager(tmp_path):
    """The project's own routes and inhibition, with receivers swapped for blackholes so
    nothing is sent anywhere."""
    cfg = yaml.safe_load((ALERTS / "alertmanager.yml").read_text())
    cfg["receivers"] = [{"name": r["name"]} for r in cfg["receivers"]]
    cfg["global"] = {"resolve_timeout": "5m"}
    cfg["templates"] = []
    path = tmp_path / "am.yml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    now = dt.datetime.now(dt.UTC)

    def alert(name: str, device: str, recorder: str) -> dict:
        return {"labels": {"alertname": name, "device": device, "recorder": recorder,
                           "unit": "xuean", "severity": "warning"},
                "annotations": {"summary": "x"},
                "startsAt": now.isoformat(),
                "endsAt": (now + dt.timedelta(minutes=5)).isoformat()}

    with alertmanager(path) as am:
        am.post_alerts([alert("RecorderDown", "nvr-main", "nvr-main"),
                        alert("PictureBlurred", "main-01", "nvr-main"),
                        alert("PictureBlurred", "teach-01", "nvr-teach")])
        deadline = time.monotonic() + CAP_S  # Alertmanager evaluates inhibition soon
        while True:
            got = {a["labels"]["device"]: a["status"] for a in am.alerts()}
            if len(got) == 3 and got["main-01"]["state"] == "suppressed":
                break
            assert time.monotonic() < deadline, got
            time.sleep(0.2)
        assert got["main-01"]["inhibitedBy"]
        assert got["teach-01"]["state"] == "active"  # another recorder: not silenced
        assert got["nvr-main"]["state"] == "active"
        routed = {a["labels"]["device"]: [r["name"] for r in a["receivers"]]
                  for a in am.alerts()}
        assert routed["nvr-main"] == ["unit-xuean"]
