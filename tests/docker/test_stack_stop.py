"""Ctrl-C of `make run`: the real stack process, with warm containers, stops by itself and leaves none.

The stack runs as ``python -m chalicelib.local.stack`` on free loopback ports
with its runner worker; after a skill ran (so the warm pool is refilling),
SIGINT goes either to the whole process group (what a terminal's Ctrl-C
does) or to the stack process alone. The containers checked are those the
stack's worker created (their ``skillharbor.creator`` label names its pid).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from chalicelib.local.child_stack import ChildStack
from chalicelib.runner import engine

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "shk_admin_stop-test-0123456789abcdefghij"
#: generous: the stack must stop by itself well before this (the worker drains for 10 s at most)
STOP_BOUND_SECONDS = 60


def _containers_of(docker_client: Any, creator: str) -> list[dict[str, Any]]:
    return docker_client.api.containers(all=True, filters={"label": [f"{engine.CREATOR_LABEL}={creator}"]})


@pytest.mark.parametrize("to_group", [True, False], ids=["ctrl-c-to-the-process-group", "sigint-to-the-stack-only"])
def test_sigint_stops_the_stack_and_leaves_none_of_its_containers(docker_client, base_image, tmp_path, to_group):
    child = ChildStack(tmp_path / "stack.log", admin_key=ADMIN_KEY)
    stack, log = child.process, child.log
    creator = None
    try:
        health = child.wait_for(lambda: (h := child.http("/api/health", timeout=60)[1])["runners"]["active"] and h, 120,
                                "the stack and its runner up")  # fmt: skip
        worker_pid = health["runners"]["workers"][0]["worker_id"].rsplit("-", 1)[1]
        creator = f"{socket.gethostname()}:{worker_pid}"

        # a skill runs, so the pool hands out a warm container and starts refilling
        child.import_skill(ROOT / "examples" / "hello" / "SKILL.md", timeout=120)
        agent = child.http("/api/agents", {"agent_id": "stopper", "maturity": "STUDENT"}, timeout=60)[1]
        ran = child.http("/api/skills/hello/execute", {"inputs": {"name": "stop"}}, key=agent["api_key"], timeout=60)[1]
        assert ran["success"] is True, ran
        warm = child.wait_for(lambda: [c for c in _containers_of(docker_client, creator) if c["State"] == "running"], 120,
                              "a warm container up")  # fmt: skip
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
        child.kill()
        if creator:  # never leave this test's containers to the next one
            for container in _containers_of(docker_client, creator):
                docker_client.api.remove_container(container["Id"], force=True)
