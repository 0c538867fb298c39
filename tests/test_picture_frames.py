"""Where a frame comes from (vendor URL conventions) and what the frames driver refuses."""

from __future__ import annotations

import pytest

from inventory.models import Address, Protocol
from probes.drivers import frames
from probes.drivers.frames import (
    grab_frame,
    rtsp_frame,
    rtsp_sources,
    snapshot_sources,
    with_credentials,
)
from probes.drivers.http import DeviceError, HttpLimits, safe_url

testing = pytest.importorskip("simulator.testing", reason="simulator not present")


@pytest.fixture(scope="module")
def campus():  # type: ignore[no-untyped-def]
    return testing.small_campus(None, set_env=False, seed=11)


def test_camera_behind_a_hikvision_dvr_uses_its_channel_picture(campus) -> None:  # type: ignore[no-untyped-def]
    inv = campus.inventory
    cam = inv.cameras[campus.analog_camera()]
    rec = inv.recorders[cam.recorder]
    (src,) = snapshot_sources(cam, inv)
    host = rec.address.host
    assert src.url.endswith(f"/ISAPI/Streaming/channels/{cam.channel}01/picture")
    assert f"//{host}:{rec.address.http_port}/" in src.url
    (rtsp,) = rtsp_sources(cam, inv)
    assert rtsp.url == (f"rtsp://{host}:{rec.address.rtsp_port}/Streaming/Channels/{cam.channel}01")


def test_camera_behind_a_dahua_recorder_uses_snapshot_cgi(campus) -> None:  # type: ignore[no-untyped-def]
    inv = campus.inventory
    cam_id = campus.ip_camera("dahua")
    cam = inv.cameras[cam_id].model_copy(update={"address": None, "channel": 7})
    inv2 = inv.model_copy(update={"cameras": {**inv.cameras, cam_id: cam}})
    (src,) = snapshot_sources(cam, inv2)
    assert src.url.endswith("/cgi-bin/snapshot.cgi?channel=7") and src.driver == "dahua"
    (rtsp,) = rtsp_sources(cam, inv2)
    assert rtsp.url.endswith("/cam/realmonitor?channel=7&subtype=0")


def test_ip_cameras_use_their_own_address(campus) -> None:  # type: ignore[no-untyped-def]
    inv = campus.inventory
    hik = inv.cameras[campus.ip_camera("hikvision")]
    assert hik.address is not None
    urls = [s.url for s in snapshot_sources(hik, inv)]
    assert urls == [f"http://{hik.address.host}:{hik.address.http_port}"
                    "/ISAPI/Streaming/channels/101/picture"]  # fmt: skip
    generic = inv.cameras[campus.ip_camera("generic")]
    assert snapshot_sources(generic, inv) == []  # ONVIF GetSnapshotUri decides


def test_credentials_in_rtsp_urls_are_quoted_and_never_printed() -> None:
    url = with_credentials("rtsp://127.0.0.1:554/Streaming/Channels/101", "admin", "p@ss:w/rd#1")
    assert url == "rtsp://admin:p%40ss%3Aw%2Frd%231@127.0.0.1:554/Streaming/Channels/101"
    assert "p%40ss" not in safe_url(url) and "admin" not in safe_url(url)


async def test_snapshot_uri_on_another_host_is_refused_without_a_request(
    campus,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inv = campus.inventory
    cam = inv.cameras[campus.ip_camera("generic")]
    fetched: list[str] = []

    async def fake_uris(*args: object) -> tuple[str | None, str | None]:
        return "http://169.254.169.254/latest/meta-data/snap.jpg", None

    async def fake_fetch(url: str, *args: object) -> bytes:
        fetched.append(url)
        return b""

    monkeypatch.setattr(frames, "_asked_uris", fake_uris)
    monkeypatch.setattr(frames, "_fetch", fake_fetch)
    with pytest.raises(DeviceError) as err:
        await grab_frame(cam, inv, ("admin", "x"), HttpLimits(timeout=2.0))
    assert err.value.reason_code == "redirect-refused"
    assert "169.254.169.254" in err.value.zh_reason
    assert fetched == []


async def test_allowed_host_may_serve_the_snapshot(campus, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    inv = campus.inventory
    cam = inv.cameras[campus.ip_camera("generic")]

    async def fake_uris(*args: object) -> tuple[str | None, str | None]:
        return "http://media.school.example/snap.jpg", None

    async def fake_fetch(url: str, *args: object) -> bytes:
        return b"\xff\xd8jpeg\xff\xd9"

    monkeypatch.setattr(frames, "_asked_uris", fake_uris)
    monkeypatch.setattr(frames, "_fetch", fake_fetch)
    limits = HttpLimits(timeout=2.0, allowed_hosts=frozenset({"media.school.example"}))
    grab = await grab_frame(cam, inv, ("admin", "x"), limits)
    assert grab.driver == "onvif" and grab.source == "http://media.school.example/snap.jpg"


async def test_rtsp_to_a_closed_port_fails_fast_with_a_reason() -> None:
    with pytest.raises(DeviceError) as err:
        await rtsp_frame("rtsp://127.0.0.1:9/none", 3.0)
    assert err.value.reason_code in ("unreachable", "timeout")


async def test_camera_without_any_source_says_so(campus) -> None:  # type: ignore[no-untyped-def]
    inv = campus.inventory
    cam_id = campus.ip_camera("generic")
    cam = inv.cameras[cam_id].model_copy(
        update={"protocols": [Protocol.SNMP], "address": Address(host="127.0.0.1")}
    )
    with pytest.raises(DeviceError) as err:
        await grab_frame(cam, inv, None, HttpLimits(timeout=1.0))
    # none of its listed protocols gives frames: camwatch says which were listed
    assert err.value.reason_code == "no-driver"
    assert "snmp" in err.value.zh_reason
