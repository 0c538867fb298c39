"""The simulated campus as a newcomer uses it, typed as `camwatch simulate --help` says:

    camwatch simulate --cameras 6 --recorders 2 --write-inventory c.yaml --serve ...
    camwatch check --inventory c.yaml
    camwatch run --inventory c.yaml

with no credential variable and no secrets file set: the simulator writes the
credentials it serves beside the inventory, and check and run find them there. Every
command is a subprocess in the folder the newcomer works in."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner

from camwatch.commands.simulate import group
from inventory.loader import load_inventory
from tests.conftest import env_without_settings

CLI = [sys.executable, "-c", "from camwatch.cli import main; main()"]
BASE_PORTS = (18080, 18554, 18161)


def free_offset(hosts: list[str]) -> int:
    """A port offset that moves the simulator's three ports onto free ones (TCP and UDP),
    below the kernel's ephemeral range (32768 up) that client sockets take ports from."""
    rng = random.Random()
    for _ in range(200):
        offset = rng.randint(1000, 14000)
        try:
            for host in hosts:
                for base in BASE_PORTS:
                    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                        with socket.socket(socket.AF_INET, kind) as s:
                            s.bind((host, base + offset))
        except OSError:
            continue
        return offset
    raise RuntimeError("no free ports")


def newcomer_env() -> dict[str, str]:
    env = {k: v for k, v in env_without_settings().items()
           if not k.startswith("CAMWATCH_DEMO_")}
    return env


