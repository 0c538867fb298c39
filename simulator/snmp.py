"""SNMP agents for simulated recorders: one pysnmp engine, one UDP socket per device.

Records are generated from each `SimDevice`'s state on every request, so faults show up
live: `reboot` resets sysUpTime/hrSystemUptime, `disk-failed`/`disk-full` change the
vendor disk table and hrStorage, `offline` and `auth` make the agent silent (a real
agent drops a request with a wrong community), `slow` delays every reply and
`malformed` serves counters as junk text (as broken firmware does).

The vendor tables follow `probes.vendors_snmp` (the same OIDs and value words the
driver reads, checked against real recordings in tests): Hikvision hikDiskTable (MB),
Dahua physicalVolumeInfoTable (text status), Synology DSM 7's diskTable + raidTable
(a "Volume 1" row and the "Storage Pool 1" under it, with a few hundred MB of the pool
unallocated) with the volume's size and use in hrStorage "/volume1", and
HOST-RESOURCES hrDeviceTable disks for every other vendor; and each vendor's identity
scalars (HIKVISION-MIB hikEntityIndex/hikEntityType, DAHUA-SNMP-MIB deviceType,
softwareRevision, serialNumber, deviceStatus, SYNOLOGY-SYSTEM-MIB modelName, version,
serialNumber, systemStatus...). Every device also serves the system group,
hrSystemUptime and hrStorageTable — except the shapes of real agents kept as quirks
(`simulator.model.Quirk`): a Hikvision agent answering sysDescr alone, one whose disk
rows have no status column and no HOST-RESOURCES, a Dahua one with no disk table.

v2c communities come from each device's resolved `snmp_community`; v3 users (SHA/AES)
are passed in explicitly (`SnmpV3User`). USM users live in an engine, so devices whose
v3 user names clash with different keys get engines of their own.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from inventory.models import Vendor
from probes.vendors_snmp import (
    DAHUA_DISK,
    HIKVISION_DISK,
    HOST_RESOURCES_DISK,
    HR_DEVICE_DISK_STORAGE,
    SYNOLOGY_DISK,
    SYNOLOGY_RAID,
)
from simulator.model import FaultKind, Quirk, SimDevice

# (oid, snmprec type code, value): 2 Integer32, 4 OctetString, 6 OID, 64 IpAddress,
# 66 Gauge32, 67 TimeTicks, 70 Counter64. The same triples can be written out as an
# .snmprec file for snmpsim.
Record = tuple[str, int, int | str]

_SYS_OBJECT_ID = {
    Vendor.HIKVISION: "1.3.6.1.4.1.50001",
    Vendor.DAHUA: "1.3.6.1.4.1.1004849.3.2.10",  # as the DH-NVR4108HS walk
    Vendor.SYNOLOGY: "1.3.6.1.4.1.8072.3.2.10",  # DSM answers with net-snmp's
    Vendor.AXIS: "1.3.6.1.4.1.368.4",
    Vendor.GENERIC: "1.3.6.1.4.1.8072.3.2.10",
}
_SYS_DESCR = {
    Vendor.HIKVISION: "Hikvision company products",
    Vendor.SYNOLOGY: "Linux nas 4.4.302+ #69057 SMP x86_64",
    Vendor.AXIS: "AXIS network video recorder",
    Vendor.GENERIC: "Linux nvr 4.9.37 #1 SMP armv7l",
}

_HR_STORAGE_RAM = "1.3.6.1.2.1.25.2.1.2"
_HR_STORAGE_FIXED_DISK = "1.3.6.1.2.1.25.2.1.4"
_UNITS = 4096
_MB = 1024 * 1024
_HIK = "1.3.6.1.4.1.50001.1"  # HIKVISION-MIB hikEntity
_DAHUA = "1.3.6.1.4.1.1004849.2.1"  # DAHUA-SNMP-MIB systemInfo
_SYNO = "1.3.6.1.4.1.6574.1"  # SYNOLOGY-SYSTEM-MIB synoSystem
# DSM 7's storage pool keeps a few hundred MB unallocated (the DS214se walk: 889192448)
SYNOLOGY_POOL_FREE = 889_192_448


def _ticks(seconds: float) -> int:
    return int(seconds * 100) % 2**32


def device_records(dev: SimDevice) -> list[Record]:
    """Everything the device's agent serves right now, sorted by OID."""
    junk = dev.has(FaultKind.MALFORMED)
    up = _ticks(dev.uptime_s())
    descr = (
        dev.model
        if dev.vendor == Vendor.DAHUA
        else _SYS_DESCR.get(dev.vendor, _SYS_DESCR[Vendor.GENERIC])
    )
    if Quirk.SNMP_SYSDESCR_ONLY in dev.quirks:
        return [("1.3.6.1.2.1.1.1.0", 4, descr)]
    recs: list[Record] = [
        ("1.3.6.1.2.1.1.1.0", 4, descr),
        ("1.3.6.1.2.1.1.2.0", 6, _SYS_OBJECT_ID.get(dev.vendor, _SYS_OBJECT_ID[Vendor.GENERIC])),
        ("1.3.6.1.2.1.1.3.0", 4 if junk else 67, "up: n/a" if junk else up),
        ("1.3.6.1.2.1.1.4.0", 4, "總務處"),
        ("1.3.6.1.2.1.1.5.0", 4, dev.id),
        ("1.3.6.1.2.1.1.6.0", 4, dev.name or dev.id),
    ]
    recs += _identity(dev)
    bare = {Quirk.SNMP_DISKS_WITHOUT_STATUS, Quirk.SNMP_NO_DISK_TABLE} & dev.quirks
    if not bare:
        # The captured Hikvision and Dahua NVR walks have no HOST-RESOURCES at all.
        recs += [
            ("1.3.6.1.2.1.1.7.0", 2, 72),
            ("1.3.6.1.2.1.25.1.1.0", 4 if junk else 67, "n/a" if junk else up),
        ]
        recs += _hr_storage(dev, junk)
    if Quirk.SNMP_NO_DISK_TABLE not in dev.quirks:
        recs += _vendor_disks(dev)
    recs.sort(key=lambda r: _oid_key(r[0]))
    return recs


