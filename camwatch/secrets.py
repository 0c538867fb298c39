"""Resolving credential references (${ENV_VAR}, secret:KEY) at the moment they are needed.

Every resolved value is remembered in-process so that log output can be scrubbed of it
(camwatch.logs) even if a library echoes it back in an error message.

Where `secret:KEY` values come from: the secrets file configured (CAMWATCH_SECRETS_FILE
or the `secrets_file` setting); when none is, the file beside the inventory named like
it, `campus.yaml` -> `campus.secrets.yaml` (what `camwatch simulate --write-inventory`
writes). A folder of inventory files never reads its `*.secrets.yaml` as inventory.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from inventory.models import SECRET_REF

# The probes' own error type: they catch it without importing the service.
from probes.context import SecretError

__all__ = ["SecretError", "SecretStore", "known_secrets", "redact"]

_known: set[str] = set()


class SecretStore:
    """The service's SecretResolver (probes.context): ${ENV} and secret:KEY."""

    def __init__(self, secrets_file: Path | None = None) -> None:
        self._file = secrets_file
        self._values: dict[str, str] | None = None

    def _load(self) -> dict[str, str]:
        if self._values is not None:
            return self._values
        if self._file is None:
            self._values = {}
            return self._values
        try:
            st = self._file.stat()
        except OSError:
            raise SecretError(f"{self._file}: secrets file not found") from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretError(
                f"{self._file}: secrets file is readable by others "
                f"(mode {stat.S_IMODE(st.st_mode):o}); run: chmod 600 {self._file}"
            )
        try:
            data = yaml.safe_load(self._file.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            # The parser's message may quote a line of the file: keep only where it is.
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise SecretError(f"{self._file}:{where} secrets file is not valid YAML") from None
        if not isinstance(data, dict):
            raise SecretError(f"{self._file}: secrets file must be a mapping of KEY: value")
        self._values = {str(k): str(v) for k, v in data.items()}
        return self._values

    def values(self) -> dict[str, str]:
        """Every KEY: value of the secrets file (a copy); SecretError as `check`."""
        return dict(self._load())

    def check(self) -> None:
        """Read the secrets file now, if one is configured, so that a file readable by
        others (or missing, or broken) stops a command at start-up with one clear
        message instead of turning every device `unknown`. Raises SecretError."""
        self._load()

    def resolve(self, ref: str) -> str:
        if not SECRET_REF.match(ref):
            raise SecretError("not a secret reference (expected ${ENV_VAR} or secret:KEY)")
        if ref.startswith("${"):
            name = ref[2:-1]
            value = os.environ.get(name)
            if value is None:
                raise SecretError(f"environment variable {name} is not set")
        else:
            key = ref.split(":", 1)[1]
            values = self._load()
            if key not in values:
                where = self._file or "(no secrets file configured: set CAMWATCH_SECRETS_FILE)"
                raise SecretError(f"secret {key!r} not found in {where}")
            value = values[key]
        if value:
            _known.add(value)
        return value


def known_secrets() -> frozenset[str]:
    return frozenset(_known)


def redact(text: str) -> str:
    for value in _known:
        if len(value) >= 3 and value in text:
            text = text.replace(value, "***")
    return text


SECRETS_SUFFIXES = (".secrets.yaml", ".secrets.yml")


def is_secrets_file(path: Path) -> bool:
    return path.name.endswith(SECRETS_SUFFIXES)


def secrets_file_beside(inventory: Path) -> Path:
    """`campus.yaml` -> `campus.secrets.yaml` in the same folder."""
    return inventory.with_name(inventory.stem + SECRETS_SUFFIXES[0])


def find_secrets_beside(inventory_paths: Iterable[Path]) -> list[Path]:
    """The secrets files beside the given inventory files (and beside the inventory files
    of given folders) that exist."""
    found: list[Path] = []
    for p in inventory_paths:
        files = sorted([*p.glob("*.yaml"), *p.glob("*.yml")]) if p.is_dir() else [p]
        for f in files:
            if is_secrets_file(f):
                continue
            candidate = secrets_file_beside(f)
            if candidate.is_file() and candidate not in found:
                found.append(candidate)
    return found


def write_secrets_file(path: Path, values: Mapping[str, str]) -> None:
    """Write `KEY: value` lines readable by the owner only (0600 from the first byte:
    the file is created with that mode, and an existing one is narrowed to it first)."""
    import yaml

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        text = "# Credentials for secret:KEY references (keep this file mode 0600).\n"
        text += yaml.safe_dump(dict(values), allow_unicode=True, sort_keys=False)
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def read_secrets_file(path: Path) -> dict[str, str]:
    """The KEY: value pairs of a secrets file ({} when missing); SecretError when it is
    readable by others or broken."""
    if not path.exists():
        return {}
    return SecretStore(path).values()
