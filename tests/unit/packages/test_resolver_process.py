"""What the resolver's pip process gets: arguments, environment, working directory; and what its output becomes.

A stand-in interpreter records what it was started with and fails the way pip does, printing
secrets (as a pip that had them might): the caller's message must be pip-free and secret-free,
the server log redacted.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
from pathlib import Path

import pytest

from chalicelib.errors import InvalidRequirement, ResolutionFailed, TransientError
from chalicelib.packages.environment import PASSED_THROUGH
from chalicelib.packages.pins import TargetPlatform
from chalicelib.packages.resolver import PipResolver

SECRETS = {"SKILLHARBOR_ADMIN_KEY": "shk_admin_super-secret-value-123456", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
           "SKILLHARBOR_RUNNER_SECRET": "runner-secret-abcdefghijkl", "PIP_INDEX_URL": "http://127.0.0.1:9/evil"}  # fmt: skip

STAND_IN = """#!{python}
import json, os, sys
json.dump({{"argv": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd(), "cwd_files": os.listdir(".")}},
          open({record!r}, "w"))
sys.stderr.write({stderr!r})
sys.exit(1)
"""


class NoIndex:
    def files(self, project: str) -> None:
        return None


def _stand_in(tmp_path: Path, stderr: str) -> tuple[str, Path]:
    record = tmp_path / "record.json"
    script = tmp_path / "python"
    script.write_text(STAND_IN.format(python=sys.executable, record=str(record), stderr=stderr))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script), record


@pytest.fixture
def secrets_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


def _resolver(python: str) -> PipResolver:
    return PipResolver("https://pypi.org/simple", python=python, index=NoIndex(), secret_values=lambda: list(SECRETS.values()))


def test_pip_gets_canonical_arguments_an_allow_listed_environment_and_an_empty_private_directory(tmp_path, secrets_in_environment):
    python, record = _stand_in(tmp_path, "ERROR: No matching distribution found for numpy==1.26.4\n")
    with pytest.raises(ResolutionFailed):
        _resolver(python).resolve(["NumPy == 1.26.4", "Requests[SOCKS]>=2; python_version >= '3.8'"], TargetPlatform())
    seen = json.loads(record.read_text())
    argv, env = seen["argv"], seen["env"]
    assert argv[:3] == ["-m", "pip", "install"]
    assert argv[argv.index("--") + 1:] == ["numpy==1.26.4", 'requests[socks]>=2; python_version >= "3.8"']
    assert "-r" not in argv and "--requirement" not in argv  # never a file that pip would expand
    for option in ("--isolated", "--only-binary=:all:", "--dry-run", "--no-input"):
        assert option in argv
    assert argv[argv.index("--keyring-provider") + 1] == "disabled"
    allowed = set(PASSED_THROUGH) | {"HOME", "TMPDIR", "PYTHONNOUSERSITE", "PYTHONIOENCODING", "PYTHONUTF8"}
    assert set(env) <= allowed, set(env) - allowed
    assert not any(value in json.dumps(env) for value in SECRETS.values())
    assert env["HOME"] != os.environ.get("HOME") and Path(env["HOME"]).name == "home"
    assert Path(env["TMPDIR"]).parent == Path(env["HOME"]).parent == Path(seen["cwd"]).parent
    assert seen["cwd_files"] == []
    assert not Path(env["HOME"]).exists()  # one resolution's directory, removed after it


def test_pips_output_goes_only_to_the_log_and_redacted(tmp_path, secrets_in_environment, caplog):
    leak = "".join(f"ERROR: leaked {value}\n" for value in SECRETS.values())
    python, _ = _stand_in(tmp_path, leak + "ERROR: No matching distribution found for numpy==1.26.4\n")
    caplog.set_level(logging.WARNING, logger="skillharbor.resolver")
    with pytest.raises(ResolutionFailed) as failed:
        _resolver(python).resolve(["numpy==1.26.4"], TargetPlatform())
    message = failed.value.message
    assert message.startswith("the package index has no project named numpy (server log id res-")
    assert "ERROR" not in json.dumps(failed.value.to_dict()) and "leaked" not in json.dumps(failed.value.to_dict())
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert failed.value.details["log_id"] in logged and "leaked [redacted]" in logged
    assert not any(value in logged for value in SECRETS.values())


def test_an_unreachable_index_is_transient_and_says_so_without_pip_text(tmp_path):
    python, _ = _stand_in(tmp_path, "WARNING: Retrying ... Max retries exceeded with url: /simple/numpy/\n")
    with pytest.raises(TransientError) as failed:
        _resolver(python).resolve(["numpy"], TargetPlatform())
    assert failed.value.message.startswith("package index unreachable: pypi.org did not answer (server log id res-")


def test_a_requirement_that_skipped_the_parser_never_reaches_pip(tmp_path):
    python, record = _stand_in(tmp_path, "")
    with pytest.raises(InvalidRequirement) as refused:
        _resolver(python).resolve(["numpy", "numpy===${SKILLHARBOR_ADMIN_KEY}", "/tmp/x"], TargetPlatform())
    assert len(refused.value.problems) == 2 and not record.exists()


def test_a_pin_that_is_not_an_index_wheel_fails_the_resolution(tmp_path):
    """Belt and braces: were pip ever to resolve a local directory or a direct URL, no pin comes of it."""
    report = {"install": [{"metadata": {"name": "evil", "version": "1.0"}, "is_direct": True,
                           "download_info": {"url": "file:///tmp/evil", "dir_info": {}}}]}  # fmt: skip
    script = tmp_path / "python"
    script.write_text(f"#!{sys.executable}\nimport json, sys\nout = sys.argv[sys.argv.index('--report') + 1]\n"
                      f"json.dump({report!r}, open(out, 'w'))\n")  # fmt: skip
    script.chmod(0o755)
    with pytest.raises(ResolutionFailed) as failed:
        _resolver(str(script)).resolve(["evil"], TargetPlatform())
    assert "did not resolve to a wheel from the configured index" in failed.value.message
