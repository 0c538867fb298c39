"""Pushes the alert engine's alerts to Alertmanager's API v2 (`POST /api/v2/alerts`).

One shared `httpx.AsyncClient` (the service's, also used by the ONVIF library) carries
every request. Each push sends the whole picture: every firing alert (with the startsAt
the engine keeps, and endsAt a few resend intervals ahead, like Prometheus does) plus
every resolved alert Alertmanager has not yet acknowledged (with its endsAt). Firing
alerts are re-sent every `resend_interval` seconds (keep it below Alertmanager's
`resolve_timeout`, 5 minutes by default); any fired/resolved event pushes at once.

While Alertmanager is unreachable nothing is dropped: the engine still holds the firing
alerts and the unacknowledged resolutions, and the pusher retries with exponential
backoff and sends them all when Alertmanager answers again. After each change the
engine's state is handed to `save` (the service stores it), so a restart resumes with the
same startsAt: Alertmanager treats it as the same alert, not a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from camwatch.clock import now as clock_now
from exporters.alerting import Alert, AlertEngine, AlertEvent

log = logging.getLogger("camwatch.alertmanager")

SaveFn = Callable[[dict[str, Any]], Awaitable[None] | None]


def _rfc3339(t: dt.datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def alert_payload(alert: Alert, *, now: dt.datetime, valid_for: float,
                  generator_url: str | None = None) -> dict[str, Any]:
    """One element of the API v2 POST body."""
    ends = alert.ends_at or (now + dt.timedelta(seconds=valid_for))
    body: dict[str, Any] = {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": _rfc3339(alert.starts_at),
        "endsAt": _rfc3339(ends),
    }
    if generator_url:
        body["generatorURL"] = generator_url
    return body


class AlertmanagerPusher:
    def __init__(
        self,
        engine: AlertEngine,
        url: str | None,
        client: httpx.AsyncClient,
        *,
        resend_interval: float = 60.0,
        save: SaveFn | None = None,
        generator_url: str | None = None,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        request_timeout: float = 10.0,
        now: Callable[[], dt.datetime] = clock_now,
    ) -> None:
        self.engine = engine
        self.url = url.rstrip("/") if url else None
        self.client = client
        self.resend_interval = resend_interval
        self.save = save
        self.generator_url = generator_url
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.request_timeout = request_timeout
        self._save_failing = False
        self.now = now
        self._wake = asyncio.Event()
        self._last_ok: float | None = None  # loop time of the last successful push
        self._failures = 0
        self.sent_batches = 0  # counters for tests and the TUI
        self.failed_attempts = 0
        self.reachable: bool | None = None
        engine.listeners.append(self._on_event)

    def _on_event(self, event: AlertEvent) -> None:
        self._wake.set()

    def notify(self) -> None:
        """Push soon (called after observing a batch of results)."""
        self._wake.set()

    def payload(self) -> list[dict[str, Any]]:
        now = self.now()
        valid_for = max(4 * self.resend_interval, 60.0)
        alerts = self.engine.firing() + self.engine.unsent_resolved()
        return [alert_payload(a, now=now, valid_for=valid_for,
                              generator_url=self.generator_url) for a in alerts]

    async def push_once(self) -> bool:
        """POST everything once. True when Alertmanager accepted it (or nothing to send)."""
        await self._persist()
        if self.url is None:
            return True
        resolved = [a.key for a in self.engine.unsent_resolved()]
        body = self.payload()
        if not body:
            self._last_ok = asyncio.get_running_loop().time()
            return True
        try:
            r = await self.client.post(f"{self.url}/api/v2/alerts", json=body,
                                       timeout=self.request_timeout)
            ok = 200 <= r.status_code < 300
            detail = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            ok = False
            detail = type(exc).__name__
        if not ok:
            self._failures += 1
            self.failed_attempts += 1
            if self.reachable is not False:
                log.warning("alertmanager unreachable (%s); %d alerts queued", detail, len(body))
            self.reachable = False
            return False
        if self.reachable is False:
            log.info("alertmanager reachable again; sent %d queued alerts", len(body))
        self.reachable = True
        self._failures = 0
        self.sent_batches += 1
        self._last_ok = asyncio.get_running_loop().time()
        self.engine.ack_resolved(resolved)
        await self._persist()
        return True

    async def _persist(self) -> None:
        if self.save is None or not self.engine.changed:
            return
        self.engine.changed = False
        try:
            res = self.save(self.engine.dump())
            if inspect.isawaitable(res):
                await res
        except Exception as exc:  # the store being down must not stop alerting
            self.engine.changed = True
            if not self._save_failing:  # once per outage, not at every push
                log.warning("could not save alert state (kept in memory, saved again "
                            "once the log is writable): %s", type(exc).__name__)
            self._save_failing = True
            return
        if self._save_failing:
            self._save_failing = False
            log.info("alert state saved again")

    def _delay(self) -> float:
        if self._failures:
            backoff: float = self.backoff_initial * 2.0 ** (self._failures - 1)
            return min(self.backoff_max, backoff)
        if self._last_ok is None:
            return 0.0
        elapsed = asyncio.get_running_loop().time() - self._last_ok
        return max(0.0, self.resend_interval - elapsed)

    async def run(self) -> None:
        """Push forever: on every event, every resend interval, with backoff on failure."""
        while True:
            delay = self._delay()
            if self._failures:
                await asyncio.sleep(delay)  # backing off: events wait, they stay queued
            elif delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
            self._wake.clear()
            await self.push_once()

    async def flush(self, limit_s: float = 5.0) -> bool:
        """One last push on shutdown (bounded by `limit_s`)."""
        try:
            return await asyncio.wait_for(self.push_once(), timeout=limit_s)
        except TimeoutError:
            return False
