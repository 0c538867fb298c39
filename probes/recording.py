"""The recording check — 錄影監材是否正常運轉: is each camera channel being recorded, is
the newest footage fresh, are there gaps in the last 24 hours, are the disks healthy and
not full, and is footage kept as long as the rules say (八(三)(四)).

Sources, in order: ONVIF recording search (GetRecordingSummary, FindRecordings) and
recording control (GetRecordingJobs / GetRecordingJobState); ISAPI (ContentMgmt/Storage,
record/tracks, ContentMgmt/search) — Hikvision answers ONVIF search with nothing; Dahua
CGI (storageDevice, mediaFileFind); SNMP disk tables when no other protocol gives disks.
ISAPI and Dahua also give the recorded spans, hence the gaps, which ONVIF search does not.

One result for the recorder (disks, retention; values per disk) and one `recording`
result per camera channel of that recorder (device = the camera's id).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from camwatch.secrets import SecretError
from inventory.models import Camera, Protocol, Recorder
from probes.api import ProbeContext
from probes.drivers.dahua import DahuaClient
from probes.drivers.http import DeviceError, DeviceHttp, base_url, limits_for
from probes.drivers.isapi import IsapiClient, spans_to_recording
from probes.drivers.onvif import (
    OnvifSession,
    RecordingInfo,
    RecordingJob,
    RecordingSummary,
    channel_of,
)
from probes.drivers.onvif import prepare as onvif_prepare
from probes.facts import ChannelRecording, Disk, DiskStatus
from probes.host import (
    FINAL_CODES,
    Target,
    campus_tz,
    channel_label,
    clock_skew,
    fmt_duration,
    login,
    target_of,
)
from probes.result import CheckKind, CheckResult, Finding, FindingCode, ResultFactory, Status, Value

GAP_MIN = dt.timedelta(seconds=60)
_JOB_ACTIVE = {"active", "partiallyactive"}
_REC_ACTIVE = {"recording", "initiated"}


@dataclass
class RecFacts:
    disks: list[Disk] | None = None  # None: no source told us
    channels: dict[int, ChannelRecording] = field(default_factory=dict)
    gaps_known: bool = False
    # device clock - probe clock: footage times are the device's, so ages are measured
    # against the device's own "now" (a drifting clock is the host check's finding).
    clock_offset_s: float | None = None
    timed_out: bool = False
    # ONVIF GetRecordingSummary, when the recorder offers no per-recording search
    summary: RecordingSummary | None = None
    drivers: list[str] = field(default_factory=list)
    errors: list[DeviceError] = field(default_factory=list)


# ---- gathering ---------------------------------------------------------------------


def onvif_channels(
    infos: list[RecordingInfo], jobs: list[RecordingJob]
) -> dict[int, ChannelRecording]:
    """ONVIF recordings and jobs → per channel (no gaps: ONVIF search has no spans)."""
    job_by_rec: dict[str, RecordingJob] = {}
    for j in jobs:
        if j.recording_token:
            job_by_rec[j.recording_token] = j
    out: dict[int, ChannelRecording] = {}
    for n, info in enumerate(infos, start=1):
        ch = channel_of(info, n)
        job: RecordingJob | None = job_by_rec.get(info.token)
        recording: bool | None = None
        if job is not None and (job.state or job.mode):
            recording = (job.state or job.mode or "").lower() in _JOB_ACTIVE
        elif info.status:
            recording = info.status.lower() in _REC_ACTIVE
        out[ch] = ChannelRecording(
            channel=ch, recording=recording, newest=info.latest, oldest=info.earliest
        )
    return out


async def _onvif(t: Target, ctx: ProbeContext, cred: tuple[str, str] | None, f: RecFacts) -> None:
    user, pw = cred if cred else (None, None)
    async with OnvifSession(
        t.address.host,
        t.address.effective_onvif_port,
        user,
        pw,
        limits_for(t.address, ctx.config),
        scheme=t.address.scheme,
        path=t.address.onvif_path,
    ) as s:
        await s.system_time()  # aligns WS-Security timestamps with the device clock
        if s.clock_offset is not None:
            f.clock_offset_s = s.clock_offset.total_seconds()
        if not await s.supports("search"):
            return
        try:
            infos = await s.find_recordings()
        except DeviceError as exc:
            if exc.reason_code in FINAL_CODES:
                raise
            # No per-recording search: the summary still says what the recorder holds.
            summary = await s.recording_summary()
            if summary.number_recordings and summary.data_until is not None:
                f.summary = summary
                f.drivers.append("onvif")
            return
        jobs: list[RecordingJob] = []
        if infos and await s.supports("recording"):
            try:
                jobs = await s.recording_jobs()
            except DeviceError as exc:
                if exc.reason_code in FINAL_CODES:
                    raise
    if infos:
        f.channels = onvif_channels(infos, jobs)
        f.drivers.append("onvif")


def _onvif_known_empty(memory: dict[str, Any], now: dt.datetime) -> bool:
    seen = memory.get("onvif_search_empty_at")
    if not isinstance(seen, str):
        return False
    try:
        return now - dt.datetime.fromisoformat(seen) < dt.timedelta(hours=1)
    except (TypeError, ValueError):
        return False


def _oldest_cached(memory: dict[str, Any], ch: int, now: dt.datetime) -> dt.datetime | None:
    """Oldest footage changes slowly: searched again at most hourly."""
    entry = memory.get("oldest", {}).get(str(ch))
    if not isinstance(entry, list) or len(entry) != 2:
        return None
    try:
        checked = dt.datetime.fromisoformat(entry[1])
        if now - checked > dt.timedelta(hours=1):
            return None
        return dt.datetime.fromisoformat(entry[0])
    except (TypeError, ValueError):
        return None


def _remember_oldest(
    memory: dict[str, Any], ch: int, oldest: dt.datetime | None, now: dt.datetime
) -> None:
    if oldest is not None:
        memory.setdefault("oldest", {})[str(ch)] = [oldest.isoformat(), now.isoformat()]


async def _isapi(
    t: Target,
    ctx: ProbeContext,
    cred: tuple[str, str] | None,
    f: RecFacts,
    now: dt.datetime,
    want_channels: bool,
) -> None:
    memory = ctx.memory.fact(t.id)
    async with DeviceHttp(limits_for(t.address, ctx.config), cred) as http:
        c = IsapiClient(http, base_url(t.address))
        f.disks = await c.disks()
        await _clock(c, f)
        f.drivers.append("isapi")
        if not want_channels:
            return
        tracks = await c.tracks()
        window = now - dt.timedelta(hours=24)
        for tid, (ch, enabled) in sorted(tracks.items()):
            if tid % 100 != 1:
                continue
            recent = await c.search(tid, window, now)
            oldest = _oldest_cached(memory, ch, now)
            if oldest is None:
                oldest = await c.oldest(tid, now)
                _remember_oldest(memory, ch, oldest, now)
            _merge(f, {ch: spans_to_recording(ch, enabled, recent, oldest, GAP_MIN)})


async def _dahua(
    t: Target,
    ctx: ProbeContext,
    cred: tuple[str, str] | None,
    f: RecFacts,
    now: dt.datetime,
    channels: list[int],
) -> None:
    memory = ctx.memory.fact(t.id)
    async with DeviceHttp(limits_for(t.address, ctx.config), cred) as http:
        c = DahuaClient(http, base_url(t.address), campus_tz(ctx))
        f.disks = await c.disks()
        await _clock(c, f)
        f.drivers.append("dahua")
        window = now - dt.timedelta(hours=24)
        for ch in channels:
            recent = await c.find_spans(ch, window, now)
            oldest = _oldest_cached(memory, ch, now)
            if oldest is None:
                early = await c.find_spans(
                    ch, dt.datetime(2000, 1, 1, tzinfo=dt.UTC), now, max_pages=1
                )
                oldest = min((s for s, _ in early), default=None)
                _remember_oldest(memory, ch, oldest, now)
            _merge(f, {ch: spans_to_recording(ch, None, recent, oldest, GAP_MIN)})


async def _clock(c: IsapiClient | DahuaClient, f: RecFacts) -> None:
    """The device clock (ISAPI also learns its UTC offset here, for its searches)."""
    t0 = time.time()
    try:
        dtime = await c.time()
    except DeviceError as exc:
        if exc.reason_code in FINAL_CODES:
            raise
        return
    if dtime.utc is not None and f.clock_offset_s is None:
        f.clock_offset_s = dtime.utc.timestamp() - (t0 + time.time()) / 2


def _merge(f: RecFacts, vendor: dict[int, ChannelRecording]) -> None:
    """Vendor spans (with gaps) win; ONVIF's job state fills what the vendor lacks."""
    for ch, rec in vendor.items():
        prev = f.channels.get(ch)
        recording = rec.recording
        if prev is not None and prev.recording is not None:
            recording = prev.recording if recording is None else (recording and prev.recording)
        f.channels[ch] = ChannelRecording(
            channel=ch,
            recording=recording,
            newest=rec.newest or (prev.newest if prev else None),
            oldest=rec.oldest or (prev.oldest if prev else None),
            gaps=rec.gaps,
        )
    if vendor:
        f.gaps_known = True


