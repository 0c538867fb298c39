"""Real Prometheus and Alertmanager binaries for tests (Debian `prometheus`,
`prometheus-alertmanager`).

Each server runs on 127.0.0.1 with a free port, a temporary storage directory, waits for
`/-/ready`, and is always terminated when the context ends (even if the test fails).

    with alertmanager(config_text) as am:          # am.url -> "http://127.0.0.1:PORT"
        ...
        am.stop(); am.start()                      # same port and storage: a restart
    with prometheus(scrape_targets=["127.0.0.1:9745"], rule_files=[...],
                    alertmanager_url=am.url) as prom:
        prom.query("up")                           # -> list of instant-vector samples

Inside an async test whose event loop also serves camwatch, never block the loop: use
the async forms, which start, query and stop in a worker thread:

    async with aalertmanager(cfg) as am, aprometheus([target], alertmanager_url=am.url) as p:
        await p.aquery("camwatch_check_ok")
        await p.await_for('ALERTS{alertname="CamwatchDown"}')

Binaries missing => `pytest.skip` with the reason (tests elsewhere still run).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.waits import CAP_S, NOT_UNDER_TEST_S

PROMETHEUS_BIN = "prometheus"
ALERTMANAGER_BIN = "prometheus-alertmanager"  # Debian's name for the binary

DEFAULT_AM_CONFIG = """\
route:
  receiver: blackhole
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: blackhole
"""


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the OS picks it: port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package; scripts/setup.sh installs it)")
    return path


class _Server:
    """One binary on a port, restartable on the same port and storage."""

    name = "server"

    def __init__(self, binary: str, workdir: Path, ready_timeout: float = CAP_S) -> None:
        self.binary = binary
        self.workdir = workdir
        self.ready_timeout = ready_timeout
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.name}.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def args(self) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def start(self) -> None:
        last_error = ""
        for _attempt in range(3):
            log = self.log_path.open("ab")
            self.proc = subprocess.Popen(
                [self.binary, *self.args()],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            log.close()
            try:
                self._wait_ready()
                return
            except RuntimeError as exc:  # port taken meanwhile, most likely: pick another
                last_error = str(exc)
                self.stop()
                self.port = free_port()
        raise RuntimeError(f"{self.name} did not start: {last_error}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                r = httpx.get(f"{self.url}/-/ready", timeout=1.0)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"not ready after {self.ready_timeout}s: {self.log_tail()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class Alertmanager(_Server):
    name = "alertmanager"

    def __init__(self, binary: str, workdir: Path, config_path: Path) -> None:
        super().__init__(binary, workdir)
        self.config_path = config_path
        (workdir / "am-data").mkdir(exist_ok=True)

    def args(self) -> list[str]:
        return [
            f"--config.file={self.config_path}",
            f"--storage.path={self.workdir / 'am-data'}",
            f"--web.listen-address={self.address}",
            "--cluster.listen-address=",  # no gossip
            "--log.level=warn",
        ]

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """GET /api/v2/alerts (active, silenced and inhibited), optionally filtered by label."""
        params: list[tuple[str, str]] = [("filter", f'{k}="{v}"') for k, v in filters.items()]
        r = httpx.get(f"{self.url}/api/v2/alerts", params=params, timeout=NOT_UNDER_TEST_S)
        r.raise_for_status()
        result: list[dict[str, Any]] = r.json()
        return result

    async def aalerts(self, **filters: str) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.alerts, **filters)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    async def astart(self) -> None:
        await asyncio.to_thread(self.start)

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        httpx.post(f"{self.url}/api/v2/alerts", json=alerts,
                   timeout=NOT_UNDER_TEST_S).raise_for_status()


class Prometheus(_Server):
    name = "prometheus"

    def __init__(self, binary: str, workdir: Path, config_path: Path) -> None:
        super().__init__(binary, workdir)
        self.config_path = config_path
        (workdir / "prom-data").mkdir(exist_ok=True)

    def args(self) -> list[str]:
        return [
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'prom-data'}",
            f"--web.listen-address={self.address}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; raises on a PromQL error, returns the result list."""
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": expr},
                      timeout=NOT_UNDER_TEST_S)
        body = r.json()
        if body.get("status") != "success":
            raise ValueError(f"{expr}: {body.get('errorType')}: {body.get('error')}")
        data: dict[str, Any] = body["data"]
        result = data["result"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": result}]
        assert isinstance(result, list)
        return result

    def wait_for(self, expr: str, timeout: float = CAP_S) -> list[dict[str, Any]]:
        """Poll until `expr` returns at least one sample."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"no data for {expr} after {timeout}s")
            time.sleep(0.2)

    async def aquery(self, expr: str) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.query, expr)

    async def await_for(self, expr: str, timeout: float = CAP_S) -> list[dict[str, Any]]:
        """Like wait_for, without blocking the event loop."""
        deadline = time.monotonic() + timeout
        while True:
            result = await self.aquery(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"no data for {expr} after {timeout}s")
            await asyncio.sleep(0.2)

    def rules(self) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.url}/api/v1/rules", timeout=NOT_UNDER_TEST_S)
        groups: list[dict[str, Any]] = r.json()["data"]["groups"]
        return groups


@contextlib.contextmanager
def _workdir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as d:
        yield Path(d)


@contextlib.contextmanager
def alertmanager(config: str | Path | None = None) -> Iterator[Alertmanager]:
    """A real Alertmanager. `config`: YAML text, a path, or None for a blackhole receiver."""
    binary = require_binary(ALERTMANAGER_BIN)
    with _workdir("camwatch-am-") as wd:
        if isinstance(config, Path):
            config_path = config
        else:
            config_path = wd / "alertmanager.yml"
            config_path.write_text(config if config is not None else DEFAULT_AM_CONFIG)
        am = Alertmanager(binary, wd, config_path)
        try:
            am.start()
            yield am
        finally:
            am.stop()


def prometheus_config(
    scrape_targets: Sequence[str] = (),
    *,
    rule_files: Sequence[Path] = (),
    alertmanager_url: str | None = None,
    interval: str = "1s",
    job: str = "camwatch",
) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval,
                   "scrape_timeout": interval},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": list(scrape_targets)}]}
        ],
    }
    if alertmanager_url:
        host = alertmanager_url.split("://", 1)[-1].rstrip("/")
        cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [host]}]}]}
    return cfg


@contextlib.contextmanager
def prometheus(
    scrape_targets: Sequence[str] = (),
    *,
    rule_files: Sequence[Path] = (),
    alertmanager_url: str | None = None,
    interval: str = "1s",
    config: dict[str, Any] | None = None,
) -> Iterator[Prometheus]:
    """A real Prometheus scraping `scrape_targets` (host:port) every `interval`."""
    binary = require_binary(PROMETHEUS_BIN)
    with _workdir("camwatch-prom-") as wd:
        cfg = config or prometheus_config(
            scrape_targets, rule_files=rule_files, alertmanager_url=alertmanager_url,
            interval=interval,
        )
        config_path = wd / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        prom = Prometheus(binary, wd, config_path)
        try:
            prom.start()
            yield prom
        finally:
            prom.stop()


@contextlib.asynccontextmanager
async def _in_thread(cm: contextlib.AbstractContextManager[Any]) -> AsyncIterator[Any]:
    value = await asyncio.to_thread(cm.__enter__)
    try:
        yield value
    finally:
        await asyncio.to_thread(cm.__exit__, None, None, None)


@contextlib.asynccontextmanager
async def aalertmanager(config: str | Path | None = None) -> AsyncIterator[Alertmanager]:
    """`alertmanager()` for async tests (start/stop off the event loop)."""
    async with _in_thread(alertmanager(config)) as am:
        yield am


@contextlib.asynccontextmanager
async def aprometheus(scrape_targets: Sequence[str] = (), **kwargs: Any
                      ) -> AsyncIterator[Prometheus]:
    """`prometheus()` for async tests (start/stop off the event loop)."""
    async with _in_thread(prometheus(scrape_targets, **kwargs)) as prom:
        yield prom
