"""Typed check values (probes/values.py) as they are stored and served: JSON that reads
back to the same values, a field left out when not measured, and tolerance of what a
hand-edited or older document holds."""

from __future__ import annotations

import json
import math

import pytest

from probes.result import CheckKind, CheckResult, Status, utcnow, values_from_json
from probes.values import DiskValues, HostValues, PictureValues, RecordingValues, values_json

SAMPLES = [
    (CheckKind.HOST, HostValues(up=True, uptime_s=86400.0, clock_offset_s=-1.5, model="M",
                                firmware="V4.30 build 1", serial="S1")),
    (CheckKind.HOST, HostValues(signal=False, recorder="nvr-1")),
    (CheckKind.RECORDING, RecordingValues(
        disks=(DiskValues("1", ok=True, free_bytes=10**12, capacity_bytes=4 * 10**12),
               DiskValues("2", ok=None)),
        retention_days=31.25, retention_max_days=40.0, legal_hold=False, newest_age_s=3.5,
        channels_recording=7, channels_failing=1, channels_unknown=0)),
    (CheckKind.RECORDING, RecordingValues(channel=5, recording=True, newest_age_s=2.0,
                                          gaps_24h=1, gap_s_24h=1800.0)),
    (CheckKind.RECORDING, RecordingValues(disks=())),  # a recorder that told of no disk
    (CheckKind.PICTURE, PictureValues(sharpness=412.5, brightness=120.0, contrast=40.1,
                                      hf_ratio=0.12, colourfulness=8.0, mode="night",
                                      baseline_sharpness=400.0, verdict="clear",
                                      similarity=0.97, learning=False)),
]


@pytest.mark.parametrize(("check", "values"), SAMPLES)
def test_values_read_back_from_their_json(check: CheckKind, values: object) -> None:
    doc = json.loads(json.dumps(values_json(values)))  # type: ignore[arg-type]
    assert values_from_json(check, doc) == values
    result = CheckResult("d", check, Status.OK, "", utcnow(), values)  # type: ignore[arg-type]
    assert result.to_json()["values"] == doc


def test_unmeasured_fields_are_left_out_and_nothing_is_no_values() -> None:
    assert HostValues(up=False).to_json() == {"up": False}
    assert values_json(None) == {}
    assert values_from_json(CheckKind.PICTURE, {}) is None
    assert values_from_json(CheckKind.HOST, None) is None
    assert RecordingValues().to_json() == {}  # disks None: no source told of disks


def test_wrong_types_and_unknown_keys_are_dropped_not_guessed() -> None:
    doc = {"uptime_s": "12", "up": 1, "model": 7, "clock_offset_s": math.inf,
           "banner": "x", "serial": "S9"}
    assert values_from_json(CheckKind.HOST, doc) == HostValues(serial="S9")
    rec = values_from_json(CheckKind.RECORDING, {"disks": [{"id": 3, "ok": "yes"}, {"ok": True},
                                                           "junk"]})
    assert rec == RecordingValues(disks=(DiskValues("3"),))


def test_disk_lookup_by_id() -> None:
    v = SAMPLES[2][1]
    assert isinstance(v, RecordingValues)
    assert v.disk("2") == DiskValues("2") and v.disk("9") is None
