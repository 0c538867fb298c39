"""Service settings: a YAML file plus CAMWATCH_* environment overrides.

Every setting is documented in the README (section "Settings") with its default; keep
the two in step. The environment wins over the file, so a compose file or a systemd unit
can change one value without editing the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAMWATCH_", extra="forbid")

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

    # Schedule (seconds)
    host_interval: float = Field(default=60.0, gt=0)
    recording_interval: float = Field(default=300.0, gt=0)
    picture_interval: float = Field(default=300.0, gt=0)
    jitter: float = Field(default=0.1, ge=0, le=0.5, description="fraction of the interval")
    concurrency: int = Field(default=64, ge=1, description="probes in flight at once")
    per_recorder_concurrency: int = Field(default=2, ge=1, description="recorders are fragile")
    timeout: float = Field(default=10.0, gt=0, description="seconds a probe may take")
    retries: int = Field(default=1, ge=0, le=5)
    # 附件三 5(二): a unit inspects every 2 weeks
    inspection_interval_days: int = Field(default=14, ge=1)

    # Judgement thresholds
    clock_drift_max_s: float = Field(default=30.0, gt=0)
    footage_max_age_s: float = Field(default=600.0, gt=0)
    disk_full_pct: float = Field(default=95.0, gt=0, le=100)
    alert_debounce: int = Field(default=2, ge=1, description="failures in a row before alerting")
    alert_recovery: int = Field(default=2, ge=1, description="successes in a row before resolving")
    alert_resend_interval: float = Field(default=60.0, gt=0)

    # Secrets and trust
    secrets_file: Path | None = Field(default=None, description="YAML key: value, mode 0600")
    allowed_redirect_hosts: list[str] = Field(default_factory=list)

    # Logging
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    log_format: str = Field(default="json", pattern="^(json|text)$")
    log_file: Path | None = None

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


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    global _settings_path
    if path is not None and not path.is_file():
        raise SettingsError(f"{path}: settings file not found")
    _settings_path = path
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        where = str(path) if path else "environment"
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"{where}: {field}: {err['msg']} (CAMWATCH_{field.upper()} or the file)")
        raise SettingsError("\n".join(lines)) from None
    except Exception as exc:  # broken YAML in the settings file
        raise SettingsError(f"{path}: cannot read settings: {exc}") from None
    finally:
        _settings_path = None
