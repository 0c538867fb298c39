"""Hostile devices (issue 8): each misbehaviour ends in bounded time and memory with a
DeviceError (or an unknown/fail result) and a reason — never a hang, a crash, or a
request to a host the inventory does not name.

Every hostile peer here is a real aiohttp server on 127.0.0.1, port 0.

No figure here is a fixed number of seconds on the wall clock (tests/waits.py): a
timeout that is not what a test is about is generous, so only the defence under test
decides the reason; where the deadline is what is tested, the peer misbehaves for far
longer than it (`HANG_S`) and the call must end by the deadline plus `LATE_S`, the
lateness a loaded CI machine allows. "Refused before reading" is counted in what the
peer managed to write, not in seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from camwatch.secrets import SecretStore
from inventory.models import (
    Address,
    Building,
    Camera,
    CameraKind,
    Campus,
    Credentials,
    Inventory,
    Location,
    MachineRoom,
    Person,
    Protocol,
    Recorder,
    Unit,
)
from probes.api import ProbeConfig, ProbeContext
from probes.drivers.http import (
    DeviceError,
    DeviceHttp,
    HttpLimits,
    fetch_bytes,
    is_allowed,
    parse_xml,
)
from probes.drivers.onvif import prepare as onvif_prepare
from probes.host import probe_host
from probes.recording import probe_recording
from probes.result import FindingCode, Status
from tests.waits import HANG_S, LATE_S, NOT_UNDER_TEST_S

PASSWORD_ENV = "CAMWATCH_TEST_HOSTILE_PW"


@dataclass
class Peer:
    host: str
    port: int
    hits: list[str] = field(default_factory=list)

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Peer]]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler, host: str = "127.0.0.1") -> Peer:
        peer = Peer(host, 0)

        async def counting(request: web.Request) -> web.StreamResponse:
            peer.hits.append(request.path_qs)
            return await handler(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", counting)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
        await runner.setup()
        site = web.TCPSite(runner, host, 0)
        await site.start()
        runners.append(runner)
        server = site._server
        assert server is not None
        peer.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return peer

    yield start
    for r in runners:
        await r.cleanup()


# for the tests of the deadline itself
LIMITS = HttpLimits(timeout=1.5, max_body_bytes=256 * 1024)
# for the other defences: only they can decide the answer
GUARDED = HttpLimits(timeout=NOT_UNDER_TEST_S, max_body_bytes=256 * 1024)
CHUNK = 64 * 1024
GIGABYTE_CHUNKS = 1024**3 // CHUNK
# A client that stops reading leaves the peer able to write what the sockets buffer
# (a few MB); one that reads on takes the whole body.
BUFFERED_CHUNKS = 1024  # 64 MB


async def timed(coro: Awaitable[object]) -> tuple[float, BaseException | None]:
    t0 = time.monotonic()
    try:
        await coro
    except Exception as exc:
        return time.monotonic() - t0, exc
    return time.monotonic() - t0, None


# ---- HTTP level ------------------------------------------------------------------------


async def test_byte_by_byte_slow_body_is_cut_at_the_deadline(serve) -> None:  # type: ignore[no-untyped-def]
    finished = []

    async def slow(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/xml"})
        await resp.prepare(request)
        for _ in range(int(HANG_S / 0.05)):
            await resp.write(b"<")
            await asyncio.sleep(0.05)  # every read succeeds: only the overall deadline helps
        finished.append(True)
        return resp

    peer = await serve(slow)
    took, exc = await timed(fetch_bytes(peer.url("/ISAPI/System/deviceInfo"), None, LIMITS))
    assert isinstance(exc, DeviceError) and exc.reason_code == "timeout"
    assert "逾時" in exc.zh_reason
    assert not finished and took < LIMITS.timeout + LATE_S, took


async def test_endless_body_is_cut_at_the_size_limit(serve) -> None:  # type: ignore[no-untyped-def]
    written = 0

    async def endless(request: web.Request) -> web.StreamResponse:
        nonlocal written
        resp = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        await resp.prepare(request)
        chunk = b"\xff" * CHUNK
        try:
            while True:
                await resp.write(chunk)
                written += 1
        except (ConnectionError, RuntimeError):
            pass
        return resp

    peer = await serve(endless)
    exc = (await timed(fetch_bytes(peer.url("/snap.jpg"), None, GUARDED)))[1]
    assert isinstance(exc, DeviceError) and exc.reason_code == "too-large"
    assert written < BUFFERED_CHUNKS, written


async def test_declared_gigabyte_body_is_refused_before_reading(serve) -> None:  # type: ignore[no-untyped-def]
    written = 0

    async def huge(request: web.Request) -> web.StreamResponse:
        nonlocal written
        resp = web.StreamResponse(
            headers={"Content-Type": "image/jpeg", "Content-Length": str(1024**3)}
        )
        await resp.prepare(request)
        try:
            for _ in range(GIGABYTE_CHUNKS):  # 1 GB in 64 KB writes, if anyone reads it
                await resp.write(b"\0" * CHUNK)
                written += 1
        except (ConnectionError, RuntimeError):
            pass
        return resp

    peer = await serve(huge)
    exc = (await timed(fetch_bytes(peer.url("/snap.jpg"), None, GUARDED)))[1]
    assert isinstance(exc, DeviceError) and exc.reason_code == "too-large"
    assert "過大" in exc.zh_reason
    assert written < BUFFERED_CHUNKS, written


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<DeviceInfo><model>&lol9;</model></DeviceInfo>"""


