"""Helpers of the run-path security tests: an engine that runs without Docker, a ready skill, API calls, the trail."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from chalice.test import Client
from stack_support import ADMIN_HEADERS, FakeEngine, Stack

PLAIN_SKILL = b"""---
name: Plain Adder
description: Adds two numbers, needs no packages.
---
```python
def execute(a: int = 1, b: int = 2) -> int:
    return a + b
```
"""
SKILL_ID = "plain-adder"


class RunningEngine(FakeEngine):
    """Runs "succeed" without Docker and are counted (the run path, not the sandbox, is under test);
    ``hold`` keeps each run going until it is set."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[Any] = []
        self.removed: list[str] = []
        self.hold: threading.Event | None = None
        self._lock = threading.Lock()

    def run(self, request: Any) -> Any:
        from chalicelib.runner.spec import RunResult, RunStatus

        with self._lock:
            self.runs.append(request)
        if self.hold is not None:
            self.hold.wait(30)
        return RunResult(status=RunStatus.OK, output=sum(v for v in request.inputs.values() if isinstance(v, int)),
                         duration_ms=1, image=request.image)  # fmt: skip

    def remove_unused(self, *args: Any) -> list[str]:
        self.removed.append("unused")
        return []

    def prune_build_cache(self, *args: Any) -> dict[str, Any]:
        return {"removed_wheels": 0, "removed_staged_trees": 0}

    def remove(self, tag: str) -> bool:
        self.removed.append(tag)
        return True


def call(stack: Stack, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any, dict]:
    """(status, JSON body, headers) of one API call through Chalice's test client."""
    sent = {**(ADMIN_HEADERS if headers is None else headers), "Content-Type": "application/json"}
    with Client(stack.app) as client:
        response = getattr(client.http, method.lower())(path, body=None if body is None else json.dumps(body), headers=sent)
    return response.status_code, json.loads(response.body) if response.body else None, dict(response.headers)


def ready_skill(stack: Stack, skill: bytes = PLAIN_SKILL) -> None:
    with Client(stack.app) as client:
        response = client.http.post("/api/skills", body=skill, headers={**ADMIN_HEADERS, "Content-Type": "text/markdown"})
    accepted = json.loads(response.body)
    assert response.status_code == 202, accepted
    assert stack.wait_for_import(accepted["import_id"])["status"] == "SUCCEEDED"


def agent(stack: Stack, agent_id: str, maturity: str = "INTERN") -> dict[str, str]:
    status, body, _ = call(stack, "POST", "/api/agents", {"agent_id": agent_id, "maturity": maturity})
    assert status == 201, body
    return {"Authorization": f"Bearer {body['api_key']}"}


def trail(stack: Stack, **filters: str) -> list[dict[str, Any]]:
    """Every audit event matching ``filters`` (query parameters of GET /api/packages/audit), oldest first."""
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    events, token = [], None
    while True:
        status, page, _ = call(stack, "GET", f"/api/packages/audit?limit=1000&{query}" + (f"&next_token={token}" if token else ""))
        assert status == 200, page
        events += page["events"]
        token = page["next_token"]
        if not token:
            return sorted(events, key=lambda e: e["time"])


def wait_until(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not reached in {timeout}s")


def wait_for(fetch: Callable[[], Any], accept: Callable[[Any], bool], what: str, timeout: float = 60.0) -> Any:
    """``fetch()`` once ``accept`` takes it."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached in {timeout}s (last: {value!r:.500})")
        time.sleep(0.05)


def run_done(job_id: str) -> dict[str, Any]:
    """The run record of ``job_id`` once it has its outcome."""
    from chalicelib.store.runs import RunStore

    return wait_for(lambda: RunStore().get(job_id), lambda r: bool(r) and r["state"] == "done", f"run {job_id} ended")


def queue_counts(stack: Stack, url: str) -> tuple[int, int]:
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]  # fmt: skip
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def dead_letter_url(stack: Stack) -> str:
    policy = stack.sqs.get_queue_attributes(QueueUrl=stack.settings.runner_queue_url, AttributeNames=["RedrivePolicy"])
    name = json.loads(policy["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"].rsplit(":", 1)[1]
    return stack.sqs.get_queue_url(QueueName=name)["QueueUrl"]
