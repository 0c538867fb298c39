"""What a person reads in the terminal: the three 附件四 answers per device, and the live
view of `camwatch demo`.

`device_answers()` turns raw check results into the answers of the maintenance log per
device, the way the sheet reads them:
- a camera's recording answer comes from its recorder's recording check (one result per
  channel); an analog camera's host answer from its recorder's host check;
- a recorder's picture answer is its cameras' pictures together (附件四 asks it per 主機).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from camwatch.clock import now as clock_now
from inventory.models import Inventory
from probes.result import CHECK_TITLES, CheckKind, CheckResult, Status
from probes.values import PictureValues, values_json

CHECKS = (CheckKind.HOST, CheckKind.RECORDING, CheckKind.PICTURE)
QUESTION = CHECK_TITLES
SHORT = {CheckKind.HOST: "主機", CheckKind.RECORDING: "錄影", CheckKind.PICTURE: "畫面"}
WORD = {Status.OK: "是", Status.FAIL: "否", Status.UNKNOWN: "？"}
STYLE = {Status.OK: "bold green", Status.FAIL: "bold red", Status.UNKNOWN: "yellow"}

Lookup = Callable[[str, CheckKind], CheckResult | None]


@dataclass(frozen=True)
class Answer:
    status: Status
    reason: str
    values: Mapping[str, object] = field(default_factory=dict)  # as served (JSON)
    at: dt.datetime | None = None

    def to_json(self) -> dict[str, object]:
        return {"status": self.status.value, "reason": self.reason, "values": dict(self.values)}


@dataclass(frozen=True)
class DeviceAnswers:
    device: str
    kind: str  # "recorder" | "camera"
    name: str
    unit: str
    recorder: str
    place: str
    checks: Mapping[CheckKind, Answer | None]

    @property
    def failing(self) -> list[tuple[CheckKind, Answer]]:
        return [(c, a) for c, a in self.checks.items() if a is not None and a.status == Status.FAIL]

    def to_json(self) -> dict[str, object]:
        return {
            "device": self.device,
            "kind": self.kind,
            "checks": {
                c.value: (a.to_json() if a is not None else
                          {"status": "unknown", "reason": "尚未檢查", "values": {}})
                for c, a in self.checks.items()
            },
        }


def _own(r: CheckResult | None) -> Answer | None:
    if r is None:
        return None
    return Answer(r.status, r.reason, values_json(r.values), r.at)


def _from_recorder(rec_result: CheckResult | None, rec_name: str) -> Answer | None:
    """A camera's answer judged from its recorder's check (no result of its own)."""
    if rec_result is None:
        return None
    if rec_result.status == Status.OK:
        return Answer(Status.OK, f"依主機「{rec_name}」判定：{rec_result.reason}", {},
                      rec_result.at)
    return Answer(Status.UNKNOWN, f"主機「{rec_name}」無法判定：{rec_result.reason}", {},
                  rec_result.at)


def combine(answers: Sequence[tuple[str, Answer | None]], what: str) -> Answer | None:
    """Several devices' answers as one (a recorder's picture = all its cameras')."""
    known = [(n, a) for n, a in answers if a is not None]
    if not known:
        return None
    failing = [(n, a) for n, a in known if a.status == Status.FAIL]
    at = max((a.at for _, a in known if a.at is not None), default=None)
    if failing:
        text = "；".join(f"{n}：{a.reason}" for n, a in failing[:5])
        more = f"；另 {len(failing) - 5} 支" if len(failing) > 5 else ""
        return Answer(Status.FAIL, f"{len(failing)}/{len(answers)} 支{what}異常：{text}{more}",
                      {"failing": len(failing), "total": len(answers)}, at)
    unknown = [n for n, a in known if a.status == Status.UNKNOWN]
    missing = len(answers) - len(known)
    if unknown or missing:
        return Answer(Status.UNKNOWN,
                      f"{len(unknown) + missing}/{len(answers)} 支{what}尚無法判定",
                      {"unknown": len(unknown) + missing, "total": len(answers)}, at)
    return Answer(Status.OK, f"{len(answers)} 支{what}皆正常", {"total": len(answers)}, at)