def external_entity(url: str) -> bytes:
    return (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "'
        + url
        + '">]><DeviceInfo><model>&xxe;</model></DeviceInfo>'
    ).encode()


def test_billion_laughs_and_external_entities_are_refused() -> None:
    for body in (
        BILLION_LAUGHS,
        external_entity("file:///etc/passwd"),
        external_entity("http://169.254.169.254/latest/meta-data/"),
    ):
        with pytest.raises(DeviceError) as err:
            parse_xml(body)
        assert err.value.reason_code == "unsafe-xml"


async def test_external_entity_never_fetches_the_other_host(serve) -> None:  # type: ignore[no-untyped-def]
    async def other_handler(request: web.Request) -> web.Response:
        return web.Response(text="secret")

    other = await serve(other_handler, host="127.0.0.2")

    async def device(request: web.Request) -> web.Response:
        return web.Response(
            body=external_entity(other.url("/leak")), content_type="application/xml"
        )

    peer = await serve(device)
    async with DeviceHttp(GUARDED) as http:
        reply = await http.get(peer.url("/ISAPI/System/deviceInfo"))
    with pytest.raises(DeviceError):
        parse_xml(reply.body)
    assert other.hits == []


@pytest.mark.parametrize("target", ["other", "http://169.254.169.254/latest/meta-data/"])
async def test_redirect_to_an_unlisted_host_is_not_followed(serve, target: str) -> None:  # type: ignore[no-untyped-def]
    async def other_handler(request: web.Request) -> web.Response:
        return web.Response(body=b"\xff\xd8\xff", content_type="image/jpeg")

    other = await serve(other_handler, host="127.0.0.2")
    location = other.url("/snap.jpg") if target == "other" else target

    async def redirecting(request: web.Request) -> web.Response:
        raise web.HTTPFound(location)

    peer = await serve(redirecting)
    limits = HttpLimits(timeout=NOT_UNDER_TEST_S, allowed_hosts=frozenset({"127.0.0.1"}))
    exc = (await timed(fetch_bytes(peer.url("/snapshot"), ("admin", "pw"), limits)))[1]
    # refused at the redirect (the generous timeout cannot have decided it)
    assert isinstance(exc, DeviceError) and exc.reason_code == "redirect-refused"
    assert other.hits == []
    assert peer.hits == ["/snapshot"]
    # Allowed explicitly (ProbeConfig.allowed_redirect_hosts): followed.
    if target == "other":
        ok = HttpLimits(timeout=NOT_UNDER_TEST_S,
                        allowed_hosts=frozenset({"127.0.0.1", "127.0.0.2"}))
        assert await fetch_bytes(peer.url("/snapshot"), None, ok) == b"\xff\xd8\xff"
        assert other.hits == ["/snap.jpg"]


