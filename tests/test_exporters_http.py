"""The HTTP server and the collector, scraped for real over a socket."""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from camwatch.settings import Settings
from camwatch.state import LatestState
from exporters.http import FiringAlert, HttpServer, authorized
from exporters.sample import sample_inventory, sample_results
from probes.result import CheckKind, CheckResult, Status
from tests.waits import NOT_UNDER_TEST_S

NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)


def make_settings(**kw: Any) -> Settings:
    return Settings(listen="127.0.0.1:0", **kw)


async def served(settings: Settings, state: LatestState, **kw: Any) -> HttpServer:
    server = HttpServer(settings, state, sample_inventory(), now=lambda: NOW, **kw)
    await server.start()
    return server


@pytest.fixture
async def filled() -> AsyncIterator[tuple[HttpServer, httpx.AsyncClient]]:
    state = LatestState()
    state.update(sample_results())
    state.probes.observe("onvif", 0.25)
    state.probes.errors[("onvif", "timeout")] += 2
    state.scheduler.last_cycle_end[CheckKind.HOST] = NOW.timestamp()
    state.scheduler.lag_seconds[CheckKind.HOST] = 0.5
    state.scheduler.overdue_fn = lambda: {CheckKind.HOST: (7, 42.5), CheckKind.PICTURE: (0, 0.0)}
    calls: list[tuple[str, str, str]] = []

    async def provider(month: str, unit: str, fmt: str) -> bytes:
        calls.append((month, unit, fmt))
        return b"%PDF-1.7 fake " + unit.encode()

    alerts = [FiringAlert("DiskFailed", "nvr1", "教學大樓1樓機房 教學大樓1樓主機 硬碟 2 故障", NOW)]
    server = await served(make_settings(http_token="t0ken-abc", http_user="office",
                                        http_password="pw-xyz"),
                          state, report_provider=provider, alerts=lambda: alerts)
    async with httpx.AsyncClient(base_url=server.url, timeout=NOT_UNDER_TEST_S) as client:
        client.calls = calls  # type: ignore[attr-defined]
        yield server, client
    await server.stop()


async def test_metrics_plain_and_gzipped_are_the_same_body(filled):
    """The body is streamed a family at a time, compressed or not."""
    _, client = filled
    zipped = await client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    plain = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert plain.headers.get("content-encoding") is None
    assert plain.status_code == zipped.status_code == 200

    def devices_part(text: str) -> str:  # the registry's part has live counters
        return text.split("# HELP camwatch_probe_")[0]

    assert "# HELP camwatch_probe_" in plain.text
    assert devices_part(plain.text) == devices_part(zipped.text)
    assert 'camwatch_check_ok{check="recording",device="nvr1"} 0.0' in plain.text
    assert plain.text.endswith("\n")