async def _snmp_disks(t: Target, ctx: ProbeContext, f: RecFacts) -> None:
    if t.recorder is None or t.recorder.snmp is None:
        return
    try:
        from probes.drivers import snmp
    except ImportError:  # pragma: no cover
        return
    try:
        target = snmp.target_for(
            t.recorder, ctx.secrets, timeout=min(3.0, ctx.config.timeout / 3), retries=0
        )
    except (SecretError, ValueError):
        return
    reading = await snmp.read_recorder(target, t.recorder.vendor.value)
    if reading.error is not None:
        f.errors.append(DeviceError("snmp", reading.error.reason))
        return
    disks: list[Disk] = []
    # Numbered 1..N in table order, as custodians count the disks in the box (the SNMP
    # row index, e.g. hrDeviceIndex 1552, means nothing to them; it stays in the name).
    for n, d in enumerate(reading.disks, start=1):
        status = {
            "ok": DiskStatus.OK,
            "warning": DiskStatus.OK,
            "failed": DiskStatus.FAILED,
            "full": DiskStatus.FULL,
        }.get(str(d.health), DiskStatus.UNKNOWN)
        disks.append(
            Disk(
                id=str(n),
                status=status,
                capacity_bytes=d.capacity_bytes,
                free_bytes=d.free_bytes,
                name=f"{d.name} ({d.table} {d.index})",
                raw_status=d.status_text,
            )
        )
    if not disks:
        for st in reading.storage:
            if st.kind in ("fixed-disk", "network-disk"):
                disks.append(
                    Disk(
                        id=str(len(disks) + 1),
                        status=DiskStatus.OK,
                        capacity_bytes=st.size_bytes,
                        free_bytes=st.free_bytes,
                        name=st.descr,
                    )
                )
    if disks:
        f.disks = disks
        f.drivers.append("snmp")