def test_snapshot_uri_naming_another_host_is_not_allowed() -> None:
    limits = HttpLimits(timeout=1.0, allowed_hosts=frozenset({"127.0.0.1"}))
    assert is_allowed("http://127.0.0.1:8080/snap.jpg", limits)
    assert not is_allowed("http://169.254.169.254/latest/meta-data/", limits)
    assert not is_allowed("http://admin:pw@127.0.0.2/snap.jpg", limits)


async def test_wrong_content_type_is_refused(serve) -> None:  # type: ignore[no-untyped-def]
    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>login</html>", content_type="text/html")

    peer = await serve(html)
    limits = HttpLimits(timeout=NOT_UNDER_TEST_S, expect_content=("image/",))
    with pytest.raises(DeviceError) as err:
        await fetch_bytes(peer.url("/snap.jpg"), None, limits)
    assert err.value.reason_code == "bad-content"
    assert "text/html" in err.value.zh_reason


async def test_digest_auth_and_credentials_never_in_errors(serve) -> None:  # type: ignore[no-untyped-def]
    async def refuse(request: web.Request) -> web.Response:
        return web.Response(
            status=401,
            headers={"WWW-Authenticate": 'Digest realm="x", nonce="abc", qop="auth"'},
        )

    peer = await serve(refuse)
    secret = "pw-" + "Zq9xV"
    url = peer.url("/ISAPI/System/deviceInfo").replace("http://", f"http://admin:{secret}@")
    with pytest.raises(DeviceError) as err:
        await fetch_bytes(url, ("admin", secret), GUARDED)
    assert err.value.reason_code == "auth"
    assert secret not in str(err.value) and "admin:" not in str(err.value)
    # the digest challenge was answered (second request carried Authorization)
    assert len(peer.hits) == 2


# ---- probes against hostile ONVIF / ISAPI devices ------------------------------------


def inventory_for(
    host: str,
    port: int,
    protocols: list[Protocol],
    *,
    analog: int = 0,
    onvif_path: str = "/onvif/device_service",
) -> Inventory:
    person = Person(title="組長", name="測試")
    rec = Recorder(
        id="nvr-x",
        name="測試主機",
        unit="u1",
        machine_room="mr1",
        protocols=protocols,
        address=Address(host=host, http_port=port, onvif_path=onvif_path),
        credentials=Credentials(username="admin", password="${" + PASSWORD_ENV + "}"),
        channels=4,
    )
    cams = {
        f"cam-{n}": Camera(
            id=f"cam-{n}",
            name=f"攝影機{n}",
            kind=CameraKind.ANALOG,
            recorder="nvr-x",
            channel=n,
            location=Location(building="b1", floor="1樓", area="走廊"),
            position=f"教學大樓1樓走廊{n}",
        )
        for n in range(1, analog + 1)
    }
    return Inventory(
        campus=Campus(id="t", name="測試學校"),
        units={"u1": Unit(id="u1", name="學務處", manager=person, head=person)},
        buildings={"b1": Building(id="b1", name="教學大樓")},
        machine_rooms={"mr1": MachineRoom(id="mr1", name="機房", building="b1")},
        recorders={"nvr-x": rec},
        cameras=cams,
    )


def ctx_for(inv: Inventory, timeout: float = NOT_UNDER_TEST_S) -> ProbeContext:
    return ProbeContext(inv, SecretStore(), ProbeConfig(timeout=timeout))


@pytest.fixture(autouse=True)
async def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "pw-hostile-test")
    await onvif_prepare()  # parse the WSDLs before any timing starts (as the checks do)


SOAP_OPEN = (
    '<?xml version="1.0" encoding="UTF-8"?><env:Envelope '
    'xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" '
    'xmlns:tse="http://www.onvif.org/ver10/search/wsdl" '
    'xmlns:tt="http://www.onvif.org/ver10/schema"><env:Body>'
)
SOAP_CLOSE = "</env:Body></env:Envelope>"


def soap(inner: str) -> bytes:
    return (SOAP_OPEN + inner + SOAP_CLOSE).encode()


