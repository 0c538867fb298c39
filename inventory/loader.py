"""Load one or more inventory YAML files into a checked `Inventory`.

Everything that can be wrong is collected before anything is reported, so a custodian
fixes a whole file in one pass: YAML syntax, unknown keys (with "did you mean"), missing
fields, bad values, ids used twice (also across files), references to recorders, units,
buildings or machine rooms that do not exist, channels beyond a recorder's count or used
twice, and passwords written in clear. Each problem names FILE:LINE and the field.

YAML is read defensively: safe composition only (no Python tags), one document per file,
a size cap, a cap on how far aliases may expand (the "billion laughs"), and no type
guessing — every scalar stays the text the custodian wrote (so `NO`, `1.10` or
`2023-08` mean what they look like) and the models convert it where a number, a date or
a yes/no is expected.
"""

from __future__ import annotations

import contextlib
import difflib
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from inventory.errors import InventoryError, Problem
from inventory.load_apart import load_in_child
from inventory.models import (
    ID_PATTERN,
    CameraKind,
    Campus,
    Inventory,
    InventoryFile,
    Policy,
)

EXAMPLE = "inventory/example-campus.yaml"
MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_DEPTH = 40
# Aliases may repeat a block (a shared credentials block, say) but not blow a small file
# up into a huge one: the expanded document may have at most this many nodes beyond the
# ones written out.
MAX_ALIAS_EXPANSION = 100_000
SECRET_FIELDS = {"password": "password", "community": "SNMP community",
                 "auth_key": "SNMP auth key", "priv_key": "SNMP privacy key"}
_YAML = "tag:yaml.org,2002:"
_PLAIN_TAGS = {f"{_YAML}{t}" for t in ("str", "int", "float", "bool", "timestamp", "null")}

Path_ = tuple[str | int, ...]


class _YamlFault(Exception):
    def __init__(self, line: int | None, problem: str, hint: str | None = None) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem
        self.hint = hint


@dataclass
class _Doc:
    """One parsed file: its data, and the line each key or list item starts on."""

    name: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Sequence[str | int]) -> int:
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), 1)


# --------------------------------------------------------------------------- YAML


class _Builder:
    """Turns a composed node graph into plain dicts/lists/strings, recording lines."""

    def __init__(self) -> None:
        self.budget = MAX_ALIAS_EXPANSION
        self.lines: dict[Path_, int] = {}
        self._active: set[int] = set()
        self._seen: set[int] = set()

    def build(self, node: yaml.Node, path: Path_) -> Any:
        if id(node) in self._seen:  # reached again through an alias
            self.budget -= 1
        else:
            self._seen.add(id(node))
        if self.budget < 0:
            raise _YamlFault(
                node.start_mark.line + 1,
                "the file expands to too much data through anchors and aliases (&x / *x)",
                "write the blocks out instead of repeating aliases",
            )
        if len(path) > MAX_DEPTH:
            raise _YamlFault(node.start_mark.line + 1, "the file is nested too deeply",
                             f"see {EXAMPLE} for the expected shape")
        if id(node) in self._active:
            raise _YamlFault(node.start_mark.line + 1, "an alias refers to itself",
                             "remove the recursive *alias")
        tag = node.tag or ""
        if isinstance(node, yaml.ScalarNode):
            if tag not in _PLAIN_TAGS:
                raise _YamlFault(node.start_mark.line + 1, f"unsupported YAML tag {tag!r}",
                                 "write plain values without !tags")
            if tag == f"{_YAML}null":
                return None
            return str(node.value)
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if tag != f"{_YAML}seq":
                    raise _YamlFault(node.start_mark.line + 1,
                                     f"unsupported YAML tag {tag!r}", "remove the !tag")
                out: list[Any] = []
                for i, item in enumerate(node.value):
                    self.lines.setdefault((*path, i), item.start_mark.line + 1)
                    out.append(self.build(item, (*path, i)))
                return out
            if isinstance(node, yaml.MappingNode):
                if tag != f"{_YAML}map":
                    raise _YamlFault(node.start_mark.line + 1,
                                     f"unsupported YAML tag {tag!r}", "remove the !tag")
                return self._mapping(node, path)
            raise _YamlFault(node.start_mark.line + 1, "unsupported YAML node")
        finally:
            self._active.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        out: dict[str, Any] = {}
        seen: dict[str, int] = {}
        merged: list[yaml.MappingNode] = []
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == f"{_YAML}merge":
                sources = (value_node.value if isinstance(value_node, yaml.SequenceNode)
                           else [value_node])
                for src in sources:
                    if not isinstance(src, yaml.MappingNode):
                        raise _YamlFault(line, "'<<' must merge a mapping",
                                         "write <<: *anchor of a mapping")
                    merged.append(src)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise _YamlFault(line, "a key must be plain text", "write key: value")
            key = str(key_node.value)
            if key in seen:
                raise _YamlFault(line, f"key {key!r} is written twice in the same block "
                                       f"(first on line {seen[key]})",
                                 "keep one; YAML would silently use only the last")
            seen[key] = line
            self.lines[(*path, key)] = line
            out[key] = self.build(value_node, (*path, key))
        for src in merged:
            extra = self.build(src, path)
            for k, v in extra.items():
                out.setdefault(k, v)
        return out


