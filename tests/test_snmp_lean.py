"""The lean v2c codec (CAMWATCH_SNMP_CODEC=lean): its requests decoded by pysnmp's own
BER decoder, pysnmp-encoded replies decoded by it, garbage never escaping as anything
but ValueError, and the same readings as the pysnmp path from the simulated agent and
from Debian's snmpd."""

from __future__ import annotations

import contextlib
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import rfc1902, rfc1905
from pysnmp.proto.api import v2c

from inventory.models import Vendor
from probes.drivers.snmp import (
    SnmpErrorKind,
    SnmpTarget,
    V2c,
    lean_request,
    lean_response,
    read_host,
    read_recorder,
)
from simulator.model import DeviceKind, Disk, FaultKind, SimDevice
from simulator.snmp import start_snmp_agents
from tests.waits import LATE_S, NOT_UNDER_TEST_S

oids = st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=12).map(
    lambda arcs: "1.3." + ".".join(str(a) for a in arcs)
)


@given(oid_list=st.lists(oids, min_size=1, max_size=8), rid=st.integers(0, 2**31 - 1))
@settings(max_examples=60, deadline=None)
def test_requests_decode_with_pysnmp(oid_list: list[str], rid: int) -> None:
    for tag, pdu_type, a, b in (
        (0xA0, v2c.GetRequestPDU, 0, 0),
        (0xA5, v2c.GetBulkRequestPDU, 2, 7),
    ):
        packet = lean_request("public-xyz", rid, tag, oid_list, a, b)
        msg, rest = decoder.decode(packet, asn1Spec=v2c.Message())
        assert rest == b""
        assert str(v2c.apiMessage.get_community(msg)) == "public-xyz"
        pdu = v2c.apiMessage.get_pdu(msg)
        assert pdu.tagSet == pdu_type.tagSet
        assert int(v2c.apiPDU.get_request_id(pdu)) == rid
        assert [str(o) for o, _v in v2c.apiPDU.get_varbinds(pdu)] == oid_list
        if tag == 0xA5:
            assert int(v2c.apiBulkPDU.get_non_repeaters(pdu)) == 2
            assert int(v2c.apiBulkPDU.get_max_repetitions(pdu)) == 7


values = st.one_of(
    st.integers(-(2**31), 2**31 - 1).map(lambda n: (rfc1902.Integer32(n), n)),
    st.integers(0, 2**32 - 1).map(lambda n: (rfc1902.Counter32(n), n)),
    st.integers(0, 2**32 - 1).map(lambda n: (rfc1902.TimeTicks(n), n)),
    st.integers(0, 2**64 - 1).map(lambda n: (rfc1902.Counter64(n), n)),
    st.text(max_size=300).map(lambda t: (rfc1902.OctetString(t.encode()), t)),
    oids.map(lambda o: (rfc1902.ObjectIdentifier(o), o)),
    st.just((rfc1905.noSuchInstance, None)),
    st.just((rfc1905.endOfMibView, None)),
)


@given(
    varbinds=st.lists(st.tuples(oids, values), max_size=40),
    rid=st.integers(0, 2**31 - 1),
    status=st.integers(0, 5),
)
@settings(max_examples=80, deadline=None)
def test_replies_encoded_by_pysnmp_decode(varbinds, rid: int, status: int) -> None:
    pdu = v2c.ResponsePDU()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_request_id(pdu, rid)
    v2c.apiPDU.set_error_status(pdu, status)
    v2c.apiPDU.set_varbinds(pdu, [(rfc1902.ObjectName(o), val) for o, (val, _p) in varbinds])
    msg = v2c.Message()
    v2c.apiMessage.set_defaults(msg)
    v2c.apiMessage.set_community(msg, "c0mm")
    v2c.apiMessage.set_pdu(msg, pdu)
    community, got_rid, got_status, got = lean_response(encoder.encode(msg))
    assert (community, got_rid, got_status) == ("c0mm", rid, status)
    assert got == [(o, plain) for o, (_val, plain) in varbinds]


@given(st.binary(max_size=200))
@settings(max_examples=300, deadline=None)
def test_garbage_is_only_ever_a_value_error(data: bytes) -> None:
    with contextlib.suppress(ValueError):
        lean_response(data)


def test_truncated_real_reply_is_a_value_error() -> None:
    pdu = v2c.ResponsePDU()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_varbinds(
        pdu, [(rfc1902.ObjectName("1.3.6.1.2.1.1.5.0"), rfc1902.OctetString(b"nvr"))]
    )
    msg = v2c.Message()
    v2c.apiMessage.set_defaults(msg)
    v2c.apiMessage.set_community(msg, "c")
    v2c.apiMessage.set_pdu(msg, pdu)
    whole = encoder.encode(msg)
    assert lean_response(whole)[3] == [("1.3.6.1.2.1.1.5.0", "nvr")]
    for cut in range(1, len(whole)):
        with pytest.raises(ValueError):
            lean_response(whole[:cut])


@pytest.mark.parametrize(
    "vendor", [Vendor.HIKVISION, Vendor.DAHUA, Vendor.SYNOLOGY, Vendor.GENERIC]
)
async def test_lean_and_pysnmp_read_the_same(vendor: Vendor) -> None:
    community = "c" + "".join(random.choices("abcdefgh", k=8))
    host = f"127.{random.randint(32, 250)}.{random.randint(0, 255)}.{random.randint(2, 254)}"
    dev = SimDevice(
        id=f"nvr-{vendor.value}",
        kind=DeviceKind.RECORDER,
        vendor=vendor,
        host=host,
        snmp_port=0,
        snmp_community=community,
        disks=[Disk(1, 4_000_787_030_016, 10**12), Disk(2, 2_000_398_934_016, 0, "full")],
    )
    dev.apply_fault(FaultKind.DISK_FAILED, 1)
    agents = await start_snmp_agents([dev])
    try:
        h, p = agents.addresses[dev.id]
        readings = {}
        for codec in ("pysnmp", "lean"):
            target = SnmpTarget(h, p, V2c(community), timeout=NOT_UNDER_TEST_S, retries=0,
                                codec=codec)
            r = await read_recorder(target, vendor.value)
            assert r.ok, (codec, r.error)
            readings[codec] = r
        a, b = readings["pysnmp"], readings["lean"]
        assert a.storage == b.storage and a.disks == b.disks
        assert a.missing_tables == b.missing_tables
        assert a.system is not None and b.system is not None
        assert (a.system.name, a.system.descr, a.system.object_id) == (
            b.system.name,
            b.system.descr,
            b.system.object_id,
        )
        started = time.monotonic()
        bad = await read_host(SnmpTarget(h, p, V2c("nope"), timeout=0.5, retries=1, codec="lean"))
        assert bad.error is not None and bad.error.kind == SnmpErrorKind.TIMEOUT
        assert "SNMP 無回應" in bad.error.reason and "nope" not in bad.error.reason
        took = time.monotonic() - started
        assert 2 * 0.5 <= took < 2 * 0.5 + LATE_S, took  # two tries of 0.5 s, then it gives up
    finally:
        await agents.stop()
