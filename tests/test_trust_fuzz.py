"""Trust (issue 8): hostile input, property-based. Any input gives a value or the
module's own error — never another exception (a traceback in the service, a probe lost).

D's tests/test_drivers_parsers.py feeds arbitrary bytes to a dozen XML parsers; random
bytes seldom get past the XML parser, so here the bodies are *structured*: well-formed
XML trees built from the very element names the parsers look for, with hostile text
(huge numbers, bad dates like 00:61:16Z, negative sizes, unicode), Dahua key=value
pages, SNMP (oid, value) pairs on the vendor tables' columns, JPEG headers, and the
settings (environment + YAML file).

Guards: every parser's own int/float/date conversion being total (DeviceError,
FrameError or SettingsError, else a value); camwatch.settings.load_settings wrapping
every failure in SettingsError.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import inspect
import os
import re
import struct
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from camwatch.settings import Settings, SettingsError, load_settings
from probes.drivers import dahua, isapi, onvif
from probes.drivers import snmp as snmp_driver
from probes.drivers.http import DeviceError
from probes.scoring import FrameError, image_info, jpeg_info, score_bytes
from probes.vendors_snmp import PROFILES

FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TZ = dt.timezone(dt.timedelta(hours=8))


# --- vocabularies taken from the parsers themselves -----------------------------------

def _names(*modules: object) -> list[str]:
    found: set[str] = set()
    for mod in modules:
        src = inspect.getsource(mod)  # type: ignore[arg-type]
        found.update(re.findall(r'"([A-Za-z][A-Za-z0-9_]{1,40})"', src))
    return sorted(found)


TAGS = _names(isapi, onvif)
DAHUA_KEYS = _names(dahua)

# Text a device might put in an element: numbers of every size and sign, times (valid,
# 00:61:16Z, garbage), sizes, booleans, unicode.
HOSTILE_TEXT = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from([
        "00:61:16Z", "2026-13-45T25:61:61Z", "2026-11-25T09:00:00Z", "2026-11-25T09:00:00+08:00",
        "2026-11-25 09:00:00", "9999-99-99", "0000-00-00T00:00:00Z", "-1", "1e999", "NaN",
        "inf", "9" * 400, "1" * 5000, "true", "false", "error", "ok", "", " ", "0x1F",
        "5.46 TB", "-3 GB", "18446744073709551616", "１２３", "١٢٣", "\u202e", "ch1", "%s%n",
    ]),
    st.text(max_size=40),
)


@st.composite
def xml_tree(draw: st.DrawFn, depth: int = 0) -> str:
    tag = draw(st.sampled_from(TAGS))
    ns = draw(st.sampled_from(["", "tt:", "tds:", "trt:", "tse:", "trc:", "env:"]))
    attrs = ""
    if draw(st.booleans()):
        attrs = f' token="{escape(draw(HOSTILE_TEXT), {chr(34): "&quot;"})}"'
    if depth >= 4 or draw(st.integers(0, 3)) == 0:
        inner = escape(draw(HOSTILE_TEXT))
    else:
        inner = "".join(draw(st.lists(xml_tree(depth + 1), max_size=4)))
    return f"<{ns}{tag}{attrs}>{inner}</{ns}{tag}>"


NAMESPACES = (
    'xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:tt="http://www.onvif.org/ver10/schema" '
    'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" '
    'xmlns:trt="http://www.onvif.org/ver10/media/wsdl" '
    'xmlns:tse="http://www.onvif.org/ver10/search/wsdl" '
    'xmlns:trc="http://www.onvif.org/ver10/recording/wsdl" '
    'xmlns="http://www.hikvision.com/ver20/XMLSchema"'
)


@st.composite
def device_xml(draw: st.DrawFn) -> bytes:
    """A SOAP envelope or a bare ISAPI document, well-formed, parser vocabulary."""
    body = "".join(draw(st.lists(xml_tree(), min_size=1, max_size=4)))
    if draw(st.booleans()):
        doc = f"<env:Envelope {NAMESPACES}><env:Body>{body}</env:Body></env:Envelope>"
    else:
        root = draw(st.sampled_from(TAGS))
        doc = f"<{root} {NAMESPACES}>{body}</{root}>"
    return doc.encode()


def _call(fn: Callable[..., Any], body: bytes) -> None:
    params = list(inspect.signature(fn).parameters.values())
    args: list[Any] = [body]
    for p in params[1:]:
        if p.default is not inspect.Parameter.empty:
            break
        if p.name == "tz":
            args.append(TZ)
        elif p.name == "channels":
            args.append([1, 2, 3, 4])
        else:
            raise AssertionError(f"{fn.__qualname__}: fuzz test does not know {p.name!r}")
    fn(*args)


def _parsers(*modules: object) -> Iterator[Callable[..., Any]]:
    for mod in modules:
        for name, fn in inspect.getmembers(mod, inspect.isfunction):
            if name.startswith("parse_") and fn.__module__ == mod.__name__:  # type: ignore[attr-defined]
                first = next(iter(inspect.signature(fn).parameters.values()), None)
                if first is not None and first.annotation in ("bytes", bytes):
                    yield fn


XML_PARSERS = list(_parsers(isapi, onvif))
KV_PARSERS = list(_parsers(dahua))


def test_every_parser_is_fuzzed() -> None:
    """A new parse_* function taking a device's reply is picked up here by itself."""
    names = {f.__name__ for f in XML_PARSERS + KV_PARSERS}
    assert {"parse_device_info", "parse_time", "parse_tracks", "parse_search"} <= names
    assert {"parse_system_date_and_time", "parse_media_uri", "parse_recording_jobs"} <= names
    assert {"parse_storage", "parse_current_time", "parse_find_next", "parse_video_loss"} <= names
    assert len(TAGS) > 40 and len(DAHUA_KEYS) > 10


