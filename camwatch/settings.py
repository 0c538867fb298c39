"""Service settings: a YAML file plus CAMWATCH_* environment overrides.

Every setting is documented in the README (section "Settings") with its default; keep
the two in step. The environment wins over the file, so a compose file or a systemd unit
can change one value without editing the file.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)
from pydantic_settings import SettingsError as _SourceError

ENV_PREFIX = "CAMWATCH_"
# CAMWATCH_* variables that are not settings but are read elsewhere (documented in the
# README): they are never reported as misspelt settings.
OTHER_VARIABLES = frozenset({
    "CAMWATCH_CJK_FONT",  # reports/fonts.py: the font of the sheet
    "CAMWATCH_GST_PYTHON",  # simulator/rtsp.py: the Python with GStreamer bindings
    "CAMWATCH_CLOCK",  # camwatch's own clock (tests pin it)
})
OTHER_PREFIXES = ("CAMWATCH_DEMO_", "CAMWATCH_TEST_")
# Intervals: below 0.1 s a check would run in a tight loop. Up to 1e9 s (never, in
# practice: bench/run.py turns a check kind off that way); inf and nan are refused.
MIN_INTERVAL_S = 0.1
MAX_INTERVAL_S = 1e9


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid",
                                      allow_inf_nan=False)

    # HTTP server (/metrics, /healthz, /ready, /, /reports)
    listen: str = Field(default="127.0.0.1:9745", description="host:port of the HTTP server")
    http_token: str | None = Field(default=None, description="bearer token for /reports")
    http_user: str | None = Field(default=None, description="basic-auth user for /reports")
    http_password: str | None = Field(default=None, description="basic-auth password")
    tls_cert: Path | None = None
    tls_key: Path | None = None

    # Outputs
    alertmanager_url: str | None = Field(default=None, description="e.g. http://127.0.0.1:9093")
    store_url: str = Field(default="sqlite:///var/camwatch.db", description="SQLAlchemy URL")
    log_retention_days: int = Field(default=1095, ge=1, description="inspection log kept 3 years")
    # results waiting while the log cannot be written (a full disk), after compaction;
    # past this the oldest give way to a recorded gap (紀錄中斷)
    store_backlog_max: int = Field(default=200_000, ge=100, le=10_000_000)
    # a hole in the log (camwatch stopped, or could not write) shorter than this is
    # sampling, not an outage; longer ones are marked 紀錄中斷 on the sheet
    log_gap_min_s: float = Field(default=600.0, ge=0, le=86400)

    # Schedule (seconds)
    host_interval: float = Field(default=60.0, ge=MIN_INTERVAL_S, le=MAX_INTERVAL_S)
    recording_interval: float = Field(default=300.0, ge=MIN_INTERVAL_S, le=MAX_INTERVAL_S)
    picture_interval: float = Field(default=300.0, ge=MIN_INTERVAL_S, le=MAX_INTERVAL_S)
    # what rarely changes (model, firmware, serial, uptime; the login) is re-read by the
    # host check this often; the checks between ask only the clock. 0: every check
    host_facts_interval: float = Field(default=300.0, ge=0, le=MAX_INTERVAL_S)
    jitter: float = Field(default=0.1, ge=0, le=0.5, description="fraction of the interval")
    concurrency: int = Field(default=64, ge=1, description="probes in flight at once")
    per_recorder_concurrency: int = Field(default=2, ge=1, description="recorders are fragile")
    timeout: float = Field(default=10.0, ge=0.05, le=300, description="seconds a probe may take")
    retries: int = Field(default=1, ge=0, le=5)
    # 附件三 5(二): a unit inspects every 2 weeks
    inspection_interval_days: int = Field(default=14, ge=1)

    # Judgement thresholds
    clock_drift_max_s: float = Field(default=30.0, gt=0, le=86400)
    footage_max_age_s: float = Field(default=600.0, gt=0, le=30 * 86400)
    disk_full_pct: float = Field(default=95.0, gt=0, le=100)
    alert_debounce: int = Field(default=2, ge=1, description="failures in a row before alerting")
    alert_recovery: int = Field(default=2, ge=1, description="successes in a row before resolving")
    alert_resend_interval: float = Field(default=60.0, ge=1.0, le=3600)
    # DeviceFlapping (設備不穩定): answers that changed flap_changes times within the last
    # flap_window judged checks of a device; 0 turns flap detection off
    flap_window: int = Field(default=10, ge=0, le=100, description="checks looked back on")
    flap_changes: int = Field(default=4, ge=2, le=99, description="changes that mean unstable")

    # Secrets and trust
    secrets_file: Path | None = Field(default=None, description="YAML key: value, mode 0600")
    # NoDecode: the environment gives "a,b" (or a JSON list), parsed by the validator
    allowed_redirect_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Logging
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    log_format: str = Field(default="json", pattern="^(json|text)$")
    log_file: Path | None = None

    @field_validator("alertmanager_url")
    @classmethod
    def _alertmanager_url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        v = v.strip()
        try:
            parts = urlsplit(v)
            port = parts.port  # raises on a port that is not a number
        except ValueError:
            parts, port = None, None
        if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname
                or parts.query or parts.fragment or any(c.isspace() for c in v)):
            raise ValueError(f"{v!r} is not an Alertmanager URL; expected http://HOST:PORT "
                             "or https://HOST:PORT, e.g. http://127.0.0.1:9093")
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"{v!r}: the port must be 1 to 65535")
        return v.rstrip("/")

    @field_validator("allowed_redirect_hosts", mode="before")
    @classmethod
    def _host_list(cls, v: Any) -> Any:
        if not isinstance(v, str):
            return v
        text = v.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                raise ValueError("expected a JSON list of host names, e.g. "
                                 '["cdn.example.edu.tw"], or host names separated by '
                                 "commas") from None
        return [h.strip() for h in text.split(",") if h.strip()]

    @field_validator("allowed_redirect_hosts")
    @classmethod
    def _hosts(cls, v: list[str]) -> list[str]:
        for host in v:
            if not re.fullmatch(r"[A-Za-z0-9.\-:\[\]]+", host):
                raise ValueError(f"{host!r} is not a host name (write only the host, e.g. "
                                 "cdn.example.edu.tw; several separated by commas)")
        return v

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not port.isdigit() or int(port) > 65535 or host.startswith("["):
            raise ValueError("expected HOST:PORT, e.g. 127.0.0.1:9745, 0.0.0.0:9745 or ::1:9745 "
                             "(IPv6 without brackets)")
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if _settings_path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=_settings_path))
        return tuple(sources)

    @property
    def listen_host(self) -> str:
        return self.listen.rsplit(":", 1)[0] or "127.0.0.1"

    @property
    def listen_port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


_settings_path: Path | None = None


class SettingsError(Exception):
    """Bad settings, with one line per problem naming the file and the field."""


EXPECTED_FORM = {
    "allowed_redirect_hosts": "host names separated by commas (a,b) or a JSON list",
}


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Settings from `path` (YAML) and the CAMWATCH_* environment; SettingsError names
    the file or the variable, the setting and the form expected."""
    global _settings_path
    if path is not None and not path.is_file():
        raise SettingsError(f"{path}: settings file not found")
    _settings_path = path
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(top level)"
            var = f"{ENV_PREFIX}{field.upper()}"
            where = "environment" if var in os.environ else (str(path) if path else "settings")
            lines.append(f"{where}: {field}: {_message(err)} ({var} or the file)")
        raise SettingsError("\n".join(lines)) from None
    except _SourceError as exc:  # a variable that cannot even be decoded
        name = _field_in(str(exc))
        if name is not None:
            var = f"{ENV_PREFIX}{name.upper()}"
            form = EXPECTED_FORM.get(name, "a value of the documented form (README, Settings)")
            raise SettingsError(f"environment: {var}: cannot read it as {name}; "
                                f"expected {form}") from None
        raise SettingsError(f"{path or 'environment'}: cannot read settings: {exc}") from None
    except Exception as exc:  # broken YAML in the settings file
        raise SettingsError(f"{path or 'environment'}: cannot read settings: {exc}") from None
    finally:
        _settings_path = None
    return settings


def _message(err: Any) -> str:
    msg = str(err["msg"])
    if err.get("type") == "finite_number":
        msg += " (inf and nan are not intervals or limits)"
    return msg


def _field_in(message: str) -> str | None:
    m = re.search(r'field "([a-z_]+)"', message)
    return m.group(1) if m and m.group(1) in Settings.model_fields else None


def setting_variables() -> list[str]:
    return [f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields]


def unknown_variables(environ: Mapping[str, str], known: Iterable[str] = ()) -> list[str]:
    """A warning per CAMWATCH_* variable that no part of camwatch reads, naming the
    closest setting: a misspelt one would otherwise be silently ignored. `known` adds
    names read elsewhere (the inventory's ${VAR} credential references). Values are
    never repeated (a variable may hold a password)."""
    names = setting_variables()
    allowed = set(names) | OTHER_VARIABLES | set(known)
    out = []
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX) or var in allowed or var.startswith(OTHER_PREFIXES):
            continue
        close = difflib.get_close_matches(var, names, n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else \
            " (see the README, Settings, for the variables camwatch reads)"
        out.append(f"{var} is not a camwatch setting and is ignored{hint}")
    return out
