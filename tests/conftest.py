"""Shared fixtures: a small inventory, the demo passwords in the environment, and (when
the simulator is present) a small simulated campus served on random loopback addresses."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from camwatch import clock
from inventory.models import Inventory

# Hypothesis times each example (a 200 ms deadline) and the generation of its data (the
# too_slow health check): on a loaded 2-core CI machine a stall fails a test whose code is
# right. What a fuzz test proves is what every example does, not how fast: no deadline,
# no timing health check, for every test (one that sets its own health checks adds
# too_slow itself).
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"
DEMO_ENV = ("CAMWATCH_DEMO_NVR_PASSWORD", "CAMWATCH_DEMO_CAM_PASSWORD",
            "CAMWATCH_DEMO_SNMP_COMMUNITY")


# The tests whose outcome can depend on the hour or the date. `make test-clock` runs them
# again with camwatch's clock pinned (CAMWATCH_CLOCK) to three instants (see the
# Makefile). Not here: the tests that start the real Prometheus or Alertmanager. Those Go
# binaries keep the host's clock; Alertmanager drops an alert whose endsAt is already in
# its past and Prometheus compares time() with camwatch's timestamps, so a pinned
# camwatch would only measure the gap between two clocks. Their one hour-dependent part,
# the simulated scenes, is pinned with `scene_time` instead.
CLOCK_MODULES: dict[str, str] = {
    "test_clock": "the clock itself, and CAMWATCH_CLOCK across processes",
    "test_simulator_scenes": "scene day/night from the device's local time",
    "test_picture_probe": "picture probes and baselines against day and night scenes",
    "test_picture_frames": "frames grabbed from the simulated cameras",
    "test_baseline_reset": "per-mode (day/night) baselines, their reset",
    "test_probes_simulated": "device clocks and drift, newest-footage ages, 24 h gap windows "
                             "across midnight, retention days, legal holds until a date",
    "test_simulator_faults": "retention, gaps and clock-drift faults in device time",
    "test_simulator_protocols": "device time and footage searches in local time",
    "test_simulator_onvif": "device time and recording summaries",
    "test_simulator_fixtures": "WS-Security timestamps and device replies with times",
    "test_store_log": "inspection periods, month boundaries, retention purge ages",
    "test_store_durability": "the log's times across a restart",
    "test_report_sheet": "the sheet's month, periods and 'today'",
    "test_report_command": "`camwatch report` and its default month",
    "test_report_helpers": "month parsing relative to today",
    "test_service_core": "housekeeping after local midnight",
    "test_service_commands": "`camwatch check` / `run` as subprocesses on the same clock",
    "test_service_tui": "how long ago a fault began",
    "test_exporters_http": "the reports page's this month / last month",
    "test_exporters_landing": "the landing page's local time",
    "test_inventory_cli": "registry export: legal holds still in force today",
    "test_trust_footage": "the picture check of a running service, day or night",
    "test_simulator_newcomer": "simulate, check and run as three processes on one clock "
                               "(device clocks, footage ages and pictures agree)",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.stem in CLOCK_MODULES:
            item.add_marker(pytest.mark.clock)


def env_without_settings() -> dict[str, str]:
    """This environment without camwatch's CAMWATCH_* settings (a subprocess starts from
    the defaults), but with camwatch's clock: CAMWATCH_CLOCK is not a setting, and a
    `camwatch` subprocess must run on the same clock as the test and its simulator."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("CAMWATCH_") or k == clock.ENV}


@pytest.fixture(autouse=True)
def _pinned_clock_restarts_per_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `make test-clock` CAMWATCH_CLOCK pins camwatch's clock (e.g. to Taipei 23:58
    on the last day of a month). Every test then starts at that very instant, however long
    the tests before it took, and the processes it starts (`camwatch run`, `camwatch
    simulate`) read the same clock to the millisecond: the anchored value is exported."""
    pinned = clock.default_clock()
    if isinstance(pinned, clock.PinnedClock):
        monkeypatch.setenv(clock.ENV, clock.PinnedClock.starting_now(pinned.start).env_value())


@pytest.fixture
def demo_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Random demo credentials in the environment (never fixed strings in the tests)."""
    values = {name: secrets.token_urlsafe(12) for name in DEMO_ENV}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def small_inventory_data(base: str = "127.20") -> dict[str, object]:
    """Two units, two recorders (an NVR with IP cameras, a DVR with analog ones)."""
    person = {"title": "組長", "name": "王小明"}
    nvr_cred = {"username": "admin", "password": "${CAMWATCH_DEMO_NVR_PASSWORD}"}
    cam_cred = {"username": "admin", "password": "${CAMWATCH_DEMO_CAM_PASSWORD}"}

    def cam(cid: str, rec: str, ch: int, area: str, ip: bool) -> dict[str, object]:
        d: dict[str, object] = {
            "id": cid, "name": f"1樓{area}", "kind": "ip" if ip else "analog",
            "recorder": rec, "channel": ch,
            "location": {"building": "teach", "floor": "1樓", "area": area},
            "position": f"教學大樓1樓{area}鏡頭",
        }
        if ip:
            d["address"] = {"host": f"{base}.9.{ch}", "http_port": 18080}
            d["credentials"] = cam_cred
        return d

    return {
        "campus": {"id": "test", "name": "測試國民小學"},
        "units": {
            "general": {"id": "general", "name": "總務處", "manager": person, "head": person},
            "student": {"id": "student", "name": "學務處(學安室)", "manager": person,
                        "head": person},
        },
        "buildings": {"teach": {"id": "teach", "name": "教學大樓", "floors": ["1樓"]}},
        "machine_rooms": {"room1": {"id": "room1", "name": "教學大樓1樓機房",
                                    "building": "teach"}},
        "recorders": {
            "nvr1": {"id": "nvr1", "name": "教學大樓1樓主機", "unit": "general",
                     "machine_room": "room1", "protocols": ["onvif"],
                     "address": {"host": f"{base}.1.1", "http_port": 18080},
                     "credentials": nvr_cred, "channels": 8},
            "dvr2": {"id": "dvr2", "name": "川堂主機", "unit": "student", "kind": "dvr",
                     "machine_room": "room1", "protocols": ["onvif"],
                     "address": {"host": f"{base}.2.1", "http_port": 18080},
                     "credentials": nvr_cred, "channels": 4},
        },
        "cameras": {
            "cam-east": cam("cam-east", "nvr1", 1, "走廊東側", True),
            "cam-west": cam("cam-west", "nvr1", 2, "走廊西側", True),
            "cam-gate": cam("cam-gate", "dvr2", 1, "川堂", False),
            "cam-stair": cam("cam-stair", "dvr2", 2, "樓梯口", False),
        },
    }


@pytest.fixture
def small_inventory() -> Inventory:
    return Inventory.model_validate(small_inventory_data())


@pytest.fixture
def example_inventory_path() -> Iterator[Path]:
    path = REPO / "inventory" / "example-campus.yaml"
    if not path.is_file():
        pytest.skip("inventory/example-campus.yaml is not there yet")
    yield path
