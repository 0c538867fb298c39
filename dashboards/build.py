"""Writes camwatch's Grafana dashboards (dashboards/*.json) from one description.

    .venv/bin/python dashboards/build.py          # rewrite the JSON files
    .venv/bin/python dashboards/build.py --check  # exit 1 if a file is out of date

The JSON files are what Grafana provisions (dashboards/provisioning/dashboards.yml);
this script keeps ids, grid positions and datasource references consistent. Edit here,
run it, commit both. tests/test_dashboards_*.py type-check the JSON against
@grafana/schema and run every query against a real Prometheus.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from probes.result import CHECK_TITLES, CheckKind

HERE = Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "${datasource}"}

# The descriptive labels of a device, joined onto any per-device series.
INFO = ("max by (device, name, location, unit, unit_name, recorder, kind) "
        "(camwatch_device_info{unit=~\"$unit\"})")
CHECKS = [(c.value, CHECK_TITLES[c]) for c in CheckKind]  # the three questions of 附件四
YES_NO = [{"type": "value", "options": {
    "1": {"text": "是 正常", "color": "green", "index": 0},
    "0": {"text": "否 異常", "color": "red", "index": 1}}}]


class Board:
    def __init__(self, uid: str, title: str, description: str, tags: list[str]) -> None:
        self.uid = uid
        self.title = title
        self.description = description
        self.tags = tags
        self.panels: list[dict[str, Any]] = []
        self.variables: list[dict[str, Any]] = [{
            "name": "datasource", "label": "Prometheus", "type": "datasource",
            "query": "prometheus", "hide": 0, "refresh": 1,
            "options": [], "includeAll": False, "multi": False,
        }]
        self.links: list[dict[str, Any]] = []
        self._x = 0
        self._y = 0
        self._row_h = 0

    def variable(self, name: str, label: str, query: str, *, multi: bool = False,
                 include_all: bool = False) -> None:
        v: dict[str, Any] = {
            "name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": query, "refId": f"{name}-var"},
            "definition": query, "refresh": 2, "sort": 1, "hide": 0,
            "multi": multi, "includeAll": include_all, "options": [],
        }
        if include_all:
            v["allValue"] = ".*"
            v["current"] = {"text": "All", "value": "$__all", "selected": True}
        self.variables.append(v)

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append({"type": "row", "title": title, "collapsed": False,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self._y}, "panels": []})
        self._y += 1

    def _newline(self) -> None:
        if self._x:
            self._y += self._row_h
            self._x = 0
            self._row_h = 0

    def panel(self, kind: str, title: str, targets: list[dict[str, Any]], *, w: int = 12,
              h: int = 8, description: str = "", unit: str | None = None,
              options: dict[str, Any] | None = None, mappings: list[Any] | None = None,
              thresholds: list[tuple[float | None, str]] | None = None,
              overrides: list[dict[str, Any]] | None = None,
              transformations: list[dict[str, Any]] | None = None,
              min_: float | None = None) -> None:
        if self._x + w > 24:
            self._newline()
        defaults: dict[str, Any] = {}
        if unit:
            defaults["unit"] = unit
        if mappings:
            defaults["mappings"] = mappings
        if min_ is not None:
            defaults["min"] = min_
        if thresholds:
            defaults["thresholds"] = {"mode": "absolute", "steps": [
                {"value": v, "color": c} for v, c in thresholds]}
        p: dict[str, Any] = {
            "type": kind, "title": title, "description": description, "datasource": DS,
            "gridPos": {"h": h, "w": w, "x": self._x, "y": self._y},
            "targets": [{"datasource": DS, "refId": chr(ord("A") + i), **t}
                        for i, t in enumerate(targets)],
            "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
            "options": options or {},
        }
        if transformations:
            p["transformations"] = transformations
        self.panels.append(p)
        self._x += w
        self._row_h = max(self._row_h, h)

    def build(self) -> dict[str, Any]:
        for i, p in enumerate(self.panels, start=1):
            p["id"] = i
        return {
            "uid": self.uid, "title": self.title, "description": self.description,
            "tags": self.tags, "editable": True, "graphTooltip": 1,
            "schemaVersion": 39, "version": 1, "refresh": "1m",
            "time": {"from": "now-24h", "to": "now"}, "timezone": "browser",
            "fiscalYearStartMonth": 0, "liveNow": False, "weekStart": "",
            "timepicker": {}, "annotations": {"list": []},
            "templating": {"list": self.variables}, "links": self.links,
            "panels": self.panels,
        }


def q(expr: str, legend: str = "", *, instant: bool = False, table: bool = False
      ) -> dict[str, Any]:
    t: dict[str, Any] = {"expr": expr, "legendFormat": legend or "__auto", "range": not instant,
                         "instant": instant}
    if table:
        t["format"] = "table"
    return t


def nav_links(b: Board) -> None:
    b.links = [{"title": "camwatch", "type": "dashboards", "tags": ["camwatch"],
                "asDropdown": True, "includeVars": False, "keepTime": True,
                "targetBlank": False, "icon": "external link", "tooltip": "", "url": ""}]


# --- campus overview --------------------------------------------------------------------


def overview() -> dict[str, Any]:
    b = Board("camwatch-overview", "camwatch 校園總覽 Campus overview",
              "附件四 三項檢查 per custodian unit, and what is failing now, with place and "
              "since when.", ["camwatch"])
    nav_links(b)
    b.variable("unit", "業管單位 Unit", "label_values(camwatch_device_info, unit)",
               multi=True, include_all=True)

    b.row("附件四 三項檢查 The three answers")
    for check, zh in CHECKS:
        b.panel("stat", f"{zh}（異常數）", [q(
            f'count((camwatch_check_ok{{check="{check}"}} == 0) * on (device) group_left() '
            f'{INFO}) or vector(0)', zh, instant=True)],
            w=6, h=5, description=f"Devices whose {check} check fails now.",
            thresholds=[(None, "green"), (1, "red")],
            options={"colorMode": "background", "graphMode": "none",
                     "reduceOptions": {"calcs": ["lastNotNull"], "values": False}})
    b.panel("stat", "未知 Unknown", [q(
        f'sum(camwatch_check_unknown * on (device) group_left() {INFO}) or vector(0)',
        "unknown", instant=True)], w=6, h=5,
        description="Planned checks with no answer (device unreachable, not yet run).",
        thresholds=[(None, "green"), (1, "orange")],
        options={"colorMode": "background", "graphMode": "none",
                 "reduceOptions": {"calcs": ["lastNotNull"], "values": False}})

    unit_targets = [q(
        f'min by (unit_name) (camwatch_check_ok{{check="{check}"}} * on (device) '
        f'group_left(unit_name) {INFO})', zh, instant=True, table=True)
        for check, zh in CHECKS]
    b.panel("table", "各業管單位 Per unit（是 = all pass）", unit_targets, w=24, h=7,
            description="1 (是) when every device of the unit passes the check, 0 (否) when "
                        "any fails.",
            mappings=YES_NO, options={"showHeader": True, "cellHeight": "sm"},
            transformations=[
                {"id": "merge", "options": {}},
                {"id": "organize", "options": {
                    "excludeByName": {"Time": True},
                    "renameByName": {"unit_name": "業管單位 Unit",
                                     "Value #A": CHECKS[0][1], "Value #B": CHECKS[1][1],
                                     "Value #C": CHECKS[2][1]}}}],
            overrides=[{"matcher": {"id": "byRegexp", "options": "^(監視|錄影|視訊).*"},
                        "properties": [{"id": "custom.cellOptions",
                                        "value": {"type": "color-background"}}]}])

    b.row("目前異常 Failing now")
    b.panel("table", "目前異常設備 Failing now (place, since when)", [q(
        f'1000 * (camwatch_check_status_since_timestamp_seconds and on (device, check) '
        f'(camwatch_check_ok == 0)) * on (device) group_left(name, location, unit_name, '
        f'recorder) {INFO}', instant=True, table=True)], w=24, h=10,
        description="Each failing check with the device's place and when it began failing.",
        unit="dateTimeAsLocal", options={"showHeader": True,
                                          "sortBy": [{"displayName": "開始 Since",
                                                      "desc": False}]},
        transformations=[{"id": "organize", "options": {
            "excludeByName": {"Time": True, "__name__": True},
            "indexByName": {"unit_name": 0, "location": 1, "name": 2, "device": 3,
                            "check": 4, "Value": 5},
            "renameByName": {"unit_name": "業管單位 Unit", "location": "位置 Place",
                             "name": "設備 Device", "device": "id", "check": "檢查 Check",
                             "recorder": "主機 Recorder", "Value": "開始 Since"}}}])
    b.panel("table", "異常原因代碼 Findings", [q(
        f'camwatch_finding * on (device) group_left(name, location, unit_name) {INFO}',
        instant=True, table=True)], w=24, h=8,
        description="The fault codes behind the failures (one row per finding).",
        transformations=[{"id": "organize", "options": {
            "excludeByName": {"Time": True, "__name__": True, "Value": True},
            "renameByName": {"unit_name": "業管單位 Unit", "location": "位置 Place",
                             "name": "設備 Device", "code": "代碼 Code",
                             "subject": "部件 Part", "check": "檢查 Check"}}}])

    b.row("趨勢 Trend")
    b.panel("timeseries", "異常數 Failing checks over time", [q(
        f'count by (check) ((camwatch_check_ok == 0) * on (device) group_left() {INFO}) '
        f'or sum by (check) (camwatch_check_ok * 0)', "{{check}}")], w=12, h=8, min_=0)
    b.panel("timeseries", "探測耗時 Probe time by driver", [q(
        "sum by (driver) (rate(camwatch_probe_duration_seconds_sum[$__rate_interval])) / "
        "sum by (driver) (rate(camwatch_probe_duration_seconds_count[$__rate_interval]))",
        "{{driver}}")], w=12, h=8, unit="s", min_=0)
    return b.build()


# --- device page ------------------------------------------------------------------------


def device() -> dict[str, Any]:
    b = Board("camwatch-device", "camwatch 設備 Device",
              "One recorder or camera: its three answers, picture sharpness against its own "
              "baseline, uptime and reboots, clock offset and footage age.", ["camwatch"])
    nav_links(b)
    b.variable("device", "設備 Device", "label_values(camwatch_device_info, device)")
    dev = 'device="$device"'

    b.panel("table", "設備 Device", [q(f"camwatch_device_info{{{dev}}}", instant=True,
                                       table=True)], w=24, h=4,
            transformations=[{"id": "organize", "options": {
                "excludeByName": {"Time": True, "__name__": True, "Value": True},
                "renameByName": {"name": "名稱 Name", "location": "位置 Place",
                                 "unit_name": "業管單位 Unit", "recorder": "主機 Recorder",
                                 "model": "型號 Model", "firmware": "韌體 Firmware"}}}])
    b.panel("stat", "附件四 三項檢查", [q(f"camwatch_check_ok{{{dev}}}", "{{check}}",
                                          instant=True)], w=12, h=5, mappings=YES_NO,
            thresholds=[(None, "red"), (1, "green")],
            options={"colorMode": "background", "graphMode": "none", "textMode": "value_and_name",
                     "reduceOptions": {"calcs": ["lastNotNull"], "values": False}})
    b.panel("stat", "運作時間 Uptime", [q(f"camwatch_device_uptime_seconds{{{dev}}}",
                                          instant=True)], w=6, h=5, unit="s",
            options={"graphMode": "none",
                     "reduceOptions": {"calcs": ["lastNotNull"], "values": False}})
    b.panel("stat", "重新開機 Reboots in range", [q(
        f"resets(camwatch_device_uptime_seconds{{{dev}}}[$__range])", instant=True)],
        w=6, h=5, thresholds=[(None, "green"), (1, "orange")],
        description="Times the reported uptime went down in the selected range.",
        options={"colorMode": "background", "graphMode": "none",
                 "reduceOptions": {"calcs": ["lastNotNull"], "values": False}})

    b.panel("timeseries", "清晰度與基準 Sharpness vs its baseline", [
        q(f"camwatch_picture_sharpness{{{dev}}}", "清晰度 sharpness"),
        q(f"camwatch_picture_baseline_sharpness{{{dev}}}", "基準 baseline")],
        w=12, h=8, min_=0,
        description="Variance of the Laplacian of each frame against the camera's own "
                    "day/night baseline; far below the baseline means blurred.")
    b.panel("timeseries", "亮度 Brightness", [
        q(f"camwatch_picture_brightness{{{dev}}}", "亮度 brightness")], w=12, h=8, min_=0)
    b.panel("timeseries", "運作時間 Uptime (drops are reboots)", [
        q(f"camwatch_device_uptime_seconds{{{dev}}}", "uptime")], w=12, h=8, unit="s")
    b.panel("timeseries", "時間誤差 Clock offset", [
        q(f"camwatch_clock_offset_seconds{{{dev}}}", "offset")], w=12, h=8, unit="s",
        description="Device clock minus camwatch's clock; beyond ±30 s is ClockDrift.")
    b.panel("timeseries", "最新錄影距今 Newest footage age", [
        q(f"camwatch_recording_newest_age_seconds{{{dev}}}", "age")], w=12, h=8, unit="s",
        min_=0, description="How old the newest recorded footage is; growing means "
                            "recording stopped.")
    b.panel("table", "異常原因 Findings", [q(
        f"camwatch_finding{{{dev}}} or on (device) (camwatch_check_ok{{{dev}}} * 0)",
        instant=True, table=True)], w=12, h=8,
        transformations=[{"id": "organize", "options": {
            "excludeByName": {"Time": True, "__name__": True, "Value": True}}}])
    return b.build()


# --- recorder storage & retention -------------------------------------------------------


def storage() -> dict[str, Any]:
    b = Board("camwatch-storage", "camwatch 儲存與保存期限 Storage & retention",
              "Days of footage kept against the 30-day minimum (rule 八(三)) and the 365-day "
              "maximum (rule 八(四)), and disk health per recorder.", ["camwatch"])
    nav_links(b)
    b.variable("recorder", "主機 Recorder",
               "label_values(camwatch_retention_min_seconds, recorder)",
               multi=True, include_all=True)
    rec = 'device=~"$recorder"'
    min_by_dev = ('label_replace(camwatch_retention_min_seconds{recorder=~"$recorder"}, '
                  '"device", "$1", "recorder", "(.*)")')
    max_by_dev = ('label_replace(camwatch_retention_max_seconds{recorder=~"$recorder"}, '
                  '"device", "$1", "recorder", "(.*)")')
    hold_by_dev = ('label_replace(camwatch_legal_hold{recorder=~"$recorder"} == 1, '
                   '"device", "$1", "recorder", "(.*)")')

    stat_opts = {"colorMode": "background", "graphMode": "none",
                 "reduceOptions": {"calcs": ["lastNotNull"], "values": False}}
    b.panel("stat", "保存不足 Kept too short", [q(
        f"count(camwatch_retention_seconds{{{rec}}} < on (device) {min_by_dev}) or vector(0)",
        instant=True)], w=8, h=5, thresholds=[(None, "green"), (1, "red")], options=stat_opts,
        description="Recorders keeping less than the minimum (default 30 days).")
    b.panel("stat", "保存過久 Kept too long", [q(
        f"count((camwatch_retention_longest_seconds{{{rec}}} > on (device) {max_by_dev}) "
        f"unless on (device) {hold_by_dev}) or vector(0)", instant=True)], w=8, h=5,
        thresholds=[(None, "green"), (1, "orange")], options=stat_opts,
        description="Recorders keeping footage past the maximum without a legal hold.")
    b.panel("stat", "硬碟異常 Disks not healthy", [q(
        f"count(camwatch_disk_ok{{{rec}}} == 0) or vector(0)", instant=True)], w=8, h=5,
        thresholds=[(None, "green"), (1, "red")], options=stat_opts)

    b.panel("bargauge", "保存天數 Days kept (min 30 / max 365)", [q(
        f"camwatch_retention_seconds{{{rec}}} / 86400", "{{device}}", instant=True)],
        w=12, h=9, unit="d", min_=0,
        thresholds=[(None, "red"), (30, "green"), (365, "orange")],
        options={"orientation": "horizontal", "displayMode": "basic",
                 "reduceOptions": {"calcs": ["lastNotNull"], "values": False}},
        description="Oldest footage of the channel keeping least, in days; red below the "
                    "minimum, orange past the maximum.")
    b.panel("table", "保存期限符合 Retention compliance", [
        q(f"camwatch_retention_seconds{{{rec}}} / 86400", instant=True, table=True),
        q(f"{min_by_dev} / 86400", instant=True, table=True),
        q(f"{max_by_dev} / 86400", instant=True, table=True),
        q(f"camwatch_retention_seconds{{{rec}}} >= bool on (device) {min_by_dev}",
          instant=True, table=True)],
        w=12, h=9, unit="d",
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {
                "excludeByName": {"Time": True, "recorder": True},
                "renameByName": {"device": "主機 Recorder", "Value #A": "保存天數 Days kept",
                                 "Value #B": "最少 Min", "Value #C": "最多 Max",
                                 "Value #D": "符合最少 Meets min"}}}],
        overrides=[{"matcher": {"id": "byName", "options": "符合最少 Meets min"},
                    "properties": [{"id": "unit", "value": "none"},
                                   {"id": "mappings", "value": YES_NO}]}])

    b.panel("timeseries", "保存天數趨勢 Days kept over time", [
        q(f"camwatch_retention_seconds{{{rec}}} / 86400", "{{device}}"),
        q(f"min({min_by_dev}) / 86400", "最少 min")], w=12, h=8, unit="d", min_=0)
    b.panel("timeseries", "最新錄影距今 Newest footage age", [
        q(f"camwatch_recording_newest_age_seconds{{{rec}}}", "{{device}}")],
        w=12, h=8, unit="s", min_=0)
    b.panel("table", "硬碟 Disks", [
        q(f"camwatch_disk_ok{{{rec}}}", instant=True, table=True),
        q(f"camwatch_disk_free_bytes{{{rec}}}", instant=True, table=True),
        q(f"camwatch_disk_capacity_bytes{{{rec}}}", instant=True, table=True)],
        w=24, h=8,
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {
                "excludeByName": {"Time": True},
                "renameByName": {"device": "主機 Recorder", "disk": "硬碟 Disk",
                                 "Value #A": "正常 Healthy", "Value #B": "可用 Free",
                                 "Value #C": "容量 Capacity"}}}],
        overrides=[
            {"matcher": {"id": "byName", "options": "正常 Healthy"},
             "properties": [{"id": "mappings", "value": YES_NO}]},
            {"matcher": {"id": "byRegexp", "options": "^(可用|容量).*"},
             "properties": [{"id": "unit", "value": "bytes"}]}])
    return b.build()


DASHBOARDS = {"campus-overview.json": overview, "device.json": device,
              "storage-retention.json": storage}


def render(fn: Any) -> str:
    return json.dumps(fn(), ensure_ascii=False, indent=2) + "\n"


def main(argv: list[str]) -> int:
    stale = []
    for name, fn in DASHBOARDS.items():
        path = HERE / name
        text = render(fn)
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"out of date: {', '.join(stale)} (run dashboards/build.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
