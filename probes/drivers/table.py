"""The table from protocol to driver, in order of preference.

The checks ask the drivers of a device's listed protocols in this order for what they
still miss (probes.gather); the picture check takes its frame sources from them
(probes.drivers.frames). Adding a protocol or a vendor API is one driver module and one
line here (docs/extending.md); tests/test_drivers_table.py checks that every protocol
has a driver and every driver a simulator.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from inventory.models import Protocol
from probes.drivers.base import Driver
from probes.drivers.dahua import DahuaDriver
from probes.drivers.isapi import IsapiDriver
from probes.drivers.onvif import OnvifDriver
from probes.drivers.rtsp import RtspDriver
from probes.drivers.snmp import SnmpDriver

# Preference: ONVIF first (the standard, and its clock needs no login), then the
# vendor APIs (uptime, signals, disks, recorded spans ONVIF does not give), SNMP for
# what is still missing, RTSP only for frames.
DRIVERS: Mapping[Protocol, Driver] = {
    Protocol.ONVIF: OnvifDriver(),
    Protocol.ISAPI: IsapiDriver(),
    Protocol.DAHUA: DahuaDriver(),
    Protocol.SNMP: SnmpDriver(),
    Protocol.RTSP: RtspDriver(),
}


def drivers_for(protocols: Iterable[Protocol]) -> list[Driver]:
    """The drivers of these protocols, in order of preference."""
    listed = set(protocols)
    return [d for p, d in DRIVERS.items() if p in listed]


def driver_named(name: str) -> Driver | None:
    return next((d for d in DRIVERS.values() if d.name == name), None)
