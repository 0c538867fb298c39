"""Resetting a camera's picture baseline after its lens is serviced, end to end: the
`camwatch baseline reset` command against the real HTTP server holding a probe memory
with a learned baseline, and against the service itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from click.testing import CliRunner, Result

from camwatch.baselines import baseline_resetter, describe_baseline
from camwatch.cli import main
from camwatch.clock import now as clock_now
from camwatch.service import Service, load_memory
from camwatch.settings import Settings
from camwatch.state import LatestState
from camwatch.store import Store
from exporters.http import HttpServer
from exporters.sample import sample_inventory
from inventory.models import Inventory
from probes.api import DeviceMemory, ProbeContext
from probes.baseline import LEARN_SAMPLES, CameraBaseline, assess
from probes.result import CheckKind, CheckResult, Status, utcnow
from probes.scoring import Mode, frame_from_bgr, score
from tests.waits import CAP_S, NOT_UNDER_TEST_S

TOKEN = "reset-t0ken-9f"


def learned_baseline(seed: int = 1) -> dict[str, Any]:
    """A day baseline learned the way the picture probe learns it, from synthetic
    textured frames (in memory only)."""
    rng = np.random.default_rng(seed)
    base = CameraBaseline()
    scene = rng.integers(0, 255, (180, 320), dtype=np.uint8)
    scene = cv2.GaussianBlur(scene, (3, 3), 0)
    for i in range(LEARN_SAMPLES):
        noise = rng.normal(0, 3, scene.shape)
        grey = np.clip(scene + noise, 0, 255).astype(np.uint8)
        bgr = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
        bgr[..., 2] = np.clip(bgr[..., 2].astype(int) + 40, 0, 255).astype(np.uint8)
        assess(score(frame_from_bgr(bgr)), base, at=1000.0 + 300 * i)
    assert base.mode(Mode.DAY).learned, "the synthetic frames did not teach a baseline"
    return base.to_dict()


@dataclass
class Held:
    """What the service holds: a probe context (its memory) and a persist hook."""

    ctx: ProbeContext
    persisted: list[dict[str, Any]] = field(default_factory=list)

    async def persist(self) -> None:
        self.persisted.append({k: dict(v) for k, v in self.ctx.memory.baselines.items()})


@pytest.fixture
async def served() -> AsyncIterator[tuple[HttpServer, Held]]:
    inv = sample_inventory()
    memory = DeviceMemory(baselines={"cam-east": learned_baseline(1),
                                     "cam-gate": learned_baseline(2)})
    from camwatch.secrets import SecretStore

    held = Held(ProbeContext(inventory=inv, secrets=SecretStore(None), memory=memory,
                             now=clock_now))
    settings = Settings(listen="127.0.0.1:0", http_token=TOKEN, http_user="office",
                        http_password="pw-xyz")
    server = HttpServer(settings, LatestState(), inv,
                        baseline_reset=baseline_resetter(lambda: held.ctx, held.persist))
    await server.start()
    yield server, held
    await server.stop()


async def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """`camwatch ...` in a worker thread (the server runs on this test's loop)."""
    base_env = {"CAMWATCH_HTTP_TOKEN": "", "CAMWATCH_HTTP_USER": "",
                "CAMWATCH_HTTP_PASSWORD": ""}
    base_env.update(env or {})
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env=base_env)


async def test_reset_forgets_day_and_night_and_persists(served) -> None:
    server, held = served
    assert describe_baseline(held.ctx.memory.baselines["cam-east"])["modes"]["day"]["learned"]
    res = await cli("baseline", "reset", "cam-east", "--url", server.url, "--token", TOKEN)
    assert res.exit_code == 0, res.output
    assert "Reset the picture baselines of cam-east" in res.output
    assert "day (日間): forgotten" in res.output
    assert "night (夜間, IR): nothing learned yet" in res.output
    assert TOKEN not in res.output
    baselines = held.ctx.memory.baselines
    assert "cam-east" not in baselines
    assert "cam-gate" in baselines  # another camera keeps its own
    # persisted at once, without the camera
    assert held.persisted and "cam-east" not in held.persisted[-1]
    # the next picture sample starts learning from nothing, in both modes
    fresh = CameraBaseline.from_dict(baselines.get("cam-east"))
    assert fresh.progress(Mode.DAY) == (0, LEARN_SAMPLES)
    assert fresh.progress(Mode.NIGHT) == (0, LEARN_SAMPLES)

    # a second reset: nothing left to forget, said so, still exit 0
    again = await cli("baseline", "reset", "cam-east", "--url", server.url,
                      env={"CAMWATCH_HTTP_TOKEN": TOKEN})
    assert again.exit_code == 0, again.output
    assert "had no picture baseline yet" in again.output