def _yaml_fault(exc: yaml.YAMLError, text: str) -> _YamlFault:
    # Never use str(exc): it quotes the offending line, which may hold a password.
    if isinstance(exc, yaml.reader.ReaderError):
        return _YamlFault(text.count("\n", 0, exc.position) + 1,
                          f"the file contains a control character (#x{exc.character:04x}) "
                          "that YAML does not allow",
                          "remove it and save the file as plain UTF-8 text")
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        line: int | None = mark.line + 1
    elif isinstance(getattr(exc, "position", None), int):
        line = text.count("\n", 0, exc.position) + 1  # type: ignore[attr-defined]
    else:
        line = None
    problem = getattr(exc, "problem", None) or getattr(exc, "reason", None)
    context = getattr(exc, "context", None)
    what = "YAML syntax error"
    if problem:
        what += f": {problem}"
    if context:
        what += f", {context}"
    started = getattr(exc, "context_mark", None)
    if line is not None and started is not None and started.line + 1 != line:
        what += f" that started on line {started.line + 1}"
    hint = "check indentation, a missing ':' or an unclosed quote or bracket"
    text_problem = str(problem or "")
    if "nesting depth" in text_problem:
        return _YamlFault(line, "the file is nested too deeply",
                          f"see {EXAMPLE} for the expected shape")
    if "single document" in text_problem:
        hint = "one inventory file holds one document; put the other one in its own file"
    elif line is not None and "\t" in "".join(text.splitlines()[line - 2:line]):
        hint = "indent with spaces, not tabs"
    elif "alias" in text_problem:
        hint = "define the &anchor before using *alias, or write the value out"
    return _YamlFault(line, what, hint)


