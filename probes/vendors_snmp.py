"""Where each vendor keeps its identity, its own status and its disk health in SNMP, as
data.

The SNMP driver has no vendor branches: it GETs the identity scalars a vendor profile
names (model, firmware, serial, the device's own status), walks the tables it names and
reads every row through the same code, with each table's column OIDs and its
value→meaning map, and tells volumes from system mounts in hrStorage by the profile's
rule. Adding a vendor is adding its profile here.

Identity (the same OIDs LibreNMS reads from these walks: its os definitions for
hikvision-nvr, dahua-nvr and dsm):
- HIKVISION-MIB: hikEntityIndex .50001.1.3 (serial; "for DVR this is serial NO."),
  hikEntityType .50001.1.100 DVR(1) NVR(2) IPC(3); the MIB has no model or firmware, and
  sysDescr is "Hikvision company products". HIK-DEVICE-MIB (cameras): .39165.1.1 model,
  .39165.1.3 firmware.
- DAHUA-SNMP-MIB: softwareRevision .1004849.2.1.1.1, serialNumber .2.1.2.4, deviceType
  .2.1.2.6 (the model), deviceStatus .2.1.2.8 bad(0) good(1).
- SYNOLOGY-SYSTEM-MIB: systemStatus .6574.1.1, temperature .6574.1.2, powerStatus .1.3,
  systemFanStatus .1.4.1, cpuFanStatus .1.4.2 — Normal(1) Failed(2); modelName .1.5.1,
  serialNumber .1.5.2, version .1.5.3 ("DSM 7.1-42962").

Sources (all in ../shared/fixtures/snmp, see its SOURCES.md):
- HIKVISION-MIB (mibs/hikvision): hikDiskTable .1.3.6.1.4.1.50001.1.241.1, hikDiskStatus
  Normal(0) Unformatted(1) Abnormal(2) Smartfailed(3) Mismatch(4) Idle(5) NotOnline(6)
  Reparing(10) Formatting(11); hikDiskFreeSpace / hikDiskCapability in MB ("if we get
  100, means free space is 100M").
- DAHUA-SNMP-MIB (mibs/dahua): physicalVolumeInfoTable .1.3.6.1.4.1.1004849.2.4.1.1,
  physicalVolumeName (4) and physicalVolumeStatus (5) are DisplayStrings; the MIB names
  no values, so the words come from the same firmware's storageDevice CGI vocabulary
  (State=Success / Error ...). Columns 6-8 (used %, total, free) are commented out in
  the MIB but announced in its revision text: read them when a device serves them.
- SYNOLOGY-DISK-MIB / SYNOLOGY-RAID-MIB (mibs/synology): diskTable .1.3.6.1.4.1.6574.2.1.1,
  diskStatus Normal(1) Initialized(2) NotInitialized(3) SystemPartitionFailed(4)
  Crashed(5), diskTemperature (6, °C), diskHealthStatus (DSM 7) Normal(1) Warning(2)
  Critical(3) Failing(4); raidTable .1.3.6.1.4.1.6574.3.1.1, raidStatus Normal(1) ..
  Degrade(11) Crashed(12) (DSM 7 adds DataScrubbing(13) .. RaidUnknownStatus(21), as
  LibreNMS reads them), raidFreeSize / raidTotalSize in bytes. DSM 7 lists both the
  storage pool ("Storage Pool 1", its free size a few hundred MB: all of it is allocated
  to volumes, which is normal) and the volume on it ("Volume 1") in raidTable; the volume's
  size and use are hrStorage's "/volume1" row. A pool is judged by its status only.
- QNAP NAS-MIB (mibs/qnap): hdTable .1.3.6.1.4.1.24681.1.2.11.1, hdStatus ready(0)
  noDisk(-5) invalid(-6) rwError(-9) unknown(-4), hdCapacity as text ("5.46 TB"),
  hdSmartInfo as text ("GOOD").
- HOST-RESOURCES-MIB (RFC 2790): hrDeviceTable .1.3.6.1.2.1.25.3.2.1 rows whose
  hrDeviceType is hrDeviceDiskStorage (.1.3.6.1.2.1.25.3.1.6), hrDeviceStatus unknown(1)
  running(2) warning(3) testing(4) down(5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class DiskHealth(StrEnum):
    """What a disk's vendor status means for recording."""

    OK = "ok"
    WARNING = "warning"  # still recording, but the vendor warns (SMART, degraded RAID)
    FAILED = "failed"
    FULL = "full"
    UNKNOWN = "unknown"


