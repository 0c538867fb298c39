"""The one entry point the scheduler calls: `probe(check, device_id, ctx)`.

Like blackbox_exporter's prober table: each check is a `ProbeFn` (probes.context) with
one signature, looked up in a table; the scheduler owns the deadline (`ctx.deadline`),
retries and concurrency. A probe function returns results (a recorder's recording
check also returns one result per camera channel) and never raises: a misbehaving
device becomes `unknown` or `fail` with a reason.
"""

from __future__ import annotations

import logging

from inventory.models import CameraKind, Inventory
from probes.context import DeviceMemory, ProbeConfig, ProbeContext, ProbeFn
from probes.result import CheckKind, CheckResult

log = logging.getLogger("camwatch.probes")

__all__ = [
    "DeviceMemory",
    "ProbeConfig",
    "ProbeContext",
    "ProbeFn",
    "planned_checks",
    "prepare",
    "probe",
    "recorder_of",
]


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


async def prepare(inventory: Inventory) -> None:
    """The drivers' once-per-process work for the protocols this inventory uses (the
    ONVIF WSDLs), done before the first probe's deadline starts."""
    from probes.drivers.table import drivers_for

    used = {p for r in inventory.recorders.values() for p in r.protocols}
    used |= {p for c in inventory.cameras.values() for p in c.protocols}
    for driver in drivers_for(used):
        try:
            await driver.prepare()
        except Exception as exc:  # the checks try again, and say why if it still fails
            log.warning("driver set-up failed",
                        extra={"fields": {"driver": driver.name, "error": type(exc).__name__}})
