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
import os
import re
import signal
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from camwatch import shards
from camwatch.baselines import baseline_describer, baseline_resetter, baseline_setter
from camwatch.clock import Clock, default_clock, local_today
from camwatch.heap import trim
from camwatch.logs import event
from camwatch.logwriter import LoggedStore, LogWriter
from camwatch.scheduler import RunProbe, Scheduler, Sink, filter_shard
from camwatch.secrets import SecretError, SecretStore, find_secrets_beside
from camwatch.settings import Settings, SettingsError, load_settings, unknown_variables
from camwatch.shards import shard_text
from camwatch.state import LatestState
from inventory.models import CameraKind, Inventory
from probes.api import planned_checks, prepare, probe, recorder_of
from probes.context import DeviceMemory, JsonValues, ProbeConfig, ProbeContext
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


def credential_variables(inventory: Inventory) -> set[str]:
    """The environment variables the inventory's ${VAR} credential references name."""
    text = inventory.model_dump_json()
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text))


def settings_warnings(inventory: Inventory) -> list[str]:
    """Misspelt CAMWATCH_* variables (they would be silently ignored), with the closest
    setting; the inventory's credential variables are not settings and are fine."""
    return unknown_variables(os.environ, credential_variables(inventory))


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
        host_facts_every_s=settings.host_facts_interval,
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
    from probes.drivers.http import HttpPool

    return ProbeContext(
        inventory=inventory,
        secrets=secrets,
        config=probe_config(settings),
        memory=memory or DeviceMemory(),
        now=(clock or default_clock()).now,
        # each device's keep-alive connection and digest challenge, kept across checks
        http_pool=HttpPool(),
    )


ProbeFn = Callable[[CheckKind, str, ProbeContext], Awaitable[list[CheckResult]]]


def runner_for(ctx: ProbeContext, probe_fn: ProbeFn = probe) -> RunProbe:
    """The scheduler's run_probe: each run gets the scheduler's deadline in its context."""

    async def run(check: CheckKind, device: str, deadline: float) -> list[CheckResult]:
        return await probe_fn(check, device, ctx.until(deadline))

    return run


def subject_for(inventory: Inventory) -> Callable[[CheckKind, str], str]:
    """How a timeout the scheduler writes names the device, as the checks' own reasons
    do: a camera's picture by its lens position (「…走廊東側鏡頭：」)."""

    def subject(check: CheckKind, device: str) -> str:
        cam = inventory.cameras.get(device)
        if check == CheckKind.PICTURE and cam is not None:
            return f"{cam.position}鏡頭："
        return ""

    return subject


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


def _memory_doc(facts: Mapping[str, Any], packed: Mapping[str, bytes]) -> dict[str, Any]:
    """A stored probe memory document: each camera's baselines as the text of what the
    memory holds packed (JsonValues.as_text), not a tree to copy and encode again."""
    as_text = JsonValues.as_text
    return {"facts": dict(facts), "baselines": {c: as_text(b) for c, b in packed.items()}}


def memory_to_json(memory: DeviceMemory) -> dict[str, Any]:
    """The whole probe memory as one document of the stored form (what memory_rows
    splits into parts)."""
    return _memory_doc(memory.facts, memory.baselines.packed())


# The probe memory is stored in this many documents, each the memory of the devices whose
# id hashes to it: at 10,000 learning cameras one document was ~70 MB of JSON, and
# encoding it for the database took ~290 MB at its peak and 0.6 s of CPU every minute.
MEMORY_PARTS = 32


def memory_part(device: str) -> int:
    return zlib.crc32(device.encode()) % MEMORY_PARTS


