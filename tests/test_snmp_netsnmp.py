"""The SNMP driver against a real agent: Debian's net-snmp `snmpd` on loopback.

Proves the driver reads sysUpTime, hrSystemUptime and hrStorage from an agent we did not
write, over v2c and v3 (SHA/AES), and that a wrong community is a bounded-time failure.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from probes.drivers.snmp import (
    V3,
    SnmpErrorKind,
    SnmpTarget,
    V2c,
    read_host,
    read_recorder,
)
from tests.waits import CAP_S, LATE_S, NOT_UNDER_TEST_S

SNMPD = shutil.which("snmpd") or ("/usr/sbin/snmpd" if Path("/usr/sbin/snmpd").exists() else None)
pytestmark = pytest.mark.skipif(SNMPD is None, reason="net-snmp snmpd is not installed")

COMMUNITY = "ro" + "".join(random.choices("abcdefghjk", k=10))


def _free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def snmpd(tmp_path: Path) -> AsyncIterator[tuple[str, int]]:
    host = f"127.{random.randint(32, 250)}.{random.randint(0, 255)}.{random.randint(2, 254)}"
    port = _free_udp_port(host)
    conf = tmp_path / "snmpd.conf"
    conf.write_text(
        f"agentAddress udp:{host}:{port}\n"
        f"rocommunity {COMMUNITY} 127.0.0.0/8\n"
        "sysName nvr-netsnmp\n"
        'createUser cctv SHA "auth-pass-1" AES "priv-pass-1"\n'
        "rouser cctv priv\n"
    )
    env = dict(os.environ, MIBS="", SNMP_PERSISTENT_DIR=str(tmp_path / "persist"))
    log = (tmp_path / "snmpd.log").open("w")
    proc = subprocess.Popen(
        [SNMPD, "-f", "-Lo", "-C", "-c", str(conf), "-p", str(tmp_path / "snmpd.pid")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + CAP_S
        target = SnmpTarget(host, port, V2c(COMMUNITY), timeout=0.3, retries=0)
        while True:
            if proc.poll() is not None:
                pytest.fail(f"snmpd exited: {(tmp_path / 'snmpd.log').read_text()[-2000:]}")
            if (await read_host(target)).ok:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"snmpd did not answer within {CAP_S:.0f} s")
            await asyncio.sleep(0.1)
        yield host, port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


async def test_v2c_system_and_storage_from_snmpd(snmpd: tuple[str, int]) -> None:
    host, port = snmpd
    target = SnmpTarget(host, port, V2c(COMMUNITY), timeout=NOT_UNDER_TEST_S)
    reading = await read_recorder(target, "generic")
    assert reading.ok, reading.error
    system = reading.system
    assert system is not None
    assert system.name == "nvr-netsnmp"
    assert system.object_id is not None and system.object_id.startswith("1.3.6.1.4.1.8072")
    assert system.sys_uptime_s is not None and 0 <= system.sys_uptime_s < 60  # snmpd's own
    assert system.host_uptime_s is not None and system.host_uptime_s >= system.sys_uptime_s
    kinds = {s.kind for s in reading.storage}
    assert "ram" in kinds and "fixed-disk" in kinds
    ram = next(s for s in reading.storage if s.kind == "ram")
    assert ram.size_bytes > 64 * 1024**2 and ram.allocation_units == 1024
    for s in reading.storage:
        assert 0 <= s.used_bytes <= s.size_bytes or s.size_bytes == 0


async def test_v3_sha_aes_against_snmpd(snmpd: tuple[str, int]) -> None:
    host, port = snmpd
    good = await read_host(
        SnmpTarget(host, port, V3("cctv", "auth-pass-1", "priv-pass-1"), timeout=NOT_UNDER_TEST_S)
    )
    assert good.ok, good.error
    assert good.system is not None and good.system.name == "nvr-netsnmp"
    # refused by snmpd's report (the generous timeout cannot have decided it)
    bad = await read_host(SnmpTarget(host, port, V3("cctv", "not-the-key", "priv-pass-1"),
                                     timeout=NOT_UNDER_TEST_S, retries=0))
    assert bad.error is not None and bad.error.kind == SnmpErrorKind.AUTH
    nobody = await read_host(SnmpTarget(host, port, V3("nobody", "auth-pass-1", "priv-pass-1"),
                                        timeout=NOT_UNDER_TEST_S, retries=0))
    assert nobody.error is not None and nobody.error.kind == SnmpErrorKind.AUTH


async def test_wrong_community_against_snmpd_is_bounded(snmpd: tuple[str, int]) -> None:
    host, port = snmpd
    started = time.monotonic()
    target = SnmpTarget(host, port, V2c("wrong"), timeout=0.5, retries=1)
    reading = await read_host(target)
    assert reading.error is not None and reading.error.kind == SnmpErrorKind.TIMEOUT
    assert reading.error.reason.startswith("SNMP 無回應")
    took = time.monotonic() - started
    assert 2 * 0.5 <= took < 2 * 0.5 + LATE_S, took  # two tries of 0.5 s, then it gives up
