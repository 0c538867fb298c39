"""A known-good view per camera (issue 12): `camwatch baseline set CAMERA --from FILE`
against the real HTTP server holding a probe memory, `reference_image:` in the
inventory, and the landing page saying which cameras have one. The photos here are
synthetic scenes (the simulator's drawing), written only as the installer's files."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from click.testing import CliRunner, Result

from camwatch.baselines import (
    BaselineRefused,
    baseline_describer,
    baseline_resetter,
    baseline_setter,
    merge_reference,
)
from camwatch.cli import main
from camwatch.secrets import SecretStore
from camwatch.settings import Settings
from camwatch.state import LatestState
from exporters.http import HttpServer, landing_body
from exporters.sample import sample_inventory
from inventory.loader import InventoryError, load_inventory
from probes.api import DeviceMemory, ProbeContext
from probes.baseline import CameraBaseline, assess
from probes.result import CheckKind, CheckResult, Status, utcnow
from probes.scoring import Verdict, score_bytes
from probes.values import PictureValues
from simulator.scenes import draw_scene, view

TOKEN = "ref-t0ken-31"
W, H = 640, 360


def photo(blur: float = 0.0, seed: int = 11, k: int = 0) -> bytes:
    img = view(draw_scene(seed, W, H), W, H, 0.0, seed)
    if blur:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    noise = np.random.default_rng(k).normal(0, 1.5, img.shape)
    img = np.clip(img + noise, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def seen_once(data: bytes) -> dict[str, Any]:
    """The baseline memory after the service's first picture of the camera (learning)."""
    base = CameraBaseline()
    assess(score_bytes(data, 1 << 26), base, at=1000.0)
    return base.to_dict()


@dataclass
class Held:
    ctx: ProbeContext
    persisted: list[dict[str, Any]] = field(default_factory=list)

    async def persist(self) -> None:
        self.persisted.append(json.loads(json.dumps(dict(self.ctx.memory.baselines))))


@pytest.fixture
async def served() -> AsyncIterator[tuple[HttpServer, Held]]:
    inv = sample_inventory()
    memory = DeviceMemory(baselines={"cam-east": seen_once(photo(k=1))})
    held = Held(ProbeContext(inventory=inv, secrets=SecretStore(None), memory=memory))
    settings = Settings(listen="127.0.0.1:0", http_token=TOKEN)
    server = HttpServer(settings, LatestState(), inv,
                        baseline_reset=baseline_resetter(lambda: held.ctx, held.persist),
                        baseline_describe=baseline_describer(lambda: held.ctx),
                        baseline_set=baseline_setter(lambda: held.ctx, held.persist))
    await server.start()
    yield server, held
    await server.stop()


async def cli(*args: str) -> Result:
    env = {"CAMWATCH_HTTP_TOKEN": "", "CAMWATCH_HTTP_USER": "", "CAMWATCH_HTTP_PASSWORD": ""}
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env=env)


async def test_set_makes_the_photo_the_baseline_of_its_mode(served, tmp_path: Path) -> None:
    server, held = served
    good = tmp_path / "gate-2026-03.jpg"
    good.write_bytes(photo(k=2))
    res = await cli("baseline", "set", "cam-east", "--from", str(good), "--url", server.url,
                    "--token", TOKEN)
    assert res.exit_code == 0, res.output
    assert "gate-2026-03.jpg is now its day (日間) reference view" in res.output
    assert TOKEN not in res.output
    stored = held.ctx.memory.baselines["cam-east"]
    assert held.persisted and held.persisted[-1]["cam-east"] == stored
    text = json.dumps(stored)
    assert len(text) < 32 * 1024  # figures and a 32x18 thumbnail, not a photo
    base = CameraBaseline.from_dict(stored)
    assert base.references() == {"day": "gate-2026-03.jpg"}
    # the next picture is judged against it at once: no learning, a blur shows
    a = assess(score_bytes(photo(k=3), 1 << 26), base, at=2000.0)
    assert a.learning is None and a.verdict == Verdict.CLEAR and a.reference
    a = assess(score_bytes(photo(k=4, blur=5), 1 << 26), base, at=2300.0)
    assert a.verdict == Verdict.BLURRED, a.reason_zh
    # and GET says what is held
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{server.url}/admin/baselines/cam-east",
                             headers={"Authorization": f"Bearer {TOKEN}"})
    body = r.json()
    assert r.status_code == 200 and body["modes"]["day"]["reference"] == "gate-2026-03.jpg"
    assert body["frame_size"] == [W, H]


