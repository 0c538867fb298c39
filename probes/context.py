"""What every probe is given: the configuration, the device memory, the context of one
run (its deadline), the device to reach and its login — and the one wrapper that makes
a check never raise.

Like blackbox_exporter's `ProbeFn(ctx, target, module, registry, logger)`: every check
is a `ProbeFn(device_id, ctx)`; the scheduler owns the deadline and passes it in
`ctx.deadline`, and `check_probe` is the only place that turns a bug into an answer.
Nothing here imports the service (camwatch/) or an output (exporters/): the service
hands in what probes need, e.g. a `SecretResolver`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
import logging
import time
import zlib
import zoneinfo
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from inventory.models import Address, Camera, Credentials, Inventory, Recorder
from inventory.models import Protocol as DeviceProtocol
from probes.result import CheckKind, CheckResult, ResultFactory, Status

log = logging.getLogger("camwatch.probes")


# ---- secrets ------------------------------------------------------------------------


class SecretError(Exception):
    """A credential reference that cannot be resolved; the message holds no secret."""


class SecretResolver(Protocol):
    """Resolves a credential reference (`${ENV}`, `secret:KEY`) at the moment it is
    needed; raises SecretError. The service's SecretStore is one."""

    def resolve(self, ref: str) -> str: ...


# ---- configuration and memory -------------------------------------------------------


@dataclass(frozen=True)
class ProbeConfig:
    timeout: float = 10.0
    clock_drift_max_s: float = 30.0
    footage_max_age_s: float = 600.0
    # How often the host check re-reads a device's model, firmware, serial and uptime
    # (and so proves the login); the checks between ask only its clock. 0: every check.
    host_facts_every_s: float = 300.0
    disk_full_pct: float = 95.0
    # Hosts a device may redirect us to, or name in a snapshot/stream URI, beyond the
    # hosts the inventory names (hostile-device protection).
    allowed_redirect_hosts: tuple[str, ...] = ()
    max_body_bytes: int = 8 * 1024 * 1024
    max_frame_pixels: int = 4096 * 2160 * 2


def _plain(value: Any) -> Any:
    """What json.dumps cannot write: a numpy number as its value, anything else as text."""
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


