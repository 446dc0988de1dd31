"""The local stack as a child process on free loopback ports.

What tests and benchmarks that need the whole stack (its API, moto and N
runner workers) start, wait for and stop, so each of them does not carry its
own copy of the start-up, the readiness poll and the stop-or-kill.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
#: which engine and base image to use pass through to the child; AWS settings and resource names do not
PASSED_THROUGH = ("SKILLHARBOR_BASE_IMAGE", "SKILLHARBOR_BASE_IMAGE_TAG", "SKILLHARBOR_DEBIAN_MIRROR", "SKILLHARBOR_CACHE_DIR")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports (the workers' direct ports)."""
    for _ in range(50):
        first = free_port()
        try:
            for port in range(first, first + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise RuntimeError(f"no {count} consecutive free ports on 127.0.0.1")


class StackNotReady(RuntimeError):
    """The child stack did not reach a state in time (the message ends with its log)."""


class ChildStack:
    """``python -m chalicelib.local.stack`` with its own ports, admin key and log file."""

    def __init__(self, log: Path, *, admin_key: str, workers: int = 1, env: dict[str, str] | None = None):
        self.log, self.admin_key, self.workers = log, admin_key, workers
        self.api_port, self.moto_port, self.runner_port = free_port(), free_port(), free_ports(workers)
        self.api = f"http://127.0.0.1:{self.api_port}"
        child_env = {k: v for k, v in os.environ.items() if not k.startswith(("SKILLHARBOR_", "AWS_")) or k in PASSED_THROUGH}
        child_env.update(SKILLHARBOR_ADMIN_KEY=admin_key, PYTHONUNBUFFERED="1")
        if workers != 1:
            child_env["SKILLHARBOR_LOCAL_WORKERS"] = str(workers)
        child_env.update(env or {})
        with open(log, "wb") as out:
            self.process = _spawn(self.command(), child_env, out)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "chalicelib.local.stack", "--api-port", str(self.api_port), "--moto-port",
                str(self.moto_port), "--runner-port", str(self.runner_port)]  # fmt: skip

    def output(self, tail: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-tail:]

    def http(self, path: str, body: Any = None, *, key: str | None = None, content_type: str = "application/json",
             timeout: float = 300) -> tuple[int, Any]:  # fmt: skip
        """(status, decoded JSON) of a call to the API; bytes go as they are, anything else as JSON."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type, "Authorization": f"Bearer {key or self.admin_key}"}
        request = urllib.request.Request(self.api + path, data=data, headers=headers, method="POST" if data is not None else "GET")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def wait_for(self, condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
        """The first truthy value of ``condition`` (connection errors count as not yet)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StackNotReady(f"the stack exited ({self.process.returncode}) before: {what}\n{self.output()}")
            try:
                value = condition()
            except OSError:
                value = None
            if value:
                return value
            time.sleep(interval)
        raise StackNotReady(f"not within {timeout:.0f}s: {what}\n{self.output()}")

    def import_skill(self, skill_md: Path, timeout: float = 240) -> dict[str, Any]:
        """Upload a SKILL.md and wait until its import succeeded."""
        status, accepted = self.http("/api/skills", skill_md.read_bytes(), content_type="text/markdown")
        if status != 202:
            raise StackNotReady(f"import of {skill_md} answered {status}: {accepted}")
        return self.wait_for(lambda: (b := self.http(f"/api/imports/{accepted['import_id']}")[1])["status"] == "SUCCEEDED" and b,
                             timeout, f"{skill_md.parent.name} imported")  # fmt: skip

    def stop(self, timeout: float = 90) -> int:
        """Ctrl-C the stack; kill its whole group if it does not stop in ``timeout``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def __enter__(self) -> ChildStack:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _spawn(command: list[str], env: dict[str, str], out: IO[bytes]) -> subprocess.Popen[bytes]:
    # its own session: a Ctrl-C meant for the caller's terminal does not reach it, and a kill takes its workers too
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
