"""The recording check — 錄影監材是否正常運轉: is each camera channel being recorded, is
the newest footage fresh, are there gaps in the last 24 hours, are the disks healthy and
not full, and is footage kept as long as the rules say (八(三)(四)).

The drivers of the recorder's protocols are asked in the table's order of preference
(probes.gather) for disks and recordings: ONVIF recording search (GetRecordingSummary,
FindRecordings) and recording control (GetRecordingJobs / GetRecordingJobState); ISAPI
(ContentMgmt/Storage, record/tracks, ContentMgmt/search) — Hikvision answers ONVIF search
with nothing; Dahua CGI (storageDevice, mediaFileFind); SNMP disk tables when no other
protocol gives disks. ISAPI and Dahua also give the recorded spans, hence the gaps, which
ONVIF search does not: recordings count as answered only once spans are known.

One result for the recorder (disks, retention; values per disk) and one `recording`
result per camera channel of that recorder (device = the camera's id).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from dataclasses import dataclass, field

from inventory.models import Camera, Recorder
from probes.context import ProbeRun, SecretError, campus_tz, check_probe, login, target_of
from probes.drivers.base import Ability, DeviceLink, DriverSession
from probes.drivers.table import drivers_for
from probes.facts import GAP_MIN, ChannelRecording, Disk
from probes.gather import Asked, ask_drivers
from probes.reasons import DeviceError, ReasonCode
from probes.result import CheckKind, CheckResult, Finding, FindingCode, Status
from probes.storage import StorageVerdict, any_full, judge_disks
from probes.values import RecordingValues
from probes.wording import channel_label, fmt_duration

__all__ = ["RecFacts", "StorageVerdict", "judge_channel", "judge_disks", "judge_retention"]


@dataclass
class RecFacts:
    """What the drivers told about a recorder's recording, merged by one rule (the
    preferred driver's answer stands; see `channel`). A RecordingSink."""

    disks: list[Disk] | None = None  # None: no source told us
    # Whether the recorder overwrites its oldest footage when full: the inventory's
    # word, else the device's setting where its API tells (None: nobody could say).
    overwrite: bool | None = None
    overwrite_asked: bool = False
    disk_full_pct: float = 95.0
    channels: dict[int, ChannelRecording] = field(default_factory=dict)
    gaps_known: bool = False
    # device clock - probe clock: footage times are the device's, so ages are measured
    # against the device's own "now" (a drifting clock is the host check's finding).
    clock_offset_s: float | None = None
    timed_out: bool = False
    # Only the recorder's newest and oldest footage (ONVIF GetRecordingSummary, when
    # the recorder offers no per-recording search)
    summary_newest: dt.datetime | None = None
    summary_oldest: dt.datetime | None = None
    drivers: list[str] = field(default_factory=list)
    errors: list[DeviceError] = field(default_factory=list)

    def channel(self, rec: ChannelRecording, *, spans: bool) -> None:
        """Spans (with gaps) win over a recording without them; a job state that says
        a channel is not recording stands whoever says it is."""
        prev = self.channels.get(rec.channel)
        if prev is None:
            self.channels[rec.channel] = rec
        elif spans:
            recording = rec.recording
            if prev.recording is not None:
                recording = prev.recording if recording is None else (recording and prev.recording)
            self.channels[rec.channel] = ChannelRecording(
                channel=rec.channel,
                recording=recording,
                newest=rec.newest or prev.newest,
                oldest=rec.oldest or prev.oldest,
                gaps=rec.gaps,
            )
        if spans:
            self.gaps_known = True

    def summary(self, newest: dt.datetime | None, oldest: dt.datetime | None) -> None:
        if self.summary_newest is None:
            self.summary_newest, self.summary_oldest = newest, oldest

    def clock(self, offset_s: float | None) -> None:
        if self.clock_offset_s is None:
            self.clock_offset_s = offset_s

    def missing(self) -> set[Ability]:
        out = set()
        if self.disks is None:
            out.add(Ability.DISKS)
        elif (
            self.overwrite is None
            and not self.overwrite_asked
            and any_full(self.disks, self.disk_full_pct)
        ):
            out.add(Ability.OVERWRITE)  # only a full disk needs the setting
        if not self.gaps_known:  # channels without spans: a vendor API may have them
            out.add(Ability.RECORDINGS)
        return out


# Disks first: the vendor APIs answer them at once (and a recorder that cannot is not
# asked for its footage), its overwrite setting when a disk is full, then the recordings.
ORDER = (Ability.DISKS, Ability.OVERWRITE, Ability.RECORDINGS)


