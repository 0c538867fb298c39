"""The inspection log: what was checked, when, with which answer — durably.

SQLAlchemy Core over SQLite (the embedded default, WAL mode) or PostgreSQL (several
instances writing one log). The schema is managed by Alembic migrations in
`camwatch/migrations/`; `Store.open(url)` upgrades the database to the newest revision.

Tables
- `check_transitions`: check results as state transitions. A new row is written only when
  a device's status or its set of findings (code, subject) changes; otherwise the open
  row's `last_seen_at` moves forward and its `values` become the newest measured ones
  (retention days, uptime); `reason` and `findings` stay as they were when it began.
  `ended_at` is the start of the next row (NULL while the row is the device's current
  state). 10 000 devices cost a few hundred rows a day.
- `inspections`: the scheduled inspection (附件三 5(二), every `inspection_interval_days`)
  per device, with the three answers for the period it covers, derived from transitions.
- `daily_snapshots`: seconds ok / fail / unknown per device, check and local day.
- `alert_events`: repair alerts; `fired_at` = repair requested (報修), `resolved_at` =
  repaired.
- `kv_state`: small JSON documents the service keeps across restarts (probe memory,
  alert engine state).

Durability: SQLite runs with `journal_mode=WAL` and `synchronous=FULL`, so a transaction
that returned from commit survives `kill -9` and also a power cut. Every write method is
one transaction; `record_results` writes a whole batch in one.

The methods are synchronous (SQLAlchemy Core); async callers use the `a*` wrappers,
which run them in a worker thread. A Store is safe to share between threads.
"""

from __future__ import annotations

import abc
import asyncio
import calendar
import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import socket
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from camwatch.clock import default_clock
from camwatch.shards import ALL_SHARDS, parse_shard
from probes.result import CheckKind, CheckResult, Finding, FindingCode, Status, values_from_json
from probes.values import CheckValues, values_json

# ---------------------------------------------------------------------------- schema


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (text) and PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        value = _aware(value)
        if dialect.name == "sqlite":
            return value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

