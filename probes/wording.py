"""How the checks word what they found, so that every reason reads alike."""

from __future__ import annotations

from inventory.models import Camera


def fmt_duration(seconds: float) -> str:
    """A duration as a custodian reads it: 45 秒, 12 分鐘, 3 小時, 40 天."""
    s = abs(seconds)
    if s < 120:
        return f"{int(s)} 秒"
    if s < 7200:
        return f"{round(s / 60)} 分鐘"
    if s < 172800:
        return f"{round(s / 3600)} 小時"
    return f"{int(s // 86400)} 天"


def channel_label(cam: Camera) -> str:
    """「第 5 路（教學大樓1樓走廊東側）」"""
    return f"第 {cam.channel} 路（{cam.position}）"


def fmt_bytes(n: int | float | None) -> str:
    """A size as the label on the disk and the vendor's web page print it: decimal
    units (a 6 TB disk is 「6.0 TB」, not 5589 GiB called GB)."""
    if n is None:
        return "?"
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


# How a custodian names each kind of storage (probes.facts.StorageKind values).
STORAGE_WORDS = {
    "disk": "硬碟",
    "pool": "儲存集區",
    "volume": "儲存空間",
    "card": "記憶卡",
    "nas": "網路儲存",
}


def storage_label(disk_id: str, kind: str | None = None) -> str:
    """「硬碟 1」, 「儲存空間 1」, 「儲存集區 1」, 「記憶卡 1」 from a disk's id as the
    checks number them ("1", "volume-1", "pool-1", "card-1", "nas-9")."""
    if kind is None:
        prefix, sep, rest = disk_id.partition("-")
        kind, disk_id = (prefix, rest) if sep and prefix in STORAGE_WORDS else ("disk", disk_id)
    else:
        prefix, sep, rest = disk_id.partition("-")
        if sep and prefix == kind:
            disk_id = rest
    return f"{STORAGE_WORDS.get(kind, '硬碟')} {disk_id}"
