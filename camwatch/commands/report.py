"""`camwatch report`: write the monthly 附件四 maintenance sheet (保養紀錄簿) of a unit.

    camwatch report --month 2026-11 --unit xuean --inventory inventory/example-campus.yaml
    camwatch report --month 2026-11 --unit xuean --format xlsx -o 學務處-11月.xlsx ...

Exit codes: 0 written; 1 bad input (unknown unit, malformed or future month, nothing
recorded, broken inventory or settings) with one clear message; 2 usage.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click


def _fail(message: str) -> None:
    click.echo(f"camwatch report: {message}", err=True)
    raise SystemExit(1)


def _sqlite_file(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database).expanduser()


def _write(path: Path, data: bytes) -> None:
    """Write atomically: a reader never sees half a sheet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@click.command("report")
@click.option("--month", required=True, metavar="YYYY-MM", help="The month, e.g. 2026-11.")
@click.option(
    "--unit",
    "unit_id",
    required=True,
    metavar="UNIT",
    help="The custodian unit (業管單位) id from the inventory, e.g. xuean.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["pdf", "xlsx"]),
    default=None,
    help="pdf (to sign) or xlsx (to edit); default from -o's suffix, else pdf.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (default: ./camwatch-UNIT-YYYY-MM.pdf).",
)
@click.option(
    "--inventory",
    "inventory_paths",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="Inventory file or folder (repeat for several).",
)
@click.option(
    "--settings",
    "settings_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Settings YAML file (CAMWATCH_* variables override it).",
)
@click.option(
    "--store-url",
    default=None,
    metavar="URL",
    help="Inspection log (SQLAlchemy URL); default: the settings' store_url.",
)
def command(
    month: str,
    unit_id: str,
    fmt: str | None,
    output: Path | None,
    inventory_paths: tuple[Path, ...],
    settings_path: Path | None,
    store_url: str | None,
) -> None:
    """Write the monthly maintenance sheet (附件四 保養紀錄簿) of one unit.

    One row per inspection date (every inspection_interval_days, default 14) per
    recorder, with the three answers 是/否, the faulty lens positions and the repair
    requests, for the office head (帳管單位主管) to sign.
    """
    from camwatch.clock import default_clock
    from camwatch.settings import SettingsError, load_settings
    from reports.sheet import ReportError, check_unit, parse_month

    now = default_clock().now()
    try:
        parse_month(month, None)  # the form now; the month against the campus' today below
    except ReportError as exc:
        _fail(str(exc))

    try:
        settings = load_settings(settings_path)
    except SettingsError as exc:
        _fail(f"bad settings:\n{exc}")

    from inventory.errors import InventoryError
    from inventory.loader import load_inventory

    try:
        inventory = load_inventory(list(inventory_paths))
    except InventoryError as exc:
        _fail(exc.summary())
    from camwatch.service import settings_warnings

    for warning in settings_warnings(inventory):
        click.echo(f"camwatch report: warning: {warning}", err=True)
    try:
        check_unit(inventory, unit_id)
        parse_month(month, now, inventory.campus.timezone)
    except ReportError as exc:
        _fail(str(exc))

    if fmt is None:
        suffix = output.suffix.lower().lstrip(".") if output else ""
        fmt = suffix if suffix in ("pdf", "xlsx") else "pdf"

    url = store_url or settings.store_url
    db_file = _sqlite_file(url)
    if db_file is not None and not db_file.is_file():
        _fail(
            f"no inspection log at {db_file} — run `camwatch run` first "
            "(or pass --store-url / set CAMWATCH_STORE_URL)"
        )

    from camwatch.store import Store, StoreError
    from reports.fonts import FontNotFoundError
    from reports.sheet import build_sheet, render_pdf, render_xlsx

    try:
        store = Store.open(url)
    except StoreError as exc:
        _fail(str(exc))
    try:
        sheet = build_sheet(
            store,
            inventory,
            unit_id,
            month,
            interval_days=settings.inspection_interval_days,
            now=now,
            gap_min_s=settings.log_gap_min_s,
        )
        data = render_pdf(sheet) if fmt == "pdf" else render_xlsx(sheet)
    except ReportError as exc:
        _fail(str(exc))
    except FontNotFoundError as exc:
        _fail(str(exc))
    finally:
        store.close()
    if output is None:
        output = Path(f"camwatch-{unit_id}-{sheet.month}.{fmt}")
    try:
        _write(output, data)
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror or exc}")
    answers = sum(1 for r in sheet.rows for c in (r.host, r.recording, r.picture) if c is False)
    click.echo(
        f"wrote {output} ({sheet.title}, {sheet.unit_name} {sheet.roc_month}: "
        f"{len(sheet.rows)} rows, {answers} 否)"
    )
    click.echo(f"document id {sheet.document_id}, data SHA-256 {sheet.data_sha256}")