async def gather(
    t: Target, ctx: ProbeContext, rec: Recorder, now: dt.datetime, f: RecFacts
) -> RecFacts:
    """Fill `f` (in place, so that what was learnt survives a timeout)."""
    cred = login(t, ctx)
    protos = t.protocols
    channel_numbers = sorted({c.channel for c in ctx.inventory.cameras_of(rec.id)})
    steps: list[tuple[str, Any]] = []
    memory = ctx.memory.fact(t.id)
    vendor_api = Protocol.ISAPI in protos or Protocol.DAHUA in protos
    if Protocol.ONVIF in protos and not (vendor_api and _onvif_known_empty(memory, now)):
        steps.append(("onvif", lambda: _onvif(t, ctx, cred, f)))
    if Protocol.ISAPI in protos:
        steps.append(("isapi", lambda: _isapi(t, ctx, cred, f, now, True)))
    if Protocol.DAHUA in protos:
        steps.append(("dahua", lambda: _dahua(t, ctx, cred, f, now, channel_numbers)))
    for name, step in steps:
        try:
            await step()
        except DeviceError as exc:
            f.errors.append(exc)
            if exc.reason_code in FINAL_CODES:
                return f
        if name == "onvif" and "onvif" not in f.drivers:
            # Hikvision answers ONVIF recording search with nothing: ask the vendor API
            # directly for the next hour instead of repeating five empty SOAP calls.
            memory["onvif_search_empty_at"] = now.isoformat()
    if f.disks is None and Protocol.SNMP in protos:
        try:
            async with asyncio.timeout(max(1.0, ctx.config.timeout / 3)):
                await _snmp_disks(t, ctx, f)
        except TimeoutError:
            f.errors.append(DeviceError("timeout", "SNMP 無回應"))
    return f