def device_answers(
    inventory: Inventory, lookup: Lookup, devices: Iterable[str] | None = None
) -> list[DeviceAnswers]:
    wanted = list(devices) if devices is not None else [
        *inventory.recorders, *inventory.cameras
    ]
    out: list[DeviceAnswers] = []
    for dev in wanted:
        if dev in inventory.recorders:
            rec = inventory.recorders[dev]
            cams = inventory.cameras_of(dev)
            picture = combine([(c.position, _own(lookup(c.id, CheckKind.PICTURE))) for c in cams],
                              "鏡頭畫面")
            out.append(DeviceAnswers(
                device=dev, kind="recorder", name=rec.name, unit=rec.unit, recorder=dev,
                place=inventory.place_of(dev),
                checks={
                    CheckKind.HOST: _own(lookup(dev, CheckKind.HOST)),
                    CheckKind.RECORDING: _own(lookup(dev, CheckKind.RECORDING)),
                    CheckKind.PICTURE: picture,
                },
            ))
        elif dev in inventory.cameras:
            cam = inventory.cameras[dev]
            rec = inventory.recorders[cam.recorder]
            host = _own(lookup(dev, CheckKind.HOST)) or _from_recorder(
                lookup(rec.id, CheckKind.HOST), rec.name)
            recording = _own(lookup(dev, CheckKind.RECORDING)) or _from_recorder(
                lookup(rec.id, CheckKind.RECORDING), rec.name)
            out.append(DeviceAnswers(
                device=dev, kind="camera", name=cam.name, unit=rec.unit, recorder=rec.id,
                place=cam.position,
                checks={
                    CheckKind.HOST: host,
                    CheckKind.RECORDING: recording,
                    CheckKind.PICTURE: _own(lookup(dev, CheckKind.PICTURE)),
                },
            ))
    return out


def lookup_in(results: Iterable[CheckResult]) -> Lookup:
    """A lookup over a list of results; several for the same (device, check) — a camera
    probed directly and also reported by its recorder — keep the worst."""
    rank = {Status.FAIL: 2, Status.UNKNOWN: 0, Status.OK: 1}
    table: dict[tuple[str, CheckKind], CheckResult] = {}
    for r in results:
        key = (r.device, r.check)
        cur = table.get(key)
        if cur is None or rank[r.status] > rank[cur.status]:
            table[key] = r
    return lambda device, check: table.get((device, check))


def word(answer: Answer | None) -> Text:
    if answer is None:
        return Text("—", style="dim")
    return Text(WORD[answer.status], style=STYLE[answer.status])


# --- `camwatch check` -------------------------------------------------------------------


def check_table(answers: Sequence[DeviceAnswers]) -> Table:
    table = Table(title="附件四 三項檢查", show_lines=False, expand=False)
    table.add_column("裝置 device", no_wrap=True)
    table.add_column("位置 place")
    for c in CHECKS:
        table.add_column(f"{SHORT[c]}\n{c.value}", justify="center")
    table.add_column("說明 reason")
    for a in answers:
        reasons = [f"{SHORT[c]}：{ans.reason}" for c, ans in a.checks.items()
                   if ans is not None and ans.status != Status.OK]
        table.add_row(
            f"{a.device}\n[dim]{a.name}[/dim]",
            a.place,
            *(word(a.checks.get(c)) for c in CHECKS),
            "\n".join(reasons) if reasons else Text("正常", style="green"),
        )
    return table


# --- the live view of `camwatch demo` ---------------------------------------------------


@dataclass(frozen=True)
class FiringAlert:
    alertname: str
    device: str
    place: str
    since: dt.datetime | None
    state: str = "active"  # active | suppressed (inhibited or silenced)


@dataclass
class LiveInfo:
    title: str
    urls: Sequence[tuple[str, str]] = ()
    sheets_dir: str = ""
    events: list[str] = field(default_factory=list)  # the scenario's steps so far
    alerts: Sequence[FiringAlert] = ()
    elapsed_s: float = 0.0
    duration_s: float | None = None


def baseline_progress(inventory: Inventory, lookup: Lookup) -> tuple[int, int]:
    """Cameras whose picture baseline is learned (their picture result carries a
    baseline sharpness) out of all cameras."""
    total = len(inventory.cameras)
    learned = 0
    for cam in inventory.cameras:
        r = lookup(cam, CheckKind.PICTURE)
        if r is None:
            continue
        # picture results carry `learning` (True while the baseline is being learned)
        # and `baseline_sharpness` once it is learned
        v = r.values
        if isinstance(v, PictureValues) and (
            v.learning is False or v.baseline_sharpness is not None
        ):
            learned += 1
    return learned, total


