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