# ---- judging (pure) ------------------------------------------------------------------


def _gb(n: int | None) -> str:
    return "?" if n is None else f"{n / 1024**3:.1f} GB"


@dataclass
class ChannelVerdict:
    camera: Camera
    status: Status
    reason: str
    findings: list[Finding]
    values: dict[str, Value]


def judge_channel(
    cam: Camera,
    rec: ChannelRecording | None,
    now: dt.datetime,
    footage_max_age_s: float,
    gaps_known: bool,
    missing: str = "主機未回報此路的錄影資料",
) -> ChannelVerdict:
    label = channel_label(cam)
    if rec is None:
        return ChannelVerdict(cam, Status.UNKNOWN, f"{label}：{missing}", [], {})
    values: dict[str, Value] = {"channel": cam.channel, "recording": rec.recording}
    problems: list[str] = []
    findings: list[Finding] = []
    age = (now - rec.newest).total_seconds() if rec.newest else None
    values["newest_age_s"] = round(age, 1) if age is not None else None
    oldest = plausible(rec.oldest)
    if oldest is not None:
        values["retention_days"] = round((now - oldest).total_seconds() / 86400, 2)
    stopped = False
    if rec.recording is False:
        stopped = True
        msg = f"{label}錄影已停止"
        if age is not None and age > footage_max_age_s:
            msg = f"{label}錄影已停止，已 {fmt_duration(age)}無新錄影"
        problems.append(msg)
    elif age is None:
        stopped = True
        problems.append(f"{label}24 小時內沒有錄影")
    elif age > footage_max_age_s:
        stopped = True
        problems.append(f"{label}已 {fmt_duration(age)}無新錄影")
    if stopped:
        findings.append(Finding(FindingCode.RECORDING_STOPPED, problems[-1], subject=cam.id))
    window = now - dt.timedelta(hours=24)
    gaps = [(max(a, window), b) for a, b in rec.gaps if b > window and b - max(a, window) > GAP_MIN]
    if gaps_known:
        values["gaps_24h"] = len(gaps)
        values["gap_s_24h"] = round(sum((b - a).total_seconds() for a, b in gaps), 1)
    if gaps:
        total = sum((b - a).total_seconds() for a, b in gaps)
        msg = f"{label}24 小時內錄影中斷 {len(gaps)} 次，共 {fmt_duration(total)}"
        problems.append(msg)
        findings.append(Finding(FindingCode.RECORDING_GAP, msg, subject=cam.id))
    if problems:
        return ChannelVerdict(cam, Status.FAIL, "；".join(problems), findings, values)
    return ChannelVerdict(
        cam, Status.OK, f"{label}錄影正常（最新錄影 {fmt_duration(age or 0)}前）", [], values
    )


def judge_disks(
    disks: list[Disk] | None, disk_full_pct: float, overwrite: bool = False
) -> tuple[list[str], list[Finding], dict[str, Value]]:
    """Disk faults. On a recorder that overwrites old footage, a full disk is normal
    (retention days are judged instead), so only a failed disk counts there."""
    problems: list[str] = []
    findings: list[Finding] = []
    values: dict[str, Value] = {}
    if disks is None:
        return problems, findings, values
    values["disks"] = len(disks)
    for d in disks:
        key = f"disk.{d.id}"
        values[f"{key}.free_bytes"] = d.free_bytes
        values[f"{key}.capacity_bytes"] = d.capacity_bytes
        free_pct: float | None = None
        if d.capacity_bytes and d.free_bytes is not None:
            free_pct = 100.0 * d.free_bytes / d.capacity_bytes
        ok = True
        if d.status == DiskStatus.FAILED:
            ok = False
            msg = f"硬碟 {d.id} 故障" + (f"（{d.raw_status}）" if d.raw_status else "")
            problems.append(msg)
            findings.append(Finding(FindingCode.DISK_FAILED, msg, subject=f"disk-{d.id}"))
        elif not overwrite and (
            d.status == DiskStatus.FULL
            or (free_pct is not None and free_pct < 100.0 - disk_full_pct)
        ):
            ok = False
            shown = f"剩 {free_pct:.0f}%" if free_pct is not None else "已滿"
            msg = f"硬碟 {d.id} 空間不足（{shown}，{_gb(d.free_bytes)} / {_gb(d.capacity_bytes)}）"
            problems.append(msg)
            findings.append(Finding(FindingCode.DISK_FULL, msg, subject=f"disk-{d.id}"))
        values[f"{key}.ok"] = None if (d.status == DiskStatus.UNKNOWN and ok) else ok
    return problems, findings, values