def live_view(inventory: Inventory, lookup: Lookup, info: LiveInfo,
              since: Callable[[str, CheckKind], dt.datetime | None] | None = None,
              max_failing: int = 12, now: dt.datetime | None = None) -> RenderableType:
    """`now`: camwatch's clock (how long ago a fault began); default the process clock."""
    now = now or clock_now()
    head = Text(info.title, style="bold")
    clock = f"  {info.elapsed_s:.0f} s"
    if info.duration_s:
        clock += f" / {info.duration_s:.0f} s"
    head.append(clock, style="dim")
    urls = Text("  ".join(f"{k}: {v}" for k, v in info.urls), style="cyan")

    answers = device_answers(inventory, lookup, list(inventory.recorders))
    units = Table(title="各單位主機 附件四 三項", expand=True)
    units.add_column("單位 unit")
    units.add_column("主機 recorder")
    units.add_column("鏡頭", justify="right")
    for c in CHECKS:
        units.add_column(QUESTION[c], justify="center")
    for a in sorted(answers, key=lambda x: (x.unit, x.device)):
        unit = inventory.units[a.unit].name if a.unit in inventory.units else a.unit
        units.add_row(unit, f"{a.name} [dim]({a.device})[/dim]",
                      str(len(inventory.cameras_of(a.device))),
                      *(word(a.checks.get(c)) for c in CHECKS))

    cams = device_answers(inventory, lookup, list(inventory.cameras))
    failing = Table(title="目前異常 failing now", expand=True)
    failing.add_column("裝置")
    failing.add_column("位置 place")
    failing.add_column("項目")
    failing.add_column("原因 reason")
    failing.add_column("起 since", no_wrap=True)
    rows = 0
    for a in [*answers, *cams]:
        for check, ans in a.failing:
            if a.kind == "recorder" and check == CheckKind.PICTURE:
                continue  # listed per camera
            if rows >= max_failing:
                break
            started = since(a.device, check) if since else ans.at
            ago = f"{(now - started).total_seconds():.0f} s 前" if started else ""
            failing.add_row(a.device, a.place, SHORT[check], Text(ans.reason, style="red"), ago)
            rows += 1
    if rows == 0:
        failing.add_row("—", "", "", Text("全部正常", style="green"), "")

    alerts = Table(title="告警 alerts firing", expand=True)
    alerts.add_column("alertname")
    alerts.add_column("裝置")
    alerts.add_column("位置")
    alerts.add_column("狀態")
    for al in list(info.alerts)[:10]:
        alerts.add_row(al.alertname, al.device, al.place,
                       Text("抑制 suppressed", style="dim") if al.state != "active"
                       else Text("發送中 firing", style="red"))
    if not info.alerts:
        alerts.add_row("—", "", "", Text("無", style="green"))

    learned, total = baseline_progress(inventory, lookup)
    bar_w = 30
    filled = int(bar_w * learned / total) if total else bar_w
    baseline = Text("畫面基準學習 baseline learning: ")
    baseline.append("█" * filled, style="green")
    baseline.append("░" * (bar_w - filled), style="dim")
    baseline.append(f" {learned}/{total}")

    events = Text("\n".join(info.events[-6:]) or "（情境尚未開始）", style="magenta")
    footer = Text(f"報表將寫到 sheets → {info.sheets_dir}    Ctrl-C 結束", style="dim")
    return Group(head, urls, units, failing, alerts, baseline,
                 Panel(events, title="情境 scenario"), footer)


def plain_line(inventory: Inventory, lookup: Lookup, info: LiveInfo) -> str:
    """One progress line for a terminal that is not a TTY (CI logs)."""
    answers = device_answers(inventory, lookup)
    # a recorder's picture answer repeats its cameras': count each fault once
    fails = sum(1 for a in answers for c, _ in a.failing
                if not (a.kind == "recorder" and c == CheckKind.PICTURE))
    learned, total = baseline_progress(inventory, lookup)
    checked = sum(1 for a in answers for x in a.checks.values() if x is not None)
    return (f"[{info.elapsed_s:5.0f} s] answers {checked}, failing {fails}, "
            f"alerts {sum(1 for a in info.alerts if a.state == 'active')}, "
            f"baselines {learned}/{total}")
