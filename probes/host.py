"""The host check — 監視主機是否正常運作: is the device up, does it let us in, did it
reboot, is its clock right, did its firmware change; and on a recorder, does each
analog/unaddressed camera channel have a video signal.

Protocols in order of preference: ONVIF (GetSystemDateAndTime without auth, then
GetDeviceInformation), ISAPI (deviceInfo, time, status), Dahua CGI, SNMP (sysUpTime /
hrSystemUptime), and a TCP connect as the last resort. A protocol that answers "not
supported" or gibberish hands over to the next; a device that is unreachable, times out
or refuses the password is judged at once (another protocol on the same box will not do
better).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import zoneinfo
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from camwatch.secrets import SecretError
from inventory.models import Address, Camera, CameraKind, Credentials, Protocol, Recorder
from probes.api import ProbeContext
from probes.drivers.dahua import DahuaClient
from probes.drivers.http import DeviceError, DeviceHttp, base_url, limits_for
from probes.drivers.isapi import IsapiClient
from probes.drivers.onvif import OnvifSession
from probes.drivers.onvif import prepare as onvif_prepare
from probes.facts import ChannelSignal, DeviceInfo, HostFacts
from probes.result import CheckKind, CheckResult, Finding, FindingCode, ResultFactory, Status, Value

# ---- device access shared with the recording check ---------------------------------


@dataclass(frozen=True)
class Target:
    """What a probe needs to reach one device (recorder or IP camera)."""

    id: str
    is_recorder: bool
    address: Address
    protocols: list[Protocol]
    credentials: Credentials | None
    recorder: Recorder | None = None
    camera: Camera | None = None

    @property
    def label(self) -> str:
        return "主機" if self.is_recorder else "攝影機"


def target_of(device_id: str, ctx: ProbeContext) -> Target | None:
    inv = ctx.inventory
    if device_id in inv.recorders:
        r = inv.recorders[device_id]
        return Target(r.id, True, r.address, list(r.protocols), r.credentials, recorder=r)
    cam = inv.cameras.get(device_id)
    if cam is not None and cam.address is not None:
        return Target(cam.id, False, cam.address, list(cam.protocols), cam.credentials, camera=cam)
    return None


def login(target: Target, ctx: ProbeContext) -> tuple[str, str] | None:
    """(user, password) resolved now; SecretError (its message holds no secret)."""
    if target.credentials is None:
        return None
    return target.credentials.username, ctx.secrets.resolve(target.credentials.password)


def campus_tz(ctx: ProbeContext) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(ctx.inventory.campus.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def channel_label(cam: Camera) -> str:
    """「第 5 路（教學大樓1樓走廊東側）」"""
    return f"第 {cam.channel} 路（{cam.position}）"


# Errors after which no other protocol is tried: the device itself is the problem.
FINAL_CODES = frozenset({"timeout", "unreachable", "auth", "tls", "too-large", "unsafe-xml"})


def _is_down(err: DeviceError) -> bool:
    return err.reason_code == "unreachable"


async def tcp_connect(host: str, port: int, limit_s: float) -> bool:
    try:
        async with asyncio.timeout(limit_s):
            _reader, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    try:
        async with asyncio.timeout(1.0):
            await writer.wait_closed()
    except (OSError, TimeoutError):
        pass
    return True


# ---- gathering facts ---------------------------------------------------------------


@dataclass
class Gathered:
    facts: HostFacts = field(default_factory=HostFacts)
    driver: str | None = None
    clock_offset_s: float | None = None
    clock_raw: str | None = None
    errors: list[DeviceError] = field(default_factory=list)


def clock_skew(at: dt.datetime, started: float) -> float:
    """Seconds the probes' clock is ahead of the host's `time.time()`: 0 unless camwatch's
    clock is pinned. `at` is ctx.now() when the probe began, at monotonic `started`.

    The drivers time their exchanges with the host's clock (zeep's WS-Security stamps
    need it); a device's clock is judged against the probes' own clock, so a measured
    offset moves by this much."""
    return at.timestamp() - (time.time() - (time.monotonic() - started))


def _offset(device_utc: dt.datetime | None, probe_epoch: float) -> float | None:
    if device_utc is None:
        return None
    return round(device_utc.timestamp() - probe_epoch, 3)


async def _onvif(t: Target, cred: tuple[str, str] | None, http: DeviceHttp) -> Gathered:
    user, pw = cred if cred else (None, None)
    async with OnvifSession(
        t.address.host,
        t.address.effective_onvif_port,
        user,
        pw,
        http.limits,
        scheme=t.address.scheme,
        path=t.address.onvif_path,
        http=http,
    ) as s:
        dtime, mid = await s.system_time()
        info = await s.device_info()
    return Gathered(
        facts=HostFacts(info=info, time=dtime),
        driver="onvif",
        clock_offset_s=_offset(dtime.utc, mid),
        clock_raw=dtime.raw,
    )


async def _isapi(t: Target, want_signals: bool, http: DeviceHttp) -> Gathered:
    c = IsapiClient(http, base_url(t.address))
    info = await c.device_info()
    offset = raw = None
    dtime = None
    try:
        t0 = time.time()
        dtime = await c.time()
        offset, raw = _offset(dtime.utc, (t0 + time.time()) / 2), dtime.raw
    except DeviceError as exc:
        if exc.reason_code in FINAL_CODES:
            raise
    uptime = await _optional(c.uptime)
    signals = ((await _optional(c.signals)) or []) if want_signals else []
    return Gathered(
        facts=HostFacts(info=info, time=dtime, uptime_s=uptime, signals=signals),
        driver="isapi",
        clock_offset_s=offset,
        clock_raw=raw,
    )


def _signal_channels(t: Target, ctx: ProbeContext) -> list[int]:
    return sorted({c.channel for c in ctx.inventory.cameras_of(t.id)})


async def _dahua_signals(c: DahuaClient, t: Target, ctx: ProbeContext) -> list[ChannelSignal]:
    found = await _optional(lambda: c.signals(_signal_channels(t, ctx)))
    return list(found or [])


async def _dahua(t: Target, ctx: ProbeContext, want_signals: bool, http: DeviceHttp) -> Gathered:
    c = DahuaClient(http, base_url(t.address), campus_tz(ctx))
    info = await c.device_info()
    t0 = time.time()
    dtime = await _optional(c.time)
    mid = (t0 + time.time()) / 2
    uptime = await _optional(c.uptime)
    signals = await _dahua_signals(c, t, ctx) if want_signals else []
    return Gathered(
        facts=HostFacts(info=info, time=dtime, uptime_s=uptime, signals=signals),
        driver="dahua",
        clock_offset_s=_offset(dtime.utc if dtime else None, mid),
        clock_raw=dtime.raw if dtime else None,
    )


async def _optional(fn: Callable[[], Awaitable[Any]]) -> Any:
    """A fact some firmware does not serve: None unless the device itself failed."""
    try:
        return await fn()
    except DeviceError as exc:
        if exc.reason_code in ("timeout", "unreachable", "auth"):
            raise
        return None


async def _snmp_uptime(t: Target, ctx: ProbeContext) -> tuple[float | None, DeviceError | None]:
    if t.recorder is None or t.recorder.snmp is None:
        return None, None
    try:
        from probes.drivers import snmp
    except ImportError:  # pragma: no cover - the SNMP driver is optional
        return None, None
    budget = _extra_budget(ctx)
    try:
        target = snmp.target_for(t.recorder, ctx.secrets, timeout=budget, retries=0)
    except (SecretError, ValueError):
        return None, DeviceError("config", "SNMP 帳號設定無法使用")
    try:
        async with asyncio.timeout(budget + 0.5):
            reading = await snmp.read_host(target)
    except TimeoutError:
        return None, DeviceError("timeout", f"SNMP 無回應（逾時 {budget:g} 秒）")
    if reading.error is not None:
        return None, DeviceError(f"snmp-{reading.error.kind}", reading.error.reason)
    return (reading.system.uptime_s if reading.system else None), None


_HTTP_PROTOCOLS = frozenset({Protocol.ONVIF, Protocol.ISAPI, Protocol.DAHUA})


async def gather(t: Target, ctx: ProbeContext, want_signals: bool) -> Gathered:
    cred = login(t, ctx)
    if not _HTTP_PROTOCOLS & set(t.protocols):
        return await _gather(t, ctx, want_signals, cred, None)
    # One HTTP session for every protocol tried on this device (ONVIF, then the vendor
    # API for uptime): one client and its keep-alive connections instead of one per
    # protocol. The same device, the same credentials and the same limits (redirects,
    # TLS pin, body size) throughout, so nothing reaches another host.
    async with DeviceHttp(limits_for(t.address, ctx.config), cred) as http:
        return await _gather(t, ctx, want_signals, cred, http)


async def _gather(
    t: Target,
    ctx: ProbeContext,
    want_signals: bool,
    cred: tuple[str, str] | None,
    http: DeviceHttp | None,
) -> Gathered:
    errors: list[DeviceError] = []
    got: Gathered | None = None
    for proto in (Protocol.ONVIF, Protocol.ISAPI, Protocol.DAHUA):
        if proto not in t.protocols or http is None:
            continue
        try:
            if proto == Protocol.ONVIF:
                got = await _onvif(t, cred, http)
            elif proto == Protocol.ISAPI:
                got = await _isapi(t, want_signals, http)
            else:
                got = await _dahua(t, ctx, want_signals, http)
        except DeviceError as exc:
            errors.append(exc)
            if exc.reason_code in FINAL_CODES:
                return Gathered(errors=errors)
            continue
        break
    if got is not None:
        # ONVIF knows no uptime and no channel signal: ask the vendor API for them.
        if got.driver == "onvif" and (
            got.facts.uptime_s is None or (want_signals and not got.facts.signals)
        ):
            assert http is not None
            extra = await _supplement(t, ctx, want_signals, http)
            if extra is not None:
                got.driver = f"onvif+{extra.driver}"
                got.facts = replace(
                    got.facts,
                    uptime_s=got.facts.uptime_s
                    if got.facts.uptime_s is not None
                    else extra.facts.uptime_s,
                    signals=got.facts.signals or extra.facts.signals,
                )
        if got.facts.uptime_s is None and Protocol.SNMP in t.protocols:
            uptime, _err = await _snmp_uptime(t, ctx)
            got.facts = replace(got.facts, uptime_s=uptime)
        got.errors = errors
        return got
    if Protocol.SNMP in t.protocols:
        uptime, err = await _snmp_uptime(t, ctx)
        if err is None and uptime is not None:
            return Gathered(facts=HostFacts(uptime_s=uptime), driver="snmp", errors=errors)
        if err is not None:
            errors.append(err)
    return Gathered(errors=errors)


async def _supplement(
    t: Target, ctx: ProbeContext, want_signals: bool, http: DeviceHttp
) -> Gathered | None:
    """Uptime (and channel signals) from the vendor API, after ONVIF gave the rest."""
    base = base_url(t.address)
    try:
        async with asyncio.timeout(_extra_budget(ctx)):
            if Protocol.ISAPI in t.protocols:
                c = IsapiClient(http, base)
                uptime = await _optional(c.uptime)
                signals = ((await _optional(c.signals)) or []) if want_signals else []
                return Gathered(facts=HostFacts(uptime_s=uptime, signals=signals), driver="isapi")
            if Protocol.DAHUA in t.protocols:
                d = DahuaClient(http, base, campus_tz(ctx))
                uptime = await _optional(d.uptime)
                signals = await _dahua_signals(d, t, ctx) if want_signals else []
                return Gathered(facts=HostFacts(uptime_s=uptime, signals=signals), driver="dahua")
    except (DeviceError, TimeoutError):
        return None
    return None


def _extra_budget(ctx: ProbeContext) -> float:
    """Time allowed for a supplementary source (uptime, signals) after the main one."""
    return max(0.5, min(2.0, ctx.config.timeout / 4))


# ---- judging -----------------------------------------------------------------------


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


@dataclass
class Verdict:
    status: Status
    reason: str
    findings: list[Finding]
    values: dict[str, Value]


def judge_host(
    t: Target,
    got: Gathered,
    memory: dict[str, Any],
    clock_drift_max_s: float,
    now: dt.datetime,
) -> Verdict:
    """Facts (or the errors met) → status, reason, findings; updates `memory`.

    Pure apart from `memory` (the device's remembered facts), so it is tested
    without a network.
    """
    values: dict[str, Value] = {}
    findings: list[Finding] = []
    if got.driver is None:
        err = _worst(got.errors)
        if err is not None and err.reason_code == "auth":
            reason = f"{t.label}拒絕登入：帳號或密碼錯誤"
            return Verdict(
                Status.FAIL, reason, [Finding(FindingCode.AUTH_FAILED, reason)], {"up": False}
            )
        if err is not None and _is_down(err):
            code = FindingCode.RECORDER_DOWN if t.is_recorder else FindingCode.CAMERA_UNREACHABLE
            reason = f"{t.label}無回應：{err.zh_reason}"
            return Verdict(Status.FAIL, reason, [Finding(code, reason)], {"up": False})
        return Verdict(
            Status.UNKNOWN,
            f"無法判斷{t.label}狀態：{err.zh_reason if err else '沒有可用的通訊協定'}",
            [],
            {},
        )

    f = got.facts
    info = f.info or DeviceInfo()
    values["up"] = True
    values["uptime_s"] = f.uptime_s
    values["clock_offset_s"] = got.clock_offset_s
    values["model"] = info.model
    values["firmware"] = info.firmware
    values["serial"] = info.serial
    problems: list[str] = []
    notes: list[str] = []
    status = Status.OK

    last_uptime = memory.get("uptime_s")
    # Uptime went down (allowing for a little jitter in the device's own count).
    if (
        f.uptime_s is not None
        and isinstance(last_uptime, int | float)
        and f.uptime_s + 30 < last_uptime
    ):
        reason = f"{t.label}曾重新開機（已開機 {fmt_duration(f.uptime_s)}）"
        findings.append(Finding(FindingCode.DEVICE_REBOOTED, reason))
        problems.append(reason)
        status = Status.FAIL

    if got.clock_offset_s is not None and abs(got.clock_offset_s) > clock_drift_max_s:
        direction = "快" if got.clock_offset_s > 0 else "慢"
        reason = (
            f"{t.label}時間{direction} {fmt_duration(got.clock_offset_s)}"
            f"（超過 {clock_drift_max_s:g} 秒）"
        )
        findings.append(Finding(FindingCode.CLOCK_DRIFT, reason))
        problems.append(reason)
        status = Status.FAIL
    elif got.clock_offset_s is None and got.clock_raw is not None:
        notes.append(f"主機時間無法解讀（{got.clock_raw}）")

    for key, label in (("firmware", "韌體版本"), ("serial", "序號")):
        new = getattr(info, key)
        old = memory.get(key)
        if new and isinstance(old, str) and old != new:
            reason = f"{t.label}{label}已變更：{old} → {new}"
            findings.append(Finding(FindingCode.FIRMWARE_CHANGED, reason))
            notes.append(reason)

    # Remember for the next run (plain JSON values).
    if f.uptime_s is not None:
        memory["uptime_s"] = f.uptime_s
        memory["seen_at"] = now.isoformat()
    for key in ("firmware", "serial", "model"):
        val = getattr(info, key)
        if val:
            memory[key] = val

    if problems:
        reason = "；".join(problems + notes)
    else:
        parts = [f"{t.label}正常運作"]
        if f.uptime_s is not None:
            parts.append(f"已開機 {fmt_duration(f.uptime_s)}")
        reason = "，".join(parts)
        if notes:
            reason += "；" + "；".join(notes)
    return Verdict(status, reason, findings, values)


def _worst(errors: list[DeviceError]) -> DeviceError | None:
    if not errors:
        return None
    order = ["auth", "unreachable", "timeout", "tls", "too-large", "unsafe-xml"]
    for code in order:
        for e in errors:
            if e.reason_code == code:
                return e
    return errors[0]  # the preferred protocol's answer


def judge_signals(
    recorder_id: str,
    cameras: list[Camera],
    signals: list[ChannelSignal],
    recorder_up: bool,
    recorder_reason: str,
) -> list[tuple[str, Status, str, list[Finding], dict[str, Value]]]:
    """Host answers for a recorder's cameras that have no address of their own."""
    by_ch = {s.channel: s for s in signals}
    out: list[tuple[str, Status, str, list[Finding], dict[str, Value]]] = []
    for cam in cameras:
        if cam.kind == CameraKind.IP and cam.address is not None:
            continue  # probed directly
        label = channel_label(cam)
        if not recorder_up:
            out.append((cam.id, Status.UNKNOWN, f"{label}：{recorder_reason}", [], {}))
            continue
        sig = by_ch.get(cam.channel)
        if sig is None or sig.signal is None:
            out.append(
                (
                    cam.id,
                    Status.OK,
                    f"{label}：主機正常運作（主機未提供訊號狀態）",
                    [],
                    {"signal": None, "recorder": recorder_id},
                )
            )
        elif sig.signal:
            out.append(
                (
                    cam.id,
                    Status.OK,
                    f"{label}：視訊訊號正常",
                    [],
                    {"signal": True, "recorder": recorder_id},
                )
            )
        else:
            # An analog input without video is signal loss; an IP channel the recorder
            # cannot reach is an unreachable camera.
            if cam.kind == CameraKind.ANALOG:
                code, reason = FindingCode.SIGNAL_LOSS, f"{label}無視訊訊號（影像遺失）"
            else:
                code, reason = FindingCode.CAMERA_UNREACHABLE, f"{label}離線（主機連不到攝影機）"
            out.append(
                (
                    cam.id,
                    Status.FAIL,
                    reason,
                    [Finding(code, reason, subject=cam.id)],
                    {"signal": False, "recorder": recorder_id},
                )
            )
    return out


# ---- the probe ---------------------------------------------------------------------


async def probe_host(device_id: str, ctx: ProbeContext) -> list[CheckResult]:
    """The host check of one device; never raises."""
    started = time.monotonic()
    at = ctx.now()
    try:
        return await _probe_host(device_id, ctx, started, at)
    except Exception as exc:  # a bug must not stop the service; say so plainly
        result = ResultFactory(CheckKind.HOST, at, started)
        return [result(device_id, Status.UNKNOWN, f"檢查程式發生錯誤（{type(exc).__name__}）")]


async def _probe_host(
    device_id: str, ctx: ProbeContext, started: float, at: dt.datetime
) -> list[CheckResult]:
    t = target_of(device_id, ctx)

    result = ResultFactory(CheckKind.HOST, at, started)

    if t is None:
        if device_id in ctx.inventory.cameras:
            cam = ctx.inventory.cameras[device_id]
            return [result(device_id, Status.UNKNOWN, f"{channel_label(cam)}：由主機檢查回報")]
        return [result(device_id, Status.UNKNOWN, "清冊中沒有這個裝置")]

    timeout = ctx.config.timeout
    want_signals = t.is_recorder and any(
        c.kind == CameraKind.ANALOG or c.address is None for c in ctx.inventory.cameras_of(t.id)
    )
    if Protocol.ONVIF in t.protocols:
        await onvif_prepare()  # WSDL parsing, once per process (the first probe only)
    # Finish inside the scheduler's own timeout (the same setting), so that this
    # check's reason is the one reported, not a bare "timed out".
    end = started + 0.9 * timeout
    try:
        async with asyncio.timeout(max(0.2, end - time.monotonic())):
            got = await gather(t, ctx, want_signals)
    except SecretError as exc:
        return [result(device_id, Status.UNKNOWN, f"無法取得登入密碼：{exc}")]
    except TimeoutError:
        got = Gathered(errors=[DeviceError("timeout", f"主機無回應（逾時 {timeout:g} 秒）")])

    if got.driver is None and not any(e.reason_code in FINAL_CODES for e in got.errors):
        # No protocol gave an answer: is anything listening at all?
        http_protocols = {Protocol.ONVIF, Protocol.ISAPI, Protocol.DAHUA}
        only_rtsp = Protocol.RTSP in t.protocols and not http_protocols & set(t.protocols)
        port = t.address.rtsp_port if only_rtsp else t.address.http_port
        limit = max(0.2, min(3.0, started + 0.95 * timeout - time.monotonic()))
        if await tcp_connect(t.address.host, port, limit):
            if got.errors:
                err = got.errors[0]
                return [
                    result(
                        device_id,
                        Status.UNKNOWN,
                        f"{t.label}有回應，但回覆無法解讀：{err.zh_reason}",
                        driver="tcp",
                    )
                ]
            return [
                result(device_id, Status.OK, f"{t.label}連線埠可連線（僅確認連線）", driver="tcp")
            ]
        got.errors.append(DeviceError("unreachable", f"無法連線到主機（埠 {port}）"))

    if got.clock_offset_s is not None:
        got.clock_offset_s = round(got.clock_offset_s - clock_skew(at, started), 3)
    memory = ctx.memory.fact(device_id)
    v = judge_host(t, got, memory, ctx.config.clock_drift_max_s, at)
    out = [result(device_id, v.status, v.reason, v.findings, v.values, got.driver)]
    if t.is_recorder:
        cams = ctx.inventory.cameras_of(t.id)
        for cam_id, st, reason, fnd, vals in judge_signals(
            t.id, cams, got.facts.signals, got.driver is not None, v.reason
        ):
            out.append(result(cam_id, st, reason, fnd, vals, got.driver))
    return out
