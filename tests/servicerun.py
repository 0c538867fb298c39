"""`camwatch run` as a real process for end-to-end tests: started with its own environment
on a free port, read over HTTP (/metrics, /ready, /), signalled, and always stopped.

    async with CamwatchProcess(inventory_path, env, tmp_path) as cw:
        await cw.wait_checked(len(planned))           # every planned check answered once
        text = await cw.metrics()
        value = await cw.metric('camwatch_check_ok{device="cam-0001",check="host"}')
        cw.send(signal.SIGHUP)

Waiting is by event (a metric appears, a value changes), with generous deadlines: the
machine running the suite is a loaded 2-core one.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.promstack import free_port

CLI = [sys.executable, "-c", "from camwatch.cli import main; main()"]


def clean_env(*layers: Mapping[str, str], **extra: str) -> dict[str, str]:
    """This process' environment without any CAMWATCH_* variable, plus the layers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMWATCH_")}
    for layer in layers:
        env.update(layer)
    env.update(extra)
    return env


async def eventually(fn: Callable[[], Awaitable[Any]], timeout: float, what: str,
                     every: float = 0.2) -> Any:
    """Await `fn()` until it returns something truthy; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = await fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(every)


SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<labels>\{[^}]*\})? (?P<value>\S+)")


def samples(text: str, name: str) -> dict[str, float]:
    """{labels text: value} of one metric in an exposition."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m and m["name"] == name:
            out[m["labels"] or ""] = float(m["value"])
    return out


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the one sample of `name` carrying `labels` (any label order)."""
    want = [f'{k}="{v}"' for k, v in labels.items()]
    for lv, value in samples(text, name).items():
        if all(w in lv for w in want):
            return value
    return None


class CamwatchProcess:
    def __init__(self, inventory: Path | list[Path], env: Mapping[str, str], workdir: Path,
                 args: tuple[str, ...] = (), name: str = "camwatch") -> None:
        self.inventories = inventory if isinstance(inventory, list) else [inventory]
        self.port = free_port()
        self.env = dict(env)
        self.env.setdefault("CAMWATCH_LISTEN", f"127.0.0.1:{self.port}")
        self.port = int(self.env["CAMWATCH_LISTEN"].rsplit(":", 1)[1])
        self.log_path = workdir / f"{name}.log"
        self.env.setdefault("CAMWATCH_LOG_FILE", str(self.log_path))
        self.env.setdefault("CAMWATCH_LOG_FORMAT", "text")
        self.args = args
        self.stderr_path = workdir / f"{name}.stderr"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"
        self._client: httpx.AsyncClient | None = None

    def command(self) -> list[str]:
        inv = [a for p in self.inventories for a in ("--inventory", str(p))]
        return [*CLI, "run", *inv, *self.args]

    async def start(self, wait: bool = True) -> None:
        self._client = httpx.AsyncClient(trust_env=False, timeout=10.0)
        with self.stderr_path.open("ab") as err:
            self.proc = subprocess.Popen(self.command(), env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err)
        if wait:
            await eventually(self._up, 90, f"camwatch run answering on {self.url}")

    async def _up(self) -> bool:
        self.assert_running()
        try:
            r = await self.get("/healthz")
            return r.status_code == 200
        except httpx.HTTPError:
            return False

    def assert_running(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"camwatch run exited with {self.proc.returncode}: "
                                 f"{self.stderr()[-3000:]}\n{self.log()[-3000:]}")

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        assert self._client is not None
        return await self._client.get(f"{self.url}{path}", **kw)

    async def post(self, path: str, **kw: Any) -> httpx.Response:
        assert self._client is not None
        return await self._client.post(f"{self.url}{path}", **kw)

    async def metrics(self) -> str:
        r = await self.get("/metrics")
        r.raise_for_status()
        return r.text

    async def metric(self, name: str, **labels: str) -> dict[str, float]:
        """Samples of `name` whose labels include `labels`."""
        found = samples(await self.metrics(), name)
        want = [f'{k}="{v}"' for k, v in labels.items()]
        return {k: v for k, v in found.items() if all(w in k for w in want)}

    async def wait_checked(self, planned: int, timeout: float = 90) -> None:
        """Every planned check has produced a result at least once."""
        async def done() -> bool:
            self.assert_running()
            try:
                return len(await self.metric("camwatch_check_timestamp_seconds")) >= planned
            except httpx.HTTPError:
                return False

        await eventually(done, timeout, f"all {planned} planned checks answered once")

    async def check_time(self, device: str, check: str) -> float | None:
        got = await self.metric("camwatch_check_timestamp_seconds", device=device, check=check)
        return next(iter(got.values()), None)

    async def next_result(self, device: str, check: str, after: float | None,
                          timeout: float = 60) -> float:
        """Wait for a result of (device, check) newer than `after`; returns its time."""
        async def newer() -> float | None:
            self.assert_running()
            t = await self.check_time(device, check)
            return t if t is not None and (after is None or t > after) else None

        value: float = await eventually(newer, timeout, f"a new {check} result of {device}",
                                        every=0.1)
        return value

    def send(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        proc = self.proc
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                await asyncio.to_thread(proc.wait, timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait, 10)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        return proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    async def __aenter__(self) -> CamwatchProcess:
        try:
            await self.start()
        except BaseException:
            await self.stop(signal.SIGKILL)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
