"""The simulator's replies look like the captured real-device replies in ../shared/fixtures:
same root element and namespace, no field a real device does not send, the same value
formats, and engineer D's parsers read both into the same facts."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from pathlib import Path

import httpx
import pytest
from lxml import etree

from camwatch.clock import now as clock_now
from probes.drivers import dahua as dahua_parse
from probes.drivers import isapi as isapi_parse
from probes.drivers import onvif as onvif_parse
from simulator.testing import SimulatedCampus, small_campus

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
pytestmark = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"captured device replies not found at {FIXTURES}"
)
ENP = FIXTURES / "onvif" / "easy_onvif_real_cameras" / "ENP1A14-IR_25X"
EX = FIXTURES / "onvif" / "ex_onvif_elixir" / "fixtures"


def local(tag) -> str:
    return etree.QName(tag).localname


def leaf_fields(el, prefix="") -> set[str]:
    """Paths (local names) of the leaf elements under el, list indices dropped."""
    out: set[str] = set()
    for c in el:
        if not isinstance(c.tag, str):
            continue
        path = f"{prefix}/{local(c.tag)}"
        if len(c):
            out |= leaf_fields(c, path)
        else:
            out.add(path)
    return out


def kv(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.split("\r\n") if "=" in line)


def kv_shape(text: str) -> set[str]:
    return {re.sub(r"\[\d+\]", "[]", k) for k in kv(text)}


@pytest.fixture
async def sim(tmp_path):
    campus = small_campus(tmp_path)
    async with SimulatedCampus(campus.inventory, campus.passwords, snmp=False) as s:
        s.campus = campus
        yield s


async def _get(dev, path):
    async with httpx.AsyncClient(auth=httpx.DigestAuth(dev.username, dev.password)) as http:
        r = await http.get(f"http://{dev.host}:{dev.http_port}{path}")
        r.raise_for_status()
        return r.content


# -- Hikvision ISAPI ---------------------------------------------------------------------


async def test_isapi_device_info_like_real_camera_and_nvr(sim):
    fixture = (FIXTURES / "hikvision_isapi/raw_xml/System.deviceInfo/ipc1.xml").read_bytes()
    fx = etree.fromstring(fixture)
    cam = next(
        d for d in sim.devices.values() if d.host and not d.is_recorder and d.vendor == "hikvision"
    )
    ours = etree.fromstring(await _get(cam, "/ISAPI/System/deviceInfo"))
    assert (local(ours.tag), etree.QName(ours).namespace) == (
        local(fx.tag),
        etree.QName(fx).namespace,
    )
    assert ours.get("version") == fx.get("version") == "2.0"
    assert leaf_fields(ours) <= leaf_fields(fx), leaf_fields(ours) - leaf_fields(fx)
    for name, pattern in [
        ("macAddress", r"([0-9a-f]{2}:){5}[0-9a-f]{2}"),
        ("firmwareVersion", r"V\d+\.\d+\.\d+"),
        ("firmwareReleasedDate", r"build \d{6}"),
    ]:
        assert re.fullmatch(pattern, fx.findtext(f"{{*}}{name}"))
        assert re.fullmatch(pattern, ours.findtext(f"{{*}}{name}")), name
    a = isapi_parse.parse_device_info(fixture)
    b = isapi_parse.parse_device_info(etree.tostring(ours))
    assert {k for k, v in vars(a).items() if v} == {k for k, v in vars(b).items() if v}

    # The recorder against the DS-7616NI-K2 dump (xmltodict JSON of the real reply).
    nvr = json.loads((FIXTURES / "hikvision_isapi/devices_json/DS-7616NI-K2.json").read_text())
    info = nvr["data"]["ISAPI"]["System/deviceInfo"]["response"]["DeviceInfo"]
    rec = sim.device(sim.campus.recorder("hikvision"))
    ours = etree.fromstring(await _get(rec, "/ISAPI/System/deviceInfo"))
    assert etree.QName(ours).namespace == info["@xmlns"]
    assert ours.get("version") == info["@version"]
    assert {f.lstrip("/") for f in leaf_fields(ours)} <= {k for k in info if not k.startswith("@")}
    assert ours.findtext("{*}serialNumber").startswith(rec.model)
    assert ours.findtext("{*}serialNumber").endswith("WCVU") and info["serialNumber"].endswith(
        "WCVU"
    )


async def test_isapi_storage_like_real_recorder(sim):
    fixture = (FIXTURES / "hikvision_isapi/raw_xml/ContentMgmt.Storage/hdd1.xml").read_bytes()
    fx = etree.fromstring(fixture)
    rec = sim.device(sim.campus.recorder("hikvision"))
    body = await _get(rec, "/ISAPI/ContentMgmt/Storage")
    ours = etree.fromstring(body)
    assert local(ours.tag) == local(fx.tag) == "storage"
    fx_hdd = leaf_fields(fx.find(".//{*}hdd"))
    our_hdd = leaf_fields(ours.find(".//{*}hdd"))
    assert our_hdd <= fx_hdd and {"/status", "/capacity", "/freeSpace"} <= our_hdd
    for root in (fx, ours):
        assert root.find(".//{*}hdd/{*}capacity").text.isdigit()  # MB, integers
    real = isapi_parse.parse_storage(fixture)
    sim_disks = isapi_parse.parse_storage(body)
    assert [d.status for d in sim_disks] == ["ok"] * len(rec.disks)
    assert real[0].capacity_bytes and sim_disks[0].capacity_bytes
    assert abs(sim_disks[0].capacity_bytes - rec.disks[0].capacity) < 2**20


# The ISAPI endpoints camwatch asks, and how the captured devices answered them.
ASKED = (
    "System/deviceInfo",
    "System/time",
    "System/status",
    "ContentMgmt/Storage",
    "ContentMgmt/InputProxy/channels",
    "ContentMgmt/InputProxy/channels/status",
    "System/Video/inputs/channels",
    "ContentMgmt/record/tracks",
)


@pytest.mark.parametrize(
    ("fixture", "which"),
    [("DS-7616NI-K2.json", "recorder"), ("DS-2CD2346G2-ISU.json", "camera")],
)
async def test_isapi_refuses_what_the_real_device_refuses(sim, fixture, which):
    """Where the real device answered 403 (the login working: deviceInfo answered), the
    simulated one of that model answers 403 too; where it answered, so does the
    simulator, for every endpoint of camwatch's it serves."""
    real = json.loads((FIXTURES / "hikvision_isapi/devices_json" / fixture).read_text())
    isapi = real["data"]["ISAPI"]
    if which == "recorder":
        dev = sim.device(sim.campus.recorder("hikvision"))
    else:
        dev = next(
            d for d in sim.devices.values()
            if d.host and not d.is_recorder and d.vendor == "hikvision"
        )
    assert fixture.startswith(dev.model.split("/")[0])  # the model the fixture is of
    assert "response" in isapi["System/deviceInfo"]  # the login works on the real one
    compared = 0
    async with httpx.AsyncClient(auth=httpx.DigestAuth(dev.username, dev.password)) as http:
        for endpoint in ASKED:
            if endpoint not in isapi:
                continue
            r = await http.get(f"http://{dev.host}:{dev.http_port}/ISAPI/{endpoint}")
            if isapi[endpoint].get("status_code") == 403:
                assert r.status_code == 403, endpoint
                assert b"<statusCode>4</statusCode>" in r.content  # Invalid Operation
                compared += 1
            elif "response" in isapi[endpoint] and r.status_code != 404:
                assert r.status_code == 200, endpoint
                compared += 1
    assert compared >= 2


