"""The long-running service: inventory + probes + scheduler + outputs, started and
stopped in one place.

    settings ─▶ inventory, secrets, store (probe memory, alert state restored)
             ─▶ HTTP server (/metrics, /, /reports), alert engine + Alertmanager pusher
             ─▶ scheduler ─▶ results ─▶ LatestState, store (worker thread), alert engine

Every output is a sink of the scheduler; none of them can block the event loop or stop
the probes. Shutdown (SIGINT/SIGTERM, or `stop()`) stops the scheduler first, then
flushes the store, persists probe memory and alert state, and stops the servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from camwatch.clock import Clock, default_clock, local_today
from camwatch.logs import event
from camwatch.scheduler import RunProbe, Scheduler, Sink, ThreadedBatchSink, filter_shard
from camwatch.secrets import SecretError, SecretStore, find_secrets_beside
from camwatch.settings import Settings, SettingsError, load_settings
from camwatch.state import LatestState
from inventory.models import CameraKind, Inventory
from probes.api import planned_checks, prepare, probe, recorder_of
from probes.context import DeviceMemory, ProbeConfig, ProbeContext
from probes.result import CheckKind, CheckResult

log = logging.getLogger("camwatch.service")

MEMORY_KEY = "probe_memory"
ALERTS_KEY = "alert_engine"
PERSIST_EVERY_S = 60.0


class StartupError(Exception):
    """Something the service needs is missing or wrong; the message says what to fix."""


# --- loading ------------------------------------------------------------------------------


def load_settings_or_fail(path: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(path, **overrides)
    except SettingsError as exc:
        raise StartupError(str(exc)) from None


def load_inventory_or_fail(paths: Sequence[Path]) -> Inventory:
    from inventory.errors import InventoryError
    from inventory.loader import load_inventory

    try:
        return load_inventory(paths)
    except InventoryError as exc:
        raise StartupError(exc.summary()) from None


def with_secrets_beside(settings: Settings, inventory_paths: Sequence[Path]) -> Settings:
    """When no secrets file is configured, the one beside the inventory: `campus.yaml` ->
    `campus.secrets.yaml` (as `camwatch simulate --write-inventory` writes it)."""
    if settings.secrets_file is not None:
        return settings
    found = find_secrets_beside(inventory_paths)
    if not found:
        return settings
    if len(found) > 1:
        names = ", ".join(str(p) for p in found)
        raise StartupError(f"secrets: several secrets files beside the inventory ({names}); "
                           "set CAMWATCH_SECRETS_FILE to the one to use")
    return settings.model_copy(update={"secrets_file": found[0]})


def probe_config(settings: Settings) -> ProbeConfig:
    return ProbeConfig(
        timeout=settings.timeout,
        clock_drift_max_s=settings.clock_drift_max_s,
        footage_max_age_s=settings.footage_max_age_s,
        disk_full_pct=settings.disk_full_pct,
        allowed_redirect_hosts=tuple(settings.allowed_redirect_hosts),
    )


def probe_context(settings: Settings, inventory: Inventory,
                  memory: DeviceMemory | None = None, clock: Clock | None = None) -> ProbeContext:
    """The probes' context; their `now` is camwatch's clock (`clock`, default the process
    clock, which CAMWATCH_CLOCK may pin)."""
    secrets = SecretStore(settings.secrets_file)
    try:
        secrets.check()  # a secrets file readable by others is refused at start-up
    except SecretError as exc:
        raise StartupError(f"secrets: {exc}") from None
    return ProbeContext(
        inventory=inventory,
        secrets=secrets,
        config=probe_config(settings),
        memory=memory or DeviceMemory(),
        now=(clock or default_clock()).now,
    )


ProbeFn = Callable[[CheckKind, str, ProbeContext], Awaitable[list[CheckResult]]]


def runner_for(ctx: ProbeContext, probe_fn: ProbeFn = probe) -> RunProbe:
    """The scheduler's run_probe: each run gets the scheduler's deadline in its context."""

    async def run(check: CheckKind, device: str, deadline: float) -> list[CheckResult]:
        return await probe_fn(check, device, ctx.until(deadline))

    return run


def load_key(inventory: Inventory, device: str) -> str:
    """Whose capacity a probe of `device` uses, for the per-recorder limit: an IP camera
    with its own address is asked directly (host, snapshot), so it loads only itself;
    a recorder, an analog camera or an IP camera without an address load the recorder."""
    cam = inventory.cameras.get(device)
    if cam is not None and cam.kind == CameraKind.IP and cam.address is not None:
        return device
    return recorder_of(inventory, device)


def intervals(settings: Settings) -> dict[CheckKind, float]:
    return {
        CheckKind.HOST: settings.host_interval,
        CheckKind.RECORDING: settings.recording_interval,
        CheckKind.PICTURE: settings.picture_interval,
    }


def memory_to_json(memory: DeviceMemory) -> dict[str, Any]:
    return {"facts": memory.facts, "baselines": memory.baselines}


def memory_from_json(doc: dict[str, Any] | None) -> DeviceMemory:
    if not doc:
        return DeviceMemory()
    facts = doc.get("facts")
    baselines = doc.get("baselines")
    return DeviceMemory(
        facts=dict(facts) if isinstance(facts, dict) else {},
        baselines=dict(baselines) if isinstance(baselines, dict) else {},
    )


# --- the seams to the outputs -------------------------------------------------------------


class StoreLike(Protocol):
    def record_results(self, results: Sequence[CheckResult]) -> int: ...
    def save_state(self, key: str, value: Any) -> None: ...
    def load_state(self, key: str) -> dict[str, Any] | None: ...
    def close(self) -> None: ...


class Alerting(Protocol):
    """The alert engine and its Alertmanager pusher, as the service drives them."""

    def observe(self, results: Sequence[CheckResult]) -> None: ...
    def export_state(self) -> dict[str, Any]: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def firing(self) -> Sequence[Any]: ...


AlertingFactory = Callable[[Settings, Inventory, StoreLike | None, dict[str, Any] | None],
                           Alerting]
ReportProvider = Callable[[str, str, str], Awaitable[bytes]]


class EngineAlerting:
    """F's alert engine (exporters/alerting.py) fed by the scheduler, pushed to
    Alertmanager by F's pusher (exporters/alertmanager.py); fired/resolved events go to
    the inspection log (repair requested / repaired) on a worker thread."""

    def __init__(self, settings: Settings, inventory: Inventory, store: StoreLike | None,
                 saved: dict[str, Any] | None, clock: Clock | None = None) -> None:
        from exporters.alerting import AlertEngine, AlertEvent

        self.clock = clock or default_clock()
        self.engine = AlertEngine(inventory, debounce=settings.alert_debounce,
                                  recovery=settings.alert_recovery)
        self.engine.load(saved)
        self._store = store
        self._settings = settings
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alert-log")
        self._client: Any = None
        self.pusher: Any = None
        self._task: asyncio.Task[None] | None = None

        def on_event(ev: AlertEvent) -> None:
            if store is None or not hasattr(store, "record_alert_event"):
                return
            self._writer.submit(_record_alert_event, store, ev.kind, ev.alertname, ev.device,
                                dict(ev.alert.labels), ev.at)

        self.engine.listeners.append(on_event)
        # alerts of devices taken out of the inventory since the last run are resolved
        self.engine.forget_devices({*inventory.recorders, *inventory.cameras},
                                   self.clock.now())

    def observe(self, results: Sequence[CheckResult]) -> None:
        for r in results:
            self.engine.observe(r)
        if self.pusher is not None:
            self.pusher.notify()

    def export_state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.engine.dump()
        return state

    def firing(self) -> Sequence[Any]:
        return list(self.engine.firing())

    async def _save(self, doc: dict[str, Any]) -> None:
        if self._store is not None:
            await asyncio.to_thread(self._store.save_state, ALERTS_KEY, doc)

    async def start(self) -> None:
        import httpx

        from exporters.alertmanager import AlertmanagerPusher

        self._client = httpx.AsyncClient(trust_env=False)
        self.pusher = AlertmanagerPusher(
            self.engine, self._settings.alertmanager_url, self._client,
            resend_interval=self._settings.alert_resend_interval, save=self._save,
            now=self.clock.now,
        )
        if self._settings.alertmanager_url:  # without one the engine only keeps the log
            self._task = asyncio.create_task(self.pusher.run(), name="alertmanager-pusher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.pusher is not None:
            await self.pusher.flush(5.0)
        if self._client is not None:
            await self._client.aclose()
        await asyncio.to_thread(self._writer.shutdown, True)


def _record_alert_event(store: Any, kind: str, alertname: str, device: str,
                        labels: dict[str, str], at: dt.datetime) -> None:
    try:
        store.record_alert_event(kind, alertname, device, labels, at)
    except Exception as exc:
        event(log, "cannot record alert event", logging.ERROR,
              error=f"{type(exc).__name__}: {exc}")


def default_alerting(settings: Settings, inventory: Inventory, store: StoreLike | None,
                     saved: dict[str, Any] | None, clock: Clock | None = None) -> Alerting:
    return EngineAlerting(settings, inventory, store, saved, clock)


# --- the service --------------------------------------------------------------------------


@dataclasses.dataclass
class Service:
    settings: Settings
    inventory: Inventory
    shard: tuple[int, int] | None = None
    probe_fn: ProbeFn = probe  # probes.api.probe; tests inject their own
    open_store: Callable[[str], StoreLike] | None = None
    alerting_factory: AlertingFactory | None = None
    report_provider: ReportProvider | None = None
    extra_sinks: Sequence[Sink] = ()
    # What "now" and "today" are for every output (camwatch.clock; tests pin it).
    clock: Clock = dataclasses.field(default_factory=default_clock)

    def __post_init__(self) -> None:
        self.state = LatestState()
        self.store: StoreLike | None = None
        self.store_sink: ThreadedBatchSink | None = None
        self.alerting: Alerting | None = None
        self.scheduler: Scheduler | None = None
        self.http: Any = None
        self.ctx: ProbeContext | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()
        self._stopping = False

    @property
    def url(self) -> str | None:
        return self.http.url if self.http is not None else None

    async def start(self) -> None:
        s = self.settings
        # 1. the inspection log, and what it remembers for probes and alerts
        if self.open_store is not None or s.store_url:
            opener = self.open_store or functools.partial(_open_store, clock=self.clock)
            try:
                self.store = await asyncio.to_thread(opener, s.store_url)
            except Exception as exc:
                raise StartupError(f"inspection log: {exc}") from None
        memory = DeviceMemory()
        saved_alerts: dict[str, Any] | None = None
        if self.store is not None:
            memory = memory_from_json(await asyncio.to_thread(self.store.load_state, MEMORY_KEY))
            saved_alerts = await asyncio.to_thread(self.store.load_state, ALERTS_KEY)
        self.ctx = probe_context(s, self.inventory, memory, self.clock)

        # 2. alerts
        factory = self.alerting_factory
        if factory is None and s.alertmanager_url:
            factory = functools.partial(default_alerting, clock=self.clock)
        if factory is not None:
            self.alerting = factory(s, self.inventory, self.store, saved_alerts)
            await self.alerting.start()

        # 3. HTTP
        from camwatch.baselines import baseline_describer, baseline_resetter, baseline_setter
        from exporters.http import HttpServer

        try:
            self.http = HttpServer(s, self.state, self.inventory,
                                   report_provider=self.report_provider or self._report,
                                   alerts=self._alerts_for_page, now=self.clock.now,
                                   baseline_reset=baseline_resetter(lambda: self.ctx,
                                                                    self._persist),
                                   baseline_describe=baseline_describer(lambda: self.ctx),
                                   baseline_set=baseline_setter(lambda: self.ctx,
                                                                self._persist))
        except (ValueError, OSError) as exc:  # TLS cert/key missing, unreadable or bad
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise StartupError(f"TLS: cannot use certificate {s.tls_cert} and key {s.tls_key} "
                               f"({detail}); set both CAMWATCH_TLS_CERT and CAMWATCH_TLS_KEY "
                               "to readable PEM files, or neither for plain HTTP") from None
        try:
            await self.http.start()
        except OSError as exc:
            raise StartupError(f"cannot listen on {s.listen} ({exc.strerror or exc}); "
                               "set CAMWATCH_LISTEN to a free host:port") from None

        # 4. scheduler and its sinks (the probe modules pull in OpenCV and zeep: import
        # them off the loop now, not inside the first probe)
        if self.probe_fn is probe:
            await asyncio.to_thread(_preload_probes)
            await prepare(self.inventory)  # the drivers' set-up, before any deadline
        sinks: list[Sink] = [self.state.update]
        if self.store is not None:
            self.store_sink = ThreadedBatchSink(self.store.record_results)
            sinks.append(self.store_sink)
        if self.alerting is not None:
            sinks.append(self.alerting.observe)
        sinks.extend(self.extra_sinks)
        plan = planned_checks(self.inventory)
        rec_of: Callable[[str], str] = lambda d: recorder_of(self.inventory, d)  # noqa: E731
        if self.shard is not None:
            plan = filter_shard(plan, self.shard, rec_of)
        self.scheduler = Scheduler(
            plan, runner_for(self.ctx, self.probe_fn),
            intervals=intervals(s), recorder_of=lambda d: load_key(self.inventory, d),
            concurrency=s.concurrency, per_recorder=s.per_recorder_concurrency,
            timeout=s.timeout, retries=s.retries, jitter=s.jitter,
            sinks=sinks, state=self.state, now=self.clock.now,
        )
        self.scheduler.start()
        self.state.scheduler.overdue_fn = self.scheduler.overdue
        self.state.ready = True
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
        event(log, "camwatch started", url=self.http.url, devices=len(self.inventory.recorders)
              + len(self.inventory.cameras), checks=len(plan),
              shard=f"{self.shard[0]}/{self.shard[1]}" if self.shard else "all",
              alertmanager="on" if self.alerting is not None else "off",
              store="on" if self.store is not None else "off")

    async def stop(self) -> None:
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        self.state.ready = False
        self.state.scheduler.overdue_fn = None  # a stopped scheduler is not behind
        if self.scheduler is not None:
            await self.scheduler.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self.store_sink is not None:
            await asyncio.to_thread(self.store_sink.close)
        await self._persist()
        if self.alerting is not None:
            with contextlib.suppress(Exception):
                await self.alerting.stop()
            await self._persist()  # what the pusher sent while stopping
        if self.http is not None:
            await self.http.stop()
        if self.store is not None:
            await asyncio.to_thread(self.store.close)
        event(log, "camwatch stopped")
        self._stopped.set()

    async def _persist(self) -> None:
        if self.store is None:
            return
        try:
            if self.ctx is not None:
                await asyncio.to_thread(self.store.save_state, MEMORY_KEY,
                                        memory_to_json(self.ctx.memory))
            if self.alerting is not None:
                await asyncio.to_thread(self.store.save_state, ALERTS_KEY,
                                        self.alerting.export_state())
        except Exception as exc:
            event(log, "cannot persist state", logging.ERROR,
                  error=f"{type(exc).__name__}: {exc}")

    async def _housekeeping(self) -> None:
        """Persist probe memory and alert state now and then; once a day write the
        daily snapshot and the inspection record, and purge the log past retention."""
        last_day: dt.date | None = None
        next_persist = time.monotonic() + PERSIST_EVERY_S
        while True:
            await asyncio.sleep(min(5.0, PERSIST_EVERY_S))
            if time.monotonic() >= next_persist:
                await self._persist()
                next_persist = time.monotonic() + PERSIST_EVERY_S
            store = self.store
            if store is None:
                continue
            today = local_today(self.clock, self.inventory.campus.timezone)
            if last_day is None:
                last_day = today
            elif today != last_day:
                last_day = today
                await asyncio.to_thread(self._daily, store)

    def _daily(self, store: Any) -> None:
        now = self.clock.now()
        try:
            if hasattr(store, "daily_housekeeping"):
                store.daily_housekeeping(now, self.inventory.campus.timezone,
                                         self.settings.inspection_interval_days)
            if hasattr(store, "purge"):
                store.purge(now - dt.timedelta(days=self.settings.log_retention_days))
        except Exception as exc:
            event(log, "daily housekeeping failed", logging.ERROR,
                  error=f"{type(exc).__name__}: {exc}")

    def _alerts_for_page(self) -> Sequence[Any]:
        if self.alerting is None:
            return []
        from exporters.http import FiringAlert

        try:
            return [FiringAlert(a.alertname, a.device, a.annotations.get("summary", ""),
                                a.starts_at) for a in self.alerting.firing()]
        except Exception:
            return []

    async def _report(self, month: str, unit: str, fmt: str) -> bytes:
        if self.store is None:
            raise LookupError("no inspection log configured")
        store = self.store
        return await asyncio.to_thread(render_report, store, self.inventory, month, unit, fmt,
                                       self.settings.inspection_interval_days,
                                       self.clock.now())

    async def run_until_signalled(self) -> None:
        """Start, wait for SIGINT/SIGTERM, stop cleanly."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        try:
            await self.start()
            await stop.wait()
            event(log, "signal received, stopping")
        finally:
            await self.stop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)


def render_report(store: Any, inventory: Inventory, month: str, unit: str, fmt: str,
                  interval_days: int = 14, now: dt.datetime | None = None) -> bytes:
    """G's monthly sheet (reports/sheet.py) for one unit, as bytes; `now` is camwatch's
    clock (default the process clock)."""
    from reports.sheet import produce

    data: bytes = produce(store, inventory, month, unit, fmt, interval_days=interval_days,
                          now=now)
    return data


def _preload_probes() -> None:
    import importlib

    for name in ("probes.host", "probes.recording", "probes.picture"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def _open_store(url: str, clock: Clock | None = None) -> StoreLike:
    from camwatch.store import Store

    store: StoreLike = Store.open(url, now=(clock or default_clock()).now)
    return store