class _PlainResolver(yaml.resolver.BaseResolver):
    """Tags every plain scalar as text (or null): no YAML 1.1 guessing of numbers, dates
    or yes/no, and no regex work per scalar."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode:
            if implicit and implicit[0]:
                if value in _NULLS:
                    return f"{_YAML}null"
                if value == "<<":
                    return f"{_YAML}merge"
            return f"{_YAML}str"
        return f"{_YAML}seq" if kind is yaml.SequenceNode else f"{_YAML}map"


_NULLS = frozenset({"", "~", "null", "Null", "NULL"})


class _PyComposer(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser,
                  yaml.composer.Composer, _PlainResolver):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _PlainResolver.__init__(self)


_CParser: Any
try:
    from yaml._yaml import CParser as _CParser
except ImportError:  # PyYAML built without libyaml
    _CParser = None
_LIBYAML_LIMITS_DEPTH = False
if _CParser is not None:

    class _CComposer(_CParser, _PlainResolver):  # type: ignore[misc,valid-type]
        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            _PlainResolver.__init__(self)

    try:  # libyaml >= 0.2.5 refuses nesting deeper than 1000 levels by itself
        _LIBYAML_LIMITS_DEPTH = tuple(yaml._yaml.get_version()) >= (0, 2, 5)
    except Exception:  # pragma: no cover - very old bindings
        _LIBYAML_LIMITS_DEPTH = False


def _compose(text: str) -> yaml.Node | None:
    """Compose the single document of `text` into nodes (safe: no objects are built).

    libyaml is ~20x faster than the pure-Python parser, which matters for a district's
    inventory. Its composer recurses in C, so it is used only where libyaml limits the
    nesting depth itself; the pure-Python one turns deep nesting into RecursionError.
    """
    loader: Any = (_CComposer if _CParser is not None and _LIBYAML_LIMITS_DEPTH
                   else _PyComposer)(text)  # the reader refuses control characters
    try:
        node: yaml.Node | None = loader.get_single_node()
        return node
    finally:
        loader.dispose()


def parse_yaml(name: str, raw: bytes) -> _Doc:
    """Parse one file's bytes into plain data with line numbers; raises _YamlFault."""
    if len(raw) > MAX_FILE_BYTES:
        raise _YamlFault(None, f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB",
                         "split the inventory into one file per unit")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise _YamlFault(line, "the file is not UTF-8 text",
                         "save it as UTF-8 (Big5 or other encodings are not read)") from None
    try:
        node = _compose(text)
    except yaml.YAMLError as exc:
        raise _yaml_fault(exc, text) from None
    except RecursionError:
        raise _YamlFault(None, "the file is nested too deeply",
                         f"see {EXAMPLE} for the expected shape") from None
    if node is None:
        raise _YamlFault(1, "the file is empty", f"start from {EXAMPLE}")
    builder = _Builder()
    data = builder.build(node, ())
    if not isinstance(data, dict):
        raise _YamlFault(node.start_mark.line + 1,
                         "the file must be a mapping of sections, not a list or a value",
                         "write sections like campus:, units:, recorders:, cameras: "
                         f"as in {EXAMPLE}")
    builder.lines.setdefault((), node.start_mark.line + 1)
    return _Doc(name, data, builder.lines)


# --------------------------------------------------------------------------- schema


