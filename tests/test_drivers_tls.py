"""HTTPS devices with self-signed certificates: verified by default (refused), and per
device either pinned by SHA-256 fingerprint or, explicitly, not verified."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from probes.drivers.http import DeviceError, HttpLimits, fetch_bytes
from tests.waits import NOT_UNDER_TEST_S


def self_signed(tmp: Path) -> tuple[Path, Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "camera.local")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "c.pem", tmp / "k.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pin = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return cert_path, key_path, pin


@pytest.fixture
async def https_device(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    cert, key, pin = self_signed(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=b"\xff\xd8snapshot", content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"https://127.0.0.1:{port}/snap.jpg", pin
    await runner.cleanup()


async def test_self_signed_certificate_is_refused_by_default(https_device: tuple[str, str]) -> None:
    url, _pin = https_device
    with pytest.raises(DeviceError) as err:
        await fetch_bytes(url, None, HttpLimits(timeout=NOT_UNDER_TEST_S))
    assert err.value.reason_code == "tls"


async def test_pinned_certificate_is_accepted_and_a_wrong_pin_refused(
    https_device: tuple[str, str],
) -> None:
    url, pin = https_device
    colon_pin = ":".join(pin[i : i + 2] for i in range(0, 64, 2)).upper()
    pinned = HttpLimits(timeout=NOT_UNDER_TEST_S, tls_pin_sha256=colon_pin)
    assert await fetch_bytes(url, None, pinned) == (
        b"\xff\xd8snapshot"
    )
    wrong = "0" * 64
    with pytest.raises(DeviceError) as err:
        await fetch_bytes(url, None, HttpLimits(timeout=NOT_UNDER_TEST_S, tls_pin_sha256=wrong))
    assert err.value.reason_code == "tls"
    assert "指紋" in err.value.zh_reason


async def test_verification_skipped_only_when_asked(https_device: tuple[str, str]) -> None:
    url, _pin = https_device
    body = await fetch_bytes(url, None, HttpLimits(timeout=NOT_UNDER_TEST_S, tls_verify=False))
    assert body.startswith(b"\xff\xd8")
