"""The inventory as custodians write it: units, sites, recorders, cameras, policy.

Field names follow the rules' own vocabulary (附件三 5(一)): a unit (業管單位) has a
manager and an office head; a recorder stands in a machine room (機房) and carries a
property number (財產編號). Every model forbids unknown keys so that a typo is an error,
never a silently ignored field.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from enum import StrEnum
from functools import cached_property
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# A credential is written as a reference, never as the secret itself:
#   ${ENV_VAR}      read from the environment
#   secret:KEY      read from the secrets file (mode 0600)
SECRET_REF = re.compile(r"^(\$\{[A-Za-z_][A-Za-z0-9_]*\}|secret:[A-Za-z0-9_.\-]+)$")
ID_PATTERN = r"^[a-z0-9][a-z0-9_\-]*$"

Id = Annotated[str, Field(pattern=ID_PATTERN, min_length=1, max_length=64)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class SecretRef(str):
    """A reference to a secret; its value is resolved at probe time, never stored."""


def _check_ref(value: str) -> str:
    if not SECRET_REF.match(value):
        raise ValueError(
            "a password written in clear is not allowed "
            "(write ${ENV_VAR} or secret:KEY and keep the value in the environment "
            "or the secrets file)"
        )
    return value


class Person(Strict):
    title: str = Field(min_length=1, description="職稱")
    name: str = Field(min_length=1, description="姓名")
    phone: str | None = Field(default=None, description="電話")


class Unit(Strict):
    """業管單位: the office that owns a group of cameras and signs their log."""

    id: Id
    name: str = Field(min_length=1, description="單位名稱, e.g. 學務處(學安室)")
    manager: Person = Field(description="管理人 (title, name, phone)")
    head: Person = Field(description="單位主管 who signs the monthly sheet")
    purpose: str | None = Field(default=None, description="設置目的")


class Building(Strict):
    id: Id
    name: str = Field(min_length=1)
    floors: list[str] = Field(default_factory=list)


class MachineRoom(Strict):
    """機房: where recorders stand."""

    id: Id
    name: str = Field(min_length=1)
    building: Id
    floor: str | None = None


class Sites(Strict):
    buildings: list[Building] = Field(default_factory=list)
    machine_rooms: list[MachineRoom] = Field(default_factory=list)


class Vendor(StrEnum):
    HIKVISION = "hikvision"
    DAHUA = "dahua"
    AXIS = "axis"
    SYNOLOGY = "synology"
    GENERIC = "generic"


class Protocol(StrEnum):
    ONVIF = "onvif"
    ISAPI = "isapi"
    DAHUA = "dahua"
    SNMP = "snmp"
    RTSP = "rtsp"


class Address(Strict):
    """Where a device answers. Ports default to each protocol's standard port."""

    host: str = Field(min_length=1)
    http_port: int = Field(default=80, ge=1, le=65535)
    https: bool = False
    onvif_port: int | None = Field(default=None, ge=1, le=65535)
    onvif_path: str = "/onvif/device_service"
    rtsp_port: int = Field(default=554, ge=1, le=65535)
    snmp_port: int = Field(default=161, ge=1, le=65535)
    # TLS for devices with self-signed certificates: verify by default; pin a
    # certificate's SHA-256 fingerprint, or (explicitly) skip verification.
    tls_verify: bool = True
    tls_pin_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F:]{64,95}$")

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        if "://" in v or "/" in v or "@" in v or " " in v:
            raise ValueError(f"{v!r} is not a host name or IP address (write only the host)")
        try:
            ipaddress.ip_address(v)
            return v
        except ValueError:
            pass
        label = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
        if not re.fullmatch(rf"{label}(\.{label})*", v):
            raise ValueError(f"{v!r} is not a valid host name or IP address")
        if re.fullmatch(r"[0-9.]+", v):
            # all digits and dots is an IPv4 address or nothing (999.1.1.1, 10.0.0):
            # no top-level domain is numeric, so it cannot be a host name
            raise ValueError(f"{v!r} is not a valid IPv4 address (four numbers 0-255, "
                             "e.g. 192.168.1.10)")
        return v

    @property
    def effective_onvif_port(self) -> int:
        return self.onvif_port or self.http_port

    @property
    def scheme(self) -> str:
        return "https" if self.https else "http"