check_transitions = sa.Table(
    "check_transitions",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("device", sa.String(64), nullable=False),
    sa.Column("check_kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("values", sa.JSON, nullable=False),
    sa.Column("findings", sa.JSON, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Index("ix_transitions_device_check_started", "device", "check_kind", "started_at"),
    sa.Index("ix_transitions_started", "started_at"),
    sa.Index("ix_transitions_last_seen", "last_seen_at"),
)

inspections = sa.Table(
    "inspections",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("inspection_date", sa.Date, nullable=False),
    sa.Column("device", sa.String(64), nullable=False),
    sa.Column("period_start", UTCDateTime, nullable=False),
    sa.Column("period_end", UTCDateTime, nullable=False),
    sa.Column("host", sa.String(16), nullable=True),
    sa.Column("recording", sa.String(16), nullable=True),
    sa.Column("picture", sa.String(16), nullable=True),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("device", "inspection_date", name="uq_inspections_device_date"),
    sa.Index("ix_inspections_date", "inspection_date"),
)

daily_snapshots = sa.Table(
    "daily_snapshots",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("device", sa.String(64), primary_key=True),
    sa.Column("check_kind", sa.String(16), primary_key=True),
    sa.Column("ok_s", sa.Float, nullable=False),
    sa.Column("fail_s", sa.Float, nullable=False),
    sa.Column("unknown_s", sa.Float, nullable=False),
    sa.Column("worst", sa.String(16), nullable=True),
)

alert_events = sa.Table(
    "alert_events",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("alertname", sa.String(64), nullable=False),
    sa.Column("device", sa.String(64), nullable=False),
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("fired_at", UTCDateTime, nullable=False),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
    sa.Index("ix_alerts_device_fired", "device", "fired_at"),
    sa.Index("ix_alerts_open", "alertname", "device", "resolved_at"),
)

kv_state = sa.Table(
    "kv_state",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

log_sessions = sa.Table(
    "log_sessions",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("shard", sa.String(16), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("kept_until", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Index("ix_sessions_started", "started_at"),
)

log_gaps = sa.Table(
    "log_gaps",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("shard", sa.String(16), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("results_lost", sa.Integer, nullable=False),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    sa.Index("ix_gaps_started", "started_at"),
)

# ------------------------------------------------------------------------ read models


@dataclass(frozen=True, slots=True)
class LogSession:
    """One `camwatch run` writing the log: results up to `kept_until` are in it."""

    id: int
    shard: str  # "all" or "K/N"
    host: str
    pid: int
    started_at: dt.datetime
    kept_until: dt.datetime
    ended_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class LogGap:
    """A stretch in which results were produced but could not be kept."""

    shard: str
    started_at: dt.datetime
    ended_at: dt.datetime
    reason: str
    results_lost: int


@dataclass(frozen=True, slots=True)
class Transition:
    """One stretch of time in which a device's check kept the same answer."""

    id: int
    device: str
    check: CheckKind
    status: Status
    reason: str
    values: CheckValues | None  # the newest measured in this stretch
    findings: tuple[Finding, ...]
    started_at: dt.datetime
    last_seen_at: dt.datetime
    ended_at: dt.datetime | None  # start of the next transition; None while current

    @property
    def end(self) -> dt.datetime:
        """Until when this state is known to have lasted (the next change, or last seen)."""
        return self.ended_at or self.last_seen_at


@dataclass(frozen=True, slots=True)
class AlertRecord:
    alertname: str
    device: str
    labels: Mapping[str, str]
    fired_at: dt.datetime  # repair requested (報修)
    resolved_at: dt.datetime | None  # repaired


@dataclass(frozen=True, slots=True)
class InspectionRecord:
    inspection_date: dt.date
    device: str
    period_start: dt.datetime
    period_end: dt.datetime
    answers: Mapping[str, str | None]  # check -> ok | fail | unknown | None (no data)
    detail: Sequence[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class DailySnapshot:
    day: dt.date
    device: str
    check: CheckKind
    ok_s: float
    fail_s: float
    unknown_s: float
    worst: str | None


@dataclass
class StatusTime:
    """Seconds a device's check spent in each status within a window."""

    ok: float = 0.0
    fail: float = 0.0
    unknown: float = 0.0

    @property
    def observed(self) -> float:
        return self.ok + self.fail + self.unknown

    @property
    def worst(self) -> str | None:
        if self.fail > 0:
            return Status.FAIL.value
        if self.ok > 0:
            return Status.OK.value
        if self.unknown > 0:
            return Status.UNKNOWN.value
        return None

    def availability(self) -> float | None:
        """Share of judged time (ok + fail) that was ok; None when nothing was judged."""
        judged = self.ok + self.fail
        return None if judged <= 0 else self.ok / judged


class StoreError(Exception):
    """The log cannot be opened or written; the message names the URL (without password)."""


class StoreBusyError(StoreError):
    """Another camwatch already writes this log (or this shard of it)."""


# ------------------------------------------------------------------- pure functions


def inspection_periods(
    year: int, month: int, interval_days: int
) -> list[tuple[dt.date, dt.date, dt.date]]:
    """The inspection rule (附件三 5(二): every `interval_days`, default 14).

    A month is cut into consecutive periods of `interval_days` days starting on the 1st;
    the last period ends with the month and may be shorter. Each period is inspected on
    its last day, and that inspection answers for the whole period (a fault at any time
    in it answers 否). With 14 days: the 14th, the 28th and the month's last day (February
    of a common year: the 14th and the 28th). Every moment of a month is in exactly one
    period and no period crosses a month boundary, so monthly sheets never overlap.

    Returns (inspection date, first day, last day) per period.
    """
    if interval_days < 1:
        raise ValueError("interval_days must be at least 1")
    last = calendar.monthrange(year, month)[1]
    out: list[tuple[dt.date, dt.date, dt.date]] = []
    first = 1
    while first <= last:
        end = min(first + interval_days - 1, last)
        out.append(
            (dt.date(year, month, end), dt.date(year, month, first), dt.date(year, month, end))
        )
        first = end + 1
    return out


def status_times(
    transitions: Iterable[Transition], start: dt.datetime, end: dt.datetime
) -> dict[tuple[str, CheckKind], StatusTime]:
    """Seconds per status for each (device, check), clipped to [start, end)."""
    out: dict[tuple[str, CheckKind], StatusTime] = defaultdict(StatusTime)
    for t in transitions:
        a = max(t.started_at, start)
        b = min(t.end, end)
        seconds = (b - a).total_seconds()
        st = out[(t.device, t.check)]
        if seconds <= 0:
            # seen only once inside the window: count it as a moment, so it is not lost
            if start <= t.started_at < end:
                seconds = 1e-6
            else:
                continue
        if t.status == Status.OK:
            st.ok += seconds
        elif t.status == Status.FAIL:
            st.fail += seconds
        else:
            st.unknown += seconds
    return dict(out)


# ------------------------------------------------------------------------- helpers


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


MAX_TEXT = 2000  # a misbehaving device must not bloat the log: texts are cut to this


def _text(value: str, limit: int = MAX_TEXT) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


# camwatch's own state (probe memory, alert state) keeps packed figures as strings, and
# each camera's picture baselines as one JSON text (probes.context.JsonValues: ~3 kB
# learned, ~10 kB per mode while learning, more with more learning samples), which
# MAX_TEXT would cut and so corrupt. Its strings are bounded here only against a runaway.
MAX_STATE_TEXT = 1 << 20


def _jsonable(value: Any, limit: int = MAX_TEXT) -> Any:
    """JSON-safe copy: non-finite floats become None, unknown objects their str(), texts
    cut to `limit` characters."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return _text(value, limit)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, limit) for v in value]
    return str(value)


def _findings_json(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    return [
        {"code": f.code.value, "reason": _text(f.reason), "subject": f.subject} for f in findings
    ]


def _findings_from_json(raw: Any) -> tuple[Finding, ...]:
    out: list[Finding] = []
    for item in raw or []:
        try:
            code = FindingCode(item["code"])
        except (KeyError, ValueError, TypeError):
            continue
        out.append(
            Finding(code=code, reason=str(item.get("reason", "")), subject=item.get("subject"))
        )
    return tuple(out)


def _state_key(r: CheckResult) -> tuple[str, frozenset[tuple[str, str | None]]]:
    return (r.status.value, frozenset((f.code.value, f.subject) for f in r.findings))


def _row_state_key(status: str, findings: Any) -> tuple[str, frozenset[tuple[str, str | None]]]:
    return (status, frozenset((f.code.value, f.subject) for f in _findings_from_json(findings)))


def _chunks(items: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable store URL>"


@dataclass
class _Current:
    id: int
    key: tuple[str, frozenset[tuple[str, str | None]]]
    last_seen: dt.datetime


@dataclass
class _Pending:
    row: dict[str, Any]
    key: tuple[str, frozenset[tuple[str, str | None]]]
    slot: tuple[str, str] = field(default=("", ""))


# ---------------------------------------------------------------------- one writer


@dataclass(frozen=True)
class WriterInfo:
    """Who writes a log (or a shard of it): shown to a second instance that is refused."""

    shard: str
    pid: int
    host: str
    started_at: dt.datetime

    def describe(self) -> str:
        since = self.started_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        shard = "" if self.shard == ALL_SHARDS else f" with --shard {self.shard}"
        return f"camwatch pid {self.pid} on host {self.host}{shard} (since {since})"

    def to_json(self) -> str:
        return json.dumps({"shard": self.shard, "pid": self.pid, "host": self.host,
                           "started_at": self.started_at.isoformat()})

    @classmethod
    def from_json(cls, text: str) -> WriterInfo | None:
        try:
            d = json.loads(text)
            return cls(str(d["shard"]), int(d["pid"]), str(d["host"]),
                       dt.datetime.fromisoformat(d["started_at"]))
        except (ValueError, KeyError, TypeError):
            return None


def _me(shard: str, now: Callable[[], dt.datetime]) -> WriterInfo:
    return WriterInfo(shard, os.getpid(), socket.gethostname(), now())


class _WriterLock(abc.ABC):
    @abc.abstractmethod
    def release(self) -> None: ...


class _FileLock(_WriterLock):
    """SQLite: an exclusive flock on `<db>.lock`, which names its holder. The kernel
    drops it when the process ends, however it ends (kill -9 included): never stale."""

    def __init__(self, path: Path, me: WriterInfo, url: str) -> None:
        import fcntl

        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            with os.fdopen(os.dup(fd), "r", encoding="utf-8") as fh:
                holder = WriterInfo.from_json(fh.read())
            os.close(fd)
            who = holder.describe() if holder else "another camwatch"
            raise StoreBusyError(
                f"the inspection log {url} is already being written by {who}; one "
                "camwatch writes a SQLite log: stop that one first (its lock is "
                f"{path}), or run several instances with --shard K/N on PostgreSQL"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, me.to_json().encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


PG_LOCK_CLASS = 0x63770000 // 2  # advisory-lock namespace of camwatch (fits int4)


class _AdvisoryLock(_WriterLock):
    """PostgreSQL: a session advisory lock per shard on a connection held open. The
    server drops it when that connection ends. Instances must agree on N: two shards
    of different N overlap."""

    def __init__(self, engine: Engine, me: WriterInfo, url: str) -> None:
        k, n = (1, 1) if me.shard == ALL_SHARDS else parse_shard(me.shard)
        self._conn: sa.Connection | None = engine.connect().execution_options(
            isolation_level="AUTOCOMMIT")
        conn = self._conn
        got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:c, :o)"),
                           {"c": PG_LOCK_CLASS, "o": n * 1000 + k}).scalar()
        if not got:
            self.release()
            who = _holder(engine, me.shard) or "another camwatch"
            raise StoreBusyError(
                f"the inspection log {url} is already being written for "
                f"{'the whole inventory' if me.shard == ALL_SHARDS else 'shard ' + me.shard}"
                f" by {who}; give each instance its own --shard K/N")
        others = conn.execute(sa.text(
            "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND classid = :c "
            "AND objsubid = 2 AND granted AND pid <> pg_backend_pid()"),
            {"c": PG_LOCK_CLASS}).scalars().all()
        clash = sorted({(int(o) % 1000, int(o) // 1000) for o in others
                        if int(o) // 1000 != n})
        if clash:
            self.release()
            theirs = ", ".join("all" if (kk, nn) == (1, 1) else f"{kk}/{nn}"
                               for kk, nn in clash)
            raise StoreBusyError(
                f"the inspection log {url} is already being written by instances with "
                f"--shard {theirs}; every instance writing one log must split it the same "
                f"way (the same N), and this one was started as "
                f"{'the whole inventory' if me.shard == ALL_SHARDS else me.shard}")

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


def _holder(engine: Engine, shard: str) -> str | None:
    s = log_sessions
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.select(s).where(s.c.shard == shard, s.c.ended_at.is_(None))
                .order_by(s.c.id.desc()).limit(1)).first()
    except Exception:  # no table yet
        return None
    if row is None:
        return None
    return WriterInfo(row.shard, row.pid, row.host, row.started_at).describe()


def _writer_lock(engine: Engine, url: str, me: WriterInfo) -> _WriterLock | None:
    parsed = make_url(url)
    safe = _safe_url(url)
    if parsed.get_backend_name() == "postgresql":
        return _AdvisoryLock(engine, me, safe)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return _FileLock(Path(f"{Path(database).expanduser()}.lock"), me, safe)
    return None


# --------------------------------------------------------------------------- store


class Store:
    """The inspection log. Open with `Store.open(url)`; close with `close()`.

    `Store.open(url, writer="all" | "K/N")` opens it for writing as one `camwatch run`:
    it claims the log (SQLite: a lock file; PostgreSQL: an advisory lock per shard),
    refusing with StoreBusyError when another instance holds it, and starts a session
    whose `kept_until` every committed batch moves forward.

    `now` (default: camwatch's clock) stamps what the log writes on its own account:
    when a state was saved, when an inspection was recorded, an alert event given no time,
    when a session began and ended.
    """

    def __init__(self, engine: Engine, now: Callable[[], dt.datetime] | None = None, *,
                 writer_lock: _WriterLock | None = None) -> None:
        self.engine = engine
        self.now = now or default_clock().now
        self._lock = threading.Lock()
        self._current: dict[tuple[str, str], _Current] = {}
        self._writer_lock = writer_lock  # released by close()
        self.session: LogSession | None = None
        self._load_current()

    # -- opening

    @classmethod
    def open(
        cls, url: str, *, migrate: bool = True, now: Callable[[], dt.datetime] | None = None,
        writer: str | None = None,
    ) -> Store:
        """Open (creating if needed) the log at `url` and upgrade its schema to head."""
        lock: _WriterLock | None = None
        try:
            engine = _create_engine(url)
            if writer is not None:  # before migrating: two instances never race there
                lock = _writer_lock(engine, url, _me(writer, now or default_clock().now))
            if migrate:
                upgrade(engine)
            store = cls(engine, now, writer_lock=lock)
            if writer is not None:
                store.begin_session(writer)
            return store
        except StoreError:
            if lock is not None:
                lock.release()
            raise
        except Exception as exc:
            if lock is not None:
                lock.release()
            raise StoreError(f"cannot open the inspection log {_safe_url(url)}: {exc}") from exc

    def close(self) -> None:
        if self.session is not None:
            s = log_sessions
            # on a full disk this fails: the session then simply ends at its kept_until
            with contextlib.suppress(Exception), self.engine.begin() as conn:
                conn.execute(s.update().where(s.c.id == self.session.id)
                             .values(ended_at=self.now()))
        self.engine.dispose()
        if self._writer_lock is not None:
            self._writer_lock.release()
            self._writer_lock = None

    # -- sessions and gaps

    def begin_session(self, shard: str) -> LogSession:
        me = _me(shard, self.now)
        s = log_sessions
        with self.engine.begin() as conn:
            new_id = conn.execute(
                s.insert().returning(s.c.id),
                {"shard": shard, "host": me.host, "pid": me.pid, "started_at": me.started_at,
                 "kept_until": me.started_at, "ended_at": None},
            ).scalar_one()
        self.session = LogSession(new_id, shard, me.host, me.pid, me.started_at,
                                  me.started_at, None)
        return self.session

    def sessions(self, start: dt.datetime | None = None,
                 end: dt.datetime | None = None) -> list[LogSession]:
        """Sessions that overlap [start, end), oldest first."""
        s = log_sessions
        q = sa.select(s)
        if end is not None:
            q = q.where(s.c.started_at < _aware(end))
        if start is not None:
            q = q.where(s.c.kept_until >= _aware(start))
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(s.c.started_at, s.c.id)).all()
        return [LogSession(r.id, r.shard, r.host, r.pid, r.started_at, r.kept_until,
                           r.ended_at) for r in rows]

    def first_session_start(self) -> dt.datetime | None:
        with self.engine.connect() as conn:
            value: dt.datetime | None = conn.execute(
                sa.select(sa.func.min(log_sessions.c.started_at))).scalar()
        return value

    def record_gap(self, start: dt.datetime, end: dt.datetime, reason: str,
                   results_lost: int, shard: str | None = None) -> None:
        """Say that the log does not hold what happened in [start, end]."""
        g = log_gaps
        with self.engine.begin() as conn:
            conn.execute(g.insert(), {
                "shard": shard or (self.session.shard if self.session else ALL_SHARDS),
                "started_at": _aware(start), "ended_at": _aware(end),
                "reason": _text(reason), "results_lost": int(results_lost),
                "recorded_at": self.now()})

    def gaps(self, start: dt.datetime | None = None,
             end: dt.datetime | None = None) -> list[LogGap]:
        g = log_gaps
        q = sa.select(g)
        if end is not None:
            q = q.where(g.c.started_at < _aware(end))
        if start is not None:
            q = q.where(g.c.ended_at >= _aware(start))
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(g.c.started_at, g.c.id)).all()
        return [LogGap(r.shard, r.started_at, r.ended_at, r.reason, r.results_lost)
                for r in rows]

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load_current(self) -> None:
        t = check_transitions
        latest = (
            sa.select(sa.func.max(t.c.id).label("id"))
            .group_by(t.c.device, t.c.check_kind)
            .subquery()
        )
        q = sa.select(
            t.c.id, t.c.device, t.c.check_kind, t.c.status, t.c.findings, t.c.last_seen_at
        ).where(t.c.id.in_(sa.select(latest.c.id)))
        current: dict[tuple[str, str], _Current] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(q):
                current[(row.device, row.check_kind)] = _Current(
                    id=row.id,
                    key=_row_state_key(row.status, row.findings),
                    last_seen=row.last_seen_at,
                )
        self._current = current

    # -- writing check results

    def record_results(self, results: Sequence[CheckResult]) -> int:
        """Write a batch of results in one transaction; returns how many new transitions.

        A result with the same status and findings (code, subject) as its device's current
        row only moves `last_seen_at`; a change starts a new row and closes the old one.
        """
        if not results:
            return 0
        t = check_transitions
        with self._lock:
            ordered = sorted(results, key=lambda r: _aware(r.at))
            # row id -> (last seen, values then): an unchanged state keeps its newest values
            seen_updates: dict[int, tuple[dt.datetime, Any]] = {}
            end_updates: dict[int, dt.datetime] = {}
            pending: dict[tuple[str, str], _Pending] = {}
            inserts: list[_Pending] = []
            for r in ordered:
                at = _aware(r.at).astimezone(dt.UTC)
                slot = (r.device, r.check.value)
                key = _state_key(r)
                p = pending.get(slot)
                if p is not None:
                    if p.key == key:
                        if at >= p.row["last_seen_at"]:
                            p.row["last_seen_at"] = at
                            p.row["values"] = _jsonable(values_json(r.values))
                        continue
                    p.row["ended_at"] = at
                else:
                    cur = self._current.get(slot)
                    if cur is not None and cur.key == key:
                        if at >= seen_updates.get(cur.id, (cur.last_seen, None))[0]:
                            seen_updates[cur.id] = (at, _jsonable(values_json(r.values)))
                        continue
                    if cur is not None:
                        # the current row ends here; repeats of it earlier in this
                        # batch still moved its last_seen (kept in seen_updates)
                        end_updates[cur.id] = at
                row = {
                    "device": r.device,
                    "check_kind": r.check.value,
                    "status": r.status.value,
                    "reason": _text(r.reason),
                    "values": _jsonable(values_json(r.values)),
                    "findings": _findings_json(r.findings),
                    "started_at": at,
                    "last_seen_at": at,
                    "ended_at": None,
                }
                p = _Pending(row=row, key=key, slot=slot)
                pending[slot] = p
                inserts.append(p)

            new_current: dict[tuple[str, str], _Current] = {}
            with self.engine.begin() as conn:
                if seen_updates:
                    conn.execute(
                        t.update()
                        .where(t.c.id == sa.bindparam("b_id"))
                        .values(last_seen_at=sa.bindparam("b_seen"), values=sa.bindparam("b_val")),
                        [
                            {"b_id": i, "b_seen": seen, "b_val": val}
                            for i, (seen, val) in seen_updates.items()
                        ],
                    )
                if end_updates:
                    conn.execute(
                        t.update()
                        .where(t.c.id == sa.bindparam("b_id"))
                        .values(ended_at=sa.bindparam("b_end")),
                        [{"b_id": i, "b_end": e} for i, e in end_updates.items()],
                    )
                if inserts:
                    ids = (
                        conn.execute(
                            t.insert().returning(t.c.id, sort_by_parameter_order=True),
                            [p.row for p in inserts],
                        )
                        .scalars()
                        .all()
                    )
                    for p, new_id in zip(inserts, ids, strict=True):
                        if p.row["ended_at"] is None:
                            new_current[p.slot] = _Current(
                                id=new_id, key=p.key, last_seen=p.row["last_seen_at"]
                            )
                kept = self._kept_until(conn, _aware(ordered[-1].at).astimezone(dt.UTC))
            # committed: only now update the in-memory view
            for cur in self._current.values():
                if cur.id in seen_updates:
                    cur.last_seen = seen_updates[cur.id][0]
            self._current.update(new_current)
            if kept is not None and self.session is not None:
                self.session = dataclasses.replace(self.session, kept_until=kept)
            return len(inserts)

    def _kept_until(self, conn: sa.Connection, newest: dt.datetime) -> dt.datetime | None:
        """Move this session's kept_until to `newest` (in the caller's transaction)."""
        if self.session is None or newest <= self.session.kept_until:
            return None
        s = log_sessions
        conn.execute(s.update().where(s.c.id == self.session.id).values(kept_until=newest))
        return newest

    # -- alerts

    def record_alert_event(
        self,
        kind: Literal["fired", "resolved"],
        alertname: str,
        device: str,
        labels: Mapping[str, str] | None = None,
        at: dt.datetime | None = None,
    ) -> bool:
        """Record that a repair alert fired (報修) or resolved (修復).

        A repeated `fired` for an alert that is still open changes nothing; `resolved`
        closes the open one. Returns whether a row was written.
        """
        when = _aware(at or self.now())
        a = alert_events
        open_q = (
            sa.select(a.c.id)
            .where(a.c.alertname == alertname, a.c.device == device, a.c.resolved_at.is_(None))
            .order_by(a.c.id.desc())
        )
        with self.engine.begin() as conn:
            open_ids = list(conn.execute(open_q).scalars())
            if kind == "fired":
                if open_ids:
                    return False
                conn.execute(
                    a.insert().values(
                        alertname=alertname,
                        device=device,
                        labels=_jsonable(dict(labels or {})),
                        fired_at=when,
                        resolved_at=None,
                    )
                )
                return True
            if kind == "resolved":
                if not open_ids:
                    return False
                conn.execute(a.update().where(a.c.id.in_(open_ids)).values(resolved_at=when))
                return True
        raise ValueError(f"alert event kind must be 'fired' or 'resolved', not {kind!r}")

    def alert_history(
        self,
        devices: Iterable[str] | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> list[AlertRecord]:
        """Alerts open at any time in [start, end), oldest first."""
        a = alert_events
        base = sa.select(a)
        if end is not None:
            base = base.where(a.c.fired_at < _aware(end))
        if start is not None:
            base = base.where(sa.or_(a.c.resolved_at.is_(None), a.c.resolved_at >= _aware(start)))
        out: list[AlertRecord] = []
        with self.engine.connect() as conn:
            for q in _device_filtered(base, a.c.device, devices):
                for row in conn.execute(q):
                    out.append(
                        AlertRecord(
                            alertname=row.alertname,
                            device=row.device,
                            labels={str(k): str(v) for k, v in (row.labels or {}).items()},
                            fired_at=row.fired_at,
                            resolved_at=row.resolved_at,
                        )
                    )
        out.sort(key=lambda r: (r.fired_at, r.device, r.alertname))
        return out

    # -- key/value state

    def save_state(self, key: str, value: Mapping[str, Any]) -> None:
        self.save_states([(key, value)])

    def save_states(self, docs: Iterable[tuple[str, Mapping[str, Any]]],
                    drop: Iterable[str] = ()) -> None:
        """Several documents in one transaction, each made and encoded only as it is
        written (`docs` may be a generator): what one holds is garbage before the next
        is made. Then the keys in `drop` are deleted."""
        now = self.now()
        k = kv_state
        with self.engine.begin() as conn:
            for key, value in docs:
                doc = _jsonable(dict(value), MAX_STATE_TEXT)
                res = conn.execute(
                    k.update().where(k.c.key == key).values(value=doc, updated_at=now))
                if res.rowcount == 0:
                    conn.execute(k.insert().values(key=key, value=doc, updated_at=now))
                del doc
            gone = list(drop)
            if gone:
                conn.execute(k.delete().where(k.c.key.in_(gone)))

    def load_states(self, prefix: str) -> dict[str, dict[str, Any]]:
        """Every document whose key starts with `prefix` (e.g. one per shard)."""
        k = kv_state
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(k.c.key, k.c.value)
                                .where(k.c.key.startswith(prefix, autoescape=True))).all()
        return {r.key: dict(r.value) for r in rows if isinstance(r.value, dict)}

    def load_state(self, key: str) -> dict[str, Any] | None:
        k = kv_state
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(k.c.value).where(k.c.key == key)).scalar_one_or_none()
        return dict(value) if isinstance(value, dict) else None

    # -- reading transitions

    def transitions(
        self,
        devices: Iterable[str] | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        checks: Iterable[CheckKind] | None = None,
    ) -> list[Transition]:
        """Transitions that overlap [start, end), ordered by device, check and time."""
        t = check_transitions
        base = sa.select(t)
        if end is not None:
            base = base.where(t.c.started_at < _aware(end))
        if start is not None:
            base = base.where(sa.func.coalesce(t.c.ended_at, t.c.last_seen_at) >= _aware(start))
        if checks is not None:
            base = base.where(t.c.check_kind.in_([c.value for c in checks]))
        out: list[Transition] = []
        with self.engine.connect() as conn:
            for q in _device_filtered(base, t.c.device, devices):
                for row in conn.execute(q):
                    try:
                        check = CheckKind(row.check_kind)
                        status = Status(row.status)
                    except ValueError:
                        continue
                    out.append(
                        Transition(
                            id=row.id,
                            device=row.device,
                            check=check,
                            status=status,
                            reason=row.reason,
                            values=values_from_json(check, row.values),
                            findings=_findings_from_json(row.findings),
                            started_at=row.started_at,
                            last_seen_at=row.last_seen_at,
                            ended_at=row.ended_at,
                        )
                    )
        out.sort(key=lambda x: (x.device, x.check.value, x.started_at, x.id))
        return out

    def known_devices(self) -> set[str]:
        with self._lock:
            return {d for d, _ in self._current}

    # -- derived records

    def snapshot_day(self, day: dt.date, tz: str = "Asia/Taipei",
                     devices: Iterable[str] | None = None) -> int:
        """Write the daily snapshot of a local day (replacing one already written), of
        `devices` (an instance's shard) or of every device."""
        zone = ZoneInfo(tz)
        start = dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
        wanted = None if devices is None else list(dict.fromkeys(devices))
        times = status_times(self.transitions(wanted, start=start, end=end), start, end)
        rows = [
            {
                "day": day,
                "device": device,
                "check_kind": check.value,
                "ok_s": st.ok,
                "fail_s": st.fail,
                "unknown_s": st.unknown,
                "worst": st.worst,
            }
            for (device, check), st in sorted(times.items())
        ]
        s = daily_snapshots
        with self.engine.begin() as conn:
            if wanted is None:
                conn.execute(s.delete().where(s.c.day == day))
            else:
                for chunk in _chunks(wanted):
                    conn.execute(s.delete().where(s.c.day == day, s.c.device.in_(chunk)))
            if rows:
                conn.execute(s.insert(), rows)
        return len(rows)

    def daily_snapshots(
        self, start_day: dt.date, end_day: dt.date, devices: Iterable[str] | None = None
    ) -> list[DailySnapshot]:
        s = daily_snapshots
        base = sa.select(s).where(s.c.day >= start_day, s.c.day <= end_day)
        out: list[DailySnapshot] = []
        with self.engine.connect() as conn:
            for q in _device_filtered(base, s.c.device, devices):
                for row in conn.execute(q):
                    out.append(
                        DailySnapshot(
                            day=row.day,
                            device=row.device,
                            check=CheckKind(row.check_kind),
                            ok_s=row.ok_s,
                            fail_s=row.fail_s,
                            unknown_s=row.unknown_s,
                            worst=row.worst,
                        )
                    )
        out.sort(key=lambda x: (x.day, x.device, x.check.value))
        return out

    def record_inspection(
        self,
        inspection_date: dt.date,
        start: dt.datetime,
        end: dt.datetime,
        devices: Iterable[str] | None = None,
    ) -> int:
        """Write the inspection of `inspection_date` covering [start, end) per device.

        Each check answers `fail` if it failed at any time in the period, else `ok` if it
        was judged ok, else `unknown`; None when nothing was recorded.
        """
        wanted = None if devices is None else list(dict.fromkeys(devices))
        trans = self.transitions(wanted, start, end)
        times = status_times(trans, start, end)
        names = sorted({d for d, _ in times} | set(wanted or []))
        now = self.now()
        rows = []
        for device in names:
            answers = {
                c.value: (times[(device, c)].worst if (device, c) in times else None)
                for c in CheckKind
            }
            detail = [
                {
                    "check": tr.check.value,
                    "reason": tr.reason,
                    "findings": _findings_json(tr.findings),
                    "started_at": tr.started_at.isoformat(),
                    "ended_at": tr.ended_at.isoformat() if tr.ended_at else None,
                }
                for tr in trans
                if tr.device == device and tr.status == Status.FAIL
            ]
            rows.append(
                {
                    "inspection_date": inspection_date,
                    "device": device,
                    "period_start": start,
                    "period_end": end,
                    "host": answers["host"],
                    "recording": answers["recording"],
                    "picture": answers["picture"],
                    "detail": detail,
                    "recorded_at": now,
                }
            )
        i = inspections
        with self.engine.begin() as conn:
            for chunk in _chunks(names):
                conn.execute(
                    i.delete().where(i.c.inspection_date == inspection_date, i.c.device.in_(chunk))
                )
            if rows:
                conn.execute(i.insert(), rows)
        return len(rows)

    def inspections(
        self, start_day: dt.date, end_day: dt.date, devices: Iterable[str] | None = None
    ) -> list[InspectionRecord]:
        i = inspections
        base = sa.select(i).where(i.c.inspection_date >= start_day, i.c.inspection_date <= end_day)
        out: list[InspectionRecord] = []
        with self.engine.connect() as conn:
            for q in _device_filtered(base, i.c.device, devices):
                for row in conn.execute(q):
                    out.append(
                        InspectionRecord(
                            inspection_date=row.inspection_date,
                            device=row.device,
                            period_start=row.period_start,
                            period_end=row.period_end,
                            answers={
                                "host": row.host,
                                "recording": row.recording,
                                "picture": row.picture,
                            },
                            detail=list(row.detail or []),
                        )
                    )
        out.sort(key=lambda x: (x.inspection_date, x.device))
        return out

    def daily_housekeeping(
        self, now: dt.datetime, tz: str = "Asia/Taipei", interval_days: int = 14,
        devices: Iterable[str] | None = None,
    ) -> None:
        """Run once a day (the service does, after local midnight): write yesterday's
        snapshot and, when yesterday was an inspection date, that inspection, of
        `devices` (an instance's shard) or of every device."""
        zone = ZoneInfo(tz)
        wanted = None if devices is None else list(devices)
        yesterday = _aware(now).astimezone(zone).date() - dt.timedelta(days=1)
        self.snapshot_day(yesterday, tz, wanted)
        for date, first, last in inspection_periods(yesterday.year, yesterday.month, interval_days):
            if date == yesterday:
                start = dt.datetime.combine(first, dt.time(), zone).astimezone(dt.UTC)
                end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone).astimezone(
                    dt.UTC
                )
                self.record_inspection(date, start, end, wanted)

    def catch_up_daily(
        self, now: dt.datetime, tz: str = "Asia/Taipei", interval_days: int = 14,
        devices: Iterable[str] | None = None, max_days: int = 1095,
    ) -> list[dt.date]:
        """Write every daily snapshot and inspection missing up to yesterday (local), from
        the transitions: the service calls this at start and after each local midnight,
        so a day is not lost because camwatch was stopped, restarted or asleep when its
        midnight passed. Days without any data stay without rows. Returns the days
        written."""
        zone = ZoneInfo(tz)
        wanted = None if devices is None else list(dict.fromkeys(devices))
        yesterday = _aware(now).astimezone(zone).date() - dt.timedelta(days=1)
        t, s, i = check_transitions, daily_snapshots, inspections
        with self.engine.connect() as conn:
            first_q = sa.select(sa.func.min(t.c.started_at))
            snap_q = sa.select(s.c.day).distinct()
            insp_q = sa.select(i.c.inspection_date).distinct()
            if wanted is not None:
                first = None
                snapped: set[dt.date] = set()
                inspected: set[dt.date] = set()
                for chunk in _chunks(wanted):
                    f = conn.execute(first_q.where(t.c.device.in_(chunk))).scalar()
                    first = f if first is None or (f is not None and f < first) else first
                    snapped |= set(conn.execute(snap_q.where(s.c.device.in_(chunk))).scalars())
                    inspected |= set(conn.execute(insp_q.where(i.c.device.in_(chunk)))
                                     .scalars())
            else:
                first = conn.execute(first_q).scalar()
                snapped = set(conn.execute(snap_q).scalars())
                inspected = set(conn.execute(insp_q).scalars())
        if first is None:
            return []
        day = max(_aware(first).astimezone(zone).date(), yesterday - dt.timedelta(days=max_days))
        written: list[dt.date] = []
        while day <= yesterday:
            if day not in snapped and self.snapshot_day(day, tz, wanted):
                written.append(day)
            for date, first_day, last_day in inspection_periods(day.year, day.month,
                                                                interval_days):
                if date == day and date not in inspected:
                    start = dt.datetime.combine(first_day, dt.time(), zone).astimezone(dt.UTC)
                    end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(),
                                              zone).astimezone(dt.UTC)
                    if self.record_inspection(date, start, end, wanted) and day not in written:
                        written.append(day)
            day += dt.timedelta(days=1)
        return written

    # -- retention of the log itself

    def purge(self, older_than: dt.datetime) -> dict[str, int]:
        """Delete what ended before `older_than` (settings.log_retention_days ago)."""
        cutoff = _aware(older_than)
        day = cutoff.date()
        t, a, i, s = check_transitions, alert_events, inspections, daily_snapshots
        with self._lock, self.engine.begin() as conn:
            counts = {
                "transitions": conn.execute(
                    t.delete().where(sa.func.coalesce(t.c.ended_at, t.c.last_seen_at) < cutoff)
                ).rowcount,
                "alerts": conn.execute(
                    a.delete().where(a.c.resolved_at.is_not(None), a.c.resolved_at < cutoff)
                ).rowcount,
                "inspections": conn.execute(i.delete().where(i.c.inspection_date < day)).rowcount,
                "snapshots": conn.execute(s.delete().where(s.c.day < day)).rowcount,
            }
        with self._lock:
            self._load_current()
        return counts

    # -- async wrappers (run the synchronous call in a worker thread)

    async def arecord_results(self, results: Sequence[CheckResult]) -> int:
        return await asyncio.to_thread(self.record_results, results)

    async def arecord_alert_event(
        self,
        kind: Literal["fired", "resolved"],
        alertname: str,
        device: str,
        labels: Mapping[str, str] | None = None,
        at: dt.datetime | None = None,
    ) -> bool:
        return await asyncio.to_thread(self.record_alert_event, kind, alertname, device, labels, at)

    async def asave_state(self, key: str, value: Mapping[str, Any]) -> None:
        await asyncio.to_thread(self.save_state, key, value)

    async def aload_state(self, key: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self.load_state, key)


def _device_filtered(
    base: sa.Select[Any], column: sa.ColumnElement[str], devices: Iterable[str] | None
) -> Iterable[sa.Select[Any]]:
    if devices is None:
        yield base
        return
    names = list(dict.fromkeys(devices))
    for chunk in _chunks(names):
        yield base.where(column.in_(chunk))


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: every commit is fsynced to the WAL, so a committed batch survives
        # kill -9 and a power cut alike (NORMAL would survive only the former).
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    return engine


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def dumps_canonical(value: Any) -> str:
    """Canonical JSON (sorted keys, no spaces) for hashing report data."""
    return json.dumps(_jsonable(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