# Recorders report 1970 (an unset clock at first boot) as their earliest footage.
_PLAUSIBLE_SINCE = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def plausible(t: dt.datetime | None) -> dt.datetime | None:
    return t if t is not None and t >= _PLAUSIBLE_SINCE else None


def judge_retention(
    rec: Recorder,
    channels: dict[int, ChannelRecording],
    min_days: int,
    max_days: int,
    hold: bool,
    now: dt.datetime,
) -> tuple[list[str], list[Finding], dict[str, Value]]:
    oldest = [o for o in (plausible(c.oldest) for c in channels.values()) if o is not None]
    if not oldest:
        return [], [], {"retention_days": None}
    days_each = [(now - o).total_seconds() / 86400 for o in oldest]
    shortest, longest = min(days_each), max(days_each)
    values: dict[str, Value] = {
        "retention_days": round(shortest, 2),
        "retention_max_days": round(longest, 2),
        "legal_hold": hold,
    }
    problems: list[str] = []
    findings: list[Finding] = []
    if shortest < min_days:
        msg = f"錄影只保存 {shortest:.0f} 天，少於規定的 {min_days} 天"
        problems.append(msg)
        findings.append(Finding(FindingCode.RETENTION_TOO_SHORT, msg, subject=rec.id))
    if longest > max_days and not hold:
        msg = f"錄影保存 {longest:.0f} 天，超過規定的 {max_days} 天（應銷毀，或登錄調查保存）"
        problems.append(msg)
        findings.append(Finding(FindingCode.RETENTION_TOO_LONG, msg, subject=rec.id))
    return problems, findings, values


# ---- the probe -----------------------------------------------------------------------


async def probe_recording(device_id: str, ctx: ProbeContext) -> list[CheckResult]:
    """The recording check of one recorder and its camera channels; never raises."""
    started = time.monotonic()
    at = ctx.now()
    try:
        return await _probe(device_id, ctx, started, at)
    except Exception as exc:  # a bug must not stop the service
        result = ResultFactory(CheckKind.RECORDING, at, started)
        return [result(device_id, Status.UNKNOWN, f"檢查程式發生錯誤（{type(exc).__name__}）")]


