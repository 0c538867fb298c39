"""The figures a check measured, typed: what the exporters, the log and the sheet read.

One class per check — `HostValues`, `RecordingValues` (with a list of `DiskValues`),
`PictureValues` — instead of string keys that probes and readers had to keep in step.
A field a check did not measure is None.

Stored and served as JSON (`to_json`: the fields that are set, disks as a list);
`from_json` reads that back, and also the rows the log held before values were typed
(flat `disk.<id>.<field>` keys next to a disk count), so a restart loses nothing.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")
NONE = type(None)
JSON = dict[str, Any]


def _number(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _int(v: object) -> int | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return int(v) if math.isfinite(v) else None


def _bool(v: object) -> bool | None:
    return v if isinstance(v, bool) else None


def _str(v: object) -> str | None:
    return v if isinstance(v, str) else None


_READ = {"float": _number, "int": _int, "bool": _bool, "str": _str}


class _Values:
    """Plain JSON in and out, by the fields' declared types (float, int, bool, str)."""

    __slots__ = ()
    _kinds: ClassVar[dict[str, str]] = {}

    def to_json(self) -> JSON:
        out: JSON = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if v is not None:
                out[f.name] = v
        return out

    @classmethod
    def _read(cls, doc: Mapping[str, Any]) -> dict[str, Any]:
        kw: dict[str, Any] = {}
        for name, kind in cls._kinds.items():
            if name in doc:
                kw[name] = _READ[kind](doc[name])
        return kw


def _kinds(cls: type[T]) -> type[T]:
    """Record each plain field's JSON kind from its annotation (`float | None` →
    float); other fields (the disks) are read by the class itself."""
    hints = typing.get_type_hints(cls)
    kinds: dict[str, str] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        plain = [t for t in typing.get_args(hints[f.name]) or (hints[f.name],) if t is not NONE]
        if len(plain) == 1 and plain[0] in (float, int, bool, str):
            kinds[f.name] = plain[0].__name__
    cls._kinds = kinds  # type: ignore[attr-defined]
    return cls


@_kinds
@dataclass(frozen=True, slots=True)
class DiskValues(_Values):
    """One storage entry: a disk, a storage pool, a volume, a memory card or a network
    share (`kind`, probes.facts.StorageKind); `id` is how metrics and alerts name it
    ("1", "pool-1", "volume-1", "card-1")."""

    id: str
    ok: bool | None = None  # None: the device gave no status
    free_bytes: int | None = None
    capacity_bytes: int | None = None
    kind: str | None = None  # None: a disk (rows stored before kinds were told apart)
    name: str | None = None  # the device's own name for it ("Disk 1", "/volume1", "hdd1")
    temperature_c: float | None = None

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> DiskValues | None:
        kw = cls._read(doc)
        disk_id = doc.get("id")
        if not isinstance(disk_id, str | int) or isinstance(disk_id, bool):
            return None
        kw["id"] = str(disk_id)
        return cls(**kw)


@_kinds
@dataclass(frozen=True, slots=True)
class HostValues(_Values):
    """監視主機是否正常運作: a recorder or an IP camera asked directly, or (signal,
    recorder) for a camera channel its recorder answered for."""

    up: bool | None = None
    uptime_s: float | None = None
    clock_offset_s: float | None = None  # device clock - camwatch clock
    model: str | None = None
    firmware: str | None = None
    serial: str | None = None
    signal: bool | None = None  # video signal on the camera's recorder channel
    recorder: str | None = None  # the recorder that answered for the channel
    device_status: str | None = None  # the device's own verdict, in its words
    disks: tuple[DiskValues, ...] | None = None  # an IP camera's memory card / NAS

    def disk(self, disk_id: str) -> DiskValues | None:
        return next((d for d in self.disks or () if d.id == disk_id), None)

    def to_json(self) -> JSON:
        out = super(HostValues, self).to_json()
        if self.disks is not None:
            out["disks"] = [d.to_json() for d in self.disks]
        return out

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> HostValues:
        kw = cls._read(doc)
        disks = _disks_json(doc.get("disks"))
        if disks is not None:
            kw["disks"] = disks
        return cls(**kw)


