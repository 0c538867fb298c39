"""Trust (issue 8): the secrets file.

Guards: camwatch.secrets.SecretStore refusing a file readable by group/others (with a
`chmod 600` hint and never a secret in the message), the YAML error that does not quote
the file, and `SecretStore.check()` called by camwatch.service.probe_context so that
`camwatch check` / `camwatch run` stop at start-up with that one message.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from camwatch.secrets import SecretError, SecretStore
from simulator.testing import small_campus
from tests.conftest import env_without_settings

NVR_PW = "Pw-5e1d0c2b-SECRET-nvr"
CAM_PW = "Pw-5e1d0c2b-SECRET-cam"


def secrets_file(tmp: Path, mode: int, text: str | None = None) -> Path:
    path = tmp / "secrets.yaml"
    path.write_text(text if text is not None else f"nvr_pw: {NVR_PW}\ncam_pw: {CAM_PW}\n",
                    encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666])
def test_file_readable_by_others_is_refused_with_a_chmod_hint(tmp_path: Path, mode: int) -> None:
    path = secrets_file(tmp_path, mode)
    with pytest.raises(SecretError) as err:
        SecretStore(path).resolve("secret:nvr_pw")
    msg = str(err.value)
    assert str(path) in msg and "chmod 600" in msg
    assert NVR_PW not in msg and CAM_PW not in msg and "5e1d0c2b" not in msg


def test_private_file_is_read(tmp_path: Path) -> None:
    path = secrets_file(tmp_path, 0o600)
    store = SecretStore(path)
    store.check()
    assert store.resolve("secret:cam_pw") == CAM_PW
    with pytest.raises(SecretError) as err:
        store.resolve("secret:nope")
    assert "nope" in str(err.value) and NVR_PW not in str(err.value)


def test_broken_yaml_error_does_not_quote_the_file(tmp_path: Path) -> None:
    path = secrets_file(tmp_path, 0o600, f"nvr_pw: [{NVR_PW}\ncam_pw: {{{CAM_PW}\n")
    with pytest.raises(SecretError) as err:
        SecretStore(path).check()
    assert "not valid YAML" in str(err.value)
    assert "5e1d0c2b" not in str(err.value)


def test_check_command_stops_at_start_with_one_message(tmp_path: Path) -> None:
    campus = small_campus(tmp_path, cameras=2, recorders=1, set_env=False)
    assert campus.path is not None
    text = campus.path.read_text(encoding="utf-8")
    text = text.replace("${CAMWATCH_DEMO_NVR_PASSWORD}", "secret:nvr_pw")
    text = text.replace("${CAMWATCH_DEMO_CAM_PASSWORD}", "secret:cam_pw")
    assert "secret:nvr_pw" in text
    campus.path.write_text(text, encoding="utf-8")
    path = secrets_file(tmp_path, 0o644)
    env = env_without_settings()
    env.update(campus.passwords, CAMWATCH_SECRETS_FILE=str(path), CAMWATCH_TIMEOUT="1",
               CAMWATCH_STORE_URL=f"sqlite:///{tmp_path / 'log.db'}", CAMWATCH_LISTEN="127.0.0.1:0")
    for args in (["check", "--json"], ["run"]):
        proc = subprocess.run(
            [sys.executable, "-m", "camwatch", *args, "--inventory", str(campus.path)],
            capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 1, (args, out[-2000:])
        assert "chmod 600" in proc.stderr and str(path) in proc.stderr, out[-2000:]
        assert "Traceback" not in out
        assert "5e1d0c2b" not in out
