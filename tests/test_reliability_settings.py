"""Issue 14, defect 7: settings and inventory that are wrong must be refused (or, for a
misspelt variable, warned about), never accepted. Each case runs the real command as a
user runs it (a subprocess with its own environment)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

CLI = [sys.executable, "-c", "from camwatch.cli import main; main()"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMWATCH_")}
    env.update(extra)
    return env


def cli(args: list[str], env: dict[str, str], timeout: float = 120
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def campus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    from simulator.testing import small_campus

    tmp = tmp_path_factory.mktemp("campus")
    c = small_campus(tmp, cameras=2, recorders=1, set_env=False)
    assert c.path is not None
    return c.path, c.passwords


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("CAMWATCH_ALERTMANAGER_URL", "not-a-url", r"alertmanager_url: .*http://HOST:PORT"),
    ("CAMWATCH_ALERTMANAGER_URL", "ftp://am:9093", r"alertmanager_url: .*http://HOST:PORT"),
    ("CAMWATCH_HOST_INTERVAL", "inf", r"host_interval: .*finite"),
    ("CAMWATCH_HOST_INTERVAL", "nan", r"host_interval: .*finite"),
    ("CAMWATCH_HOST_INTERVAL", "1e-9", r"host_interval: .*greater than or equal to 0.1"),
    ("CAMWATCH_RECORDING_INTERVAL", "1e12", r"recording_interval: .*less than or equal"),
    ("CAMWATCH_ALLOWED_REDIRECT_HOSTS", '["unclosed', r"CAMWATCH_ALLOWED_REDIRECT_HOSTS"),
])
def test_run_refuses_a_wrong_setting_naming_it_and_the_form_expected(
    campus: tuple[Path, dict[str, str]], tmp_path: Path, variable: str, value: str,
    expected: str,
) -> None:
    path, passwords = campus
    env = clean_env(**passwords, CAMWATCH_STORE_URL=f"sqlite:///{tmp_path / 'x.db'}",
                    CAMWATCH_LISTEN="127.0.0.1:0", **{variable: value})
    r = cli(["run", "--inventory", str(path)], env, timeout=60)
    assert r.returncode == 1, r.stderr[-2000:]
    assert re.search(expected, r.stderr), r.stderr
    assert "environment:" in r.stderr  # where it came from
    assert "None:" not in r.stderr
    assert not (tmp_path / "x.db").exists()  # refused before anything was written


def test_a_comma_separated_host_list_is_read_as_a_list() -> None:
    from camwatch.settings import load_settings

    saved = os.environ.get("CAMWATCH_ALLOWED_REDIRECT_HOSTS")
    os.environ["CAMWATCH_ALLOWED_REDIRECT_HOSTS"] = "foo, cdn.example.edu.tw"
    try:
        assert load_settings().allowed_redirect_hosts == ["foo", "cdn.example.edu.tw"]
        os.environ["CAMWATCH_ALLOWED_REDIRECT_HOSTS"] = '["a.example", "b.example"]'
        assert load_settings().allowed_redirect_hosts == ["a.example", "b.example"]
    finally:
        if saved is None:
            del os.environ["CAMWATCH_ALLOWED_REDIRECT_HOSTS"]
        else:
            os.environ["CAMWATCH_ALLOWED_REDIRECT_HOSTS"] = saved


def test_check_warns_of_a_misspelt_variable_with_the_closest_name(
    campus: tuple[Path, dict[str, str]],
) -> None:
    """`camwatch check` of no device at all (a bad id) is enough to read the settings;
    the inventory's own ${CAMWATCH_...} credential variables are not warned about."""
    path, passwords = campus
    env = clean_env(**passwords, CAMWATCH_HOST_INTERVALL="5",
                    CAMWATCH_ALERTMANAGR_URL="http://127.0.0.1:9")
    r = cli(["check", "--inventory", str(path), "no-such-device"], env)
    assert "CAMWATCH_HOST_INTERVALL is not a camwatch setting" in r.stderr, r.stderr
    assert "did you mean CAMWATCH_HOST_INTERVAL?" in r.stderr
    assert "did you mean CAMWATCH_ALERTMANAGER_URL?" in r.stderr
    assert "http://127.0.0.1:9" not in r.stderr  # values are never repeated
    for var in passwords:  # credential references of the inventory are known names
        assert var not in r.stderr


# ---------------------------------------------------------------- the inventory at scale


def test_validate_reports_every_broken_entry_of_a_5040_device_inventory(
    tmp_path: Path,
) -> None:
    from simulator.campus import generate_campus

    doc = generate_campus(4800, 240).model_dump(mode="json", exclude_none=True)
    cams, recs = doc["cameras"], doc["recorders"]
    assert len(cams) + len(recs) == 5040
    ip = [c for c in cams if c.get("address")]
    ip[100]["address"]["host"] = "999.1.1.1"  # looked like a host name: passed before
    ip[2000]["address"]["host"] = "10.0.0"
    recs[17]["address"]["http_port"] = 70000
    cams[3000]["recorder"] = "nvr-999"
    recs[200]["credentials"]["password"] = "admin123"  # a password in clear
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")

    r = cli(["inventory", "validate", str(path)], clean_env(), timeout=240)
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    problems = [ln for ln in r.stderr.splitlines() if ln.startswith(f"{path}:")]
    assert len(problems) == 5, r.stderr
    text = "\n".join(problems)
    assert "999.1.1.1" in text and "10.0.0" in text and "nvr-999" in text
    assert "http_port" in text and "admin123" not in r.stdout + r.stderr
    for line in problems:  # FILE:LINE: each names its line
        assert re.match(rf"{re.escape(str(path))}:\d+: ", line), line
