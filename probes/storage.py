"""Judging storage — disks, storage pools, volumes, memory cards, network shares — the
way the device's own storage page shows them (pure; tested without a network).

- A disk is judged by its health and, where the device tells its free space (an NVR's
  disks are its recording space), by its fullness; a storage pool (RAID group) by its
  health only: its free size is space not yet given to a volume, which is normal; a
  volume by its fullness (and the health of its RAID, where told). A pool or a volume is
  never counted or named as a disk.
- Full is normal for a recorder that overwrites its oldest footage (循環錄影), which a
  Hikvision Storage reply does not say. So a full disk is `DiskFull` only when the
  recorder is known not to overwrite (the inventory's `overwrite: false`, or a device
  setting such as Dahua's StorageGroup OverWrite); when that cannot be known it is
  reported once as "full, overwrite unknown" (a warning), then mentioned without an
  alert for as long as it stays full.
- Sizes are printed as the label on the disk and the vendor's page print them (decimal
  TB / GB).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from probes.facts import Disk, DiskStatus, StorageKind
from probes.result import Finding, FindingCode
from probes.values import DiskValues
from probes.wording import fmt_bytes, storage_label

# Device memory key: the storage entries already reported as full with overwrite unknown.
WARNED_KEY = "full_overwrite_unknown"


@dataclass
class StorageVerdict:
    """What the storage says: faults (`problems`, with their findings), remarks that
    are no fault (`notes`: a full disk on a recorder that overwrites), a summary of
    the healthy storage for an answer that is ok, and each entry's figures."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    values: tuple[DiskValues, ...] | None = None
    summary: str = ""


# A device's name that only repeats the number ("HDD1", "Disk 1", "hdd1", "SD1") or is
# the Linux device node ("/dev/sda"), which its web page does not show
_BARE_NAME = re.compile(r"(hdd|disk|drive|sd|mmc)\s*(\d+|[a-z])|.*/dev/\S+.*", re.IGNORECASE)


def label(d: Disk) -> str:
    """「硬碟 1」, 「儲存空間 1（/volume1）」, 「記憶卡 1」, with the device's own name
    where it adds something."""
    text = storage_label(d.id, d.kind.value)
    shown = d.name
    if shown and shown not in text and not _BARE_NAME.fullmatch(shown.strip()):
        text += f"（{shown}）"
    return text


def _sp(name: str) -> str:
    """「硬碟 1 故障」 but 「儲存空間 1（/volume1）故障」: no space after a bracket."""
    return "" if name.endswith("）") else " "


def free_pct(d: Disk) -> float | None:
    if d.capacity_bytes and d.free_bytes is not None and d.capacity_bytes > 0:
        return 100.0 * d.free_bytes / d.capacity_bytes
    return None


def is_full(d: Disk, disk_full_pct: float) -> bool:
    """Full by the device's own word or by the threshold; a pool's free size is not
    free space (its space belongs to its volumes)."""
    if d.kind == StorageKind.POOL or d.status == DiskStatus.FAILED:
        return False
    pct = free_pct(d)
    return d.status == DiskStatus.FULL or (pct is not None and pct < 100.0 - disk_full_pct)


def any_full(disks: Sequence[Disk] | None, disk_full_pct: float) -> bool:
    return any(is_full(d, disk_full_pct) for d in disks or ())


def _space(d: Disk) -> str:
    pct = free_pct(d)
    shown = f"剩 {pct:.0f}%" if pct is not None else "已滿"
    return f"{shown}，{fmt_bytes(d.free_bytes)} / {fmt_bytes(d.capacity_bytes)}"


