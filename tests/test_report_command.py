"""`camwatch report`: writes the sheet, and every bad argument gets one clear message."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import openpyxl
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from camwatch.cli import main
from camwatch.store import Store
from reports.sheet import ReportError, parse_month
from tests.test_report_helpers import fill, inventory, inventory_data


@pytest.fixture(scope="module")
def campus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("campus")
    inv_file = root / "campus.yaml"
    inv_file.write_text(yaml.safe_dump(inventory_data(), allow_unicode=True), encoding="utf-8")
    url = f"sqlite:///{root}/log.db"
    with Store.open(url) as store:
        fill(store, inventory())
    return {"inventory": str(inv_file), "url": url, "root": str(root)}


def report(campus: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        ["report", "--inventory", campus["inventory"], "--store-url", campus["url"], *args],
        catch_exceptions=True,
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_writes_pdf_and_xlsx(campus: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "sub" / "xuean.pdf"
    code, text = report(campus, "--month", "2026-10", "--unit", "xuean", "-o", str(out))
    assert code == 0, text
    assert out.read_bytes().startswith(b"%PDF")
    assert "document id CW-xuean-202610-" in text and "6 rows, 5 否" in text
    xlsx = tmp_path / "x.xlsx"
    code, text = report(campus, "--month", "2026-10", "--unit", "xuean", "-o", str(xlsx))
    assert code == 0, text
    wb = openpyxl.load_workbook(io.BytesIO(xlsx.read_bytes()))
    assert wb["保養紀錄簿"]["A1"].value.endswith("監視錄影系統保養紀錄簿")
    # --format wins over the suffix; the same data gives the same document id
    both = tmp_path / "same.pdf"
    code, again = report(
        campus, "--month", "2026-10", "--unit", "xuean", "--format", "xlsx", "-o", str(both)
    )
    assert code == 0 and both.read_bytes()[:2] == b"PK"
    assert again.splitlines()[-1] == text.splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--month", "2026-10", "--unit", "nope"],
            "unknown unit 'nope'; known units: xuean (學務處(學安室)), library (圖書館)",
        ),
        (["--month", "2026-1", "--unit", "xuean"], "is not of the form YYYY-MM"),
        (["--month", "November", "--unit", "xuean"], "is not of the form YYYY-MM"),
        (["--month", "2026-00", "--unit", "xuean"], "the month must be 01 to 12"),
        (["--month", "２０２６-１０", "--unit", "xuean"], "is not of the form YYYY-MM"),
        (["--month", "2999-01", "--unit", "xuean"], "is in the future"),
        (
            ["--month", "2026-09", "--unit", "xuean"],
            "no inspections recorded for unit xuean (學務處(學安室)) in 2026-09 — "
            "run `camwatch run`",
        ),
    ],
)
def test_bad_arguments_exit_1_with_one_message(
    campus: dict[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "never.pdf"
    code, text = report(campus, *args, "-o", str(out))
    assert code == 1
    assert message in text
    assert "Traceback" not in text
    assert not out.exists()


def test_missing_log_and_inventory(campus: dict[str, str], tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "report",
            "--month",
            "2026-10",
            "--unit",
            "xuean",
            "--inventory",
            campus["inventory"],
            "--store-url",
            f"sqlite:///{tmp_path}/none.db",
        ],
    )
    assert result.exit_code == 1 and "no inspection log at" in result.output
    assert not (tmp_path / "none.db").exists()  # a report never creates an empty log
    result = CliRunner().invoke(
        main,
        [
            "report",
            "--month",
            "2026-10",
            "--unit",
            "xuean",
            "--inventory",
            str(tmp_path / "missing.yaml"),
            "--store-url",
            campus["url"],
        ],
    )
    assert result.exit_code == 1 and "missing.yaml" in result.output
    assert "file not found" in result.output


def test_usage_errors_exit_2(campus: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["report", "--unit", "xuean"])
    assert result.exit_code == 2 and "--month" in result.output
    code, text = report(campus, "--month", "2026-10", "--unit", "xuean", "--format", "docx")
    assert code == 2 and "docx" in text


MONTHS = st.one_of(
    st.text(max_size=12),
    st.from_regex(r"\A-?\d{1,5}-\d{1,3}\Z"),
    st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(0, 9999), st.integers(0, 99)),
    st.sampled_from(["2026-10", "2026-11", " 2026-10 ", "2026-10\n", "２０２６-１０", "0000-01"]),
)
UNITS = st.one_of(st.text(max_size=20), st.sampled_from(["xuean", "library", "XUEAN", ""]))


@settings(
    max_examples=40, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(month=MONTHS, unit=UNITS)
def test_any_arguments_give_a_sheet_or_a_clear_error(
    campus: dict[str, str], tmp_path: Path, month: str, unit: str
) -> None:
    out = tmp_path / "h.xlsx"
    result = CliRunner().invoke(
        main,
        [
            "report",
            "--inventory",
            campus["inventory"],
            "--store-url",
            campus["url"],
            "--month",
            month,
            "--unit",
            unit,
            "-o",
            str(out),
        ],
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1, 2)
    if result.exit_code == 0:
        assert unit in ("xuean", "library") and out.read_bytes()[:2] == b"PK"
    else:
        assert result.output.strip()


@given(st.text(max_size=16))
def test_parse_month_never_raises_anything_else(text: str) -> None:
    now = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    try:
        year, month = parse_month(text, now)
    except ReportError as exc:
        assert str(exc)
    else:
        assert year >= 1912 and 1 <= month <= 12 and (year, month) <= (2026, 11)
