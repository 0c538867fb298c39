"""Where each vendor keeps its disk health in SNMP, as data.

The SNMP driver has no vendor branches: it walks the tables a vendor profile names and
reads every row through the same code, with each table's column OIDs and its
value→meaning map. Adding a vendor is adding a table here.

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
  Crashed(5), diskHealthStatus Normal(1) Warning(2) Critical(3) Failing(4);
  raidTable .1.3.6.1.4.1.6574.3.1.1, raidStatus Normal(1) .. Degrade(11) Crashed(12),
  raidFreeSize / raidTotalSize in bytes.
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
    kind: str = "disk"  # "disk" or "volume"
    name_col: int | None = None
    model_col: int | None = None
    status: tuple[tuple[int, Mapping[str, tuple[DiskHealth, str]]], ...] = ()
    capacity_col: int | None = None
    free_col: int | None = None
    used_pct_col: int | None = None
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
    kind="volume",
    name_col=2,
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
class VendorProfile:
    vendor: str
    disk_tables: tuple[DiskTable, ...] = field(default_factory=tuple)


# Keyed by inventory.models.Vendor values (plus "qnap", a NAS used as a recorder store).
PROFILES: dict[str, VendorProfile] = {
    "hikvision": VendorProfile("hikvision", (HIKVISION_DISK,)),
    "dahua": VendorProfile("dahua", (DAHUA_DISK,)),
    "synology": VendorProfile("synology", (SYNOLOGY_DISK, SYNOLOGY_RAID)),
    "qnap": VendorProfile("qnap", (QNAP_DISK,)),
    "axis": VendorProfile("axis", (HOST_RESOURCES_DISK,)),
    "generic": VendorProfile("generic", (HOST_RESOURCES_DISK,)),
}

ALL_TABLES: tuple[DiskTable, ...] = (
    HIKVISION_DISK,
    DAHUA_DISK,
    SYNOLOGY_DISK,
    SYNOLOGY_RAID,
    QNAP_DISK,
    HOST_RESOURCES_DISK,
)


def profile_for(vendor: str) -> VendorProfile:
    """The profile for an inventory vendor; unknown vendors get HOST-RESOURCES."""
    return PROFILES.get(str(vendor).lower(), PROFILES["generic"])
