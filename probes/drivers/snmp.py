"""SNMP driver: identity, uptime, storage and disk health of a recorder, as plain facts.

Through Net-SNMP's C library (ezsnmp), v2c (community) or v3 (USM, SHA/AES), with
numeric OIDs only (no MIB is loaded), one GET for the system group and the tables'
columns walked side by side with GETBULK, in worker threads (see "the transport" below
for why this library, measured).

Nothing here raises for a misbehaving device: every reading carries either facts or an
`SnmpError` with a zh-TW reason. The parsing functions are pure: they take (oid, value)
pairs of plain Python values, so tests feed them recorded walks (`read_snmprec`,
`read_snmpwalk`) and the driver feeds them what the agent sent.

Vendor differences are data: `probes.vendors_snmp` lists each vendor's identity scalars
(model, firmware, serial, the device's own status), its disk tables and its volume rule.

An agent that answers anything — even only sysDescr, as some Hikvision NVRs do — is a
device that is up; what it did not tell stays unknown. Disks, storage pools and volumes
are different things (`probes.facts.StorageKind`): a pool's free size is not free space.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from inventory.models import Protocol
from probes.context import SecretError
from probes.drivers.base import Ability, DeviceLink, Driver, DriverSession
from probes.facts import DeviceInfo, Disk, DiskStatus, StorageKind
from probes.reasons import DeviceError, ReasonCode
from probes.vendors_snmp import (
    ENTERPRISES,
    HEALTH_ORDER,
    PROFILES,
    DiskHealth,
    DiskTable,
    VendorProfile,
    enterprise_of,
    profile_answering,
    profile_by_object_id,
    profile_for,
)

# ---- OIDs (numeric; no MIB lookups) -------------------------------------------------

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
HR_SYSTEM_UPTIME = "1.3.6.1.2.1.25.1.1.0"
SYSTEM_OIDS: tuple[str, ...] = (SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME, SYS_NAME, HR_SYSTEM_UPTIME)

HR_STORAGE_ENTRY = "1.3.6.1.2.1.25.2.3.1"  # .2 type .3 descr .4 units .5 size .6 used
HR_STORAGE_TYPES = {
    "1.3.6.1.2.1.25.2.1.1": "other",
    "1.3.6.1.2.1.25.2.1.2": "ram",
    "1.3.6.1.2.1.25.2.1.3": "virtual-memory",
    "1.3.6.1.2.1.25.2.1.4": "fixed-disk",
    "1.3.6.1.2.1.25.2.1.5": "removable-disk",
    "1.3.6.1.2.1.25.2.1.6": "floppy-disk",
    "1.3.6.1.2.1.25.2.1.7": "compact-disc",
    "1.3.6.1.2.1.25.2.1.8": "ram-disk",
    "1.3.6.1.2.1.25.2.1.9": "flash-memory",
    "1.3.6.1.2.1.25.2.1.10": "network-disk",
}

MAX_ROWS = 5000  # varbinds per walk: a device that never ends its table is cut off

PlainValue = int | str
Pair = tuple[str, PlainValue]


# ---- facts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SystemFacts:
    descr: str | None = None
    name: str | None = None
    object_id: str | None = None
    sys_uptime_s: float | None = None  # SNMPv2-MIB sysUpTime: the agent's uptime
    host_uptime_s: float | None = None  # HOST-RESOURCES hrSystemUptime: the host's

    @property
    def uptime_s(self) -> float | None:
        """The device's uptime: hrSystemUptime where served (the agent may restart
        without the device rebooting), else sysUpTime. TimeTicks wrap after 497 days."""
        return self.host_uptime_s if self.host_uptime_s is not None else self.sys_uptime_s


@dataclass(frozen=True)
class StorageFact:
    """One hrStorageTable row, in bytes."""

    index: str
    descr: str
    kind: str  # fixed-disk, ram, virtual-memory, network-disk, other...
    allocation_units: int
    size_bytes: int
    used_bytes: int

    @property
    def free_bytes(self) -> int:
        return max(self.size_bytes - self.used_bytes, 0)

    @property
    def used_pct(self) -> float | None:
        if self.size_bytes <= 0:
            return None
        return 100.0 * self.used_bytes / self.size_bytes


@dataclass(frozen=True)
class DiskFact:
    """One disk (or volume) from a vendor table."""

    table: str  # DiskTable.key
    index: str
    name: str
    health: DiskHealth
    status_text: str  # the vendor's own word(s), e.g. "Crashed" or "Normal/Warning"
    kind: str = "disk"  # the table's kind: "disk" or "raid"
    model: str | None = None
    capacity_bytes: int | None = None
    free_bytes: int | None = None
    temperature_c: float | None = None

    @property
    def used_pct(self) -> float | None:
        if self.capacity_bytes is None or self.free_bytes is None or self.capacity_bytes <= 0:
            return None
        return 100.0 * (self.capacity_bytes - self.free_bytes) / self.capacity_bytes


class SnmpErrorKind(StrEnum):
    TIMEOUT = "timeout"
    AUTH = "auth"
    PROTOCOL = "protocol"
    CONFIG = "config"


@dataclass(frozen=True)
class SnmpError:
    kind: SnmpErrorKind
    reason: str  # zh-TW, for custodians; never contains a secret
    detail: str = ""  # English, for logs; never contains a secret


@dataclass(frozen=True)
class SnmpReading:
    """What one poll learned. `error` is set when the device did not answer usefully;
    `missing_tables` names vendor tables the device does not serve (not a failure)."""

    system: SystemFacts | None = None
    storage: tuple[StorageFact, ...] = ()
    disks: tuple[DiskFact, ...] = ()
    missing_tables: tuple[str, ...] = ()
    error: SnmpError | None = None
    duration_s: float = 0.0
    identity: DeviceInfo | None = None  # the host reading: who the device says it is
    profile: str = "generic"  # whose vendor tables apply (told by the agent if unlisted)

    @property
    def ok(self) -> bool:
        return self.error is None


# ---- target ---------------------------------------------------------------------------


@dataclass(frozen=True)
class V2c:
    community: str = field(repr=False)


@dataclass(frozen=True)
class V3:
    user: str
    auth_key: str = field(repr=False)
    priv_key: str | None = field(default=None, repr=False)
    auth_protocol: str = "SHA"  # SHA, SHA256, MD5
    priv_protocol: str = "AES"  # AES, AES256, DES
    context: str = ""


@dataclass(frozen=True)
class SnmpTarget:
    host: str
    port: int = 161
    auth: V2c | V3 = field(default_factory=lambda: V2c("public"), repr=False)
    timeout: float = 2.0  # per request
    retries: int = 1

    @property
    def budget_s(self) -> float:
        """The longest one request may take, retries included."""
        return self.timeout * (self.retries + 1)


def target_for(recorder: Any, secrets: Any, timeout: float = 2.0, retries: int = 1) -> SnmpTarget:
    """An SnmpTarget for an inventory Recorder (with an `snmp` block), resolving the
    credential references through the SecretResolver. Raises probes.context.SecretError
    when a reference cannot be resolved, and ValueError without an snmp block."""
    snmp = recorder.snmp
    if snmp is None:
        raise ValueError(f"{recorder.id}: no snmp block in the inventory")
    auth: V2c | V3
    if str(snmp.version) == "3":
        auth = V3(
            user=snmp.user,
            auth_key=secrets.resolve(snmp.auth_key),
            priv_key=secrets.resolve(snmp.priv_key) if snmp.priv_key else None,
            auth_protocol=snmp.auth_protocol,
            priv_protocol=snmp.priv_protocol,
            context=snmp.context,
        )
    else:
        auth = V2c(secrets.resolve(snmp.community))
    return SnmpTarget(
        host=recorder.address.host,
        port=recorder.address.snmp_port,
        auth=auth,
        timeout=timeout,
        retries=retries,
    )


# ---- defensive value parsing (pure) ----------------------------------------------------

_NUMBER = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)")
_SIZE = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*([KMGTPE]?)(i?)B?\b", re.IGNORECASE)
_POWERS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}


def to_int(value: object) -> int | None:
    """An integer from what a device sent: 42, "42", "15 PERCENT", "6.3989e10" style
    floats written as text ("63989415936.000000"). None when there is no number."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str):
        m = _NUMBER.match(value)
        if m is None:
            return None
        text = m.group(1)
        try:
            number = float(text) if "." in text else int(text)
        except (ValueError, OverflowError):  # thousands of digits from a hostile agent
            return None
        if isinstance(number, float) and not math.isfinite(number):
            return None
        return int(number)
    return None