async def gather(link: DeviceLink, now: dt.datetime, f: RecFacts) -> RecFacts:
    """Fill `f` (in place, so that what was learnt survives the deadline)."""

    async def ask(s: DriverSession, ability: Ability) -> bool:
        if ability == Ability.DISKS:
            disks = await s.disks()
            if disks is None:
                return False
            f.disks = disks
            return True
        if ability == Ability.OVERWRITE:
            f.overwrite_asked = True  # asked once, whatever it answers
            f.overwrite = await s.overwrite()
            return f.overwrite is not None
        return await s.recordings(now, f)

    asked = Asked(answered=f.drivers, errors=f.errors)
    await ask_drivers(link, ORDER, f.missing, ask, asked)
    return f


# ---- judging (pure) ------------------------------------------------------------------


@dataclass
class ChannelVerdict:
    camera: Camera
    status: Status
    reason: str
    findings: list[Finding]
    values: RecordingValues | None


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
        return ChannelVerdict(cam, Status.UNKNOWN, f"{label}：{missing}", [], None)
    problems: list[str] = []
    findings: list[Finding] = []
    age = (now - rec.newest).total_seconds() if rec.newest else None
    oldest = plausible(rec.oldest)
    values = RecordingValues(
        channel=cam.channel,
        recording=rec.recording,
        newest_age_s=round(age, 1) if age is not None else None,
        retention_days=(
            round((now - oldest).total_seconds() / 86400, 2) if oldest is not None else None
        ),
    )
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
        values = dataclasses.replace(
            values,
            gaps_24h=len(gaps),
            gap_s_24h=round(sum((b - a).total_seconds() for a, b in gaps), 1),
        )
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
) -> tuple[list[str], list[Finding], RecordingValues]:
    """The retention rules (八(三)(四)); the values hold the retention figures."""
    oldest = [o for o in (plausible(c.oldest) for c in channels.values()) if o is not None]
    if not oldest:
        return [], [], RecordingValues()
    days_each = [(now - o).total_seconds() / 86400 for o in oldest]
    shortest, longest = min(days_each), max(days_each)
    values = RecordingValues(
        retention_days=round(shortest, 2),
        retention_max_days=round(longest, 2),
        legal_hold=hold,
    )
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


@check_probe(CheckKind.RECORDING)
async def probe_recording(device_id: str, run: ProbeRun) -> list[CheckResult]:
    """The recording check of one recorder and its camera channels."""
    ctx, result = run.ctx, run.result
    inv = ctx.inventory
    rec = inv.recorders.get(device_id)
    t = target_of(device_id, ctx)
    if rec is None or t is None:
        if device_id in inv.cameras:
            return [result(device_id, Status.UNKNOWN, "錄影由主機的錄影檢查回報")]
        return [result(device_id, Status.UNKNOWN, "清冊中沒有這個主機")]
    cams = sorted(inv.cameras_of(rec.id), key=lambda c: c.channel)
    timeout = run.budget
    at = run.at
    # Channels are added to `facts` as each one is searched, so a recorder too slow to
    # answer every channel in time still gets its disks and the channels it did answer
    # judged.
    facts = RecFacts(overwrite=rec.overwrite, disk_full_pct=ctx.config.disk_full_pct)
    try:
        link = DeviceLink(t, ctx, login(t, ctx), run.clock_skew_s)
    except SecretError as exc:
        reason = f"無法取得登入密碼：{exc}"
        return [result(device_id, Status.UNKNOWN, reason)] + [
            result(c.id, Status.UNKNOWN, f"{channel_label(c)}：{reason}") for c in cams
        ]
    try:
        async with asyncio.timeout(run.remaining()):
            await gather(link, at, facts)
    except TimeoutError:
        facts.errors.append(DeviceError(ReasonCode.TIMEOUT, f"主機無回應（逾時 {timeout:g} 秒）"))
        facts.timed_out = True
    finally:
        await link.aclose()

    if not facts.drivers:
        err = next((e for e in facts.errors if e.final), None)
        err = err or (facts.errors[0] if facts.errors else None)
        why = err.zh_reason if err else "清冊列出的通訊協定無法查詢錄影與硬碟"
        reason = f"無法檢查錄影：{why}"
        return [result(device_id, Status.UNKNOWN, reason)] + [
            result(c.id, Status.UNKNOWN, f"{channel_label(c)}：{reason}") for c in cams
        ]
    return judge_recorder(rec, cams, facts, run)


