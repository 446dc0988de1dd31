"""A real local stack (moto + HTTP API + pollers, no runner) for the CLI tests, started once per session.

The CLI is exercised exactly as a user runs it, through HTTP, against
``python -m chalicelib.local.stack`` in a subprocess. Commands run in
process through click's CliRunner, with the URL and key in the environment.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from chalicelib.cli.main import cli
from chalicelib.local.child_stack import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = PROJECT_ROOT / "examples"
STARTUP_SECONDS = 90.0


@dataclass
class LocalStackProcess:
    api_url: str
    endpoint_url: str
    admin_key: str
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        useful = [line for line in text.splitlines() if '"POST / HTTP' not in line]  # moto's own traffic
        return "\n".join(useful[-lines:])


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"local stack exited with {process.returncode}:\n{log_path.read_text(errors='replace')[-4000:]}"
            )
        try:
            with urllib.request.urlopen(url + "/api/health", timeout=3) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(
        f"local stack not healthy after {STARTUP_SECONDS}s:\n{log_path.read_text(errors='replace')[-4000:]}"
    )


@contextlib.contextmanager
def _running_stack(log_path: Path, admin_key: str | None) -> Iterator[LocalStackProcess]:
    """``python -m chalicelib.local.stack`` (no runner) on free ports; without ``admin_key`` it generates
    one, read back from what it prints, as a user of ``make run`` would."""
    moto_port, api_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKILLHARBOR_", "AWS_"))}
    env.update(PYTHONUNBUFFERED="1", **({"SKILLHARBOR_ADMIN_KEY": admin_key} if admin_key else {}))
    command = [
        sys.executable,
        "-m",
        "chalicelib.local.stack",
        "--no-runner",
        "--moto-port",
        str(moto_port),
        "--api-port",
        str(api_port),
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    stack = LocalStackProcess(f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{moto_port}", admin_key or "", log_path)
    try:
        _wait_healthy(stack.api_url, process, log_path)
        if not admin_key:
            stack.admin_key = _printed_admin_key(log_path)
        yield stack
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _printed_admin_key(log_path: Path) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace").splitlines():
            if line.strip().startswith("admin key"):
                return line.split()[2]
        time.sleep(0.2)
    raise RuntimeError(f"the stack printed no admin key:\n{log_path.read_text(errors='replace')[-2000:]}")


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    log_path = tmp_path_factory.mktemp("stack") / "stack.log"
    with _running_stack(log_path, "shk_admin_cli-tests-" + secrets.token_hex(12)) as stack:
        yield stack


@pytest.fixture
def fresh_stack(tmp_path: Path) -> Iterator[LocalStackProcess]:
    """A stack of the test's own, with the admin key it generated (for tests that change the admin keys)."""
    with _running_stack(tmp_path / "stack.log", None) as stack:
        yield stack


class Cli:
    """Run ``skillharbor ...`` in process against the test stack."""

    def __init__(self, stack: LocalStackProcess):
        self.stack = stack
        self.runner = CliRunner()

    def env(self, **extra: str | None) -> dict[str, str | None]:
        return {
            "SKILLHARBOR_URL": self.stack.api_url,
            "SKILLHARBOR_API_KEY": self.stack.admin_key,
            "SKILLHARBOR_ADMIN_KEY": None,
            "SKILLHARBOR_AWS_ENDPOINT_URL": self.stack.endpoint_url,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "COLUMNS": "200",
            **extra,
        }

    def __call__(self, *args: str, expect: int | None = 0, **env: str | None) -> Result:
        argv = list(args)
        result = self.runner.invoke(cli, argv, env=self.env(**env), prog_name="skillharbor")
        if expect is not None and result.exit_code != expect:
            raise AssertionError(
                f"skillharbor {shlex.join(argv)} exited {result.exit_code}, expected {expect}\n"
                f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}\n"
                + (
                    f"--- exception ---\n{result.exception!r}\n"
                    if result.exception and result.exit_code not in (0, 1, 2)
                    else ""
                )
                + f"--- stack log (tail) ---\n{self.stack.log_tail()}"
            )
        return result


@pytest.fixture
def run_cli(local_stack: LocalStackProcess) -> Cli:
    return Cli(local_stack)


@pytest.fixture
def run_fresh_cli(fresh_stack: LocalStackProcess) -> Cli:
    return Cli(fresh_stack)


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Ids no other test in this session uses (the stack is shared)."""
    return lambda prefix: f"{prefix}-{secrets.token_hex(4)}"