class Credentials(Strict):
    username: str = Field(min_length=1)
    password: str = Field(description="${ENV_VAR} or secret:KEY")

    @field_validator("password")
    @classmethod
    def _ref(cls, v: str) -> str:
        return _check_ref(v)


class SnmpVersion(StrEnum):
    V2C = "2c"
    V3 = "3"


class Snmp(Strict):
    version: SnmpVersion = SnmpVersion.V2C
    community: str | None = Field(default=None, description="v2c: ${ENV_VAR} or secret:KEY")
    user: str | None = None
    auth_key: str | None = None
    priv_key: str | None = None
    auth_protocol: str = Field(default="SHA", pattern="^(SHA|SHA256|MD5)$")
    priv_protocol: str = Field(default="AES", pattern="^(AES|AES256|DES)$")
    context: str = ""

    @field_validator("community", "auth_key", "priv_key")
    @classmethod
    def _ref(cls, v: str | None) -> str | None:
        return None if v is None else _check_ref(v)

    @model_validator(mode="after")
    def _complete(self) -> Snmp:
        if self.version == SnmpVersion.V2C and not self.community:
            raise ValueError("SNMP v2c needs a community (${ENV_VAR} or secret:KEY)")
        if self.version == SnmpVersion.V3 and not (self.user and self.auth_key):
            raise ValueError("SNMP v3 needs user and auth_key")
        return self


class RetentionPolicy(Strict):
    """Rules 八(三) and 八(四): keep footage at least 30 days, destroy within a year."""

    min_days: int = Field(default=30, ge=1)
    max_days: int = Field(default=365, ge=1)

    @model_validator(mode="after")
    def _order(self) -> RetentionPolicy:
        if self.max_days < self.min_days:
            raise ValueError("max_days must not be below min_days")
        return self


class LegalHold(Strict):
    """Footage kept past the maximum for an investigation or by law (八(四))."""

    recorder: Id
    reason: str = Field(min_length=1)
    until: dt.date


class Policy(Strict):
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy)
    legal_holds: list[LegalHold] = Field(default_factory=list)


class RecorderKind(StrEnum):
    NVR = "nvr"
    DVR = "dvr"


class Recorder(Strict):
    """A recorder (NVR/DVR): the 監視主機 of the maintenance log."""

    id: Id
    name: str = Field(min_length=1, description="主機名稱, e.g. 教學大樓1樓主機")
    unit: Id
    machine_room: Id
    kind: RecorderKind = RecorderKind.NVR
    vendor: Vendor = Vendor.GENERIC
    model: str | None = None
    protocols: list[Protocol] = Field(min_length=1)
    address: Address
    credentials: Credentials | None = None
    snmp: Snmp | None = None
    property_number: str | None = Field(default=None, description="財產編號")
    channels: int = Field(ge=1, le=256)
    retention: RetentionPolicy | None = None
    # 循環錄影: the recorder overwrites its oldest footage when the disks fill up, so
    # full disks are its normal state and the retention check is what guards it. False:
    # it stops recording when full (a full disk is DiskFull). Unset: read from the device
    # where its API says (Dahua), else a full disk is reported once as "overwrite unknown".
    overwrite: bool | None = None

    @model_validator(mode="after")
    def _protocol_needs(self) -> Recorder:
        if Protocol.SNMP in self.protocols and self.snmp is None:
            raise ValueError("protocol snmp is listed but the snmp block is missing")
        # Every device API logs in; SNMP has its own community or user, and RTSP is only
        # tried. Written as the exceptions so that a vendor protocol added later needs
        # credentials without anyone remembering this line.
        needs_login = [p for p in self.protocols if p not in (Protocol.SNMP, Protocol.RTSP)]
        if needs_login and self.credentials is None:
            raise ValueError(f"{', '.join(needs_login)} need credentials")
        return self


class CameraKind(StrEnum):
    IP = "ip"
    ANALOG = "analog"


class Location(Strict):
    building: Id
    floor: str = Field(min_length=1)
    area: str = Field(min_length=1, description="e.g. 走廊東側")


