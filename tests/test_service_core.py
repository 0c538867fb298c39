"""The service wired end to end with an injected probe function (no devices): the HTTP
server answers, results reach /metrics and the SQL log, probe memory survives a restart,
shutdown flushes everything."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import httpx
import pytest

from camwatch import service as service_module
from camwatch.clock import ManualClock
from camwatch.service import MEMORY_KEY, Service, StartupError, load_memory
from camwatch.settings import Settings
from camwatch.store import Store
from inventory.models import Inventory
from probes.api import ProbeContext
from probes.result import CheckKind, CheckResult, Status, utcnow, values_from_json
from tests.waits import CAP_S


def settings_for(tmp_path: Path, **kw: object) -> Settings:
    base: dict[str, object] = {
        "listen": "127.0.0.1:0", "store_url": f"sqlite:///{tmp_path / 'log.db'}",
        "host_interval": 0.2, "recording_interval": 0.3, "picture_interval": 0.2,
        "timeout": 1.0, "alertmanager_url": None,
    }
    base.update(kw)
    return Settings(**base)  # type: ignore[arg-type]


async def fake_probe(check: CheckKind, device: str, ctx: ProbeContext) -> list[CheckResult]:
    facts = ctx.memory.fact(device)
    facts["runs"] = int(facts.get("runs", 0)) + 1
    failing = device == "cam-east" and check == CheckKind.PICTURE
    status = Status.FAIL if failing else Status.OK
    reason = "畫面模糊" if failing else "正常"
    values = values_from_json(check, {"sharpness": 12.5})
    return [CheckResult(device, check, status, reason, utcnow(), values)]


async def wait_until(cond, timeout: float = CAP_S) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_results_flow_to_metrics_and_log_and_memory_survives_restart(
    tmp_path: Path, small_inventory: Inventory
) -> None:
    settings = settings_for(tmp_path)
    svc = Service(settings, small_inventory, probe_fn=fake_probe)
    await svc.start()
    try:
        assert svc.url and svc.url.startswith("http://127.0.0.1:")
        await wait_until(lambda: svc.state.get("cam-east", CheckKind.PICTURE) is not None)
        # first runs are spread at random: nvr1 may not have been probed yet
        await wait_until(lambda: svc.state.get("nvr1", CheckKind.HOST) is not None)
        async with httpx.AsyncClient() as client:
            r = await client.get(f"{svc.url}/metrics")
            assert r.status_code == 200
            assert 'camwatch_check_ok{check="picture",device="cam-east"} 0.0' in r.text
            assert 'camwatch_scheduler_overdue_checks{check="host"}' in r.text
            assert 'camwatch_scheduler_oldest_overdue_seconds{check="picture"}' in r.text
            assert (await client.get(f"{svc.url}/ready")).status_code == 200
        assert svc.scheduler is not None and svc.scheduler.runs[CheckKind.HOST] > 0
    finally:
        await svc.stop()
    assert svc.state.scheduler.overdue_fn is None  # stopped: no longer behind
    with Store.open(settings.store_url) as store:
        trans = store.transitions(["cam-east"])
        assert any(t.status == Status.FAIL and t.check == CheckKind.PICTURE for t in trans)
        memory = load_memory(store, "probe_memory")
        assert memory is not None
    runs_before = int(memory.facts["nvr1"]["runs"])
    assert runs_before >= 1

    # a second start remembers what the probes learned
    svc2 = Service(settings, small_inventory, probe_fn=fake_probe)
    await svc2.start()
    try:
        assert svc2.ctx is not None
        assert int(svc2.ctx.memory.facts["nvr1"]["runs"]) >= runs_before
        await wait_until(lambda: int(svc2.ctx.memory.facts["nvr1"]["runs"]) > runs_before)  # type: ignore[union-attr]
    finally:
        await svc2.stop()


async def test_shard_probes_only_its_part(tmp_path: Path, small_inventory: Inventory) -> None:
    seen: set[str] = set()

    async def probe(check: CheckKind, device: str, ctx: ProbeContext) -> list[CheckResult]:
        seen.add(device)
        return [CheckResult(device, check, Status.OK, "正常", utcnow())]

    parts = []
    for k in (1, 2):
        svc = Service(settings_for(tmp_path / str(k)), small_inventory, shard=(k, 2),
                      probe_fn=probe)
        await svc.start()
        assert svc.scheduler is not None
        parts.append({d for _, d in svc.scheduler.plan})
        await svc.stop()
    assert parts[0].isdisjoint(parts[1])
    assert parts[0] | parts[1] == set(small_inventory.recorders) | set(small_inventory.cameras)


async def test_a_port_in_use_is_a_clear_startup_error(
    tmp_path: Path, small_inventory: Inventory
) -> None:
    first = Service(settings_for(tmp_path / "a"), small_inventory, probe_fn=fake_probe)
    await first.start()
    try:
        port = first.url.rsplit(":", 1)[1]  # type: ignore[union-attr]
        second = Service(settings_for(tmp_path / "b", listen=f"127.0.0.1:{port}"),
                         small_inventory, probe_fn=fake_probe)
        with pytest.raises(StartupError, match="CAMWATCH_LISTEN"):
            await second.start()
        await second.stop()
    finally:
        await first.stop()


async def test_alerts_survive_a_restart_and_a_removed_device_resolves(
    tmp_path: Path, small_inventory: Inventory
) -> None:
    from camwatch.service import default_alerting
    from probes.result import Finding, FindingCode

    async def probe(check: CheckKind, device: str, ctx: ProbeContext) -> list[CheckResult]:
        if device == "cam-east" and check == CheckKind.HOST:
            return [CheckResult(device, check, Status.FAIL, "攝影機無回應", utcnow(),
                                findings=(Finding(FindingCode.CAMERA_UNREACHABLE, "無回應"),))]
        return [CheckResult(device, check, Status.OK, "正常", utcnow())]

    settings = settings_for(tmp_path, host_interval=0.1, alert_debounce=2)
    svc = Service(settings, small_inventory, probe_fn=probe, alerting_factory=default_alerting)
    await svc.start()
    try:
        await wait_until(lambda: bool(svc.alerting and svc.alerting.firing()))
        first = svc.alerting.firing()[0]  # type: ignore[union-attr]
    finally:
        await svc.stop()
    assert first.alertname == "CameraUnreachable" and first.device == "cam-east"

    again = Service(settings, small_inventory, probe_fn=probe, alerting_factory=default_alerting)
    await again.start()
    try:
        assert again.alerting is not None
        kept = again.alerting.firing()
        assert [a.starts_at for a in kept] == [first.starts_at]  # the same alert, not a new one
    finally:
        await again.stop()

    data = small_inventory.model_dump()
    del data["cameras"]["cam-east"]
    smaller = Inventory.model_validate(data)
    third = Service(settings, smaller, probe_fn=probe, alerting_factory=default_alerting)
    await third.start()
    try:
        assert third.alerting is not None and third.alerting.firing() == []
    finally:
        await third.stop()
    with Store.open(settings.store_url) as store:
        history = store.alert_history(["cam-east"])
    assert len(history) == 1 and history[0].resolved_at is not None  # 報修 then 修復


TAIPEI = dt.timezone(dt.timedelta(hours=8))


async def test_the_day_ends_at_local_midnight_on_camwatchs_clock(
    tmp_path: Path, small_inventory: Inventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 23:59 Taipei on 30 November nothing daily is written; once camwatch's clock
    passes local midnight (whatever the host's clock says) the service writes that day's
    snapshot and, the 30th being the month's last inspection date, its inspection."""
    monkeypatch.setattr(service_module, "PERSIST_EVERY_S", 0.1)  # housekeeping looks often
    clock = ManualClock(dt.datetime(2026, 11, 30, 23, 59, tzinfo=TAIPEI))

    async def probe(check: CheckKind, device: str, ctx: ProbeContext) -> list[CheckResult]:
        return [CheckResult(device, check, Status.OK, "正常", ctx.now())]

    last_day = dt.date(2026, 11, 30)
    svc = Service(settings_for(tmp_path), small_inventory, probe_fn=probe, clock=clock)
    await svc.start()
    store = svc.store
    assert isinstance(store, Store)
    try:
        await wait_until(lambda: svc.state.get("nvr1", CheckKind.HOST) is not None)
        r = svc.state.get("nvr1", CheckKind.HOST)
        assert r is not None and r.at == clock.now()  # the probes run on the same clock
        # in the log (a worker thread writes batches), and housekeeping has looked at the
        # date (it persists the probe memory as it does)
        await wait_until(lambda: store.transitions(["nvr1"]) != [], timeout=CAP_S)
        await wait_until(lambda: load_memory(store, MEMORY_KEY) is not None)
        assert store.daily_snapshots(last_day, last_day) == []
        clock.set(dt.datetime(2026, 12, 1, 0, 0, 30, tzinfo=TAIPEI))
        await wait_until(lambda: store.daily_snapshots(last_day, last_day) != [], timeout=CAP_S)
    finally:
        await svc.stop()
    with Store.open(settings_for(tmp_path).store_url) as log:
        snaps = log.daily_snapshots(last_day, last_day)
        assert {(x.device, x.check) for x in snaps} >= {("nvr1", CheckKind.HOST)}
        assert all(x.worst == "ok" for x in snaps)
        inspected = log.inspections(last_day, last_day)
        assert {i.device for i in inspected} >= {"nvr1", "dvr2"}
        assert all(i.inspection_date == last_day for i in inspected)
