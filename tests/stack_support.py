"""A whole skillharbor stack inside moto's in-process mock: tables, buckets,
queues and the real state machine, whose tasks run the app's functions
through the Lambda seam; a runner worker thread drains the runner queue with
the engine a test suite chooses (FakeEngine for tests/integration, the real
Docker engine for tests/docker)."""

from __future__ import annotations

import os
import time
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.local import lambda_seam
from chalicelib.local.provision import provision
from chalicelib.settings import get_settings

ADMIN_KEY = "shk_admin_test-key-0123456789abcdefghij"
RUNNER_SECRET = "runner-secret-for-the-tests-0123456789"  # every runner job is signed with it


class FakeEngine:
    """The runner's engine without Docker: builds are recorded, not performed.

    The real engine is exercised by tests/docker; here the queue protocol
    (task tokens, retries, results) is what is under test.
    """

    def __init__(self) -> None:
        self.builds: list[list[Any]] = []
        self.available = True

    def ensure_base(self) -> Any:
        from chalicelib.runner.base_image import BaseImageInfo

        self._check()
        return BaseImageInfo(tag="skillharbor/base:latest", image_id="sha256:" + "b" * 64, python_version="3.11",
                             manylinux_tag="manylinux_2_36_x86_64", source="offline")  # fmt: skip

    def build(self, pins: list[Any]) -> Any:
        from chalicelib.packages.pins import closure_digest
        from chalicelib.runner.builder import ImageInfo

        self._check()
        self.builds.append(list(pins))
        return ImageInfo(tag=f"skillharbor/env:{closure_digest(pins)[:32]}", image_id="sha256:" + "e" * 64, size=1, built=True)

    def image_exists(self, tag: str) -> bool:
        return True

    def pull(self, tag: str, digest: str, pins: list[Any]) -> Any:
        from chalicelib.runner.registry import RegistryError

        raise RegistryError("the fake engine has no registry")

    def run(self, request: Any) -> Any:
        raise AssertionError("runs need the real engine: see tests/docker")

    def remove_unused(self, *args: Any) -> list[str]:
        return []

    def prune_build_cache(self, *args: Any) -> dict[str, Any]:
        return {"removed_wheels": 0, "removed_staged_trees": 0}

    def _check(self) -> None:
        from chalicelib.errors import RunnerUnavailable

        if not self.available:
            raise RunnerUnavailable("Docker engine unreachable (test)")
FUNCTION_PREFIX = "skillharbor-dev-"