@FUZZ
@given(device_xml())
def test_xml_parsers_give_a_value_or_device_error(body: bytes) -> None:
    for parse in XML_PARSERS:
        with contextlib.suppress(DeviceError):
            _call(parse, body)


@FUZZ
@given(st.binary(max_size=300))
def test_xml_parsers_on_raw_bytes(body: bytes) -> None:
    for parse in XML_PARSERS + KV_PARSERS:
        with contextlib.suppress(DeviceError):
            _call(parse, body)


@st.composite
def dahua_page(draw: st.DrawFn) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        key = draw(st.sampled_from(DAHUA_KEYS))
        if draw(st.booleans()):
            key = f"list.info[{draw(st.integers(-2, 300))}].{key}"
        if draw(st.booleans()):
            key = f"{key}[{draw(st.integers(-1, 10**6))}]"
        lines.append(f"{key}={draw(HOSTILE_TEXT)}")
    sep = draw(st.sampled_from(["\r\n", "\n"]))
    return sep.join(lines).encode("utf-8", "surrogatepass")


@FUZZ
@given(dahua_page())
def test_dahua_parsers_give_a_value_or_device_error(body: bytes) -> None:
    for parse in KV_PARSERS:
        with contextlib.suppress(DeviceError):
            _call(parse, body)


@FUZZ
@given(st.one_of(HOSTILE_TEXT, st.none()))
def test_dahua_time_is_total(value: str | None) -> None:
    result = dahua.parse_dahua_time(value, TZ)
    assert result is None or result.tzinfo is not None


# --- SNMP --------------------------------------------------------------------------------

SNMP_VALUE = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), HOSTILE_TEXT)
COLUMNS = sorted({t.column(n) for p in PROFILES.values() for t in p.disk_tables
                  for n in range(1, 16)} | {snmp_driver.HR_STORAGE_ENTRY.strip(".") + f".{n}"
                                            for n in range(1, 8)})


@st.composite
def snmp_pairs(draw: st.DrawFn) -> list[tuple[str, int | str]]:
    pairs = []
    for _ in range(draw(st.integers(0, 25))):
        col = draw(st.sampled_from(COLUMNS))
        index = draw(st.sampled_from(["1", "2", "1.0", "0", "4294967296", "x"]))
        pairs.append((f"{col}.{index}", draw(SNMP_VALUE)))
    return pairs


@FUZZ
@given(snmp_pairs(), st.sampled_from(sorted(PROFILES)))
def test_snmp_readings_from_any_agent_reply(pairs: list[tuple[str, int | str]],
                                            vendor: str) -> None:
    """A hostile agent's values (huge numbers, '9'*400, '1e999') never crash the
    reading: SnmpReading with whatever could be understood."""
    reading = snmp_driver.read_recorder_from_pairs(pairs, vendor)
    snmp_driver.parse_storage(pairs)
    for table in PROFILES[vendor].disk_tables:
        snmp_driver.parse_disks(table, pairs)
    # and the storage made of it, as the recording check judges it
    from probes.storage import judge_disks

    judge_disks(snmp_driver.snmp_disks(reading, vendor), 95.0, None, {})


