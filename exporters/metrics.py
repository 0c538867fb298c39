"""The Prometheus collector: fresh metric families from the latest results at each scrape.

Nothing here is global: `CamwatchCollector.collect()` reads `LatestState` and the
`Inventory` and builds every family anew, so a device removed from the inventory or a
disk that disappeared leaves no stale series behind. Each metric reads one field of the
check's typed values (probes.values); the list is in exporters/README.md.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from camwatch.clock import now as clock_now
from camwatch.state import LatestState
from inventory.models import Inventory
from probes.api import planned_checks
from probes.result import CHECK_TITLES, CheckKind, CheckResult, Status
from probes.values import HostValues, PictureValues, RecordingValues

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


class CamwatchCollector(Collector):
    """Reads LatestState + Inventory at each scrape. `inventory` may be swapped on reload."""

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
        labels = device_labels(inventory)
        results = self.state.snapshot()
        by_key: dict[tuple[str, CheckKind], CheckResult] = {(r.device, r.check): r
                                                            for r in results}
        host_values = {r.device: r.values for r in results
                       if r.check == CheckKind.HOST and isinstance(r.values, HostValues)}

        info = GaugeMetricFamily(
            "camwatch_device_info",
            "Descriptive labels of a device from the inventory (value always 1).",
            labels=["device", "kind", "type", "name", "unit", "unit_name", "recorder",
                    "location", "model", "firmware"],
        )
        for d in labels.values():
            hv = host_values.get(d.device)
            model = (hv.model if hv else None) or d.model
            firmware = (hv.firmware if hv else None) or ""
            info.add_metric([d.device, d.kind, d.type, d.name, d.unit, d.unit_name, d.recorder,
                             d.location, model, firmware], 1)
        yield info

        ok = GaugeMetricFamily(
            "camwatch_check_ok",
            "1 if the last check passed, 0 if it failed; absent while unknown (check: "
            + ", ".join(f"{CHECK_LABEL[c]}={CHECK_TITLES[c]}" for c in CheckKind) + ").",
            labels=["device", "check"],
        )
        unknown = GaugeMetricFamily(
            "camwatch_check_unknown",
            "1 if the last answer of a planned check is unknown (not yet run or no reply).",
            labels=["device", "check"],
        )
        ts = GaugeMetricFamily(
            "camwatch_check_timestamp_seconds", "When the last result of a check was taken.",
            labels=["device", "check"],
        )
        since = GaugeMetricFamily(
            "camwatch_check_status_since_timestamp_seconds",
            "When the current status (ok/fail/unknown) of a check began.",
            labels=["device", "check"],
        )
        planned = {(dev, chk) for chk, dev in planned_checks(inventory)}
        for key in sorted(planned | set(by_key), key=lambda k: (k[0], k[1].value)):
            device, check = key
            if device not in labels:
                continue  # a result of a device no longer in the inventory
            r = by_key.get(key)
            lv = [device, CHECK_LABEL[check]]
            if r is None or r.status == Status.UNKNOWN:
                unknown.add_metric(lv, 1)
            else:
                unknown.add_metric(lv, 0)
                ok.add_metric(lv, 1 if r.status == Status.OK else 0)
            if r is not None:
                ts.add_metric(lv, r.at.timestamp())
                started = self.state.status_since(device, check)
                if started is not None:
                    since.add_metric(lv, started.timestamp())
        yield ok
        yield unknown
        yield ts
        yield since

        uptime = GaugeMetricFamily("camwatch_device_uptime_seconds",
                                   "Uptime the device reported.", labels=["device"])
        offset = GaugeMetricFamily(
            "camwatch_clock_offset_seconds",
            "Device clock minus camwatch clock (positive: the device is ahead).",
            labels=["device"])
        age = GaugeMetricFamily(
            "camwatch_recording_newest_age_seconds",
            "Age of the newest recorded footage.", labels=["device"])
        retention = GaugeMetricFamily(
            "camwatch_retention_seconds",
            "Footage kept: age of the oldest footage of the channel keeping least "
            "(divide by 86400 for days; compare with camwatch_retention_min_seconds).",
            labels=["device"])
        retention_long = GaugeMetricFamily(
            "camwatch_retention_longest_seconds",
            "Age of the oldest footage of the channel keeping most "
            "(compare with camwatch_retention_max_seconds).",
            labels=["device"])
        gaps = GaugeMetricFamily(
            "camwatch_recording_gap_seconds",
            "Total length of recording gaps in the last 24 hours.", labels=["device"])
        signal = GaugeMetricFamily(
            "camwatch_channel_signal",
            "1 if the recorder sees video signal on the camera's channel, 0 if lost.",
            labels=["device"])
        disk_ok = GaugeMetricFamily("camwatch_disk_ok", "1 if the disk is healthy, 0 if not.",
                                    labels=["device", "disk"])
        disk_free = GaugeMetricFamily("camwatch_disk_free_bytes", "Free space on the disk.",
                                      labels=["device", "disk"])
        disk_total = GaugeMetricFamily("camwatch_disk_capacity_bytes", "Capacity of the disk.",
                                       labels=["device", "disk"])
        sharp = GaugeMetricFamily(
            "camwatch_picture_sharpness",
            "Variance of the Laplacian of the last frame (higher is sharper).",
            labels=["device"])
        base = GaugeMetricFamily(
            "camwatch_picture_baseline_sharpness",
            "The camera's own sharpness baseline for the current day/night mode.",
            labels=["device"])
        bright = GaugeMetricFamily("camwatch_picture_brightness",
                                   "Mean brightness of the last frame (0-255).",
                                   labels=["device"])
        contrast = GaugeMetricFamily("camwatch_picture_contrast",
                                     "Contrast (standard deviation of brightness).",
                                     labels=["device"])
        similarity = GaugeMetricFamily(
            "camwatch_picture_similarity",
            "Similarity of the view to the camera's reference view (1 = same).",
            labels=["device"])
        night = GaugeMetricFamily("camwatch_picture_night_mode",
                                  "1 if the last frame was a night (IR, grayscale) frame.",
                                  labels=["device"])
        verdict = GaugeMetricFamily("camwatch_picture_verdict",
                                    "1 for the current picture verdict of a camera.",
                                    labels=["device", "verdict"])
        finding = GaugeMetricFamily(
            "camwatch_finding", "1 for each fault found by the last check (FindingCode).",
            labels=["device", "check", "code", "subject"])

        for r in sorted(results, key=lambda r: (r.device, r.check.value)):
            if r.device not in labels:
                continue
            v = r.values
            dev = [r.device]
            if isinstance(v, HostValues):
                _add(uptime, dev, finite(v.uptime_s))
                _add(offset, dev, finite(v.clock_offset_s))
                _add(signal, dev, finite(v.signal))
                for disk in sorted(v.disks or (), key=lambda d: d.id):  # a camera's card
                    _add(disk_ok, [r.device, disk.id], finite(disk.ok))
                    _add(disk_free, [r.device, disk.id], finite(disk.free_bytes))
                    _add(disk_total, [r.device, disk.id], finite(disk.capacity_bytes))
            elif isinstance(v, RecordingValues):
                _add(age, dev, finite(v.newest_age_s))
                days = finite(v.retention_days)
                _add(retention, dev, None if days is None else days * DAY)
                longest = finite(v.retention_max_days)
                _add(retention_long, dev, None if longest is None else longest * DAY)
                _add(gaps, dev, finite(v.gap_s_24h))
                for disk in sorted(v.disks or (), key=lambda d: d.id):
                    _add(disk_ok, [r.device, disk.id], finite(disk.ok))
                    _add(disk_free, [r.device, disk.id], finite(disk.free_bytes))
                    _add(disk_total, [r.device, disk.id], finite(disk.capacity_bytes))
            elif isinstance(v, PictureValues):
                _add(sharp, dev, finite(v.sharpness))
                _add(base, dev, finite(v.baseline_sharpness))
                _add(bright, dev, finite(v.brightness))
                _add(contrast, dev, finite(v.contrast))
                _add(similarity, dev, finite(v.similarity))
                if v.mode in ("day", "night"):
                    night.add_metric(dev, 1 if v.mode == "night" else 0)
                if v.verdict:
                    verdict.add_metric([r.device, v.verdict], 1)
            seen: set[tuple[str, str]] = set()
            for f in r.findings:
                subject = f.subject or ""
                if (f.code.value, subject) in seen:
                    continue
                seen.add((f.code.value, subject))
                finding.add_metric([r.device, CHECK_LABEL[r.check], f.code.value, subject], 1)
        yield from (uptime, offset, signal, age, retention, retention_long, gaps,
                    disk_ok, disk_free, disk_total, sharp, base, bright, contrast, similarity,
                    night, verdict, finding)

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


def local_today(at: dt.datetime, tz: str) -> dt.date:
    """The campus' calendar date at `at` (a legal hold runs until a local date)."""
    try:
        return at.astimezone(ZoneInfo(tz)).date()
    except (ZoneInfoNotFoundError, ValueError):
        return at.astimezone(dt.UTC).date()
