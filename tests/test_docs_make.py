"""scripts/make_docs.py's small parts (the whole run, a demo and chromium, is `make docs`,
not CI): its --help, cutting the last frame out of rich's live output, reading the
landing page's failing checks, and laying a terminal frame out on its cell grid."""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from rich.console import Console
from rich.live import Live
from rich.table import Table

from camwatch.settings import Settings
from camwatch.state import LatestState
from exporters.http import HttpContext, landing_body
from exporters.sample import sample_inventory, sample_results

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_docs.py"


@pytest.fixture(scope="module")
def make_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_docs_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_help_runs_without_side_effects(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True,
                         text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "--via" in out.stdout and "--out" in out.stdout
    assert list(tmp_path.iterdir()) == []


def test_last_frame_of_rich_live_output(make_docs: ModuleType) -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=60, force_terminal=True, color_system="truecolor")
    with Live(console=console, auto_refresh=False) as live:
        for n in (1, 2, 3):
            table = Table(title=f"frame {n}")
            table.add_column("單位")
            for i in range(n):
                table.add_row(f"row {n}.{i}")
            live.update(table, refresh=True)
    frame = make_docs.last_frame(buf.getvalue().encode()).decode()
    assert "frame 3" in frame and "row 3.2" in frame
    assert "frame 2" not in frame and "row 2.1" not in frame


def test_failing_checks_read_from_the_real_landing_page(make_docs: ModuleType) -> None:
    state = LatestState()
    state.update(sample_results())
    ctx = HttpContext(Settings(listen="127.0.0.1:0"), state, sample_inventory(), None, None,
                      lambda: dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC))
    seen = make_docs.failing_checks(landing_body(ctx))
    # sample: nvr1's disk 2 failed (recording), cam-east blurred (picture); hosts fine
    assert seen == {"錄影監材是否正常運轉", "視訊畫面是否清晰"}
    assert make_docs.failing_checks("<p>全部正常</p>") == set()


def test_frame_laid_out_on_the_cell_grid(make_docs: ModuleType) -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=40, force_terminal=True, color_system="truecolor")
    console.print("[bold red]否[/] 教學大樓 disk")
    page, lines = make_docs.frame_to_html(buf.getvalue().encode(), width=40)
    assert lines == 1
    assert '<span class="w">否</span>' in page and '<span class="w">樓</span>' in page
    assert "disk" in page and "\x1b" not in page
    assert "color: " in page  # colours kept
