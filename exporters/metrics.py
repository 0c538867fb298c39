"""The Prometheus exposition: the devices' series kept ready, camwatch's own at each scrape.

`DeviceSeries` renders a device's lines in the text format when its result arrives (and
all of them again when the inventory changes, so a removed device or disk leaves no stale
series); a scrape joins them. `CamwatchCollector` builds the few families of camwatch
itself (retention policy, probe and scheduler figures) at each scrape. `exposition()`
is the whole /metrics body. Nothing here is global. Each metric reads one field of the
check's typed values (probes.values); the list is in exporters/README.md.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prometheus_client import generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from camwatch.clock import now as clock_now
from camwatch.state import LatestState
from inventory.models import Inventory
from probes.api import planned_checks
from probes.result import CHECK_TITLES, CheckKind, CheckResult, Status
from probes.values import DiskValues, HostValues, PictureValues, RecordingValues

DAY = 86400.0
CHECK_LABEL = {CheckKind.HOST: "host", CheckKind.RECORDING: "recording",
               CheckKind.PICTURE: "picture"}


def finite(v: float | int | bool | None) -> float | None:
    """A value fit for a sample: a finite number (bools count as 0/1), else None."""
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


@dataclass(frozen=True)
class DeviceLabels:
    device: str
    kind: str  # "recorder" | "camera"
    type: str  # nvr | dvr | ip | analog
    name: str
    unit: str
    unit_name: str
    recorder: str
    location: str
    model: str


def device_labels(inventory: Inventory) -> dict[str, DeviceLabels]:
    out: dict[str, DeviceLabels] = {}
    for rec in inventory.recorders.values():
        unit = inventory.units.get(rec.unit)
        out[rec.id] = DeviceLabels(
            device=rec.id, kind="recorder", type=rec.kind.value, name=rec.name,
            unit=rec.unit, unit_name=unit.name if unit else rec.unit, recorder=rec.id,
            location=_place(inventory, rec.id), model=rec.model or "",
        )
    for cam in inventory.cameras.values():
        rec_ = inventory.recorders.get(cam.recorder)
        unit_id = rec_.unit if rec_ else ""
        unit = inventory.units.get(unit_id)
        out[cam.id] = DeviceLabels(
            device=cam.id, kind="camera", type=cam.kind.value, name=cam.name,
            unit=unit_id, unit_name=unit.name if unit else unit_id, recorder=cam.recorder,
            location=cam.position, model="",
        )
    return out


def _place(inventory: Inventory, device: str) -> str:
    try:
        return inventory.place_of(device)
    except KeyError:
        return ""


# ---- the devices' series: rendered when a result arrives ------------------------------

# (name, help) of each per-device gauge family, in the order they are exposed.
DEVICE_FAMILIES: tuple[tuple[str, str], ...] = (
    ("camwatch_device_info",
     "Descriptive labels of a device from the inventory (value always 1)."),
    ("camwatch_check_ok",
     "1 if the last check passed, 0 if it failed; absent while unknown (check: "
     + ", ".join(f"{CHECK_LABEL[c]}={CHECK_TITLES[c]}" for c in CheckKind) + ")."),
    ("camwatch_check_unknown",
     "1 if the last answer of a planned check is unknown (not yet run or no reply)."),
    ("camwatch_check_timestamp_seconds", "When the last result of a check was taken."),
    ("camwatch_check_status_since_timestamp_seconds",
     "When the current status (ok/fail/unknown) of a check began."),
    ("camwatch_device_uptime_seconds", "Uptime the device reported."),
    ("camwatch_clock_offset_seconds",
     "Device clock minus camwatch clock (positive: the device is ahead)."),
    ("camwatch_channel_signal",
     "1 if the recorder sees video signal on the camera's channel, 0 if lost."),
    ("camwatch_recording_newest_age_seconds", "Age of the newest recorded footage."),
    ("camwatch_retention_seconds",
     "Footage kept: age of the oldest footage of the channel keeping least "
     "(divide by 86400 for days; compare with camwatch_retention_min_seconds)."),
    ("camwatch_retention_longest_seconds",
     "Age of the oldest footage of the channel keeping most "
     "(compare with camwatch_retention_max_seconds)."),
    ("camwatch_recording_gap_seconds",
     "Total length of recording gaps in the last 24 hours."),
    ("camwatch_disk_ok", "1 if the disk is healthy, 0 if not."),
    ("camwatch_disk_free_bytes", "Free space on the disk."),
    ("camwatch_disk_capacity_bytes", "Capacity of the disk."),
    ("camwatch_picture_sharpness",
     "Variance of the Laplacian of the last frame (higher is sharper)."),
    ("camwatch_picture_baseline_sharpness",
     "The camera's own sharpness baseline for the current day/night mode."),
    ("camwatch_picture_brightness", "Mean brightness of the last frame (0-255)."),
    ("camwatch_picture_contrast", "Contrast (standard deviation of brightness)."),
    ("camwatch_picture_similarity",
     "Similarity of the view to the camera's reference view (1 = same)."),
    ("camwatch_picture_night_mode", "1 if the last frame was a night (IR, grayscale) frame."),
    ("camwatch_picture_verdict", "1 for the current picture verdict of a camera."),
    ("camwatch_finding", "1 for each fault found by the last check (FindingCode)."),
)
_INFO_LABELS = ("device", "kind", "type", "name", "unit", "unit_name", "recorder",
                "location", "model", "firmware")


def _esc(value: str) -> str:
    """A label value in the text format (backslash, double quote and newline escaped)."""
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


# prometheus_client's own number format, so both halves of the body read alike
_number = cast(Callable[[float], str], floatToGoString)


def _sample(name: str, labels: str, value: float) -> str:
    return f"{name}{{{labels}}} {_number(value)}\n"


def _header(name: str, help_text: str) -> str:
    help_text = help_text.replace("\\", "\\\\").replace("\n", "\\n")
    return f"# HELP {name} {help_text}\n# TYPE {name} gauge\n"


RowKey = tuple[str, str]  # (device, check) or (device, "") for the device's own rows


class DeviceSeries:
    """The exposition lines of every device, kept ready: a result's lines are rendered
    when it arrives (LatestState.subscribe), so a scrape of 10,000 cameras only joins
    strings instead of building every family anew. The inventory is read through
    `inventory` at each scrape; when it is another object (a reload), every line is
    rendered again from the state, so a removed device leaves no stale series.
    """

    def __init__(self, state: LatestState, inventory: Inventory | Callable[[], Inventory]):
        self.state = state
        self._inventory = inventory
        self._lock = threading.Lock()
        self._built_for: Inventory | None = None
        self._labels: dict[str, DeviceLabels] = {}
        self._rows: dict[str, dict[RowKey, str]] = {name: {} for name, _ in DEVICE_FAMILIES}
        self._order: dict[str, list[RowKey] | None] = dict.fromkeys(self._rows)
        self._headers = {name: _header(name, h) for name, h in DEVICE_FAMILIES}
        state.subscribe(self.observe)

    @property
    def inventory(self) -> Inventory:
        inv = self._inventory
        return inv() if callable(inv) else inv

    def observe(self, results: Iterable[CheckResult]) -> None:
        """New results (called by LatestState after each update)."""
        with self._lock:
            if self._built_for is None:
                return  # rendered in full at the first scrape
            for r in results:
                self._put(r)

    def render(self) -> str:
        """The devices' families in the text format."""
        return "".join("".join(family) for family in self.families())

    def families(self) -> list[list[str]]:
        """Each family's header and lines, as they stand now (the lines themselves are
        shared, not copied: /metrics encodes one family at a time, so a scrape of a
        large campus never holds its whole 16 MB body at once)."""
        inventory = self.inventory
        with self._lock:
            if inventory is not self._built_for:
                self._rebuild(inventory)
            out: list[list[str]] = []
            for name, rows in self._rows.items():
                order = self._order[name]
                if order is None:
                    order = self._order[name] = sorted(rows)
                out.append([self._headers[name], *(rows[k] for k in order)])
            return out

    # -- rendering (under the lock) -------------------------------------------------

    def _rebuild(self, inventory: Inventory) -> None:
        self._built_for = inventory
        self._labels = device_labels(inventory)
        for rows in self._rows.values():
            rows.clear()
        for name in self._order:
            self._order[name] = None
        for d in self._labels.values():
            self._set("camwatch_device_info", (d.device, ""), self._info(d, None))
        for check, device in planned_checks(inventory):
            if device in self._labels:
                lv = f'check="{CHECK_LABEL[check]}",device="{_esc(device)}"'
                self._set("camwatch_check_unknown", (device, check.value),
                          _sample("camwatch_check_unknown", lv, 1))
        for r in sorted(self.state.snapshot(), key=lambda r: (r.device, r.check.value)):
            self._put(r)

    def _set(self, family: str, key: RowKey, text: str | None) -> None:
        rows = self._rows[family]
        if text:
            if key not in rows:
                self._order[family] = None
            rows[key] = text
        elif rows.pop(key, None) is not None:
            self._order[family] = None

    def _info(self, d: DeviceLabels, hv: HostValues | None) -> str:
        model = (hv.model if hv else None) or d.model
        firmware = (hv.firmware if hv else None) or ""
        values = (d.device, d.kind, d.type, d.name, d.unit, d.unit_name, d.recorder,
                  d.location, model, firmware)
        # label names in sorted order, as prometheus_client writes them
        labels = ",".join(f'{k}="{_esc(v)}"'
                          for k, v in sorted(zip(_INFO_LABELS, values, strict=True)))
        return _sample("camwatch_device_info", labels, 1)

    def _put(self, r: CheckResult) -> None:
        d = self._labels.get(r.device)
        if d is None:
            return  # a result of a device no longer in the inventory
        key = (r.device, r.check.value)
        dev = f'device="{_esc(r.device)}"'
        check = f'check="{CHECK_LABEL[r.check]}"'
        lv = f"{check},{dev}"
        known = r.status != Status.UNKNOWN
        self._set("camwatch_check_unknown", key,
                  _sample("camwatch_check_unknown", lv, 0 if known else 1))
        self._set("camwatch_check_ok", key,
                  _sample("camwatch_check_ok", lv, 1 if r.status == Status.OK else 0)
                  if known else None)
        self._set("camwatch_check_timestamp_seconds", key,
                  _sample("camwatch_check_timestamp_seconds", lv, r.at.timestamp()))
        started = self.state.status_since(r.device, r.check)
        self._set("camwatch_check_status_since_timestamp_seconds", key,
                  _sample("camwatch_check_status_since_timestamp_seconds", lv,
                          started.timestamp()) if started is not None else None)

        lines: dict[str, list[str]] = {}

        def add(family: str, value: float | None, labels: str = dev) -> None:
            if value is not None:
                lines.setdefault(family, []).append(_sample(family, labels, value))

        def add_disks(disks: tuple[DiskValues, ...] | None) -> None:
            for disk in sorted(disks or (), key=lambda x: x.id):
                dl = f'{dev},disk="{_esc(disk.id)}"'
                add("camwatch_disk_ok", finite(disk.ok), dl)
                add("camwatch_disk_free_bytes", finite(disk.free_bytes), dl)
                add("camwatch_disk_capacity_bytes", finite(disk.capacity_bytes), dl)

        v = r.values
        if isinstance(v, HostValues):
            self._set("camwatch_device_info", (r.device, ""), self._info(d, v))
            add("camwatch_device_uptime_seconds", finite(v.uptime_s))
            add("camwatch_clock_offset_seconds", finite(v.clock_offset_s))
            add("camwatch_channel_signal", finite(v.signal))
            add_disks(v.disks)  # a camera's card
        elif isinstance(v, RecordingValues):
            add("camwatch_recording_newest_age_seconds", finite(v.newest_age_s))
            days = finite(v.retention_days)
            add("camwatch_retention_seconds", None if days is None else days * DAY)
            longest = finite(v.retention_max_days)
            add("camwatch_retention_longest_seconds", None if longest is None else longest * DAY)
            add("camwatch_recording_gap_seconds", finite(v.gap_s_24h))
            add_disks(v.disks)
        elif isinstance(v, PictureValues):
            add("camwatch_picture_sharpness", finite(v.sharpness))
            add("camwatch_picture_baseline_sharpness", finite(v.baseline_sharpness))
            add("camwatch_picture_brightness", finite(v.brightness))
            add("camwatch_picture_contrast", finite(v.contrast))
            add("camwatch_picture_similarity", finite(v.similarity))
            if v.mode in ("day", "night"):
                add("camwatch_picture_night_mode", 1 if v.mode == "night" else 0)
            if v.verdict:
                add("camwatch_picture_verdict", 1, f'{dev},verdict="{_esc(v.verdict)}"')
        seen: set[tuple[str, str]] = set()
        for f in r.findings:
            subject = f.subject or ""
            if (f.code.value, subject) in seen:
                continue
            seen.add((f.code.value, subject))
            add("camwatch_finding", 1,
                f'{check},code="{_esc(f.code.value)}",{dev},subject="{_esc(subject)}"')
        for family in _VALUE_FAMILIES:
            found = lines.get(family)
            self._set(family, key, "".join(found) if found else None)


