"""A committed batch survives kill -9 of the writing process, and batches are atomic."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from camwatch.store import Store
from tests.waits import CAP_S

WRITER = textwrap.dedent(
    """
    import datetime as dt, sys
    from camwatch.store import Store
    from probes.result import CheckKind, CheckResult, Status
    store = Store.open(sys.argv[1])
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    batch = 0
    while True:
        at = t0 + dt.timedelta(minutes=batch)
        results = [CheckResult(f"b{batch}-cam{i}", CheckKind.PICTURE, Status.OK, "", at)
                   for i in range(200)]
        store.record_results(results)
        print(batch, flush=True)   # only after the commit returned
        batch += 1
    """
)


def test_committed_batches_survive_sigkill(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/log.db"
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, url],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.stdout is not None
    committed = -1
    deadline = time.monotonic() + CAP_S  # a Python process starting on a loaded machine
    try:
        while committed < 15 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            committed = int(line)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert committed >= 15, "the writer did not get going"

    with Store.open(url) as store:
        devices = store.known_devices()
        per_batch: dict[int, int] = {}
        for d in devices:
            b = int(d.split("-")[0][1:])
            per_batch[b] = per_batch.get(b, 0) + 1
        # everything reported as committed is there ...
        for b in range(committed + 1):
            assert per_batch.get(b) == 200, f"batch {b} lost after kill -9"
        # ... and a batch is all or nothing (the one in flight may or may not be there)
        assert all(n == 200 for n in per_batch.values())
        assert max(per_batch) <= committed + 1
        assert len(store.transitions()) == len(devices)


def test_probe_memory_keeps_each_baseline_as_its_text_across_a_restart(tmp_path: Path) -> None:
    """The store is given the probe memory in MEMORY_PARTS documents (by device), each
    camera's baselines as text of what the memory holds packed; read back, they are the
    same memory, and the single document of before is gone. A memory written as one
    document or as trees (before) still reads, and a baseline that no longer reads is
    dropped (learned anew), not fatal."""
    import json

    from camwatch.service import (
        MEMORY_KEY,
        MEMORY_PARTS,
        load_memory,
        memory_from_json,
        memory_rows,
        memory_to_json,
    )
    from probes.context import DeviceMemory

    learned = {"format": 1, "modes": {"day": {"n": 6, "sharpness": 41.5, "thumb": "b:AAEC"}}}
    cams = [f"cam-{i:03d}" for i in range(200)]
    memory = DeviceMemory(facts={c: {"uptime_s": float(i)} for i, c in enumerate(cams)},
                          baselines={c: learned for c in cams})
    doc = memory_to_json(memory)
    assert isinstance(doc["baselines"]["cam-001"], str)  # JSON has no bytes: as text
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with Store.open(url) as store:
        store.save_state(MEMORY_KEY, doc)  # as camwatch kept it before
        assert load_memory(store, MEMORY_KEY) is not None
        rows = memory_rows(MEMORY_KEY, memory.facts, memory.baselines.packed())
        store.save_states(rows, drop=[MEMORY_KEY])
    with Store.open(url) as store:
        parts = store.load_states(f"{MEMORY_KEY}#")
        assert store.load_state(MEMORY_KEY) is None
        again = load_memory(store, MEMORY_KEY)
    assert len(parts) == MEMORY_PARTS
    assert max(len(p["facts"]) for p in parts.values()) < len(cams) / 4  # spread
    assert again is not None
    assert dict(again.baselines) == {c: learned for c in cams}
    assert again.facts == memory.facts

    old = memory_from_json({"facts": {}, "baselines": {
        "cam-1": learned, "cam-2": json.dumps(learned)[:-3], "cam-3": "[1, 2]",
        "cam-4": json.dumps(learned), "cam-5": doc["baselines"]["cam-001"][:-8],
        "cam-6": "z:not base64!"}})
    assert dict(old.baselines) == {"cam-1": learned, "cam-4": learned}
