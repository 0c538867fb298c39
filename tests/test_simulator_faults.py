"""Every fault kind changes what a client sees (ONVIF, ISAPI, Dahua CGI, snapshots)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time

import cv2
import httpx
import numpy as np
import pytest
import zeep.exceptions
from lxml import etree
from onvif import ONVIFCamera

import simulator.scenes
from camwatch.clock import now as clock_now
from simulator.model import FaultKind
from simulator.testing import SimulatedCampus, small_campus
from tests.waits import NOT_UNDER_TEST_S


@pytest.fixture
async def sim(tmp_path, monkeypatch):
    monkeypatch.setattr(simulator.scenes, "CACHE_SECONDS", 0.0)
    campus = small_campus(tmp_path)
    async with SimulatedCampus(campus.inventory, campus.passwords, snmp=False) as s:
        s.campus = campus
        yield s


def _url(dev, path):
    return f"http://{dev.host}:{dev.http_port}{path}"


def _http(dev, timeout=NOT_UNDER_TEST_S):
    return httpx.AsyncClient(auth=httpx.DigestAuth(dev.username, dev.password), timeout=timeout)


async def _isapi(dev, path):
    async with _http(dev) as http:
        r = await http.get(_url(dev, path))
        r.raise_for_status()
        return etree.fromstring(r.content)


async def _dahua(dev, path):
    async with _http(dev) as http:
        r = await http.get(_url(dev, path))
        r.raise_for_status()
        return dict(line.split("=", 1) for line in r.text.split("\r\n") if "=" in line)


async def _snapshot(dev, channel=1):
    async with _http(dev) as http:
        r = await http.get(_url(dev, dev.snapshot_path(channel)))
        r.raise_for_status()
        return r.content


def _gray(jpeg):
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert img is not None
    return img[40:-40]  # without the OSD lines


def _sharpness(g):
    return float(cv2.Laplacian(g, cv2.CV_64F).var())


async def _onvif(dev, fn):
    cam = ONVIFCamera(dev.host, dev.http_port, dev.username, dev.password, no_cache=True)
    try:
        await cam.update_xaddrs()
        return await fn(cam)
    finally:
        await cam.close()


# -- transport -------------------------------------------------------------------------


async def test_offline_refuses_connections_and_comes_back(sim):
    dev = sim.device(sim.campus.ip_camera())
    await sim.fault(dev.id, "offline")
    async with _http(dev) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(_url(dev, "/"))
    await sim.clear(dev.id)
    async with _http(dev) as http:
        assert (await http.get(_url(dev, "/"))).status_code == 200


async def test_slow_delays_replies(sim):
    dev = sim.device(sim.campus.recorder("hikvision"))
    await sim.fault(dev.id, "slow", 0.6)
    t0 = time.monotonic()
    await _isapi(dev, "/ISAPI/System/deviceInfo")
    assert time.monotonic() - t0 >= 0.6
    async with _http(dev, timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(_url(dev, "/ISAPI/System/deviceInfo"))


async def test_auth_refuses_the_right_password(sim):
    dev = sim.device(sim.campus.recorder("dahua"))
    await sim.fault(dev.id, "auth")
    async with _http(dev) as http:
        r = await http.get(_url(dev, "/cgi-bin/magicBox.cgi?action=getSystemInfo"))
        assert r.status_code == 401

    async def info(cam):
        return await (await cam.create_devicemgmt_service()).GetDeviceInformation()

    with pytest.raises(zeep.exceptions.Fault, match="Sender not authorized"):
        await _onvif(dev, info)


async def test_malformed_breaks_xml(sim):
    dev = sim.device(sim.campus.recorder("hikvision"))
    await sim.fault(dev.id, "malformed")
    async with _http(dev) as http:
        r = await http.get(_url(dev, "/ISAPI/System/deviceInfo"))
        assert r.status_code == 200
        with pytest.raises(etree.XMLSyntaxError):
            etree.fromstring(r.content)


# -- host state ------------------------------------------------------------------------


async def test_reboot_resets_uptime(sim):
    dev = sim.device(sim.campus.recorder("hikvision"))
    before = int((await _isapi(dev, "/ISAPI/System/status")).findtext(".//{*}deviceUpTime"))
    await sim.fault(dev.id, "reboot")
    after = int((await _isapi(dev, "/ISAPI/System/status")).findtext(".//{*}deviceUpTime"))
    assert before > 86400 and after < 10


async def test_clock_drift_shows_in_device_time(sim):
    dev = sim.device(sim.campus.recorder("dahua"))
    await sim.fault(dev.id, "clock-drift", 300)
    t = await _dahua(dev, "/cgi-bin/global.cgi?action=getCurrentTime")
    local = dt.datetime.strptime(t["result"], "%Y-%m-%d %H:%M:%S")
    expect = clock_now().replace(tzinfo=None) + dt.timedelta(hours=8)
    assert 295 <= (local - expect).total_seconds() <= 305


# -- recording -------------------------------------------------------------------------


async def _recording_states(dev):
    async def read(cam):
        search = await cam.create_search_service()
        token = await search.FindRecordings({"Scope": {}, "KeepAliveTime": "PT10S"})
        res = await search.GetRecordingSearchResults({"SearchToken": token})
        rec = await cam.create_recording_service()
        jobs = await rec.GetRecordingJobs()
        states = [(await rec.GetRecordingJobState({"JobToken": j.JobToken})).State for j in jobs]
        return [(i.RecordingStatus, i.LatestRecording) for i in res.RecordingInformation], states

    return await _onvif(dev, read)


async def test_recording_stopped_on_recorder_and_on_one_camera(sim):
    rec = sim.device(sim.campus.recorder("generic"))
    infos, states = await _recording_states(rec)
    assert {s for s, _ in infos} == {"Recording"} and set(states) == {"Active"}
    # One IP camera's recording stops: only its channel on the recorder.
    cam_id = rec.channels[1].camera_id
    await sim.fault(cam_id, "recording-stopped")
    infos, states = await _recording_states(rec)
    assert [s for s, _ in infos] == ["Recording", "Stopped", "Recording"]
    assert states[1] == "Idle"
    await sim.clear(cam_id)
    await sim.fault(rec.id, "recording-stopped")
    infos, states = await _recording_states(rec)
    assert {s for s, _ in infos} == {"Stopped"} and set(states) == {"Idle"}
    await asyncio.sleep(1.1)
    again, _ = await _recording_states(rec)
    assert [t for _, t in again] == [t for _, t in infos]  # newest footage no longer advances


async def test_recording_gap_shows_in_file_search(sim):
    dev = sim.device(sim.campus.recorder("dahua"))
    await sim.fault(dev.id, "recording-gap", 30)
    obj = (await _dahua(dev, "/cgi-bin/mediaFileFind.cgi?action=factory.create"))["result"]
    now = clock_now().replace(tzinfo=None) + dt.timedelta(hours=8)
    fmt = "%Y-%m-%d %H:%M:%S"
    async with _http(dev) as http:
        await http.get(
            _url(dev, "/cgi-bin/mediaFileFind.cgi"),
            params={
                "action": "findFile",
                "object": obj,
                "condition.Channel": "1",
                "condition.StartTime": (now - dt.timedelta(hours=24)).strftime(fmt),
                "condition.EndTime": now.strftime(fmt),
            },
        )
    page = await _dahua(
        dev, f"/cgi-bin/mediaFileFind.cgi?action=findNextFile&object={obj}&count=100"
    )
    n = int(page["found"])
    files = [
        (
            dt.datetime.strptime(page[f"items[{i}].StartTime"], fmt),
            dt.datetime.strptime(page[f"items[{i}].EndTime"], fmt),
        )
        for i in range(n)
    ]
    holes = [b[0] - a[1] for a, b in itertools.pairwise(files) if b[0] > a[1]]
    assert holes == [dt.timedelta(minutes=30)]


async def test_disk_failed_and_disk_full(sim):
    hik = sim.device(sim.campus.recorder("hikvision"))
    await sim.fault(hik.id, "disk-failed")
    root = await _isapi(hik, "/ISAPI/ContentMgmt/Storage")
    assert root.findall(".//{*}hdd")[0].findtext("{*}status") == "error"
    dahua = sim.device(sim.campus.recorder("dahua"))
    before = await _dahua(dahua, "/cgi-bin/storageDevice.cgi?action=getDeviceAllInfo")
    assert float(before["list.info[0].Detail[0].UsedBytes"]) < float(
        before["list.info[0].Detail[0].TotalBytes"]
    )
    await sim.fault(dahua.id, "disk-full")
    after = await _dahua(dahua, "/cgi-bin/storageDevice.cgi?action=getDeviceAllInfo")
    assert after["list.info[0].Detail[0].UsedBytes"] == after["list.info[0].Detail[0].TotalBytes"]
    await sim.fault(dahua.id, "disk-failed")
    failed = await _dahua(dahua, "/cgi-bin/storageDevice.cgi?action=getDeviceAllInfo")
    assert failed["list.info[0].State"] == "Error"


@pytest.mark.parametrize(("kind", "days"), [("retention-short", 7), ("retention-long", 400)])
async def test_retention(sim, kind, days):
    dev = sim.device(sim.campus.recorder("dahua"))

    async def summary(cam):
        search = await cam.create_search_service()
        return await search.GetRecordingSummary()

    await sim.fault(dev.id, kind, days)
    s = await _onvif(dev, summary)
    kept = (s.DataUntil - s.DataFrom).total_seconds() / 86400
    assert abs(kept - days) < 0.01


async def test_signal_loss_on_analog_channel(sim):
    cam_id = sim.campus.analog_camera()
    cam = sim.device(cam_id)
    dvr = sim.device(cam.recorder_id)
    healthy = _gray(await _snapshot(dvr, cam.channel_no))
    assert np.mean(np.abs(healthy.astype(int) - np.median(healthy)) < 4) < 0.85
    await sim.fault(cam_id, "signal-loss")
    root = await _isapi(dvr, "/ISAPI/System/Video/inputs/channels")
    res = {
        int(c.findtext("{*}id")): c.findtext("{*}resDesc")
        for c in root.findall(".//{*}VideoInputChannel")
    }
    assert res[cam.channel_no] == "NO VIDEO"
    assert list(res.values()).count("NO VIDEO") == 1
    lost = _gray(await _snapshot(dvr, cam.channel_no))
    # The recorder's uniform "NO VIDEO" screen.
    assert np.mean(np.abs(lost.astype(int) - np.median(lost)) < 4) > 0.9


# -- picture ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["blurred", "covered", "dark", "overexposed", "moved"])
async def test_picture_faults(sim, kind):
    # A textured scene (low-texture ones barely change when defocused, as in life).
    dev = next(
        d
        for d in sim.devices.values()
        if d.host and not d.is_recorder and not simulator.scenes.is_low_texture(d.scene_seed)
    )
    healthy = _gray(await _snapshot(dev))
    healthy2 = _gray(await _snapshot(dev))
    await sim.fault(dev.id, kind)
    faulty = _gray(await _snapshot(dev))
    # The recorder's channel shows the same fault.
    rec = sim.device(dev.recorder_id)
    via_recorder = _gray(await _snapshot(rec, dev.channel_no))
    for img in (faulty, via_recorder):
        if kind == "blurred":
            assert _sharpness(img) < _sharpness(healthy) / 4
        elif kind == "covered":
            assert img.mean() < 80 and img.std() < healthy.std() / 2
        elif kind == "dark":
            assert img.mean() < healthy.mean() / 3
        elif kind == "overexposed":
            assert img.mean() > 200 and img.std() < healthy.std()
        elif kind == "moved":
            same = cv2.matchTemplate(healthy, healthy2, cv2.TM_CCOEFF_NORMED)[0, 0]
            moved = cv2.matchTemplate(healthy, img, cv2.TM_CCOEFF_NORMED)[0, 0]
            assert same > 0.9 and moved < 0.6
    await sim.clear(dev.id)
    back = _gray(await _snapshot(dev))
    assert cv2.matchTemplate(healthy, back, cv2.TM_CCOEFF_NORMED)[0, 0] > 0.9


async def test_frozen_repeats_the_same_bytes(sim):
    dev = sim.device(sim.campus.ip_camera())
    a, b = await _snapshot(dev), await _snapshot(dev)
    assert a != b  # a live camera: timestamp and noise change
    await sim.fault(dev.id, FaultKind.FROZEN)
    c, d = await _snapshot(dev), await _snapshot(dev)
    assert c == d
    await sim.clear(dev.id)
    assert await _snapshot(dev) != c