async def test_metrics_scrape_is_clean_for_promtool(filled, tmp_path):
    _, client = filled
    r = await client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers.get("content-encoding") == "gzip"  # httpx decodes it
    assert r.headers["content-type"].startswith("text/plain")
    body = r.text
    assert 'camwatch_check_ok{check="recording",device="nvr1"} 0.0' in body
    assert 'camwatch_disk_ok{device="nvr1",disk="2"} 0.0' in body
    assert 'camwatch_picture_sharpness{device="cam-east"} 12.5' in body
    assert 'camwatch_retention_seconds{device="nvr1"} 2.6784e+06' in body
    assert 'camwatch_retention_max_seconds{recorder="dvr2"} 7.776e+06' in body
    assert 'camwatch_probe_errors_total{driver="onvif",reason="timeout"} 2.0' in body
    assert 'camwatch_probe_duration_seconds_count{driver="onvif"} 1.0' in body
    assert 'camwatch_scheduler_lag_seconds{check="host"} 0.5' in body
    assert 'camwatch_scheduler_overdue_checks{check="host"} 7.0' in body
    assert 'camwatch_scheduler_oldest_overdue_seconds{check="host"} 42.5' in body
    assert 'camwatch_scheduler_overdue_checks{check="picture"} 0.0' in body
    # unknown: no check_ok sample, an unknown=1 sample
    assert 'camwatch_check_ok{check="picture",device="cam-gate"}' not in body
    assert 'camwatch_check_unknown{check="picture",device="cam-gate"} 1.0' in body
    # a planned check with no result yet is unknown too (dvr2's... every planned one ran;
    # cam-east host ran) -> credentials never appear
    assert "CAMWATCH_DEMO" not in body and "password" not in body.lower()
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed")
    proc = subprocess.run(["promtool", "check", "metrics"], input=body.encode(),
                          capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()


async def test_collector_builds_fresh_families_each_scrape():
    state = LatestState()
    server = await served(make_settings(), state)
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            before = (await client.get("/metrics")).text
            assert "camwatch_check_ok{" not in before  # nothing known yet
            assert 'camwatch_check_unknown{check="host",device="nvr1"} 1.0' in before
            state.update(sample_results())
            after = (await client.get("/metrics")).text
            assert 'camwatch_check_ok{check="host",device="nvr1"} 1.0' in after
            # the disk recovers and disk 2 disappears from the reply: no stale series
            fixed = CheckResult("nvr1", CheckKind.RECORDING, Status.OK, "ok", NOW,
                                {"disk:1:ok": True})
            state.update([fixed])
            again = (await client.get("/metrics")).text
            assert 'disk="2"' not in again
            assert 'camwatch_check_ok{check="recording",device="nvr1"} 1.0' in again
    finally:
        await server.stop()


async def test_ready_is_503_until_first_results():
    state = LatestState()
    server = await served(make_settings(), state)
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/ready")).status_code == 503
            state.ready = True  # the service has started its scheduler
            assert (await client.get("/ready")).status_code == 503
            state.update(sample_results()[:1])
            assert (await client.get("/ready")).status_code == 200
            state.ready = False  # shutting down
            assert (await client.get("/ready")).status_code == 503
    finally:
        await server.stop()


async def test_landing_page_lists_failing_devices_with_place(filled):
    _, client = filled
    r = await client.get("/")
    assert r.status_code == 200
    html = r.text
    assert "text/html" in r.headers["content-type"]
    assert "教學大樓1樓走廊東側" in html and "畫面模糊" in html  # camera place + reason
    assert "教學大樓1樓機房" in html and "硬碟 2 故障" in html  # recorder machine room
    assert "總務處" in html and "Failing now" in html
    assert 'href="/metrics"' in html and 'href="/reports"' in html
    assert "2026-11-25 16:00" in html  # since, in the campus time zone (Asia/Taipei)
    assert "DiskFailed" in html  # alerts firing
    assert "<script" not in html and "<img" not in html and "<iframe" not in html
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]


async def test_landing_page_escapes_device_text():
    state = LatestState()
    state.update([CheckResult("nvr1", CheckKind.HOST, Status.FAIL, "<script>x</script>", NOW)])
    server = await served(make_settings(), state)
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            html = (await client.get("/")).text
        assert "<script>" not in html and "&lt;script&gt;" in html
    finally:
        await server.stop()


async def test_reports_need_token_or_basic_auth(filled):
    _, client = filled
    url = "/reports/2026-10/general.pdf"
    r = await client.get(url)
    assert r.status_code == 401 and "Basic" in r.headers["WWW-Authenticate"]
    assert (await client.get(url, headers={"Authorization": "Bearer wrong"})).status_code == 401
    r = await client.get(url, headers={"Authorization": "Bearer t0ken-abc"})
    assert r.status_code == 200
    assert r.content == b"%PDF-1.7 fake general"
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["Cache-Control"] == "no-store"
    basic = base64.b64encode(b"office:pw-xyz").decode()
    r = await client.get("/reports/2026-10/student.xlsx",
                         headers={"Authorization": f"Basic {basic}"})
    assert r.status_code == 200
    bad = base64.b64encode(b"office:nope").decode()
    assert (await client.get(url, headers={"Authorization": f"Basic {bad}"})).status_code == 401
    assert client.calls == [("2026-10", "general", "pdf"), ("2026-10", "student", "xlsx")]
    auth = {"Authorization": "Bearer t0ken-abc"}
    assert (await client.get("/reports/2026-13/general.pdf", headers=auth)).status_code == 404
    assert (await client.get("/reports/2026-10/nobody.pdf", headers=auth)).status_code == 404
    assert (await client.get("/reports/2026-10/general.exe", headers=auth)).status_code == 404
    index = await client.get("/reports", headers=auth)
    assert index.status_code == 200 and "/reports/2026-11/general.pdf" in index.text