def _unwrap(tp: Any) -> Any:
    """The model class inside Optional[...] / list[...] / dict[..., ...], if any."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            inner = _unwrap(arg)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
        return None
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (list, tuple, set, frozenset):
        args = typing.get_args(tp)
        return _unwrap(args[0]) if args else None
    if origin is dict:
        return _unwrap(typing.get_args(tp)[1])
    return tp


def _model_at(root: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    model: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        info = model.model_fields.get(part)
        if info is None:
            return None
        model = _unwrap(info.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model
    return None


def _field_name(doc: _Doc, loc: Sequence[str | int]) -> str:
    """`cameras[lib-03].location.floor`: list items named by their id where they have one."""
    out = ""
    cur: Any = doc.data
    for part in loc:
        if isinstance(part, int):
            item = cur[part] if isinstance(cur, list) and 0 <= part < len(cur) else None
            ident = item.get("id") if isinstance(item, dict) else None
            out += f"[{ident}]" if isinstance(ident, str) and ident else f"[#{part + 1}]"
            cur = item
        else:
            out += f".{part}" if out else str(part)
            cur = cur.get(part) if isinstance(cur, dict) else None
    return out or "(file)"


def _split_hint(msg: str) -> tuple[str, str | None]:
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    m = re.fullmatch(r"(.*\S)\s*\(([^()]*)\)", msg, flags=re.S)
    if m:
        return m.group(1), m.group(2)
    return msg, None


def _schema_problem(doc: _Doc, err: ErrorDetails) -> Problem:
    loc = [p for p in err["loc"] if isinstance(p, (str, int))]
    line = doc.line_of(loc)
    name = _field_name(doc, loc)
    kind = err["type"]
    leaf = loc[-1] if loc else ""
    hint: str | None
    if kind == "extra_forbidden":
        parent = _model_at(InventoryFile, loc[:-1])
        allowed = sorted(parent.model_fields) if parent else []
        close = difflib.get_close_matches(str(leaf), allowed, n=1, cutoff=0.6)
        if close:
            hint = f"did you mean {close[0]!r}?"
        else:
            hint = "allowed here: " + ", ".join(allowed) if allowed else None
        return Problem(doc.name, line, name, f"unknown key {leaf!r}", hint)
    if kind == "missing":
        parent = _model_at(InventoryFile, loc[:-1])
        info = parent.model_fields.get(str(leaf)) if parent else None
        desc = info.description if info is not None else None
        hint = f"add {leaf}:" + (f" — {desc}" if desc else "") + f"; see {EXAMPLE}"
        return Problem(doc.name, line, name, "required field is missing", hint)
    if isinstance(leaf, str) and leaf in SECRET_FIELDS and kind == "value_error":
        what = SECRET_FIELDS[leaf]
        return Problem(
            doc.name, line, name,
            f"the {what} is written in clear; the inventory must only refer to it",
            "write ${ENV_VAR}, e.g. ${CAMWATCH_NVR_PASSWORD}, or secret:KEY, and keep the "
            "value in the environment or the secrets file",
        )
    if isinstance(leaf, str) and leaf in SECRET_FIELDS:
        return Problem(doc.name, line, name, "must be a reference to a secret",
                       "write ${ENV_VAR} or secret:KEY")
    problem, hint = _split_hint(str(err["msg"]))
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        problem, hint = "must be a block of keys (key: value)", f"see {EXAMPLE}"
    elif kind == "list_type":
        problem, hint = "must be a list (items starting with '- ')", f"see {EXAMPLE}"
    elif kind == "string_pattern_mismatch" and leaf in ("id", "recorder", "unit", "building",
                                                        "machine_room"):
        problem = "is not a valid id"
        hint = "use lowercase letters, digits, '-' and '_', starting with a letter or digit"
    elif kind == "date_from_datetime_parsing" or kind.startswith("date_"):
        hint = hint or "write a date as YYYY-MM-DD"
    if hint is None:
        hint = f"see {EXAMPLE}"
    return Problem(doc.name, line, name, problem, hint)


# --------------------------------------------------------------------------- loading


@dataclass
class _Item:
    """One list entry as written. Cross-checks read each field only where that field is
    itself well-formed, so an entry with one mistake is still checked for the others."""

    doc: _Doc
    path: Path_
    raw: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.doc.name}:{self.doc.line_of(self.path)}"

    def text(self, *keys: str) -> str | None:
        cur: Any = self.raw
        for k in keys:
            cur = cur.get(k) if isinstance(cur, dict) else None
        if isinstance(cur, str) and cur.strip():
            return cur.strip()
        return None

    def ref(self, *keys: str) -> str | None:
        value = self.text(*keys)
        return value if value is not None and re.fullmatch(ID_PATTERN, value) else None

    def number(self, key: str) -> int | None:
        value = self.text(key)
        try:
            n = int(value) if value is not None else None
        except ValueError:
            return None
        return n if n is not None and n >= 1 else None

    def problem(self, sub: Sequence[str | int], text: str, hint: str | None) -> Problem:
        path = (*self.path, *sub)
        return Problem(self.doc.name, self.doc.line_of(path),
                       _field_name(self.doc, path), text, hint)


def _items(docs: Sequence[_Doc], section: Path_) -> list[_Item]:
    out: list[_Item] = []
    for doc in docs:
        cur: Any = doc.data
        for part in section:
            cur = cur.get(part) if isinstance(cur, dict) else None
        if isinstance(cur, list):
            out.extend(_Item(doc, (*section, i), raw)
                       for i, raw in enumerate(cur) if isinstance(raw, dict))
    return out


def _expand(paths: Sequence[Path]) -> tuple[list[Path], list[Problem]]:
    files: list[Path] = []
    problems: list[Problem] = []
    seen: set[Path] = set()
    for p in paths:
        if p.is_dir():
            # *.secrets.yaml beside the inventory files hold credentials, not inventory
            found = sorted(f for f in [*p.glob("*.yaml"), *p.glob("*.yml")]
                           if not f.name.endswith((".secrets.yaml", ".secrets.yml")))
            if not found:
                problems.append(Problem(str(p), None, None, "no *.yaml files in this folder",
                                        f"see {EXAMPLE}"))
            candidates = found
        else:
            candidates = [p]
        for c in candidates:
            key = c.resolve()
            if key not in seen:
                seen.add(key)
                files.append(c)
    return files, problems


_SECTION_OF = {"unit": "units:", "building": "sites: buildings:",
               "machine room": "sites: machine_rooms:", "recorder": "recorders:"}


def _unknown(kind: str, value: str, known: set[str]) -> tuple[str, str]:
    close = difflib.get_close_matches(value, sorted(known), n=1, cutoff=0.6)
    if close:
        hint = f"did you mean {close[0]!r}?"
    elif known:
        shown = sorted(known)
        hint = "known: " + ", ".join(shown[:12]) + (" …" if len(shown) > 12 else "")
    else:
        hint = f"define it under {_SECTION_OF.get(kind, kind + 's:')}"
    return f"{kind} {value!r} is not defined in any inventory file", hint


def load_inventory(paths: Sequence[Path]) -> Inventory:
    """Read, validate and merge inventory files (or folders of *.yaml files).

    Raises InventoryError listing every problem found, across all files.

    A large inventory is read in a child process (inventory/load_apart.py) and only the
    result comes back: parsing 10,000 cameras builds nodes, plain data and line numbers
    of about 270 MB that, freed between the models kept, stay in this process's heap
    (240 MB of RSS left for 33 MB of inventory, in the parent and again in each
    --workers process).
    """
    if _total_bytes(paths) > LOAD_APART_BYTES:
        got = load_in_child([str(p) for p in paths])
        if got is not None:
            return got
    return load_here(paths)


# Above this many bytes of YAML (about 4,000 devices), the files are read in a child.
LOAD_APART_BYTES = 2 * 1024 * 1024


def _total_bytes(paths: Sequence[Path]) -> int:
    files, _ = _expand([Path(p) for p in paths])
    total = 0
    for f in files:
        with contextlib.suppress(OSError):  # reported by load_here
            total += f.stat().st_size
    return total


def load_here(paths: Sequence[Path]) -> Inventory:
    """load_inventory() in this process."""
    files, problems = _expand([Path(p) for p in paths])
    if not files and not problems:
        problems.append(Problem("(no files)", None, None, "no inventory file given",
                                f"pass a file such as {EXAMPLE}"))
    docs: list[_Doc] = []
    for f in files:
        name = str(f)
        try:
            with f.open("rb") as fh:  # bounded: a device file or FIFO must not hang us
                raw = fh.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            problems.append(Problem(name, None, None, "file not found",
                                    "check the path; folders of *.yaml files work too"))
            continue
        except OSError as exc:
            problems.append(Problem(name, None, None,
                                    f"cannot be read ({exc.strerror or type(exc).__name__})",
                                    "check the path and its permissions"))
            continue
        try:
            doc = parse_yaml(name, raw)
        except _YamlFault as fault:
            problems.append(Problem(name, fault.line, None, fault.problem, fault.hint))
            continue
        try:
            InventoryFile.model_validate(doc.data)
        except ValidationError as exc:
            problems.extend(_schema_problem(doc, e) for e in exc.errors(include_input=False))
        docs.append(doc)

    problems.extend(_cross_check(docs))
    merged: Inventory | None = None
    if not problems:
        try:
            merged = _merge(docs)
        except ValidationError as exc:  # not expected once every file passed on its own
            problems.extend(Problem("(merged inventory)", None, ".".join(map(str, e["loc"])),
                                    str(e["msg"])) for e in exc.errors(include_input=False))
    if merged is None or problems:
        order = {str(f): i for i, f in enumerate(files)}
        problems.sort(key=lambda p: (order.get(p.file, -1), p.line or 0))
        raise InventoryError(problems)
    return merged


def _first_ids(
    items: list[_Item], what: str, problems: list[Problem], seen: dict[str, _Item] | None = None,
) -> dict[str, _Item]:
    first: dict[str, _Item] = {} if seen is None else seen
    for it in items:
        ident = it.ref("id")
        if ident is None:
            continue
        if ident in first:
            problems.append(it.problem(["id"], f"{what} id {ident!r} is used twice",
                                       f"also at {first[ident].where}; ids must be unique "
                                       "across all inventory files"))
        else:
            first[ident] = it
    return first


def _check_ref(
    it: _Item, keys: tuple[str, ...], kind: str, known: dict[str, _Item], problems: list[Problem],
) -> str | None:
    value = it.ref(*keys)
    if value is None:
        return None
    if value not in known:
        text, hint = _unknown(kind, value, set(known))
        problems.append(it.problem(keys, text, hint))
        return None
    return value


def _cross_check(docs: list[_Doc]) -> list[Problem]:
    problems: list[Problem] = []
    units = _items(docs, ("units",))
    buildings = _items(docs, ("sites", "buildings"))
    rooms = _items(docs, ("sites", "machine_rooms"))
    recorders = _items(docs, ("recorders",))
    cameras = _items(docs, ("cameras",))
    holds = _items(docs, ("policy", "legal_holds"))

    unit_by_id = _first_ids(units, "unit", problems)
    building_by_id = _first_ids(buildings, "building", problems)
    room_by_id = _first_ids(rooms, "machine room", problems)
    devices: dict[str, _Item] = {}  # recorders and cameras share one id space
    _first_ids(recorders, "device", problems, devices)
    rec_by_id = dict(devices)
    _first_ids(cameras, "device", problems, devices)

    campus_at = [d for d in docs if d.data.get("campus") is not None]
    if docs and not campus_at:
        problems.append(Problem(docs[0].name, 1, "campus", "no campus: block in any file",
                                f"add campus: with id and name once; see {EXAMPLE}"))
    for section in ("campus", "policy"):
        at = [d for d in docs if d.data.get(section) is not None]
        for d in at[1:]:
            problems.append(Problem(d.name, d.line_of((section,)), section,
                                    f"{section}: is written in more than one file",
                                    f"keep only the one at {at[0].name}:"
                                    f"{at[0].line_of((section,))}"))

    for it in rooms:
        _check_ref(it, ("building",), "building", building_by_id, problems)
    for it in recorders:
        _check_ref(it, ("unit",), "unit", unit_by_id, problems)
        _check_ref(it, ("machine_room",), "machine room", room_by_id, problems)

    used: dict[tuple[str, int], _Item] = {}
    for it in cameras:
        rec_id = _check_ref(it, ("recorder",), "recorder", rec_by_id, problems)
        channel = it.number("channel")
        if rec_id is not None and channel is not None:
            rec = rec_by_id[rec_id]
            size = rec.number("channels")
            if size is not None and channel > size:
                problems.append(it.problem(
                    ["channel"],
                    f"channel {channel} is beyond the {size} channels of recorder {rec_id!r}",
                    f"use 1..{size}, or fix channels: at {rec.where}"))
            elif (rec_id, channel) in used:
                other = used[(rec_id, channel)]
                problems.append(it.problem(
                    ["channel"],
                    f"channel {channel} of recorder {rec_id!r} is already used by camera "
                    f"{other.ref('id') or '?'!r}",
                    f"see {other.where}; each channel records one camera"))
            else:
                used[(rec_id, channel)] = it
        bld = _check_ref(it, ("location", "building"), "building", building_by_id, problems)
        floor = it.text("location", "floor")
        if bld is not None and floor is not None:
            raw_floors = building_by_id[bld].raw.get("floors")
            floors = [f.strip() for f in raw_floors if isinstance(f, str)] if isinstance(
                raw_floors, list) else []
            if floors and floor not in floors:
                problems.append(it.problem(
                    ["location", "floor"],
                    f"floor {floor!r} is not one of the floors of building {bld!r}",
                    "write one of: " + ", ".join(floors)))
        ref_image = it.text("reference_image")
        if ref_image is not None:
            problem = _reference_image_problem(_beside(it.doc, ref_image))
            if problem is not None:
                problems.append(it.problem(["reference_image"], *problem))
        if it.text("kind") == CameraKind.ANALOG and it.raw.get("credentials") is not None:
            problems.append(it.problem(["credentials"],
                                       "an analog camera has no login of its own",
                                       "remove credentials; the recorder is probed instead"))
    for it in holds:
        _check_ref(it, ("recorder",), "recorder", rec_by_id, problems)
    return problems


def _beside(doc: _Doc, name: str) -> Path:
    """A path written in an inventory file, relative to that file's folder."""
    p = Path(name).expanduser()
    return p if p.is_absolute() else Path(doc.name).parent / p