@_kinds
@dataclass(frozen=True, slots=True)
class RecordingValues(_Values):
    """錄影監材是否正常運轉: the recorder (disks, retention, channel counts) or one of its
    camera channels (channel, recording, newest footage, gaps)."""

    disks: tuple[DiskValues, ...] | None = None  # None: no source told us
    retention_days: float | None = None  # the channel keeping least
    retention_max_days: float | None = None  # the channel keeping most
    legal_hold: bool | None = None
    newest_age_s: float | None = None  # a channel's; the recorder's oldest of them
    channels_recording: int | None = None
    channels_failing: int | None = None
    channels_unknown: int | None = None
    channel: int | None = None
    recording: bool | None = None
    gaps_24h: int | None = None
    gap_s_24h: float | None = None

    def disk(self, disk_id: str) -> DiskValues | None:
        return next((d for d in self.disks or () if d.id == disk_id), None)

    def to_json(self) -> JSON:
        out = super(RecordingValues, self).to_json()
        if self.disks is not None:
            out["disks"] = [d.to_json() for d in self.disks]
        return out

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RecordingValues:
        kw = cls._read(doc)
        raw = doc.get("disks")
        disks = _disks_json(raw)
        if disks is not None:
            kw["disks"] = disks
        elif isinstance(raw, int) and not isinstance(raw, bool):
            kw["disks"] = _legacy_disks(doc)
        return cls(**kw)


def _disks_json(raw: object) -> tuple[DiskValues, ...] | None:
    if not isinstance(raw, list):
        return None
    found = [DiskValues.from_json(d) for d in raw if isinstance(d, Mapping)]
    return tuple(d for d in found if d is not None)


def _legacy_disks(doc: Mapping[str, Any]) -> tuple[DiskValues, ...]:
    """Disks of a row written before values were typed: a count under "disks" and
    "disk.<id>.ok", "disk.<id>.free_bytes", "disk.<id>.capacity_bytes"."""
    fields: dict[str, dict[str, Any]] = {}
    for key, value in doc.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "disk" and parts[1]:
            fields.setdefault(parts[1], {})[parts[2]] = value
    found = [DiskValues.from_json({**f, "id": disk_id}) for disk_id, f in fields.items()]
    return tuple(d for d in found if d is not None)


@_kinds
@dataclass(frozen=True, slots=True)
class PictureValues(_Values):
    """視訊畫面是否清晰: the figures of the frame scored, and the verdict."""

    sharpness: float | None = None  # variance of the Laplacian
    brightness: float | None = None  # 0..255
    contrast: float | None = None
    hf_ratio: float | None = None
    colourfulness: float | None = None
    mode: str | None = None  # day | night
    baseline_sharpness: float | None = None
    verdict: str | None = None  # probes.scoring.Verdict
    similarity: float | None = None  # to the reference view, 1 = same
    learning: bool | None = None  # the baseline of this mode is still being learned
    # why it is still learning: the verdict of the last sample one look refused to learn
    learning_refused: str | None = None
    structure: float | None = None  # share of the picture with coarse structure
    fine_detail: float | None = None  # fine / coarse detail (one-look blur figure)
    detail_kept: float | None = None  # share of the baseline's detail the view kept
    view_matching: float | None = None  # share of the stable background still matching
    reference: str | None = None  # the baseline is an installer's reference view (its name)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> PictureValues:
        return cls(**cls._read(doc))


CheckValues = HostValues | RecordingValues | PictureValues


def values_json(values: CheckValues | None) -> JSON:
    """The values as stored and served ({} for none)."""
    return values.to_json() if values is not None else {}