# Worst first: the health of a row with several status columns is the worst of them.
HEALTH_ORDER: tuple[DiskHealth, ...] = (
    DiskHealth.FAILED,
    DiskHealth.FULL,
    DiskHealth.WARNING,
    DiskHealth.UNKNOWN,
    DiskHealth.OK,
)


@dataclass(frozen=True)
class StatusColumn:
    """One status column and what its values mean.

    `meanings` maps the value as text (an integer's decimal form, or a string folded
    to lower case without spaces) to (health, the vendor's own word for it).
    """

    oid: str
    meanings: Mapping[str, tuple[DiskHealth, str]]


@dataclass(frozen=True)
class DiskTable:
    """A vendor table with one row per disk (or per volume/RAID group)."""

    key: str
    title: str
    entry: str  # the table's entry OID; a column is entry.N, a cell entry.N.<index>
    # "disk": one row per disk (Hikvision's and Dahua's rows are the recording disks
    # themselves, with their free space); "raid": one row per RAID group, storage pool
    # or RAID-backed volume (health; never counted as a disk).
    kind: str = "disk"
    name_col: int | None = None
    model_col: int | None = None
    status: tuple[tuple[int, Mapping[str, tuple[DiskHealth, str]]], ...] = ()
    capacity_col: int | None = None
    free_col: int | None = None
    used_pct_col: int | None = None
    temperature_col: int | None = None  # °C
    unit_bytes: int = 1  # bytes per unit of capacity/free (Hikvision: MB)
    # Keep only rows whose column has this value (HOST-RESOURCES: disk devices).
    row_filter: tuple[int, str] | None = None

    def column(self, n: int) -> str:
        return f"{self.entry}.{n}"

    def status_columns(self) -> tuple[StatusColumn, ...]:
        return tuple(StatusColumn(self.column(n), m) for n, m in self.status)


MB = 1024 * 1024

HIKVISION_DISK = DiskTable(
    key="hikvision-disk",
    title="HIKVISION-MIB hikDiskTable",
    entry="1.3.6.1.4.1.50001.1.241.1",
    name_col=2,  # hikDiskVolume
    status=(
        (
            3,
            {
                "0": (DiskHealth.OK, "Normal"),
                "1": (DiskHealth.FAILED, "Unformatted"),
                "2": (DiskHealth.FAILED, "Abnormal"),
                "3": (DiskHealth.FAILED, "Smartfailed"),
                "4": (DiskHealth.FAILED, "Mismatch"),
                "5": (DiskHealth.OK, "Idle"),
                "6": (DiskHealth.FAILED, "NotOnline"),
                "10": (DiskHealth.WARNING, "Reparing"),
                "11": (DiskHealth.WARNING, "Formatting"),
            },
        ),
    ),
    free_col=4,
    capacity_col=5,
    unit_bytes=MB,
)

_DAHUA_WORDS: dict[str, tuple[DiskHealth, str]] = {
    "success": (DiskHealth.OK, "Success"),
    "normal": (DiskHealth.OK, "Normal"),
    "ok": (DiskHealth.OK, "OK"),
    "good": (DiskHealth.OK, "Good"),
    "running": (DiskHealth.OK, "Running"),
    "sleep": (DiskHealth.OK, "Sleep"),
    "sleeping": (DiskHealth.OK, "Sleeping"),
    "full": (DiskHealth.FULL, "Full"),
    "error": (DiskHealth.FAILED, "Error"),
    "abnormal": (DiskHealth.FAILED, "Abnormal"),
    "fault": (DiskHealth.FAILED, "Fault"),
    "failure": (DiskHealth.FAILED, "Failure"),
    "failed": (DiskHealth.FAILED, "Failed"),
    "bad": (DiskHealth.FAILED, "Bad"),
    "damaged": (DiskHealth.FAILED, "Damaged"),
    "offline": (DiskHealth.FAILED, "Offline"),
    "unformatted": (DiskHealth.FAILED, "Unformatted"),
    "smartabnormal": (DiskHealth.WARNING, "SMART abnormal"),
    "nodisk": (DiskHealth.UNKNOWN, "NoDisk"),
}