async def test_reports_index_names_the_campus_month_not_the_utc_month():
    """At Taipei 02:10 on 1 December UTC still says 30 November: the reports page
    offers December (this month) and November (last month), as the campus counts."""

    async def provider(month: str, unit: str, fmt: str) -> bytes:
        raise AssertionError("the index fetches no sheet")

    early = dt.datetime(2026, 11, 30, 18, 10, tzinfo=dt.UTC)  # Taipei 2026-12-01 02:10
    server = HttpServer(make_settings(http_token="t0ken-abc"), LatestState(),
                        sample_inventory(), now=lambda: early, report_provider=provider)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
            index = await client.get("/reports", headers={"Authorization": "Bearer t0ken-abc"})
        assert index.status_code == 200
        assert "/reports/2026-12/" in index.text and "/reports/2026-11/" in index.text
        assert "/reports/2026-10/" not in index.text
    finally:
        await server.stop()


async def test_reports_disabled_without_auth_configured():
    state = LatestState()

    async def provider(month: str, unit: str, fmt: str) -> bytes:
        raise AssertionError("must not be called")

    server = await served(make_settings(), state, report_provider=provider)
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            r = await client.get("/reports/2026-10/general.pdf",
                                 headers={"Authorization": "Bearer anything"})
        assert r.status_code == 403 and "CAMWATCH_HTTP_TOKEN" in r.text
    finally:
        await server.stop()


async def test_report_provider_failure_does_not_leak_details():
    async def provider(month: str, unit: str, fmt: str) -> bytes:
        raise RuntimeError("db password=hunter2 at /var/secret")

    server = await served(make_settings(http_token="tok"), LatestState(),
                          report_provider=provider)
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            r = await client.get("/reports/2026-10/general.pdf",
                                 headers={"Authorization": "Bearer tok"})
        assert r.status_code == 500 and "hunter2" not in r.text
    finally:
        await server.stop()


def test_authorized_rejects_malformed_headers():
    s = Settings(http_token="abc", http_user="u", http_password="p")
    assert authorized(s, "Bearer abc")
    assert not authorized(s, None)
    assert not authorized(s, "Bearer abcd")
    assert not authorized(s, "Basic !!!notbase64")
    assert not authorized(s, "Basic " + base64.b64encode(b"nocolon").decode())
    assert not authorized(Settings(), "Bearer ")


async def test_tls_when_cert_and_key_are_given(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    server = await served(make_settings(tls_cert=cert, tls_key=key), LatestState())
    try:
        assert server.url.startswith("https://")
        verify = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(base_url=server.url, verify=verify) as client:
            assert (await client.get("/healthz")).status_code == 200
    finally:
        await server.stop()


async def test_overdue_families_survive_a_failing_or_missing_scheduler():
    state = LatestState()

    def broken() -> dict[CheckKind, tuple[int, float]]:
        raise RuntimeError("scheduler gone")

    state.scheduler.overdue_fn = broken
    server = await served(make_settings(), state)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=NOT_UNDER_TEST_S) as client:
            r = await client.get("/metrics")
            assert r.status_code == 200
            assert "# TYPE camwatch_scheduler_overdue_checks gauge" in r.text
            assert "camwatch_scheduler_overdue_checks{" not in r.text
            state.scheduler.overdue_fn = None  # no scheduler (stopped, or not yet started)
            r = await client.get("/metrics")
            assert r.status_code == 200
            assert "# TYPE camwatch_scheduler_oldest_overdue_seconds gauge" in r.text
            assert "camwatch_scheduler_oldest_overdue_seconds{" not in r.text
    finally:
        await server.stop()