async def _probe(
    device_id: str, ctx: ProbeContext, started: float, at: dt.datetime
) -> list[CheckResult]:
    result = ResultFactory(CheckKind.RECORDING, at, started)

    inv = ctx.inventory
    rec = inv.recorders.get(device_id)
    t = target_of(device_id, ctx)
    if rec is None or t is None:
        if device_id in inv.cameras:
            return [result(device_id, Status.UNKNOWN, "錄影由主機的錄影檢查回報")]
        return [result(device_id, Status.UNKNOWN, "清冊中沒有這個主機")]
    cams = sorted(inv.cameras_of(rec.id), key=lambda c: c.channel)
    timeout = ctx.config.timeout
    if Protocol.ONVIF in t.protocols:
        await onvif_prepare()  # WSDL parsing, once per process (the first probe only)
    # Finish inside the scheduler's own timeout (the same setting). Channels are added
    # to `facts` as each one is searched, so a recorder too slow to answer every channel
    # in time still gets its disks and the channels it did answer judged.
    facts = RecFacts()
    try:
        async with asyncio.timeout(max(0.2, started + 0.9 * timeout - time.monotonic())):
            await gather(t, ctx, rec, at, facts)
    except SecretError as exc:
        reason = f"無法取得登入密碼：{exc}"
        return [result(device_id, Status.UNKNOWN, reason)] + [
            result(c.id, Status.UNKNOWN, f"{channel_label(c)}：{reason}") for c in cams
        ]
    except TimeoutError:
        facts.errors.append(DeviceError("timeout", f"主機無回應（逾時 {timeout:g} 秒）"))
        facts.timed_out = True

    if not facts.drivers:
        err = next((e for e in facts.errors if e.reason_code in FINAL_CODES), None)
        err = err or (facts.errors[0] if facts.errors else None)
        why = err.zh_reason if err else "主機沒有可查詢錄影的通訊協定"
        reason = f"無法檢查錄影：{why}"
        return [result(device_id, Status.UNKNOWN, reason)] + [
            result(c.id, Status.UNKNOWN, f"{channel_label(c)}：{reason}") for c in cams
        ]

    driver = "+".join(facts.drivers)
    cfg = ctx.config
    if not facts.channels and facts.summary is not None:
        # Only the whole recorder's newest and oldest footage: applied to each channel
        # (a recorder that stopped altogether is caught; one silent channel is not).
        newest, oldest = facts.summary.data_until, facts.summary.data_from
        facts.channels = {
            c.channel: ChannelRecording(c.channel, None, newest, oldest) for c in cams
        }
    # Footage times are in the device's clock: compare them with the device's "now"
    # (the offset was measured against the host's clock; `at` is the probes' clock).
    offset = 0.0
    if facts.clock_offset_s is not None:
        offset = facts.clock_offset_s - clock_skew(at, started)
    dev_now = at + dt.timedelta(seconds=offset)
    out: list[CheckResult] = []
    ch_verdicts = [
        judge_channel(
            c,
            facts.channels.get(c.channel),
            dev_now,
            cfg.footage_max_age_s,
            facts.gaps_known,
            f"主機回覆太慢，{timeout:g} 秒內未查完此路"
            if facts.timed_out
            else "主機未回報此路的錄影資料",
        )
        for c in cams
    ]
    disk_problems, disk_findings, values = judge_disks(
        facts.disks, cfg.disk_full_pct, rec.overwrite
    )
    policy = inv.retention_for(rec.id)
    hold = inv.legal_hold_for(rec.id, at.date()) is not None
    ret_problems, ret_findings, ret_values = judge_retention(
        rec, facts.channels, policy.min_days, policy.max_days, hold, dev_now
    )
    values.update(ret_values)
    ages = [v.values.get("newest_age_s") for v in ch_verdicts]
    num_ages = [a for a in ages if isinstance(a, int | float)]
    values["newest_age_s"] = max(num_ages) if num_ages else None
    values["channels_recording"] = sum(1 for v in ch_verdicts if v.status == Status.OK)
    values["channels_failing"] = sum(1 for v in ch_verdicts if v.status == Status.FAIL)
    values["channels_unknown"] = sum(1 for v in ch_verdicts if v.status == Status.UNKNOWN)

    problems = disk_problems + ret_problems
    failing = [v for v in ch_verdicts if v.status == Status.FAIL]
    if failing:
        names = "、".join(f"第 {v.camera.channel} 路" for v in failing[:6])
        more = f"等 {len(failing)} 路" if len(failing) > 6 else ""
        problems.append(f"{names}{more}錄影異常")
    if problems:
        status, reason = Status.FAIL, "；".join(problems)
    elif ch_verdicts and all(v.status == Status.UNKNOWN for v in ch_verdicts):
        status, reason = Status.UNKNOWN, "主機未回報各路的錄影資料"
    elif facts.timed_out:
        missing = sum(1 for v in ch_verdicts if v.status == Status.UNKNOWN)
        status = Status.UNKNOWN
        reason = f"主機回覆太慢：{timeout:g} 秒內只查完部分通道（{missing} 路未查）"
    else:
        status = Status.OK
        reason = "錄影正常"
        if values.get("retention_days") is not None:
            reason += f"（保存 {values['retention_days']:.0f} 天）"
    out.append(result(device_id, status, reason, disk_findings + ret_findings, values, driver))
    for v in ch_verdicts:
        out.append(result(v.camera.id, v.status, v.reason, v.findings, v.values, driver))
    return out