def parse_size(value: object) -> int | None:
    """Bytes from a size a device wrote as text: "5.46 TB", "512 MB", "0.0 GB"
    (binary multiples, as NAS and NVR firmware mean them), or a plain number of bytes."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return to_int(value)
    if not isinstance(value, str):
        return None
    m = _SIZE.match(value)
    if m is None:
        return to_int(value)
    size = float(m.group(1)) * 1024 ** _POWERS[m.group(2).upper()]
    return int(size) if math.isfinite(size) else None  # "9999…9 TB" is no size


def _unsigned32(n: int) -> int:
    # net-snmp serves hrStorageSize/Used as Integer32 and wraps big disks negative.
    return n + 2**32 if n < 0 else n


def _fold(value: object) -> str:
    if isinstance(value, int):
        return str(value)
    return re.sub(r"[\s_\-]+", "", str(value)).lower() or str(value)


# ---- parsing of walks (pure) ------------------------------------------------------------


def table_rows(pairs: Iterable[Pair], entry: str) -> dict[str, dict[int, PlainValue]]:
    """Group a walk of a table entry into rows: {index: {column: value}}. The index is
    whatever follows entry.column (Hikvision serves "1.0"-style indexes)."""
    prefix = entry.strip(".") + "."
    rows: dict[str, dict[int, PlainValue]] = {}
    for oid, value in pairs:
        oid = oid.strip(".")
        if not oid.startswith(prefix):
            continue
        column, _, index = oid[len(prefix) :].partition(".")
        if not (column.isascii() and column.isdigit()) or not index:
            continue
        rows.setdefault(index, {})[int(column)] = value
    return rows


def _ticks_to_s(value: object) -> float | None:
    n = to_int(value)
    return None if n is None or abs(n) > 2**64 else n / 100.0


def _text(value: object) -> str | None:
    if value is None:
        return None
    return str(value).strip().strip('"')


def parse_system(values: Mapping[str, PlainValue]) -> SystemFacts:
    """SystemFacts from {oid: value} of the system GET (missing OIDs left None)."""
    v = {k.strip("."): val for k, val in values.items()}
    return SystemFacts(
        descr=_text(v.get(SYS_DESCR)),
        name=_text(v.get(SYS_NAME)),
        object_id=_text(v.get(SYS_OBJECT_ID)),
        sys_uptime_s=_ticks_to_s(v.get(SYS_UPTIME)),
        host_uptime_s=_ticks_to_s(v.get(HR_SYSTEM_UPTIME)),
    )


def parse_storage(pairs: Iterable[Pair]) -> list[StorageFact]:
    """hrStorageTable rows in bytes (rows missing size or units are skipped)."""
    out: list[StorageFact] = []
    for index, row in table_rows(pairs, HR_STORAGE_ENTRY).items():
        units = to_int(row.get(4))
        size = to_int(row.get(5))
        used = to_int(row.get(6))
        if units is None or size is None or used is None or units <= 0:
            continue  # a row we cannot read is left out, never guessed
        size = _unsigned32(size)
        used = _unsigned32(used)
        kind = HR_STORAGE_TYPES.get(str(row.get(2, "")).strip("."), "other")
        out.append(
            StorageFact(
                index=index,
                descr=_text(row.get(3)) or f"storage {index}",
                kind=kind,
                allocation_units=units,
                size_bytes=size * units,
                used_bytes=used * units,
            )
        )
    return out


def _worst(healths: Sequence[DiskHealth]) -> DiskHealth:
    for h in HEALTH_ORDER:
        if h in healths:
            return h
    return DiskHealth.UNKNOWN


def parse_disks(table: DiskTable, pairs: Iterable[Pair]) -> list[DiskFact]:
    """A vendor disk table's rows as DiskFacts, through the table's value meanings.
    A value the table does not know is `unknown` with the raw value as its text."""
    out: list[DiskFact] = []
    for index, row in table_rows(pairs, table.entry).items():
        if table.row_filter is not None:
            col, wanted = table.row_filter
            if str(row.get(col, "")).strip(".") != wanted:
                continue
        healths: list[DiskHealth] = []
        words: list[str] = []
        for col, meanings in table.status:
            if col not in row:
                continue
            raw = row[col]
            key = str(to_int(raw)) if to_int(raw) is not None and _is_numeric(raw) else _fold(raw)
            health, word = meanings.get(key, (DiskHealth.UNKNOWN, str(raw)))
            healths.append(health)
            words.append(word)
        capacity = _scaled(row.get(table.capacity_col) if table.capacity_col else None, table)
        free = _scaled(row.get(table.free_col) if table.free_col else None, table)
        if free is None and capacity is not None and table.used_pct_col:
            pct = to_int(row.get(table.used_pct_col))
            if pct is not None:
                free = int(capacity * (100 - pct) / 100)
        if not healths and capacity is None and free is None:
            continue  # neither a status nor a size: nothing to judge (net-snmp's hrDevice)
        # A row without a status column but with its sizes (Hikvision NVRs serve only
        # hikDiskCapability and hikDiskFreeSpace) is a disk whose fullness is judged.
        name = _text(row.get(table.name_col)) if table.name_col else None
        model = _text(row.get(table.model_col)) if table.model_col else None
        temperature = to_int(row.get(table.temperature_col)) if table.temperature_col else None
        health = _worst(healths) if healths else DiskHealth.UNKNOWN
        if health == DiskHealth.OK and capacity and free is not None and free <= 0:
            health = DiskHealth.FULL
        out.append(
            DiskFact(
                table=table.key,
                index=index,
                name=name or f"{table.kind} {index}",
                health=health,
                status_text="/".join(words),
                kind=table.kind,
                model=model or None,
                capacity_bytes=capacity,
                free_bytes=free,
                # -1 or a few thousand degrees is no reading
                temperature_c=float(temperature)
                if temperature is not None and -40 <= temperature <= 150
                else None,
            )
        )
    return out


def parse_identity(values: Mapping[str, PlainValue], profile: VendorProfile) -> DeviceInfo:
    """Who the device says it is, from the host GET ({oid: value}): the vendor's model,
    firmware and serial scalars, its own status, and sysDescr. Missing OIDs stay None."""
    v = {k.strip("."): val for k, val in values.items()}
    ident = profile.identity

    def first(oids: Sequence[str]) -> str | None:
        for oid in oids:
            text = _text(v.get(oid))
            if text and text != "<private>":  # LibreNMS's anonymised captures
                return text
        return None

    device_type = None
    if ident.device_type is not None:
        oid, words = ident.device_type
        raw = v.get(oid)
        if raw is not None:
            device_type = words.get(str(to_int(raw)), _text(raw))
    answered: list[tuple[str, bool | None, str]] = []
    for scalar in ident.status:
        raw = v.get(scalar.oid)
        if raw is not None:
            good, word = scalar.meanings.get(str(to_int(raw)), (None, str(raw)))
            answered.append((scalar.name, good, word))
    bad = [f"{name} {word}" for name, good, word in answered if good is False]
    odd = [f"{name} {word}" for name, good, word in answered if good is None]
    status: str | None = None
    healthy: bool | None = None
    if bad:
        status, healthy = "、".join(bad), False
    elif odd:
        status = "、".join(odd)  # a value the MIB does not name: told, not judged
    elif answered:
        status, healthy = f"{answered[0][0]} {answered[0][2]}", True
    enterprise = enterprise_of(_text(v.get(SYS_OBJECT_ID)))
    return DeviceInfo(
        manufacturer=ident.manufacturer or ENTERPRISES.get(enterprise),
        model=first(ident.model),
        firmware=first(ident.firmware),
        serial=first(ident.serial),
        device_type=device_type,
        status=status,
        healthy=healthy,
        description=_text(v.get(SYS_DESCR)) or None,
    )


def _is_numeric(raw: object) -> bool:
    if isinstance(raw, int):
        return True
    return bool(re.fullmatch(r"\s*[-+]?\d+\s*", str(raw)))


def _scaled(raw: object, table: DiskTable) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, str) and re.search(r"[A-Za-z]", raw):
        return parse_size(raw)  # "5.46 TB": the unit is in the text
    n = to_int(raw)
    return None if n is None else n * table.unit_bytes


# ---- recorded walks (for tests and the simulator) ---------------------------------------

_SNMPREC_INT_TYPES = {"2", "65", "66", "67", "70", "71"}


def read_snmprec(text: str) -> list[Pair]:
    """(oid, value) pairs from snmpsim's `OID|TYPE|VALUE` lines (TYPE 4x = hex)."""
    pairs: list[Pair] = []
    for line in text.splitlines():
        parts = line.rstrip("\r\n").split("|", 2)
        if len(parts) != 3:
            continue
        oid, typ, value = parts
        typ_base = typ.split(":", 1)[0]
        if typ_base.rstrip("x") in _SNMPREC_INT_TYPES:
            n = to_int(value)
            pairs.append((oid.strip("."), n if n is not None else value))
        elif typ_base == "4x":
            try:
                pairs.append((oid.strip("."), bytes.fromhex(value).decode("utf-8", "replace")))
            except ValueError:
                pairs.append((oid.strip("."), value))
        else:
            pairs.append((oid.strip("."), value))
    return pairs


