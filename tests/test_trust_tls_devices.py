"""Trust (issue 8): devices over HTTPS with self-signed certificates, through the full
picture probe and the inventory's Address options (https, tls_verify, tls_pin_sha256).

D's tests/test_drivers_tls.py checks HttpLimits directly; this file checks the wiring
from the inventory and one more property: when the certificate is not trusted (not
verified, or not the pinned one), no credential — not even a digest response, which
can be cracked offline — is sent to the impostor.

Guards: probes.drivers.http (_ssl_context; the pin checked at the TLS handshake by
_PinnedStream, and on each response before a challenge is answered), probes.picture
passing Address.tls_verify / tls_pin_sha256 on.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import load_pem_x509_certificate

from camwatch.secrets import SecretStore
from inventory.models import Address, Inventory, Protocol
from probes.api import ProbeConfig, ProbeContext, probe
from probes.result import CheckKind, Status
from simulator.testing import SmallCampus, small_campus
from tests.hostile import real_jpeg
from tests.test_trust_http import self_signed
from tests.waits import NOT_UNDER_TEST_S

CAM = "cam-https"


@dataclass
class HttpsCamera:
    port: int
    pin: str
    authorizations: list[str] = field(default_factory=list)
    requests: int = 0


@pytest.fixture
async def https_camera(tmp_path: Path) -> AsyncIterator[HttpsCamera]:
    cert, key = self_signed(tmp_path)
    der = load_pem_x509_certificate(cert.read_bytes()).public_bytes(serialization.Encoding.DER)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    jpeg = real_jpeg()
    state = HttpsCamera(0, hashlib.sha256(der).hexdigest())

    async def handler(request: web.Request) -> web.Response:
        state.requests += 1
        auth = request.headers.get("Authorization")
        if not auth:  # challenge like a Hikvision camera does
            return web.Response(status=401, headers={
                "WWW-Authenticate": 'Digest realm="IP Camera", qop="auth", '
                                    'nonce="4e6a4d7a4e5451784d6a4d3d", opaque=""'})
        state.authorizations.append(auth)
        return web.Response(body=jpeg, content_type="image/jpeg")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    state.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield state
    await runner.cleanup()


def inventory(campus: SmallCampus, port: int, protocol: Protocol = Protocol.ISAPI,
              **tls: object) -> Inventory:
    inv = campus.inventory
    template = inv.cameras[campus.ip_camera("hikvision")]
    cam = template.model_copy(update={
        "id": CAM, "channel": 98, "protocols": [protocol],
        "address": Address(host="127.0.0.1", http_port=port, https=True, **tls),  # type: ignore[arg-type]
    })
    return inv.model_copy(update={"cameras": {**inv.cameras, CAM: cam}})


async def picture(campus: SmallCampus, port: int, protocol: Protocol = Protocol.ISAPI,
                  **tls: object) -> tuple[Status, str]:
    inv = inventory(campus, port, protocol, **tls)
    ctx = ProbeContext(inv, SecretStore(), ProbeConfig(timeout=NOT_UNDER_TEST_S))
    res = await probe(CheckKind.PICTURE, CAM, ctx)
    return res[0].status, res[0].reason


@pytest.fixture
def campus(tmp_path: Path) -> SmallCampus:
    return small_campus(tmp_path, cameras=4, recorders=4, set_env=True)


async def test_self_signed_device_is_refused_by_default_without_sending_credentials(
    campus: SmallCampus, https_camera: HttpsCamera
) -> None:
    status, reason = await picture(campus, https_camera.port)
    assert status == Status.UNKNOWN
    assert "憑證" in reason
    assert https_camera.requests == 0  # the handshake failed: nothing was sent at all


@pytest.mark.parametrize("protocol", [Protocol.ISAPI, Protocol.ONVIF])
async def test_wrong_pin_is_refused_before_any_credential_is_sent(
    campus: SmallCampus, https_camera: HttpsCamera, protocol: Protocol
) -> None:
    status, reason = await picture(campus, https_camera.port, protocol,
                                   tls_pin_sha256="ab" * 32)
    assert status == Status.UNKNOWN
    assert "指紋" in reason
    # checked at the TLS handshake: an impostor gets no request at all — neither a
    # digest response nor an ONVIF WS-Security UsernameToken digest to crack offline
    assert https_camera.requests == 0
    assert https_camera.authorizations == []


async def test_matching_pin_is_accepted(campus: SmallCampus, https_camera: HttpsCamera) -> None:
    colons = ":".join(https_camera.pin[i:i + 2] for i in range(0, 64, 2)).upper()
    status, reason = await picture(campus, https_camera.port, tls_pin_sha256=colons)
    assert status == Status.OK, reason
    assert https_camera.authorizations and https_camera.authorizations[0].startswith("Digest ")


async def test_verification_skipped_only_when_the_inventory_says_so(
    campus: SmallCampus, https_camera: HttpsCamera
) -> None:
    status, reason = await picture(campus, https_camera.port, tls_verify=False)
    assert status == Status.OK, reason