def test_simulated_synology_tables_are_dsm7s():
    """The simulated Synology's raidTable lists the volume and the storage pool under it,
    as the (centreon) DSM 7 walk does, with the same disk rows and status scalars."""
    from probes.drivers.snmp import read_snmpwalk, table_rows
    from probes.vendors_snmp import SYNOLOGY_DISK, SYNOLOGY_RAID
    from simulator.model import DeviceKind, Disk, SimDevice
    from simulator.snmp import device_records, plain_pairs

    real = read_snmpwalk(
        (FIXTURES / "snmp/centreon_snmpwalk/synology-disk-ok.snmpwalk").read_text()
    )
    dev = SimDevice("syno", DeviceKind.RECORDER, "synology", model="DS920+",
                    disks=[Disk(1, 4 * 10**12, 10**12), Disk(2, 4 * 10**12, 10**12)])
    ours = plain_pairs(device_records(dev))
    for table in (SYNOLOGY_DISK, SYNOLOGY_RAID):
        real_rows, our_rows = table_rows(real, table.entry), table_rows(ours, table.entry)
        assert sorted(real_rows) == sorted(our_rows) == ["0", "1"]
        names = {i: r.get(table.name_col or 2) for i, r in real_rows.items()}
        assert names == {i: r.get(table.name_col or 2) for i, r in our_rows.items()}
        for i, row in real_rows.items():
            assert set(row) <= set(our_rows[i]), (table.key, set(row) - set(our_rows[i]))
    scalars = {o for o, _ in real if o.startswith("1.3.6.1.4.1.6574.1.")}
    assert scalars <= {o for o, _ in ours}, scalars - {o for o, _ in ours}


