"""The one entry point the scheduler calls: `probe(check, device_id, ctx)`.

Like blackbox_exporter's prober table: each check is a function with one signature, looked
up in a table; the scheduler owns timeouts, retries and concurrency. A probe function
returns results (a recorder's recording check also returns one result per camera channel)
and must never raise: a misbehaving device becomes `unknown` or `fail` with a reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from camwatch.secrets import SecretStore
from inventory.models import CameraKind, Inventory
from probes.result import CheckKind, CheckResult


@dataclass(frozen=True)
class ProbeConfig:
    timeout: float = 10.0
    clock_drift_max_s: float = 30.0
    footage_max_age_s: float = 600.0
    disk_full_pct: float = 95.0
    # Hosts a device may redirect us to, or name in a snapshot/stream URI, beyond the
    # hosts the inventory names (hostile-device protection).
    allowed_redirect_hosts: tuple[str, ...] = ()
    max_body_bytes: int = 8 * 1024 * 1024
    max_frame_pixels: int = 4096 * 2160 * 2


@dataclass
class DeviceMemory:
    """What probes remember between runs: last uptime, firmware, serial, picture
    baselines. Plain JSON-able data so the store can persist it across restarts."""

    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)

    def fact(self, device: str) -> dict[str, Any]:
        return self.facts.setdefault(device, {})


@dataclass
class ProbeContext:
    inventory: Inventory
    secrets: SecretStore
    config: ProbeConfig = field(default_factory=ProbeConfig)
    memory: DeviceMemory = field(default_factory=DeviceMemory)
    now: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))


ProbeFn = Callable[[str, ProbeContext], Awaitable[list[CheckResult]]]


def planned_checks(inventory: Inventory) -> list[tuple[CheckKind, str]]:
    """Which check runs on which device.

    Recorders: host and recording (the recording check also answers for each camera
    channel). IP cameras with an address: host (probed directly) and picture. Analog
    cameras and IP cameras without an address: picture through their recorder; their
    host answer comes from the recorder's host check (channel signal).
    """
    plan: list[tuple[CheckKind, str]] = []
    for rec_id in inventory.recorders:
        plan.append((CheckKind.HOST, rec_id))
        plan.append((CheckKind.RECORDING, rec_id))
    for cam in inventory.cameras.values():
        if cam.kind == CameraKind.IP and cam.address is not None:
            plan.append((CheckKind.HOST, cam.id))
        plan.append((CheckKind.PICTURE, cam.id))
    return plan


def recorder_of(inventory: Inventory, device_id: str) -> str:
    """The recorder a probe of this device loads (for the per-recorder limit)."""
    if device_id in inventory.recorders:
        return device_id
    return inventory.cameras[device_id].recorder


def _table() -> dict[CheckKind, ProbeFn]:
    # Imported here so that importing the API does not pull in OpenCV or zeep.
    from probes.host import probe_host
    from probes.picture import probe_picture
    from probes.recording import probe_recording

    return {
        CheckKind.HOST: probe_host,
        CheckKind.RECORDING: probe_recording,
        CheckKind.PICTURE: probe_picture,
    }


_PROBES: dict[CheckKind, ProbeFn] | None = None


async def probe(check: CheckKind, device_id: str, ctx: ProbeContext) -> list[CheckResult]:
    global _PROBES
    if _PROBES is None:
        _PROBES = _table()
    return await _PROBES[check](device_id, ctx)