_VALUE_FAMILIES = tuple(name for name, _ in DEVICE_FAMILIES[5:])


class CamwatchCollector(Collector):
    """camwatch's own families at each scrape: the retention policy, probe and scheduler
    figures. The devices' series are DeviceSeries'. `inventory` may be swapped on
    reload."""

    def __init__(self, state: LatestState, inventory: Inventory | Callable[[], Inventory],
                 now: Callable[[], dt.datetime] | None = None):
        self.state = state
        self._inventory = inventory
        self.now = now or clock_now  # camwatch's clock: which legal holds still hold

    @property
    def inventory(self) -> Inventory:
        inv = self._inventory
        return inv() if callable(inv) else inv

    def describe(self) -> Iterable[Metric]:
        return []  # families depend on the state; registering must not scrape

    def collect(self) -> Iterator[Metric]:
        inventory = self.inventory
        rmin = GaugeMetricFamily(
            "camwatch_retention_min_seconds",
            "Policy (rule 八(三)): footage kept at least this long (30 days by default).",
            labels=["recorder"])
        rmax = GaugeMetricFamily(
            "camwatch_retention_max_seconds",
            "Policy (rule 八(四)): footage destroyed after this long (365 days by default).",
            labels=["recorder"])
        hold = GaugeMetricFamily(
            "camwatch_legal_hold",
            "1 while a legal hold allows a recorder to keep footage past the maximum.",
            labels=["recorder"])
        today = local_today(self.now(), inventory.campus.timezone)
        for rec_id in sorted(inventory.recorders):
            pol = inventory.retention_for(rec_id)
            rmin.add_metric([rec_id], pol.min_days * DAY)
            rmax.add_metric([rec_id], pol.max_days * DAY)
            hold.add_metric([rec_id], 1 if inventory.legal_hold_for(rec_id, today) else 0)
        yield rmin
        yield rmax
        yield hold

        yield from self._probe_and_scheduler()
        yield from self._store()
        yield from self._reload()

    def _reload(self) -> Iterator[Metric]:
        """Like prometheus_config_last_reload_successful (and _success_timestamp_seconds)."""
        st = self.state.reload
        yield GaugeMetricFamily(
            "camwatch_inventory_last_reload_success",
            "1 if the last load of inventory and settings (start, SIGHUP or POST "
            "/admin/reload) succeeded, 0 if it was refused (the previous ones stay).",
            value=1 if st.success else 0)
        if st.last_success_at is not None:
            yield GaugeMetricFamily(
                "camwatch_inventory_last_reload_success_timestamp_seconds",
                "When inventory and settings were last loaded successfully.",
                value=st.last_success_at)

    def _store(self) -> Iterator[Metric]:
        """Whether the inspection log is being kept (camwatch/logwriter.py)."""
        h = self.state.store
        if not h.enabled:
            return
        yield GaugeMetricFamily(
            "camwatch_store_writable",
            "1 while the inspection log is being written, 0 while writes fail (a full "
            "disk): results then wait in memory and are written with their own times.",
            value=1 if h.kept else 0)
        yield CounterMetricFamily("camwatch_store_write_errors",
                                  "Failed attempts to write the inspection log.",
                                  value=h.write_errors_total)
        yield CounterMetricFamily("camwatch_store_results_written",
                                  "Check results committed to the inspection log.",
                                  value=h.written_total)
        yield CounterMetricFamily(
            "camwatch_store_results_dropped",
            "Check results lost because they waited past the bound "
            "(CAMWATCH_STORE_BACKLOG_MAX); the log records the gap (紀錄中斷).",
            value=h.dropped_total)
        yield GaugeMetricFamily("camwatch_store_unwritten_results",
                                "Check results waiting to be written to the inspection log.",
                                value=h.unwritten)
        oldest = h.oldest_unwritten_at
        age = 0.0 if oldest is None else max(0.0, (self.now() - oldest)
                                             .total_seconds())
        yield GaugeMetricFamily(
            "camwatch_store_oldest_unwritten_result_age_seconds",
            "Age of the oldest check result not yet written to the inspection log "
            "(0 when none waits).", value=age)
        if h.last_success_at is not None:
            yield GaugeMetricFamily("camwatch_store_last_write_success_timestamp_seconds",
                                    "When the inspection log was last written.",
                                    value=h.last_success_at)

    def _probe_and_scheduler(self) -> Iterator[Metric]:
        stats = self.state.probes
        dur = SummaryMetricFamily("camwatch_probe_duration_seconds",
                                  "Time probes took, by driver.", labels=["driver"])
        for driver in sorted(stats.duration_count):
            dur.add_metric([driver], count_value=stats.duration_count[driver],
                           sum_value=stats.duration_sum.get(driver, 0.0))
        yield dur
        errors = CounterMetricFamily("camwatch_probe_errors",
                                     "Probe errors by driver and reason.",
                                     labels=["driver", "reason"])
        for (driver, reason), n in sorted(stats.errors.items()):
            errors.add_metric([driver, reason], n)
        yield errors

        sched = self.state.scheduler
        last = GaugeMetricFamily("camwatch_scheduler_last_cycle_timestamp_seconds",
                                 "When the last full cycle of a check ended.",
                                 labels=["check"])
        for chk, t in sorted(sched.last_cycle_end.items()):
            last.add_metric([CHECK_LABEL[chk]], t)
        yield last
        lag = GaugeMetricFamily("camwatch_scheduler_lag_seconds",
                                "How late the scheduler runs a check against its interval.",
                                labels=["check"])
        for chk, s in sorted(sched.lag_seconds.items()):
            lag.add_metric([CHECK_LABEL[chk]], s)
        yield lag
        overdue_n = GaugeMetricFamily(
            "camwatch_scheduler_overdue_checks",
            "Checks due now that have not started (waiting for a slot).", labels=["check"])
        overdue_s = GaugeMetricFamily(
            "camwatch_scheduler_oldest_overdue_seconds",
            "How late the oldest check due but not started is.", labels=["check"])
        overdue: Mapping[CheckKind, tuple[int, float]] = {}
        if sched.overdue_fn is not None:
            try:
                overdue = sched.overdue_fn()
            except Exception:  # a scrape must not fail on a scheduler's figure
                overdue = {}
        for chk, (n, late) in sorted(overdue.items()):
            overdue_n.add_metric([CHECK_LABEL[chk]], n)
            overdue_s.add_metric([CHECK_LABEL[chk]], late)
        yield overdue_n
        yield overdue_s
        done = CounterMetricFamily("camwatch_scheduler_checks",
                                   "Checks run since start.", labels=["check"])
        for chk, n in sorted(sched.checks_done.items()):
            done.add_metric([CHECK_LABEL[chk]], n)
        yield done