class Stack:
    def __init__(self, provisioned: Any, engine: Any):
        self.provisioned = provisioned
        settings = get_settings()
        self.settings = settings
        self.s3 = boto3.client("s3", region_name=settings.region)
        self.sqs = boto3.client("sqs", region_name=settings.region)
        self.sfn = boto3.client("stepfunctions", region_name=settings.region)
        from app import app

        self.app = app
        from chalicelib.runner.worker import RunnerWorker
        from chalicelib.store.images import ImageStore
        from chalicelib.store.skills import DynamoSkillRegistry
        from chalicelib.store.stepfunctions import StepFunctionsOrchestrator

        self.engine = engine
        self.runner = RunnerWorker(
            self.engine, sqs=self.sqs, queue_url=settings.runner_queue_url, images=ImageStore(),
            skills=DynamoSkillRegistry(), orchestrator=StepFunctionsOrchestrator(), retry_delay_seconds=1,
            wait_seconds=1, audit=None, secret=settings.runner_secret,
        )  # fmt: skip


    def map_inbox(self, prefix: str, owner: str = "team:inbox") -> None:
        """Let uploads under ``prefix`` publish as ``owner`` (an admin's PUT /api/inbox/prefixes)."""
        import json

        from chalice.test import Client

        with Client(self.app) as client:
            response = client.http.put("/api/inbox/prefixes", body=json.dumps({"prefix": prefix, "owner": owner}),
                                       headers={**ADMIN_HEADERS, "Content-Type": "application/json"})  # fmt: skip
        assert response.status_code == 200, response.body

    def deliver_inbox_events(self, *, max_messages: int = 10) -> int:
        """Play the SQS event source mapping once: hand queued upload events to the app."""
        from chalicelib.local.pollers import SqsPoller

        poller = SqsPoller(
            self.sqs, self.settings.inbox_queue_url, self.app.handler_map["inbox_event"], name="inbox", wait_seconds=0,
            retry_delay_seconds=0,
        )
        delivered = 0
        # S3 → SQS notifications may land a moment after put_object returns
        deadline = time.monotonic() + 10
        while not self._queued_or_imported() and time.monotonic() < deadline:
            time.sleep(0.1)
        for _ in range(max_messages):
            count = poller.poll_once()
            if count == 0 and poller.failed == 0:
                break
            delivered += count
            if poller.failed:
                break
        return delivered

    def _queued_or_imported(self) -> bool:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.settings.inbox_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        if int(attributes.get("ApproximateNumberOfMessages", "0")) > 0:
            return True
        items = boto3.resource("dynamodb", region_name=self.settings.region).Table(self.settings.imports_table).scan(Limit=5)
        return bool(items.get("Items"))

    def wait_for_import(self, import_id: str, timeout: float = 240.0) -> dict[str, Any]:
        from chalicelib.store.skills import DynamoImportStore

        store = DynamoImportStore()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = store.get(import_id)
            if record and record.get("status") in ("SUCCEEDED", "FAILED", "PENDING_APPROVAL"):
                if record.get("status") != "PENDING_APPROVAL" or self.execution_finished(import_id):
                    return record
            time.sleep(0.05)
        raise AssertionError(f"import {import_id} did not finish in {timeout}s: {store.get(import_id)}\n{self.diagnosis(import_id)}")

    def diagnosis(self, import_id: str) -> str:
        """What the state machine and the runner queue look like, for a stuck import's failure message."""
        lines = []
        try:
            arn = self.settings.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{import_id}"
            lines.append(f"execution: {self.sfn.describe_execution(executionArn=arn)['status']}")
            events = self.sfn.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=6)["events"]
            lines.append("last events: " + ", ".join(e["type"] for e in events))
            attributes = self.sqs.get_queue_attributes(QueueUrl=self.settings.runner_queue_url, AttributeNames=["All"])["Attributes"]
            counts = {k: attributes.get(k) for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                                                     "VisibilityTimeout")}  # fmt: skip
            lines.append(f"runner queue: {counts}")
            lines.append("threads: " + ", ".join(sorted(t.name for t in threading.enumerate())))
        except Exception as error:  # a diagnosis must not hide the failure
            lines.append(f"(diagnosis failed: {error})")
        return "\n".join(lines)

    def execution_finished(self, import_id: str) -> bool:
        executions = self.sfn.list_executions(stateMachineArn=self.settings.state_machine_arn)["executions"]
        mine = [e for e in executions if e["name"].startswith(import_id)]
        return bool(mine) and all(e["status"] != "RUNNING" for e in mine)

    def execution_status(self, import_id: str) -> str:
        arn = self.settings.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{import_id}"
        return self.sfn.describe_execution(executionArn=arn)["status"]


@contextlib.contextmanager
def running_stack(monkeypatch: pytest.MonkeyPatch, engine: Any) -> Iterator[Stack]:
    monkeypatch.setenv("SKILLHARBOR_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("SKILLHARBOR_RUNNER_SECRET", RUNNER_SECRET)
    with mock_aws(config=lambda_seam.STATE_MACHINE_CONFIG):
        lambda_seam.install()
        reset_all_clients()
        provisioned = provision(get_settings(), function_prefix=FUNCTION_PREFIX)
        for name, value in provisioned.environment().items():
            monkeypatch.setenv(name, value)
        from app import app

        lambda_seam.register_app(app, name_prefix=FUNCTION_PREFIX)
        stack = Stack(provisioned, engine)
        worker = threading.Thread(target=stack.runner.run_forever, name="test-runner", daemon=True)
        worker.start()
        # its first heartbeat written before a test starts: tests that count AWS calls must not see it
        deadline = time.monotonic() + 10
        while not stack.runner.images.runners() and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            yield stack
        finally:
            stack.runner.stop_event.set()
            worker.join(timeout=15)
            close = getattr(engine, "close", None)
            if close is not None:
                close()  # warm pools: their containers go with the stack
            lambda_seam.uninstall()
            reset_all_clients()


def reset_all_clients() -> None:
    from chalicelib.api import services
    from chalicelib.store import aws

    aws.reset_clients()  # every adapter's clients: DynamoDB, S3, SQS, Step Functions, Secrets Manager
    services.reset_services()


ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}