def judge_recorder(
    rec: Recorder, cams: list[Camera], facts: RecFacts, run: ProbeRun
) -> list[CheckResult]:
    """The recorder's result and one per camera channel, from what the drivers told."""
    ctx, result, at = run.ctx, run.result, run.at
    inv = ctx.inventory
    timeout = run.budget
    driver = "+".join(facts.drivers)
    cfg = ctx.config
    if not facts.channels and facts.summary_newest is not None:
        # Only the whole recorder's newest and oldest footage: applied to each channel
        # (a recorder that stopped altogether is caught; one silent channel is not).
        newest, oldest = facts.summary_newest, facts.summary_oldest
        facts.channels = {
            c.channel: ChannelRecording(c.channel, None, newest, oldest) for c in cams
        }
    # Footage times are in the device's clock: compare them with the device's "now".
    dev_now = at + dt.timedelta(seconds=facts.clock_offset_s or 0.0)
    searchable = any(Ability.RECORDINGS in d.abilities for d in drivers_for(rec.protocols))
    if facts.timed_out:
        missing_text = f"主機回覆太慢，{timeout:g} 秒內未查完此路"
    elif not searchable:
        listed = "、".join(p.value for p in rec.protocols)
        missing_text = f"清冊列出的通訊協定（{listed}）無法查詢各路錄影"
    else:
        missing_text = "主機未回報此路的錄影資料"
    ch_verdicts = [
        judge_channel(
            c, facts.channels.get(c.channel), dev_now, cfg.footage_max_age_s,
            facts.gaps_known, missing_text,
        )
        for c in cams
    ]
    storage = judge_disks(
        facts.disks, cfg.disk_full_pct, facts.overwrite, ctx.memory.fact(rec.id)
    )
    disk_findings, disks = storage.findings, storage.values
    policy = inv.retention_for(rec.id)
    # A hold runs until a date of the campus' calendar, not of UTC (Taipei's 00:00-08:00
    # is still yesterday in UTC); the metrics read it the same way.
    hold = inv.legal_hold_for(rec.id, at.astimezone(campus_tz(ctx)).date()) is not None
    ret_problems, ret_findings, retention = judge_retention(
        rec, facts.channels, policy.min_days, policy.max_days, hold, dev_now
    )
    ages = [v.values.newest_age_s for v in ch_verdicts if v.values is not None]
    num_ages = [a for a in ages if a is not None]
    values = dataclasses.replace(
        retention,
        disks=disks,
        newest_age_s=max(num_ages) if num_ages else None,
        channels_recording=sum(1 for v in ch_verdicts if v.status == Status.OK),
        channels_failing=sum(1 for v in ch_verdicts if v.status == Status.FAIL),
        channels_unknown=sum(1 for v in ch_verdicts if v.status == Status.UNKNOWN),
    )

    problems = storage.problems + ret_problems
    failing = [v for v in ch_verdicts if v.status == Status.FAIL]
    if failing:
        names = "、".join(f"第 {v.camera.channel} 路" for v in failing[:6])
        more = f"等 {len(failing)} 路" if len(failing) > 6 else ""
        problems.append(f"{names}{more}錄影異常")
    # What the storage page shows when it is healthy (sizes, use), and remarks that are
    # no fault (a full disk on a recorder that overwrites).
    told = "；".join(t for t in (storage.summary, *storage.notes) if t)
    if problems:
        status, reason = Status.FAIL, "；".join(problems + storage.notes)
    elif ch_verdicts and all(v.status == Status.UNKNOWN for v in ch_verdicts):
        status = Status.UNKNOWN
        if not searchable:
            listed = "、".join(p.value for p in rec.protocols)
            head = f"各路錄影無法查詢（清冊列出的通訊協定 {listed} 只提供硬碟狀態）"
        else:
            head = "主機未回報各路的錄影資料"
        reason = f"{head}；{told}" if told else head
    elif facts.timed_out:
        missing = sum(1 for v in ch_verdicts if v.status == Status.UNKNOWN)
        status = Status.UNKNOWN
        reason = f"主機回覆太慢：{timeout:g} 秒內只查完部分通道（{missing} 路未查）"
    else:
        status = Status.OK
        reason = "錄影正常"
        if values.retention_days is not None:
            reason += f"（保存 {values.retention_days:.0f} 天）"
        if told:
            reason += f"；{told}"
    out = [result(rec.id, status, reason, disk_findings + ret_findings, values, driver)]
    for v in ch_verdicts:
        out.append(result(v.camera.id, v.status, v.reason, v.findings, v.values, driver))
    return out