_WALK_LINE = re.compile(r"^\s*\.?([0-9.]+)\s*=\s*(?:([A-Za-z0-9\- ]+):\s*)?(.*)$")


def read_snmpwalk(text: str) -> list[Pair]:
    """(oid, value) pairs from Net-SNMP `snmpwalk -On` output."""
    pairs: list[Pair] = []
    for line in text.splitlines():
        m = _WALK_LINE.match(line)
        if m is None:
            continue
        oid, typ, value = m.group(1), (m.group(2) or "").strip().lower(), m.group(3).strip()
        if typ == "timeticks":
            tm = re.match(r"\((\d+)\)", value)
            pairs.append((oid, int(tm.group(1)) if tm else value))
        elif typ in {"integer", "counter32", "counter64", "gauge32", "unsigned32", ""}:
            n = to_int(value) if _is_numeric(value) else None
            pairs.append((oid, n if n is not None else value.strip('"')))
        elif typ == "oid":
            pairs.append((oid, value.lstrip(".")))
        else:
            pairs.append((oid, value.strip('"')))
    return pairs


def read_recorder_from_pairs(pairs: Sequence[Pair], vendor: str) -> SnmpReading:
    """The reading a poll would produce if the agent served exactly `pairs`."""
    values = dict(pairs)
    profile = profile_for(vendor)
    disks: list[DiskFact] = []
    missing: list[str] = []
    for table in profile.disk_tables:
        rows = parse_disks(table, pairs)
        if rows:
            disks.extend(rows)
        else:
            missing.append(table.key)
    return SnmpReading(
        system=parse_system({k: values[k] for k in SYSTEM_OIDS if k in values}),
        storage=tuple(parse_storage(pairs)),
        disks=tuple(disks),
        missing_tables=tuple(missing),
        identity=parse_identity({k: values[k] for k in host_oids(profile) if k in values}, profile),
    )