DAHUA_DISK = DiskTable(
    key="dahua-disk",
    title="DAHUA-SNMP-MIB physicalVolumeInfoTable",
    entry="1.3.6.1.4.1.1004849.2.4.1.1",
    name_col=4,  # physicalVolumeName
    status=((5, _DAHUA_WORDS),),
    used_pct_col=6,
    capacity_col=7,
    free_col=8,
    unit_bytes=1,
)

SYNOLOGY_DISK = DiskTable(
    key="synology-disk",
    title="SYNOLOGY-DISK-MIB diskTable",
    entry="1.3.6.1.4.1.6574.2.1.1",
    name_col=2,  # diskID ("Disk 1")
    model_col=3,
    temperature_col=6,  # diskTemperature
    status=(
        (
            5,  # diskStatus
            {
                "1": (DiskHealth.OK, "Normal"),
                "2": (DiskHealth.UNKNOWN, "Initialized"),
                "3": (DiskHealth.UNKNOWN, "NotInitialized"),
                "4": (DiskHealth.FAILED, "SystemPartitionFailed"),
                "5": (DiskHealth.FAILED, "Crashed"),
            },
        ),
        (
            13,  # diskHealthStatus (DSM 7)
            {
                "1": (DiskHealth.OK, "Normal"),
                "2": (DiskHealth.WARNING, "Warning"),
                "3": (DiskHealth.FAILED, "Critical"),
                "4": (DiskHealth.FAILED, "Failing"),
            },
        ),
    ),
)

SYNOLOGY_RAID = DiskTable(
    key="synology-raid",
    title="SYNOLOGY-RAID-MIB raidTable",
    entry="1.3.6.1.4.1.6574.3.1.1",
    kind="raid",
    name_col=2,  # raidName ("Storage Pool 1", "Volume 1")
    status=(
        (
            3,
            {
                "1": (DiskHealth.OK, "Normal"),
                "2": (DiskHealth.WARNING, "Repairing"),
                "3": (DiskHealth.OK, "Migrating"),
                "4": (DiskHealth.OK, "Expanding"),
                "5": (DiskHealth.WARNING, "Deleting"),
                "6": (DiskHealth.WARNING, "Creating"),
                "7": (DiskHealth.OK, "RaidSyncing"),
                "8": (DiskHealth.OK, "RaidParityChecking"),
                "9": (DiskHealth.WARNING, "RaidAssembling"),
                "10": (DiskHealth.WARNING, "Canceling"),
                "11": (DiskHealth.WARNING, "Degrade"),
                "12": (DiskHealth.FAILED, "Crashed"),
                "13": (DiskHealth.OK, "DataScrubbing"),
                "14": (DiskHealth.WARNING, "RaidDeploying"),
                "15": (DiskHealth.WARNING, "RaidUnDeploying"),
                "16": (DiskHealth.OK, "RaidMountCache"),
                "17": (DiskHealth.OK, "RaidUnmountCache"),
                "18": (DiskHealth.WARNING, "RaidExpandingUnfinishedSHR"),
                "19": (DiskHealth.OK, "RaidConvertSHRToPool"),
                "20": (DiskHealth.OK, "RaidMigrateSHR1ToSHR2"),
                "21": (DiskHealth.UNKNOWN, "RaidUnknownStatus"),
            },
        ),
    ),
    free_col=4,
    capacity_col=5,
    unit_bytes=1,
)

QNAP_DISK = DiskTable(
    key="qnap-disk",
    title="NAS-MIB hdTable",
    entry="1.3.6.1.4.1.24681.1.2.11.1",
    name_col=2,  # hdDescr
    model_col=5,
    status=(
        (
            4,  # hdStatus
            {
                "0": (DiskHealth.OK, "ready"),
                "-5": (DiskHealth.UNKNOWN, "noDisk"),
                "-6": (DiskHealth.FAILED, "invalid"),
                "-9": (DiskHealth.FAILED, "rwError"),
                "-4": (DiskHealth.UNKNOWN, "unknown"),
            },
        ),
        (
            7,  # hdSmartInfo, text
            {
                "good": (DiskHealth.OK, "GOOD"),
                "normal": (DiskHealth.OK, "Normal"),
                "warning": (DiskHealth.WARNING, "Warning"),
                "abnormal": (DiskHealth.FAILED, "Abnormal"),
                "bad": (DiskHealth.FAILED, "Bad"),
                "--": (DiskHealth.UNKNOWN, "--"),
            },
        ),
    ),
    capacity_col=6,  # text, "5.46 TB"
)

