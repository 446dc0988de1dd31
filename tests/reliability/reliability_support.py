"""Helpers of the reliability tests (imported by name: every test folder has its own conftest).

They keep the tests about behaviour: upload a skill, follow its
import, read records, drain a queue the way Lambda's event source would.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
from chalice.test import Client

from stack_support import ADMIN_HEADERS, Stack

#: one small wheel with no dependencies: resolution is quick and the closure is one pin
SIX_SKILL = b"""---
name: Six Helper
description: Uses six to tell the Python major version.
packages:
  - six
---
# Six helper

```python
def execute() -> str:
    import six
    return "py3" if six.PY3 else "py2"
```
"""

PLAIN_SKILL = b"""---
name: Plain Adder
description: Adds two numbers, needs no packages.
---
```python
def execute(a: int = 1, b: int = 2) -> int:
    return a + b
```
"""


def skill_md(name: str, *, packages: list[str] | None = None, body: str = "return 1") -> bytes:
    lines = ["---", f"name: {name}", f"description: {name} for the reliability suite."]
    if packages:
        lines.append("packages:")
        lines += [f"  - {p}" for p in packages]
    lines += ["---", "```python", "def execute():", f"    {body}", "```", ""]
    return "\n".join(lines).encode()


def call(stack: Stack, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None,
         content_type: str = "application/json") -> tuple[int, Any]:  # fmt: skip
    """One API call through Chalice's test client; (status, parsed JSON body or raw text)."""
    sent_headers = dict(ADMIN_HEADERS if headers is None else headers)
    payload = body
    if body is not None and not isinstance(body, (bytes, str)):
        payload = json.dumps(body)
    if payload is not None:
        sent_headers["Content-Type"] = content_type
    with Client(stack.app) as client:
        response = getattr(client.http, method.lower())(path, headers=sent_headers, **({"body": payload} if payload is not None else {}))
    try:
        return response.status_code, json.loads(response.body)
    except ValueError:
        return response.status_code, response.body


def approve(stack: Stack, package: str, maturity: str = "INTERN") -> None:
    status, body = call(stack, "POST", "/api/packages/approve", {"package_name": package, "min_maturity": maturity})
    assert status == 201, body


def upload(stack: Stack, data: bytes) -> dict[str, Any]:
    status, body = call(stack, "POST", "/api/skills", data, content_type="text/markdown")
    assert status == 202, body
    return body


def import_ids(stack: Stack) -> list[str]:
    items = boto3.resource("dynamodb", region_name="us-east-1").Table(stack.settings.imports_table).scan()["Items"]
    return sorted(i["import_id"] for i in items if i["pk"].startswith("import#"))


def skill_items(stack: Stack, skill_id: str) -> list[dict[str, Any]]:
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(stack.settings.skills_table)
    return [i for i in table.scan()["Items"] if i["pk"] == skill_id]


def queue_counts(stack: Stack, url: str) -> tuple[int, int]:
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def dead_letter_url(stack: Stack, source_url: str) -> str:
    policy = json.loads(stack.sqs.get_queue_attributes(QueueUrl=source_url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"])
    return stack.sqs.get_queue_url(QueueName=policy["deadLetterTargetArn"].rsplit(":", 1)[-1])["QueueUrl"]


def start_worker(stack: Stack, engine: Any, **options: Any) -> tuple[Any, threading.Thread]:
    """Another runner worker on the stack's runner queue (a replacement after a crash)."""
    from chalicelib.runner.worker import RunnerWorker
    from chalicelib.store.images import ImageStore
    from chalicelib.store.skills import DynamoSkillRegistry
    from chalicelib.store.stepfunctions import StepFunctionsOrchestrator

    settings = dict(retry_delay_seconds=1, wait_seconds=1, audit=None)
    settings.update(options)
    worker = RunnerWorker(engine, sqs=stack.sqs, queue_url=stack.settings.runner_queue_url, images=ImageStore(),
                          skills=DynamoSkillRegistry(), orchestrator=StepFunctionsOrchestrator(), **settings)  # fmt: skip
    thread = threading.Thread(target=worker.run_forever, name="replacement-runner", daemon=True)
    thread.start()
    return worker, thread
