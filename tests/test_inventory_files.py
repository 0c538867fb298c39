"""Inventories split over several files, and files that are broken as a whole."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inventory import loader
from inventory.errors import InventoryError
from inventory.loader import load_inventory
from inventory.models import Inventory
from tests.test_inventory_loader import BASE, line_of, problems, write

SHARED = BASE.split("cameras:\n")[0]  # campus, units, sites, recorders
CAMERAS = "cameras:\n" + BASE.split("cameras:\n")[1]


def test_cross_file_references_resolve(tmp_path: Path) -> None:
    a = write(tmp_path, SHARED, "a-campus.yaml")
    b = write(tmp_path, CAMERAS, "b-cameras.yaml")
    inv = load_inventory([a, b])
    assert set(inv.cameras) == {"cam-1", "cam-2"}
    assert inv.unit_of("cam-2").name == "學務處(學安室)"


def test_a_folder_reads_every_yaml_file_in_it(tmp_path: Path) -> None:
    write(tmp_path, SHARED, "a-campus.yaml")
    write(tmp_path, CAMERAS, "b-cameras.yml")
    inv = load_inventory([tmp_path])
    assert len(inv.cameras) == 2


def test_duplicate_across_files_names_both_files(tmp_path: Path) -> None:
    a = write(tmp_path, SHARED, "a.yaml")
    extra = (
        "recorders:\n"
        "  - id: nvr-1\n"
        "    name: 重複主機\n"
        "    unit: xuean\n"
        "    machine_room: mr-1\n"
        "    protocols: [onvif]\n"
        "    address: {host: 127.20.2.1}\n"
        "    credentials: {username: admin, password: \"${NVR_PASSWORD}\"}\n"
        "    channels: 4\n"
    )
    b = write(tmp_path, extra + CAMERAS, "b.yaml")
    found = problems(a, b)
    dup = [p for p in found if "used twice" in p.problem]
    assert len(dup) == 1
    p = dup[0]
    assert (p.file, p.line, p.field) == (str(b), 2, "recorders[nvr-1].id")
    assert p.hint is not None and f"also at {a}:{line_of(SHARED, '- id: nvr-1')}" in p.hint


def test_cross_file_reference_to_missing_recorder(tmp_path: Path) -> None:
    a = write(tmp_path, SHARED, "a.yaml")
    text = CAMERAS.replace("recorder: nvr-1\n    channel: 2", "recorder: nvr-9\n    channel: 2")
    b = write(tmp_path, text, "b.yaml")
    found = problems(a, b)
    assert [p.render() for p in found] == [
        f"{b}:{line_of(text, 'nvr-9')}: cameras[cam-2].recorder: recorder 'nvr-9' is not "
        "defined in any inventory file (did you mean 'nvr-1'?)"
    ]


def test_campus_must_be_written_exactly_once(tmp_path: Path) -> None:
    a = write(tmp_path, SHARED, "a.yaml")
    b = write(tmp_path, "campus: {id: other, name: 另一校}\n" + CAMERAS, "b.yaml")
    p = next(p for p in problems(a, b) if p.field == "campus")
    assert (p.file, p.line) == (str(b), 1)
    assert "more than one file" in p.problem and p.hint == f"keep only the one at {a}:1"

    c = write(tmp_path, SHARED.split("units:\n")[1].join(["units:\n", ""]), "c.yaml")
    d = write(tmp_path, CAMERAS, "d.yaml")
    p = next(p for p in problems(c, d) if p.field == "campus")
    assert (p.file, p.line, p.problem) == (str(c), 1, "no campus: block in any file")


def test_missing_file_is_reported_with_the_others(tmp_path: Path) -> None:
    a = write(tmp_path, BASE.replace("channel: 2", "channel: 7"))
    found = problems(a, tmp_path / "nope.yaml")
    assert [p.file for p in found] == [str(a), str(tmp_path / "nope.yaml")]
    assert found[1].render() == f"{tmp_path / 'nope.yaml'}: file not found " \
        "(check the path; folders of *.yaml files work too)"


# ------------------------------------------------------------------ broken as a whole

@pytest.mark.parametrize(("content", "line", "problem"), [
    (b"", 1, "the file is empty"),
    (b"# only a comment\n", 1, "the file is empty"),
    (b"- a\n- b\n", 1, "the file must be a mapping"),
    (b"just text\n", 1, "the file must be a mapping"),
    ("campus:\n  name: 南港高工\n  id: \xff\n".encode().replace(b"\xc3\xbf", b"\xff"), 3,
     "the file is not UTF-8 text"),
    ("campus: {id: a, name: 南港}\n".encode("big5"), 1, "the file is not UTF-8 text"),
    (b"campus: {id: a, name: b}\n---\nunits: []\n", 2, "expected a single document"),
    (b"campus: !!python/object/apply:os.system [echo hi]\n", 1, "unsupported YAML tag"),
    (b"a: &a [*a, *a]\n", 1, "alias"),
    (b"a: 1\nb: \x00\n", 2, "control character (#x0000)"),
])
def test_whole_file_problems(tmp_path: Path, content: bytes, line: int, problem: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(content)
    found = problems(path)
    assert len(found) == 1, [p.render() for p in found]
    assert found[0].line == line
    assert problem in found[0].problem
    assert found[0].hint


def test_billion_laughs_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 9)}]")
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n")
    (p,) = problems(path)
    assert "anchors and aliases" in p.problem


@pytest.mark.parametrize("depth", [60, 1200, 20000])
def test_deep_nesting_is_refused(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * depth + "]" * depth + "\n")
    (p,) = problems(path)
    assert "nested too deeply" in p.problem


def test_huge_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 1024 * 1024)
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * (1024 * 1024) + b"\n")
    (p,) = problems(path)
    assert "larger than 1 MiB" in p.problem


# ------------------------------------------------------------------ never another exception

def _load_text(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)
    try:
        result = load_inventory([path])
    except InventoryError as exc:
        assert exc.problems
        for p in exc.problems:
            assert p.render()
    else:
        assert isinstance(result, Inventory)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_any_text_gives_an_inventory_or_an_inventory_error(tmp_path: Path, text: str) -> None:
    _load_text(tmp_path, text.encode("utf-8", "surrogatepass"))


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_any_bytes_give_an_inventory_or_an_inventory_error(tmp_path: Path, data: bytes) -> None:
    _load_text(tmp_path, data)


scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
nested = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                  max_size=4),
    max_leaves=20,
)
SECTIONS = ["campus", "policy", "units", "sites", "recorders", "cameras", "extra"]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(SECTIONS), nested, max_size=6))
def test_any_nested_data_gives_an_inventory_or_an_inventory_error(
    tmp_path: Path, data: dict[str, object],
) -> None:
    _load_text(tmp_path, yaml.safe_dump(data, allow_unicode=True).encode("utf-8"))


BASE_DATA = yaml.safe_load(BASE)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.data())
def test_base_with_one_value_replaced_never_raises_otherwise(
    tmp_path: Path, data: st.DataObject,
) -> None:
    import copy

    doc = copy.deepcopy(BASE_DATA)
    # walk down to a random place and put arbitrary data there
    cur = doc
    for _ in range(data.draw(st.integers(1, 4))):
        if isinstance(cur, dict) and cur:
            key = data.draw(st.sampled_from(sorted(cur)))
        elif isinstance(cur, list) and cur:
            key = data.draw(st.integers(0, len(cur) - 1))
        else:
            break
        if not isinstance(cur[key], (dict, list)) or data.draw(st.booleans()):
            cur[key] = data.draw(nested)
            break
        cur = cur[key]
    _load_text(tmp_path, yaml.safe_dump(doc, allow_unicode=True).encode("utf-8"))


def test_pure_python_parser_gives_the_same_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without libyaml (or with an old one) the pure-Python composer is used."""
    monkeypatch.setattr(loader, "_LIBYAML_LIMITS_DEPTH", False)
    inv = load_inventory([write(tmp_path, BASE)])
    assert set(inv.cameras) == {"cam-1", "cam-2"}
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 1200 + "]" * 1200 + "\n")
    (p,) = problems(deep)
    assert "nested too deeply" in p.problem
    text = BASE.replace("    channel: 2", "    channel: [2")
    (p,) = problems(write(tmp_path, text, "syntax.yaml"))
    assert p.problem.startswith("YAML syntax error") and p.line is not None
    nul = tmp_path / "nul.yaml"
    nul.write_bytes(b"a: 1\nb: \x00\n")
    (p,) = problems(nul)
    assert (p.line, "control character" in p.problem) == (2, True)
