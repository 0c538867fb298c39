"""The simulated SNMP agent read by a client we did not write: Debian's
prometheus-snmp-exporter (Go), with the module `snmp_exporter_config` generates from the
driver's own poll plan (the configuration issue 7's CPU comparison uses)."""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from inventory.models import Vendor
from probes.drivers.snmp import poll_plan
from simulator.model import DeviceKind, Disk, FaultKind, SimDevice
from simulator.snmp import snmp_exporter_config, start_snmp_agents

EXPORTER = shutil.which("prometheus-snmp-exporter")
pytestmark = pytest.mark.skipif(EXPORTER is None, reason="prometheus-snmp-exporter not installed")


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(url: str) -> dict[str, str]:
    """metric{labels} -> value lines of an exposition (comments dropped)."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = resp.read().decode()
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = value
    return out


def test_poll_plan_names_the_vendor_columns() -> None:
    gets, walks = poll_plan("hikvision")
    assert "1.3.6.1.2.1.1.3.0" in gets and "1.3.6.1.2.1.25.1.1.0" in gets
    assert "1.3.6.1.4.1.50001.1.241.1.3" in walks  # hikDiskStatus
    assert "1.3.6.1.2.1.25.2.3.1.5" in walks  # hrStorageSize
    assert "1.3.6.1.4.1.50001.1.241.1.1" not in walks  # the index column is not needed


async def test_snmp_exporter_reads_the_simulated_agent(tmp_path: Path) -> None:
    community = "x" + "".join(random.choices("abcdefgh", k=10))
    host = f"127.{random.randint(32, 250)}.{random.randint(0, 255)}.{random.randint(2, 254)}"
    dev = SimDevice(
        id="nvr-exp",
        kind=DeviceKind.RECORDER,
        vendor=Vendor.HIKVISION,
        host=host,
        snmp_port=0,
        snmp_community=community,
        disks=[Disk(1, 4_000_787_030_016, 10**12), Disk(2, 4_000_787_030_016, 10**12)],
    )
    agents = await start_snmp_agents([dev])
    conf = tmp_path / "snmp.yml"
    conf.write_text(snmp_exporter_config("hikvision", community))
    conf.chmod(0o600)
    port = _free_tcp_port()
    assert EXPORTER is not None
    proc = subprocess.Popen(
        [EXPORTER, f"--config.file={conf}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        h, p = agents.addresses[dev.id]
        url = f"http://127.0.0.1:{port}/snmp?module=camwatch&target={h}:{p}"
        deadline = time.monotonic() + 10
        while True:
            try:
                metrics = await asyncio.to_thread(_scrape, url)
                break
            except OSError:
                assert time.monotonic() < deadline, "snmp_exporter did not come up"
                await asyncio.sleep(0.2)
        size = "w_1_3_6_1_2_1_25_2_3_1_5"
        status = "w_1_3_6_1_4_1_50001_1_241_1_3"
        assert metrics[f'{size}{{index="31",{size}="{4_000_787_030_016 // 4096}"}}'] == "1"
        assert metrics[f'{status}{{index="2",{status}="0"}}'] == "1"
        assert metrics["snmp_scrape_pdus_returned"] != "0"
        dev.apply_fault(FaultKind.DISK_FAILED, 2)
        metrics = await asyncio.to_thread(_scrape, url)
        assert metrics[f'{status}{{index="2",{status}="2"}}'] == "1"  # Abnormal
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        await agents.stop()
