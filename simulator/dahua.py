"""Dahua HTTP CGI as a simulated Dahua recorder or camera answers it (after digest auth,
which server.py checks): `key=value` lines ending in CRLF, as in
../shared/fixtures/dahua_cgi. Times are the device's local time, `YYYY-MM-DD HH:MM:SS`.

- magicBox.cgi: getSystemInfo, getDeviceType, getSoftwareVersion, getMachineName,
  getVendor, getSerialNo, getUpTime (`up=SECONDS`; not from a capture)
- global.cgi?action=getCurrentTime
- storageDevice.cgi?action=getDeviceAllInfo (bytes as floats, as firmware writes them)
- configManager.cgi?action=getConfig&name=StorageGroup: the storage group and its
  "disk full" setting (`OverWrite`), flattened as Dahua's CGI writes a config
  (`table.StorageGroup[0].OverWrite=true`; the fields of NetSDK's AV_CFG_StorageGroup)
- mediaFileFind.cgi: factory.create, findFile, findNextFile, close, destroy
- snapshot.cgi (served by server.py)

Errors are `Error\\r\\nBad Request!\\r\\n` with HTTP 400, as Dahua firmware answers.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field

from aiohttp import web

from simulator.model import SimDevice

CRLF = "\r\n"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def kv(pairs: list[tuple[str, object]]) -> web.Response:
    body = "".join(f"{k}={v}{CRLF}" for k, v in pairs)
    return web.Response(body=body.encode(), content_type="text/plain")


def ok() -> web.Response:
    return web.Response(body=f"OK{CRLF}".encode(), content_type="text/plain")


def bad_request() -> web.Response:
    return web.Response(
        status=400, body=f"Error{CRLF}Bad Request!{CRLF}".encode(), content_type="text/plain"
    )


def to_local(dev: SimDevice, t: dt.datetime) -> str:
    return (t + dt.timedelta(seconds=dev.utc_offset_s)).strftime(TIME_FORMAT)


def from_local(dev: SimDevice, text: str) -> dt.datetime:
    t = dt.datetime.strptime(text.strip(), TIME_FORMAT).replace(tzinfo=dt.UTC)
    return t - dt.timedelta(seconds=dev.utc_offset_s)


# -- magicBox / global ------------------------------------------------------------------


def magic_box(dev: SimDevice, action: str) -> web.Response:
    version = f"{dev.firmware},{dev.firmware_build}"
    if action == "getSystemInfo":
        if dev.is_recorder:
            return kv(
                [
                    # NVR firmware reports a numeric type here (fixture NVR2X-4KS3).
                    ("deviceType", 31),
                    ("processor", "ST7108"),
                    ("serialNumber", dev.serial),
                    ("updateSerial", dev.model),
                ]
            )
        return kv(
            [
                ("appAutoStart", "true"),
                ("deviceType", dev.model),
                ("hardwareVersion", "1.00"),
                ("processor", "S3LM"),
                ("serialNumber", dev.serial),
                ("updateSerial", dev.model),
            ]
        )
    simple: dict[str, tuple[str, object]] = {
        "getDeviceType": ("type", dev.model),
        "getSoftwareVersion": ("version", version),
        "getMachineName": ("name", dev.id),
        "getVendor": ("vendor", "Dahua"),
        "getSerialNo": ("sn", dev.serial),
        # No captured reply; the RPC form is {"Last": s, "Total": s}. Seconds since boot.
        "getUpTime": ("up", int(dev.uptime_s())),
    }
    if action in simple:
        return kv([simple[action]])
    return bad_request()


def current_time(dev: SimDevice) -> web.Response:
    return kv([("result", to_local(dev, dev.now()))])


# -- storage ----------------------------------------------------------------------------


def storage_info(dev: SimDevice) -> web.Response:
    pairs: list[tuple[str, object]] = []
    for i, d in enumerate(dev.disks):
        failed = d.status == "failed"
        p = f"list.info[{i}]"
        used = d.capacity - d.free
        pairs += [
            (f"{p}.Detail[0].IsError", "true" if failed else "false"),
            (f"{p}.Detail[0].Path", f"/dev/sd{chr(ord('a') + i)}1"),
            (f"{p}.Detail[0].TotalBytes", f"{float(d.capacity):.6f}"),
            (f"{p}.Detail[0].Type", "ReadWrite"),
            (f"{p}.Detail[0].UsedBytes", f"{float(0 if failed else used):.6f}"),
            (f"{p}.Name", f"/dev/sd{chr(ord('a') + i)}"),
            (f"{p}.State", "Error" if failed else "Success"),
        ]
    return kv(pairs)


# -- mediaFileFind ----------------------------------------------------------------------


@dataclass
class _Finder:
    segments: list[tuple[int, dt.datetime, dt.datetime]] = field(default_factory=list)
    position: int = 0


_finders: dict[tuple[str, int], _Finder] = {}
_ids = itertools.count(8137)
MAX_FINDERS = 64  # per device, as firmware limits concurrent searches


def media_file_find(dev: SimDevice, q: dict[str, str]) -> web.Response:
    action = q.get("action", "")
    if action == "factory.create":
        mine = [k for k in _finders if k[0] == dev.id]
        if len(mine) >= MAX_FINDERS:
            del _finders[mine[0]]
        oid = next(_ids)
        _finders[(dev.id, oid)] = _Finder()
        return kv([("result", oid)])
    try:
        oid = int(q.get("object", ""))
    except ValueError:
        return bad_request()
    finder = _finders.get((dev.id, oid))
    if finder is None:
        return bad_request()
    if action == "findFile":
        try:
            channel = int(q.get("condition.Channel", "1"))
            start = from_local(dev, q["condition.StartTime"])
            end = from_local(dev, q["condition.EndTime"])
        except (KeyError, ValueError):
            return bad_request()
        ch = dev.channel(channel)
        if ch is None:
            return bad_request()
        finder.segments = [(channel, s0, s1) for s0, s1 in ch.segments(start, end, dev.now())]
        finder.position = 0
        return ok()
    if action == "findNextFile":
        try:
            count = max(1, min(int(q.get("count", "100")), 100))
        except ValueError:
            return bad_request()
        page = finder.segments[finder.position : finder.position + count]
        finder.position += len(page)
        pairs: list[tuple[str, object]] = [("found", len(page))]
        for i, (channel, s0, s1) in enumerate(page):
            p = f"items[{i}]"
            local0, local1 = to_local(dev, s0), to_local(dev, s1)
            day = local0[:10]
            hh0, hh1 = local0[11:].replace(":", "."), local1[11:].replace(":", ".")
            seconds = int((s1 - s0).total_seconds())
            pairs += [
                (f"{p}.Channel", channel - 1),
                (f"{p}.Cluster", 100000 + i),
                (f"{p}.Disk", 0),
                (f"{p}.Duration", seconds),
                (f"{p}.EndTime", local1),
                (
                    f"{p}.FilePath",
                    f"/mnt/dvr/{day}/{channel - 1}/dav/{hh0[:2]}/{hh0}-{hh1}[R][0@0][0].dav",
                ),
                (f"{p}.Length", seconds * 512 * 1024 // 8),
                (f"{p}.Partition", 0),
                (f"{p}.StartTime", local0),
                (f"{p}.Type", "dav"),
                (f"{p}.VideoStream", "Main"),
            ]
        return kv(pairs)
    if action == "close":
        finder.segments, finder.position = [], 0
        return ok()
    if action == "destroy":
        del _finders[(dev.id, oid)]
        return ok()
    return bad_request()


def storage_group(dev: SimDevice) -> web.Response:
    return kv(
        [
            ("table.StorageGroup[0].Name", "ReadWrite"),
            ("table.StorageGroup[0].Memo", "ReadWrite Group"),
            ("table.StorageGroup[0].FileHoldTime", 0),
            ("table.StorageGroup[0].OverWrite", "true" if dev.overwrite else "false"),
            (
                "table.StorageGroup[0].RecordPathRule",
                "%y-%M-%d/%c/dav/%h/%h.%m.%s-%h.%m.%s[%r][%R].%e",
            ),
            ("table.StorageGroup[0].PicturePathRule", "%y-%M-%d/%c/jpg/%h/%m/%s[%r].%e"),
        ]
    )


async def handle(request: web.Request, dev: SimDevice) -> web.StreamResponse:
    q = dict(request.query)
    action = q.get("action", "")
    path = request.path
    if path == "/cgi-bin/magicBox.cgi":
        return magic_box(dev, action)
    if path == "/cgi-bin/global.cgi" and action == "getCurrentTime":
        return current_time(dev)
    if path == "/cgi-bin/storageDevice.cgi" and action == "getDeviceAllInfo":
        return storage_info(dev)
    if path == "/cgi-bin/configManager.cgi" and q.get("name") == "StorageGroup":
        return storage_group(dev) if action == "getConfig" else bad_request()
    if path == "/cgi-bin/mediaFileFind.cgi" and dev.is_recorder:
        return media_file_find(dev, q)
    return bad_request()