class Camera(Strict):
    id: Id
    name: str = Field(min_length=1)
    kind: CameraKind
    recorder: Id
    channel: int = Field(ge=1)
    address: Address | None = Field(
        default=None, description="own address of an IP camera probed directly"
    )
    credentials: Credentials | None = None
    protocols: list[Protocol] = Field(default_factory=lambda: [Protocol.ONVIF])
    location: Location
    position: str = Field(min_length=1, description="鏡頭位置, e.g. 教學大樓1樓走廊東側")
    purpose: str | None = Field(default=None, description="設置目的")
    coverage: str | None = Field(default=None, description="監視區域")
    period: str | None = Field(default=None, description="設置期間, e.g. 2023-08 起")
    property_number: str | None = Field(default=None, description="財產編號")
    reference_image: str | None = Field(
        default=None,
        description="a photo of this camera's view taken when the lens was clean and in "
        "focus (JPEG or PNG, path relative to this inventory file): the picture check's "
        "baseline from the first sample (參考畫面); only its figures are kept",
    )

    @model_validator(mode="after")
    def _analog_has_no_address(self) -> Camera:
        if self.kind == CameraKind.ANALOG and self.address is not None:
            raise ValueError("an analog camera has no address of its own; remove address")
        if self.address is not None and self.credentials is None:
            raise ValueError("an IP camera probed directly needs credentials")
        return self


class Campus(Strict):
    id: Id
    name: str = Field(min_length=1, description="school name printed on the sheet")
    timezone: str = "Asia/Taipei"


class InventoryFile(Strict):
    """One YAML file. A campus may split its inventory into one file per unit."""

    campus: Campus | None = None
    policy: Policy | None = None
    units: list[Unit] = Field(default_factory=list)
    sites: Sites | None = None
    recorders: list[Recorder] = Field(default_factory=list)
    cameras: list[Camera] = Field(default_factory=list)


class Inventory(Strict):
    """All files merged and cross-checked; what the rest of camwatch reads."""

    campus: Campus
    policy: Policy = Field(default_factory=Policy)
    units: dict[str, Unit]
    buildings: dict[str, Building]
    machine_rooms: dict[str, MachineRoom]
    recorders: dict[str, Recorder]
    cameras: dict[str, Camera]

    @cached_property
    def _cameras_by_recorder(self) -> dict[str, list[Camera]]:
        # Probes ask this for every recorder check: a scan of 10,000 cameras each time
        # was 5 % of the service's CPU. The inventory is frozen once loaded.
        index: dict[str, list[Camera]] = {}
        for cam in self.cameras.values():
            index.setdefault(cam.recorder, []).append(cam)
        return index

    def cameras_of(self, recorder_id: str) -> list[Camera]:
        return list(self._cameras_by_recorder.get(recorder_id, ()))

    def only(self, recorders: set[str]) -> Inventory:
        """The same inventory with only these recorders and their cameras (a probe
        worker's shard: at 10,000 cameras the rest is tens of MB it never reads)."""
        return Inventory.model_construct(
            campus=self.campus,
            policy=self.policy,
            units=self.units,
            buildings=self.buildings,
            machine_rooms=self.machine_rooms,
            recorders={r: v for r, v in self.recorders.items() if r in recorders},
            cameras={c: v for c, v in self.cameras.items() if v.recorder in recorders},
        )

    def retention_for(self, recorder_id: str) -> RetentionPolicy:
        return self.recorders[recorder_id].retention or self.policy.retention

    def legal_hold_for(self, recorder_id: str, on: dt.date) -> LegalHold | None:
        for hold in self.policy.legal_holds:
            if hold.recorder == recorder_id and hold.until >= on:
                return hold
        return None

    def unit_of(self, device_id: str) -> Unit:
        if device_id in self.recorders:
            return self.units[self.recorders[device_id].unit]
        return self.units[self.recorders[self.cameras[device_id].recorder].unit]

    def place_of(self, device_id: str) -> str:
        """Where a person finds the device: 教學大樓1樓走廊東側 or the machine room."""
        if device_id in self.cameras:
            return self.cameras[device_id].position
        return self.machine_rooms[self.recorders[device_id].machine_room].name
