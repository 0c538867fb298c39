"""The lean periodic paths of issue 16, held to what they replace:

- a prepared ONVIF request is, byte for byte, what onvif-zeep-async's zeep sends (its
  WSDL serialisation, its WS-Security UsernameToken digest);
- a device keeps one keep-alive connection and its digest challenge from one check to
  the next (the service's HTTP pool), and no zeep object is built per check;
- /metrics lines kept ready as results arrive are the lines a fresh rendering gives;
- SNMP values through Net-SNMP's text come out as the parsers take them.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from lxml import etree

from probes.drivers import onvif
from probes.drivers.http import HttpLimits, HttpPool

# ---- ONVIF: prepared requests are zeep's --------------------------------------------


async def test_prepared_requests_are_what_zeep_serialises() -> None:
    await onvif.prepare()
    cam = onvif._onvif_camera_class()("127.0.0.1", 80, "admin", "pw", no_cache=True)
    try:
        for service, ops in onvif._OPERATIONS.items():
            if service != "devicemgmt":
                cam.xaddrs[onvif.NS[service]] = f"http://127.0.0.1:80/onvif/{service}"
            svc = await cam.create_onvif_service(service)
            binding = svc.zeep_client_authless.wsdl.bindings[svc.binding_name]
            for name, kwargs in ops:
                # the same operation with a real value where the marker stands
                real = {k: ("Tok&<1>" if isinstance(v, str) and v.startswith("CAMWATCH-PARAM")
                            else v) for k, v in kwargs.items()}
                expected = etree.tostring(binding.get(name).create(**real).content)
                params = ["Tok&<1>"] * (len(onvif._OPS[name].parts) - 1)
                assert onvif._OPS[name].render(None, params) == expected, name
                assert onvif._OPS[name].headers["Content-Type"].startswith(
                    "application/soap+xml; charset=utf-8; action=")
    finally:
        await cam.close()


def test_username_token_is_zeeps_password_digest() -> None:
    from zeep.wsse.username import UsernameToken

    created = dt.datetime(2026, 12, 1, 8, 30, 5)
    nonce = "0123456789abcdef"  # zeep takes the nonce as text
    token = UsernameToken("ad<min", "p&ss", use_digest=True, nonce=nonce, created=created,
                          zulu_timestamp=True)
    envelope = etree.Element("{http://www.w3.org/2003/05/soap-envelope}Envelope")
    token.apply(envelope, {})
    theirs = envelope.find(f".//{{{onvif.WSSE_NS}}}Security")
    ours = etree.fromstring(
        onvif.username_token("ad<min", "p&ss", "2026-12-01T08:30:05Z", nonce.encode())
    )
    c14n = {"method": "c14n", "exclusive": True}
    assert etree.tostring(ours, **c14n) == etree.tostring(theirs, **c14n)


async def test_a_fresh_nonce_and_the_device_clock_sign_each_request() -> None:
    a = onvif.username_token("admin", "pw", onvif.wsse_created(None), b"x" * 16)
    b = onvif.username_token("admin", "pw", onvif.wsse_created(None), b"y" * 16)
    assert a != b
    ahead = onvif.wsse_created(dt.timedelta(hours=1))
    now = dt.datetime.now(dt.UTC)
    seen = dt.datetime.strptime(ahead, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert abs((seen - now).total_seconds() - 3600) < 5
    digest = base64.b64decode(etree.fromstring(a).findtext(f".//{{{onvif.WSSE_NS}}}Password"))
    assert len(digest) == 20  # SHA-1


# ---- one connection and one digest challenge per device, across checks ----------------


@pytest.fixture
async def counting_device() -> AsyncIterator[tuple[str, list[tuple[int, bool]]]]:
    """A digest-protected device that records (client port, carried Authorization)."""
    from simulator.httpauth import challenge, check_digest

    seen: list[tuple[int, bool]] = []

    async def handler(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        auth = request.headers.get("Authorization")
        seen.append((peer[1] if peer else 0, auth is not None))
        if not check_digest(auth, request.method, "admin", "pw", "cam"):
            return web.Response(status=401, headers={"WWW-Authenticate": challenge("cam")})
        return web.Response(text="<DeviceStatus><deviceUpTime>99</deviceUpTime></DeviceStatus>",
                            content_type="application/xml")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/ISAPI/System/status", seen
    await runner.cleanup()


async def test_pool_keeps_the_connection_and_the_challenge_across_checks(
    counting_device: tuple[str, list[tuple[int, bool]]],
) -> None:
    url, seen = counting_device
    pool = HttpPool()
    limits = HttpLimits(timeout=2.0, allowed_hosts=frozenset({"127.0.0.1"}))
    try:
        for _check in range(4):  # four checks, each asking the pool for the device
            http = pool.device("cam-1", limits, ("admin", "pw"))
            assert (await http.get(url)).status == 200
    finally:
        await pool.aclose()
    # one 401 at the very first request, then every request answered at once
    assert [auth for _p, auth in seen] == [False, True, True, True, True]
    assert len({p for p, _a in seen}) == 1  # one keep-alive connection throughout


async def test_without_a_pool_each_check_opens_its_own(
    counting_device: tuple[str, list[tuple[int, bool]]],
) -> None:
    from probes.drivers.http import DeviceHttp

    url, seen = counting_device
    limits = HttpLimits(timeout=2.0, allowed_hosts=frozenset({"127.0.0.1"}))
    for _check in range(2):
        async with DeviceHttp(limits, ("admin", "pw")) as http:
            assert (await http.get(url)).status == 200
    assert [auth for _p, auth in seen] == [False, True, False, True]


async def test_a_device_whose_login_changed_gets_a_new_session() -> None:
    pool = HttpPool()
    limits = HttpLimits()
    try:
        a = pool.device("cam-1", limits, ("admin", "old"))
        assert pool.device("cam-1", limits, ("admin", "old")) is a
        assert pool.device("cam-1", limits, ("admin", "new")) is not a
    finally:
        await pool.aclose()


async def test_host_checks_build_no_zeep_object(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The periodic ONVIF path signs prepared bytes: a zeep client built during a check
    would mean the slow path came back."""
    import zeep.client

    from probes.api import ProbeContext, prepare, probe
    from probes.result import CheckKind, Status
    from simulator.testing import SimulatedCampus, make_resolver, small_campus

    campus = small_campus(tmp_path, cameras=4, recorders=2, set_env=False)
    inv = campus.inventory
    await prepare(inv)
    built: list[object] = []
    original = zeep.client.Client.__init__

    def counting(self, *a, **kw):  # type: ignore[no-untyped-def]
        built.append(self)
        original(self, *a, **kw)

    monkeypatch.setattr(zeep.client.Client, "__init__", counting)

    class Secrets:
        resolve = staticmethod(make_resolver(campus.passwords))

    ctx = ProbeContext(inventory=inv, secrets=Secrets(), http_pool=HttpPool())
    try:
        async with SimulatedCampus(inv, campus.passwords):
            for dev in [d for c, d in __import__("probes.api").api.planned_checks(inv)
                        if c == CheckKind.HOST]:
                for _ in range(2):
                    res = await probe(CheckKind.HOST, dev, ctx)
                    assert res[0].status == Status.OK, res[0].reason
                    assert res[0].driver and res[0].driver.startswith("onvif")
    finally:
        await ctx.http_pool.aclose()
    assert built == []


