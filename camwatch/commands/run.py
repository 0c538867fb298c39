"""`camwatch run`: the long-running service."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

from camwatch.heap import limit_arenas
from camwatch.logs import event, setup_logging
from camwatch.service import (
    Service,
    StartupError,
    load_inventory_or_fail,
    load_settings_or_fail,
    settings_warnings,
    with_secrets_beside,
)
from camwatch.shards import ShardError, parse_shard

log = logging.getLogger("camwatch.run")


@click.command("run")
@click.option("--inventory", "inventory_paths", multiple=True, required=True,
              type=click.Path(path_type=Path), help="Inventory YAML file or folder (repeatable).")
@click.option("--settings", "settings_path", type=click.Path(path_type=Path), default=None,
              help="Settings YAML (CAMWATCH_* environment variables override it).")
@click.option("--shard", default=None, metavar="K/N",
              help="Probe only shard K of N (1-based; a recorder and its cameras stay together).")
@click.option("--workers", type=click.IntRange(1, 256), default=None,
              help="Probe processes on this machine, each over a stable part of the inventory "
                   "(default: the machine's cores, at most one per 1,000 devices; 1 probes "
                   "in this process). One /metrics, landing page, alert engine and log for "
                   "all of them.")
def command(inventory_paths: tuple[Path, ...], settings_path: Path | None,
            shard: str | None, workers: int | None) -> None:
    """Run the service: probes on a schedule, /metrics, repair alerts, the inspection log.

    Stops cleanly on Ctrl-C or SIGTERM (the log is flushed and state kept for the next start).
    On SIGHUP (or POST /admin/reload) it reads the inventory and settings again: a valid
    new inventory takes effect at once, keeping the state of devices that did not change;
    an invalid one is refused, said on the landing page and in
    camwatch_inventory_last_reload_success, and the running one stays.
    secret:KEY credentials come from CAMWATCH_SECRETS_FILE or, when that is unset, from
    INVENTORY.secrets.yaml beside the inventory file.
    """
    limit_arenas()  # before any thread starts (camwatch.heap)
    try:
        settings = load_settings_or_fail(settings_path)
        setup_logging(settings.log_level, settings.log_format, settings.log_file)
        shard_kn = parse_shard(shard) if shard else None
        inventory = load_inventory_or_fail(list(inventory_paths))
        for warning in settings_warnings(inventory):
            event(log, "setting ignored", logging.WARNING, problem=warning)
        settings = with_secrets_beside(settings, inventory_paths)
        from camwatch.workers import default_workers

        service = Service(settings, inventory, shard=shard_kn,
                          workers=workers or default_workers(
                              len(inventory.recorders) + len(inventory.cameras)),
                          inventory_paths=list(inventory_paths), settings_path=settings_path)
        asyncio.run(service.run_until_signalled())
    except (StartupError, ShardError) as exc:
        click.echo(f"camwatch run: {exc}", err=True)
        sys.exit(1)
