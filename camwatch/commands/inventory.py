"""`camwatch inventory validate|export`: check the inventory, or export the registry."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import click

from inventory.errors import InventoryError
from inventory.loader import EXAMPLE, load_inventory
from inventory.models import Inventory

WHAT_TO_WRITE = f"""
The inventory is one or more YAML files (or folders of *.yaml files) naming the campus,
the custodian units (業管單位) with their manager and office head, the buildings and
machine rooms (機房), the recorders (監視主機, NVR/DVR) and the cameras. Start from
{EXAMPLE}: every key is shown there, with comments. Passwords are written as
${{ENV_VAR}} or secret:KEY, never in clear.
"""


def _fail(exc: InventoryError) -> NoReturn:
    for line in exc.lines():
        click.echo(line, err=True)
    n = len(exc.problems)
    files = len({p.file for p in exc.problems})
    click.echo(
        f"{n} problem{'s' if n != 1 else ''} in {files} file{'s' if files != 1 else ''}; "
        f"the inventory was not used. Each line says FILE:LINE: field: problem (fix). "
        f"See {EXAMPLE} for a complete example.",
        err=True,
    )
    raise SystemExit(1)


def load_or_exit(paths: Sequence[Path]) -> Inventory:
    """Load the inventory, or print every problem to stderr and exit 1."""
    try:
        return load_inventory(list(paths))
    except InventoryError as exc:
        _fail(exc)


def summary(inv: Inventory) -> list[str]:
    cams = Counter(c.kind.value for c in inv.cameras.values())
    recs = Counter(r.kind.value for r in inv.recorders.values())
    lines = [
        f"inventory OK: {inv.campus.name} ({inv.campus.id})",
        f"  units (業管單位): {len(inv.units)}",
        "  recorders (監視主機): "
        + f"{len(inv.recorders)} ({recs.get('nvr', 0)} NVR, {recs.get('dvr', 0)} DVR)",
        "  cameras (攝影機): "
        + f"{len(inv.cameras)} ({cams.get('ip', 0)} ip 網路攝影機, "
        + f"{cams.get('analog', 0)} analog 類比攝影機)",
    ]
    for unit in inv.units.values():
        recorders = [r for r in inv.recorders.values() if r.unit == unit.id]
        n_cams = sum(len(inv.cameras_of(r.id)) for r in recorders)
        lines.append(f"    {unit.name}: {len(recorders)} recorders, {n_cams} cameras")
    return lines


@click.group(name="inventory", help="Validate or export the inventory.\n" + WHAT_TO_WRITE)
def group() -> None:
    pass


paths_argument = click.argument(
    "paths", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=True),
    metavar="PATH...",
)


@group.command(
    "validate",
    help="Check inventory files and list every problem at once.\n\n"
    "Prints a short summary and exits 0 when the inventory is usable; otherwise prints one "
    "line per problem (FILE:LINE: field: problem (fix)) to stderr and exits 1. Several "
    "files are checked together, so ids must be unique and references resolve across "
    "them.\n" + WHAT_TO_WRITE + """
\b
Examples:
  camwatch inventory validate inventory/example-campus.yaml
  camwatch inventory validate inventory/            # every *.yaml in the folder
  camwatch inventory validate campus.yaml 圖書館.yaml 機械科.yaml
""",
)
@paths_argument
def validate(paths: tuple[Path, ...]) -> None:
    inv = load_or_exit(paths)
    for line in summary(inv):
        click.echo(line)


@group.command(
    "export",
    help="Export the installation registry 學務處(學安室) keeps (附件三 5(一)).\n\n"
    "One row per camera with the unit (業管單位), its manager's title, name and phone, "
    "purpose, period, area watched, kind (網路攝影機/類比攝影機), lens position, recorder, "
    "machine room (機房) and property number (財產編號). XLSX adds a recorder sheet and a "
    "per-unit summary; CSV is UTF-8 with BOM so Excel shows the Chinese right.\n"
    + WHAT_TO_WRITE + """
\b
Examples:
  camwatch inventory export inventory/example-campus.yaml -o 監視系統清冊.xlsx
  camwatch inventory export inventory/ --format csv -o registry.csv
""",
)
@paths_argument
@click.option(
    "--format", "fmt", type=click.Choice(["xlsx", "csv"]), default=None,
    help="Output format (default: from the -o file's extension, else xlsx).",
)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
    help="File to write, e.g. 監視系統清冊.xlsx",
)
def export(paths: tuple[Path, ...], fmt: str | None, output: Path) -> None:
    from reports.registry import export_registry

    inv = load_or_exit(paths)
    chosen = fmt or ("csv" if output.suffix.lower() == ".csv" else "xlsx")
    try:
        rows = export_registry(inv, output, "csv" if chosen == "csv" else "xlsx")
    except OSError as exc:
        click.echo(f"{output}: cannot write ({exc.strerror or type(exc).__name__}); "
                   "check the folder exists and is writable", err=True)
        raise SystemExit(1) from None
    click.echo(f"wrote {output} ({chosen}): {rows} cameras, {len(inv.recorders)} recorders, "
               f"{len(inv.units)} units")