def memory_rows(key: str, facts: Mapping[str, Any], packed: Mapping[str, bytes],
                ) -> Iterator[tuple[str, dict[str, Any]]]:
    """The documents of a probe memory (its facts and packed baselines, as copied in
    the event loop) under `key#00` … `key#31`, each made only when asked for."""
    parts_f: list[dict[str, Any]] = [{} for _ in range(MEMORY_PARTS)]
    parts_b: list[dict[str, bytes]] = [{} for _ in range(MEMORY_PARTS)]
    for d, v in facts.items():
        parts_f[memory_part(d)][d] = v
    for d, b in packed.items():
        parts_b[memory_part(d)][d] = b
    for k in range(MEMORY_PARTS):
        yield f"{key}#{k:02d}", _memory_doc(parts_f[k], parts_b[k])


def load_memory(store: StoreLike, key: str) -> DeviceMemory | None:
    """The probe memory stored under `key` (its parts, or one document as camwatch kept
    it before); None when there is none."""
    parts = store.load_states(f"{key}#")
    if not parts:
        doc = store.load_state(key)
        return None if doc is None else memory_from_json(doc)
    memory = DeviceMemory()
    for doc in parts.values():
        memory.merge(memory_from_json(doc))
    return memory


def memory_from_json(doc: dict[str, Any] | None) -> DeviceMemory:
    if not doc:
        return DeviceMemory()
    facts = doc.get("facts")
    stored = doc.get("baselines")
    baselines = JsonValues()
    for camera, value in (stored.items() if isinstance(stored, dict) else ()):
        if isinstance(value, dict):  # kept as a tree before camwatch packed them
            baselines[camera] = value
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):  # one that no longer reads: learned anew
                baselines.put_packed({camera: JsonValues.from_text(value)})
    return DeviceMemory(facts=dict(facts) if isinstance(facts, dict) else {},
                        baselines=baselines)


# Settings a running service cannot change: a reload says so and keeps the running value.
RESTART_ONLY = ("listen", "tls_cert", "tls_key", "store_url", "alertmanager_url",
                "log_format", "log_file", "concurrency", "per_recorder_concurrency",
                "store_backlog_max")


class ReloadError(Exception):
    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def restart_only_changes(running: Settings, new: Settings) -> list[str]:
    return [f"{name} changed: takes effect at the next restart (still "
            f"{_shown(name, getattr(running, name))})"
            for name in RESTART_ONLY if getattr(running, name) != getattr(new, name)]


def _shown(name: str, value: Any) -> str:
    if name == "store_url" and isinstance(value, str):
        from sqlalchemy.engine import make_url

        with contextlib.suppress(Exception):
            return str(make_url(value).render_as_string(hide_password=True))
        return "<store URL>"
    return str(value)


def _view_changed(old: Any, new: Any) -> bool:
    """A camera whose picture comes from elsewhere now: its baselines no longer hold."""
    if old is None:
        return True
    return bool((old.recorder, old.channel, old.address) != (new.recorder, new.channel,
                                                             new.address))


def plan_answers(inventory: Inventory, plan: Sequence[tuple[CheckKind, str]]
                 ) -> list[tuple[CheckKind, str]]:
    """Answers the plan produces beyond its own pairs: a recorder's recording check
    answers for each camera channel, its host check for analog and address-less ones."""
    out: list[tuple[CheckKind, str]] = []
    for check, device in plan:
        if device in inventory.recorders and check in (CheckKind.HOST, CheckKind.RECORDING):
            out.extend((check, c.id) for c in inventory.cameras_of(device))
    return out


# --- the seams to the outputs -------------------------------------------------------------