HR_DEVICE_DISK_STORAGE = "1.3.6.1.2.1.25.3.1.6"

HOST_RESOURCES_DISK = DiskTable(
    key="hr-disk",
    title="HOST-RESOURCES-MIB hrDeviceTable (hrDeviceDiskStorage)",
    entry="1.3.6.1.2.1.25.3.2.1",
    name_col=3,  # hrDeviceDescr
    status=(
        (
            5,  # hrDeviceStatus
            {
                "1": (DiskHealth.UNKNOWN, "unknown"),
                "2": (DiskHealth.OK, "running"),
                "3": (DiskHealth.WARNING, "warning"),
                "4": (DiskHealth.WARNING, "testing"),
                "5": (DiskHealth.FAILED, "down"),
            },
        ),
    ),
    row_filter=(2, HR_DEVICE_DISK_STORAGE),
)


@dataclass(frozen=True)
class StatusScalar:
    """A scalar in which the device judges itself: value (as text) → (healthy, its
    word for it). A value the map does not know is reported as it came, not judged."""

    oid: str
    name: str  # the MIB object, as the reason names it
    meanings: Mapping[str, tuple[bool, str]]


@dataclass(frozen=True)
class Identity:
    """Where a vendor's agent tells who the device is (scalar OIDs, `.0` instances)."""

    manufacturer: str | None = None
    model: tuple[str, ...] = ()  # first OID that answers wins
    firmware: tuple[str, ...] = ()
    serial: tuple[str, ...] = ()
    device_type: tuple[str, Mapping[str, str]] | None = None  # OID, value → word
    status: tuple[StatusScalar, ...] = ()
    temperature: str | None = None  # the system's temperature, °C

    def oids(self) -> list[str]:
        found = [*self.model, *self.firmware, *self.serial]
        if self.device_type is not None:
            found.append(self.device_type[0])
        found += [s.oid for s in self.status]
        if self.temperature:
            found.append(self.temperature)
        return list(dict.fromkeys(found))


@dataclass(frozen=True)
class VolumeRule:
    """Which hrStorage rows are the device's volumes (file systems footage is written
    to) and which raidTable rows are volumes rather than storage pools.

    `descr`: a regex on hrStorageDescr whose group 1 numbers the volume ("/volume1");
    None: every fixed or network disk of at least `min_bytes` (RAM, swap and system
    mounts are never volumes). `raid_volume`: a regex on a raid row's name whose group 1
    is the volume's number ("Volume 1"); other raid rows are pools."""

    descr: str | None = None
    raid_volume: str | None = None
    min_bytes: int = 1024**3
    # Volumes even when the disk rows tell their space (a NAS: disks and volumes both).
    always: bool = False


_NORMAL_FAILED = {"1": (True, "Normal"), "2": (False, "Failed")}

HIKVISION_IDENTITY = Identity(
    manufacturer="Hikvision",
    model=("1.3.6.1.4.1.39165.1.1.0",),  # HIK-DEVICE-MIB (cameras; NVRs: absent)
    firmware=("1.3.6.1.4.1.39165.1.3.0",),
    serial=("1.3.6.1.4.1.50001.1.3.0",),  # hikEntityIndex
    device_type=(
        "1.3.6.1.4.1.50001.1.100.0",  # hikEntityType
        {"1": "DVR", "2": "NVR", "3": "IPC"},
    ),
)

DAHUA_IDENTITY = Identity(
    manufacturer="Dahua",
    model=("1.3.6.1.4.1.1004849.2.1.2.6.0",),  # deviceType
    firmware=("1.3.6.1.4.1.1004849.2.1.1.1.0",),  # softwareRevision
    serial=("1.3.6.1.4.1.1004849.2.1.2.4.0",),  # serialNumber
    status=(
        StatusScalar(
            "1.3.6.1.4.1.1004849.2.1.2.8.0", "deviceStatus", {"1": (True, "good"),
                                                               "0": (False, "bad")}
        ),
    ),
)