def _add(family: GaugeMetricFamily, labels: list[str], value: float | None) -> None:
    if value is not None:
        family.add_metric(labels, value)


def make_registry(state: LatestState, inventory: Inventory | Callable[[], Inventory],
                  *, process: bool = True,
                  now: Callable[[], dt.datetime] | None = None) -> CollectorRegistry:
    """A registry of its own (not the global default one) holding camwatch's collector
    and, unless `process=False`, the standard process_* metrics of this process."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CamwatchCollector(state, inventory, now))
    if process:
        ProcessCollector(registry=registry)
    return registry


class Exposition:
    """The whole /metrics body: the devices' series (kept ready) and the registry's."""

    def __init__(self, state: LatestState, inventory: Inventory | Callable[[], Inventory],
                 *, process: bool = True,
                 now: Callable[[], dt.datetime] | None = None) -> None:
        self.devices = DeviceSeries(state, inventory)
        self.registry = make_registry(state, inventory, process=process, now=now)

    def render(self) -> bytes:
        return b"".join(self.chunks())

    def chunks(self) -> Iterator[bytes]:
        """The body one family at a time, then the registry's."""
        for family in self.devices.families():
            yield "".join(family).encode()
        yield generate_latest(self.registry)


def local_today(at: dt.datetime, tz: str) -> dt.date:
    """The campus' calendar date at `at` (a legal hold runs until a local date)."""
    try:
        return at.astimezone(ZoneInfo(tz)).date()
    except (ZoneInfoNotFoundError, ValueError):
        return at.astimezone(dt.UTC).date()