# ---- the transport: Net-SNMP's own library, through ezsnmp ---------------------------
#
# Measured side by side on one machine against Debian's snmpd (bench/run.py, the
# generic plan: system group + hrStorageTable, 75 varbinds): pysnmp 7 tuned (one
# engine, no MIB lookups, side-by-side GETBULK, cached auth objects) ~15.6 ms of CPU per
# poll, pyasn1's generic BER decoding half of it; ezsnmp (Net-SNMP's C library) ~2.2 ms;
# prometheus-snmp-exporter ~1.6 ms. Net-SNMP is the reference implementation, so v3
# (USM keys, AES, engine discovery) is the same code snmpd and snmpget run.
#
# ezsnmp blocks, so every request runs in a small pool of worker threads (the library
# releases the GIL while it waits and serialises Net-SNMP's global set-up itself); one
# session per target, used by one thread at a time. Its own timeout and retries bound
# each request; the asyncio deadline around a poll bounds the whole.

SNMP_THREADS = 8
_executor: ThreadPoolExecutor | None = None
_sessions: dict[tuple[Any, ...], tuple[Any, threading.Lock]] = {}
_SESSIONS_MAX = 8192
_AUTH_PROTOCOLS = {"SHA": "SHA", "SHA256": "SHA-256", "MD5": "MD5"}
_PRIV_PROTOCOLS = {"AES": "AES", "AES256": "AES-256", "DES": "DES"}
_END = frozenset({"NOSUCHOBJECT", "NOSUCHINSTANCE", "ENDOFMIBVIEW", "NULL"})
_NUMERIC = frozenset(
    {"INTEGER", "INTEGER32", "Gauge32", "Counter32", "Counter64", "UInteger32",
     "UNSIGNED32", "Unsigned32", "Timeticks", "TimeTicks", "INTEGER64"}
)
_AUTH_WORDS = re.compile(
    r"authentication|unknown user|unknown security|decryption|wrong digest|"
    r"unsupported security|time window|authorization",
    re.IGNORECASE,
)


# Net-SNMP's USM user list is the process's: ezsnmp takes a v3 user out of it when
# another session of the same user is set up, so v3 requests (rare: recorders mostly
# speak v2c) go one at a time.
_V3_LOCK = threading.Lock()


def _private_netsnmp_dirs() -> None:
    """Net-SNMP keeps persistent state (snmpapp.conf: engine boots, localised keys) in
    /var/lib/snmp and reads snmp.conf from /etc/snmp: a directory of this process's own,
    so that no other program's files (or another camwatch's) shape what it sends."""
    if "SNMP_PERSISTENT_DIR" not in os.environ:
        private = tempfile.mkdtemp(prefix="camwatch-netsnmp-")
        os.environ["SNMP_PERSISTENT_DIR"] = private
        os.environ.setdefault("SNMPCONFPATH", private)


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _private_netsnmp_dirs()
        _executor = ThreadPoolExecutor(SNMP_THREADS, thread_name_prefix="camwatch-snmp")
    return _executor


def _session(target: SnmpTarget, reps: int) -> tuple[Any, threading.Lock]:
    """The ezsnmp session of a target (made once: its arguments are parsed by Net-SNMP
    at every request, but the object and its lock are kept)."""
    key = (target.host, target.port, target.auth, target.timeout, target.retries, reps)
    found = _sessions.get(key)
    if found is not None:
        return found
    from ezsnmp import Session

    kw: dict[str, Any] = {
        "hostname": target.host if ":" not in target.host else f"udp6:[{target.host}]",
        "port_number": str(target.port),
        "timeout": f"{target.timeout:g}",
        "retries": str(target.retries),
        "load_mibs": "NONE",  # numeric OIDs only: no MIB is read, none shapes a value
        "print_oids_numerically": True,
        "print_enums_numerically": True,
        "print_timeticks_numerically": True,
        "set_max_repeaters_to_num": str(reps),
    }
    auth = target.auth
    if isinstance(auth, V2c):
        kw.update(version=2, community=auth.community)
    else:
        kw.update(
            version=3,
            security_username=auth.user,
            auth_protocol=_AUTH_PROTOCOLS.get(auth.auth_protocol.upper(), auth.auth_protocol),
            auth_passphrase=auth.auth_key,
            security_level="authPriv" if auth.priv_key else "authNoPriv",
            context=auth.context,
        )
        if auth.priv_key:
            kw.update(
                privacy_protocol=_PRIV_PROTOCOLS.get(
                    auth.priv_protocol.upper(), auth.priv_protocol
                ),
                privacy_passphrase=auth.priv_key,
            )
    try:
        made = (Session(**kw), threading.Lock())
    except Exception as exc:  # a bad address or protocol name: its text may hold a key
        raise _Failed(
            SnmpError(SnmpErrorKind.CONFIG, f"SNMP 設定無法使用（{target.host}）",
                      type(exc).__name__)
        ) from None
    if len(_sessions) >= _SESSIONS_MAX:
        _sessions.clear()
    _sessions[key] = made
    return made