@FUZZ
@given(st.dictionaries(st.sampled_from([snmp_driver.SYS_DESCR, snmp_driver.SYS_NAME,
                                        snmp_driver.SYS_UPTIME, snmp_driver.HR_SYSTEM_UPTIME,
                                        snmp_driver.SYS_OBJECT_ID]), SNMP_VALUE))
def test_snmp_system_group_from_any_reply(values: dict[str, int | str]) -> None:
    snmp_driver.parse_system(values)


IDENTITY_OIDS = sorted({o for p in PROFILES.values() for o in p.identity.oids()}
                       | set(snmp_driver.SYSTEM_OIDS))


@FUZZ
@given(st.dictionaries(st.sampled_from(IDENTITY_OIDS), SNMP_VALUE),
       st.sampled_from(sorted(PROFILES)))
def test_snmp_identity_from_any_reply(values: dict[str, int | str], vendor: str) -> None:
    """Who a device says it is, from any values at the vendor's identity OIDs."""
    reading = snmp_driver.host_reading(values, vendor)
    assert reading.ok == bool(values)


@FUZZ
@given(SNMP_VALUE)
def test_snmp_numbers_are_total(value: int | str) -> None:
    for fn in (snmp_driver.to_int, snmp_driver.parse_size):
        result = fn(value)
        assert result is None or isinstance(result, int)


# --- JPEG headers --------------------------------------------------------------------------

@st.composite
def jpeg_like(draw: st.DrawFn) -> bytes:
    """SOI, a few segments with hostile lengths and dimensions, maybe SOS and EOI."""
    out = b"\xff\xd8"
    for _ in range(draw(st.integers(0, 4))):
        marker = draw(st.sampled_from([0xC0, 0xC2, 0xC4, 0xDB, 0xE0, 0xFE, 0xDA, 0xD0, 0x01]))
        length = draw(st.integers(0, 0xFFFF))
        width, height = draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF))
        payload = struct.pack(">BHHB", 8, height, width, draw(st.integers(0, 255)))
        out += bytes([0xFF, marker]) + struct.pack(">H", length) + payload
        out += draw(st.binary(max_size=20))
    if draw(st.booleans()):
        out += b"\xff\xd9"
    return out


@settings(max_examples=60, deadline=None)
@given(st.one_of(jpeg_like(), st.binary(max_size=64)))
def test_jpeg_header_check_and_scoring_are_total(data: bytes) -> None:
    for fn in (jpeg_info, image_info):
        with contextlib.suppress(FrameError):
            fn(data)
    with contextlib.suppress(FrameError):
        score_bytes(data, max_pixels=1920 * 1080)


# --- settings ------------------------------------------------------------------------------

FIELDS = sorted(Settings.model_fields)
ENV_TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"],
                                          exclude_characters="\x00"), max_size=30)
YAML_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), ENV_TEXT),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ENV_TEXT, inner, max_size=3),
    max_leaves=6,
)


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("CAMWATCH_")}
    for k in saved:
        del os.environ[k]
    os.environ.update(values)
    try:
        yield
    finally:
        for k in [k for k in os.environ if k.startswith("CAMWATCH_")]:
            del os.environ[k]
        os.environ.update(saved)


@settings(max_examples=40, deadline=None)
@given(
    env=st.dictionaries(st.sampled_from(FIELDS).map(lambda f: "CAMWATCH_" + f.upper())
                        | st.just("CAMWATCH_NO_SUCH_SETTING"), ENV_TEXT, max_size=5),
    doc=st.one_of(
        st.dictionaries(st.sampled_from(FIELDS) | ENV_TEXT, YAML_VALUE, max_size=5),
        YAML_VALUE,
    ),
    raw=st.one_of(st.none(), st.binary(max_size=60), ENV_TEXT),
)
def test_settings_are_settings_or_settings_error(env: dict[str, str], doc: object,
                                                 raw: bytes | str | None) -> None:
    import yaml

    with tempfile.TemporaryDirectory() as tmp, environment(env):
        path = Path(tmp) / "settings.yaml"
        if raw is None:
            path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        elif isinstance(raw, bytes):
            path.write_bytes(raw)
        else:
            path.write_text(raw, encoding="utf-8")
        for p in (path, None):
            try:
                s = load_settings(p)
            except SettingsError as exc:
                assert str(exc).strip()
                assert "Traceback" not in str(exc)
            else:
                assert isinstance(s, Settings)
                # what the service derives from them must not blow up either
                assert s.listen_host and 0 <= s.listen_port <= 65535
