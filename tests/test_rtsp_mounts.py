"""Which RTSP mounts the simulator serves and what each shows (pure; no GStreamer)."""

from __future__ import annotations

from inventory.models import Vendor
from simulator.model import ChannelState, DeviceKind, FaultKind, SimDevice
from simulator.rtsp import picture_spec, rtsp_mounts


def _dev(dev_id: str, kind: DeviceKind, vendor: Vendor, host: str | None, **kw) -> SimDevice:
    return SimDevice(id=dev_id, kind=kind, vendor=vendor, host=host, rtsp_port=18554, **kw)


def test_picture_spec_per_fault() -> None:
    cam = _dev("cam", DeviceKind.CAMERA, Vendor.HIKVISION, "127.21.0.2")
    assert picture_spec(cam) == "smpte"
    expected = {
        FaultKind.OFFLINE: "offline",
        FaultKind.COVERED: "black",
        FaultKind.DARK: "smpte:dark",
        FaultKind.OVEREXPOSED: "smpte:bright",
        FaultKind.BLURRED: "smpte:soft",
        FaultKind.FROZEN: "smpte:frozen",
        FaultKind.MOVED: "smpte:moved",
    }
    for kind, spec in expected.items():
        cam.apply_fault(kind)
        assert picture_spec(cam) == spec, kind
        cam.clear_faults()
    cam.apply_fault(FaultKind.DISK_FULL)  # not a picture fault
    assert picture_spec(cam) == "smpte"


def test_mounts_for_cameras_and_recorder_channels() -> None:
    hik = _dev(
        "nvr-1",
        DeviceKind.RECORDER,
        Vendor.HIKVISION,
        "127.20.1.1",
        channels=[ChannelState(channel=1), ChannelState(channel=2)],
    )
    dahua = _dev(
        "nvr-2",
        DeviceKind.RECORDER,
        Vendor.DAHUA,
        "127.20.2.1",
        channels=[ChannelState(channel=1), ChannelState(channel=2)],
    )
    cam = _dev("cam-1", DeviceKind.CAMERA, Vendor.HIKVISION, "127.21.0.5")
    analog = _dev("cam-2", DeviceKind.CAMERA, Vendor.HIKVISION, None, analog=True)
    hik.camera_devices[2] = analog
    mounts = rtsp_mounts([hik, dahua, cam, analog])
    by_key: dict[str, list[str]] = {}
    for m in mounts:
        by_key.setdefault(m.key, []).append(m.path)
    assert by_key["127.20.1.1:18554"] == ["/Streaming/Channels/101", "/Streaming/Channels/201"]
    # Dahua names channels in the query string: one mount serves them all.
    assert by_key["127.20.2.1:18554"] == ["/cam/realmonitor?channel=1&subtype=0"]
    assert by_key["127.21.0.5:18554"] == ["/Streaming/Channels/101", "/Streaming/Channels/102"]
    ch2 = next(m for m in mounts if m.path == "/Streaming/Channels/201")
    assert ch2.device is analog and ch2.owner is hik
    analog.apply_fault(FaultKind.COVERED)
    assert ch2.wanted() == "black"
    hik.apply_fault(FaultKind.OFFLINE)
    assert ch2.wanted() == "offline"
    assert len(rtsp_mounts([hik, dahua, cam], limit=1)) == 2
