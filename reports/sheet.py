"""The monthly maintenance sheet (附件四 保養紀錄簿) of one custodian unit, from the log.

`build_sheet(store, inventory, unit_id, "2026-11")` reads the inspection log and returns
a plain `Sheet`; `render_pdf(sheet)` and `render_xlsx(sheet)` lay it out like the paper
form. `produce(...)` does both steps for the CLI and the HTTP server.

Inspection dates (附件三 5(二), every `inspection_interval_days`, default 14): the month
is cut into consecutive periods of that many days from the 1st; the last period ends
with the month. Each period is inspected on its last day (14th, 28th, month end), and its
row answers 否 when the fault existed at ANY time in the period, so nothing between two
inspections is hidden. A month in progress stops at the moment the sheet is made (the
row is dated today and says so). See `camwatch.store.inspection_periods`.

One row per inspection date per recorder (監視主機); a recorder's row answers for the
recorder and all its cameras:
- 監視主機是否正常運作: the host checks of the recorder and of its IP cameras
  (a camera that cannot be reached, a lost video signal on a channel);
- 錄影監材是否正常運轉: the recording checks (recorder and per channel);
- 視訊畫面是否清晰: the picture checks of its cameras.
是 = judged normal all period; 否 = a fault at any time; neither box ticked = nothing
could be judged (no data, or only 無法判定 answers), said in the remarks.

A hole in the log is never read as normal: where camwatch was not running, or ran but
could not write the log (a full disk whose waiting results overflowed), the row says
「紀錄中斷」 with the times, and a check that was normal in the rest of the period is not
ticked 是 (a fault recorded outside the hole still answers 否). Holes come from the
writer sessions (`log_sessions`: from its start until the last committed batch) and the
recorded gaps (`log_gaps`); holes shorter than `gap_min_s` are sampling, not outages.
The log begins with the first session (a new install is not an interruption).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from camwatch.clock import now as clock_now
from camwatch.shards import covers
from camwatch.store import (
    AlertRecord,
    Transition,
    dumps_canonical,
    inspection_periods,
    status_times,
)
from inventory.models import Inventory, Recorder
from probes.result import CHECK_TITLES, CheckKind, FindingCode, Status
from probes.values import RecordingValues
from reports.model import (
    CHECK_SHORT,
    INSPECTOR,
    RETENTION_TITLE,
    AvailabilityLine,
    RetentionLine,
    Sheet,
    SheetRow,
    answer_text,
    kept_text,
    percent,
)

__all__ = [
    "CHECK_TITLES",
    "RETENTION_TITLE",
    "EmptyLogError",
    "ReportError",
    "Sheet",
    "answer_text",
    "build_sheet",
    "kept_text",
    "percent",
    "produce",
    "render_pdf",
    "render_xlsx",
]

MONTH_RE = re.compile(r"(\d{4})-(\d{2})", re.ASCII)


class ReportError(ValueError):
    """Bad report arguments or nothing to report; the message says what to do."""


class EmptyLogError(ReportError, LookupError):
    """Nothing recorded for that unit and month."""


class LogReader(Protocol):
    def transitions(
        self,
        devices: Iterable[str] | None = ...,
        start: dt.datetime | None = ...,
        end: dt.datetime | None = ...,
        checks: Iterable[CheckKind] | None = ...,
    ) -> list[Transition]: ...

    def alert_history(
        self,
        devices: Iterable[str] | None = ...,
        start: dt.datetime | None = ...,
        end: dt.datetime | None = ...,
    ) -> list[AlertRecord]: ...


# ------------------------------------------------------------------------ helpers


def roc_date(day: dt.date) -> str:
    """2026-11-23 -> 115/11/23 (民國紀年, as on the form)."""
    return f"{day.year - 1911}/{day.month:02d}/{day.day:02d}"


def roc_month(year: int, month: int) -> str:
    return f"{year - 1911}年{month}月"


def parse_month(text: str, now: dt.datetime | None,
                tz: str = "Asia/Taipei") -> tuple[int, int]:
    """'2026-11' -> (2026, 11); a clear ReportError for anything else or, given `now`, a
    month after the campus' current one (`now` None: the form only)."""
    m = MONTH_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise ReportError(f"month {text!r} is not of the form YYYY-MM (e.g. 2026-11)")
    year, month = int(m.group(1)), int(m.group(2))
    if not 1 <= month <= 12:
        raise ReportError(f"month {text!r}: the month must be 01 to 12")
    if year < 1912:
        raise ReportError(f"month {text!r}: the year must be 1912 (民國元年) or later")
    if now is None:
        return year, month
    today = now.astimezone(ZoneInfo(tz)).date()
    if (year, month) > (today.year, today.month):
        raise ReportError(
            f"month {text} is in the future (today is {today.isoformat()}); "
            "a sheet can be made for the current month or an earlier one"
        )
    return year, month