class JsonValues(MutableMapping[str, dict[str, Any]]):
    """A mapping that keeps each value as its JSON text, zlib-compressed ("packed"), and
    decodes it when read.

    For the picture baselines: a camera's is a tree of small dicts, floats and packed
    strings, 6.1 kB as Python objects once learned and 16.6 kB while learning; as JSON
    2.8 and 10 kB, compressed 1.5 and 4.8 kB. It is read and written once per picture
    check (every 5 minutes), so packing costs ~0.1-0.2 ms a check (of a check's ~10 ms)
    and spares ~45 MB per 10,000 learned cameras, ~120 MB while they learn, in every
    process that holds them. Handing them to a worker and back moves the packed bytes
    as they are; the store keeps them as text (`as_text`)."""

    __slots__ = ("_packed",)

    def __init__(self, values: Mapping[str, dict[str, Any]] | None = None) -> None:
        self._packed: dict[str, bytes] = {}
        if values:
            self.update(values)

    @staticmethod
    def pack(value: dict[str, Any]) -> bytes:
        text = json.dumps(value, separators=(",", ":"), default=_plain)
        return zlib.compress(text.encode(), 6)

    @staticmethod
    def unpack(packed: bytes) -> dict[str, Any]:
        value = json.loads(zlib.decompress(packed))
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
        return value

    @staticmethod
    def as_text(packed: bytes) -> str:
        """Packed bytes as the store keeps them (JSON has no bytes): "z:" and base64."""
        return "z:" + base64.b64encode(packed).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> bytes:
        """as_text() read back (or a plain JSON text), checked to unpack; raises
        ValueError for anything else."""
        if text.startswith("z:"):
            try:
                packed = base64.b64decode(text[2:], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError("not base64") from exc
        else:
            packed = zlib.compress(text.encode(), 6)
        try:
            cls.unpack(packed)
        except (zlib.error, UnicodeDecodeError) as exc:
            raise ValueError("not packed JSON") from exc
        return packed

    @classmethod
    def of_packed(cls, packed: Mapping[str, bytes]) -> JsonValues:
        """From bytes this class packed (a worker's, the parent's): taken as they are."""
        out = cls()
        out.put_packed(packed)
        return out

    def __getitem__(self, key: str) -> dict[str, Any]:
        return self.unpack(self._packed[key])

    def __setitem__(self, key: str, value: dict[str, Any]) -> None:
        self._packed[key] = self.pack(value)

    def __delitem__(self, key: str) -> None:
        del self._packed[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._packed)

    def __len__(self) -> int:
        return len(self._packed)

    def __contains__(self, key: object) -> bool:
        return key in self._packed

    def packed(self, keys: Iterable[str] | None = None) -> dict[str, bytes]:
        """The packed values of `keys` held (all without `keys`)."""
        if keys is None:
            return dict(self._packed)
        return {k: self._packed[k] for k in keys if k in self._packed}

    def put_packed(self, packed: Mapping[str, bytes]) -> None:
        self._packed.update(packed)


@dataclass
class DeviceMemory:
    """What probes remember between runs: last uptime, firmware, serial, picture
    baselines. Plain JSON-able data so the store can persist it across restarts; the
    baselines held packed (JsonValues)."""

    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    baselines: JsonValues = field(default_factory=JsonValues)
    # The cameras whose baselines a check changed since take_changed_baselines(): a
    # worker sends only those up (a camera's baselines are kilobytes; most of them
    # do not change between two hand-overs).
    changed_baselines: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if not isinstance(self.baselines, JsonValues):  # a plain dict of baselines
            self.baselines = JsonValues(self.baselines)

    def fact(self, device: str) -> dict[str, Any]:
        return self.facts.setdefault(device, {})

    def merge(self, other: DeviceMemory) -> None:
        """Take in another memory's devices (a stored part, another shard's)."""
        self.facts.update(other.facts)
        self.baselines.put_packed(other.baselines.packed())

    def put_baseline(self, device: str, baseline: dict[str, Any]) -> None:
        self.baselines[device] = baseline
        self.changed_baselines.add(device)

    def take_changed_baselines(self) -> dict[str, bytes]:
        """The baselines changed since the last call, packed (JsonValues), and forgets
        which they were."""
        changed, self.changed_baselines = self.changed_baselines, set()
        return self.baselines.packed(changed)


@dataclass
class ProbeContext:
    """Shared by every probe of a service; `until(deadline)` gives one run its own
    deadline (a shallow copy: the memory and the driver state stay shared)."""

    inventory: Inventory
    secrets: SecretResolver
    config: ProbeConfig = field(default_factory=ProbeConfig)
    memory: DeviceMemory = field(default_factory=DeviceMemory)
    now: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    # time.monotonic() by which this run must have answered; set by the scheduler.
    # None (a direct call, e.g. a test): `config.timeout` from the start of the check.
    deadline: float | None = None
    # In-process state of the drivers per (device, driver): what a driver's one-time
    # set-up discovered (service addresses, profiles, templates). Not persisted.
    driver_state: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # Each device's HTTP session (keep-alive connection, digest challenge) kept from
    # one check to the next (probes.drivers.http.HttpPool); its owner closes it. None:
    # every check opens and closes its own (a direct call, a test).
    http_pool: Any = None

    def until(self, deadline: float) -> ProbeContext:
        return dataclasses.replace(self, deadline=deadline)

    def remaining(self) -> float:
        """Seconds left before the deadline (the full timeout without one)."""
        if self.deadline is None:
            return self.config.timeout
        return self.deadline - time.monotonic()


ProbeFn = Callable[[str, ProbeContext], Awaitable[list[CheckResult]]]


# ---- the device to reach ------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What a probe needs to reach one device (recorder or IP camera)."""

    id: str
    is_recorder: bool
    address: Address
    protocols: list[DeviceProtocol]
    credentials: Credentials | None
    recorder: Recorder | None = None
    camera: Camera | None = None

    @property
    def label(self) -> str:
        return "主機" if self.is_recorder else "攝影機"


def target_of(device_id: str, ctx: ProbeContext) -> Target | None:
    """The recorder, or the IP camera with an address of its own; None otherwise."""
    inv = ctx.inventory
    if device_id in inv.recorders:
        r = inv.recorders[device_id]
        return Target(r.id, True, r.address, list(r.protocols), r.credentials, recorder=r)
    cam = inv.cameras.get(device_id)
    if cam is not None and cam.address is not None:
        return Target(cam.id, False, cam.address, list(cam.protocols), cam.credentials, camera=cam)
    return None


def login(target: Target, ctx: ProbeContext) -> tuple[str, str] | None:
    """(user, password) resolved now; raises SecretError (its message holds no secret)."""
    return resolve_login(target.credentials, ctx.secrets)


def resolve_login(
    credentials: Credentials | None, secrets: SecretResolver
) -> tuple[str, str] | None:
    if credentials is None:
        return None
    return credentials.username, str(secrets.resolve(credentials.password))


def campus_tz(ctx: ProbeContext) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(ctx.inventory.campus.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


# ---- one run of a check -------------------------------------------------------------


@dataclass(frozen=True)
class ProbeRun:
    """One run of a check on one device: its context (with the deadline set), when it
    began, and the factory of its results."""

    ctx: ProbeContext
    result: ResultFactory
    started: float  # time.monotonic()

    @property
    def at(self) -> dt.datetime:
        return self.result.at

    @property
    def clock_skew_s(self) -> float:
        """Seconds camwatch's clock (`ctx.now`, which a test may pin) is ahead of the
        host's `time.time()`: 0 unless it is pinned. The drivers time their exchanges
        with the host's clock (zeep's WS-Security stamps need it); a device's clock is
        judged against camwatch's, so a measured offset moves by this much."""
        return self.at.timestamp() - (time.time() - (time.monotonic() - self.started))

    def remaining(self) -> float:
        return self.ctx.remaining()

    @property
    def budget(self) -> float:
        """The seconds this run was given (for reasons: 「逾時 10 秒」)."""
        deadline = self.ctx.deadline
        if deadline is None:
            return self.ctx.config.timeout
        return round(deadline - self.started, 1)


CheckBody = Callable[[str, ProbeRun], Awaitable[list[CheckResult]]]


def check_probe(check: CheckKind) -> Callable[[CheckBody], ProbeFn]:
    """Makes a check body a ProbeFn: the run's deadline (the scheduler's, or the
    configured timeout from now), its result factory, and the one catch-all — a bug
    must not stop the service, so it becomes `unknown`, said plainly, and is logged."""

    def wrap(body: CheckBody) -> ProbeFn:
        async def probe_fn(device_id: str, ctx: ProbeContext) -> list[CheckResult]:
            started = time.monotonic()
            if ctx.deadline is None:
                ctx = ctx.until(started + ctx.config.timeout)
            result = ResultFactory(check, ctx.now(), started)
            try:
                return await body(device_id, ProbeRun(ctx, result, started))
            except Exception as exc:
                log.warning(
                    "probe error",
                    extra={"fields": {"check": check.value, "device": device_id,
                                      "error": type(exc).__name__}},
                )
                return [
                    result(device_id, Status.UNKNOWN, f"檢查程式發生錯誤（{type(exc).__name__}）")
                ]

        probe_fn.__name__ = body.__name__
        probe_fn.__qualname__ = body.__qualname__
        probe_fn.__doc__ = body.__doc__
        return probe_fn

    return wrap