def _reference_image_problem(path: Path) -> tuple[str, str] | None:
    """Why a camera's reference photo cannot be used, or None. Only its header is read."""
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except FileNotFoundError:
        return (f"reference image {str(path)!r} not found",
                "the path is relative to this inventory file; give a JPEG or PNG photo "
                "of the camera's view, or remove reference_image")
    except OSError as exc:
        return (f"reference image {str(path)!r} cannot be read "
                f"({exc.strerror or type(exc).__name__})", "check the path and permissions")
    if not (head.startswith(b"\xff\xd8") or head.startswith(b"\x89PNG\r\n\x1a\n")):
        return (f"reference image {str(path)!r} is not a JPEG or PNG file",
                "save the camera's snapshot as .jpg or .png")
    return None


def _with_reference_paths(doc: _Doc, part: InventoryFile) -> InventoryFile:
    """The file's cameras with their reference_image made absolute (the probes do not
    know where the inventory file was)."""
    if not any(c.reference_image for c in part.cameras):
        return part
    cams = [c.model_copy(update={"reference_image": str(_beside(doc, c.reference_image)
                                                       .resolve())})
            if c.reference_image else c for c in part.cameras]
    return part.model_copy(update={"cameras": cams})


def _merge(docs: list[_Doc]) -> Inventory | None:
    parts = [_with_reference_paths(d, InventoryFile.model_validate(d.data)) for d in docs]
    campus: Campus | None = next((p.campus for p in parts if p.campus), None)
    policy: Policy = next((p.policy for p in parts if p.policy), Policy())
    if campus is None:
        return None
    return Inventory(
        campus=campus,
        policy=policy,
        units={u.id: u for p in parts for u in p.units},
        buildings={b.id: b for p in parts if p.sites for b in p.sites.buildings},
        machine_rooms={m.id: m for p in parts if p.sites for m in p.sites.machine_rooms},
        recorders={r.id: r for p in parts for r in p.recorders},
        cameras={c.id: c for p in parts for c in p.cameras},
    )


def _child() -> int:
    """`python -m inventory.loader`: the child of inventory/load_apart.py. Paths as JSON
    on stdin; the pickled ("inventory", Inventory) or ("problems", [Problem]) on stdout."""
    import json
    import pickle
    import sys

    paths = [Path(p) for p in json.loads(sys.stdin.buffer.read())]
    answer: tuple[str, Any]
    try:
        answer = ("inventory", load_here(paths))
    except InventoryError as exc:
        answer = ("problems", exc.problems)
    sys.stdout.buffer.write(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(_child())
