"""The landing page in a real browser (Debian `chromium`, headless), with a screenshot."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from camwatch.settings import Settings
from camwatch.state import LatestState
from exporters.http import HttpServer
from exporters.sample import sample_inventory, sample_results

# Keep the browser on loopback: no name resolves except 127.0.0.1, no background calls.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
    "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
    "--disable-extensions", "--disable-domain-reliability", "--no-pings",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--window-size=1280,1000", "--hide-scrollbars",
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("chromium not installed (scripts/setup.sh installs it)")


def run_browser(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=90)


async def test_landing_page_renders_in_chromium(tmp_path):
    state = LatestState()
    state.ready = True
    state.update(sample_results())
    server = HttpServer(Settings(listen="127.0.0.1:0"), state, sample_inventory())
    await server.start()
    try:
        dom = await asyncio.to_thread(run_browser, ["--dump-dom", server.url + "/"],
                                      tmp_path / "profile1")
        assert "目前異常" in dom.stdout, dom.stderr[-2000:]
        assert "教學大樓1樓走廊東側" in dom.stdout and "畫面模糊" in dom.stdout
        assert "<img" not in dom.stdout and "<iframe" not in dom.stdout
        shot = tmp_path / "landing.png"
        await asyncio.to_thread(run_browser, [f"--screenshot={shot}", server.url + "/"],
                                tmp_path / "profile2")
        assert shot.exists(), "no screenshot written"
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    finally:
        await server.stop()