# -- Dahua CGI ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "nvr_fixture", "ipc_fixture"),
    [
        ("getSystemInfo", "NVR2X-4KS3_magicBox_getSystemInfo.txt",
         "IPC-HDW5831R-ZE_magicBox_getSystemInfo.txt"),
        ("getSoftwareVersion", "NVR2X-4KS3_magicBox_getSoftwareVersion.txt",
         "IPC-HDW5831R-ZE_magicBox_getSoftwareVersion.txt"),
        ("getMachineName", "NVR2X-4KS3_magicBox_getMachineName.txt", None),
        ("getVendor", "NVR2X-4KS3_magicBox_getVendor.txt", None),
        ("getDeviceType", None, "IPC-HDW5831R-ZE_magicBox_getDeviceType.txt"),
    ],
)  # fmt: skip
async def test_dahua_magicbox_like_real_devices(sim, action, nvr_fixture, ipc_fixture):
    rec = sim.device(sim.campus.recorder("dahua"))
    cam = next(
        d for d in sim.devices.values() if d.host and not d.is_recorder and d.vendor == "dahua"
    )
    for dev, name in ((rec, nvr_fixture), (cam, ipc_fixture)):
        if name is None:
            continue
        real = (FIXTURES / "dahua_cgi" / name).read_bytes().decode()
        ours = (await _get(dev, f"/cgi-bin/magicBox.cgi?action={action}")).decode()
        assert real.endswith("\r\n") and ours.endswith("\r\n")
        assert kv_shape(ours) <= kv_shape(real), kv_shape(ours) - kv_shape(real)
        if action == "getSoftwareVersion":
            pattern = r"[\d.]+(\.R)?,build:\d{4}-\d{2}-\d{2}"
            assert re.fullmatch(pattern, kv(real)["version"])
            assert re.fullmatch(pattern, kv(ours)["version"])
        if action == "getSystemInfo":
            a = dahua_parse.parse_system_info(real.encode())
            b = dahua_parse.parse_system_info(ours.encode())
            assert {k for k, v in vars(a).items() if v} == {k for k, v in vars(b).items() if v}


async def test_dahua_storage_like_real_device(sim):
    real = (
        FIXTURES / "dahua_cgi/Amcrest-Dahua-IPC_SDcard_storageDevice_getDeviceAllInfo.txt"
    ).read_bytes()
    rec = sim.device(sim.campus.recorder("dahua"))
    ours = await _get(rec, "/cgi-bin/storageDevice.cgi?action=getDeviceAllInfo")
    assert kv_shape(ours.decode()) == kv_shape(real.decode())
    for text in (real.decode(), ours.decode()):
        assert re.fullmatch(r"\d+\.000000", kv(text)["list.info[0].Detail[0].TotalBytes"])
    a, b = dahua_parse.parse_storage(real), dahua_parse.parse_storage(ours)
    assert a[0].status == b[0].status == "ok"
    assert b[0].capacity_bytes == rec.disks[0].capacity


# -- ONVIF --------------------------------------------------------------------------------


def soap(op: str, ns: str, body: str, user: str, password: str) -> bytes:
    nonce = os.urandom(16)
    created = clock_now().strftime("%Y-%m-%dT%H:%M:%S.000Z")
    digest = base64.b64encode(
        hashlib.sha1(nonce + created.encode() + password.encode(), usedforsecurity=False).digest()
    )
    wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    wsu = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
    return (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header>'
        f'<Security xmlns="{wsse}"><UsernameToken><Username>{user}</Username>'
        '<Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-'
        f'token-profile-1.0#PasswordDigest">{digest.decode()}</Password>'
        f"<Nonce>{base64.b64encode(nonce).decode()}</Nonce>"
        f'<Created xmlns="{wsu}">{created}</Created></UsernameToken></Security>'
        f'</s:Header><s:Body><{op} xmlns="{ns}">{body}</{op}></s:Body></s:Envelope>'
    ).encode()