def _local(ts: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return ts.astimezone(zone)


def _hm(ts: dt.datetime, zone: ZoneInfo) -> str:
    return _local(ts, zone).strftime("%m/%d %H:%M")


def duration_text(seconds: float) -> str:
    """3725 -> 1小時2分; under a minute -> 不到1分鐘."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return "不到1分鐘"
    days, rem = divmod(minutes, 24 * 60)
    hours, mins = divmod(rem, 60)
    parts = []
    if days:
        parts.append(f"{days}天")
    if hours:
        parts.append(f"{hours}小時")
    if mins and not days:
        parts.append(f"{mins}分")
    return "".join(parts)


@dataclass
class _Episode:
    device: str  # the device at fault (camera for a channel finding)
    check: CheckKind
    start: dt.datetime
    end: dt.datetime | None  # when it was seen normal again; None: still at fault
    last_seen: dt.datetime
    reasons: list[str]
    alert_devices: set[str]


def _episodes(transitions: Sequence[Transition], inventory: Inventory) -> list[_Episode]:
    """Fault stretches per (device at fault, check), merging back-to-back rows.

    A recorder's failure without a finding of its own while its channels fail with
    theirs (「第 5 路錄影異常」) is those channels' fault, told once under each camera:
    like the alert engine, which raises no CheckFailed for it."""
    channels: dict[tuple[str, CheckKind], list[tuple[dt.datetime, dt.datetime]]] = \
        defaultdict(list)
    for t in transitions:
        if t.status == Status.FAIL and t.findings and t.device in inventory.cameras:
            channels[(inventory.cameras[t.device].recorder, t.check)].append(
                (t.started_at, t.end))
    atoms: list[tuple[str, CheckKind, Transition, str]] = []
    for t in transitions:
        if t.status != Status.FAIL:
            continue
        if not t.findings and any(a <= t.end and t.started_at <= b
                                  for a, b in channels.get((t.device, t.check), ())):
            continue
        if t.findings:
            for f in t.findings:
                if f.code in (FindingCode.RETENTION_TOO_LONG,):
                    continue  # a policy matter, reported under retention
                subject = f.subject if f.subject in inventory.cameras else t.device
                atoms.append((subject, t.check, t, f.reason or t.reason))
        else:
            atoms.append((t.device, t.check, t, t.reason))
    atoms.sort(key=lambda a: (a[0], a[1].value, a[2].started_at))
    out: list[_Episode] = []
    for subject, check, t, reason in atoms:
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev.device == subject
            and prev.check == check
            and (prev.end is None or t.started_at <= prev.end)
        ):
            if t.ended_at is None or (prev.end is not None and t.ended_at > prev.end):
                prev.end = t.ended_at
            prev.last_seen = max(prev.last_seen, t.last_seen_at)
            if reason and reason not in prev.reasons:
                prev.reasons.append(reason)
            prev.alert_devices.add(t.device)
            continue
        out.append(
            _Episode(
                device=subject,
                check=check,
                start=t.started_at,
                end=t.ended_at,
                last_seen=t.last_seen_at,
                reasons=[reason] if reason else [],
                alert_devices={subject, t.device},
            )
        )
    return out


def _place(device: str, inventory: Inventory) -> str:
    if device in inventory.cameras:
        position = inventory.cameras[device].position
        return position if position.endswith("鏡頭") else f"{position}鏡頭"
    if device in inventory.recorders:
        return inventory.recorders[device].name
    return device


def _recorder_label(rec: Recorder, inventory: Inventory) -> str:
    room = inventory.machine_rooms.get(rec.machine_room)
    where = room.name if room else rec.machine_room
    number = f"，財產編號 {rec.property_number}" if rec.property_number else ""
    return f"主機地點：{where}；機號：{rec.name}（{rec.id}{number}）"


REPORTED_AFTER = dt.timedelta(days=1)  # how long after a month its faults' alerts count


def _related_alerts(ep: _Episode, alerts: Sequence[AlertRecord]) -> list[AlertRecord]:
    """Repair alerts for this fault: the device's alerts fired while it lasted."""
    slack = dt.timedelta(minutes=10)
    return [
        a
        for a in alerts
        if a.device in ep.alert_devices
        and a.fired_at >= ep.start - slack
        and (ep.end is None or a.fired_at <= ep.end + slack)
    ]


def _repair_text(ep: _Episode, alerts: Sequence[AlertRecord], zone: ZoneInfo) -> str:
    related = _related_alerts(ep, alerts)
    if not related:
        return "未報修（故障未達告警條件）" if ep.end is not None else "尚未報修"
    parts = []
    for a in related[:3]:
        text = f"已申請修復 {_hm(a.fired_at, zone)}（{a.alertname}）"
        text += f"，{_hm(a.resolved_at, zone)} 修復" if a.resolved_at else "，尚未修復"
        parts.append(text)
    return "；".join(parts)


def _episode_text(
    ep: _Episode,
    inventory: Inventory,
    alerts: Sequence[AlertRecord],
    zone: ZoneInfo,
    until: dt.datetime,
) -> str:
    what = "、".join(dict.fromkeys(r for r in ep.reasons if r)) or "檢查未通過"
    if ep.end is not None and ep.end <= until:
        when = (
            f"{_hm(ep.start, zone)} 起至 {_hm(ep.end, zone)} 恢復，"
            f"歷時 {duration_text((ep.end - ep.start).total_seconds())}"
        )
    else:
        seen = min(ep.last_seen, until) if ep.end is None else until
        when = (
            f"{_hm(ep.start, zone)} 起，至 {_hm(seen, zone)} 仍未恢復"
            f"（已 {duration_text((seen - ep.start).total_seconds())}）"
        )
    return (
        f"{_place(ep.device, inventory)}［{CHECK_SHORT[ep.check]}］：{what}；{when}；"
        f"{_repair_text(ep, alerts, zone)}"
    )


def _episodes_text(
    eps: Sequence[_Episode],
    inventory: Inventory,
    alerts: Sequence[AlertRecord],
    zone: ZoneInfo,
    until: dt.datetime,
) -> str:
    """Several faults of one lens and check in one period, in one line."""
    reasons = dict.fromkeys(r for ep in eps for r in ep.reasons if r)
    what = "、".join(reasons) or "檢查未通過"
    total = sum(
        ((min(ep.end, until) if ep.end else min(ep.last_seen, until)) - ep.start).total_seconds()
        for ep in eps
    )
    last = eps[-1]
    if last.end is not None and last.end <= until:
        tail = f"最後一次 {_hm(last.end, zone)} 恢復"
    else:
        tail = f"最後一次 {_hm(last.start, zone)} 起，至 {_hm(until, zone)} 仍未恢復"
    related = {id(a): a for ep in eps for a in _related_alerts(ep, alerts)}.values()
    fired = len(related)
    resolved = sum(1 for a in related if a.resolved_at is not None and a.resolved_at <= until)
    if fired == 0:
        repair = "未報修（故障未達告警條件）" if last.end is not None else "尚未報修"
    elif resolved >= fired:
        repair = f"已申請修復 {fired} 次，均已修復"
    else:
        repair = f"已申請修復 {fired} 次，{fired - resolved} 次尚未修復"
    return (
        f"{_place(last.device, inventory)}［{CHECK_SHORT[last.check]}］：{what}；"
        f"共 {len(eps)} 次，首次 {_hm(eps[0].start, zone)}，{tail}，"
        f"累計 {duration_text(total)}；{repair}"
    )


Hole = tuple[dt.datetime, dt.datetime, str]  # start, end, why (zh-TW)
NOT_RUNNING = "camwatch 未運作或無法寫入檢查紀錄，此段期間沒有檢查結果"


def _minus(span: tuple[dt.datetime, dt.datetime],
           covered: Sequence[tuple[dt.datetime, dt.datetime]]
           ) -> list[tuple[dt.datetime, dt.datetime]]:
    """The parts of `span` outside the `covered` intervals."""
    a, b = span
    out = []
    for c, d in sorted(covered):
        if d <= a:
            continue
        if c >= b:
            break
        if c > a:
            out.append((a, c))
        a = max(a, d)
        if a >= b:
            break
    if a < b:
        out.append((a, b))
    return out


def log_holes(
    store: Any,
    recorders: Iterable[str],
    start: dt.datetime,
    end: dt.datetime,
    gap_min_s: float,
) -> dict[str, list[Hole]]:
    """Per recorder, the stretches of [start, end) the log does not hold."""
    out: dict[str, list[Hole]] = {r: [] for r in recorders}
    sessions_of = getattr(store, "sessions", None)
    first_of = getattr(store, "first_session_start", None)
    gaps_of = getattr(store, "gaps", None)
    if sessions_of is None or first_of is None:
        return out  # a reader without sessions (or a log from before them)
    first = first_of()
    if first is not None:
        # before the first session camwatch was not yet keeping this log (a new install,
        # or a log from before sessions): the log begins there, it is not interrupted
        judge_from = max(start, first)
        sessions = sessions_of(start, end)
        for rec in out:
            covered = [(s.started_at, s.kept_until) for s in sessions if covers(s.shard, rec)]
            for a, b in _minus((judge_from, end), covered):
                if (b - a).total_seconds() >= gap_min_s:
                    out[rec].append((a, b, NOT_RUNNING))
    for g in gaps_of(start, end) if gaps_of is not None else []:
        why = f"檢查紀錄無法寫入（磁碟已滿或資料庫無法寫入），{g.results_lost} 筆檢查結果未能保存"
        for rec in out:
            if covers(g.shard, rec):
                out[rec].append((max(g.started_at, start), min(g.ended_at, end), why))
    for rec in out:
        out[rec].sort()
    return out


def _hole_text(holes: Sequence[Hole], zone: ZoneInfo) -> str:
    parts = [
        f"{_hm(a, zone)} 起至 {_hm(b, zone)}（歷時 {duration_text((b - a).total_seconds())}；"
        f"{why}）"
        for a, b, why in holes[:4]
    ]
    more = f"等 {len(holes)} 段" if len(holes) > 4 else ""
    return "紀錄中斷：" + "；".join(parts) + more + "，本期無法確認全期正常"


def _answer(
    check: CheckKind,
    devices: Sequence[str],
    trans: Sequence[Transition],
    start: dt.datetime,
    end: dt.datetime,
) -> bool | None:
    times = status_times([t for t in trans if t.check == check], start, end)
    worst = {st.worst for (d, _), st in times.items() if d in devices}
    if Status.FAIL.value in worst:
        return False
    if Status.OK.value in worst:
        return True
    return None


def _unknown_seconds(
    check: CheckKind,
    devices: Sequence[str],
    trans: Sequence[Transition],
    start: dt.datetime,
    end: dt.datetime,
) -> float:
    """The longest time any one device's check could not be judged in the period."""
    times = status_times([t for t in trans if t.check == check], start, end)
    return max((st.unknown for (d, _), st in times.items() if d in devices), default=0.0)


def _retention_days(trans: Sequence[Transition], recorder_id: str) -> tuple[float, float] | None:
    """(shortest, longest) days of footage kept, as last measured in the month.

    The recording probe reports `retention_days` (the channel with the least footage)
    and `retention_max_days` (the most)."""
    latest: tuple[dt.datetime, float, float] | None = None
    for t in trans:
        if t.device != recorder_id or t.check != CheckKind.RECORDING:
            continue
        vals = t.values
        if not isinstance(vals, RecordingValues) or vals.retention_days is None:
            continue
        v = vals.retention_days
        longest = vals.retention_max_days if vals.retention_max_days is not None else v
        if latest is None or t.last_seen_at >= latest[0]:
            latest = (t.last_seen_at, v, max(longest, v))
    return None if latest is None else (latest[1], latest[2])


# -------------------------------------------------------------------------- build


def unit_devices(inventory: Inventory, unit_id: str) -> dict[str, list[str]]:
    """recorder id -> [recorder id, camera ids...] for the unit's recorders."""
    out: dict[str, list[str]] = {}
    for rec in sorted(inventory.recorders.values(), key=lambda r: r.id):
        if rec.unit == unit_id:
            out[rec.id] = [rec.id, *sorted(c.id for c in inventory.cameras_of(rec.id))]
    return out


def check_unit(inventory: Inventory, unit_id: str) -> None:
    if unit_id not in inventory.units:
        known = ", ".join(f"{u.id} ({u.name})" for u in inventory.units.values())
        raise ReportError(f"unknown unit {unit_id!r}; known units: {known}")


def build_sheet(
    store: LogReader,
    inventory: Inventory,
    unit_id: str,
    month: str,
    *,
    interval_days: int = 14,
    now: dt.datetime | None = None,
    gap_min_s: float = 600.0,
) -> Sheet:
    """The sheet of `unit_id` for `month` ("YYYY-MM") from the inspection log."""
    now = now or clock_now()
    tz = inventory.campus.timezone
    zone = ZoneInfo(tz)
    check_unit(inventory, unit_id)
    year, mon = parse_month(month, now, tz)
    unit = inventory.units[unit_id]
    groups = unit_devices(inventory, unit_id)
    all_devices = [d for devs in groups.values() for d in devs]
    if not groups:
        raise EmptyLogError(
            f"unit {unit_id} ({unit.name}) has no recorders in the inventory, so it has no "
            f"maintenance log; give its recorders `unit: {unit_id}` in the inventory"
        )

    month_start = dt.datetime(year, mon, 1, tzinfo=zone).astimezone(dt.UTC)
    periods: list[tuple[dt.date, dt.datetime, dt.datetime, bool]] = []
    for date, first, last in inspection_periods(year, mon, interval_days):
        p_start = dt.datetime.combine(first, dt.time(), zone).astimezone(dt.UTC)
        p_end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
        if p_start >= now:
            break
        cut = p_end > now
        row_date = now.astimezone(zone).date() if cut else date
        periods.append((row_date, p_start, min(p_end, now), cut))
    month_end = periods[-1][2] if periods else month_start
    complete = bool(periods) and not periods[-1][3]

    trans = store.transitions(all_devices, month_start, month_end) if all_devices else []
    if not trans:
        raise EmptyLogError(
            f"no inspections recorded for unit {unit_id} ({unit.name}) in {month} — "
            "run `camwatch run` first (or `camwatch demo` to try it)"
        )
    # A fault of this month may be reported just after it: an alert fired at 00:00 on
    # the 1st for a fault that began on the 30th is this month's repair request.
    alerts = store.alert_history(all_devices, month_start, month_end + REPORTED_AFTER)

    by_device: dict[str, list[Transition]] = defaultdict(list)
    for t in trans:
        by_device[t.device].append(t)
    holes = log_holes(store, groups, month_start, month_end, gap_min_s)
    first_of = getattr(store, "first_session_start", None)
    log_begins = first_of() if first_of is not None else None

    rows: list[SheetRow] = []
    for date, p_start, p_end, cut in periods:
        for rec_id, devices in groups.items():
            rec = inventory.recorders[rec_id]
            mine = [
                t
                for d in devices
                for t in by_device.get(d, [])
                if t.started_at < p_end and t.end >= p_start
            ]
            answers = {c: _answer(c, devices, mine, p_start, p_end) for c in CheckKind}
            remarks = [_recorder_label(rec, inventory)]
            if cut:
                remarks.append(f"本期檢查至 {_hm(p_end, zone)}（月份進行中）")
            in_period = [(max(a, p_start), min(b, p_end), why) for a, b, why in holes[rec_id]
                         if a < p_end and b > p_start]
            blocked: set[CheckKind] = set()
            if log_begins is not None and p_start < log_begins < p_end:
                remarks.append(f"camwatch 自 {_hm(log_begins, zone)} 起開始檢查（之前無紀錄）")
            if in_period and any(a is not None for a in answers.values()):
                remarks.append(_hole_text(in_period, zone))
                blocked = {c for c, a in answers.items() if a is True}
                answers.update({c: None for c in blocked})  # not 是: part of it is unknown
            grouped: dict[tuple[str, CheckKind], list[_Episode]] = defaultdict(list)
            for ep in _episodes(mine, inventory):
                if ep.start >= p_end or (ep.end is not None and ep.end <= p_start):
                    continue
                grouped[(ep.device, ep.check)].append(ep)
            for eps in grouped.values():
                if len(eps) == 1:
                    remarks.append(_episode_text(eps[0], inventory, alerts, zone, p_end))
                else:
                    remarks.append(_episodes_text(eps, inventory, alerts, zone, p_end))
            if all(a is None for a in answers.values()) and not blocked:
                remarks.append("本期無檢查紀錄（camwatch 未運作，或設備尚未納入檢查）")
                answers_to_note = {}
            else:
                answers_to_note = answers
            for c, a in answers_to_note.items():
                if a is None and c in blocked:
                    continue  # the 紀錄中斷 remark says why
                if a is None:
                    remarks.append(f"{CHECK_TITLES[c]}：本期無法判定（無檢查紀錄或無法連線判讀）")
                    continue
                unknown = _unknown_seconds(c, devices, mine, p_start, p_end)
                if unknown >= 60:
                    remarks.append(
                        f"{CHECK_TITLES[c]}：部分時段無法判定（共 {duration_text(unknown)}）"
                    )
            if all(a is True for a in answers.values()):
                remarks.append("本期三項檢查均正常")
            rows.append(
                SheetRow(
                    inspection_date=date,
                    roc_date=roc_date(date),
                    recorder_id=rec_id,
                    recorder_name=rec.name,
                    period_start=p_start.astimezone(zone).isoformat(timespec="minutes"),
                    period_end=p_end.astimezone(zone).isoformat(timespec="minutes"),
                    host=answers[CheckKind.HOST],
                    recording=answers[CheckKind.RECORDING],
                    picture=answers[CheckKind.PICTURE],
                    inspector=INSPECTOR,
                    remarks=tuple(remarks),
                )
            )

    retention: list[RetentionLine] = []
    last_day = (month_end - dt.timedelta(seconds=1)).astimezone(zone).date()
    for rec_id in groups:
        rec = inventory.recorders[rec_id]
        policy = inventory.retention_for(rec_id)
        hold = inventory.legal_hold_for(rec_id, last_day)
        days = _retention_days(by_device.get(rec_id, []), rec_id)
        hold_text = f"{hold.reason}（保留至 {roc_date(hold.until)}）" if hold else None
        if days is None:
            verdict = "無資料"
        elif days[0] < policy.min_days:
            verdict = f"不足（少於 {policy.min_days} 日）"
        elif days[1] > policy.max_days:
            verdict = "依法保留" if hold else f"逾期未銷毀（超過 {policy.max_days} 日）"
        else:
            verdict = "符合"
        retention.append(
            RetentionLine(
                recorder_id=rec_id,
                recorder_name=rec.name,
                days_kept=None if days is None else round(days[0], 1),
                days_max=None if days is None else round(days[1], 1),
                min_days=policy.min_days,
                max_days=policy.max_days,
                verdict=verdict,
                legal_hold=hold_text,
            )
        )

    times = status_times(trans, month_start, month_end)
    availability: list[AvailabilityLine] = []
    for rec_id, devices in groups.items():
        for d in devices:

            def share(c: CheckKind, d: str = d) -> float | None:
                st = times.get((d, c))
                a = st.availability() if st else None
                return None if a is None else round(a, 4)

            availability.append(
                AvailabilityLine(
                    device_id=d,
                    kind="主機" if d in inventory.recorders else "鏡頭",
                    place=_place(d, inventory),
                    recorder_id=rec_id,
                    host=share(CheckKind.HOST),
                    recording=share(CheckKind.RECORDING),
                    picture=share(CheckKind.PICTURE),
                    fault_seconds=round(sum(st.fail for (dd, _), st in times.items() if dd == d)),
                )
            )

    sheet = Sheet(
        school=inventory.campus.name,
        title=f"{inventory.campus.name}監視錄影系統保養紀錄簿",
        unit_id=unit_id,
        unit_name=unit.name,
        manager=f"{unit.manager.title} {unit.manager.name}",
        head=f"{unit.head.title} {unit.head.name}",
        month=f"{year:04d}-{mon:02d}",
        roc_month=roc_month(year, mon),
        interval_days=interval_days,
        timezone=tz,
        complete=complete,
        rows=tuple(rows),
        retention=tuple(retention),
        availability=tuple(availability),
        rule=(
            f"檢查日期：每 {interval_days} 日檢查一次（附件三 5(二)），自每月1日起每 "
            f"{interval_days} 日為一期，於期末日檢查，月底為最後一期；"
            "期間內任何時間曾發生故障即填「否」。"
        ),
    )
    digest = hashlib.sha256(dumps_canonical(sheet.data()).encode()).hexdigest()
    return Sheet(
        **{
            **{k: getattr(sheet, k) for k in sheet.__dataclass_fields__},
            "generated_at": now.astimezone(zone).isoformat(timespec="seconds"),
            "data_sha256": digest,
            "document_id": f"CW-{unit_id}-{year:04d}{mon:02d}-{digest[:8].upper()}",
        }
    )


def produce(
    store: LogReader,
    inventory: Inventory,
    month: str,
    unit_id: str,
    fmt: str = "pdf",
    *,
    interval_days: int = 14,
    now: dt.datetime | None = None,
    gap_min_s: float = 600.0,
) -> bytes:
    """The sheet as PDF or XLSX bytes (for `camwatch report` and GET /reports)."""
    if fmt not in ("pdf", "xlsx"):
        raise ReportError(f"format {fmt!r} is not pdf or xlsx")
    sheet = build_sheet(store, inventory, unit_id, month, interval_days=interval_days, now=now,
                        gap_min_s=gap_min_s)
    if fmt == "pdf":
        from reports.sheet_pdf import render_pdf

        return render_pdf(sheet)
    from reports.sheet_xlsx import render_xlsx

    return render_xlsx(sheet)


def render_pdf(sheet: Sheet) -> bytes:
    from reports.sheet_pdf import render_pdf as _render

    return _render(sheet)


def render_xlsx(sheet: Sheet) -> bytes:
    from reports.sheet_xlsx import render_xlsx as _render

    return _render(sheet)