class StoreLike(Protocol):
    def record_results(self, results: Sequence[CheckResult]) -> int: ...
    def save_state(self, key: str, value: Any) -> None: ...
    def save_states(self, docs: Iterable[tuple[str, Mapping[str, Any]]],
                    drop: Iterable[str] = ()) -> None: ...
    def load_state(self, key: str) -> dict[str, Any] | None: ...
    def load_states(self, prefix: str) -> dict[str, dict[str, Any]]: ...
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
                                  recovery=settings.alert_recovery,
                                  flap_window=settings.flap_window,
                                  flap_changes=settings.flap_changes)
        self.engine.load(saved)
        self._store = store
        self._settings = settings
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alert-log")
        self._client: Any = None
        self.pusher: Any = None
        self.state_key = ALERTS_KEY  # the service gives each shard its own
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
        self.engine.observe_run(results)  # one probe run: channels explain their recorder
        if self.pusher is not None:
            self.pusher.notify()

    def export_state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.engine.dump()
        return state

    def reconfigure(self, settings: Settings, inventory: Inventory) -> None:
        """After a reload: new thresholds; alerts of devices taken out are resolved."""
        e = self.engine
        e.inventory = inventory
        e.debounce, e.recovery = settings.alert_debounce, settings.alert_recovery
        e.flap_window, e.flap_changes = settings.flap_window, settings.flap_changes
        self._settings = settings
        if self.pusher is not None:
            self.pusher.resend_interval = settings.alert_resend_interval
        e.forget_devices({*inventory.recorders, *inventory.cameras}, self.clock.now())
        if self.pusher is not None:
            self.pusher.notify()

    def firing(self) -> Sequence[Any]:
        return list(self.engine.firing())

    async def _save(self, doc: dict[str, Any]) -> None:
        if self._store is not None:
            await asyncio.to_thread(self._store.save_state, self.state_key, doc)

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
    # --workers N: probe processes over shards of the inventory (camwatch.workers); they
    # load the inventory and settings from the paths below. 1: probe in this process.
    workers: int = 1
    # where inventory and settings were read from: a reload (and each worker) reads them
    inventory_paths: Sequence[Path] = ()
    settings_path: Path | None = None

    def __post_init__(self) -> None:
        self.state = LatestState()
        self.store: StoreLike | None = None
        self.store_sink: LogWriter | None = None
        self.alerting: Alerting | None = None
        self.scheduler: Scheduler | None = None
        self.pool: Any = None  # camwatch.workers.WorkerPool with --workers N > 1
        self.http: Any = None
        self.ctx: ProbeContext | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()
        self._stopping = False
        self._reload_lock = asyncio.Lock()
        self.state.reload.last_success_at = self.clock.now().timestamp()

    @property
    def url(self) -> str | None:
        return self.http.url if self.http is not None else None

    def state_key(self, key: str) -> str:
        """kv_state keys per shard: instances writing one log never share their state."""
        return key if self.shard is None else f"{key}@{shard_text(self.shard)}"

    def my_devices(self) -> list[str] | None:
        """The devices this instance probes and records (None: all of them)."""
        if self.shard is None:
            return None
        devices = [*self.inventory.recorders, *self.inventory.cameras]
        return shards.filter_shard(devices, self.shard,
                                   lambda d: recorder_of(self.inventory, d))

    async def start(self) -> None:
        s = self.settings
        # 1. the inspection log (one writer per log or shard), and what it remembers
        if self.open_store is not None or s.store_url:
            from camwatch.store import StoreBusyError

            opener = self.open_store or functools.partial(
                _open_store, clock=self.clock, writer=shard_text(self.shard))
            try:
                self.store = await asyncio.to_thread(opener, s.store_url)
            except StoreBusyError as exc:
                raise StartupError(str(exc)) from None
            except Exception as exc:
                raise StartupError(f"inspection log: {exc}") from None
        memory = DeviceMemory()
        saved_alerts: dict[str, Any] | None = None
        if self.store is not None:
            saved = await asyncio.to_thread(load_memory, self.store,
                                            self.state_key(MEMORY_KEY))
            if saved is None and self.shard is not None:  # split from one instance: its
                # baselines are as good for this shard's cameras
                saved = await asyncio.to_thread(load_memory, self.store, MEMORY_KEY)
            memory = saved if saved is not None else DeviceMemory()
            saved_alerts = await asyncio.to_thread(self.store.load_state,
                                                   self.state_key(ALERTS_KEY))
        self.ctx = probe_context(s, self.inventory, memory, self.clock)

        # the writer: results and repair events wait out a log that cannot be written
        alert_store: Any = self.store
        if self.store is not None:
            self.store_sink = LogWriter(
                self.store, self.state.store,  # type: ignore[arg-type]
                max_held=max(s.store_backlog_max, 4 * len(planned_checks(self.inventory))),
                now=self.clock.now)
            alert_store = LoggedStore(self.store, self.store_sink)

        # 2. alerts
        factory = self.alerting_factory
        if factory is None and s.alertmanager_url:
            factory = functools.partial(default_alerting, clock=self.clock)
        if factory is not None:
            self.alerting = factory(s, self.inventory, alert_store, saved_alerts)
            if hasattr(self.alerting, "state_key"):
                self.alerting.state_key = self.state_key(ALERTS_KEY)
            await self.alerting.start()

        # 3. HTTP
        from exporters.http import HttpServer

        try:
            self.http = HttpServer(s, self.state, lambda: self.inventory,
                                   report_provider=self.report_provider or self._report,
                                   alerts=self._alerts_for_page, now=self.clock.now,
                                   baseline_reset=self._baseline_reset(),
                                   baseline_describe=baseline_describer(lambda: self.ctx),
                                   baseline_set=self._baseline_set(),
                                   reload=self.reload)
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

        # 4. scheduler (or the workers) and the sinks (the probe modules pull in OpenCV
        # and zeep: import them off the loop now, not inside the first probe)
        if self.probe_fn is probe and self.workers <= 1:
            await asyncio.to_thread(_preload_probes)
            await prepare(self.inventory)  # the drivers' set-up, before any deadline
        sinks: list[Sink] = [self.state.update]
        if self.store_sink is not None:
            sinks.append(self.store_sink)
        if self.alerting is not None:
            sinks.append(self.alerting.observe)
        sinks.extend(self.extra_sinks)
        plan = self.plan()
        if self.workers > 1:
            await self._start_workers(sinks, plan)
            return
        self.scheduler = Scheduler(
            plan, runner_for(self.ctx, self.probe_fn),
            intervals=intervals(s), recorder_of=lambda d: load_key(self.inventory, d),
            concurrency=s.concurrency, per_recorder=s.per_recorder_concurrency,
            timeout=s.timeout, retries=s.retries, jitter=s.jitter,
            sinks=sinks, state=self.state, now=self.clock.now,
            subject_of=subject_for(self.inventory),
        )
        self.scheduler.start()
        self.state.scheduler.overdue_fn = self.scheduler.overdue
        self.state.ready = True
        trim()  # what reading the inventory and the store at start left free
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
        event(log, "camwatch started", url=self.http.url, devices=len(self.inventory.recorders)
              + len(self.inventory.cameras), checks=len(plan),
              shard=f"{self.shard[0]}/{self.shard[1]}" if self.shard else "all",
              alertmanager="on" if self.alerting is not None else "off",
              store="on" if self.store is not None else "off")

    async def _start_workers(self, sinks: list[Sink],
                             plan: Sequence[tuple[CheckKind, str]]) -> None:
        from camwatch.workers import WorkerPool

        assert self.ctx is not None
        if not self.inventory_paths:
            raise StartupError("--workers needs the inventory's paths (the workers load it)")
        checks = len(plan)
        self.pool = WorkerPool(
            self.workers, inventory_paths=self.inventory_paths,
            settings_path=self.settings_path, shard=self.shard, memory=self.ctx.memory,
            state=self.state, sinks=sinks, devices=self._worker_devices(plan),
        )
        await self.pool.start()
        self.state.ready = True
        trim()  # what reading the inventory and the store at start left free
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
        event(log, "camwatch started", url=self.http.url, devices=len(self.inventory.recorders)
              + len(self.inventory.cameras), checks=checks, workers=self.workers,
              shard=f"{self.shard[0]}/{self.shard[1]}" if self.shard else "all",
              alertmanager="on" if self.alerting is not None else "off",
              store="on" if self.store is not None else "off")

    def _worker_devices(self, plan: Sequence[tuple[CheckKind, str]]) -> dict[int, set[str]]:
        from camwatch.workers import worker_devices

        inv = self.inventory
        return {
            k: worker_devices(plan, k, self.workers, lambda d: recorder_of(inv, d),
                              lambda r: [c.id for c in inv.cameras_of(r)])
            for k in range(1, self.workers + 1)
        }

    def _baseline_reset(self) -> Any:
        reset = baseline_resetter(lambda: self.ctx, self._persist)

        async def and_workers(camera: str) -> dict[str, Any]:
            out = await reset(camera)
            if self.pool is not None:
                self.pool.reset_baseline(camera)  # the worker probing it forgets it too
            return out

        return and_workers

    def _baseline_set(self) -> Any:
        set_reference = baseline_setter(lambda: self.ctx, self._persist)

        async def and_workers(camera: str, sent: dict[str, Any]) -> dict[str, Any]:
            out = await set_reference(camera, sent)
            if self.pool is not None and self.ctx is not None:
                # the worker probing it holds the live baseline: it must judge by this one
                # (and send this one back with its memory), not by what it had learned
                self.pool.set_baseline(camera, self.ctx.memory.baselines[camera])
            return out

        return and_workers

    def plan(self) -> list[tuple[CheckKind, str]]:
        """The checks this instance runs: its shard of the inventory's plan."""
        plan = planned_checks(self.inventory)
        if self.shard is not None:
            plan = filter_shard(plan, self.shard, lambda d: recorder_of(self.inventory, d))
        return plan

    # -- reload (SIGHUP, POST /admin/reload) ---------------------------------------------

    async def reload(self, source: str = "SIGHUP") -> dict[str, Any]:
        """Read inventory and settings again, as Prometheus does with its config. A valid
        new inventory takes effect at once, and devices that did not change keep their
        state (latest answers, alerts, baselines, schedule); anything invalid is refused
        whole and the running inventory and settings stay. Settings that only a restart
        can change (listen, TLS, store, Alertmanager URL, log output, concurrency) are
        said as warnings."""
        async with self._reload_lock:
            st = self.state.reload
            st.last_attempt_at = self.clock.now().timestamp()
            st.source = source
            event(log, "reload requested", source=source)
            if self._stopping or self.ctx is None or (self.scheduler is None
                                                      and self.pool is None):
                errors = ["the service is not running"]
            elif not self.inventory_paths:
                errors = ["this process was not started from inventory files: nothing to "
                          "read again"]
            else:
                errors = []
                try:
                    settings, inventory = await asyncio.to_thread(self._read_again)
                except ReloadError as exc:
                    errors = exc.lines
            if errors:
                st.success = False
                st.errors = errors
                event(log, "reload refused; the running inventory and settings stay",
                      logging.ERROR, source=source, errors=" | ".join(errors))
                return {"ok": False, "source": source, "errors": errors}
            warnings = settings_warnings(inventory) + restart_only_changes(self.settings,
                                                                           settings)
            changes, forgotten = self._apply(settings, inventory)
            if self.pool is not None:
                # every worker starts anew on the files just read (its state for
                # unchanged devices is learnt again in one check; their memory stays)
                self.pool.reload(devices=self._worker_devices(self.plan()),
                                 forget=forgotten)
            st.success = True
            st.last_success_at = self.clock.now().timestamp()
            st.errors = []
            st.warnings = warnings
            event(log, "reloaded inventory and settings", source=source, **changes,
                  warnings=" | ".join(warnings) or None)
            return {"ok": True, "source": source, "warnings": warnings, **changes}

    def _read_again(self) -> tuple[Settings, Inventory]:
        from camwatch.settings import load_settings
        from inventory.errors import InventoryError
        from inventory.loader import load_inventory

        lines: list[str] = []
        settings: Settings | None = None
        inventory: Inventory | None = None
        try:
            settings = load_settings(self.settings_path)
        except SettingsError as exc:
            lines.extend(str(exc).splitlines())
        try:
            inventory = load_inventory(list(self.inventory_paths))
        except InventoryError as exc:
            lines.extend(exc.summary().splitlines())
        if settings is not None:
            try:
                SecretStore(settings.secrets_file).check()
            except SecretError as exc:
                lines.append(f"secrets: {exc}")
        if lines or settings is None or inventory is None:
            raise ReloadError(lines or ["cannot read inventory or settings"])
        return settings, inventory

    def _apply(self, settings: Settings, inventory: Inventory
               ) -> tuple[dict[str, int], tuple[set[str], set[str]]]:
        """Swap in a validated inventory and settings (on the loop, at once). Returns
        the changes and the devices whose (facts, baselines) were forgotten."""
        assert self.ctx is not None
        old = self.inventory
        before = {**old.recorders, **old.cameras}
        after = {**inventory.recorders, **inventory.cameras}
        removed = set(before) - set(after)
        added = set(after) - set(before)
        changed = {d for d in set(before) & set(after) if before[d] != after[d]}
        # what needs a restart keeps its running value
        settings = settings.model_copy(update={k: getattr(self.settings, k)
                                               for k in RESTART_ONLY})
        self.settings = settings
        self.inventory = inventory
        ctx = self.ctx
        ctx.inventory = inventory
        ctx.config = probe_config(settings)
        ctx.secrets = SecretStore(settings.secrets_file)
        forget_facts = removed | changed
        for d in forget_facts:  # facts (vendor quirks, uptime) are learned again
            ctx.memory.facts.pop(d, None)
        forget_baselines = removed | {c for c in changed & set(inventory.cameras)
                                      if _view_changed(old.cameras.get(c),
                                                       inventory.cameras[c])}
        for d in forget_baselines:
            ctx.memory.baselines.pop(d, None)  # a camera that looks elsewhere now
        plan = self.plan()
        if self.scheduler is not None:
            self.scheduler.replan(plan, intervals=intervals(settings),
                                  timeout=settings.timeout, retries=settings.retries,
                                  jitter=settings.jitter)
        self.state.forget({(d, c) for c, d in plan} | {(d, c) for c, d in plan_answers(
            inventory, plan)})
        reconfigure = getattr(self.alerting, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(settings, inventory)
        if self.http is not None:
            self.http.reconfigure(settings)
        logging.getLogger().setLevel(settings.log_level)
        return ({"devices": len(after), "added": len(added), "removed": len(removed),
                 "changed": len(changed), "checks": len(plan)},
                (forget_facts, forget_baselines))

    async def stop(self) -> None:
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        self.state.ready = False
        self.state.scheduler.overdue_fn = None  # a stopped scheduler is not behind
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.pool is not None:
            await self.pool.stop()  # the workers' last results and memory come in first
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self._persist()
        if self.alerting is not None:
            with contextlib.suppress(Exception):
                await self.alerting.stop()
            await self._persist()  # what the pusher sent while stopping
        if self.store_sink is not None:  # after the alerts: their last events go too
            await asyncio.to_thread(self.store_sink.close)
        if self.http is not None:
            await self.http.stop()
        if self.ctx is not None and self.ctx.http_pool is not None:
            await self.ctx.http_pool.aclose()
        if self.store is not None:
            await asyncio.to_thread(self.store.close)
        event(log, "camwatch stopped")
        self._stopped.set()

    async def _persist(self) -> None:
        if self.store is None:
            return
        try:
            if self.ctx is not None:
                # top-level copies in the loop (a check finishing meanwhile changes
                # nothing being written), the documents made one by one in the thread;
                # the single document of before is dropped with them
                mem, key = self.ctx.memory, self.state_key(MEMORY_KEY)
                rows = memory_rows(key, dict(mem.facts), mem.baselines.packed())
                await asyncio.to_thread(self.store.save_states, rows, [key])
            if self.alerting is not None:
                await asyncio.to_thread(self.store.save_state, self.state_key(ALERTS_KEY),
                                        self.alerting.export_state())
            trim()  # the JSON written is garbage now: give its pages back
        except Exception as exc:
            event(log, "cannot persist state", logging.ERROR,
                  error=f"{type(exc).__name__}: {exc}")

    async def _housekeeping(self) -> None:
        """Persist probe memory and alert state now and then; at start and after each
        local midnight write every daily snapshot and inspection record still missing
        (a restart across midnight loses no day), and purge the log past retention."""
        last_day: dt.date | None = None
        next_persist = time.monotonic() + PERSIST_EVERY_S
        first = True
        while True:
            if not first:
                await asyncio.sleep(min(5.0, PERSIST_EVERY_S))
            first = False
            if time.monotonic() >= next_persist:
                await self._persist()
                next_persist = time.monotonic() + PERSIST_EVERY_S
            store = self.store
            if store is None:
                continue
            today = local_today(self.clock, self.inventory.campus.timezone)
            if today != last_day:
                await asyncio.to_thread(self._daily, store, last_day is not None)
                last_day = today

    def _daily(self, store: Any, purge: bool = True) -> None:
        # The day's last results may still wait in the writer's queue at midnight: a row
        # written without them would answer "nothing recorded" for a checked device.
        if self.store_sink is not None:
            self.store_sink.flush(timeout=15.0)
        now = self.clock.now()
        try:
            if hasattr(store, "catch_up_daily"):
                days = store.catch_up_daily(now, self.inventory.campus.timezone,
                                            self.settings.inspection_interval_days,
                                            self.my_devices(), self.settings.log_retention_days)
                if days:
                    event(log, "daily records written", days=",".join(d.isoformat()
                                                                      for d in days))
            if purge and hasattr(store, "purge"):
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
                                       self.clock.now(), self.settings.log_gap_min_s)

    async def run_until_signalled(self) -> None:
        """Start, reload on SIGHUP, wait for SIGINT/SIGTERM, stop cleanly."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        started = asyncio.Event()
        hups: list[asyncio.Task[Any]] = []

        def on_hup() -> None:  # installed before start: an early SIGHUP must not kill
            async def later() -> None:
                await started.wait()
                await self.reload("SIGHUP")

            hups.append(asyncio.create_task(later(), name="reload"))

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
            loop.add_signal_handler(signal.SIGHUP, on_hup)
        try:
            await self.start()
            started.set()
            await stop.wait()
            event(log, "signal received, stopping")
        finally:
            for t in hups:
                t.cancel()
            await self.stop()
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
                    loop.remove_signal_handler(sig)


def render_report(store: Any, inventory: Inventory, month: str, unit: str, fmt: str,
                  interval_days: int = 14, now: dt.datetime | None = None,
                  gap_min_s: float = 600.0) -> bytes:
    """G's monthly sheet (reports/sheet.py) for one unit, as bytes; `now` is camwatch's
    clock (default the process clock)."""
    from reports.sheet import produce

    data: bytes = produce(store, inventory, month, unit, fmt, interval_days=interval_days,
                          now=now, gap_min_s=gap_min_s)
    return data


def _preload_probes() -> None:
    import importlib

    for name in ("probes.host", "probes.recording", "probes.picture"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def _open_store(url: str, clock: Clock | None = None, writer: str | None = None) -> StoreLike:
    from camwatch.store import Store

    store: StoreLike = Store.open(url, now=(clock or default_clock()).now, writer=writer)
    return store