def date_time(hour: int, minute: int, second: int) -> bytes:
    now = dt.datetime.now(dt.UTC)
    return soap(
        "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
        "<tt:DateTimeType>NTP</tt:DateTimeType><tt:UTCDateTime>"
        f"<tt:Time><tt:Hour>{hour}</tt:Hour><tt:Minute>{minute}</tt:Minute>"
        f"<tt:Second>{second}</tt:Second></tt:Time>"
        f"<tt:Date><tt:Year>{now.year}</tt:Year><tt:Month>{now.month}</tt:Month>"
        f"<tt:Day>{now.day}</tt:Day></tt:Date></tt:UTCDateTime>"
        "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
    )


DEVICE_INFO = soap(
    "<tds:GetDeviceInformationResponse><tds:Manufacturer>ONVIF</tds:Manufacturer>"
    "<tds:Model>NVR-X</tds:Model><tds:FirmwareVersion>1.0</tds:FirmwareVersion>"
    "<tds:SerialNumber>SN1</tds:SerialNumber></tds:GetDeviceInformationResponse>"
)


def op_of(body: bytes) -> str:
    m = re.search(rb"<(?:[\w-]+:)?Body[^>]*>\s*<(?:[\w-]+:)?(\w+)", body)
    return m.group(1).decode() if m else "?"


