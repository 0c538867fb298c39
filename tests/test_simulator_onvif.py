"""onvif-zeep-async, used directly as a client, against simulated recorders and cameras."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
import zeep.exceptions
from onvif import ONVIFCamera

from camwatch.clock import now as clock_now
from simulator.testing import SimulatedCampus, small_campus


def _client(dev, password=None):
    return ONVIFCamera(
        dev.host, dev.http_port, dev.username, password or dev.password, no_cache=True
    )


async def test_recorder_and_camera_via_onvif_client(tmp_path):
    campus = small_campus(tmp_path)
    async with SimulatedCampus(campus.inventory, campus.passwords, snmp=False) as sim:
        for dev_id in (campus.recorder("dahua"), campus.recorder("generic"), campus.ip_camera()):
            dev = sim.device(dev_id)
            cam = _client(dev)
            try:
                await cam.update_xaddrs()
                dm = await cam.create_devicemgmt_service()
                info = await dm.GetDeviceInformation()
                assert info.Model == dev.model
                assert info.SerialNumber == dev.serial
                t = await dm.GetSystemDateAndTime()
                utc = t.UTCDateTime
                got = dt.datetime(
                    utc.Date.Year,
                    utc.Date.Month,
                    utc.Date.Day,
                    utc.Time.Hour,
                    utc.Time.Minute,
                    utc.Time.Second,
                    tzinfo=dt.UTC,
                )
                assert abs((got - clock_now()).total_seconds()) < 5

                media = await cam.create_media_service()
                profiles = await media.GetProfiles()
                assert len(profiles) == len(dev.channels)
                uri = await media.GetSnapshotUri({"ProfileToken": profiles[0].token})
                assert uri.Uri.startswith(f"http://{dev.host}:{dev.http_port}/")
                stream = await media.GetStreamUri(
                    {
                        "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
                        "ProfileToken": profiles[0].token,
                    }
                )
                assert stream.Uri.startswith(f"rtsp://{dev.host}:{dev.rtsp_port}/")
                async with httpx.AsyncClient() as http:
                    r = await http.get(uri.Uri, auth=httpx.DigestAuth(dev.username, dev.password))
                    assert r.status_code == 200
                    assert r.headers["content-type"] == "image/jpeg"
                    assert r.content[:2] == b"\xff\xd8"
                    bad = await http.get(uri.Uri, auth=httpx.DigestAuth(dev.username, "nope"))
                    assert bad.status_code == 401

                if dev.is_recorder:
                    search = await cam.create_search_service()
                    summary = await search.GetRecordingSummary()
                    assert summary.NumberRecordings == len(dev.channels)
                    assert summary.DataUntil > clock_now() - dt.timedelta(minutes=1)
                    assert summary.DataFrom < clock_now() - dt.timedelta(days=30)
                    token = await search.FindRecordings({"Scope": {}, "KeepAliveTime": "PT10S"})
                    res = await search.GetRecordingSearchResults(
                        {"SearchToken": token, "WaitTime": "PT1S"}
                    )
                    assert res.SearchState == "Completed"
                    assert len(res.RecordingInformation) == len(dev.channels)
                    info1 = await search.GetRecordingInformation(
                        {"RecordingToken": res.RecordingInformation[0].RecordingToken}
                    )
                    assert info1.RecordingStatus == "Recording"
                    await search.EndSearch({"SearchToken": token})
                    rec = await cam.create_recording_service()
                    jobs = await rec.GetRecordingJobs()
                    assert len(jobs) == len(dev.channels)
                    state = await rec.GetRecordingJobState({"JobToken": jobs[0].JobToken})
                    assert state.State == "Active"
            finally:
                await cam.close()


async def test_hikvision_recorder_onvif_search_is_empty(tmp_path):
    campus = small_campus(tmp_path)
    async with SimulatedCampus(campus.inventory, campus.passwords, snmp=False) as sim:
        dev = sim.device(campus.recorder("hikvision"))
        cam = _client(dev)
        try:
            await cam.update_xaddrs()
            search = await cam.create_search_service()
            summary = await search.GetRecordingSummary()
            assert summary.NumberRecordings == 0
            media = await cam.create_media_service()
            uri = await media.GetSnapshotUri({"ProfileToken": "Profile_101"})
            assert "/onvif-http/snapshot?Profile_101" in uri.Uri
        finally:
            await cam.close()


async def test_wrong_password_is_refused(tmp_path):
    campus = small_campus(tmp_path)
    async with SimulatedCampus(campus.inventory, campus.passwords, snmp=False) as sim:
        for dev_id in (campus.recorder(), campus.ip_camera()):
            dev = sim.device(dev_id)
            cam = _client(dev, password="wrong-password")
            try:
                # GetSystemDateAndTime needs no login; everything else does.
                dm = await cam.create_devicemgmt_service()
                await dm.GetSystemDateAndTime()
                with pytest.raises(zeep.exceptions.Fault, match="Sender not authorized"):
                    await dm.GetDeviceInformation()
            finally:
                await cam.close()