# ---- /metrics: lines kept ready are a fresh rendering's -------------------------------


def test_series_kept_as_results_arrive_equal_a_fresh_rendering(tmp_path: Path) -> None:
    from camwatch.state import LatestState
    from exporters.metrics import DeviceSeries
    from probes.result import CheckKind, CheckResult, Finding, FindingCode, Status
    from probes.values import DiskValues, HostValues, PictureValues, RecordingValues
    from simulator.testing import small_campus

    inv = small_campus(tmp_path, cameras=6, recorders=2, set_env=False).inventory
    t0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    cams = sorted(inv.cameras)
    recs = sorted(inv.recorders)
    batches = [
        [CheckResult(recs[0], CheckKind.HOST, Status.OK, "ok", t0,
                     values=HostValues(up=True, uptime_s=5.0, model="M", firmware="F1"))],
        [CheckResult(cams[0], CheckKind.PICTURE, Status.FAIL, "blur", t0,
                     findings=(Finding(FindingCode.PICTURE_BLURRED, "x", cams[0]),),
                     values=PictureValues(sharpness=3.0, mode="night", verdict="blurred"))],
        [CheckResult(recs[0], CheckKind.RECORDING, Status.OK, "ok", t0,
                     values=RecordingValues(newest_age_s=4.0, disks=(
                         DiskValues(id="1", ok=True, free_bytes=10, capacity_bytes=99),)))],
        # later answers replace earlier ones: a firmware change, a picture cleared,
        # a disk gone
        [CheckResult(recs[0], CheckKind.HOST, Status.OK, "ok", t0 + dt.timedelta(60),
                     values=HostValues(up=True, uptime_s=65.0, model="M", firmware="F2")),
         CheckResult(cams[0], CheckKind.PICTURE, Status.OK, "ok", t0 + dt.timedelta(60),
                     values=PictureValues(sharpness=300.0, mode="day", verdict="clear")),
         CheckResult(recs[0], CheckKind.RECORDING, Status.UNKNOWN, "?", t0 + dt.timedelta(60))],
    ]
    live_state = LatestState()
    live = DeviceSeries(live_state, inv)
    live.render()  # built once; the updates below are applied as they arrive
    for batch in batches:
        live_state.update(batch)
        fresh_state = LatestState()
        for b in batches[: batches.index(batch) + 1]:
            fresh_state.update(b)
        assert live.render() == DeviceSeries(fresh_state, inv).render()
    text = live.render()
    assert 'firmware="F2"' in text and 'firmware="F1"' not in text
    assert "camwatch_disk_ok{" not in text  # the unknown recording answer has no disks
    assert f'camwatch_check_unknown{{check="recording",device="{recs[0]}"}} 1.0' in text