def onvif_device(answers: dict[str, Callable[[], web.StreamResponse]]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        op = op_of(await request.read())
        if op in answers:
            return answers[op]()
        now = dt.datetime.now(dt.UTC)
        if op == "GetSystemDateAndTime":
            body = date_time(now.hour, now.minute, now.second)
        elif op == "GetDeviceInformation":
            body = DEVICE_INFO
        else:
            return web.Response(
                status=400,
                body=soap(
                    "<env:Fault><env:Code><env:Value>env:Receiver</env:Value><env:Subcode>"
                    "<env:Value>ter:ActionNotSupported</env:Value></env:Subcode></env:Code>"
                    "<env:Reason><env:Text>Not implemented</env:Text></env:Reason></env:Fault>"
                ),
                content_type="application/soap+xml",
            )
        return web.Response(body=body, content_type="application/soap+xml")

    return handler


def xml_reply(
    body: bytes, status: int = 200, ctype: str = "application/soap+xml"
) -> Callable[[], web.Response]:
    return lambda: web.Response(status=status, body=body, content_type=ctype)


async def test_healthy_stub_device_is_ok(serve) -> None:  # type: ignore[no-untyped-def]
    peer = await serve(onvif_device({}))
    res = await probe_host("nvr-x", ctx_for(inventory_for(peer.host, peer.port, [Protocol.ONVIF])))
    assert res[0].status == Status.OK, res[0].reason
    assert res[0].values.model == "NVR-X"


async def test_onvif_path_from_the_inventory_is_used(serve) -> None:  # type: ignore[no-untyped-def]
    peer = await serve(onvif_device({}))
    inv = inventory_for(peer.host, peer.port, [Protocol.ONVIF], onvif_path="/cgi/onvif/dev")
    res = await probe_host("nvr-x", ctx_for(inv))
    assert res[0].status == Status.OK, res[0].reason
    assert set(peer.hits) == {"/cgi/onvif/dev"}


async def test_invalid_device_time_gives_unknown_clock(serve) -> None:  # type: ignore[no-untyped-def]
    now = dt.datetime.now(dt.UTC)
    peer = await serve(
        onvif_device({"GetSystemDateAndTime": xml_reply(date_time(now.hour, 61, 16))})
    )
    res = await probe_host("nvr-x", ctx_for(inventory_for(peer.host, peer.port, [Protocol.ONVIF])))
    r = res[0]
    assert r.values.clock_offset_s is None
    assert "時間無法解讀" in r.reason
    assert not any(f.code == FindingCode.CLOCK_DRIFT for f in r.findings)


async def test_500_with_non_xml_body_is_unknown_not_a_crash(serve) -> None:  # type: ignore[no-untyped-def]
    crash = xml_reply(b"Internal Server Error: upstream died", status=500, ctype="text/plain")
    peer = await serve(onvif_device({"GetSystemDateAndTime": crash, "GetDeviceInformation": crash}))
    res = await probe_host("nvr-x", ctx_for(inventory_for(peer.host, peer.port, [Protocol.ONVIF])))
    assert res[0].status == Status.UNKNOWN
    assert "HTTP 500" in res[0].reason  # answered at once, not by the (generous) timeout


@pytest.mark.parametrize(
    ("name", "body", "needle"),
    [
        ("billion-laughs", BILLION_LAUGHS, "不安全"),
        ("external-entity", external_entity("file:///etc/passwd"), "不安全"),
        ("not-xml", b"\x00\x01garbage", "不是 XML"),
        ("truncated", soap("<tds:GetSystemDateAndTimeResponse>")[:-40], "格式錯誤"),
    ],
)
async def test_hostile_xml_bodies_give_a_reason(serve, name: str, body: bytes, needle: str) -> None:  # type: ignore[no-untyped-def]
    peer = await serve(onvif_device({"GetSystemDateAndTime": xml_reply(body)}))
    res = await probe_host("nvr-x", ctx_for(inventory_for(peer.host, peer.port, [Protocol.ONVIF])))
    assert res[0].status in (Status.UNKNOWN, Status.FAIL)
    assert needle in res[0].reason, res[0].reason  # not the (generous) timeout


async def test_slow_device_is_unknown_with_timeout_reason_in_bounded_time(serve) -> None:  # type: ignore[no-untyped-def]
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(HANG_S)
        return web.Response(text="late")

    peer = await serve(slow)
    inv = inventory_for(peer.host, peer.port, [Protocol.ONVIF, Protocol.ISAPI], analog=2)
    t0 = time.monotonic()
    res = await probe_host("nvr-x", ctx_for(inv, timeout=1.5))
    took = time.monotonic() - t0
    assert res[0].status == Status.UNKNOWN and "逾時" in res[0].reason
    assert took < 1.5 + LATE_S, took  # the deadline, not the device, ended it
    # the analog cameras behind it are unknown too, not ok
    assert [r.status for r in res[1:]] == [Status.UNKNOWN, Status.UNKNOWN]
    t0 = time.monotonic()
    rec = await probe_recording("nvr-x", ctx_for(inv, timeout=1.5))
    took = time.monotonic() - t0
    assert rec[0].status == Status.UNKNOWN and "逾時" in rec[0].reason
    assert took < 1.5 + LATE_S, took


async def test_the_checks_keep_the_deadline_they_are_given(serve) -> None:  # type: ignore[no-untyped-def]
    """The scheduler owns the deadline: a check given one (ctx.deadline) answers by it
    with its own reason, whatever the configured timeout — no check keeps a fraction
    of the timeout of its own."""

    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(HANG_S)
        return web.Response(text="late")

    peer = await serve(slow)
    inv = inventory_for(peer.host, peer.port, [Protocol.ONVIF, Protocol.ISAPI], analog=1)
    for probe_fn in (probe_host, probe_recording):
        t0 = time.monotonic()
        # the configured timeout is far beyond the deadline plus any lateness
        ctx = ctx_for(inv, timeout=NOT_UNDER_TEST_S).until(t0 + 1.0)
        res = await probe_fn("nvr-x", ctx)
        took = time.monotonic() - t0
        assert res[0].status == Status.UNKNOWN and "逾時 1 秒" in res[0].reason, res[0].reason
        assert took < 1.0 + LATE_S, (probe_fn.__name__, took)


async def test_gigabyte_isapi_reply_is_cut(serve) -> None:  # type: ignore[no-untyped-def]
    written = 0

    async def huge(request: web.Request) -> web.StreamResponse:
        nonlocal written
        resp = web.StreamResponse(headers={"Content-Type": "application/xml"})
        await resp.prepare(request)
        await resp.write(b"<DeviceInfo><model>")
        try:
            for _ in range(GIGABYTE_CHUNKS):
                await resp.write(b"A" * CHUNK)
                written += 1
        except (ConnectionError, RuntimeError):
            pass
        return resp

    peer = await serve(huge)
    inv = inventory_for(peer.host, peer.port, [Protocol.ISAPI])
    res = await probe_host("nvr-x", ctx_for(inv))
    assert res[0].status == Status.UNKNOWN and "過大" in res[0].reason  # not the timeout
    assert written < BUFFERED_CHUNKS, written


async def test_foreign_service_address_is_never_contacted(serve) -> None:  # type: ignore[no-untyped-def]
    async def other_handler(request: web.Request) -> web.Response:
        return web.Response(text="")

    other = await serve(other_handler, host="127.0.0.2")
    services = soap(
        "<tds:GetServicesResponse>"
        + "".join(
            f"<tds:Service><tds:Namespace>{ns}</tds:Namespace>"
            f"<tds:XAddr>{other.url('/onvif/' + name)}</tds:XAddr></tds:Service>"
            for ns, name in (
                ("http://www.onvif.org/ver10/search/wsdl", "search"),
                ("http://www.onvif.org/ver10/recording/wsdl", "recording"),
            )
        )
        + "</tds:GetServicesResponse>"
    )
    peer = await serve(onvif_device({"GetServices": xml_reply(services)}))
    inv = inventory_for(peer.host, peer.port, [Protocol.ONVIF], analog=1)
    res = await probe_recording("nvr-x", ctx_for(inv))
    assert other.hits == []
    # the search went to the device itself (which does not implement it)
    assert any("/onvif/search" in h for h in peer.hits)
    assert res[0].status == Status.UNKNOWN


async def test_recorder_too_slow_for_every_channel_keeps_what_it_answered(serve) -> None:  # type: ignore[no-untyped-def]
    """Channel 2's search hangs: disks and channel 1 are still judged; channel 2 is
    unknown with a reason, all within the check's own deadline. The deadline is three
    times what the whole check takes when nothing hangs (measured first, on this
    machine, now), so channel 1 surely has its answer by then."""
    ns = 'xmlns="http://www.hikvision.com/ver20/XMLSchema"'
    hang = False

    async def isapi(request: web.Request) -> web.StreamResponse:
        now = dt.datetime.now(dt.UTC)
        path = request.path
        if path == "/ISAPI/System/time":
            body = f"<Time {ns}><localTime>{now:%Y-%m-%dT%H:%M:%S}Z</localTime></Time>"
        elif path == "/ISAPI/ContentMgmt/Storage":
            body = (
                f"<storage {ns}><hddList><hdd><id>1</id><status>ok</status>"
                "<capacity>1000</capacity><freeSpace>500</freeSpace></hdd></hddList></storage>"
            )
        elif path == "/ISAPI/ContentMgmt/record/tracks":
            body = (
                f"<TrackList {ns}><Track><id>101</id><Channel>1</Channel><Enable>true</Enable>"
                "</Track><Track><id>201</id><Channel>2</Channel><Enable>true</Enable></Track>"
                "</TrackList>"
            )
        elif path == "/ISAPI/ContentMgmt/search":
            if hang and b"<trackID>201</trackID>" in await request.read():
                await asyncio.sleep(HANG_S)
            start = now - dt.timedelta(days=40)
            body = (
                f"<CMSearchResult {ns}><responseStatusStrg>OK</responseStatusStrg><matchList>"
                f"<searchMatchItem><timeSpan><startTime>{start:%Y-%m-%dT%H:%M:%S}Z</startTime>"
                f"<endTime>{now:%Y-%m-%dT%H:%M:%S}Z</endTime></timeSpan></searchMatchItem>"
                "</matchList></CMSearchResult>"
            )
        else:
            return web.Response(status=404)
        return web.Response(text=body, content_type="application/xml")

    peer = await serve(isapi)
    inv = inventory_for(peer.host, peer.port, [Protocol.ISAPI], analog=2)
    t0 = time.monotonic()
    calm = {r.device: r for r in await probe_recording("nvr-x", ctx_for(inv))}
    deadline = round(max(2.0, 3 * (time.monotonic() - t0)), 1)
    assert all(r.status == Status.OK for r in calm.values()), calm

    hang = True
    t0 = time.monotonic()
    res = {r.device: r for r in await probe_recording("nvr-x", ctx_for(inv, timeout=deadline))}
    took = time.monotonic() - t0
    assert took < deadline + LATE_S, (took, deadline)
    assert res["nvr-x"].status == Status.UNKNOWN and "太慢" in res["nvr-x"].reason
    assert res["nvr-x"].values.disk("1").free_bytes == 500 * 1024 * 1024
    assert res["cam-1"].status == Status.OK, res["cam-1"].reason
    assert res["cam-2"].status == Status.UNKNOWN and "未查完" in res["cam-2"].reason


async def test_rtsp_only_camera_falls_back_to_a_tcp_connect() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    base = inventory_for("127.0.0.1", 9, [Protocol.ONVIF])
    cam = Camera(
        id="cam-rtsp",
        name="攝影機",
        kind=CameraKind.IP,
        recorder="nvr-x",
        channel=1,
        address=Address(host="127.0.0.1", rtsp_port=port),
        credentials=Credentials(username="admin", password="${" + PASSWORD_ENV + "}"),
        protocols=[Protocol.RTSP],
        location=Location(building="b1", floor="1樓", area="走廊"),
        position="教學大樓1樓走廊",
    )
    inv = base.model_copy(update={"cameras": {"cam-rtsp": cam}})
    try:
        r = (await probe_host("cam-rtsp", ctx_for(inv)))[0]
        assert r.status == Status.OK and r.driver == "tcp", r.reason
    finally:
        server.close()
        await server.wait_closed()
    r = (await probe_host("cam-rtsp", ctx_for(inv)))[0]
    assert r.status == Status.FAIL
    assert [f.code for f in r.findings] == [FindingCode.CAMERA_UNREACHABLE]


async def test_recording_summary_when_the_recorder_has_no_recording_search(serve) -> None:  # type: ignore[no-untyped-def]
    now = dt.datetime.now(dt.UTC)
    services = soap(
        "<tds:GetServicesResponse><tds:Service>"
        "<tds:Namespace>http://www.onvif.org/ver10/search/wsdl</tds:Namespace>"
        "<tds:XAddr>/onvif/search</tds:XAddr></tds:Service></tds:GetServicesResponse>"
    )

    def summary(until: dt.datetime) -> Callable[[], web.Response]:
        return xml_reply(
            soap(
                "<tse:GetRecordingSummaryResponse><tse:Summary>"
                f"<tt:DataFrom>{now - dt.timedelta(days=45):%Y-%m-%dT%H:%M:%SZ}</tt:DataFrom>"
                f"<tt:DataUntil>{until:%Y-%m-%dT%H:%M:%SZ}</tt:DataUntil>"
                "<tt:NumberRecordings>2</tt:NumberRecordings>"
                "</tse:Summary></tse:GetRecordingSummaryResponse>"
            )
        )

    fresh = await serve(
        onvif_device({"GetServices": xml_reply(services), "GetRecordingSummary": summary(now)})
    )
    inv = inventory_for(fresh.host, fresh.port, [Protocol.ONVIF], analog=2)
    res = {r.device: r for r in await probe_recording("nvr-x", ctx_for(inv))}
    assert res["nvr-x"].status == Status.OK, res["nvr-x"].reason
    assert 44.5 < float(res["nvr-x"].values.retention_days) < 45.5  # type: ignore[arg-type]
    assert res["cam-1"].status == Status.OK

    old = now - dt.timedelta(hours=3)
    stale = await serve(
        onvif_device({"GetServices": xml_reply(services), "GetRecordingSummary": summary(old)})
    )
    inv = inventory_for(stale.host, stale.port, [Protocol.ONVIF], analog=2)
    res = {r.device: r for r in await probe_recording("nvr-x", ctx_for(inv))}
    assert res["nvr-x"].status == Status.FAIL
    assert [f.code for f in res["cam-2"].findings] == [FindingCode.RECORDING_STOPPED]
    assert "3 小時無新錄影" in res["cam-2"].reason


async def test_garbage_instead_of_http_is_unknown_not_down() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(b"\x16\x03\x01 this is not HTTP at all\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        inv = inventory_for("127.0.0.1", port, [Protocol.ISAPI])
        r = (await probe_host("nvr-x", ctx_for(inv)))[0]
    finally:
        server.close()
        await server.wait_closed()
    assert r.status == Status.UNKNOWN, r.reason
    assert not r.findings
    assert "HTTP 格式錯誤" in r.reason