def run(args: list[str], cwd: Path, env: dict[str, str],
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.timeout(280)
def test_simulate_then_check_then_run_as_typed(tmp_path: Path) -> None:
    base = f"127.{random.randint(60, 250)}"
    offset = free_offset([f"{base}.0.1", f"{base}.100.1"])
    env = newcomer_env()
    ready = tmp_path / "ready"
    sim = subprocess.Popen(
        [*CLI, "simulate", "--cameras", "6", "--recorders", "2", "--write-inventory", "c.yaml",
         "--serve", "--base", base, "--port-offset", str(offset), "--rtsp", "0",
         "--ready-file", str(ready)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL,
    )
    run_proc: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 90
        while not ready.exists():
            assert sim.poll() is None, sim.stdout.read() if sim.stdout else ""
            assert time.monotonic() < deadline, "simulator not ready in 90 s"
            time.sleep(0.1)

        # what it wrote: the moved ports, references only, the secrets beside at 0600
        secrets_path = tmp_path / "c.secrets.yaml"
        assert stat.S_IMODE(secrets_path.stat().st_mode) == 0o600
        values = yaml.safe_load(secrets_path.read_text(encoding="utf-8"))
        assert set(values) == {"nvr-password", "cam-password", "snmp-community"}
        text = (tmp_path / "c.yaml").read_text(encoding="utf-8")
        for value in values.values():
            assert value not in text
        inv = load_inventory([tmp_path / "c.yaml"])
        rec = next(iter(inv.recorders.values()))
        assert rec.address.host.startswith(base + ".")
        assert (rec.address.http_port, rec.address.rtsp_port, rec.address.snmp_port) == \
            tuple(p + offset for p in BASE_PORTS)
        assert rec.credentials is not None
        assert rec.credentials.password == "secret:nvr-password"

        # camwatch check, nothing else set
        table = run(["check", "--inventory", "c.yaml"], tmp_path, env)
        assert table.returncode == 0, table.stdout[-2000:] + table.stderr[-2000:]
        for device in [*inv.recorders, *inv.cameras]:
            assert device in table.stdout
        assert "否" not in table.stdout
        as_json = run(["check", "--inventory", "c.yaml", "--json"], tmp_path, env)
        assert as_json.returncode == 0, as_json.stderr[-2000:]
        answers = json.loads(as_json.stdout)
        assert {a["device"] for a in answers} == {*inv.recorders, *inv.cameras}
        not_ok = [(a["device"], c, x["reason"]) for a in answers
                  for c, x in a["checks"].items() if x["status"] != "ok"]
        assert not not_ok, not_ok  # none unknown for want of a password

        # camwatch run, in the same folder (its log goes to var/camwatch.db there); only
        # the listen address (free for this test) and short intervals are set
        port = free_port()
        run_env = dict(env, CAMWATCH_LISTEN=f"127.0.0.1:{port}", CAMWATCH_HOST_INTERVAL="1",
                       CAMWATCH_RECORDING_INTERVAL="2", CAMWATCH_PICTURE_INTERVAL="2",
                       CAMWATCH_LOG_FORMAT="text")
        run_proc = subprocess.Popen([*CLI, "run", "--inventory", "c.yaml"], cwd=tmp_path,
                                    env=run_env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True,
                                    stdin=subprocess.DEVNULL)
        devices = [*inv.recorders, *(c.id for c in inv.cameras.values() if c.address)]
        wanted = [f'camwatch_check_ok{{check="host",device="{d}"}} 1.0' for d in devices]
        body = ""
        deadline = time.monotonic() + 120
        with httpx.Client(trust_env=False) as client:
            while time.monotonic() < deadline:
                assert run_proc.poll() is None, run_proc.stdout.read() if run_proc.stdout \
                    else ""
                try:
                    body = client.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                except httpx.HTTPError:
                    body = ""
                if all(w in body for w in wanted):
                    break
                time.sleep(0.5)
        missing = [w for w in wanted if w not in body]
        assert not missing, missing
        run_proc.send_signal(signal.SIGTERM)
        out, _ = run_proc.communicate(timeout=60)
        assert run_proc.returncode == 0, out[-2000:]
        assert (tmp_path / "var" / "camwatch.db").is_file()
        for value in values.values():
            assert value not in out + table.stdout + as_json.stdout
    finally:
        for proc in (run_proc, sim):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    sim_out = sim.stdout.read() if sim.stdout else ""
    assert f"CAMWATCH_SECRETS_FILE={secrets_path}" in sim_out
    assert f"port {18080 + offset}" in sim_out
    for value in values.values():
        assert value not in sim_out


def test_with_the_variables_set_the_inventory_refers_to_them(tmp_path, monkeypatch) -> None:
    for name in ("CAMWATCH_DEMO_NVR_PASSWORD", "CAMWATCH_DEMO_CAM_PASSWORD",
                 "CAMWATCH_DEMO_SNMP_COMMUNITY"):
        monkeypatch.setenv(name, "set-by-me-" + name[-6:].lower())
    res = CliRunner().invoke(group, ["--cameras", "3", "--recorders", "1",
                                     "--write-inventory", str(tmp_path / "c.yaml")])
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "c.secrets.yaml").exists()
    inv = load_inventory([tmp_path / "c.yaml"])
    rec = next(iter(inv.recorders.values()))
    assert rec.credentials is not None
    assert rec.credentials.password == "${CAMWATCH_DEMO_NVR_PASSWORD}"
    assert "set-by-me" not in (tmp_path / "c.yaml").read_text(encoding="utf-8")


def test_writing_again_keeps_the_credentials_and_a_folder_is_still_an_inventory(
    tmp_path, monkeypatch
) -> None:
    for name in ("CAMWATCH_DEMO_NVR_PASSWORD", "CAMWATCH_DEMO_CAM_PASSWORD",
                 "CAMWATCH_DEMO_SNMP_COMMUNITY", "CAMWATCH_SECRETS_FILE"):
        monkeypatch.delenv(name, raising=False)
    args = ["--cameras", "3", "--recorders", "1", "--write-inventory",
            str(tmp_path / "c.yaml")]
    first = CliRunner().invoke(group, args)
    assert first.exit_code == 0, first.output
    before = (tmp_path / "c.secrets.yaml").read_text(encoding="utf-8")
    again = CliRunner().invoke(group, args)
    assert again.exit_code == 0, again.output
    assert (tmp_path / "c.secrets.yaml").read_text(encoding="utf-8") == before
    # the folder holding c.yaml and c.secrets.yaml loads as one inventory
    assert len(load_inventory([tmp_path]).cameras) == 3
    from camwatch.secrets import find_secrets_beside

    assert find_secrets_beside([tmp_path]) == [tmp_path / "c.secrets.yaml"]
    assert find_secrets_beside([tmp_path / "c.yaml"]) == [tmp_path / "c.secrets.yaml"]
    # a secrets file others can read is refused, not reused
    os.chmod(tmp_path / "c.secrets.yaml", 0o644)
    refused = CliRunner().invoke(group, args)
    assert refused.exit_code == 1
    assert "readable by others" in refused.output


def test_help_shows_the_whole_recipe() -> None:
    res = CliRunner().invoke(group, ["--help"], terminal_width=100)
    assert res.exit_code == 0
    for step in ("--write-inventory c.yaml --serve", "camwatch check --inventory c.yaml",
                 "camwatch run --inventory c.yaml", "c.secrets.yaml", "CAMWATCH_SECRETS_FILE",
                 "--port-offset", "--base", "--scene-time", "--scene-speed",
                 "simulate fault"):
        assert step in res.output, step


def test_several_secrets_files_beside_the_inventory_is_a_clear_error(tmp_path) -> None:
    from camwatch.secrets import write_secrets_file
    from camwatch.service import StartupError, with_secrets_beside
    from camwatch.settings import Settings

    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text("units: []\n", encoding="utf-8")
        write_secrets_file(tmp_path / f"{name}.secrets.yaml", {"k": "v"})
    settings = Settings()
    with pytest.raises(StartupError, match="CAMWATCH_SECRETS_FILE"):
        with_secrets_beside(settings, [tmp_path])
    only_a = with_secrets_beside(settings, [tmp_path / "a.yaml"])
    assert only_a.secrets_file == tmp_path / "a.secrets.yaml"
    chosen = Settings(secrets_file=tmp_path / "b.secrets.yaml")
    assert with_secrets_beside(chosen, [tmp_path]) is chosen  # a configured file wins