def _identity(dev: SimDevice) -> list[Record]:
    """The vendor's identity and status scalars (probes.vendors_snmp), as the captures."""
    failed = any(d.status == "failed" for d in dev.disks)
    if dev.vendor == Vendor.HIKVISION:
        return [
            (f"{_HIK}.1.0", 64, dev.host or "0.0.0.0"),  # hikIp
            (f"{_HIK}.3.0", 4, dev.serial),  # hikEntityIndex
            (f"{_HIK}.100.0", 2, 1 if dev.dvr else 2),  # hikEntityType DVR / NVR
            (f"{_HIK}.101.0", 2, 1 if dev.dvr else 200),
            (f"{_HIK}.220.0", 2, 169),  # hikMemoryCapability
            (f"{_HIK}.221.0", 2, 5 + dev.scene_seed % 20),  # hikMemoryUsage
        ]
    if dev.vendor == Vendor.DAHUA:
        version = dev.firmware.split(",")[0] if dev.firmware else "3.212.0000.1"
        return [
            (f"{_DAHUA}.1.1.0", 4, version),  # softwareRevision
            (f"{_DAHUA}.2.4.0", 4, dev.serial),  # serialNumber
            (f"{_DAHUA}.2.6.0", 4, dev.model),  # deviceType
            (f"{_DAHUA}.2.8.0", 2, 0 if failed else 1),  # deviceStatus bad(0) good(1)
            (f"{_DAHUA}.3.0", 2, 6 + dev.scene_seed % 10),  # cpuUsage
        ]
    if dev.vendor == Vendor.SYNOLOGY:
        crashed = bool(dev.disks) and all(d.status == "failed" for d in dev.disks)
        return [
            (f"{_SYNO}.1.0", 2, 2 if crashed else 1),  # systemStatus ("volume has crashed")
            (f"{_SYNO}.2.0", 2, 38 + dev.scene_seed % 6),  # temperature
            (f"{_SYNO}.3.0", 2, 1),  # powerStatus
            (f"{_SYNO}.4.1.0", 2, 1),  # systemFanStatus
            (f"{_SYNO}.4.2.0", 2, 1),  # cpuFanStatus
            (f"{_SYNO}.5.1.0", 4, dev.model),  # modelName
            (f"{_SYNO}.5.2.0", 4, dev.serial),  # serialNumber
            (f"{_SYNO}.5.3.0", 4, dev.firmware),  # version ("DSM 7.2.1-69057")
            (f"{_SYNO}.5.4.0", 2, 2),  # upgradeAvailable: Unavailable
        ]
    return []


