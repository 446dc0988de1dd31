"""Ctrl-C of `make run`: the real stack process, with warm containers, stops by itself and leaves none.

The stack runs as ``python -m chalicelib.local.stack`` on free loopback ports
with its runner worker; after a skill ran (so the warm pool is refilling),
SIGINT goes either to the whole process group (what a terminal's Ctrl-C
does) or to the stack process alone. The containers checked are those the
stack's worker created (their ``skillharbor.creator`` label names its pid).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from chalicelib.runner import engine

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "shk_admin_stop-test-0123456789abcdefghij"
#: generous: the stack must stop by itself well before this (the worker drains for 10 s at most)
STOP_BOUND_SECONDS = 60
#: settings that say which engine and base image to use pass through; AWS and resource names do not
PASSED_THROUGH = ("SKILLHARBOR_BASE_IMAGE", "SKILLHARBOR_BASE_IMAGE_TAG", "SKILLHARBOR_DEBIAN_MIRROR", "SKILLHARBOR_CACHE_DIR")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _http(url: str, body: bytes | None = None, *, key: str | None = ADMIN_KEY, content_type: str = "application/json") -> Any:
    headers = {"Content-Type": content_type, **({"Authorization": f"Bearer {key}"} if key else {})}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _wait(condition, timeout: float, what: str, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} within {timeout:.0f}s\n{log.read_text(errors='replace')[-3000:]}")


def _containers_of(docker_client: Any, creator: str) -> list[dict[str, Any]]:
    return docker_client.api.containers(all=True, filters={"label": [f"{engine.CREATOR_LABEL}={creator}"]})


@pytest.mark.parametrize("to_group", [True, False], ids=["ctrl-c-to-the-process-group", "sigint-to-the-stack-only"])
def test_sigint_stops_the_stack_and_leaves_none_of_its_containers(docker_client, base_image, tmp_path, to_group):
    api_port, moto_port, runner_port = _free_port(), _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKILLHARBOR_", "AWS_")) or k in PASSED_THROUGH}
    env.update(SKILLHARBOR_ADMIN_KEY=ADMIN_KEY, PYTHONUNBUFFERED="1")
    log = tmp_path / "stack.log"
    with open(log, "wb") as out:
        stack = subprocess.Popen(
            [sys.executable, "-m", "chalicelib.local.stack", "--api-port", str(api_port), "--moto-port", str(moto_port),
             "--runner-port", str(runner_port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    api = f"http://127.0.0.1:{api_port}"
    creator = None
    try:
        health = _wait(lambda: (h := _http(f"{api}/api/health"))["runners"]["active"] and h, 120,
                       "the stack and its runner did not come up", log)  # fmt: skip
        worker_pid = health["runners"]["workers"][0]["worker_id"].rsplit("-", 1)[1]
        creator = f"{socket.gethostname()}:{worker_pid}"

        # a skill runs, so the pool hands out a warm container and starts refilling
        accepted = _http(f"{api}/api/skills", (ROOT / "examples" / "hello" / "SKILL.md").read_bytes(), content_type="text/markdown")
        _wait(lambda: _http(f"{api}/api/imports/{accepted['import_id']}")["status"] == "SUCCEEDED", 120, "hello was not imported", log)
        agent = _http(f"{api}/api/agents", json.dumps({"agent_id": "stopper", "maturity": "STUDENT"}).encode())
        ran = _http(f"{api}/api/skills/hello/execute", json.dumps({"inputs": {"name": "stop"}}).encode(), key=agent["api_key"])
        assert ran["success"] is True, ran
        warm = _wait(lambda: [c for c in _containers_of(docker_client, creator) if c["State"] == "running"], 120,
                     "no warm container came up", log)  # fmt: skip
        assert all(c["Labels"][engine.ROLE_LABEL] == "pool" for c in warm)

        if to_group:
            os.killpg(stack.pid, signal.SIGINT)
        else:
            stack.send_signal(signal.SIGINT)
        try:
            code = stack.wait(timeout=STOP_BOUND_SECONDS)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the stack did not stop within {STOP_BOUND_SECONDS}s\n{log.read_text()[-3000:]}") from None
        output = log.read_text(errors="replace")
        assert code == 0, output[-3000:]
        assert _containers_of(docker_client, creator) == [], output[-3000:]
        assert "did not stop within" not in output  # the worker stopped by itself, nobody killed it
        assert "runner worker stopped in" in output and "(exit 0)" in output
        assert re.search(r"removed \d+ containers?: .*warm ", output), output[-2000:]  # and says what it removed
    finally:
        if stack.poll() is None:
            os.killpg(stack.pid, signal.SIGKILL)
            stack.wait()
        if creator:  # never leave this test's containers to the next one
            for container in _containers_of(docker_client, creator):
                docker_client.api.remove_container(container["Id"], force=True)
