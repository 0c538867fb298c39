"""The driver table (probes/drivers/table.py) is complete and says the truth: every
protocol a custodian may list has a driver, every driver a simulator that speaks it,
every ability a driver declares is one its session answers, and the URL conventions
of a vendor's driver are the ones the simulated devices serve.

Adding a vendor (docs/extending.md) is caught here when a piece is missing.
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import pytest

from inventory.models import Protocol, Vendor
from probes.context import ProbeContext, target_of
from probes.drivers.base import Ability, DeviceLink, Driver, DriverSession
from probes.drivers.table import DRIVERS, driver_named, drivers_for
from probes.reasons import ReasonCode

ROOT = Path(__file__).resolve().parents[1]

# Each ability and the session method that answers it (frames come from the driver's
# `media` conventions or its `frame_uris`).
METHOD = {
    Ability.DEVICE_INFO: "device_info",
    Ability.CLOCK: "clock",
    Ability.UPTIME: "uptime",
    Ability.SIGNALS: "signals",
    Ability.DISKS: "disks",
    Ability.OVERWRITE: "overwrite",
    Ability.RECORDINGS: "recordings",
}


def test_every_protocol_has_its_driver() -> None:
    assert set(DRIVERS) == set(Protocol)
    for protocol, driver in DRIVERS.items():
        assert driver.protocol == protocol, driver.name
    names = [d.name for d in DRIVERS.values()]
    assert len(set(names)) == len(names)
    assert all(driver_named(n) is DRIVERS[d.protocol] for n, d in zip(names, DRIVERS.values(),
                                                                      strict=True))


@pytest.mark.parametrize("driver", DRIVERS.values(), ids=lambda d: d.name)
def test_every_driver_has_a_simulator(driver: object) -> None:
    name = driver.name  # type: ignore[attr-defined]
    assert (ROOT / "simulator" / f"{name}.py").is_file(), f"simulator/{name}.py is missing"
    assert importlib.util.find_spec(f"simulator.{name}") is not None


@pytest.mark.parametrize("driver", DRIVERS.values(), ids=lambda d: d.name)
def test_every_declared_ability_is_answered(driver: object) -> None:
    """A session class overrides the method of each ability its driver declares (the
    base class answers every ability with "no driver")."""
    from simulator.testing import small_campus

    inv = small_campus(None, set_env=False, seed=3).inventory
    rec = next(iter(inv.recorders.values()))
    ctx = ProbeContext(inv, secrets=_NoSecrets())
    target = target_of(rec.id, ctx)
    assert target is not None
    session = driver.session(DeviceLink(target, ctx, None))  # type: ignore[attr-defined]
    for ability in driver.abilities:  # type: ignore[attr-defined]
        if ability == Ability.FRAMES:
            # a source known by convention, one the device is asked for, or the reader
            asks = type(driver).frame_uris is not Driver.frame_uris
            reads = callable(getattr(driver, "read_frame", None))
            assert driver.media is not None or asks or reads, driver.name  # type: ignore[attr-defined]
            continue
        method = METHOD[ability]
        mine = getattr(type(session), method)
        assert mine is not getattr(DriverSession, method), (driver.name, ability)  # type: ignore[attr-defined]
        assert inspect.iscoroutinefunction(mine)


class _NoSecrets:
    def resolve(self, ref: str) -> str:
        raise AssertionError("no secret is resolved here")


def test_vendor_conventions_are_what_the_simulator_serves() -> None:
    from simulator.model import DeviceKind, SimDevice, vendor_media
    from simulator.server import VENDOR_APIS

    with_media = [d for d in DRIVERS.values() if d.media is not None]
    # a vendor's API names its URL conventions; the standard protocols have none (read
    # off the table, so that a vendor added as docs/extending.md says needs no edit here)
    assert {d.vendor for d in with_media} == {d.vendor for d in DRIVERS.values() if d.vendor}
    assert {Vendor.HIKVISION, Vendor.DAHUA} <= {d.vendor for d in with_media}
    for d in with_media:
        assert d.vendor is not None and d.media is not None
        assert vendor_media(d.vendor) is d.media
        assert VENDOR_APIS[d.vendor][1] == f"simulator.{d.name}"  # its API is served
        dev = SimDevice("r", DeviceKind.RECORDER, d.vendor)
        assert dev.rtsp_path(7) == d.media.stream_path(7)
        assert dev.rtsp_path(7, sub=True) == d.media.stream_path(7, sub=True)
        path = d.media.snapshot_path(12)
        assert path is not None and d.media.snapshot_channel(path) == 12
        assert d.media.snapshot_channel("/somewhere/else") is None


@pytest.mark.parametrize(
    "driver", [d for d in DRIVERS.values() if d.vendor is not None and d.http],
    ids=lambda d: d.name,
)
def test_every_vendor_api_is_served_by_its_simulator_module(driver: Driver) -> None:
    """A vendor API's simulator module is routed (a line in VENDOR_APIS, whether or not
    the driver has URL conventions) and answers (`async def handle(request, dev)`): a
    file of that name alone is no simulator."""
    from simulator.server import VENDOR_APIS

    assert driver.vendor in VENDOR_APIS, f"simulator/server.py VENDOR_APIS lacks {driver.vendor}"
    prefix, module = VENDOR_APIS[driver.vendor]
    assert module == f"simulator.{driver.name}" and prefix.startswith("/")
    handle = getattr(importlib.import_module(module), "handle", None)
    assert handle is not None and inspect.iscoroutinefunction(handle), module


def test_preference_order_is_the_tables() -> None:
    got = [d.protocol for d in drivers_for([Protocol.SNMP, Protocol.ISAPI, Protocol.ONVIF])]
    assert got == [Protocol.ONVIF, Protocol.ISAPI, Protocol.SNMP]


def test_final_reason_codes() -> None:
    final = {c for c in ReasonCode if c.final}
    assert final == {
        ReasonCode.TIMEOUT,
        ReasonCode.UNREACHABLE,
        ReasonCode.AUTH,
        ReasonCode.TLS,
        ReasonCode.TOO_LARGE,
        ReasonCode.UNSAFE_XML,
        ReasonCode.REDIRECT_REFUSED,
    }
    # an endpoint the device does not offer or forbids, and an ability no driver has,
    # are not the device failing: the next driver is asked
    for code in (ReasonCode.NOT_SUPPORTED, ReasonCode.FORBIDDEN, ReasonCode.NO_DRIVER):
        assert not code.final
