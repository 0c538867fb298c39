"""Trust (issue 8): no credential ever leaves camwatch.

The service (`camwatch run`), `camwatch check --json` and `camwatch report` run as real
processes against a simulated campus (HTTP + SNMP) whose passwords and SNMP community
are distinctive strings, with faults that make every driver fail in every way (wrong
password, offline, malformed replies, too slow, failed disk, blurred picture...). Then
everything camwatch wrote is scanned for those strings — stdout, stderr, the log file,
a scrape of /metrics, the landing page, /reports, the Alertmanager payloads, the store
(SQLite bytes and a dump) and the sheet (PDF text and XLSX) — and for URLs that carry
userinfo (RTSP/snapshot URLs must be printed with credentials stripped).

Protections guarded: camwatch.logs.scrub/secrets.redact, probes.drivers.http.safe_url
and DeviceError texts, frames' with_credentials never reaching a message, SNMP errors
without the community, the alert/metric/sheet texts built from reasons only.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from aiohttp import web

from probes.api import planned_checks
from simulator.testing import SimulatedCampus, small_campus
from tests.conftest import env_without_settings
from tests.servicerun import samples
from tests.waits import CAP_S

pytestmark = [pytest.mark.timeout(240)]

MARK = "7f3a9c1e"
SECRETS = {
    "CAMWATCH_DEMO_NVR_PASSWORD": f"Pw-{MARK}-SECRET-nvr",
    "CAMWATCH_DEMO_CAM_PASSWORD": f"Pw-{MARK}-SECRET-cam",
    "CAMWATCH_DEMO_SNMP_COMMUNITY": f"Cm-{MARK}-SECRET",
}
HTTP_TOKEN = f"Tk-{MARK}-SECRET-token"
HTTP_PASSWORD = f"Hp-{MARK}-SECRET-basic"
# user:password@ in any URL (rtsp://admin:pw@host/..., http://u:p@host)
USERINFO_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s@\"'<>]+:[^/\s@\"'<>]*@")


def forbidden_needles() -> list[bytes]:
    """Every form in which a secret could leak: plain, URL-quoted, in basic auth, and
    the distinctive marker itself (catches a partial or re-encoded leak)."""
    needles: set[bytes] = {MARK.encode()}
    for value in [*SECRETS.values(), HTTP_TOKEN, HTTP_PASSWORD]:
        needles.add(value.encode())
        needles.add(quote(value, safe="").encode())
        needles.add(base64.b64encode(f"admin:{value}".encode()))
        needles.add(value.encode("utf-16-le"))
    return sorted(needles)


def scan(name: str, data: bytes | str) -> list[str]:
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    hits = [f"{name}: contains {n!r}" for n in forbidden_needles() if n in raw]
    text = raw.decode("utf-8", "replace")
    hits += [f"{name}: URL with userinfo {m.group(0)!r}" for m in USERINFO_URL.finditer(text)]
    return hits


def base_env(tmp: Path, am_url: str, store: Path) -> dict[str, str]:
    env = env_without_settings()
    env.update(SECRETS)
    env.update(
        CAMWATCH_LISTEN="127.0.0.1:0",
        CAMWATCH_STORE_URL=f"sqlite:///{store}",
        CAMWATCH_ALERTMANAGER_URL=am_url,
        CAMWATCH_HOST_INTERVAL="1",
        CAMWATCH_RECORDING_INTERVAL="1.5",
        CAMWATCH_PICTURE_INTERVAL="1.5",
        CAMWATCH_TIMEOUT="1.5",
        CAMWATCH_RETRIES="0",
        CAMWATCH_JITTER="0",
        CAMWATCH_ALERT_DEBOUNCE="1",
        CAMWATCH_ALERT_RESEND_INTERVAL="1",
        CAMWATCH_LOG_LEVEL="DEBUG",  # the chattiest level must be clean too
        CAMWATCH_HTTP_TOKEN=HTTP_TOKEN,
        CAMWATCH_HTTP_USER="office",
        CAMWATCH_HTTP_PASSWORD=HTTP_PASSWORD,
        PYTHONUNBUFFERED="1",
    )
    return env


CAMWATCH = [sys.executable, "-m", "camwatch"]


class AlertCapture:
    """A stand-in Alertmanager on 127.0.0.1 port 0 that keeps every POSTed payload."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        async def alerts(request: web.Request) -> web.Response:
            self.payloads.append(await request.read())
            return web.json_response({})

        async def other(request: web.Request) -> web.Response:
            return web.json_response({})

        app = web.Application()
        app.router.add_post("/api/v2/alerts", alerts)
        app.router.add_route("*", "/{tail:.*}", other)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def alertmanager() -> AsyncIterator[AlertCapture]:
    cap = AlertCapture()
    await cap.start()
    yield cap
    await cap.stop()


