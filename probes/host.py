"""The host check — 監視主機是否正常運作: is the device up, does it let us in, did it
reboot, is its clock right, did its firmware change; and on a recorder, does each
analog/unaddressed camera channel have a video signal.

The drivers of the device's protocols are asked in the table's order of preference
(probes.gather): ONVIF (GetSystemDateAndTime without auth, then GetDeviceInformation),
then the vendor API (ISAPI, Dahua CGI) for what ONVIF does not tell (uptime, channel
signals), SNMP (the vendor's identity scalars, sysUpTime / hrSystemUptime) for what is
still missing, and a TCP connect to a listed HTTP or RTSP port as the last resort. A
driver that answers "not supported", "forbidden" or gibberish hands over to the next; a
device that is unreachable, times out or refuses the login is judged at once (another
protocol on the same box will not do better).

An SNMP agent that answers anything — only sysDescr, even — is a device that is up; an
SNMP-only recorder whose agent is silent is down, and the reason says it was SNMP. An
endpoint the device forbids (HTTP 403 while the login works) is not offered; only a
device that refuses every question is a refused login.

An IP camera's own storage (a memory card, a network share) is judged here, as the
camera's: a failed card is `DiskFailed`, a full one follows the recorders' overwrite rule
(probes.storage).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from inventory.models import Camera, CameraKind, Protocol
from probes.context import (
    ProbeRun,
    SecretError,
    Target,
    check_probe,
    login,
    target_of,
)
from probes.drivers.base import Ability, DeviceLink, DriverSession
from probes.drivers.table import drivers_for
from probes.facts import ChannelSignal, DeviceInfo, Disk, HostFacts, StorageKind
from probes.gather import Asked, ask_drivers
from probes.periods import due, read_now
from probes.reasons import DeviceError, ReasonCode, worst
from probes.result import CheckKind, CheckResult, Finding, FindingCode, Status
from probes.storage import any_full, judge_disks
from probes.values import HostValues
from probes.wording import channel_label, fmt_duration

__all__ = [
    "Gathered",
    "Target",
    "fmt_duration",
    "gather",
    "judge_host",
    "judge_signals",
    "last_resort_port",
    "probe_host",
]


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


def last_resort_port(t: Target) -> int:
    """The port a TCP connect tries when no driver answered: the HTTP port if any listed
    driver speaks HTTP (the table says which), else the RTSP port of an RTSP-only device."""
    speaks_http = any(d.http for d in drivers_for(t.protocols))
    if Protocol.RTSP in t.protocols and not speaks_http:
        return t.address.rtsp_port
    return t.address.http_port


# ---- gathering facts ---------------------------------------------------------------

# How a reason names each driver's protocol.
PROTOCOL_WORDS = {"onvif": "ONVIF", "isapi": "ISAPI", "dahua": "Dahua CGI", "snmp": "SNMP"}


@dataclass
class Gathered:
    facts: HostFacts = field(default_factory=HostFacts)
    driver: str | None = None
    clock_offset_s: float | None = None
    clock_raw: str | None = None
    errors: list[DeviceError] = field(default_factory=list)
    # An IP camera's own storage (memory card, network share) and its overwrite setting
    disks: list[Disk] | None = None
    overwrite: bool | None = None
    overwrite_asked: bool = False
    passed_over: list[tuple[str, DeviceError]] = field(default_factory=list)
    # The device info and uptime came from the last full read (see gather), told then
    # by these drivers; this check asked only what changes from one check to the next.
    kept_from: tuple[str, ...] | None = None


# What the host check asks, in this order: device info first (the answer that says
# the device is there and lets us in), then its clock, uptime and channel signals; of
# an IP camera, its own storage (and, when full, its overwrite setting).
ORDER = (
    Ability.DEVICE_INFO,
    Ability.CLOCK,
    Ability.UPTIME,
    Ability.SIGNALS,
    Ability.DISKS,
    Ability.OVERWRITE,
)


# How often an IP camera's own storage is read by the host check (seconds).
STORAGE_EVERY = 300.0


def extra_budget(timeout: float) -> float:
    """Time allowed for each further driver (uptime, signals) after one answered."""
    return max(0.5, min(2.0, timeout / 4))


def proves_alive(protocols: Iterable[Protocol]) -> bool:
    """Whether one of the device's drivers can be asked its clock: a check that takes
    the slow facts from the last full read must still ask the device something."""
    return any(Ability.CLOCK in d.abilities for d in drivers_for(protocols))


async def gather(
    link: DeviceLink, want_signals: bool, got: Gathered, *, want_storage: bool = False
) -> Gathered:
    """Fill `got` from the device's drivers (in place: what was learnt survives the
    deadline). A fact is known once a driver gave it (an empty signal list is none).
    `want_storage`: an IP camera, whose own card or share is judged here."""
    full_pct = link.ctx.config.disk_full_pct
    device_id, t_now = link.target.id, time.monotonic()
    # A camera's card changes slowly: read once per STORAGE_EVERY seconds, and judged
    # from what was read in between (in-process, per device).
    kept = link.state("host-storage")
    if want_storage and not due(kept, device_id, STORAGE_EVERY, t_now):
        got.disks = list(kept.get("disks", []))
        got.overwrite, got.overwrite_asked = kept.get("overwrite"), True
    # So do the model, firmware and serial, and the uptime runs on with the clock: they
    # are read once per `host_facts_every_s` (the question that also proves the login),
    # and the checks between ask only the clock (and a recorder's channel signals).
    # A reboot, a firmware change or a changed password is seen at the next full read.
    every = link.ctx.config.host_facts_every_s
    slow = link.state("host-facts")
    if not due(slow, device_id, every, t_now) and proves_alive(link.target.protocols):
        uptime = slow["uptime_s"]
        if uptime is not None:
            uptime += t_now - slow["at"]
        got.facts = replace(got.facts, info=slow["info"], uptime_s=uptime)
        got.kept_from = tuple(slow["drivers"])

    def missing() -> set[Ability]:
        f = got.facts
        kept_facts = got.kept_from is not None
        known = {
            Ability.DEVICE_INFO: f.info is not None,
            Ability.CLOCK: f.time is not None,
            Ability.UPTIME: f.uptime_s is not None or kept_facts,
            Ability.SIGNALS: bool(f.signals) or not want_signals,
            Ability.DISKS: got.disks is not None or not want_storage,
            Ability.OVERWRITE: got.overwrite_asked or not any_full(got.disks, full_pct),
        }
        return {a for a, k in known.items() if not k}

    async def ask(s: DriverSession, ability: Ability) -> bool:
        if ability == Ability.DEVICE_INFO:
            got.facts = replace(got.facts, info=await s.device_info())
            return True
        if ability == Ability.CLOCK:
            reading = await s.clock()
            got.facts = replace(got.facts, time=reading.time)
            got.clock_offset_s, got.clock_raw = reading.offset_s, reading.time.raw
            return True
        if ability == Ability.UPTIME:
            got.facts = replace(got.facts, uptime_s=await s.uptime())
            return got.facts.uptime_s is not None
        if ability == Ability.DISKS:
            disks = await s.disks()
            if disks is None:
                return False
            # A camera's own storage: a card, or a network share it records to.
            got.disks = [
                d if d.kind == StorageKind.NAS else replace(
                    d, kind=StorageKind.CARD, id=f"card-{d.id.removeprefix('card-')}"
                )
                for d in disks
            ]
            kept.update(disks=list(got.disks), overwrite=None)
            read_now(kept, device_id, STORAGE_EVERY, t_now)
            return True
        if ability == Ability.OVERWRITE:
            got.overwrite_asked = True
            got.overwrite = await s.overwrite()
            kept["overwrite"] = got.overwrite
            return got.overwrite is not None
        got.facts = replace(got.facts, signals=list(await s.signals(link.channels())))
        return bool(got.facts.signals)

    asked = Asked(errors=got.errors, passed_over=got.passed_over)
    try:
        await ask_drivers(
            link,
            ORDER,
            missing,
            ask,
            asked,
            later_budget=extra_budget(link.ctx.config.timeout),
        )
    finally:
        got.driver = _named(link, asked.answered, got.kept_from)
        _keep_slow_facts(slow, got, device_id, every, t_now)
    return got


def _named(link: DeviceLink, answered: list[str], kept_from: tuple[str, ...] | None) -> str | None:
    """The drivers a result names: those that answered now, with those whose kept facts
    it used, in the table's order (the same name on full and lean checks alike). None
    when nobody answered now: kept facts do not make a silent device up."""
    if not answered:
        return None
    told = set(answered) | set(kept_from or ())
    return "+".join(d.name for d in drivers_for(link.target.protocols) if d.name in told)


def _keep_slow_facts(
    slow: dict[str, Any], got: Gathered, device_id: str, every: float, t_now: float
) -> None:
    if got.driver is None or got.facts.time is None:
        # Silent, or its clock unanswered: whatever happened meanwhile (a reboot, a
        # new password), the next check that reaches it reads everything again.
        slow.clear()
    elif got.kept_from is None and got.facts.info is not None:
        slow.update(info=got.facts.info, uptime_s=got.facts.uptime_s, at=t_now,
                    drivers=got.driver.split("+"))
        read_now(slow, device_id, every, t_now)


# ---- judging -----------------------------------------------------------------------


@dataclass
class Verdict:
    status: Status
    reason: str
    findings: list[Finding]
    values: HostValues | None


def judge_host(
    t: Target,
    got: Gathered,
    memory: dict[str, Any],
    clock_drift_max_s: float,
    now: dt.datetime,
    disk_full_pct: float = 95.0,
) -> Verdict:
    """Facts (or the errors met) → status, reason, findings; updates `memory`.

    Pure apart from `memory` (the device's remembered facts), so it is tested
    without a network.
    """
    findings: list[Finding] = []
    if got.driver is None:
        return _no_answer(t, got.errors)

    f = got.facts
    info = f.info or DeviceInfo()
    values = HostValues(
        up=True,
        uptime_s=f.uptime_s,
        clock_offset_s=got.clock_offset_s,
        model=info.model,
        firmware=info.firmware,
        serial=info.serial,
        device_status=info.status,
    )
    problems: list[str] = []
    notes: list[str] = []
    status = Status.OK

    if info.healthy is False:
        # The device's own verdict on itself (Synology systemStatus, Dahua deviceStatus).
        problems.append(f"{t.label}回報自身狀態異常（{info.status}）")
        status = Status.FAIL

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

    for name, exc in got.passed_over:
        # A listed protocol that did not work while another did: the device is up, and
        # the custodian should know that one of its interfaces is broken.
        notes.append(f"{PROTOCOL_WORDS.get(name, name)} 無法使用：{exc.zh_reason}")

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

    if got.disks is not None and not t.is_recorder:
        # The camera's own card or share, judged as its storage (the recorder's disks
        # are the recording check's).
        storage = judge_disks(got.disks, disk_full_pct, got.overwrite, memory)
        # A network share the camera cannot reach is its settings' problem, not the
        # camera failing (its page shows the share "offline" and the camera working).
        shares = {f"disk-{d.id}" for d in got.disks if d.kind == StorageKind.NAS}
        own = [x for x in storage.findings if x.subject not in shares]
        remote = [x.reason for x in storage.findings if x.subject in shares]
        # 「攝影機記憶卡 1 故障」: the camera's part, named as the camera's
        findings += [replace(x, reason=f"{t.label}{x.reason}") for x in own]
        values = replace(values, disks=storage.values)
        notes += remote
        faults = [x.reason for x in own if x.code != FindingCode.DISK_FULL_OVERWRITE_UNKNOWN]
        if faults:
            problems += [f"{t.label}{p}" for p in faults]
            status = Status.FAIL
        told = set(faults) | set(remote)
        notes += [n for n in storage.notes if n not in told]
        if not faults and not storage.notes and storage.summary:
            notes.append(storage.summary)

    if problems:
        reason = "；".join(problems + notes)
    else:
        head = f"{t.label}正常運作"
        if got.driver == "snmp":
            # Only the SNMP agent answered: say so, and what it calls itself.
            who = info.model or info.description
            head += f"（SNMP 有回應：{who}）" if who else "（SNMP 有回應）"
        parts = [head]
        if f.uptime_s is not None:
            parts.append(f"已開機 {fmt_duration(f.uptime_s)}")
        reason = "，".join(parts)
        if notes:
            reason += "；" + "；".join(notes)
    return Verdict(status, reason, findings, values)


def _no_answer(t: Target, errors: list[DeviceError]) -> Verdict:
    """No driver told anything: why, in the words of the failure that explains most."""
    err = worst(errors)
    code = err.reason_code if err is not None else None
    snmp_only = all(p == Protocol.SNMP for p in t.protocols)
    refused = code in (ReasonCode.AUTH, ReasonCode.SNMP_AUTH) or (
        bool(errors) and all(e.reason_code == ReasonCode.FORBIDDEN for e in errors)
    )
    if err is not None and refused:
        # An endpoint the device forbids is not offered; a device that forbids every
        # question asked with this login has refused the login.
        reason = (
            f"{t.label}拒絕登入：帳號或密碼錯誤"
            if code == ReasonCode.AUTH
            else f"{t.label}拒絕登入：{err.zh_reason}"
        )
        found = [Finding(FindingCode.AUTH_FAILED, reason)]
        return Verdict(Status.FAIL, reason, found, HostValues(up=False))
    if err is not None and (
        code == ReasonCode.UNREACHABLE or (code == ReasonCode.SNMP_TIMEOUT and snmp_only)
    ):
        code_f = FindingCode.RECORDER_DOWN if t.is_recorder else FindingCode.CAMERA_UNREACHABLE
        reason = f"{t.label}無回應：{err.zh_reason}"
        return Verdict(Status.FAIL, reason, [Finding(code_f, reason)], HostValues(up=False))
    return Verdict(
        Status.UNKNOWN,
        f"無法判斷{t.label}狀態：{err.zh_reason if err else '沒有可用的通訊協定'}",
        [],
        None,
    )


def judge_signals(
    recorder_id: str,
    cameras: list[Camera],
    signals: list[ChannelSignal],
    recorder_up: bool,
    recorder_reason: str,
) -> list[tuple[str, Status, str, list[Finding], HostValues | None]]:
    """Host answers for a recorder's cameras that have no address of their own."""
    by_ch = {s.channel: s for s in signals}
    out: list[tuple[str, Status, str, list[Finding], HostValues | None]] = []
    for cam in cameras:
        if cam.kind == CameraKind.IP and cam.address is not None:
            continue  # probed directly
        label = channel_label(cam)
        if not recorder_up:
            out.append((cam.id, Status.UNKNOWN, f"{label}：{recorder_reason}", [], None))
            continue
        sig = by_ch.get(cam.channel)
        if sig is None or sig.signal is None:
            out.append(
                (
                    cam.id,
                    Status.OK,
                    f"{label}：主機正常運作（主機未提供訊號狀態）",
                    [],
                    HostValues(signal=None, recorder=recorder_id),
                )
            )
        elif sig.signal:
            out.append(
                (
                    cam.id,
                    Status.OK,
                    f"{label}：視訊訊號正常",
                    [],
                    HostValues(signal=True, recorder=recorder_id),
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
                    HostValues(signal=False, recorder=recorder_id),
                )
            )
    return out


# ---- the probe ---------------------------------------------------------------------


@check_probe(CheckKind.HOST)
async def probe_host(device_id: str, run: ProbeRun) -> list[CheckResult]:
    """The host check of one device (a recorder also answers for its channels)."""
    ctx, result = run.ctx, run.result
    t = target_of(device_id, ctx)
    if t is None:
        if device_id in ctx.inventory.cameras:
            cam = ctx.inventory.cameras[device_id]
            return [result(device_id, Status.UNKNOWN, f"{channel_label(cam)}：由主機檢查回報")]
        return [result(device_id, Status.UNKNOWN, "清冊中沒有這個裝置")]

    timeout = run.budget
    want_signals = t.is_recorder and any(
        c.kind == CameraKind.ANALOG or c.address is None for c in ctx.inventory.cameras_of(t.id)
    )
    try:
        link = DeviceLink(t, ctx, login(t, ctx), run.clock_skew_s)
    except SecretError as exc:
        return [result(device_id, Status.UNKNOWN, f"無法取得登入密碼：{exc}")]
    got = Gathered()
    try:
        async with asyncio.timeout(run.remaining()):
            await gather(link, want_signals, got, want_storage=not t.is_recorder)
    except TimeoutError:
        got.errors.append(DeviceError(ReasonCode.TIMEOUT, f"主機無回應（逾時 {timeout:g} 秒）"))
    finally:
        await link.aclose()

    tcp_listed = Protocol.RTSP in t.protocols or any(d.http for d in drivers_for(t.protocols))
    # It answered, refusing: an SNMP user it rejects, or every question forbidden.
    refused = any(e.reason_code == ReasonCode.SNMP_AUTH for e in got.errors) or (
        bool(got.errors) and all(e.reason_code == ReasonCode.FORBIDDEN for e in got.errors)
    )
    if got.driver is None and tcp_listed and not refused and not any(
        e.final for e in got.errors
    ):
        # No protocol gave an answer: is anything listening on a port the inventory
        # lists? (An SNMP-only recorder lists none: its agent's silence is the answer.)
        port = last_resort_port(t)
        limit = max(0.2, min(3.0, run.remaining()))
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
        got.errors.append(DeviceError(ReasonCode.UNREACHABLE, f"無法連線到主機（埠 {port}）"))

    memory = ctx.memory.fact(device_id)
    v = judge_host(
        t, got, memory, ctx.config.clock_drift_max_s, run.at, ctx.config.disk_full_pct
    )
    out = [result(device_id, v.status, v.reason, v.findings, v.values, got.driver)]
    if t.is_recorder:
        cams = ctx.inventory.cameras_of(t.id)
        for cam_id, st, reason, fnd, vals in judge_signals(
            t.id, cams, got.facts.signals, got.driver is not None, v.reason
        ):
            out.append(result(cam_id, st, reason, fnd, vals, got.driver))
    return out