TDS = "http://www.onvif.org/ver10/device/wsdl"
TRT = "http://www.onvif.org/ver10/media/wsdl"
TSE = "http://www.onvif.org/ver10/search/wsdl"
TRC = "http://www.onvif.org/ver10/recording/wsdl"
TT = "http://www.onvif.org/ver10/schema"

CASES = [
    # (operation, service ns, request body, fixture, D's parser)
    ("GetDeviceInformation", TDS, "", ENP / "device_management/GetDeviceInformationResponse.xml",
     onvif_parse.parse_device_information),
    ("GetSystemDateAndTime", TDS, "", ENP / "device_management/GetSystemDateAndTimeResponse.xml",
     onvif_parse.parse_system_date_and_time),
    ("GetServices", TDS, "<IncludeCapability>false</IncludeCapability>",
     ENP / "device_management/GetServicesResponse.xml", onvif_parse.parse_services),
    ("GetSnapshotUri", TRT, "<ProfileToken>{token}</ProfileToken>",
     ENP / "media1/GetSnapshotUriResponse.xml", onvif_parse.parse_media_uri),
    ("GetStreamUri", TRT,
     f'<StreamSetup><Stream xmlns="{TT}">RTP-Unicast</Stream><Transport xmlns="{TT}">'
     "<Protocol>RTSP</Protocol></Transport></StreamSetup><ProfileToken>{token}</ProfileToken>",
     ENP / "media1/GetStreamUriResponse.xml", onvif_parse.parse_media_uri),
    ("GetRecordingSummary", TSE, "", EX / "get_recording_summary.xml",
     onvif_parse.parse_recording_summary),
    ("FindRecordings", TSE, "<Scope/><KeepAliveTime>PT10S</KeepAliveTime>",
     EX / "find_recordings.xml", onvif_parse.parse_search_token),
    ("GetRecordingSearchResults", TSE, "<SearchToken>RecordingSearchToken_1</SearchToken>",
     EX / "get_recording_search_results.xml", onvif_parse.parse_recording_search_results),
    ("GetRecordingJobs", TRC, "", EX / "get_recording_jobs.xml",
     onvif_parse.parse_recording_jobs),
]  # fmt: skip


def _facts(value) -> object:
    """Which parts of a parsed value are present (not the values themselves)."""
    if isinstance(value, tuple | list):
        return (
            [_facts(v) for v in value[:1]]
            if isinstance(value, list)
            else tuple(_facts(v) for v in value)
        )
    if isinstance(value, dict):
        return bool(value)
    if hasattr(value, "__dataclass_fields__"):
        return {k for k, v in vars(value).items() if v not in (None, "", [], {})}
    return value is not None


@pytest.mark.parametrize(("op", "ns", "body", "fixture", "parse"), CASES, ids=[c[0] for c in CASES])
async def test_onvif_replies_like_real_devices(sim, op, ns, body, fixture, parse):
    dev = sim.device(sim.campus.recorder("dahua"))
    from simulator.onvif import profile_token

    request = soap(op, ns, body.format(token=profile_token(dev, 1)), dev.username, dev.password)
    url = f"http://{dev.host}:{dev.http_port}/onvif/device_service"
    async with httpx.AsyncClient() as http:
        r = await http.post(url, content=request, headers={"Content-Type": "application/soap+xml"})
    assert r.status_code == 200, r.text
    real = fixture.read_bytes()
    fx_body = etree.fromstring(real).find("{*}Body")[0]
    our_body = etree.fromstring(r.content).find("{*}Body")[0]
    assert etree.QName(our_body).text == etree.QName(fx_body).text  # same element, same ns
    fx_fields, our_fields = leaf_fields(fx_body), leaf_fields(our_body)
    missing = fx_fields - our_fields
    extra = our_fields - fx_fields
    # Real devices differ among themselves in optional parts (audio tracks, PTZ...);
    # we must not invent fields, and must carry the ones a client needs.
    assert not extra, extra
    assert len(missing) <= max(2, len(fx_fields) // 2), missing
    assert _facts(parse(real)) == _facts(parse(r.content))
