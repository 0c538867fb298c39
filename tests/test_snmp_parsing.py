"""The SNMP driver's parsing, on walks recorded from real devices and on vendor MIBs.

The same pure functions the driver feeds with live agent replies read the recordings in
../shared/fixtures/snmp (snmpsim .snmprec and Net-SNMP snmpwalk text), and the vendor
tables' OIDs and value words are checked against the vendor MIB files themselves.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from probes.drivers.snmp import (
    SnmpReading,
    StorageFact,
    parse_disks,
    parse_size,
    parse_storage,
    parse_system,
    read_recorder_from_pairs,
    read_snmprec,
    read_snmpwalk,
    snmp_disks,
    table_rows,
    to_int,
)
from probes.recording import judge_disks
from probes.result import FindingCode
from probes.vendors_snmp import (
    DAHUA_DISK,
    HIKVISION_DISK,
    HOST_RESOURCES_DISK,
    QNAP_DISK,
    SYNOLOGY_DISK,
    SYNOLOGY_RAID,
    DiskHealth,
    DiskTable,
    profile_for,
)

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "snmp"
needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"SNMP fixtures not found at {FIXTURES}"
)


def _rec(rel: str) -> list[tuple[str, int | str]]:
    path = FIXTURES / rel
    if not path.is_file():
        pytest.skip(f"fixture {path} is absent")
    text = path.read_text(encoding="utf-8", errors="replace")
    return read_snmpwalk(text) if rel.endswith(".snmpwalk") else read_snmprec(text)


# ---- defensive value parsing -----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (42, 42),
        ("42", 42),
        (" 15 PERCENT", 15),
        ("63989415936.000000", 63989415936),
        ("-5", -5),
        ("n/a", None),
        ("", None),
        (None, None),
    ],
)
def test_to_int_reads_string_valued_counters(raw: object, expected: int | None) -> None:
    assert to_int(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5.46 TB", int(5.46 * 1024**4)),
        ("512 MB", 512 * 1024**2),
        ("0.0 GB", 0),
        ("3 KiB", 3072),
        (1234, 1234),
        ("garbage", None),
    ],
)
def test_parse_size(raw: object, expected: int | None) -> None:
    assert parse_size(raw) == expected


@needs_fixtures
def test_hikvision_camera_strings_are_read_as_numbers() -> None:
    # HIK-DEVICE-MIB serves CPU, memory and disk as text ("15 PERCENT", "512 MB").
    values = dict(_rec("snmprec/hikvision-cam.snmprec"))
    assert to_int(values["1.3.6.1.4.1.39165.1.7.0"]) == 15
    assert parse_size(values["1.3.6.1.4.1.39165.1.10.0"]) == 512 * 1024**2
    assert parse_size(values["1.3.6.1.4.1.39165.1.8.0"]) == 0
    # No sysDescr at all on this camera: the system facts stay empty, nothing raises.
    system = parse_system(values)
    assert system.descr is None and system.uptime_s is None


# ---- recorded walks ------------------------------------------------------------------------


@needs_fixtures
def test_host_resources_storage_from_a_real_linux_walk() -> None:
    pairs = _rec("snmpsim_data/recorded/linux-full-walk.snmprec")
    storage = {s.descr: s for s in parse_storage(pairs)}
    root = storage["/"]
    assert root.kind == "fixed-disk"
    assert root.allocation_units == 4096
    assert root.size_bytes == 2164327 * 4096
    assert root.used_bytes == 1667935 * 4096
    assert root.free_bytes == (2164327 - 1667935) * 4096
    assert storage["Physical memory"].kind == "ram"
    assert storage["Swap space"].kind == "virtual-memory"
    system = parse_system(dict(pairs))
    assert system.sys_uptime_s == pytest.approx(2334251.20)
    assert system.host_uptime_s == pytest.approx(2335121.42)
    assert system.uptime_s == system.host_uptime_s  # the host's, not the agent's


@needs_fixtures
def test_host_resources_disks_without_status_are_not_judged() -> None:
    # net-snmp lists disks in hrDeviceTable but gives them no hrDeviceStatus: the driver
    # reports the table as missing instead of inventing a health.
    pairs = _rec("snmpsim_data/recorded/linux-full-walk.snmprec")
    rows = table_rows(pairs, HOST_RESOURCES_DISK.entry)
    disk_rows = [i for i, r in rows.items() if r.get(2) == "1.3.6.1.2.1.25.3.1.6"]
    assert len(disk_rows) == 3
    assert parse_disks(HOST_RESOURCES_DISK, pairs) == []
    reading = read_recorder_from_pairs(pairs, "generic")
    assert reading.missing_tables == ("hr-disk",)


@needs_fixtures
@pytest.mark.parametrize(
    ("variant", "disk2"),
    [
        ("ok", DiskHealth.OK),
        ("warning", DiskHealth.WARNING),
        ("critical", DiskHealth.FAILED),
        ("failing", DiskHealth.FAILED),
    ],
)
def test_synology_disk_health_variants(variant: str, disk2: DiskHealth) -> None:
    pairs = _rec(f"centreon_snmpwalk/synology-disk-{variant}.snmpwalk")
    disks = {d.name: d for d in parse_disks(SYNOLOGY_DISK, pairs)}
    assert set(disks) == {"Disk 1", "Disk 2"}
    assert disks["Disk 1"].health == DiskHealth.OK
    assert disks["Disk 2"].health == disk2
    raids = {d.name: d for d in parse_disks(SYNOLOGY_RAID, pairs)}
    assert raids["Volume 1"].health == DiskHealth.OK
    assert raids["Volume 1"].kind == "raid"  # a raidTable row: a volume's RAID, no disk
    assert parse_system(dict(pairs)).host_uptime_s == pytest.approx(2765.32)


@needs_fixtures
def test_qnap_disks_with_text_capacity() -> None:
    pairs = _rec("snmprec/qnap.snmprec")
    disks = parse_disks(QNAP_DISK, pairs)
    assert len(disks) == 8
    assert {d.health for d in disks} == {DiskHealth.OK}
    first = next(d for d in disks if d.name == "HDD1")
    assert first.model == "WD6003FFBX-68MU3N0"
    assert first.capacity_bytes == int(5.46 * 1024**4)
    assert first.status_text == "ready/GOOD"


@needs_fixtures
def test_synology_nas_walk_reads_uptime() -> None:
    pairs = _rec("snmprec/dsm_ds916.snmprec")
    reading = read_recorder_from_pairs(pairs, "synology")
    assert reading.system is not None
    assert reading.system.sys_uptime_s == pytest.approx(35012412.07)
    assert reading.system.descr is not None and reading.system.descr.startswith("Linux Syno")
    # This capture holds no disk table: both Synology tables are reported missing.
    assert set(reading.missing_tables) == {"synology-disk", "synology-raid"}


def test_unknown_status_value_is_unknown_with_its_raw_text() -> None:
    e = HIKVISION_DISK.entry
    pairs: list[tuple[str, int | str]] = [
        (f"{e}.2.1.0", "HDD1"),
        (f"{e}.3.1.0", 77),
        (f"{e}.4.1.0", 2715648),
        (f"{e}.5.1.0", 3815447),
    ]
    (disk,) = parse_disks(HIKVISION_DISK, pairs)
    assert disk.index == "1.0"  # Hikvision's odd "1.0" row index survives
    assert disk.health == DiskHealth.UNKNOWN
    assert disk.status_text == "77"
    assert disk.capacity_bytes == 3815447 * 1024 * 1024
    assert disk.free_bytes == 2715648 * 1024 * 1024


def test_hikvision_status_words_and_full_from_free_space() -> None:
    e = HIKVISION_DISK.entry
    pairs: list[tuple[str, int | str]] = []
    for idx, status, free in ((1, 0, 100), (2, 3, 100), (3, "0", "0"), (4, 5, 10)):
        pairs += [
            (f"{e}.2.{idx}", f"HDD{idx}"),
            (f"{e}.3.{idx}", status),
            (f"{e}.4.{idx}", free),
            (f"{e}.5.{idx}", "1000"),
        ]
    disks = {d.name: d for d in parse_disks(HIKVISION_DISK, pairs)}
    assert disks["HDD1"].health == DiskHealth.OK
    assert disks["HDD2"].health == DiskHealth.FAILED and disks["HDD2"].status_text == "Smartfailed"
    assert disks["HDD3"].health == DiskHealth.FULL  # Normal, but no free MB left
    assert disks["HDD4"].health == DiskHealth.OK and disks["HDD4"].status_text == "Idle"


def test_dahua_text_status_folding() -> None:
    e = DAHUA_DISK.entry
    pairs: list[tuple[str, int | str]] = [
        (f"{e}.4.1", "/dev/sda"),
        (f"{e}.5.1", " Success "),
        (f"{e}.4.2", "/dev/sdb"),
        (f"{e}.5.2", "ERROR"),
        (f"{e}.4.3", "/dev/sdc"),
        (f"{e}.5.3", "Full"),
        (f"{e}.4.4", "/dev/sdd"),
        (f"{e}.5.4", "Smart Abnormal"),
    ]
    got = {d.name: d.health for d in parse_disks(DAHUA_DISK, pairs)}
    assert got == {
        "/dev/sda": DiskHealth.OK,
        "/dev/sdb": DiskHealth.FAILED,
        "/dev/sdc": DiskHealth.FULL,
        "/dev/sdd": DiskHealth.WARNING,
    }


def test_negative_hrstorage_sizes_wrap_to_unsigned() -> None:
    # net-snmp serves hrStorageSize as Integer32: a 16 TB volume in 4 KiB units wraps.
    e = "1.3.6.1.2.1.25.2.3.1"
    units = 4096
    size_units = 3_906_250_000  # > 2**31
    pairs: list[tuple[str, int | str]] = [
        (f"{e}.2.40", "1.3.6.1.2.1.25.2.1.4"),
        (f"{e}.3.40", "/data"),
        (f"{e}.4.40", units),
        (f"{e}.5.40", size_units - 2**32),
        (f"{e}.6.40", "1000"),
    ]
    (row,) = parse_storage(pairs)
    assert row.size_bytes == size_units * units
    assert row.used_bytes == 1000 * units


def test_snmp_disks_full_threshold_and_reasons() -> None:
    reading = SnmpReading(
        storage=(
            StorageFact("31", "HDD1", "fixed-disk", 4096, 100 * 1024**3, 97 * 1024**3),
            StorageFact("32", "HDD2", "fixed-disk", 4096, 100 * 1024**3, 50 * 1024**3),
            StorageFact("1", "Physical memory", "ram", 1024, 8 * 1024**3, 8 * 1024**3),
            StorageFact("9", "/boot", "fixed-disk", 4096, 100 * 1024**2, 100 * 1024**2),
        ),
    )
    # The recording check's path: the reading's disks, judged with the full threshold.
    disks = snmp_disks(reading)
    # RAM and small system mounts left out; the mounts are volumes, not disks
    assert [(d.id, d.name, d.kind) for d in disks] == [
        ("volume-1", "HDD1", "volume"),
        ("volume-2", "HDD2", "volume"),
    ]
    v = judge_disks(disks, 95.0, overwrite=False)
    assert [(f.code, f.subject) for f in v.findings] == [(FindingCode.DISK_FULL, "disk-volume-1")]
    assert "儲存空間 1 空間不足" in v.findings[0].reason
    assert "剩 3%" in v.findings[0].reason
    assert v.values is not None and v.values[1].ok is True


def test_read_snmpwalk_formats() -> None:
    text = "\n".join(
        [
            ".1.3.6.1.2.1.1.3.0 = Timeticks: (80599046) 9 days, 7:53:10.46",
            '.1.3.6.1.2.1.1.5.0 = STRING: "nvr-1"',
            ".1.3.6.1.2.1.1.2.0 = OID: .1.3.6.1.4.1.50001",
            ".1.3.6.1.2.1.25.1.1.0 = 276532",
            ".1.3.6.1.4.1.46202.1.1.1.4.1.0 = Counter64: 3145223708",
        ]
    )
    values = dict(read_snmpwalk(text))
    system = parse_system(values)
    assert system.sys_uptime_s == pytest.approx(805990.46)
    assert system.name == "nvr-1"
    assert system.object_id == "1.3.6.1.4.1.50001"
    assert system.host_uptime_s == pytest.approx(2765.32)
    assert values["1.3.6.1.4.1.46202.1.1.1.4.1.0"] == 3145223708


def test_every_vendor_has_a_profile() -> None:
    for vendor in ("hikvision", "dahua", "synology", "axis", "generic", "Unknown-Brand"):
        assert profile_for(vendor).disk_tables


# ---- vendor tables against the vendor MIB files ----------------------------------------------

_OBJECT = re.compile(
    r"^\s*([A-Za-z][\w-]*)\s+(?:OBJECT-TYPE|OBJECT IDENTIFIER|MODULE-IDENTITY)\b(.*?)"
    r"::=\s*\{\s*([A-Za-z][\w-]*)\s+(\d+)\s*\}",
    re.MULTILINE | re.DOTALL,
)


def _mib_objects(*files: Path) -> tuple[dict[str, str], dict[str, dict[int, str]]]:
    """name -> numeric OID, and name -> {enum value: label}, from MIB text (comments cut)."""
    parents: dict[str, tuple[str, int]] = {}
    enums: dict[str, dict[int, str]] = {}
    for f in files:
        text = "\n".join(
            line.split("--", 1)[0] for line in f.read_text(errors="replace").splitlines()
        )
        for m in _OBJECT.finditer(text):
            name, body, parent, n = m.group(1), m.group(2), m.group(3), int(m.group(4))
            parents[name] = (parent, n)
            found = {
                int(v): k for k, v in re.findall(r"\b([A-Za-z][\w]*)\s*\(\s*(-?\d+)\s*\)", body)
            }
            if found:
                enums[name] = found
        # Synology writes the meanings in DESCRIPTION text, which comments don't touch.
    roots = {"enterprises": "1.3.6.1.4.1", "iso": "1"}

    def resolve(name: str) -> str:
        if name in roots:
            return roots[name]
        parent, n = parents[name]
        return f"{resolve(parent)}.{n}"

    oids = {}
    for name in parents:
        try:
            oids[name] = resolve(name)
        except (KeyError, RecursionError):
            continue
    return oids, enums


def _check_table(table: DiskTable, mib: list[Path], entry: str, columns: dict[int, str]) -> None:
    for f in mib:
        if not f.is_file():
            pytest.skip(f"MIB {f} is absent")
    oids, enums = _mib_objects(*mib)
    assert table.entry == oids[entry], f"{table.key}: entry OID differs from {entry}"
    for col, name in columns.items():
        assert table.column(col) == oids[name], f"{table.key}: column {col} is not {name}"
    for col, meanings in table.status:
        name = columns[col]
        if name not in enums:
            continue  # a text column (Dahua, QNAP SMART): no enumeration to compare
        mib_labels = enums[name]
        for value, (_health, label) in meanings.items():
            if re.fullmatch(r"-?\d+", value):
                if int(value) not in mib_labels and int(value) > max(mib_labels):
                    continue  # named by a later firmware than this MIB (see the table)
                assert mib_labels.get(int(value), "").lower() == label.lower(), (
                    f"{table.key} {name}({value}) is {mib_labels.get(int(value))!r} in the MIB"
                )


@needs_fixtures
def test_hikvision_table_matches_hikvision_mib() -> None:
    _check_table(
        HIKVISION_DISK,
        [FIXTURES / "mibs/hikvision/HIKVISION-MIB"],
        "hikDiskEntry",
        {2: "hikDiskVolume", 3: "hikDiskStatus", 4: "hikDiskFreeSpace", 5: "hikDiskCapability"},
    )


@needs_fixtures
def test_dahua_table_matches_dahua_mib() -> None:
    _check_table(
        DAHUA_DISK,
        [FIXTURES / "mibs/dahua/DAHUA-SNMP-MIB"],
        "physicalVolumeInfoEntry",
        {4: "physicalVolumeName", 5: "physicalVolumeStatus"},
    )


@needs_fixtures
def test_synology_tables_match_synology_mibs() -> None:
    mibs = FIXTURES / "mibs/synology"
    _check_table(
        SYNOLOGY_DISK,
        [mibs / "SYNOLOGY-DISK-MIB"],
        "diskEntry",
        {2: "diskID", 3: "diskModel", 5: "diskStatus", 13: "diskHealthStatus"},
    )
    _check_table(
        SYNOLOGY_RAID,
        [mibs / "SYNOLOGY-RAID-MIB"],
        "raidEntry",
        {2: "raidName", 3: "raidStatus", 4: "raidFreeSize", 5: "raidTotalSize"},
    )
    # The status words live in DESCRIPTION text: check them there.
    text = (mibs / "SYNOLOGY-DISK-MIB").read_text(errors="replace")
    for value, (_h, label) in dict(SYNOLOGY_DISK.status)[5].items():
        assert f"{label}({value})" in text
    raid_text = (mibs / "SYNOLOGY-RAID-MIB").read_text(errors="replace")
    for value, (_h, label) in dict(SYNOLOGY_RAID.status)[3].items():
        # DSM 7 added statuses 13-21 after this MIB (named as LibreNMS's dsm definition
        # reads them); every status this MIB names is named the same here.
        assert f"{label}({value})" in raid_text or int(value) > 12, (value, label)


@needs_fixtures
def test_qnap_table_matches_nas_mib() -> None:
    _check_table(
        QNAP_DISK,
        [FIXTURES / "mibs/qnap/NAS-MIB"],
        "hdEntry",
        {2: "hdDescr", 4: "hdStatus", 5: "hdModel", 6: "hdCapacity", 7: "hdSmartInfo"},
    )