async def faulty_campus(sim: SimulatedCampus, campus) -> None:  # type: ignore[no-untyped-def]
    """Every driver failing in every way: each recorder and IP camera gets one fault."""
    recorder_faults = ["auth", "malformed", "slow", "disk-failed"]
    for rec_id, kind in zip(campus.inventory.recorders, recorder_faults, strict=False):
        await sim.fault(rec_id, kind, 4.0 if kind == "slow" else None)
    camera_faults = ["auth", "offline", "malformed", "slow", "blurred", "covered"]
    ip = [c.id for c in campus.inventory.cameras.values() if c.address is not None]
    for cam_id, kind in zip(ip, camera_faults, strict=False):
        await sim.fault(cam_id, kind, 4.0 if kind == "slow" else None)


async def run_cli(args: list[str], env: dict[str, str], cwd: Path,
                  timeout: float = 60) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *CAMWATCH, *args, env=env, cwd=str(cwd), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out, err


def started_url(log_text: str) -> str | None:
    for line in log_text.splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("event") == "camwatch started" and ev.get("url"):
            return str(ev["url"])
    return None


def sqlite_dump(path: Path) -> str:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return "\n".join(con.iterdump())
    finally:
        con.close()


async def test_nothing_camwatch_writes_contains_a_credential(
    tmp_path: Path, alertmanager: AlertCapture
) -> None:
    campus = small_campus(tmp_path, cameras=10, recorders=4, set_env=False)
    assert campus.path is not None
    # the generated campus must really use the credentials we scan for
    inv_text = campus.path.read_text(encoding="utf-8")
    for name in SECRETS:
        assert "${" + name + "}" in inv_text
    store = tmp_path / "camwatch.db"
    log_file = tmp_path / "logs" / "camwatch.log"
    env = base_env(tmp_path, alertmanager.url, store)
    env["CAMWATCH_LOG_FILE"] = str(log_file)
    outputs: dict[str, bytes | str] = {}

    # SimulatedCampus serves SNMP agents on the recorders too (their community is secret)
    async with SimulatedCampus(campus.inventory, SECRETS) as sim:
        try:
            await faulty_campus(sim, campus)

            # --- the service ---------------------------------------------------------
            # files, not pipes: nobody reads a pipe while the service runs
            run_out = (tmp_path / "run.stdout").open("wb")
            run_err = (tmp_path / "run.stderr").open("wb")
            proc = await asyncio.create_subprocess_exec(
                *CAMWATCH, "run", "--inventory", str(campus.path), env=env, cwd=str(tmp_path),
                stdin=asyncio.subprocess.DEVNULL, stdout=run_out, stderr=run_err)
            try:
                url = None
                deadline = time.monotonic() + CAP_S
                while url is None and time.monotonic() < deadline:
                    assert proc.returncode is None, "camwatch run exited early"
                    await asyncio.sleep(0.3)
                    if log_file.exists():
                        url = started_url(log_file.read_text(encoding="utf-8", errors="replace"))
                assert url is not None, "camwatch run never logged its URL"
                async with httpx.AsyncClient(base_url=url, timeout=CAP_S) as client:
                    # let the alerts fire, then every check run twice more (counted, not
                    # waited for: a loaded machine takes longer, never fewer rounds)
                    deadline = time.monotonic() + CAP_S
                    while not ((await client.get("/ready")).status_code == 200
                               and len(alertmanager.payloads) >= 2):
                        assert time.monotonic() < deadline, "camwatch never alerted"
                        await asyncio.sleep(0.5)

                    async def checks_done() -> float:
                        text = (await client.get("/metrics")).text
                        return sum(samples(text, "camwatch_scheduler_checks_total").values())

                    rounds = await checks_done() + 2 * len(planned_checks(campus.inventory))
                    while await checks_done() < rounds:
                        assert time.monotonic() < deadline, "camwatch stopped checking"
                        await asyncio.sleep(0.5)
                    metrics = await client.get("/metrics")
                    assert metrics.status_code == 200
                    outputs["/metrics"] = metrics.content
                    outputs["/"] = (await client.get("/")).content
                    auth = {"Authorization": f"Bearer {HTTP_TOKEN}"}
                    outputs["/reports"] = (await client.get("/reports", headers=auth)).content
                    unit = next(iter(campus.inventory.units))
                    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
                    # rendering the sheet (CJK font embedded) may take a while on a busy CI
                    pdf = await client.get(f"/reports/{month}/{unit}.pdf", headers=auth,
                                           timeout=90)
                    outputs["/reports pdf (raw)"] = pdf.content
            finally:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), 30)
                run_out.close()
                run_err.close()
            outputs["run stdout"] = (tmp_path / "run.stdout").read_bytes()
            outputs["run stderr"] = (tmp_path / "run.stderr").read_bytes()

            # --- one-shot check ------------------------------------------------------
            check_env = dict(env)
            check_env.pop("CAMWATCH_LOG_FILE")
            rc, out, err = await run_cli(
                ["check", "--json", "--inventory", str(campus.path)], check_env, tmp_path)
            outputs["check stdout"], outputs["check stderr"] = out, err
            answers = json.loads(out)
            assert answers and rc in (0, 1), err.decode()[-2000:]
        finally:
            await sim.clear_all()

    # the faults were really exercised: reasons for auth, timeout and malformed replies
    log_text = log_file.read_text(encoding="utf-8", errors="replace")
    outputs["log file"] = log_text
    assert "帳號或密碼錯誤" in log_text + outputs["check stdout"].decode()  # type: ignore[union-attr]
    metrics_text = outputs["/metrics"].decode()  # type: ignore[union-attr]
    assert "camwatch_" in metrics_text
    assert alertmanager.payloads, "no alert reached the capture Alertmanager"
    for i, payload in enumerate(alertmanager.payloads):
        outputs[f"alertmanager payload {i}"] = payload

    # --- the store and the sheets -------------------------------------------------------
    for p in sorted(tmp_path.glob("camwatch.db*")):
        outputs[f"store file {p.name}"] = p.read_bytes()
    outputs["store dump"] = sqlite_dump(store)
    unit = next(iter(campus.inventory.units))
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    for fmt in ("pdf", "xlsx"):
        sheet = tmp_path / f"sheet.{fmt}"
        rc, out, err = await run_cli(
            ["report", "--month", month, "--unit", unit, "--format", fmt, "-o", str(sheet),
             "--inventory", str(campus.path), "--store-url", f"sqlite:///{store}"],
            {k: v for k, v in env.items() if k != "CAMWATCH_LOG_FILE"}, tmp_path)
        assert rc == 0, err.decode()[-2000:]
        outputs[f"report {fmt} stdout"], outputs[f"report {fmt} stderr"] = out, err
        outputs[f"sheet {fmt} bytes"] = sheet.read_bytes()
        if fmt == "xlsx":
            with zipfile.ZipFile(sheet) as z:
                for member in z.namelist():
                    outputs[f"sheet xlsx {member}"] = z.read(member)
        elif shutil.which("pdftotext"):
            outputs["sheet pdf text"] = subprocess.run(
                ["pdftotext", str(sheet), "-"], capture_output=True, check=True).stdout
    if shutil.which("pdftotext") and outputs.get("/reports pdf (raw)", b"")[:4] == b"%PDF":
        served = tmp_path / "served.pdf"
        served.write_bytes(outputs["/reports pdf (raw)"])  # type: ignore[arg-type]
        outputs["/reports pdf text"] = subprocess.run(
            ["pdftotext", str(served), "-"], capture_output=True, check=True).stdout
    # every other file camwatch left behind (state, caches)
    for p in tmp_path.rglob("*"):
        if p.is_file() and p.name != "inventory.yaml" and f"file {p}" not in outputs:
            outputs[f"file {p.relative_to(tmp_path)}"] = p.read_bytes()

    hits = [h for name, data in outputs.items() for h in scan(name, data)]
    assert hits == [], "\n".join(hits[:20])


def test_scan_itself_finds_a_leak() -> None:
    """The scanner must be able to fail: each leak form is caught."""
    pw = SECRETS["CAMWATCH_DEMO_CAM_PASSWORD"]
    assert scan("x", f"error: {pw}")
    assert scan("x", f"rtsp://admin:{quote(pw, safe='')}@127.0.0.1/live")
    assert scan("x", "rtsp://admin:other@127.0.0.1/live")
    assert scan("x", base64.b64encode(f"admin:{pw}".encode()))
    assert scan("x", f'{{"reason": "auth failed for {HTTP_TOKEN}"}}')
    assert not scan("x", "rtsp://127.0.0.1:554/Streaming/Channels/101 主機無回應")