def _plain(value: str, kind: str) -> PlainValue | None:
    """An ezsnmp value (Net-SNMP's text of it) as int or str, as the parsers take them;
    None for noSuchObject/noSuchInstance/endOfMibView. Octets that are not printable
    come as hex (Hex-STRING) and are decoded like any other string."""
    if kind in _END or kind.startswith("No more variables"):
        return None
    if kind in _NUMERIC or kind.isdigit():  # ezsnmp names numeric TimeTicks by value
        try:
            return int(value)
        except ValueError:
            return value
    if kind == "OID":
        return value.lstrip(".")
    if kind == "Hex-STRING":
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            return value
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
    if kind == '""':
        return ""
    return value


def _error(exc: BaseException, target: SnmpTarget) -> SnmpError:
    """What an ezsnmp exception means, in words fit for a custodian; its own text
    (which may echo the command line Net-SNMP parsed) goes nowhere."""
    name = type(exc).__name__
    if name == "TimeoutError":
        return _timeout_error(target, name)
    if _AUTH_WORDS.search(str(exc)):
        return SnmpError(SnmpErrorKind.AUTH, "SNMP 認證失敗（使用者名稱或金鑰不符）", name)
    return SnmpError(SnmpErrorKind.PROTOCOL, f"SNMP 錯誤（{name}）", name)


def _request(
    target: SnmpTarget, op: str, oids: Sequence[str], reps: int
) -> list[tuple[str, PlainValue | None]]:
    """One request in a worker thread: (full OID, plain value or None)."""
    session, lock = _session(target, reps)
    v3 = _V3_LOCK if isinstance(target.auth, V3) else contextlib.nullcontext()
    with v3, lock:
        try:
            results = getattr(session, op)(list(oids))
        except Exception as exc:
            raise _Failed(_error(exc, target)) from None
    out: list[tuple[str, PlainValue | None]] = []
    for r in results:
        oid = r.oid.lstrip(".")
        if r.index:
            oid = f"{oid}.{r.index}"
        out.append((oid, _plain(r.value, r.type)))
    return out


def _poll_sync(
    target: SnmpTarget,
    scalars: Sequence[str],
    columns: Sequence[str],
    limit: int,
    deadline: float,
) -> tuple[dict[str, PlainValue], list[Pair]]:
    """A whole poll in one worker thread (one hand-off per poll, not per request): one
    GET of the scalars, then each table's columns side by side with GETBULK. Bounded by
    `limit` rows per column and by `deadline` (time.monotonic()) between requests."""
    values: dict[str, PlainValue] = {}
    if scalars:
        got = _request(target, "get", scalars, 10)
        values = {oid: v for oid, v in got if v is not None}
    tables: dict[str, list[str]] = {}
    for col in columns:
        tables.setdefault(col.rsplit(".", 1)[0], []).append(col)
    pairs: list[Pair] = []
    for entry, cols in tables.items():
        pairs += _walk_table(target, entry, cols, limit, deadline)
    return values, pairs


# Rows each table had at the last poll of a target: the next poll asks for as many in
# one request. Net-SNMP's text of each integer costs ezsnmp tens of microseconds to
# decode, so varbinds fetched past a table's end are most of what a poll could waste;
# all columns of one table have the same rows, so one figure per table.
_rows_seen: dict[tuple[str, int, str], int] = {}


def _walk_table(
    target: SnmpTarget, entry: str, columns: Sequence[str], limit: int, deadline: float
) -> list[Pair]:
    """A table's columns walked side by side, GETBULK after GETBULK, each column until
    it ends, is not increasing (a broken agent) or reaches `limit` rows."""
    hint = (target.host, target.port, entry)
    reps = min(50, _rows_seen.get(hint, 9) + 1)
    cursors = {c: (c, _oid_tuple(c)) for c in columns}
    counts = dict.fromkeys(columns, 0)
    pairs: list[Pair] = []
    while cursors:
        if time.monotonic() > deadline:
            raise _Failed(_timeout_error(target, "poll deadline"))
        active = list(cursors)
        varbinds = _request(target, "bulk_get", [cursors[c][0] for c in active], reps)
        if not varbinds:
            break
        finished: set[str] = set()
        for i, (name, plain) in enumerate(varbinds):
            base = active[i % len(active)]
            if base in finished:
                continue
            if plain is None or not name.startswith(base + "."):
                finished.add(base)
                continue
            key = _oid_tuple(name)
            if key <= cursors[base][1] or counts[base] >= limit:
                # not increasing (a broken agent), or endless: stop this column
                finished.add(base)
                continue
            pairs.append((name, plain))
            counts[base] += 1
            cursors[base] = (name, key)
        for base in finished:
            cursors.pop(base, None)
        reps = min(50, reps * 2)  # a longer table than last time: bigger bites
    if len(_rows_seen) > _SESSIONS_MAX:
        _rows_seen.clear()
    _rows_seen[hint] = max(counts.values(), default=0)
    return pairs