SYNOLOGY_IDENTITY = Identity(
    manufacturer="Synology",
    model=("1.3.6.1.4.1.6574.1.5.1.0",),  # modelName
    firmware=("1.3.6.1.4.1.6574.1.5.3.0",),  # version
    serial=("1.3.6.1.4.1.6574.1.5.2.0",),  # serialNumber
    status=(
        StatusScalar("1.3.6.1.4.1.6574.1.1.0", "systemStatus", _NORMAL_FAILED),
        StatusScalar("1.3.6.1.4.1.6574.1.3.0", "powerStatus", _NORMAL_FAILED),
        StatusScalar("1.3.6.1.4.1.6574.1.4.1.0", "systemFanStatus", _NORMAL_FAILED),
        StatusScalar("1.3.6.1.4.1.6574.1.4.2.0", "cpuFanStatus", _NORMAL_FAILED),
    ),
    temperature="1.3.6.1.4.1.6574.1.2.0",
)


@dataclass(frozen=True)
class VendorProfile:
    vendor: str
    disk_tables: tuple[DiskTable, ...] = field(default_factory=tuple)
    identity: Identity = field(default_factory=Identity)
    volumes: VolumeRule = field(default_factory=VolumeRule)


# Keyed by inventory.models.Vendor values (plus "qnap", a NAS used as a recorder store).
PROFILES: dict[str, VendorProfile] = {
    "hikvision": VendorProfile("hikvision", (HIKVISION_DISK,), HIKVISION_IDENTITY),
    "dahua": VendorProfile("dahua", (DAHUA_DISK,), DAHUA_IDENTITY),
    "synology": VendorProfile(
        "synology",
        (SYNOLOGY_DISK, SYNOLOGY_RAID),
        SYNOLOGY_IDENTITY,
        VolumeRule(descr=r"^/volume(\d+)$", raid_volume=r"^Volume\s*(\d+)$", always=True),
    ),
    "qnap": VendorProfile("qnap", (QNAP_DISK,), Identity(manufacturer="QNAP")),
    "axis": VendorProfile("axis", (HOST_RESOURCES_DISK,), Identity(manufacturer="Axis")),
    "generic": VendorProfile("generic", (HOST_RESOURCES_DISK,)),
}

# sysObjectID's enterprise number → manufacturer, for an agent whose profile names none.
ENTERPRISES: dict[str, str] = {
    "50001": "Hikvision",
    "39165": "Hikvision",
    "1004849": "Dahua",
    "6574": "Synology",
    "24681": "QNAP",
    "368": "Axis",
}

ALL_TABLES: tuple[DiskTable, ...] = (
    HIKVISION_DISK,
    DAHUA_DISK,
    SYNOLOGY_DISK,
    SYNOLOGY_RAID,
    QNAP_DISK,
    HOST_RESOURCES_DISK,
)


# sysObjectID's enterprise number → the profile of an agent the inventory calls
# "generic" (Synology answers with net-snmp's 8072: not told apart this way).
ENTERPRISE_PROFILES: dict[str, str] = {
    "50001": "hikvision",
    "1004849": "dahua",
    "24681": "qnap",
}


def profile_for(vendor: str) -> VendorProfile:
    """The profile for an inventory vendor; unknown vendors get HOST-RESOURCES."""
    return PROFILES.get(str(vendor).lower(), PROFILES["generic"])


def enterprise_of(object_id: str | None) -> str:
    """The enterprise number of a sysObjectID ("1.3.6.1.4.1.50001" → "50001")."""
    parts = (object_id or "").strip(".").split(".")
    return parts[6] if len(parts) > 6 and parts[:6] == ["1", "3", "6", "1", "4", "1"] else ""


def profile_by_object_id(object_id: str | None) -> VendorProfile | None:
    """The vendor profile an agent's sysObjectID names, if it is one camwatch knows."""
    vendor = ENTERPRISE_PROFILES.get(enterprise_of(object_id))
    return PROFILES[vendor] if vendor else None


def profile_answering(answered: set[str]) -> VendorProfile | None:
    """The vendor whose identity scalars an agent answered (a Synology DSM says it is
    net-snmp in sysObjectID but answers SYNOLOGY-SYSTEM-MIB), most answered first."""
    best, count = None, 0
    for profile in PROFILES.values():
        n = len(answered & set(profile.identity.oids()))
        if n > count:
            best, count = profile, n
    return best
