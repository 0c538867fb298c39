"""The layout is the architecture (DESIGN.md): what may import what.

The imports are read from the source with `ast` — every `import`, also those inside a
function (a lazy import is still a dependency) — so a cycle or a forbidden edge fails
here before it confuses anyone. The checker itself is tested on small graphs first, so
that a green run means something.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules_of(package: str) -> dict[str, Path]:
    return {module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}


def imports_of(path: Path, known: Iterable[str]) -> set[str]:
    """The modules `path` imports (a `from pkg import name` counts as pkg.name when that
    is a module), whatever the package; relative imports resolved."""
    known = set(known)
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in known else base)
    return out


def import_graph(packages: Iterable[str]) -> dict[str, set[str]]:
    """module -> modules of the same packages it imports."""
    mods: dict[str, Path] = {}
    for pkg in packages:
        mods.update(modules_of(pkg))
    return {
        name: {m for m in imports_of(path, mods) if m in mods and m != name}
        for name, path in mods.items()
    }


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One import cycle (a -> b -> ... -> a), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


# ---- the checker, on graphs whose answer is known --------------------------------------


def test_cycle_finder_finds_a_cycle_and_only_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"x": {"y"}, "y": {"z"}, "z": {"y"}}) == ["y", "z", "y"]


def test_import_reader_sees_lazy_and_from_imports(tmp_path: Path) -> None:
    # The cycle the reports had: sheet imports its renderer lazily, the renderer
    # imports the sheet at the top.
    pkg = ROOT / "reports"
    sheet = (pkg / "sheet.py").read_text(encoding="utf-8")
    assert "reports.model" in imports_of(pkg / "sheet.py", modules_of("reports"))
    assert "from reports.sheet_pdf import" in sheet  # still lazy, still seen:
    assert "reports.sheet_pdf" in imports_of(pkg / "sheet.py", modules_of("reports"))
    graph = import_graph(["reports"])
    graph["reports.sheet_pdf"].add("reports.sheet")  # what sheet_pdf.py once did
    assert find_cycle(graph) is not None


# ---- the rules ------------------------------------------------------------------------


@pytest.mark.parametrize("package", ["probes", "reports", "camwatch", "exporters", "inventory"])
def test_no_import_cycle(package: str) -> None:
    cycle = find_cycle(import_graph([package]))
    assert cycle is None, " -> ".join(cycle or [])


def test_no_cycle_across_the_packages_either() -> None:
    cycle = find_cycle(import_graph(["probes", "reports", "exporters", "inventory"]))
    assert cycle is None, " -> ".join(cycle or [])


def test_probes_know_nothing_of_the_service_or_the_outputs() -> None:
    bad = {
        (mod, imp)
        for mod, path in modules_of("probes").items()
        for imp in imports_of(path, ())
        if imp.split(".")[0] in ("camwatch", "exporters", "reports", "simulator")
    }
    assert not bad, sorted(bad)


def test_exporters_never_talk_to_devices() -> None:
    bad = {
        (mod, imp)
        for mod, path in modules_of("exporters").items()
        for imp in imports_of(path, ())
        if imp.startswith("probes.drivers") or imp.split(".")[0] in ("simulator",)
    }
    assert not bad, sorted(bad)


def test_the_service_does_not_import_a_command() -> None:
    service = ROOT / "camwatch" / "service.py"
    imported = imports_of(service, modules_of("camwatch"))
    bad = {m for m in imported if m.startswith("camwatch.commands")}
    assert not bad, sorted(bad)


def test_no_private_attribute_of_a_library() -> None:
    """`x._name` on something that is not ours (self, cls, our own modules): a
    library's private attribute changes without notice (httpx's transport `_pool`,
    aiohttp's `site._server`, onvif's `_cached_document` were)."""
    ours = {"self", "cls", "super"}
    # Underscored by name, public by documentation: lxml's element type (what its own
    # docs and stubs annotate with), and PyYAML's libyaml binding module.
    public = {("etree", "_Element"), ("yaml", "_yaml")}
    found: list[str] = []
    for package in ("probes", "camwatch", "exporters", "reports", "inventory", "simulator"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not (
                    isinstance(node, ast.Attribute)
                    and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                ):
                    continue
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ours:
                    continue
                if isinstance(owner, ast.Name) and (owner.id, node.attr) in public:
                    continue
                if isinstance(owner, ast.Call | ast.Attribute | ast.Subscript):
                    # e.g. self._x._y or obj()._z: ours when the chain starts at self
                    root = owner
                    while isinstance(root, ast.Attribute | ast.Call | ast.Subscript):
                        root = root.func if isinstance(root, ast.Call) else root.value
                    if isinstance(root, ast.Name) and root.id in ours:
                        continue
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    assert not found, found
