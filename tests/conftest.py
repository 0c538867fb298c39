"""Shared fixtures: a small inventory, the demo passwords in the environment, and (when
the simulator is present) a small simulated campus served on random loopback addresses."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from inventory.models import Inventory

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"
DEMO_ENV = ("CAMWATCH_DEMO_NVR_PASSWORD", "CAMWATCH_DEMO_CAM_PASSWORD",
            "CAMWATCH_DEMO_SNMP_COMMUNITY")


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