def judge_disks(
    disks: Sequence[Disk] | None,
    disk_full_pct: float,
    overwrite: bool | None = None,
    memory: dict[str, Any] | None = None,
) -> StorageVerdict:
    """Storage faults, remarks and each entry's figures (values None: no source told
    of any storage). `overwrite`: the recorder overwrites its oldest footage when full
    (True), stops (False), or nobody could tell (None). `memory` (the device's
    remembered facts) keeps which entries were already reported full with overwrite
    unknown, so that it is said once."""
    verdict = StorageVerdict()
    if disks is None:
        return verdict
    warned = set(memory.get(WARNED_KEY, [])) if memory is not None else set()
    still_full: set[str] = set()
    told: set[str] = set()  # entries a problem or a note already names
    values: list[DiskValues] = []
    for d in disks:
        name = label(d)
        ok: bool | None = True
        before = len(verdict.problems) + len(verdict.notes)
        if d.status == DiskStatus.FAILED:
            ok = False
            word = "離線" if d.kind == StorageKind.NAS else "故障"
            msg = f"{name}{_sp(name)}{word}" + (f"（{d.raw_status}）" if d.raw_status else "")
            verdict.problems.append(msg)
            verdict.findings.append(Finding(FindingCode.DISK_FAILED, msg, subject=f"disk-{d.id}"))
        elif d.status == DiskStatus.WARNING:
            # Still recording; a failed disk under it raises its own alert.
            verdict.notes.append(f"{name}{_sp(name)}狀態：{d.raw_status or '警告'}")
        if ok and is_full(d, disk_full_pct):
            still_full.add(d.id)
            if overwrite is True:
                verdict.notes.append(
                    f"{name}{_sp(name)}已滿（{_space(d)}；循環覆寫最舊錄影，屬正常）"
                )
            elif overwrite is False:
                ok = False
                msg = f"{name}{_sp(name)}空間不足（{_space(d)}）"
                verdict.problems.append(msg)
                verdict.findings.append(Finding(FindingCode.DISK_FULL, msg, subject=f"disk-{d.id}"))
            elif d.id in warned:
                verdict.notes.append(
                    f"{name}{_sp(name)}已滿（{_space(d)}；無法確認是否循環覆寫，已提醒）"
                )
            else:
                msg = f"{name}{_sp(name)}已滿（{_space(d)}），無法確認是否循環覆寫最舊錄影"
                verdict.notes.append(msg)
                verdict.findings.append(
                    Finding(FindingCode.DISK_FULL_OVERWRITE_UNKNOWN, msg, subject=f"disk-{d.id}")
                )
        if len(verdict.problems) + len(verdict.notes) > before:
            told.add(d.id)
        if d.status == DiskStatus.UNKNOWN and ok:
            ok = None
        values.append(
            DiskValues(
                id=d.id,
                ok=ok,
                free_bytes=None if d.kind == StorageKind.POOL else d.free_bytes,
                capacity_bytes=d.capacity_bytes,
                kind=d.kind.value,
                name=d.name,
                temperature_c=d.temperature_c,
            )
        )
    if memory is not None:
        # Said once per stretch of fullness: a disk that was freed and fills again is
        # reported again.
        kept = sorted(
            warned & still_full
            | {
                f.subject.removeprefix("disk-")
                for f in verdict.findings
                if f.code == FindingCode.DISK_FULL_OVERWRITE_UNKNOWN and f.subject
            }
        )
        if kept:
            memory[WARNED_KEY] = kept
        else:
            memory.pop(WARNED_KEY, None)
    verdict.values = tuple(values)
    verdict.summary = summary([d for d in disks if d.id not in told])
    return verdict


def summary(disks: Sequence[Disk]) -> str:
    """The healthy storage in a few words, as the storage page shows it: 「硬碟 2 顆正常；
    儲存空間 1（/volume1）已用 2%（5.9 TB 中剩 5.8 TB）」."""
    parts: list[str] = []
    plain = [d for d in disks if d.kind == StorageKind.DISK and d.capacity_bytes is None]
    sized = [d for d in disks if d not in plain and d.kind != StorageKind.POOL]
    pools = [d for d in disks if d.kind == StorageKind.POOL]
    if plain:
        ok = sum(1 for d in plain if d.status == DiskStatus.OK)
        parts.append(f"硬碟 {len(plain)} 顆" + ("正常" if ok == len(plain) else f"（{ok} 顆正常）"))
    for d in sized:
        pct = free_pct(d)
        used = f"已用 {100 - pct:.0f}%" if pct is not None else "容量"
        parts.append(
            f"{label(d)}{_sp(label(d))}{used}"
            f"（{fmt_bytes(d.capacity_bytes)} 中剩 {fmt_bytes(d.free_bytes)}）"
            if d.free_bytes is not None
            else f"{label(d)}{_sp(label(d))}{fmt_bytes(d.capacity_bytes)}"
        )
    for d in pools:
        word = "正常" if d.status == DiskStatus.OK else d.raw_status or "?"
        parts.append(f"{label(d)}{_sp(label(d))}{word}")
    return "；".join(parts)