async def _in_thread(fn: Any, *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(_pool(), fn, *args)


def close_sessions() -> None:
    """Forget every session (their sockets close with them); at shutdown or in tests."""
    _sessions.clear()


class _Failed(Exception):
    def __init__(self, error: SnmpError) -> None:
        super().__init__(error.detail)
        self.error = error


def _timeout_error(target: SnmpTarget, detail: str) -> SnmpError:
    hint = "位址、連接埠" + ("與 community" if isinstance(target.auth, V2c) else "")
    return SnmpError(
        SnmpErrorKind.TIMEOUT,
        f"SNMP 無回應（逾時 {target.budget_s:g} 秒；請確認{hint}）",
        detail,
    )


async def get(target: SnmpTarget, oids: Sequence[str]) -> dict[str, PlainValue]:
    """One GET of several OIDs; absent ones are left out. Raises _Failed."""
    values, _pairs = await poll(target, oids, ())
    return values


async def walk(target: SnmpTarget, base: str, max_rows: int = MAX_ROWS) -> list[Pair]:
    """A bulk walk of one subtree (stops at its end). Raises _Failed."""
    _values, pairs = await poll(target, (), [base], max_rows)
    return pairs


async def walk_columns(
    target: SnmpTarget, columns: Sequence[str], max_rows: int | None = None
) -> list[Pair]:
    """Walk several table columns side by side with GETBULK, fetching only the columns
    a parser reads. Stops each column at its end; raises _Failed."""
    _values, pairs = await poll(target, (), columns, max_rows)
    return pairs


async def poll(
    target: SnmpTarget,
    scalars: Sequence[str],
    columns: Sequence[str],
    max_rows: int | None = None,
    deadline_s: float | None = None,
) -> tuple[dict[str, PlainValue], list[Pair]]:
    """Scalars in one GET and each table column walked with GETBULK, in one worker
    thread. Returns ({scalar oid: value}, [(oid, value)] of the columns); raises
    _Failed. `deadline_s`: how long the thread may keep asking (default: a request's
    budget per column, and one for the GET)."""
    wanted = [o.strip(".") for o in scalars]
    bases = list(dict.fromkeys(c.strip(".") for c in columns))
    limit = MAX_ROWS if max_rows is None else max_rows
    budget = deadline_s if deadline_s is not None else target.budget_s * (len(bases) + 1)
    result: tuple[dict[str, PlainValue], list[Pair]] = await _in_thread(
        _poll_sync, target, wanted, bases, limit, time.monotonic() + budget
    )
    return result


def _oid_tuple(oid: str) -> tuple[int, ...]:
    return tuple(int(p) for p in oid.strip(".").split(".") if p.isascii() and p.isdigit())


def table_columns(table: DiskTable) -> list[str]:
    """The column OIDs the driver walks for a table (only those its parser reads)."""
    cols = {
        c
        for c in (
            table.name_col,
            table.model_col,
            table.capacity_col,
            table.free_col,
            table.used_pct_col,
            table.row_filter[0] if table.row_filter else None,
            *(n for n, _m in table.status),
        )
        if c is not None
    }
    return [table.column(c) for c in sorted(cols)]


HR_STORAGE_COLUMNS = tuple(f"{HR_STORAGE_ENTRY}.{n}" for n in (2, 3, 4, 5, 6))


def poll_plan(vendor: str | VendorProfile = "generic") -> tuple[list[str], list[str]]:
    """(OIDs fetched by GET, column OIDs walked) in one read_recorder poll: what an
    equivalent snmp_exporter module must fetch for a fair comparison (issue 7)."""
    profile = vendor if isinstance(vendor, VendorProfile) else profile_for(vendor)
    walks = list(HR_STORAGE_COLUMNS)
    for table in profile.disk_tables:
        walks += table_columns(table)
    return list(SYSTEM_OIDS), walks


def _deadline(target: SnmpTarget, requests: int) -> float:
    # Bulk walks take several requests; the overall bound is generous but finite.
    return target.budget_s * max(requests, 1) + 1.0


def host_oids(vendor: str | VendorProfile = "generic") -> list[str]:
    """What the host check GETs: the system group and the vendor's identity scalars (of
    every vendor when the inventory says "generic": the reply's sysObjectID tells whose
    apply, see `host_reading`)."""
    profile = vendor if isinstance(vendor, VendorProfile) else profile_for(vendor)
    profiles = PROFILES.values() if profile.vendor == "generic" else (profile,)
    return list(dict.fromkeys([*SYSTEM_OIDS, *(o for p in profiles for o in p.identity.oids())]))


async def read_host(
    target: SnmpTarget, vendor: str | VendorProfile = "generic", *, identity: bool = True
) -> SnmpReading:
    """The host check's SNMP reading: one GET of the system group (sysDescr, sysObjectID,
    sysUpTime, sysName, hrSystemUptime) and, with `identity`, the vendor's identity
    scalars (model, firmware, serial, the device's own status). An agent that answers
    any of them is a device that is up. Never raises."""
    started = time.monotonic()
    profile = vendor if isinstance(vendor, VendorProfile) else profile_for(vendor)
    oids = host_oids(profile) if identity else list(SYSTEM_OIDS)
    try:
        async with asyncio.timeout(_deadline(target, 2)):
            try:
                values = await get(target, oids)
            except _Failed as failed:
                if failed.error.kind != SnmpErrorKind.PROTOCOL or len(oids) <= len(SYSTEM_OIDS):
                    raise
                # An agent that refuses the whole PDU for an object it lacks (a v1-style
                # noSuchName): the system group alone.
                values = await get(target, SYSTEM_OIDS)
    except _Failed as failed:
        return SnmpReading(error=failed.error, duration_s=time.monotonic() - started)
    except TimeoutError:
        return SnmpReading(
            error=SnmpError(
                SnmpErrorKind.TIMEOUT,
                f"SNMP 無回應（逾時 {_deadline(target, 1):g} 秒）",
                "overall deadline",
            ),
            duration_s=time.monotonic() - started,
        )
    except Exception as exc:  # never let a library error escape a probe
        return SnmpReading(
            error=SnmpError(SnmpErrorKind.PROTOCOL, "SNMP 回應無法解讀", type(exc).__name__),
            duration_s=time.monotonic() - started,
        )
    return host_reading(values, profile, time.monotonic() - started)


def host_reading(
    values: Mapping[str, PlainValue], vendor: str | VendorProfile, duration_s: float = 0.0
) -> SnmpReading:
    """The host reading from the GET's {oid: value} (pure; tests feed it recorded walks)."""
    profile = vendor if isinstance(vendor, VendorProfile) else profile_for(vendor)
    if not values:
        return SnmpReading(
            error=SnmpError(
                SnmpErrorKind.PROTOCOL,
                "SNMP 有回應，但未提供任何系統資訊（sysDescr、sysUpTime 皆無）",
                "empty system group",
            ),
            duration_s=duration_s,
        )
    system = parse_system(values)
    if profile.vendor == "generic":
        # The inventory does not say whose device it is: the agent does.
        answered = {k.strip(".") for k in values}
        profile = (
            profile_by_object_id(system.object_id) or profile_answering(answered) or profile
        )
    return SnmpReading(
        system=system,
        identity=parse_identity(values, profile),
        duration_s=duration_s,
        profile=profile.vendor,
    )


async def read_recorder(
    target: SnmpTarget, vendor: str | VendorProfile = "generic", *, storage: bool = True
) -> SnmpReading:
    """The recording check's SNMP reading: the system group, hrStorage and every disk
    table of the vendor's profile, in one side-by-side GETBULK walk (usually 2-3
    requests). Never raises; a table the device does not serve is in `missing_tables`."""
    started = time.monotonic()
    profile = vendor if isinstance(vendor, VendorProfile) else profile_for(vendor)
    columns = list(HR_STORAGE_COLUMNS) if storage else []
    for table in profile.disk_tables:
        columns += table_columns(table)
    try:
        async with asyncio.timeout(_deadline(target, 12)):
            values, pairs = await poll(
                target, SYSTEM_OIDS, columns, deadline_s=_deadline(target, 12)
            )
    except _Failed as failed:
        return SnmpReading(error=failed.error, duration_s=time.monotonic() - started)
    except TimeoutError:
        return SnmpReading(
            error=SnmpError(SnmpErrorKind.TIMEOUT, "SNMP 讀取表格逾時", "poll deadline"),
            duration_s=time.monotonic() - started,
        )
    except Exception as exc:  # never let a library error escape a probe
        return SnmpReading(
            error=SnmpError(SnmpErrorKind.PROTOCOL, "SNMP 回應無法解讀", type(exc).__name__),
            duration_s=time.monotonic() - started,
        )
    if not values and not pairs:
        return SnmpReading(
            error=SnmpError(
                SnmpErrorKind.PROTOCOL,
                "SNMP 有回應，但未提供任何系統資訊（sysDescr、sysUpTime 皆無）",
                "empty system group",
            ),
            duration_s=time.monotonic() - started,
        )
    disks: list[DiskFact] = []
    missing: list[str] = []
    for table in profile.disk_tables:
        rows = parse_disks(table, pairs)
        if rows:
            disks.extend(rows)
        else:
            missing.append(table.key)
    return SnmpReading(
        system=parse_system(values),
        storage=tuple(parse_storage(pairs)) if storage else (),
        disks=tuple(disks),
        missing_tables=tuple(missing),
        duration_s=time.monotonic() - started,
    )


# ---- disks as the recording check reads them (pure) -------------------------------


_HEALTH_STATUS = {
    DiskHealth.OK: DiskStatus.OK,
    DiskHealth.WARNING: DiskStatus.WARNING,
    DiskHealth.FAILED: DiskStatus.FAILED,
    DiskHealth.FULL: DiskStatus.FULL,
}


def _number_in(pattern: str | None, text: str) -> str | None:
    if pattern is None:
        return None
    m = re.match(pattern, text.strip(), re.IGNORECASE)
    return m.group(1) if m else None


def snmp_disks(reading: SnmpReading, vendor: str | VendorProfile = "generic") -> list[Disk]:
    """What a custodian sees on the device's storage page, from one reading:

    - disks (the vendor's disk rows), numbered 1..N as they sit in the box (the SNMP row
      index, e.g. Synology's 0-based one, means nothing to them);
    - storage pools / RAID groups (raid rows that are not volumes): health only, since
      their free size is space not yet allocated to a volume ("pool-1"...);
    - volumes: the hrStorage rows the profile's rule names (Synology "/volume1"), with
      the status of the raid row of the same volume ("Volume 1"); on other devices, when
      no disk row tells its space, the sizeable fixed and network disks of hrStorage
      ("volume-1"...). RAM, swap and system mounts are never volumes.
    """
    profile = vendor if isinstance(vendor, VendorProfile) else profile_for(vendor)
    rule = profile.volumes
    out: list[Disk] = []
    disk_rows = [d for d in reading.disks if d.kind != "raid"]
    for n, d in enumerate(disk_rows, start=1):
        out.append(
            Disk(
                id=str(n),
                status=_HEALTH_STATUS.get(d.health, DiskStatus.UNKNOWN),
                capacity_bytes=d.capacity_bytes,
                free_bytes=d.free_bytes,
                name=d.name if not d.name.startswith(f"{d.kind} ") else None,
                raw_status=d.status_text or None,
                kind=StorageKind.DISK,
                temperature_c=d.temperature_c,
            )
        )
    pools: list[DiskFact] = []
    raid_volumes: dict[str, DiskFact] = {}
    for d in reading.disks:
        if d.kind != "raid":
            continue
        number = _number_in(rule.raid_volume, d.name)
        if number is not None:
            raid_volumes[number] = d
        else:
            pools.append(d)
    for n, d in enumerate(pools, start=1):
        # A pool's free size is what no volume has been given yet: never judged as space.
        out.append(
            Disk(
                id=f"pool-{n}",
                status=_HEALTH_STATUS.get(d.health, DiskStatus.UNKNOWN)
                if d.health != DiskHealth.FULL
                else DiskStatus.OK,
                capacity_bytes=d.capacity_bytes,
                name=d.name,
                raw_status=d.status_text or None,
                kind=StorageKind.POOL,
            )
        )
    volumes: list[tuple[str, StorageFact]] = []
    if rule.descr is not None:
        for st in reading.storage:
            number = _number_in(rule.descr, st.descr)
            if number is not None and st.size_bytes > 0:
                volumes.append((number, st))
    elif rule.always or all(d.capacity_bytes is None for d in disk_rows):
        n = 0
        for st in reading.storage:
            if st.kind in ("fixed-disk", "network-disk") and st.size_bytes >= rule.min_bytes:
                n += 1
                volumes.append((str(n), st))
    told = set()
    for number, st in volumes:
        raid = raid_volumes.get(number)
        told.add(number)
        status = DiskStatus.OK if raid is None else _HEALTH_STATUS.get(raid.health, DiskStatus.OK)
        if status == DiskStatus.FULL:
            status = DiskStatus.OK  # fullness is judged from the sizes below
        out.append(
            Disk(
                id=f"volume-{number}",
                status=status,
                capacity_bytes=st.size_bytes,
                free_bytes=st.free_bytes,
                name=st.descr,
                raw_status=raid.status_text if raid is not None else None,
                kind=StorageKind.VOLUME,
            )
        )
    for number, raid in sorted(raid_volumes.items(), key=lambda kv: _oid_tuple(kv[0])):
        if number in told:
            continue
        # hrStorage not served: the raid row of the volume tells its size and free space
        status = _HEALTH_STATUS.get(raid.health, DiskStatus.UNKNOWN)
        out.append(
            Disk(
                id=f"volume-{number}",
                status=DiskStatus.OK if status == DiskStatus.FULL else status,
                capacity_bytes=raid.capacity_bytes,
                free_bytes=raid.free_bytes,
                name=raid.name,
                raw_status=raid.status_text or None,
                kind=StorageKind.VOLUME,
            )
        )
    return out


def no_storage_reason(reading: SnmpReading, vendor: str | VendorProfile = "generic") -> str:
    """The reason when an agent answered but told of no disk, pool or volume."""
    profile = vendor if isinstance(vendor, VendorProfile) else profile_for(vendor)
    tables = "、".join(t.title for t in profile.disk_tables)
    return f"SNMP 有回應，但未提供硬碟資訊（{tables}、HOST-RESOURCES hrStorage 皆無資料）"


# ---- the driver --------------------------------------------------------------------

_CODES = {
    SnmpErrorKind.TIMEOUT: ReasonCode.SNMP_TIMEOUT,
    SnmpErrorKind.AUTH: ReasonCode.SNMP_AUTH,
    SnmpErrorKind.PROTOCOL: ReasonCode.SNMP_PROTOCOL,
    SnmpErrorKind.CONFIG: ReasonCode.SNMP_CONFIG,
}


def _device_error(error: SnmpError) -> DeviceError:
    return DeviceError(_CODES.get(error.kind, ReasonCode.SNMP_PROTOCOL), error.reason)


class SnmpDriver(Driver):
    """SNMP v2c/v3: identity, uptime and the disk tables of a recorder with an `snmp`
    block."""

    name = "snmp"
    protocol = Protocol.SNMP
    abilities = frozenset({Ability.DEVICE_INFO, Ability.UPTIME, Ability.DISKS})
    http = False

    def session(self, link: DeviceLink) -> DriverSession:
        return _SnmpSession(self, link)


# Device memory: the vendor profile an agent the inventory calls "generic" showed itself
_PROFILE_KEY = "snmp_profile"


class _SnmpSession(DriverSession):
    _host: SnmpReading | None = None
    _with_identity = False

    @property
    def abilities(self) -> frozenset[Ability]:
        rec = self.link.target.recorder
        return self.driver.abilities if rec is not None and rec.snmp is not None else frozenset()

    @property
    def _alone(self) -> bool:
        """SNMP is all the inventory lists for this device: it has the whole budget."""
        return all(p == Protocol.SNMP for p in self.link.target.protocols)

    @property
    def _vendor(self) -> str:
        rec = self.link.target.recorder
        assert rec is not None  # abilities are empty without a recorder
        return rec.vendor.value

    def _target(self, timeout: float, retries: int = 0) -> SnmpTarget:
        try:
            return target_for(
                self.link.target.recorder, self.link.ctx.secrets, timeout=timeout, retries=retries
            )
        except (SecretError, ValueError):
            raise DeviceError(ReasonCode.SNMP_CONFIG, "SNMP 帳號設定無法使用") from None

    async def _read_host(self, identity: bool) -> SnmpReading:
        """One GET per check for identity and uptime (asked one after the other). Only
        the system group when identity is not asked (another protocol told it)."""
        if self._host is None or (identity and not self._with_identity):
            self._with_identity = identity
            timeout = self.link.ctx.config.timeout
            if self._alone:
                # The only protocol: time for one retry (UDP drops a datagram now and then)
                target = self._target(max(0.5, min(3.0, timeout / 4)), retries=1)
            else:
                # What the HTTP drivers left: a short budget of its own.
                target = self._target(max(0.5, min(2.0, timeout / 4)))
            try:
                async with asyncio.timeout(target.budget_s * 2 + 0.5):
                    reading = await read_host(target, self._vendor, identity=identity)
            except TimeoutError:
                reading = SnmpReading(error=_timeout_error(target, "session deadline"))
            self._host = reading
            if reading.ok and self._vendor == "generic":
                # remembered for the recording check: whose disk tables to walk
                self.link.memory[_PROFILE_KEY] = reading.profile
        if self._host.error is not None:
            raise _device_error(self._host.error)
        return self._host

    async def device_info(self) -> DeviceInfo:
        reading = await self._read_host(identity=True)
        return reading.identity or DeviceInfo()

    async def uptime(self) -> float | None:
        reading = await self._read_host(identity=False)
        return reading.system.uptime_s if reading.system else None

    async def disks(self) -> list[Disk] | None:
        timeout = self.link.ctx.config.timeout
        target = self._target(min(3.0, timeout / 3), retries=1 if self._alone else 0)
        profile = profile_for(self._vendor)
        if profile.vendor == "generic":
            told = self.link.memory.get(_PROFILE_KEY)
            profile = PROFILES.get(told, profile) if isinstance(told, str) else profile
        try:
            async with asyncio.timeout(max(1.0, timeout / 2 if self._alone else timeout / 3)):
                reading = await read_recorder(target, profile)
                found = profile_by_object_id(reading.system.object_id if reading.system else None)
                if reading.ok and profile.vendor == "generic" and found is not None:
                    # A brand the inventory calls "generic" whose sysObjectID says whose
                    # disk tables it serves: read those.
                    profile = found
                    reading = await read_recorder(target, profile)
        except TimeoutError:
            raise DeviceError(ReasonCode.SNMP_TIMEOUT, _timeout_error(target, "").reason) from None
        if reading.error is not None:
            raise _device_error(reading.error)
        storage = snmp_disks(reading, profile)
        if not storage:
            # It answered, but with no disk, pool or volume: say so, not "no protocol".
            raise DeviceError(ReasonCode.NOT_SUPPORTED, no_storage_reason(reading, profile))
        return storage
