"""camwatch's HTTP server (aiohttp): /metrics, /healthz, /ready, the landing page `/`
and the monthly sheets under /reports.

/metrics, /healthz and /ready are open, as is the convention for exporters (the metrics
carry what the inventory says about places, nothing about people). /reports names people
(managers, office heads) and needs a bearer token (CAMWATCH_HTTP_TOKEN) or basic auth
(CAMWATCH_HTTP_USER / CAMWATCH_HTTP_PASSWORD); with neither configured it is disabled.
No page ever contains or links to a frame.

The server never imports the store: the service injects `report_provider`, an async
callable (month "YYYY-MM", unit id, format "pdf"|"xlsx") -> bytes.

POST /admin/baselines/{camera}/reset (same auth as /reports) forgets a camera's picture
baselines, day and night, after its lens was cleaned, refocused or re-aimed; GET
/admin/baselines/{camera} says what is held (frame size, modes learned, references); POST
/admin/baselines/{camera}/reference makes a known-good view (figures and a 32x18
thumbnail, never a picture) the baseline of its mode. The service injects
`baseline_reset`, `baseline_describe` and `baseline_set`, async callables that
camwatch/baselines.py makes from the probe memory.

POST /admin/reload (same auth) reads inventory and settings again, like SIGHUP; the
service injects `reload`, an async callable (source) -> a JSON-able dict with "ok" and
the errors or the changes. 200 when applied, 422 when refused (the running inventory
and settings stay).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hmac
import json
import logging
import re
import ssl
import zlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from camwatch.clock import now as clock_now
from camwatch.settings import Settings
from camwatch.state import LatestState
from exporters.metrics import Exposition, local_today
from inventory.models import Inventory
from probes.result import CHECK_TITLES, CheckKind, CheckResult, Status

log = logging.getLogger("camwatch.http")

ReportProvider = Callable[[str, str, str], Awaitable[bytes]]
BaselineReset = Callable[[str], Awaitable[dict[str, Any]]]
BaselineDescribe = Callable[[str], Awaitable[dict[str, Any]]]
BaselineSet = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
Reload = Callable[[str], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class FiringAlert:
    """What the landing page shows of an alert (the engine supplies these)."""

    alertname: str
    device: str
    summary: str
    starts_at: dt.datetime


AlertsSource = Callable[[], Sequence[FiringAlert]]

MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
UNIT_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
FORMATS = {"pdf": "application/pdf",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
CHECK_EN = {CheckKind.HOST: "recorder/camera running", CheckKind.RECORDING: "recording running",
            CheckKind.PICTURE: "picture clear"}
CHECK_ZH = {c: (CHECK_TITLES[c], en) for c, en in CHECK_EN.items()}
HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


class HttpContext:
    def __init__(self, settings: Settings, state: LatestState,
                 inventory: Inventory | Callable[[], Inventory],
                 report_provider: ReportProvider | None, alerts: AlertsSource | None,
                 now: Callable[[], dt.datetime],
                 baseline_reset: BaselineReset | None = None,
                 reload: Reload | None = None,
                 baseline_describe: BaselineDescribe | None = None,
                 baseline_set: BaselineSet | None = None) -> None:
        self.settings = settings
        self.state = state
        self._inventory = inventory
        self.report_provider = report_provider
        self.alerts = alerts
        self.now = now
        self.baseline_reset = baseline_reset
        self.reload = reload
        self.baseline_describe = baseline_describe
        self.baseline_set = baseline_set
        self.exposition = Exposition(state, inventory, now=now)

    @property
    def inventory(self) -> Inventory:
        inv = self._inventory
        return inv() if callable(inv) else inv


STATE_KEY = web.AppKey("camwatch_http", HttpContext)


# -- authentication -------------------------------------------------------------------


def auth_configured(settings: Settings) -> bool:
    return bool(settings.http_token) or bool(settings.http_user and settings.http_password)


def authorized(settings: Settings, header: str | None) -> bool:
    """Bearer token or basic auth, compared in constant time."""
    if not header:
        return False
    scheme, _, cred = header.partition(" ")
    scheme = scheme.lower()
    cred = cred.strip()
    if scheme == "bearer" and settings.http_token:
        return hmac.compare_digest(cred.encode(), settings.http_token.encode())
    if scheme == "basic" and settings.http_user and settings.http_password:
        try:
            raw = base64.b64decode(cred, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = raw.partition(":")
        if not sep:
            return False
        ok_user = hmac.compare_digest(user.encode(), settings.http_user.encode())
        ok_pw = hmac.compare_digest(password.encode(), settings.http_password.encode())
        return ok_user and ok_pw
    return False


def _require_auth(request: web.Request, what: str = "/reports") -> None:
    ctx = request.app[STATE_KEY]
    if not auth_configured(ctx.settings):
        raise web.HTTPForbidden(
            text=f"{what} is disabled: set CAMWATCH_HTTP_TOKEN (or CAMWATCH_HTTP_USER and "
                 "CAMWATCH_HTTP_PASSWORD) to enable it.\n"
                 "報表下載未啟用：請設定 CAMWATCH_HTTP_TOKEN。\n")
    if not authorized(ctx.settings, request.headers.get("Authorization")):
        raise web.HTTPUnauthorized(
            text="authentication required (Bearer token or basic auth)\n需要登入\n",
            headers={"WWW-Authenticate": 'Basic realm="camwatch reports", charset="UTF-8"'})


# -- middleware -------------------------------------------------------------------------


@web.middleware
async def security_headers(request: web.Request,
                           handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                           ) -> web.StreamResponse:
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        resp = exc
        _headers(request, resp)
        raise
    _headers(request, resp)
    return resp


def _headers(request: web.Request, resp: web.StreamResponse) -> None:
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Referrer-Policy", "no-referrer")
    resp.headers.setdefault("Content-Security-Policy", HTML_CSP)
    if request.path.startswith("/reports") or request.path == "/":
        resp.headers["Cache-Control"] = "no-store"


# -- handlers ---------------------------------------------------------------------------


async def metrics(request: web.Request) -> web.StreamResponse:
    """The exposition, sent one family at a time (rendered off the loop), gzipped at
    level 1 when the scraper takes it (Prometheus does): a large campus' 16 MB shrinks
    ~10x for a tenth of the CPU the default level costs, and no copy of the whole body
    is ever held (it was the service's largest transient)."""
    ctx = request.app[STATE_KEY]
    gzip_ok = "gzip" in request.headers.get("Accept-Encoding", "")
    resp = web.StreamResponse()
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    if gzip_ok:
        resp.headers["Content-Encoding"] = "gzip"
    loop = asyncio.get_running_loop()
    parts = _MetricsParts(ctx.exposition, gzip_ok)
    await resp.prepare(request)
    while (chunk := await loop.run_in_executor(None, parts.next)) is not None:
        if chunk:  # gzip may hold a small piece back until it has more
            await resp.write(chunk)
    await resp.write_eof()
    return resp


class _MetricsParts:
    """The next piece of a /metrics body (gzipped if asked), None once all is sent."""

    def __init__(self, exposition: Exposition, gzip_ok: bool) -> None:
        self._chunks: Iterator[bytes] = exposition.chunks()  # a generator: nothing yet
        self._done = False
        # wbits 31: a gzip stream (header and trailer), as gzip.compress writes it
        self._zip = zlib.compressobj(1, zlib.DEFLATED, 31) if gzip_ok else None

    def next(self) -> bytes | None:
        if self._done:
            return None
        chunk = next(self._chunks, None)
        if chunk is None:
            self._done = True
            return self._zip.flush() if self._zip is not None else None
        return self._zip.compress(chunk) if self._zip is not None else chunk


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def is_ready(state: LatestState) -> bool:
    """Ready = the service is running (state.ready, set by the service), at least one
    check has produced a result, and the inspection log is being kept."""
    return state.ready and bool(state.snapshot()) and state.store.kept


async def ready(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY].state
    if is_ready(state):
        return web.Response(text="ready\n")
    if state.ready and not state.store.kept:
        return web.Response(status=503, text=f"not ready: {log_not_kept_en(state)}\n")
    return web.Response(status=503, text="not ready: no check has finished yet\n")


def log_not_kept_en(state: LatestState) -> str:
    h = state.store
    since = h.failing_since.isoformat(timespec="seconds") if h.failing_since else "?"
    return (f"the inspection log is not being kept: writes fail since {since} "
            f"({h.last_error or 'unknown error'}); {h.unwritten} results wait and will be "
            "written with their own times when it is writable again")


async def reports_index(request: web.Request) -> web.Response:
    _require_auth(request)
    ctx = request.app[STATE_KEY]
    # the campus' month: from 00:00 to 08:00 Taipei on the 1st, UTC is still in the last
    today = local_today(ctx.now(), ctx.inventory.campus.timezone)
    this_month = f"{today.year:04d}-{today.month:02d}"
    prev = (today.replace(day=1) - dt.timedelta(days=1))
    last_month = f"{prev.year:04d}-{prev.month:02d}"
    rows = []
    for unit in ctx.inventory.units.values():
        links = " ".join(
            f'<a href="/reports/{m}/{escape(unit.id)}.{fmt}">{m} {fmt.upper()}</a>'
            for m in (this_month, last_month) for fmt in FORMATS)
        rows.append(f"<tr><td>{escape(unit.name)}</td><td>{links}</td></tr>")
    body = (f"<h1>每月維護紀錄表 <small>Monthly maintenance sheets</small></h1>"
            f"<table><tr><th>業管單位 Unit</th><th>下載 Download</th></tr>{''.join(rows)}"
            f"</table>")
    return _html("報表 Reports — camwatch", body)


async def report(request: web.Request) -> web.Response:
    _require_auth(request)
    ctx = request.app[STATE_KEY]
    month = request.match_info["month"]
    unit = request.match_info["unit"]
    fmt = request.match_info["fmt"]
    if not MONTH_RE.match(month) or not UNIT_RE.match(unit) or fmt not in FORMATS:
        raise web.HTTPNotFound(text="no such report (expected /reports/YYYY-MM/UNIT.pdf)\n")
    if unit not in ctx.inventory.units:
        raise web.HTTPNotFound(text=f"unknown unit {unit!r} (查無此業管單位)\n")
    if ctx.report_provider is None:
        raise web.HTTPServiceUnavailable(text="reports are not available in this process\n")
    try:
        data = await ctx.report_provider(month, unit, fmt)
    except (LookupError, ValueError) as exc:
        raise web.HTTPNotFound(text=f"no report: {type(exc).__name__}\n") from None
    except Exception:
        raise web.HTTPInternalServerError(
            text="the report could not be produced; see the service log\n") from None
    return web.Response(
        body=data, content_type=FORMATS[fmt],
        headers={"Content-Disposition": f'attachment; filename="{unit}-{month}.{fmt}"',
                 "Cache-Control": "no-store"})


async def landing(request: web.Request) -> web.Response:
    ctx = request.app[STATE_KEY]
    return _html("camwatch", landing_body(ctx))


def landing_body(ctx: HttpContext) -> str:
    inv = ctx.inventory
    results = ctx.state.snapshot()
    now = ctx.now()
    failing: dict[str, list[CheckResult]] = {}
    unit_answers: dict[str, dict[CheckKind, list[Status]]] = {u: {} for u in inv.units}
    for r in results:
        try:
            unit = inv.unit_of(r.device)
        except KeyError:
            continue
        unit_answers.setdefault(unit.id, {}).setdefault(r.check, []).append(r.status)
        if r.status == Status.FAIL:
            failing.setdefault(unit.id, []).append(r)

    parts = [
        "<h1>camwatch <small>監視系統維護 CCTV maintenance</small></h1>",
        f"<p class=muted>{escape(inv.campus.name)} · 更新於 updated "
        f"{escape(_local(now, inv.campus.timezone))}</p>",
        *_log_banner(ctx.state, inv.campus.timezone),
        *_reload_banner(ctx.state, inv.campus.timezone),
        '<nav><a href="/metrics">/metrics</a> · <a href="/reports">報表 reports</a> · '
        '<a href="/healthz">/healthz</a> · <a href="/ready">/ready</a></nav>',
        "<h2>附件四 三項檢查 <small>The three answers per unit</small></h2>",
        "<table><tr><th>業管單位 Unit</th>"
        + "".join(f"<th>{zh}<br><small>{en}</small></th>" for zh, en in CHECK_ZH.values())
        + "</tr>",
    ]
    for unit_id, unit in inv.units.items():
        cells = []
        for check in CHECK_ZH:
            statuses = unit_answers.get(unit_id, {}).get(check, [])
            cells.append(_answer_cell(statuses))
        parts.append(f"<tr><td>{escape(unit.name)}</td>{''.join(cells)}</tr>")
    parts.append("</table>")

    parts.append("<h2>目前異常 <small>Failing now</small></h2>")
    if not failing:
        if results:
            parts.append("<p class=ok>全部正常 All checks pass.</p>")
        else:
            parts.append("<p class=muted>尚無檢查結果 No results yet.</p>")
    for unit_id, rs in failing.items():
        unit = inv.units[unit_id]
        parts.append(f"<h3>{escape(unit.name)} <small>{escape(unit_id)}</small></h3>")
        parts.append("<table><tr><th>設備 Device</th><th>位置 Place</th><th>檢查 Check</th>"
                     "<th>原因 Reason</th><th>開始 Since</th></tr>")
        for r in sorted(rs, key=lambda r: (r.device, r.check.value)):
            since = ctx.state.status_since(r.device, r.check) or r.at
            parts.append(
                f"<tr class=fail><td>{escape(_name(inv, r.device))}<br>"
                f"<small>{escape(r.device)}</small></td>"
                f"<td>{escape(_place(inv, r.device))}</td>"
                f"<td>{CHECK_ZH[r.check][0]}<br><small>{CHECK_ZH[r.check][1]}</small></td>"
                f"<td>{escape(r.reason)}</td>"
                f"<td>{escape(_local(since, inv.campus.timezone))}</td></tr>")
        parts.append("</table>")

    parts.extend(_references_section(inv, results))

    if ctx.alerts is not None:
        alerts = list(ctx.alerts())
        parts.append("<h2>告警 <small>Alerts firing</small></h2>")
        if not alerts:
            parts.append("<p class=muted>無 None.</p>")
        else:
            parts.append("<table><tr><th>告警 Alert</th><th>摘要 Summary</th>"
                         "<th>開始 Since</th></tr>")
            for a in sorted(alerts, key=lambda a: a.starts_at):
                parts.append(f"<tr><td>{escape(a.alertname)}</td><td>{escape(a.summary)}</td>"
                             f"<td>{escape(_local(a.starts_at, inv.campus.timezone))}</td></tr>")
            parts.append("</table>")
    return "\n".join(parts)


def _references_section(inv: Inventory, results: Sequence[CheckResult]) -> list[str]:
    """Which cameras are judged against an installer's reference view (參考畫面) rather
    than a baseline learned from their own first pictures."""
    from pathlib import Path

    from probes.values import PictureValues

    held: dict[str, str] = {}
    for r in results:
        v = r.values
        if r.check == CheckKind.PICTURE and isinstance(v, PictureValues) and v.reference:
            held[r.device] = v.reference
    rows = []
    for cam_id, cam in inv.cameras.items():
        configured = Path(cam.reference_image).name if cam.reference_image else None
        label = held.get(cam_id) or configured
        if label is None:
            continue
        source = ("清冊 inventory" if configured is not None and label == configured
                  else "指令設定 camwatch baseline set")
        state = "使用中 in use" if cam_id in held else "待第一次畫面檢查 from the next check"
        rows.append(f"<tr><td>{escape(cam.name)}<br><small>{escape(cam_id)}</small></td>"
                    f"<td>{escape(_place(inv, cam_id))}</td><td>{escape(label)}</td>"
                    f"<td>{source}</td><td>{state}</td></tr>")
    out = ["<h2>參考畫面 <small>Reference views</small></h2>"]
    if not rows:
        out.append("<p class=muted>無 None: each camera is judged against the baseline "
                   "learned from its own first pictures.</p>")
        return out
    out.append("<table><tr><th>攝影機 Camera</th><th>位置 Place</th><th>參考畫面 Reference"
               "</th><th>來源 Source</th><th>狀態 State</th></tr>")
    out.extend(rows)
    out.append("</table>")
    return out


def _log_banner(state: LatestState, tz: str) -> list[str]:
    """Said first when the inspection log is not being kept (a full disk)."""
    h = state.store
    out = []
    if not h.kept and h.failing_since is not None:
        oldest = (f"，最早一筆 {escape(_local(h.oldest_unwritten_at, tz))}"
                  if h.oldest_unwritten_at else "")
        out.append(
            "<div class=fail role=alert><h2>檢查紀錄目前無法寫入 "
            "<small>The inspection log is not being kept</small></h2>"
            f"<p>自 {escape(_local(h.failing_since, tz))} 起寫入失敗"
            f"（{escape(h.last_error or '原因不明')}），請檢查磁碟空間與資料庫。"
            f"{h.unwritten} 筆檢查結果等待寫入{oldest}，恢復後會依原本的時間補寫。<br>"
            f"<small>Writes fail since {escape(_local(h.failing_since, tz))}; "
            f"{h.unwritten} results wait and will be written with their own times.</small>"
            "</p></div>")
    if h.gap_since is not None or h.dropped_total:
        out.append(
            f"<p class=fail>已有 {h.dropped_total} 筆檢查結果未能保存"
            + (f"（自 {escape(_local(h.gap_since, tz))} 起）" if h.gap_since else "")
            + "：月報將於該時段註明「紀錄中斷」。"
            f"<small>{h.dropped_total} results could not be kept; the sheet marks the "
            "gap.</small></p>")
    return out


def _reload_banner(state: LatestState, tz: str) -> list[str]:
    """A refused reload: what was wrong, and that the previous inventory still runs."""
    st = state.reload
    out = []
    if not st.success:
        when = (escape(_local(dt.datetime.fromtimestamp(st.last_attempt_at, dt.UTC), tz))
                if st.last_attempt_at else "")
        items = "".join(f"<li>{escape(e)}</li>" for e in st.errors[:20])
        more = f"<li>… {len(st.errors) - 20} more</li>" if len(st.errors) > 20 else ""
        out.append(
            "<div class=fail role=alert><h2>清冊或設定重新載入失敗 "
            "<small>Reload refused</small></h2>"
            f"<p>{when}（{escape(st.source)}）：新的清冊或設定有錯誤，未套用；"
            "仍使用先前的清冊與設定。修正後再送一次 SIGHUP 或 POST /admin/reload。"
            f"<br><small>The previous inventory and settings stay in use.</small></p>"
            f"<ul>{items}{more}</ul></div>")
    elif st.warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in st.warnings[:20])
        out.append(f"<div class=muted><p>重新載入完成，但請注意 Reloaded, with caveats:</p>"
                   f"<ul>{items}</ul></div>")
    return out


