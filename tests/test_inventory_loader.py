"""Each kind of broken inventory yields one FILE:LINE: field: problem (hint) line."""

from __future__ import annotations

from pathlib import Path

import pytest

from inventory.errors import InventoryError, Problem
from inventory.loader import load_inventory
from inventory.models import CameraKind

BASE = """\
campus:
  id: demo
  name: 測試高工
units:
  - id: xuean
    name: 學務處(學安室)
    manager: {title: 主任教官, name: 林一, phone: "02-0000-0000"}
    head: {title: 學務主任, name: 陳二}
sites:
  buildings:
    - {id: teach, name: 教學大樓, floors: [1樓, 2樓]}
  machine_rooms:
    - {id: mr-1, name: 教學大樓1樓機房, building: teach, floor: 1樓}
recorders:
  - id: nvr-1
    name: 教學大樓1樓主機
    unit: xuean
    machine_room: mr-1
    protocols: [onvif]
    address: {host: 127.20.1.1}
    credentials: {username: admin, password: "${NVR_PASSWORD}"}
    channels: 4
cameras:
  - id: cam-1
    name: 走廊東側
    kind: ip
    recorder: nvr-1
    channel: 1
    location: {building: teach, floor: 1樓, area: 走廊東側}
    position: 教學大樓1樓走廊東側
  - id: cam-2
    name: 走廊西側
    kind: analog
    recorder: nvr-1
    channel: 2
    location: {building: teach, floor: 2樓, area: 走廊西側}
    position: 教學大樓2樓走廊西側
"""


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the nth line containing needle."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) >= nth, f"{needle!r} not in text"
    return hits[nth - 1]