async def test_a_blurred_photo_is_refused_and_nothing_changes(served, tmp_path: Path) -> None:
    server, held = served
    before = json.dumps(dict(held.ctx.memory.baselines))
    soft = tmp_path / "soft.jpg"
    soft.write_bytes(photo(blur=6))
    res = await cli("baseline", "set", "cam-east", "--from", str(soft), "--url", server.url,
                    "--token", TOKEN)
    assert res.exit_code == 1
    assert "not used as the reference" in res.output and "模糊" in res.output
    assert json.dumps(dict(held.ctx.memory.baselines)) == before and not held.persisted


async def test_set_needs_a_camera_the_service_has_seen(served, tmp_path: Path) -> None:
    server, _ = served
    good = tmp_path / "good.png"
    good.write_bytes(cv2.imencode(".png", cv2.imdecode(np.frombuffer(photo(), np.uint8),
                                                       cv2.IMREAD_COLOR))[1].tobytes())
    res = await cli("baseline", "set", "cam-gate", "--from", str(good), "--url", server.url,
                    "--token", TOKEN)
    assert res.exit_code == 1 and "has not had a picture from cam-gate" in res.output
    res = await cli("baseline", "set", "nvr1", "--from", str(good), "--url", server.url,
                    "--token", TOKEN)
    assert res.exit_code == 1 and "is a recorder, not a camera" in res.output


async def test_the_reference_endpoint_refuses_anything_but_a_baseline(served) -> None:
    server, _ = served
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = f"{server.url}/admin/baselines/cam-east/reference"
    async with httpx.AsyncClient() as client:
        assert (await client.post(url, json={"baseline": {"format": 99}},
                                  headers=headers)).status_code == 422
        assert (await client.post(url, content=b"not json", headers=headers)).status_code == 400
        assert (await client.post(url, json={"baseline": {}})).status_code == 401
    with pytest.raises(BaselineRefused):
        merge_reference(None, CameraBaseline().to_dict())  # nothing learned in it


def write_inventory(tmp_path: Path, reference: str) -> Path:
    """The example campus with one camera's reference_image set."""
    src = Path(__file__).resolve().parents[1] / "inventory" / "example-campus.yaml"
    text = src.read_text(encoding="utf-8")
    marker = "    position:"
    i = text.index(marker)
    line_end = text.index("\n", i)
    text = text[: line_end + 1] + f"    reference_image: {reference}\n" + text[line_end + 1:]
    path = tmp_path / "campus.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_reference_image_in_the_inventory_resolves_beside_the_file(tmp_path: Path) -> None:
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "lib.jpg").write_bytes(photo())
    inv = load_inventory([write_inventory(tmp_path, "refs/lib.jpg")])
    with_ref = [c for c in inv.cameras.values() if c.reference_image]
    assert len(with_ref) == 1
    assert Path(with_ref[0].reference_image or "") == (tmp_path / "refs" / "lib.jpg").resolve()


def test_a_missing_or_wrong_reference_image_names_the_file_line_and_field(
    tmp_path: Path,
) -> None:
    path = write_inventory(tmp_path, "nope.jpg")
    with pytest.raises(InventoryError) as err:
        load_inventory([path])
    text = str(err.value)
    assert "reference_image" in text and "nope.jpg" in text and f"{path}:" in text
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    path = write_inventory(tmp_path, "notes.txt")
    with pytest.raises(InventoryError) as err:
        load_inventory([path])
    assert "not a JPEG or PNG" in str(err.value)


def test_the_landing_page_says_which_cameras_have_a_reference(tmp_path: Path) -> None:
    from exporters.http import HttpContext

    inv = sample_inventory()
    cam = inv.cameras["cam-east"].model_copy(update={"reference_image": "/refs/east.jpg"})
    inv = inv.model_copy(update={"cameras": {**inv.cameras, "cam-east": cam}})
    state = LatestState()
    state.update([CheckResult(device="cam-gate", check=CheckKind.PICTURE, status=Status.OK,
                              reason="ok", at=utcnow(),
                              values=PictureValues(verdict="clear", learning=False,
                                                   reference="gate.jpg"))])
    ctx = HttpContext(Settings(listen="127.0.0.1:0"), state, inv, None, None, utcnow)
    page = landing_body(ctx)
    assert "參考畫面" in page and "Reference views" in page
    assert "east.jpg" in page and "清冊 inventory" in page
    assert "gate.jpg" in page and "camwatch baseline set" in page