def _answer_cell(statuses: list[Status]) -> str:
    if not statuses:
        return "<td class=muted>— <small>未檢查 not checked</small></td>"
    fails = sum(1 for s in statuses if s == Status.FAIL)
    unknown = sum(1 for s in statuses if s == Status.UNKNOWN)
    if fails:
        return f"<td class=fail>否 <small>No · {fails} 項異常 failing</small></td>"
    if unknown == len(statuses):
        return f"<td class=muted>未知 <small>Unknown · {unknown} 項</small></td>"
    if unknown:
        return f"<td class=muted>是 <small>Yes · {unknown} 項未知 unknown</small></td>"
    return "<td class=ok>是 <small>Yes</small></td>"


def _name(inv: Inventory, device: str) -> str:
    if device in inv.recorders:
        return inv.recorders[device].name
    if device in inv.cameras:
        return inv.cameras[device].name
    return device


def _place(inv: Inventory, device: str) -> str:
    try:
        return inv.place_of(device)
    except KeyError:
        return ""


def _local(t: dt.datetime, tz: str) -> str:
    try:
        from zoneinfo import ZoneInfo

        t = t.astimezone(ZoneInfo(tz))
    except Exception:  # unknown zone: show UTC
        t = t.astimezone(dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M")


PAGE = """<!doctype html>
<html lang="zh-Hant"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:"Noto Sans CJK TC","Noto Sans TC",sans-serif;margin:2em;color:#222;
max-width:72em}}
table{{border-collapse:collapse;margin:.5em 0 1.5em}}
th,td{{border:1px solid #ccc;padding:.35em .7em;text-align:left;vertical-align:top}}
th{{background:#f3f3f3}} small{{color:#666;font-weight:normal}}
.fail{{background:#fde8e8}} td.fail{{color:#a00;font-weight:bold}}
.ok{{color:#060;font-weight:bold}} .muted{{color:#777}}
</style></head><body>
{body}
</body></html>
"""


def _html(title: str, body: str) -> web.Response:
    return web.Response(text=PAGE.format(title=escape(title), body=body),
                        content_type="text/html", charset="utf-8")


async def admin_baseline_reset(request: web.Request) -> web.Response:
    """Forget one camera's picture baselines (day and night); the next picture checks
    learn them again. JSON reply; 404 for a camera not in the inventory."""
    _require_auth(request, "/admin")
    _same_origin(request)
    ctx = request.app[STATE_KEY]
    camera = request.match_info["camera"]
    inv = ctx.inventory
    if camera not in inv.cameras:
        what = ("is a recorder, not a camera (主機沒有畫面基準)" if camera in inv.recorders
                else "is not in the inventory (查無此攝影機)")
        return web.json_response({"error": "unknown camera", "camera": camera,
                                  "message": f"{camera} {what}"}, status=404)
    if ctx.baseline_reset is None:
        return web.json_response(
            {"error": "not available", "camera": camera,
             "message": "this process keeps no picture baselines"}, status=503)
    try:
        done = await ctx.baseline_reset(camera)
    except Exception:
        return web.json_response(
            {"error": "failed", "camera": camera,
             "message": "the baseline could not be reset; see the service log"}, status=500)
    cam = inv.cameras[camera]
    return web.json_response({"camera": camera, "name": cam.name, "place": _place(inv, camera),
                              **done})


def _camera_or_404(ctx: HttpContext, camera: str) -> web.Response | None:
    inv = ctx.inventory
    if camera in inv.cameras:
        return None
    what = ("is a recorder, not a camera (主機沒有畫面基準)" if camera in inv.recorders
            else "is not in the inventory (查無此攝影機)")
    return web.json_response({"error": "unknown camera", "camera": camera,
                              "message": f"{camera} {what}"}, status=404)


async def admin_baseline_show(request: web.Request) -> web.Response:
    """What is held of one camera's picture baselines: the frame size seen, each mode
    learned or not, and which is an installer's reference. JSON; no picture."""
    _require_auth(request, "/admin")
    ctx = request.app[STATE_KEY]
    camera = request.match_info["camera"]
    missing = _camera_or_404(ctx, camera)
    if missing is not None:
        return missing
    if ctx.baseline_describe is None:
        return web.json_response(
            {"error": "not available", "camera": camera,
             "message": "this process keeps no picture baselines"}, status=503)
    try:
        info = await ctx.baseline_describe(camera)
    except Exception:
        return web.json_response(
            {"error": "failed", "camera": camera,
             "message": "the baseline could not be read; see the service log"}, status=500)
    inv = ctx.inventory
    return web.json_response({"camera": camera, "name": inv.cameras[camera].name,
                              "place": _place(inv, camera), **info})


async def admin_baseline_reference(request: web.Request) -> web.Response:
    """Make a known-good view (its figures and 32x18 thumbnail, scored by `camwatch
    baseline set`) the camera's baseline for its mode."""
    _require_auth(request, "/admin")
    _same_origin(request)
    ctx = request.app[STATE_KEY]
    camera = request.match_info["camera"]
    missing = _camera_or_404(ctx, camera)
    if missing is not None:
        return missing
    if ctx.baseline_set is None:
        return web.json_response(
            {"error": "not available", "camera": camera,
             "message": "this process keeps no picture baselines"}, status=503)
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return web.json_response({"error": "bad request", "camera": camera,
                                  "message": "the body is not JSON"}, status=400)
    sent = body.get("baseline") if isinstance(body, dict) else None
    if not isinstance(sent, dict):
        return web.json_response({"error": "bad request", "camera": camera,
                                  "message": "expected {\"baseline\": {...}}"}, status=400)
    try:
        done = await ctx.baseline_set(camera, sent)
    except ValueError as exc:  # refused (camwatch.baselines.BaselineRefused): says why
        return web.json_response({"error": "refused", "camera": camera, "message": str(exc)},
                                 status=422)
    except Exception:
        log.exception("setting the reference baseline of %s failed", camera)
        return web.json_response(
            {"error": "failed", "camera": camera,
             "message": "the reference could not be set; see the service log"}, status=500)
    inv = ctx.inventory
    return web.json_response({"camera": camera, "name": inv.cameras[camera].name,
                              "place": _place(inv, camera), **done})


async def admin_reload(request: web.Request) -> web.Response:
    """Read inventory and settings again (as SIGHUP does)."""
    _require_auth(request, "/admin")
    _same_origin(request)
    ctx = request.app[STATE_KEY]
    if ctx.reload is None:
        return web.json_response({"ok": False, "errors": ["this process cannot reload"]},
                                 status=503)
    result = await ctx.reload("POST /admin/reload")
    return web.json_response(result, status=200 if result.get("ok") else 422,
                             dumps=lambda o: json.dumps(o, ensure_ascii=False))


def _same_origin(request: web.Request) -> None:
    """A browser that holds basic-auth credentials must not be made to POST here by
    another site: refuse a request whose Origin is not this server."""
    origin = request.headers.get("Origin")
    if origin is None:
        return
    host = origin.split("://", 1)[-1].rstrip("/")
    if host != request.host:
        raise web.HTTPForbidden(text="cross-origin request refused\n")


# -- the app and the server --------------------------------------------------------------


def build_app(settings: Settings, state: LatestState,
              inventory: Inventory | Callable[[], Inventory], *,
              report_provider: ReportProvider | None = None,
              alerts: AlertsSource | None = None,
              now: Callable[[], dt.datetime] = clock_now,
              baseline_reset: BaselineReset | None = None,
              reload: Reload | None = None,
              baseline_describe: BaselineDescribe | None = None,
              baseline_set: BaselineSet | None = None,
              ) -> web.Application:
    app = web.Application(middlewares=[security_headers], client_max_size=64 * 1024)
    app[STATE_KEY] = HttpContext(settings, state, inventory, report_provider, alerts, now,
                                 baseline_reset, reload, baseline_describe, baseline_set)
    app.router.add_get("/", landing)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/ready", ready)
    app.router.add_get("/reports", reports_index)
    app.router.add_get("/reports/", reports_index)
    app.router.add_get(r"/reports/{month}/{unit}.{fmt:[a-z]+}", report)
    app.router.add_post("/admin/baselines/{camera}/reset", admin_baseline_reset)
    app.router.add_get("/admin/baselines/{camera}", admin_baseline_show)
    app.router.add_post("/admin/baselines/{camera}/reference", admin_baseline_reference)
    app.router.add_post("/admin/reload", admin_reload)
    return app


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.tls_cert is None and settings.tls_key is None:
        return None
    if settings.tls_cert is None or settings.tls_key is None:
        raise ValueError("TLS needs both CAMWATCH_TLS_CERT and CAMWATCH_TLS_KEY")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(settings.tls_cert), str(settings.tls_key))
    return ctx


class HttpServer:
    """Start/stop the server inside a running event loop.

        server = HttpServer(settings, state, inventory, report_provider=...)
        await server.start()      # server.url -> "http://127.0.0.1:9745"
        ...
        await server.stop()

    A listen port of 0 picks a free port (tests); `server.port` tells which.
    """

    def __init__(self, settings: Settings, state: LatestState,
                 inventory: Inventory | Callable[[], Inventory], **kwargs: Any) -> None:
        self.settings = settings
        self.app = build_app(settings, state, inventory, **kwargs)
        self._runner: web.AppRunner | None = None
        self.port: int = settings.listen_port
        self.host: str = settings.listen_host
        self.ssl = tls_context(settings)

    def reconfigure(self, settings: Settings) -> None:
        """Reloaded settings: authentication applies to the next request. (The address
        and TLS stay until a restart.)"""
        self.app[STATE_KEY].settings = settings

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl)
        await site.start()
        addresses = self._runner.addresses  # the bound (host, port, ...) of each socket
        if addresses:
            self.port = int(addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