def write(tmp_path: Path, text: str, name: str = "campus.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(*paths: Path) -> list[Problem]:
    with pytest.raises(InventoryError) as info:
        load_inventory(list(paths))
    return info.value.problems


def broken(tmp_path: Path, old: str, new: str) -> tuple[Path, str]:
    assert old in BASE, old
    text = BASE.replace(old, new, 1)
    return write(tmp_path, text), text


def find(found: list[Problem], field: str) -> Problem:
    hits = [p for p in found if p.field == field]
    assert hits, f"no problem for {field}; got: {[p.render() for p in found]}"
    return hits[0]


def test_base_inventory_loads(tmp_path: Path) -> None:
    inv = load_inventory([write(tmp_path, BASE)])
    assert inv.campus.id == "demo"
    assert set(inv.cameras) == {"cam-1", "cam-2"}
    assert inv.cameras["cam-2"].kind == CameraKind.ANALOG
    assert inv.recorders["nvr-1"].channels == 4
    assert inv.place_of("cam-1") == "教學大樓1樓走廊東側"
    assert inv.retention_for("nvr-1").min_days == 30


# (what, old text, new text, needle on the expected line, field, problem, hint)
CASES = [
    ("unknown key", "    position: 教學大樓1樓走廊東側", "    positon: 教學大樓1樓走廊東側",
     "positon:", "cameras[cam-1].positon", "unknown key 'positon'", "did you mean 'position'?"),
    ("missing field", "    kind: ip\n", "",
     "- id: cam-1", "cameras[cam-1].kind", "required field is missing", "add kind:"),
    ("missing recorder",
     "    recorder: nvr-1\n    channel: 2", "    recorder: nvr-2\n    channel: 2",
     "recorder: nvr-2", "cameras[cam-2].recorder", "recorder 'nvr-2' is not defined",
     "did you mean 'nvr-1'?"),
    ("channel beyond count", "    channel: 2", "    channel: 9",
     "channel: 9", "cameras[cam-2].channel", "channel 9 is beyond the 4 channels of recorder "
     "'nvr-1'", "use 1..4"),
    ("channel far beyond count", "    channel: 2", "    channel: 1000000",
     "channel: 1000000", "cameras[cam-2].channel", "channel 1000000 is beyond the 4 channels",
     "use 1..4"),
    ("channel used twice", "    channel: 2", "    channel: 1  # as cam-1",
     "# as cam-1", "cameras[cam-2].channel", "already used by camera 'cam-1'", "each channel"),
    ("unknown unit", "    unit: xuean", "    unit: xueann",
     "unit: xueann", "recorders[nvr-1].unit", "unit 'xueann' is not defined",
     "did you mean 'xuean'?"),
    ("unknown machine room", "    machine_room: mr-1", "    machine_room: room-9",
     "machine_room: room-9", "recorders[nvr-1].machine_room", "machine room 'room-9' is not",
     "known: mr-1"),
    ("unknown building", "{building: teach, floor: 2樓", "{building: lab, floor: 2樓",
     "building: lab", "cameras[cam-2].location.building", "building 'lab' is not defined",
     "known: teach"),
    ("floor not in building", "floor: 2樓, area: 走廊西側", "floor: 9樓, area: 走廊西側",
     "floor: 9樓", "cameras[cam-2].location.floor", "floor '9樓' is not one of the floors",
     "write one of: 1樓, 2樓"),
    ("host with scheme", "{host: 127.20.1.1}", "{host: http://127.20.1.1}",
     "host: http://", "recorders[nvr-1].address.host", "is not a host name or IP address",
     "write only the host"),
    ("port out of range", "{host: 127.20.1.1}", "{host: 127.20.1.1, http_port: 99999}",
     "http_port: 99999", "recorders[nvr-1].address.http_port", "less than or equal to 65535",
     "see inventory/example-campus.yaml"),
    ("bad id", "  - id: cam-1", "  - id: Cam 1",
     "- id: Cam 1", "cameras[Cam 1].id", "is not a valid id", "lowercase letters"),
    ("wrong kind", "    kind: ip", "    kind: digital",
     "kind: digital", "cameras[cam-1].kind", "'ip' or 'analog'", "see inventory/"),
    ("duplicate key", "    channel: 1\n", "    channel: 1\n    channel: 3\n",
     "channel: 3", None, "key 'channel' is written twice", "keep one"),
    ("yaml syntax", "    name: 走廊西側", "    name: 走廊: 西側",
     "name: 走廊: 西側", None, "YAML syntax error: mapping values are not allowed",
     "check indentation"),
    ("tab indent", "    position: 教學大樓2樓走廊西側", "\tposition: 教學大樓2樓走廊西側",
     "\tposition", None, "YAML syntax error", "indent with spaces, not tabs"),
]


@pytest.mark.parametrize(
    ("old", "new", "needle", "field", "problem", "hint"),
    [c[1:] for c in CASES], ids=[c[0] for c in CASES],
)
def test_each_broken_kind_names_file_line_field_and_hint(
    tmp_path: Path, old: str, new: str, needle: str, field: str | None, problem: str, hint: str,
) -> None:
    path, text = broken(tmp_path, old, new)
    found = problems(path)
    line = line_of(text, needle)
    matching = [p for p in found if problem in p.problem]
    assert matching, [p.render() for p in found]
    p = matching[0]
    assert (p.file, p.line, p.field) == (str(path), line, field), p.render()
    assert p.hint is not None and hint in p.hint
    prefix = f"{path}:{line}: " + (f"{field}: " if field else "")
    assert p.render().startswith(prefix)
    assert p.render().endswith(f"({p.hint})")


def test_unknown_key_without_a_close_match_lists_the_allowed_keys(tmp_path: Path) -> None:
    path, text = broken(tmp_path, "    kind: ip\n", "    kind: ip\n    zzzz: 1\n")
    p = find(problems(path), "cameras[cam-1].zzzz")
    assert p.line == line_of(text, "zzzz")
    assert p.hint is not None and p.hint.startswith("allowed here: ")
    assert "position" in p.hint and "recorder" in p.hint


def test_a_typo_in_a_section_name_is_caught(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("cameras:\n", "camera:\n"))
    p = find(problems(path), "camera")
    assert (p.line, p.hint) == (line_of(BASE, "cameras:"), "did you mean 'cameras'?")


def test_duplicate_camera_id_names_both_places(tmp_path: Path) -> None:
    path, text = broken(tmp_path, "  - id: cam-2", "  - id: cam-1")
    p = find(problems(path), "cameras[cam-1].id")
    assert p.line == line_of(text, "- id: cam-1", nth=2)
    assert p.problem == "device id 'cam-1' is used twice"
    assert p.hint is not None and f"also at {path}:{line_of(text, '- id: cam-1')}" in p.hint


def test_camera_and_recorder_share_one_id_space(tmp_path: Path) -> None:
    path, text = broken(tmp_path, "  - id: cam-2", "  - id: nvr-1")
    p = find(problems(path), "cameras[nvr-1].id")
    assert p.line == line_of(text, "- id: nvr-1", nth=2)
    assert "used twice" in p.problem


@pytest.mark.parametrize("secret", ["Tr0ub4dor&3", "hunter2hunter2", "12345678"])
def test_clear_password_is_named_but_never_echoed(tmp_path: Path, secret: str) -> None:
    path, text = broken(tmp_path, '"${NVR_PASSWORD}"', f'"{secret}"')
    found = problems(path)
    p = find(found, "recorders[nvr-1].credentials.password")
    assert p.line == line_of(text, secret)
    assert "password is written in clear" in p.problem
    assert p.hint is not None and "${ENV_VAR}" in p.hint and "secret:KEY" in p.hint
    everything = "\n".join(q.render() for q in found)
    assert secret not in everything


def test_clear_snmp_community_is_named_but_never_echoed(tmp_path: Path) -> None:
    text = BASE.replace(
        "    protocols: [onvif]\n",
        "    protocols: [onvif, snmp]\n    snmp: {version: \"2c\", community: s3cretcommunity}\n",
    )
    path = write(tmp_path, text)
    found = problems(path)
    p = find(found, "recorders[nvr-1].snmp.community")
    assert p.line == line_of(text, "s3cretcommunity")
    assert "SNMP community is written in clear" in p.problem
    assert "s3cretcommunity" not in "\n".join(q.render() for q in found)


def test_legal_hold_for_unknown_recorder(tmp_path: Path) -> None:
    text = BASE + (
        "policy:\n"
        "  legal_holds:\n"
        "    - recorder: nvr-7\n"
        "      reason: 警方調閱\n"
        "      until: 2027-01-31\n"
    )
    path = write(tmp_path, text)
    p = find(problems(path), "policy.legal_holds[#1].recorder")
    assert p.line == line_of(text, "recorder: nvr-7")
    assert p.problem.startswith("recorder 'nvr-7' is not defined")


def test_legal_hold_and_retention_override_are_read(tmp_path: Path) -> None:
    text = BASE.replace("    channels: 4\n", "    channels: 4\n    retention: {max_days: 90}\n") + (
        "policy:\n"
        "  retention: {min_days: 31, max_days: 400}\n"
        "  legal_holds:\n"
        "    - {recorder: nvr-1, reason: 警方調閱, until: 2027-01-31}\n"
    )
    inv = load_inventory([write(tmp_path, text)])
    assert inv.retention_for("nvr-1").max_days == 90
    assert inv.policy.retention.min_days == 31
    import datetime as dt

    hold = inv.legal_hold_for("nvr-1", dt.date(2026, 12, 1))
    assert hold is not None and hold.until == dt.date(2027, 1, 31)
    assert inv.legal_hold_for("nvr-1", dt.date(2027, 2, 1)) is None


def test_all_problems_are_collected_at_once(tmp_path: Path) -> None:
    text = (BASE.replace("    channel: 2", "    channel: 9")
            .replace("    unit: xuean", "    unit: nobody")
            .replace("    name: 走廊東側", "    nmae: 走廊東側"))
    found = problems(write(tmp_path, text))
    fields = {p.field for p in found}
    assert {"cameras[cam-2].channel", "recorders[nvr-1].unit", "cameras[cam-1].nmae",
            "cameras[cam-1].name"} <= fields
    lines = [p.line or 0 for p in found]
    assert lines == sorted(lines)


def test_numbers_and_yes_no_keep_their_text(tmp_path: Path) -> None:
    # YAML 1.1 would read NO as false and 1.10 as 1.1; custodians mean the text.
    text = (BASE.replace("name: 林一", "name: NO")
            .replace("[1樓, 2樓]", "[1, 2, 1.10]")
            .replace("floor: 1樓, area: 走廊東側", "floor: 1.10, area: 走廊東側")
            .replace("floor: 2樓, area", "floor: 2, area")
            .replace("floor: 1樓}", "floor: 1}"))
    inv = load_inventory([write(tmp_path, text)])
    assert inv.units["xuean"].manager.name == "NO"
    assert inv.cameras["cam-1"].location.floor == "1.10"
    assert inv.buildings["teach"].floors == ["1", "2", "1.10"]


def test_anchors_and_merge_keys_work(tmp_path: Path) -> None:
    text = BASE.replace(
        "    location: {building: teach, floor: 1樓, area: 走廊東側}",
        "    location: &east {building: teach, floor: 1樓, area: 走廊東側}",
    ).replace(
        "    location: {building: teach, floor: 2樓, area: 走廊西側}",
        "    location:\n      <<: *east\n      floor: 2樓",
    )
    inv = load_inventory([write(tmp_path, text)])
    loc = inv.cameras["cam-2"].location
    assert (loc.building, loc.floor, loc.area) == ("teach", "2樓", "走廊東側")


@pytest.mark.parametrize("protocols", ["[onvif]", "[isapi, rtsp]", "[dahua, snmp]"])
def test_a_device_api_without_credentials_is_refused_by_name(tmp_path: Path,
                                                              protocols: str) -> None:
    text = BASE.replace("    protocols: [onvif]", f"    protocols: {protocols}").replace(
        '    credentials: {username: admin, password: "${NVR_PASSWORD}"}\n', "")
    if "snmp" in protocols:
        text = text.replace("    channels: 4",
                            "    channels: 4\n    snmp: {community: \"${SNMP_COMMUNITY}\"}")
    found = problems(write(tmp_path, text))
    wanted = [p for p in found if "need credentials" in p.problem]
    assert wanted, [p.render() for p in found]
    api = protocols.strip("[]").split(",")[0].strip()
    # it names the listed API that logs in, not others, nor snmp's own community
    assert wanted[0].problem.startswith(f"{api} need credentials"), wanted[0].problem


def test_snmp_and_rtsp_alone_need_no_login(tmp_path: Path) -> None:
    text = BASE.replace("    protocols: [onvif]", "    protocols: [snmp, rtsp]").replace(
        '    credentials: {username: admin, password: "${NVR_PASSWORD}"}\n',
        "    snmp: {community: \"${SNMP_COMMUNITY}\"}\n")
    inv = load_inventory([write(tmp_path, text)])
    assert inv.recorders["nvr-1"].credentials is None


def test_a_large_inventory_read_in_a_child_is_the_same(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from inventory import load_apart, loader

    good = write(tmp_path, BASE)
    here = loader.load_here([good])
    monkeypatch.setattr(loader, "LOAD_APART_BYTES", 0)  # every file counts as large
    ran: list[object] = []
    real_run = load_apart.subprocess.run

    def counted(*a: object, **kw: object) -> object:
        ran.append(a)
        return real_run(*a, **kw)  # type: ignore[call-overload]

    monkeypatch.setattr(load_apart.subprocess, "run", counted)
    apart = load_inventory([good])
    assert ran, "the child was not used"
    assert apart.model_dump() == here.model_dump()
    assert apart.place_of("cam-1") == "教學大樓1樓走廊東側"
    # problems come back with their file, line and field
    bad, _ = broken(tmp_path, "    channel: 2", "    channel: 9")
    with pytest.raises(InventoryError) as in_child:
        load_inventory([bad])
    with pytest.raises(InventoryError) as in_here:
        loader.load_here([bad])
    assert [p.render() for p in in_child.value.problems] == [
        p.render() for p in in_here.value.problems]
    assert any(p.line and p.field == "cameras[cam-2].channel" for p in in_child.value.problems)


def test_without_a_child_a_large_inventory_is_read_here(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from inventory import load_apart, loader

    def no_child(*a: object, **kw: object) -> object:
        raise OSError("cannot start")

    monkeypatch.setattr(loader, "LOAD_APART_BYTES", 0)
    monkeypatch.setattr(load_apart.subprocess, "run", no_child)
    inv = load_inventory([write(tmp_path, BASE)])
    assert set(inv.cameras) == {"cam-1", "cam-2"}
