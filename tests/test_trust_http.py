"""Trust (issue 8): camwatch's own HTTP server.

Guards: exporters.http keeping /metrics, /healthz, /ready open while /reports needs a
bearer token or basic auth (and is off when none is configured); no route serving a
frame (no image content type, no JPEG bytes, no snapshot-like path); optional TLS with
a self-signed certificate made here with `cryptography`; and the service turning a
half or broken TLS configuration into one clear start-up message (no traceback).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from camwatch.settings import Settings
from camwatch.state import LatestState
from exporters.http import FiringAlert, HttpServer
from exporters.sample import sample_inventory, sample_results
from tests.conftest import env_without_settings
from tests.waits import NOT_UNDER_TEST_S

NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
TOKEN = "tok-" + "b7c1e9"
JPEG_SOI = b"\xff\xd8\xff"
# Every route the server has. A new route must be reviewed for privacy (does it name
# people? could it ever carry a frame?) and added here on purpose.
KNOWN_ROUTES = {
    ("GET", "/"), ("GET", "/metrics"), ("GET", "/healthz"), ("GET", "/ready"),
    ("GET", "/reports"), ("GET", "/reports/"), ("GET", "/reports/{month}/{unit}.{fmt}"),
    ("POST", "/admin/baselines/{camera}/reset"),  # behind the /reports auth
    # figures of a camera's baseline (frame size, modes learned, reference names): no
    # thumbnail, no picture; behind the same auth
    ("GET", "/admin/baselines/{camera}"),
    # a reference view's figures and 32x18 thumbnail sent in, never a picture; same auth
    ("POST", "/admin/baselines/{camera}/reference"),
    # behind the same auth; answers with inventory/settings errors (file, line, field:
    # never a credential, which the loader refuses without echoing) or counts
    ("POST", "/admin/reload"),
}


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "camwatch.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


async def start(settings: Settings) -> HttpServer:
    state = LatestState()
    state.update(sample_results())
    state.ready = True

    async def provider(month: str, unit: str, fmt: str) -> bytes:
        return b"%PDF-1.7 sheet" if fmt == "pdf" else b"PK\x03\x04 sheet"

    server = HttpServer(settings, state, sample_inventory(), report_provider=provider,
                        alerts=lambda: [FiringAlert("CameraBlurred", "cam1", "畫面模糊", NOW)],
                        now=lambda: NOW)
    await server.start()
    return server


def concrete(path: str) -> list[str]:
    if "{" not in path:
        return [path]
    inv = sample_inventory()
    unit = next(iter(inv.units))
    return [f"/reports/2026-11/{unit}.pdf", f"/reports/2026-11/{unit}.xlsx"]


def routes(server: HttpServer) -> set[tuple[str, str]]:
    out = set()
    for r in server.app.router.routes():
        if r.method == "HEAD":
            continue
        info: Any = r.resource.get_info() if r.resource is not None else {}
        path = info.get("path") or info.get("formatter") or ""
        out.add((r.method, path.replace("{fmt:[a-z]+}", "{fmt}")))
    return out


async def test_no_route_serves_a_frame_and_reports_need_auth() -> None:
    server = await start(Settings(listen="127.0.0.1:0", http_token=TOKEN, http_user="office",
                                  http_password="pw-" + "x1"))
    try:
        assert routes(server) == KNOWN_ROUTES  # a new route is a privacy review
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=server.url, timeout=NOT_UNDER_TEST_S) as client:
            for method, route in sorted(routes(server)):
                if method != "GET" or route.startswith("/admin/"):
                    # an admin action: refused without auth, never an image either way
                    path = route.replace("{camera}", "cam1")
                    r = await client.request(method, path)
                    assert r.status_code == 401, (method, path, r.status_code)
                    r = await client.request(method, path, headers=auth)
                    assert not r.headers.get("content-type", "").startswith("image/")
                    assert JPEG_SOI not in r.content
                    continue
                for path in concrete(route):
                    r = await client.get(path, headers=auth)
                    assert r.status_code == 200, (path, r.status_code)
                    ctype = r.headers.get("content-type", "")
                    assert not ctype.startswith(("image/", "video/", "multipart/")), path
                    assert JPEG_SOI not in r.content, path
                    assert b"<img" not in r.content.lower(), path
            # open by convention, with auth configured and none given
            for path in ("/metrics", "/healthz", "/ready", "/"):
                assert (await client.get(path)).status_code == 200, path
            # everything that names people needs the token or basic auth
            for path in ("/reports", "/reports/", *concrete("/reports/{month}/{unit}.{fmt}")):
                r = await client.get(path)
                assert r.status_code == 401, path
                assert "Basic" in r.headers.get("WWW-Authenticate", "")
                assert (await client.get(path, headers={"Authorization": "Bearer nope"})
                        ).status_code == 401
            basic = base64.b64encode(b"office:pw-x1").decode()
            r = await client.get("/reports", headers={"Authorization": f"Basic {basic}"})
            assert r.status_code == 200
            # nothing that looks like a snapshot or stream exists
            for path in ("/snapshot", "/snapshot.jpg", "/frame", "/cam1.jpg", "/stream",
                         "/reports/cam1.jpg", "/static/x.jpg", "/api/frame/cam1"):
                r = await client.get(path, headers=auth)
                assert r.status_code == 404, path
                assert not r.headers.get("content-type", "").startswith("image/")
            # the landing page embeds nothing: no images, no scripts, CSP none
            page = await client.get("/")
            html = page.text.lower()
            assert "<img" not in html and "<script" not in html and "data:image" not in html
            assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    finally:
        await server.stop()


async def test_reports_are_off_without_auth_configured() -> None:
    server = await start(Settings(listen="127.0.0.1:0"))
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=NOT_UNDER_TEST_S) as client:
            for path in ("/reports", *concrete("/reports/{month}/{unit}.{fmt}")):
                r = await client.get(path, headers={"Authorization": "Bearer anything"})
                assert r.status_code == 403 and "CAMWATCH_HTTP_TOKEN" in r.text
            assert (await client.get("/metrics")).status_code == 200
    finally:
        await server.stop()


async def test_tls_with_a_self_signed_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server = await start(Settings(listen="127.0.0.1:0", tls_cert=cert, tls_key=key,
                                  http_token=TOKEN))
    try:
        assert server.url.startswith("https://")
        # a client that verifies against the system CAs refuses the self-signed cert
        async with httpx.AsyncClient(base_url=server.url, timeout=NOT_UNDER_TEST_S) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get("/healthz")
        # trusting this certificate works; so does verify=False (what curl -k does)
        trust = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(base_url=server.url, verify=trust,
                                     timeout=NOT_UNDER_TEST_S) as client:
            assert (await client.get("/healthz")).status_code == 200
            r = await client.get("/reports", headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 200
            assert (await client.get("/reports")).status_code == 401
        async with httpx.AsyncClient(base_url=server.url, verify=False,  # noqa: S501
                                     timeout=NOT_UNDER_TEST_S) as client:
            assert (await client.get("/metrics")).status_code == 200
        # plain HTTP on the TLS port gets nothing
        plain = server.url.replace("https://", "http://")
        async with httpx.AsyncClient(base_url=plain, timeout=5) as client:
            try:
                r = await client.get("/metrics")
            except httpx.HTTPError:
                pass
            else:
                assert r.status_code >= 400 and "camwatch_" not in r.text
    finally:
        await server.stop()


@pytest.mark.parametrize("case", ["cert-only", "missing-files", "not-pem"])
def test_broken_tls_settings_are_one_clear_startup_error(tmp_path: Path, case: str) -> None:
    from simulator.testing import small_campus

    campus = small_campus(tmp_path, cameras=1, recorders=1, set_env=False)
    assert campus.path is not None
    env = env_without_settings()
    env.update(campus.passwords, CAMWATCH_LISTEN="127.0.0.1:0",
               CAMWATCH_STORE_URL=f"sqlite:///{tmp_path / 'log.db'}")
    if case == "cert-only":
        cert, _key = self_signed(tmp_path)
        env["CAMWATCH_TLS_CERT"] = str(cert)
    elif case == "missing-files":
        env["CAMWATCH_TLS_CERT"] = str(tmp_path / "none.pem")
        env["CAMWATCH_TLS_KEY"] = str(tmp_path / "none.key")
    else:
        (tmp_path / "bad.pem").write_text("not a certificate")
        env["CAMWATCH_TLS_CERT"] = env["CAMWATCH_TLS_KEY"] = str(tmp_path / "bad.pem")
    proc = subprocess.run([sys.executable, "-m", "camwatch", "run", "--inventory",
                           str(campus.path)], capture_output=True, text=True, env=env,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "CAMWATCH_TLS_CERT" in proc.stderr and "TLS" in proc.stderr
