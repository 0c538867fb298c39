"""The recorded spans a recording check keeps between its full searches (probes.facts
coalesce, extend_spans): the verdict from what it keeps is the verdict from the files."""

from __future__ import annotations

import datetime as dt

from probes.facts import GAP_MIN, coalesce, extend_spans, spans_to_recording

T0 = dt.datetime(2026, 12, 1, 0, 0, tzinfo=dt.UTC)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def files(*edges: tuple[float, float]) -> list[tuple[dt.datetime, dt.datetime]]:
    return [(at(a), at(b)) for a, b in edges]


def test_coalesce_closes_file_boundaries_and_keeps_gaps() -> None:
    spans = files((0, 60), (60.5, 120), (150, 210), (209, 240))  # a 30 min gap at 120
    assert coalesce(spans) == files((0, 120), (150, 240))
    full = spans_to_recording(1, True, spans, None, GAP_MIN)
    kept = spans_to_recording(1, True, coalesce(spans), None, GAP_MIN)
    assert (kept.newest, kept.oldest, kept.gaps) == (full.newest, full.oldest, full.gaps)


def test_extend_takes_the_device_word_from_since_on() -> None:
    window = at(0)
    known = files((0, 100))  # the last check saw footage up to minute 100
    since = at(85)  # searched from 15 minutes before it
    # the file being written then has grown; a new gap formed at 130–140
    found = files((60, 130), (140, 160))
    assert extend_spans(known, found, since, window) == files((0, 130), (140, 160))


def test_extend_sees_recording_that_stopped() -> None:
    known = files((0, 100))
    # nothing new: the file that was written ends where it ended
    assert extend_spans(known, files((60, 100)), at(85), at(0)) == files((0, 100))


def test_extend_drops_what_left_the_day() -> None:
    known = files((0, 10), (20, 100))
    window = at(15)  # a day later, minute 0–10 is older than 24 h
    assert extend_spans(known, files((60, 110)), at(85), window) == files((20, 110))


def test_extend_lets_the_device_overrule_what_was_known_after_since() -> None:
    # the last check knew footage up to 100; the device now has none after 90 (lost)
    assert extend_spans(files((0, 100)), files((80, 90)), at(85), at(0)) == files((0, 90))
