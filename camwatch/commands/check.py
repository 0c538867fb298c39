"""`camwatch check`: probe once and print the three 附件四 answers per device.

Each camera's picture is looked at twice, a couple of seconds apart: what one look shows
(covered, black, white-out, the recorder's no-signal screen, a lens plainly out of
focus) is answered from the first, a frozen picture from the second."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from camwatch.clock import default_clock
from camwatch.logs import native_output_silenced
from camwatch.scheduler import probe_once
from camwatch.service import (
    MEMORY_KEY,
    StartupError,
    load_inventory_or_fail,
    load_key,
    load_memory,
    load_settings_or_fail,
    memory_from_json,
    probe_context,
    runner_for,
    settings_warnings,
    subject_for,
    with_secrets_beside,
)
from camwatch.settings import Settings
from camwatch.tui import check_table, device_answers, lookup_in
from inventory.models import Inventory
from probes.api import DeviceMemory, planned_checks, prepare
from probes.result import CheckKind, CheckResult, Status


def plan_for(inventory: Inventory, devices: Sequence[str]) -> list[tuple[CheckKind, str]]:
    """The checks needed to answer for `devices` (all when empty): a recorder's picture
    answer needs its cameras' picture checks; a camera's recording answer (and an analog
    camera's host answer) needs its recorder's checks."""
    plan = planned_checks(inventory)
    if not devices:
        return plan
    needed: set[str] = set()
    for dev in devices:
        needed.add(dev)
        if dev in inventory.recorders:
            needed.update(c.id for c in inventory.cameras_of(dev))
        else:
            needed.add(inventory.cameras[dev].recorder)
    return [(c, d) for c, d in plan if d in needed]


def saved_memory(settings: Settings) -> DeviceMemory | None:
    """What the running service has learned (picture baselines, last uptime and firmware),
    read from its log when there is one, so that a one-off check judges a picture against
    the camera's own baseline. Read only: a check never changes the service's memory."""
    url = settings.store_url
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            return None
    try:
        from camwatch.store import Store

        with Store.open(url, migrate=False) as store:
            memory = load_memory(store, MEMORY_KEY)
            if memory is None:  # instances with --shard keep one memory per shard
                memory = DeviceMemory()
                for part in store.load_states(f"{MEMORY_KEY}@").values():
                    memory.merge(memory_from_json(part))
            return memory
    except Exception:
        return None  # no log yet, or not reachable: judge without memory


async def run_check(inventory: Inventory, plan: Sequence[tuple[CheckKind, str]],
                    settings_path: Path | None, progress: bool,
                    inventory_paths: Sequence[Path] = ()) -> list[CheckResult]:
    settings = with_secrets_beside(load_settings_or_fail(settings_path), inventory_paths)
    clock = default_clock()
    ctx = probe_context(settings, inventory, await asyncio.to_thread(saved_memory, settings),
                        clock)
    run_probe = runner_for(ctx)
    await prepare(inventory)  # the drivers' set-up (ONVIF WSDLs), before any deadline
    console = Console(stderr=True)
    bar = Progress(TextColumn("檢查中 probing"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=console, transient=True)
    pictures = [(c, d) for c, d in plan if c == CheckKind.PICTURE]
    task = bar.add_task("probe", total=len(plan) + len(pictures))
    started = time.monotonic()
    shown = False

    def done(check: CheckKind, device: str, results: list[CheckResult]) -> None:
        nonlocal shown
        bar.advance(task)
        # a progress bar only when it takes a while, and only on a terminal
        if progress and not shown and time.monotonic() - started > 1.0 and console.is_terminal:
            bar.start()
            shown = True

    async def once(items: Sequence[tuple[CheckKind, str]]) -> list[CheckResult]:
        return await probe_once(
            items, run_probe, recorder_of=lambda d: load_key(inventory, d),
            concurrency=settings.concurrency, per_recorder=settings.per_recorder_concurrency,
            probe_timeout=settings.timeout, retries=settings.retries, on_done=done,
            subject_of=subject_for(inventory), now=clock.now,
        )

    try:
        results = await once(plan)
        if not pictures:
            return results
        # A frozen picture shows from its second sample: look at each camera again once
        # the cameras' snapshot caches (about a second) have surely moved on.
        from probes.baseline import FROZEN_MIN_GAP_S  # here: it imports OpenCV

        await asyncio.sleep(FROZEN_MIN_GAP_S + 0.2)
        return second_look(results, await once(pictures))
    finally:
        if shown:
            bar.stop()
        if ctx.http_pool is not None:
            await ctx.http_pool.aclose()


def second_look(first: list[CheckResult], again: list[CheckResult]) -> list[CheckResult]:
    """The first pass with each camera's picture answer replaced by its second look,
    unless the second could not be had (unknown) where the first was."""
    by_device = {r.device: r for r in again if r.check == CheckKind.PICTURE}
    out: list[CheckResult] = []
    for r in first:
        later = by_device.get(r.device) if r.check == CheckKind.PICTURE else None
        if later is not None and not (
            later.status == Status.UNKNOWN and r.status != Status.UNKNOWN
        ):
            out.append(later)
        else:
            out.append(r)
    return out


@click.command("check")
@click.option("--inventory", "inventory_paths", multiple=True, required=True,
              type=click.Path(path_type=Path), help="Inventory YAML file or folder (repeatable).")
@click.option("--settings", "settings_path", type=click.Path(path_type=Path), default=None,
              help="Settings YAML (CAMWATCH_* environment variables override it).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.argument("devices", nargs=-1)
def command(inventory_paths: tuple[Path, ...], settings_path: Path | None, as_json: bool,
            devices: tuple[str, ...]) -> None:
    """Probe devices once and print the three answers of 附件四 per device.

    DEVICE... are recorder or camera ids from the inventory (all devices when none).
    Exit status 1 when any check failed (否).

    Credentials: ${ENV_VAR} references come from the environment, secret:KEY ones from
    CAMWATCH_SECRETS_FILE or, when that is unset, from INVENTORY.secrets.yaml beside the
    inventory file (what `camwatch simulate --write-inventory` writes).
    """
    try:
        inventory = load_inventory_or_fail(list(inventory_paths))
    except StartupError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    for warning in settings_warnings(inventory):
        click.echo(f"camwatch check: warning: {warning}", err=True)
    unknown = [d for d in devices if d not in inventory.recorders and d not in inventory.cameras]
    if unknown:
        click.echo(f"unknown device(s): {', '.join(unknown)} (not in the inventory; "
                   "`camwatch inventory validate` lists them)", err=True)
        sys.exit(2)
    plan = plan_for(inventory, devices)
    try:
        # Under --json, native libraries' noise (FFmpeg, libjpeg) must not reach the
        # output: stdout is the JSON, stderr camwatch's own errors.
        with native_output_silenced(as_json):
            results = asyncio.run(run_check(inventory, plan, settings_path, progress=not as_json,
                                            inventory_paths=inventory_paths))
    except StartupError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    answers = device_answers(inventory, lookup_in(results), list(devices) or None)
    if as_json:
        click.echo(json.dumps([a.to_json() for a in answers], ensure_ascii=False, indent=2,
                              default=str))
    else:
        Console().print(check_table(answers))
    failed = any(ans is not None and ans.status == Status.FAIL
                 for a in answers for ans in a.checks.values())
    sys.exit(1 if failed else 0)
