"""Trust (issue 8, rules 八(一), 九): frames are personal data — decoded and scored in
memory, never written to disk.

`camwatch check` runs under `strace -f` while it fetches and scores real snapshots from
the simulated campus; every file the process (and its threads/children) opens for
writing, creates, renames or links is listed, and every write() is dumped far enough to
see a JPEG start (FF D8 FF). Guards: probes.picture / probes.drivers.frames / scoring
keeping frames in memory (no imwrite, no temp file, no cache); the only image-derived
thing kept is the baseline's 32x18 grey signature (probes.scoring.thumbnail).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.testing import SimulatedCampus, small_campus
from tests.conftest import env_without_settings
from tests.waits import NOT_UNDER_TEST_S

pytestmark = pytest.mark.skipif(shutil.which("strace") is None,
                                reason="strace not installed (scripts/setup.sh installs it)")

TRACE = "trace=openat,open,creat,rename,renameat,renameat2,link,linkat,symlink,write,pwrite64"
OPEN_RE = re.compile(
    r'^\d+\s+(?:openat|open)\((?:[^,]+,\s*)?"(?P<path>[^"]*)",\s*(?P<flags>[A-Z_|]+)'
)
WRITE_RE = re.compile(r'^\d+\s+(?:write|pwrite64)\((?P<fd>\d+),\s*"(?P<data>[^"]*)"')
OTHER_RE = re.compile(r"^\d+\s+(?P<call>creat|rename|renameat2?|linkat?|symlink)\(")
# Writable places that are not files on disk.
ALLOWED_PREFIXES = ("/dev/null", "/dev/tty", "/dev/pts/", "/dev/shm/sem.", "/proc/", "/sys/")


def strace(cmd: list[str], trace: Path) -> list[str]:
    return ["strace", "-f", "-qq", "-e", TRACE, "-s", "4", "-x", "-o", str(trace), *cmd]


def offences(trace_text: str, allowed_dirs: tuple[str, ...] = ()) -> list[str]:
    """What in a trace wrote to disk (outside the allowed places) or wrote JPEG bytes."""
    bad: list[str] = []
    for line in trace_text.splitlines():
        if "= -1 " in line:  # failed calls changed nothing
            continue
        m = OPEN_RE.match(line)
        if m:
            flags = m.group("flags")
            if any(f in flags for f in ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC")):
                path = m.group("path")
                if not path.startswith(ALLOWED_PREFIXES + allowed_dirs):
                    bad.append(f"opened for writing: {line.strip()}")
            continue
        m2 = WRITE_RE.match(line)
        if m2 and m2.group("data").lower().startswith(r"\xff\xd8\xff"):
            bad.append(f"JPEG bytes written: {line.strip()}")
            continue
        m3 = OTHER_RE.match(line)
        if m3:
            bad.append(f"file created/renamed: {line.strip()}")
    return bad


def strace_works(tmp: Path) -> bool:
    trace = tmp / "probe.trace"
    try:
        proc = subprocess.run(strace(["/bin/true"], trace), capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and trace.exists()


def test_detector_catches_a_frame_written_to_disk(tmp_path: Path) -> None:
    """The check can fail: a process that saves a JPEG, or a temp file, is caught."""
    if not strace_works(tmp_path):
        pytest.skip("strace cannot trace here (ptrace not permitted)")
    trace = tmp_path / "canary.trace"
    code = ("import tempfile, sys; open(sys.argv[1], 'wb').write(b'\\xff\\xd8\\xff\\xe0' + "
            "b'\\0' * 100); tempfile.NamedTemporaryFile(delete=False).write(b'x')")
    subprocess.run(strace([sys.executable, "-c", code, str(tmp_path / "frame.jpg")], trace),
                   check=True, capture_output=True, timeout=60)
    found = offences(trace.read_text(errors="replace"))
    assert any("frame.jpg" in o for o in found)
    assert any("JPEG bytes written" in o for o in found)
    assert any("opened for writing" in o and "frame.jpg" not in o for o in found)  # temp file


async def test_picture_checks_write_no_frame_to_disk(tmp_path: Path) -> None:
    if not strace_works(tmp_path):
        pytest.skip("strace cannot trace here (ptrace not permitted)")
    campus = small_campus(tmp_path, cameras=8, recorders=4, set_env=False)
    assert campus.path is not None
    ip_cams = [c.id for c in campus.inventory.cameras.values() if c.address is not None][:3]
    devices = [*ip_cams, campus.analog_camera()]
    env = env_without_settings()
    env.update(campus.passwords, CAMWATCH_TIMEOUT="4", PYTHONDONTWRITEBYTECODE="1",
               HOME=str(tmp_path / "home"))  # caches a library might write land in view
    trace = tmp_path / "check.trace"
    async with SimulatedCampus(campus.inventory, campus.passwords) as sim:
        await sim.fault(ip_cams[0], "blurred", 8)  # a faulty picture is scored too
        proc = await asyncio.create_subprocess_exec(
            *strace([sys.executable, "-m", "camwatch", "check", "--json", "--inventory",
                      str(campus.path), *devices], trace),
            env=env, cwd=str(tmp_path), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode in (0, 1), err.decode()[-2000:]
    answers = {a["device"]: a for a in json.loads(out)}
    # frames were really fetched and scored (not all unknown)
    scored = [d for d in devices
              if answers[d]["checks"]["picture"]["status"] in ("ok", "fail")]
    assert len(scored) >= 3, {d: answers[d]["checks"]["picture"] for d in devices}
    text = trace.read_text(errors="replace")
    assert str(campus.path) in text  # the trace really covers the process
    assert offences(text) == []


async def test_only_a_coarse_signature_of_a_frame_is_remembered(tmp_path: Path) -> None:
    """What a picture check keeps between runs (persisted in the store) is figures and a
    32x18 grey signature at most — never anything frame-sized."""
    from camwatch.clock import now as clock_now
    from camwatch.secrets import SecretStore
    from probes.api import ProbeConfig, ProbeContext, probe
    from probes.result import CheckKind
    from probes.values import values_json

    campus = small_campus(tmp_path, cameras=6, recorders=4, set_env=True)
    ctx = ProbeContext(campus.inventory, SecretStore(), ProbeConfig(timeout=NOT_UNDER_TEST_S),
                       now=clock_now)
    cam = campus.ip_camera()
    async with SimulatedCampus(campus.inventory, campus.passwords):
        for _ in range(3):
            res = await probe(CheckKind.PICTURE, cam, ctx)
            assert res[0].status.value in ("ok", "fail"), res[0].reason
    from camwatch.service import memory_to_json

    doc = json.dumps(memory_to_json(ctx.memory))  # what the store is given
    assert len(doc) < 64 * 1024
    assert ctx.memory.baselines, "the picture check learned nothing"

    def longest_list(x: object) -> int:
        if isinstance(x, list):
            return max([len(x), *(longest_list(v) for v in x)])
        if isinstance(x, dict):
            return max([0, *(longest_list(v) for v in x.values())])
        return 0

    assert longest_list(dict(ctx.memory.baselines)) <= 32 * 18
    for r in res:
        assert "jpeg" not in {k.lower() for k in values_json(r.values)}
        assert all(not isinstance(v, (bytes, bytearray)) for v in values_json(r.values).values())
