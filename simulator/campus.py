"""Generating a simulated campus inventory, and building the simulated devices of one.

`generate_campus(cameras, recorders)` writes a plausible school: units, buildings, machine
rooms, recorders (Hikvision NVRs with ISAPI, Dahua NVRs with CGI, generic ONVIF NVRs,
DVRs with analog cameras) and cameras, every served device on its own loopback address.

`build_world(inventory, resolve)` turns an inventory into `SimDevice`s for the servers.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from camwatch.clock import Clock, default_clock
from inventory.models import (
    Address,
    Building,
    Camera,
    CameraKind,
    Campus,
    Credentials,
    Inventory,
    InventoryFile,
    Location,
    MachineRoom,
    Person,
    Policy,
    Protocol,
    Recorder,
    RecorderKind,
    Sites,
    Snmp,
    Unit,
    Vendor,
)
from simulator.model import (
    MODEL_QUIRKS,
    ChannelState,
    DeviceKind,
    Disk,
    FaultKind,
    SimDevice,
    stable_int,
)

NVR_PASSWORD_REF = "${CAMWATCH_DEMO_NVR_PASSWORD}"  # noqa: S105 (a reference)
CAM_PASSWORD_REF = "${CAMWATCH_DEMO_CAM_PASSWORD}"  # noqa: S105 (a reference)
SNMP_COMMUNITY_REF = "${CAMWATCH_DEMO_SNMP_COMMUNITY}"
DEMO_ENV_VARS = (
    "CAMWATCH_DEMO_NVR_PASSWORD",
    "CAMWATCH_DEMO_CAM_PASSWORD",
    "CAMWATCH_DEMO_SNMP_COMMUNITY",
)
# generate_campus keyword -> (the variable its ${...} default names, its key in a secrets
# file written beside the inventory: `camwatch simulate --write-inventory`)
CAMPUS_SECRETS = {
    "nvr_password": ("CAMWATCH_DEMO_NVR_PASSWORD", "nvr-password"),
    "cam_password": ("CAMWATCH_DEMO_CAM_PASSWORD", "cam-password"),
    "snmp_community": ("CAMWATCH_DEMO_SNMP_COMMUNITY", "snmp-community"),
}

_UNITS = [
    ("student-affairs", "學務處(學安室)", "生輔組長", "王小明", "學務主任", "陳大同"),
    ("general-affairs", "總務處", "事務組長", "林美華", "總務主任", "張志成"),
    ("academic-affairs", "教務處", "設備組長", "黃建國", "教務主任", "李淑芬"),
    ("library", "圖書館", "資訊組長", "吳家豪", "圖書館主任", "周雅婷"),
]
_BUILDINGS = [
    ("teaching", "教學大樓"),
    ("admin", "行政大樓"),
    ("science", "科學館"),
    ("gym", "體育館"),
    ("library-bldg", "圖書館大樓"),
]
_AREAS = ["走廊東側", "走廊西側", "樓梯口", "大門", "停車場", "川堂", "後門", "中庭", "電梯前"]

# vendor -> (recorder kind, recorder protocols, camera protocols)
_RECORDER_TYPES: list[tuple[Vendor, RecorderKind, list[Protocol], list[Protocol]]] = [
    (
        Vendor.HIKVISION,
        RecorderKind.NVR,
        [Protocol.ONVIF, Protocol.ISAPI, Protocol.SNMP, Protocol.RTSP],
        [Protocol.ONVIF, Protocol.ISAPI, Protocol.RTSP],
    ),
    (
        Vendor.DAHUA,
        RecorderKind.NVR,
        [Protocol.ONVIF, Protocol.DAHUA, Protocol.SNMP, Protocol.RTSP],
        [Protocol.ONVIF, Protocol.DAHUA, Protocol.RTSP],
    ),
    (
        Vendor.GENERIC,
        RecorderKind.NVR,
        [Protocol.ONVIF, Protocol.SNMP, Protocol.RTSP],
        [Protocol.ONVIF, Protocol.RTSP],
    ),
    (
        Vendor.HIKVISION,
        RecorderKind.DVR,
        [Protocol.ONVIF, Protocol.ISAPI, Protocol.SNMP, Protocol.RTSP],
        [],
    ),
]

MODELS: dict[tuple[Vendor, str], tuple[str, str, str]] = {
    # (vendor, kind) -> (model, firmware, build)
    (Vendor.HIKVISION, "nvr"): ("DS-7616NI-K2", "V4.74.210", "build 230216"),
    (Vendor.HIKVISION, "dvr"): ("iDS-7208HQHI-M1/S", "V4.75.011", "build 230810"),
    (Vendor.HIKVISION, "camera"): ("DS-2CD2346G2-ISU/SL", "V5.7.3", "build 220112"),
    (Vendor.DAHUA, "nvr"): ("NVR2X-4KS3", "4.001.0000005.0", "build:2020-11-17"),
    (Vendor.DAHUA, "camera"): ("IPC-HDW5831R-ZE", "2.800.0000016.0.R", "build:2020-06-05"),
    (Vendor.GENERIC, "nvr"): ("NVR-3216", "3.2.1", "build 231001"),
    (Vendor.GENERIC, "camera"): ("IPC-2031", "5.5.3", "build 180822"),
    (Vendor.AXIS, "camera"): ("AXIS P3245-V", "10.12.182", "build 221014"),
    (Vendor.AXIS, "nvr"): ("AXIS S3008", "10.12.182", "build 221014"),
    (Vendor.SYNOLOGY, "nvr"): ("DS920+", "DSM 7.2.1-69057", "build 69057"),
    (Vendor.SYNOLOGY, "camera"): ("IPC-2031", "5.5.3", "build 180822"),
}


_HTTP_PROTOCOLS = {Protocol.ONVIF, Protocol.ISAPI, Protocol.DAHUA}


def address_for(base: str, block: int, index: int) -> str:
    """`base` is two octets ("127.50"); block 0.. for recorders, 100.. for cameras."""
    return f"{base}.{block + index // 250}.{index % 250 + 1}"


def generate_campus(
    cameras: int,
    recorders: int,
    base: str = "127.50",
    http_port: int = 18080,
    rtsp_port: int = 18554,
    snmp_port: int = 18161,
    seed: int = 1,
    analog_every: int = 4,
    campus_id: str = "sim-campus",
    campus_name: str = "模擬國民中學",
    nvr_password: str = NVR_PASSWORD_REF,
    cam_password: str = CAM_PASSWORD_REF,
    snmp_community: str = SNMP_COMMUNITY_REF,
) -> InventoryFile:
    """A campus of `recorders` recorders and `cameras` cameras spread over them.

    The credentials are references (${ENV_VAR} or secret:KEY), never values.

    Every `analog_every`-th recorder is a DVR whose cameras are analog (no address);
    the other cameras are IP cameras with their own loopback address. Recorders are at
    `{base}.0.1`, `{base}.0.2`, …; IP cameras at `{base}.100.1`, …
    """
    if recorders < 1:
        raise ValueError("a campus needs at least one recorder")
    if cameras < 0:
        raise ValueError("cameras must not be negative")
    parts = base.split(".")
    if len(parts) != 2 or parts[0] != "127" or not all(p.isdigit() for p in parts):
        raise ValueError(f"base {base!r} must be two octets of 127.0.0.0/8, e.g. 127.50")
    rng = random.Random(seed)
    units = [
        Unit(
            id=uid,
            name=name,
            manager=Person(title=mt, name=mn, phone=f"07-{rng.randint(2000000, 8999999)}"),
            head=Person(title=ht, name=hn),
        )
        for uid, name, mt, mn, ht, hn in _UNITS
    ]
    buildings = [Building(id=b, name=n, floors=["1F", "2F", "3F", "4F"]) for b, n in _BUILDINGS]
    rooms = [
        MachineRoom(id=f"room-{b}", name=f"{n}1樓機房", building=b, floor="1F")
        for b, n in _BUILDINGS
    ]
    # Cameras per recorder, as even as possible.
    per = [cameras // recorders + (1 if r < cameras % recorders else 0) for r in range(recorders)]
    recs: list[Recorder] = []
    cams: list[Camera] = []
    ip_index = 0
    cam_no = 0
    for r in range(recorders):
        analog = analog_every > 0 and r % analog_every == analog_every - 1
        rtype = _RECORDER_TYPES[3] if analog else _RECORDER_TYPES[r % 3]
        vendor, rkind, rprotos, cprotos = rtype
        bidx = r % len(buildings)
        rid = f"nvr-{r + 1:03d}" if rkind == RecorderKind.NVR else f"dvr-{r + 1:03d}"
        model = MODELS[(vendor, rkind.value)][0]
        label = "錄影主機" if rkind == RecorderKind.NVR else "DVR"
        recs.append(
            Recorder(
                id=rid,
                name=f"{buildings[bidx].name}{label}{r + 1}",
                unit=units[r % len(units)].id,
                machine_room=rooms[bidx].id,
                kind=rkind,
                vendor=vendor,
                model=model,
                protocols=rprotos,
                address=Address(
                    host=address_for(base, 0, r),
                    http_port=http_port,
                    rtsp_port=rtsp_port,
                    snmp_port=snmp_port,
                ),
                credentials=Credentials(username="admin", password=nvr_password),
                snmp=Snmp(community=snmp_community),
                property_number=f"3140101-03-{r + 1:06d}",
                channels=max(1, per[r]),
            )
        )
        for ch in range(1, per[r] + 1):
            cam_no += 1
            floor = f"{rng.randint(1, 4)}F"
            area = rng.choice(_AREAS)
            cid = f"cam-{cam_no:04d}"
            loc = Location(building=buildings[bidx].id, floor=floor, area=area)
            position = f"{buildings[bidx].name}{floor[:-1]}樓{area}"
            if analog:
                cams.append(
                    Camera(
                        id=cid,
                        name=f"{position}攝影機",
                        kind=CameraKind.ANALOG,
                        recorder=rid,
                        channel=ch,
                        location=loc,
                        position=position,
                        protocols=[],
                        purpose="校園安全",
                    )
                )
                continue
            cams.append(
                Camera(
                    id=cid,
                    name=f"{position}攝影機",
                    kind=CameraKind.IP,
                    recorder=rid,
                    channel=ch,
                    address=Address(
                        host=address_for(base, 100, ip_index),
                        http_port=http_port,
                        rtsp_port=rtsp_port,
                        snmp_port=snmp_port,
                    ),
                    credentials=Credentials(username="admin", password=cam_password),
                    protocols=cprotos,
                    location=loc,
                    position=position,
                    purpose="校園安全",
                    property_number=f"3140101-07-{cam_no:06d}",
                )
            )
            ip_index += 1
    return InventoryFile(
        campus=Campus(id=campus_id, name=campus_name),
        policy=Policy(),
        units=units,
        sites=Sites(buildings=buildings, machine_rooms=rooms),
        recorders=recs,
        cameras=cams,
    )


def to_inventory(f: InventoryFile) -> Inventory:
    """Merge one generated file into an Inventory (no cross-checks: the generator is
    consistent by construction; real files go through inventory.loader)."""
    return Inventory(
        campus=f.campus or Campus(id="sim-campus", name="模擬國民中學"),
        policy=f.policy or Policy(),
        units={u.id: u for u in f.units},
        buildings={b.id: b for b in (f.sites.buildings if f.sites else [])},
        machine_rooms={m.id: m for m in (f.sites.machine_rooms if f.sites else [])},
        recorders={r.id: r for r in f.recorders},
        cameras={c.id: c for c in f.cameras},
    )


def write_inventory(f: InventoryFile, path: str) -> None:
    import yaml

    data = f.model_dump(mode="json", exclude_none=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("# Generated by `camwatch simulate --write-inventory`; edit freely.\n")
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # the C one is ~10x faster
        yaml.dump(data, fh, Dumper=dumper, allow_unicode=True, sort_keys=False)


# ---------------------------------------------------------------------------------------
# Simulated devices of an inventory
# ---------------------------------------------------------------------------------------


@dataclass
class World:
    """Every simulated device of an inventory (analog cameras included), by id."""

    devices: dict[str, SimDevice] = field(default_factory=dict)

    def served(self) -> list[SimDevice]:
        return [d for d in self.devices.values() if d.served]

    def get(self, device_id: str) -> SimDevice:
        try:
            return self.devices[device_id]
        except KeyError:
            raise KeyError(f"no simulated device {device_id!r}") from None

    def fault(self, device_id: str, kind: FaultKind | str, severity: float | None = None) -> None:
        self.get(device_id).apply_fault(kind, severity)

    def clear(self, device_id: str) -> None:
        self.get(device_id).clear_faults()

    def clear_all(self) -> None:
        for d in self.devices.values():
            if d.faults:
                d.clear_faults()

    def faults(self) -> dict[str, dict[str, float]]:
        return {
            d.id: {k.value: v for k, v in d.faults.items()}
            for d in self.devices.values()
            if d.faults
        }


def _serial(vendor: Vendor, device_id: str, model: str) -> str:
    n = stable_int(device_id, 40)
    if vendor == Vendor.HIKVISION:
        # model + date-ish digits + batch + WCVU, as in the fixtures' deviceInfo
        return f"{model}{n % 10**10:010d}CCRRG{n % 10**8:08d}WCVU"
    if vendor == Vendor.DAHUA:
        return f"{n:015X}"[:15]
    return f"SN{n:012d}"


def _mac(device_id: str) -> str:
    n = stable_int(device_id + "/mac", 24)
    return "44:19:b6:" + ":".join(f"{(n >> s) & 0xFF:02x}" for s in (16, 8, 0))


def build_world(
    inventory: Inventory,
    resolve: Callable[[str], str],
    port_offset: int = 0,
    boot_time: dt.datetime | None = None,
    clock: Clock | None = None,
) -> World:
    """SimDevices for every recorder and camera. `resolve` turns a credential reference
    (${ENV} / secret:KEY) into the password the simulated device expects. Every device
    runs on `clock` (default: camwatch's clock, which CAMWATCH_CLOCK may pin)."""
    clock = clock or default_clock()
    now = clock.now()
    world = World()
    cache: dict[str, str] = {}

    def res(ref: str | None) -> str:
        if ref is None:
            return ""
        if ref not in cache:
            cache[ref] = resolve(ref)
        return cache[ref]

    for rec in inventory.recorders.values():
        kind = rec.kind.value
        model, fw, build = MODELS.get((rec.vendor, kind), MODELS[(Vendor.GENERIC, "nvr")])
        cams = sorted(inventory.cameras_of(rec.id), key=lambda c: c.channel)
        by_ch = {c.channel: c for c in cams}
        seed = stable_int(rec.id)
        channels = [
            ChannelState(
                channel=ch,
                camera_id=by_ch[ch].id if ch in by_ch else None,
                name=by_ch[ch].name if ch in by_ch else f"Camera {ch:02d}",
                analog=by_ch[ch].kind == CameraKind.ANALOG if ch in by_ch else False,
                retention_days=40.0 + seed % 20,
            )
            for ch in range(1, rec.channels + 1)
        ]
        ndisks = 2 if rec.channels > 8 else 1
        cap = 4_000_787_030_016 if rec.channels > 4 else 2_000_398_934_016
        # Healthy disks keep 10-19 % free: at exactly 5 % a healthy recorder would sit on
        # the DiskFull threshold and fire false alerts in the demo.
        disks = [
            Disk(id=i + 1, capacity=cap, free=int(cap * (0.10 + (seed >> i) % 10 / 100)))
            for i in range(ndisks)
        ]
        a = rec.address
        dev = SimDevice(
            id=rec.id,
            kind=DeviceKind.RECORDER,
            vendor=rec.vendor,
            dvr=rec.kind == RecorderKind.DVR,
            name=rec.name,
            host=a.host,
            http_port=a.http_port + port_offset,
            onvif_port=a.effective_onvif_port + port_offset,
            rtsp_port=a.rtsp_port + port_offset,
            snmp_port=a.snmp_port + port_offset,
            onvif_path=a.onvif_path,
            username=rec.credentials.username if rec.credentials else "admin",
            password=res(rec.credentials.password if rec.credentials else None),
            snmp_community=res(rec.snmp.community if rec.snmp else None) or None,
            model=rec.model or model,
            firmware=fw,
            firmware_build=build,
            serial=_serial(rec.vendor, rec.id, rec.model or model),
            mac=_mac(rec.id),
            boot_time=boot_time or now - dt.timedelta(days=3 + seed % 60, seconds=seed % 3600),
            disks=disks,
            channels=channels,
            scene_seed=seed,
            quirks=MODEL_QUIRKS.get(rec.model or model, frozenset()),
            serves_http=bool(_HTTP_PROTOCOLS & set(rec.protocols)),
            clock=clock,
        )
        world.devices[rec.id] = dev
    for cam in inventory.cameras.values():
        rec_dev = world.devices.get(cam.recorder)
        vendor = rec_dev.vendor if rec_dev else Vendor.GENERIC
        if Protocol.ISAPI in cam.protocols:
            vendor = Vendor.HIKVISION
        elif Protocol.DAHUA in cam.protocols:
            vendor = Vendor.DAHUA
        model, fw, build = MODELS.get((vendor, "camera"), MODELS[(Vendor.GENERIC, "camera")])
        seed = stable_int(cam.id)
        ca = cam.address
        cdev = SimDevice(
            id=cam.id,
            kind=DeviceKind.CAMERA,
            vendor=vendor,
            name=cam.name,
            analog=cam.kind == CameraKind.ANALOG,
            host=ca.host if ca else None,
            http_port=(ca.http_port if ca else 80) + port_offset,
            onvif_port=(ca.effective_onvif_port if ca else 80) + port_offset,
            rtsp_port=(ca.rtsp_port if ca else 554) + port_offset,
            snmp_port=(ca.snmp_port if ca else 161) + port_offset,
            onvif_path=ca.onvif_path if ca else "/onvif/device_service",
            username=cam.credentials.username if cam.credentials else "admin",
            password=res(cam.credentials.password if cam.credentials else None),
            model=model,
            firmware=fw,
            firmware_build=build,
            serial=_serial(vendor, cam.id, model),
            mac=_mac(cam.id),
            boot_time=boot_time or now - dt.timedelta(days=1 + seed % 90, seconds=seed % 3600),
            channels=[ChannelState(channel=1, camera_id=cam.id, name=cam.name)],
            scene_seed=seed,
            recorder_id=cam.recorder,
            channel_no=cam.channel,
            clock=clock,
        )
        if rec_dev is not None:
            ch = rec_dev.channel(cam.channel)
            cdev.recorder_channel = ch
            rec_dev.camera_devices[cam.channel] = cdev
        world.devices[cam.id] = cdev
    return world