def test_a_reloaded_inventory_drops_removed_devices(tmp_path: Path) -> None:
    from camwatch.state import LatestState
    from exporters.metrics import DeviceSeries
    from probes.result import CheckKind, CheckResult, Status
    from simulator.testing import small_campus

    inv = small_campus(tmp_path, cameras=6, recorders=2, set_env=False).inventory
    cam = sorted(inv.cameras)[0]
    state = LatestState()
    current = [inv]
    series = DeviceSeries(state, lambda: current[0])
    state.update([CheckResult(cam, CheckKind.PICTURE, Status.OK, "ok",
                              dt.datetime(2026, 12, 1, tzinfo=dt.UTC))])
    assert f'device="{cam}"' in series.render()
    smaller = inv.model_copy(update={"cameras": {k: v for k, v in inv.cameras.items()
                                                 if k != cam}})
    current[0] = smaller
    assert f'device="{cam}"' not in series.render()


# ---- SNMP values through Net-SNMP's text -----------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind", "plain"),
    [
        ("24683584", "INTEGER", 24683584),
        ("4294967295", "Gauge32", 4294967295),
        ("12345", "12345", 12345),  # numeric TimeTicks: ezsnmp names the type by value
        (".1.3.6.1.2.1.25.2.1.4", "OID", "1.3.6.1.2.1.25.2.1.4"),
        ("E9 8C 84 E5 BD B1", "Hex-STRING", "錄影"),  # UTF-8 octets
        ("FF 00", "Hex-STRING", "\xff\x00"),  # not UTF-8: latin-1, as pysnmp did
        ("", '""', ""),
        ("nvr-1", "STRING", "nvr-1"),
        ("No Such Instance currently exists at this OID", "NOSUCHINSTANCE", None),
        ("No more variables left in this MIB View", "No more variables left in this MIB View "
         "(It is past the end of the MIB tree)", None),
    ],
)
def test_snmp_values_as_the_parsers_take_them(value: str, kind: str, plain: object) -> None:
    from probes.drivers.snmp import _plain

    assert _plain(value, kind) == plain