async def test_unknown_camera_and_recorder_are_refused(served) -> None:
    server, held = served
    res = await cli("baseline", "reset", "cam-nowhere", "--url", server.url, "--token", TOKEN)
    assert res.exit_code == 1
    assert "unknown camera 'cam-nowhere'" in res.output
    rec = await cli("baseline", "reset", "nvr1", "--url", server.url, "--token", TOKEN)
    assert rec.exit_code == 1 and "is a recorder, not a camera" in rec.output
    bad = await cli("baseline", "reset", "../etc", "--url", server.url, "--token", TOKEN)
    assert bad.exit_code == 1 and "not a camera id" in bad.output
    assert set(held.ctx.memory.baselines) == {"cam-east", "cam-gate"}
    assert not held.persisted


async def test_auth_is_required_and_checked(served) -> None:
    server, held = served
    wrong = await cli("baseline", "reset", "cam-east", "--url", server.url, "--token", "nope")
    assert wrong.exit_code == 1 and "not authorised" in wrong.output
    missing = await cli("baseline", "reset", "cam-east", "--url", server.url)
    assert missing.exit_code == 1 and "no credentials" in missing.output
    url = f"{server.url}/admin/baselines/cam-east/reset"
    async with httpx.AsyncClient(trust_env=False, timeout=NOT_UNDER_TEST_S) as client:
        r = await client.post(url)
        assert r.status_code == 401 and "WWW-Authenticate" in r.headers
        r = await client.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 405
        # another site cannot make a logged-in browser reset a baseline
        r = await client.post(url, auth=("office", "pw-xyz"),
                              headers={"Origin": "http://evil.example"})
        assert r.status_code == 403
        assert "cam-east" in held.ctx.memory.baselines
        # basic auth works too, and the reply says what was forgotten
        r = await client.post(url, auth=("office", "pw-xyz"),
                              headers={"Origin": server.url})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["camera"] == "cam-east" and body["had_baseline"] is True
        assert body["before"]["day"]["learned"] is True
        assert body["before"]["night"]["learned"] is False
        assert body["place"] == "教學大樓1樓走廊東側"
    assert "cam-east" not in held.ctx.memory.baselines


async def test_without_configured_auth_the_endpoint_is_disabled() -> None:
    inv = sample_inventory()
    memory = DeviceMemory(baselines={"cam-east": {"format": 1}})
    from camwatch.secrets import SecretStore

    ctx = ProbeContext(inventory=inv, secrets=SecretStore(None), memory=memory, now=clock_now)
    server = HttpServer(Settings(listen="127.0.0.1:0"), LatestState(), inv,
                        baseline_reset=baseline_resetter(lambda: ctx))
    await server.start()
    try:
        res = await cli("baseline", "reset", "cam-east", "--url", server.url, "--token", "x")
        assert res.exit_code == 1
        assert "no admin credentials configured" in res.output
        assert "cam-east" in memory.baselines
    finally:
        await server.stop()


async def test_service_not_reachable() -> None:
    server = HttpServer(Settings(listen="127.0.0.1:0"), LatestState(), sample_inventory())
    await server.start()
    url = server.url
    await server.stop()  # nothing listens there any more
    res = await cli("baseline", "reset", "cam-east", "--url", url, "--token", TOKEN)
    assert res.exit_code == 1
    assert "not reachable" in res.output and "camwatch run" in res.output


# --- through the service itself ------------------------------------------------------------


async def seeding_probe(check: CheckKind, device: str, ctx: ProbeContext) -> list[CheckResult]:
    """Learns each camera's baseline once (as if from the first pictures)."""
    if check == CheckKind.PICTURE and not ctx.memory.fact(device).get("seeded"):
        ctx.memory.fact(device)["seeded"] = True
        ctx.memory.baselines[device] = learned_baseline(len(device))
    return [CheckResult(device, check, Status.OK, "正常", utcnow())]


async def test_service_resets_its_live_memory_and_store(
    tmp_path: Path, small_inventory: Inventory
) -> None:
    settings = Settings(listen="127.0.0.1:0", store_url=f"sqlite:///{tmp_path / 'log.db'}",
                        host_interval=0.2, recording_interval=0.3, picture_interval=0.2,
                        timeout=1.0, alertmanager_url=None, http_token=TOKEN)
    svc = Service(settings, small_inventory, probe_fn=seeding_probe)
    await svc.start()
    try:
        assert svc.ctx is not None and svc.url is not None
        ctx = svc.ctx
        loop = asyncio.get_running_loop()
        end = loop.time() + CAP_S
        while not {"cam-east", "cam-west"} <= set(ctx.memory.baselines):
            assert loop.time() < end, "the probes did not learn a baseline"
            await asyncio.sleep(0.05)
        res = await cli("baseline", "reset", "cam-east", "--url", svc.url, "--token", TOKEN)
        assert res.exit_code == 0, res.output
        assert "cam-east" not in ctx.memory.baselines
        assert "cam-west" in ctx.memory.baselines
    finally:
        await svc.stop()
    with Store.open(settings.store_url) as store:
        memory = load_memory(store, "probe_memory")
    assert memory is not None
    assert "cam-east" not in memory.baselines and "cam-west" in memory.baselines