def synology_volume(dev: SimDevice) -> tuple[int, int]:
    """(size, used) bytes of "/volume1": the disks together in one volume."""
    size = sum(d.capacity for d in dev.disks) * 98 // 100
    free = sum(d.free for d in dev.disks if d.status != "failed") * 98 // 100
    return size, max(size - free, 0)


def _hr_storage(dev: SimDevice, junk: bool) -> list[Record]:
    """hrStorageTable: RAM, then the recording space — one fixed disk per drive, or on a
    Synology DSM's system mounts and "/volume1" (sizes in 4 KiB units)."""
    storage: list[tuple[int, str, str, int, int, int]] = [
        (1, _HR_STORAGE_RAM, "Physical memory", 1024, 4 * 1024 * 1024, 1_300_000)
    ]
    if dev.vendor == Vendor.SYNOLOGY:
        size, used = synology_volume(dev)
        storage += [
            (31, _HR_STORAGE_FIXED_DISK, "/", _UNITS, 612_766, 269_359),
            (36, _HR_STORAGE_FIXED_DISK, "/dev/shm", _UNITS, 31_063, 4),  # noqa: S108
            (42, _HR_STORAGE_FIXED_DISK, "/tmp", _UNITS, 31_063, 141),  # noqa: S108
            (45, _HR_STORAGE_FIXED_DISK, "/volume1", _UNITS, size // _UNITS, used // _UNITS),
        ]
    else:
        for d in dev.disks:
            size = d.capacity // _UNITS
            used = size - (d.free // _UNITS) if d.status != "failed" else 0
            storage.append((30 + d.id, _HR_STORAGE_FIXED_DISK, f"HDD{d.id}", _UNITS, size, used))
    recs: list[Record] = []
    for idx, typ, descr, units, size, used in storage:
        base = f"1.3.6.1.2.1.25.2.3.1.{{}}.{idx}"
        recs += [
            (base.format(1), 2, idx),
            (base.format(2), 6, typ),
            (base.format(3), 4, descr),
            (base.format(4), 2, units),
            (base.format(5), 4 if junk else 2, f"{size} units" if junk else size),
            (base.format(6), 4 if junk else 2, "??" if junk else used),
        ]
    return recs


def _status(dev: SimDevice) -> list[tuple[int, str, int, int]]:
    """(disk id, ok|failed|full, capacity bytes, free bytes) per disk."""
    return [(d.id, d.status, d.capacity, d.free) for d in dev.disks]


def _vendor_disks(dev: SimDevice) -> list[Record]:
    recs: list[Record] = []
    disks = _status(dev)
    if dev.vendor == Vendor.HIKVISION:
        e = HIKVISION_DISK.entry
        if Quirk.SNMP_DISKS_WITHOUT_STATUS in dev.quirks:
            # As the captured NVR: capacity and free space only, rows "N.0"
            for n, _st, cap, free in disks:
                recs += [(f"{e}.4.{n}.0", 2, free // _MB), (f"{e}.5.{n}.0", 2, cap // _MB)]
            return recs
        hik = {"ok": 0, "full": 0, "failed": 2}  # Normal / Abnormal; full = no free MB
        for n, st, cap, free in disks:
            recs += [
                (f"{e}.1.{n}", 2, n),
                (f"{e}.2.{n}", 4, f"HDD{n}"),
                (f"{e}.3.{n}", 2, hik[st]),
                (f"{e}.4.{n}", 2, free // _MB),
                (f"{e}.5.{n}", 2, cap // _MB),
            ]
    elif dev.vendor == Vendor.DAHUA:
        e = DAHUA_DISK.entry
        words = {"ok": "Success", "full": "Full", "failed": "Error"}
        for n, st, _cap, _free in disks:
            recs += [
                (f"{e}.1.{n}", 2, n),
                (f"{e}.2.{n}", 2, n),
                (f"{e}.3.{n}", 2, n),
                (f"{e}.4.{n}", 4, f"/dev/sd{chr(ord('a') + n - 1)}"),
                (f"{e}.5.{n}", 4, words[st]),
            ]
    elif dev.vendor == Vendor.SYNOLOGY:
        # DSM 7 (the DS214se walk): 13 disk columns, and raidTable rows for the volume
        # and for the storage pool under it.
        e = SYNOLOGY_DISK.entry
        for n, st, _cap, _free in disks:
            i = n - 1  # DSM numbers rows from 0 ("Disk 1" is index 0)
            bad = st == "failed"
            recs += [
                (f"{e}.1.{i}", 2, i),
                (f"{e}.2.{i}", 4, f"Disk {n}"),
                (f"{e}.3.{i}", 4, "WD40PURZ-85TTDY0"),
                (f"{e}.4.{i}", 4, "SATA"),
                (f"{e}.5.{i}", 2, 5 if bad else 1),
                (f"{e}.6.{i}", 2, 31 + n),  # diskTemperature
                (f"{e}.7.{i}", 4, "data"),
                (f"{e}.8.{i}", 2, 0),
                (f"{e}.9.{i}", 2, 0),
                (f"{e}.10.{i}", 2, 0),
                (f"{e}.11.{i}", 2, -1),
                (f"{e}.12.{i}", 4, f"Drive {n}"),
                (f"{e}.13.{i}", 2, 4 if bad else 1),
            ]
        r = SYNOLOGY_RAID.entry
        failed = sum(1 for _n, st, _c, _f in disks if st == "failed")
        raid = 1 if failed == 0 else (12 if failed == len(disks) else 11)
        size, used = synology_volume(dev)
        pool = sum(c for _n, _s, c, _f in disks)
        recs += [
            (f"{r}.1.0", 2, 0),
            (f"{r}.2.0", 4, "Volume 1"),
            (f"{r}.3.0", 2, raid),
            (f"{r}.4.0", 70, size - used),
            (f"{r}.5.0", 70, size),
            (f"{r}.6.0", 2, 0),
            (f"{r}.1.1", 2, 1),
            (f"{r}.2.1", 4, "Storage Pool 1"),
            (f"{r}.3.1", 2, raid),
            (f"{r}.4.1", 70, SYNOLOGY_POOL_FREE),  # all else is allocated to Volume 1
            (f"{r}.5.1", 70, pool),
            (f"{r}.6.1", 2, 0),
        ]
    else:
        e = HOST_RESOURCES_DISK.entry
        for n, st, _cap, _free in disks:
            idx = 1551 + n
            recs += [
                (f"{e}.1.{idx}", 2, idx),
                (f"{e}.2.{idx}", 6, HR_DEVICE_DISK_STORAGE),
                (f"{e}.3.{idx}", 4, f"SCSI disk (/dev/sd{chr(ord('a') + n - 1)})"),
                (f"{e}.5.{idx}", 2, 5 if st == "failed" else 2),
            ]
    return recs


def _oid_key(oid: str) -> tuple[int, ...]:
    return tuple(int(p) for p in oid.strip(".").split("."))


def snmprec_text(dev: SimDevice) -> str:
    """The device's records as an snmpsim .snmprec file (OID|TYPE|VALUE)."""
    return "".join(f"{oid}|{typ}|{val}\n" for oid, typ, val in device_records(dev))


def plain_pairs(records: Iterable[Record]) -> list[tuple[str, int | str]]:
    """(oid, value) pairs as the driver's parsers take them."""
    return [(oid, val) for oid, _typ, val in records]


# ---- the agent ----------------------------------------------------------------------


@dataclass(frozen=True)
class SnmpV3User:
    user: str
    auth_key: str = field(repr=False)
    priv_key: str | None = field(default=None, repr=False)
    auth_protocol: str = "SHA"
    priv_protocol: str = "AES"


def _asn1(typ: int, value: int | str) -> Any:
    from pysnmp.proto import rfc1902

    if typ == 2:
        return rfc1902.Integer32(int(value))
    if typ == 6:
        return rfc1902.ObjectIdentifier(str(value))
    if typ == 64:
        return rfc1902.IpAddress(str(value))
    if typ == 65:
        return rfc1902.Counter32(int(value))
    if typ == 66:
        return rfc1902.Gauge32(int(value))
    if typ == 67:
        return rfc1902.TimeTicks(int(value))
    if typ == 70:
        return rfc1902.Counter64(int(value))
    return rfc1902.OctetString(str(value).encode("utf-8"))


class _Responder:
    """Answers GET, GETNEXT and GETBULK from a device's records, chosen by the socket
    the request arrived on. Bypasses VACM: the community / USM user is checked by the
    engine, and per device here."""

    MAX_VARBINDS = 200

    def __init__(self, engine: Any) -> None:
        from pysnmp.proto import rfc1905

        self.engine = engine
        self.by_domain: dict[tuple[int, ...], SimDevice] = {}
        self.allowed: dict[tuple[int, ...], set[str]] = {}  # domain -> security names
        self._types = (
            rfc1905.GetRequestPDU.tagSet,
            rfc1905.GetNextRequestPDU.tagSet,
            rfc1905.GetBulkRequestPDU.tagSet,
        )
        engine.message_dispatcher.register_context_engine_id(
            engine.snmpEngineID, self._types, self.process_pdu
        )
        self._pending: set[asyncio.TimerHandle] = set()

    def close(self) -> None:
        for handle in self._pending:
            handle.cancel()
        self.engine.message_dispatcher.unregister_context_engine_id(
            self.engine.snmpEngineID, self._types
        )

    def process_pdu(
        self,
        snmpEngine: Any,
        messageProcessingModel: int,
        securityModel: int,
        securityName: Any,
        securityLevel: int,
        contextEngineId: Any,
        contextName: Any,
        pduVersion: int,
        PDU: Any,
        maxSizeResponseScopedPDU: int,
        stateReference: int,
    ) -> None:
        from pysnmp.proto.api import v2c

        try:
            domain, _addr = snmpEngine.message_dispatcher.get_transport_info(stateReference)
        except Exception:
            return
        dev = self.by_domain.get(tuple(domain))
        if dev is None or messageProcessingModel == 0:
            return  # SNMPv1 is not served
        if str(securityName) not in self.allowed.get(tuple(domain), set()):
            return  # another device's community/user: silence, as a real agent
        if dev.has(FaultKind.OFFLINE) or dev.has(FaultKind.AUTH):
            return
        try:
            varbinds = self._answer(dev, PDU)
        except Exception:
            varbinds = None
        rsp = v2c.apiPDU.get_response(PDU)
        if varbinds is None:
            v2c.apiPDU.set_error_status(rsp, 5)  # genErr
            v2c.apiPDU.set_varbinds(rsp, v2c.apiPDU.get_varbinds(PDU))
        else:
            v2c.apiPDU.set_error_status(rsp, 0)
            v2c.apiPDU.set_error_index(rsp, 0)
            v2c.apiPDU.set_varbinds(rsp, varbinds)

        def send() -> None:
            # A reply that cannot be sent (client gone, cache expired) is dropped.
            with contextlib.suppress(Exception):
                snmpEngine.message_dispatcher.return_response_pdu(
                    snmpEngine,
                    messageProcessingModel,
                    securityModel,
                    securityName,
                    securityLevel,
                    contextEngineId,
                    contextName,
                    pduVersion,
                    rsp,
                    maxSizeResponseScopedPDU,
                    stateReference,
                    {},
                )

        delay = dev.severity(FaultKind.SLOW) if dev.has(FaultKind.SLOW) else 0.0
        if delay > 0:
            loop = asyncio.get_running_loop()
            handle: asyncio.TimerHandle

            def later() -> None:
                self._pending.discard(handle)
                send()

            handle = loop.call_later(delay, later)
            self._pending.add(handle)
        else:
            send()

    def _answer(self, dev: SimDevice, pdu: Any) -> list[tuple[Any, Any]]:
        from pysnmp.proto import rfc1902, rfc1905
        from pysnmp.proto.api import v2c

        records = device_records(dev)
        keys = [_oid_key(oid) for oid, _t, _v in records]
        asked = [tuple(oid) for oid, _val in v2c.apiPDU.get_varbinds(pdu)]

        def exact(k: tuple[int, ...]) -> tuple[Any, Any]:
            i = bisect.bisect_left(keys, k)
            if i < len(keys) and keys[i] == k:
                return rfc1902.ObjectName(k), _asn1(records[i][1], records[i][2])
            return rfc1902.ObjectName(k), rfc1905.noSuchInstance

        def following(k: tuple[int, ...]) -> tuple[tuple[int, ...], Any, bool]:
            i = bisect.bisect_right(keys, k)
            if i < len(keys):
                return keys[i], _asn1(records[i][1], records[i][2]), True
            return k, rfc1905.endOfMibView, False

        tag = pdu.tagSet
        if tag == rfc1905.GetRequestPDU.tagSet:
            return [exact(k) for k in asked]
        if tag == rfc1905.GetNextRequestPDU.tagSet:
            out = []
            for k in asked:
                nk, val, _more = following(k)
                out.append((rfc1902.ObjectName(nk), val))
            return out
        # GETBULK (RFC 3416 4.2.3)
        non_rep = max(0, int(v2c.apiBulkPDU.get_non_repeaters(pdu)))
        max_rep = max(0, int(v2c.apiBulkPDU.get_max_repetitions(pdu)))
        out = []
        for k in asked[:non_rep]:
            nk, val, _more = following(k)
            out.append((rfc1902.ObjectName(nk), val))
        cursors = list(asked[non_rep:])
        for _ in range(max_rep):
            if not cursors or len(out) >= self.MAX_VARBINDS:
                break
            any_more = False
            for j, k in enumerate(cursors):
                nk, val, more = following(k)
                out.append((rfc1902.ObjectName(nk), val))
                cursors[j] = nk
                any_more = any_more or more
            if not any_more:
                break
        return out


@dataclass
class _Group:
    engine: Any
    responder: _Responder
    users: dict[str, SnmpV3User] = field(default_factory=dict)


class SnmpAgents:
    """The running agents; `stop()` closes every socket."""

    def __init__(self) -> None:
        self._groups: list[_Group] = []
        self._communities: dict[tuple[int, str], str] = {}  # (group, community) -> secName
        self._next_domain = 1
        self.addresses: dict[str, tuple[str, int]] = {}
        self.devices: dict[str, SimDevice] = {}

    def _group_for(self, user: SnmpV3User | None) -> tuple[int, _Group]:
        for gi, g in enumerate(self._groups):
            if user is None or g.users.get(user.user, user) == user:
                return gi, g
        from pysnmp.entity.engine import SnmpEngine

        engine = SnmpEngine()
        g = _Group(engine, _Responder(engine))
        self._groups.append(g)
        return len(self._groups) - 1, g

    def add(
        self,
        dev: SimDevice,
        v3: SnmpV3User | None = None,
        host: str | None = None,
        port: int | None = None,
    ) -> tuple[str, int]:
        """Serve one device; returns the (host, port) bound (port 0 picks one)."""
        from pysnmp.carrier.asyncio.dgram import udp
        from pysnmp.entity import config

        bind_host = host or dev.host or "127.0.0.1"
        bind_port = dev.snmp_port if port is None else port
        gi, g = self._group_for(v3)
        names: set[str] = set()
        if dev.snmp_community:
            key = (gi, dev.snmp_community)
            if key not in self._communities:
                sec = f"c{len(self._communities) + 1}"
                config.add_v1_system(g.engine, sec, dev.snmp_community, securityName=sec)
                self._communities[key] = sec
            names.add(self._communities[key])
        if v3 is not None:
            if v3.user not in g.users:
                self._add_user(g.engine, v3)
                g.users[v3.user] = v3
            names.add(v3.user)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((bind_host, bind_port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        domain = (*udp.DOMAIN_NAME, self._next_domain)
        self._next_domain += 1
        transport = udp.UdpAsyncioTransport().open_server_mode(sock=sock)
        config.add_transport(g.engine, domain, transport)
        g.responder.by_domain[domain] = dev
        g.responder.allowed[domain] = names
        bound = sock.getsockname()
        self.addresses[dev.id] = (bound[0], bound[1])
        self.devices[dev.id] = dev
        return self.addresses[dev.id]

    @staticmethod
    def _add_user(engine: Any, v3: SnmpV3User) -> None:
        from pysnmp.entity import config

        auth = {
            "SHA": config.USM_AUTH_HMAC96_SHA,
            "SHA256": config.USM_AUTH_HMAC192_SHA256,
            "MD5": config.USM_AUTH_HMAC96_MD5,
        }[v3.auth_protocol.upper()]
        if v3.priv_key:
            priv = {
                "AES": config.USM_PRIV_CFB128_AES,
                "AES256": config.USM_PRIV_CFB256_AES,
                "DES": config.USM_PRIV_CBC56_DES,
            }[v3.priv_protocol.upper()]
            config.add_v3_user(engine, v3.user, auth, v3.auth_key, priv, v3.priv_key)
        else:
            config.add_v3_user(engine, v3.user, auth, v3.auth_key)

    async def stop(self) -> None:
        for g in self._groups:
            g.responder.close()
            g.engine.close_dispatcher()
        self._groups.clear()
        await asyncio.sleep(0)


def snmp_devices(devices: Iterable[SimDevice]) -> list[SimDevice]:
    """The devices that get an agent: served recorders with an SNMP community."""
    return [d for d in devices if d.served and d.is_recorder and d.snmp_community]


async def start_snmp_agents(
    devices: Iterable[SimDevice],
    *,
    v3_users: Mapping[str, SnmpV3User] | None = None,
    port: int | None = None,
) -> SnmpAgents:
    """Start an agent for every served recorder with SNMP (a community, or a v3 user in
    `v3_users` keyed by device id) on its loopback address and `snmp_port` (`port`
    overrides; 0 picks a free one). Call inside the running event loop; `await
    agents.stop()` to close. A device whose address cannot be bound raises OSError."""
    agents = SnmpAgents()
    users = dict(v3_users or {})
    chosen: Sequence[SimDevice] = [
        d for d in devices if d.served and d.is_recorder and (d.snmp_community or d.id in users)
    ]
    try:
        for dev in chosen:
            agents.add(dev, users.get(dev.id), port=port)
    except BaseException:
        await agents.stop()
        raise
    await asyncio.sleep(0)  # let the datagram endpoints open
    return agents


def v3_users_from_inventory(inventory: Any, resolve: Any) -> dict[str, SnmpV3User]:
    """The v3 users an inventory declares for its recorders (`snmp: {version: "3",
    user, auth_key, priv_key}`), with references resolved, keyed by recorder id."""
    out: dict[str, SnmpV3User] = {}
    for rec in inventory.recorders.values():
        s = rec.snmp
        if s is None or str(s.version) != "3" or not s.user or not s.auth_key:
            continue
        out[rec.id] = SnmpV3User(
            user=s.user,
            auth_key=resolve(s.auth_key),
            priv_key=resolve(s.priv_key) if s.priv_key else None,
            auth_protocol=s.auth_protocol,
            priv_protocol=s.priv_protocol,
        )
    return out


def snmp_exporter_config(
    vendor: str, community: str, module: str = "camwatch", timeout_s: float = 2.0
) -> str:
    """An snmp.yml (prometheus-snmp-exporter 0.21 format) whose module fetches exactly
    what camwatch's `read_recorder` fetches for `vendor` (same GETs, same columns), for
    the side-by-side CPU comparison of issue 7. Holds the community: write it 0600."""
    import yaml

    from probes.drivers.snmp import poll_plan

    gets, walks = poll_plan(vendor)
    metrics: list[dict[str, object]] = []
    for oid in gets:
        metrics.append(
            {"name": "g_" + oid.replace(".", "_"), "oid": oid[:-2], "type": "DisplayString"}
        )
    for oid in walks:
        metrics.append(
            {
                "name": "w_" + oid.replace(".", "_"),
                "oid": oid,
                "type": "DisplayString",
                "indexes": [{"labelname": "index", "type": "gauge"}],
            }
        )
    conf = {
        module: {
            "version": 2,
            "auth": {"community": community},
            "timeout": f"{timeout_s:g}s",
            "retries": 0,
            "max_repetitions": 25,
            "get": gets,
            "walk": walks,
            "metrics": metrics,
        }
    }
    return str(yaml.safe_dump(conf, sort_keys=False))
