"""Client of the simulator's fault control API (`camwatch simulate --control HOST:PORT`).

    from simulator.control import ControlClient
    c = ControlClient("127.0.0.1:18999")        # or "http://127.0.0.1:18999"
    c.fault("cam-0001", "blurred", 8)           # sync; afault/aclear/afaults are async
    c.faults()  -> {"cam-0001": {"blurred": 8.0}}
    c.clear("cam-0001")

API: POST /faults {device, kind, severity}; DELETE /faults/DEVICE; DELETE /faults (all);
GET /faults -> {"faults": {device: {kind: severity}}}.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import quote, urlsplit

import httpx


class ControlError(Exception):
    """The control API refused a request or could not be reached."""


def control_url(target: str) -> str:
    """Normalise HOST:PORT or http://HOST:PORT; only loopback addresses are allowed."""
    url = target if "://" in target else f"http://{target}"
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host != "localhost":
        try:
            if not ipaddress.ip_address(host).is_loopback:
                raise ControlError(f"{target}: the control API is on loopback only")
        except ValueError:
            raise ControlError(f"{target}: expected HOST:PORT on 127.0.0.0/8") from None
    if parts.port is None:
        raise ControlError(f"{target}: no port given (expected HOST:PORT)")
    return f"http://{host}:{parts.port}"


def _check(r: httpx.Response) -> dict[str, Any]:
    try:
        data = r.json()
    except ValueError:
        data = {}
    if r.status_code >= 400:
        raise ControlError(str(data.get("error") or f"HTTP {r.status_code}"))
    return data if isinstance(data, dict) else {}


class ControlClient:
    def __init__(self, target: str, timeout: float = 5.0) -> None:
        self.base = control_url(target)
        self.timeout = timeout

    @staticmethod
    def _payload(device: str, kind: str, severity: float | None) -> dict[str, Any]:
        body: dict[str, Any] = {"device": device, "kind": kind}
        if severity is not None:
            body["severity"] = severity
        return body

    def fault(self, device: str, kind: str, severity: float | None = None) -> dict[str, Any]:
        try:
            with httpx.Client(timeout=self.timeout) as c:
                return _check(
                    c.post(f"{self.base}/faults", json=self._payload(device, kind, severity))
                )
        except httpx.HTTPError as exc:
            raise ControlError(f"simulator control API at {self.base}: {exc}") from None

    def clear(self, device: str | None = None) -> dict[str, Any]:
        path = "/faults" if device is None else f"/faults/{quote(device, safe='')}"
        try:
            with httpx.Client(timeout=self.timeout) as c:
                return _check(c.delete(self.base + path))
        except httpx.HTTPError as exc:
            raise ControlError(f"simulator control API at {self.base}: {exc}") from None

    def faults(self) -> dict[str, dict[str, float]]:
        try:
            with httpx.Client(timeout=self.timeout) as c:
                data = _check(c.get(f"{self.base}/faults"))
        except httpx.HTTPError as exc:
            raise ControlError(f"simulator control API at {self.base}: {exc}") from None
        faults = data.get("faults", {})
        return faults if isinstance(faults, dict) else {}

    async def afault(self, device: str, kind: str, severity: float | None = None) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as c:
                r = await c.post(f"{self.base}/faults", json=self._payload(device, kind, severity))
                return _check(r)
        except httpx.HTTPError as exc:
            raise ControlError(f"simulator control API at {self.base}: {exc}") from None

    async def aclear(self, device: str | None = None) -> dict[str, Any]:
        path = "/faults" if device is None else f"/faults/{quote(device, safe='')}"
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as c:
                return _check(await c.delete(self.base + path))
        except httpx.HTTPError as exc:
            raise ControlError(f"simulator control API at {self.base}: {exc}") from None

    async def afaults(self) -> dict[str, dict[str, float]]:
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as c:
                data = _check(await c.get(f"{self.base}/faults"))
        except httpx.HTTPError as exc:
            raise ControlError(f"simulator control API at {self.base}: {exc}") from None
        faults = data.get("faults", {})
        return faults if isinstance(faults, dict) else {}
