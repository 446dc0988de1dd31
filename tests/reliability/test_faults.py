"""Faults injected at real boundaries of the stack (moto; the Docker engine where a test says so).

Each test breaks one thing the way it breaks in production (an unreachable
Docker host or package index, a throttled table, a dead worker, a poison
message, a missing advisory database, a replayed S3 event) and asserts what
a user would see: a clear status and reason, a retry that completes, and
no lost or duplicated records.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from urllib.parse import unquote_plus
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from chalice.test import Client

from chalicelib.errors import RunnerUnavailable
from chalicelib.store import dynamo
from stack_support import ADMIN_HEADERS, FakeEngine, running_stack

from reliability_support import (
    PLAIN_SKILL,
    SIX_SKILL,
    approve,
    call,
    dead_letter_url,
    import_ids,
    queue_counts,
    skill_items,
    skill_md,
    start_worker,
    upload,
)


def wait_until(predicate: Any, timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached in {timeout}s")


# --- poison messages ---------------------------------------------------------------------


def test_poison_inbox_message_lands_in_the_dead_letter_queue_and_is_visible_via_the_api(stack):
    from chalicelib.local.pollers import SqsPoller

    inbox = stack.settings.inbox_queue_url
    stack.sqs.send_message(QueueUrl=inbox, MessageBody="this is not an S3 notification")
    poller = SqsPoller(stack.sqs, inbox, stack.app.handler_map["inbox_event"], name="inbox", wait_seconds=0, retry_delay_seconds=0)
    for _ in range(12):  # maxReceiveCount is 5: every receive fails, then SQS moves the message
        poller.poll_once()
    assert poller.failed == 5
    assert queue_counts(stack, inbox) == (0, 0)

    for _ in range(2):  # peeking does not consume: the second look sees the same message
        status, report = call(stack, "GET", "/api/queues/dead-letters")
        assert status == 200, report
        inbox_dlq = next(q for q in report["queues"] if q["purpose"] == "inbox")
        assert inbox_dlq["dead_letter_queue"] == "skillharbor-inbox-events-dlq"
        assert inbox_dlq["messages"] == 1 and inbox_dlq["max_receive_count"] == 5
        assert [m["body"] for m in inbox_dlq["peek"]] == ["this is not an S3 notification"]
        assert report["total"] == 1
    assert queue_counts(stack, dead_letter_url(stack, inbox)) == (1, 0)


def test_poison_runner_message_lands_in_the_dead_letter_queue(stack):
    runner = stack.settings.runner_queue_url
    stack.sqs.send_message(QueueUrl=runner, MessageBody=json.dumps({"type": "teleport", "skill_id": "x"}))
    dlq = dead_letter_url(stack, runner)
    # the stack's runner worker drains the queue; a poison message is handed back at once, five times
    wait_until(lambda: queue_counts(stack, dlq)[0] == 1, timeout=60, what="the poison job in the runner DLQ")
    status, report = call(stack, "GET", "/api/queues/dead-letters?peek=10")
    assert status == 200
    runner_dlq = next(q for q in report["queues"] if q["purpose"] == "runner")
    assert runner_dlq["messages"] == 1
    assert json.loads(runner_dlq["peek"][0]["body"])["type"] == "teleport"
    assert runner_dlq["peek"][0]["receive_count"] >= 5


def test_dead_letter_report_is_admin_only_and_validates_peek(stack):
    status, body = call(stack, "POST", "/api/keys", {"role": "publisher", "name": "pub"})
    assert status == 201
    publisher = {"Authorization": f"Bearer {body['api_key']}"}
    status, body = call(stack, "GET", "/api/queues/dead-letters", headers=publisher)
    assert status == 403 and body["error"] == "forbidden"
    assert call(stack, "GET", "/api/queues/dead-letters", headers={})[0] == 401
    status, body = call(stack, "GET", "/api/queues/dead-letters?peek=99")
    assert status == 400 and "peek" in body["message"]


# --- DynamoDB throttling -----------------------------------------------------------------


class Throttle:
    """Fail the first ``times`` PutItem calls on ``table`` with a throttling error, inside the botocore client.

    Patched on ``BaseClient._make_api_call``: every client (however early a
    store bound its table) meets the fault exactly where the service's answer
    would come back.
    """

    def __init__(self, table: str, times: int, code: str = "ProvisionedThroughputExceededException"):
        self.table, self.remaining, self.code = table, times, code
        self.throttled = 0
        self.passed = 0
        self.lock = threading.Lock()

    def intercept(self, operation: str, params: dict[str, Any]) -> None:
        if operation != "PutItem" or params.get("TableName") != self.table:
            return
        with self.lock:
            if self.remaining == 0:
                self.passed += 1
                return
            self.remaining -= 1
            self.throttled += 1
        error = {"Error": {"Code": self.code, "Message": "Rate of requests exceeds the allowed throughput (injected)"},
                 "ResponseMetadata": {"HTTPStatusCode": 400}}  # fmt: skip
        raise ClientError(error, operation)


@pytest.fixture
def throttle(stack, monkeypatch):
    installed: list[Throttle] = []
    sleeps: list[float] = []
    monkeypatch.setattr(dynamo, "time", SimpleNamespace(sleep=sleeps.append))  # the backoff, recorded instead of slept
    original = BaseClient._make_api_call

    def faulty_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name == "dynamodb":
            for fault in installed:
                fault.intercept(operation, params)
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", faulty_call)

    def install(table: str, times: int, code: str = "ProvisionedThroughputExceededException") -> Throttle:
        fault = Throttle(table, times, code)
        installed.append(fault)
        return fault

    install.sleeps = sleeps  # type: ignore[attr-defined]
    return install


def test_throttled_writes_are_retried_with_backoff_and_stored_once(stack, throttle):
    fault = throttle(stack.settings.rules_table, times=3)
    status, body = call(stack, "POST", "/api/packages/ban", {"package_name": "leftpad", "reason": "incident 7"})
    assert status == 201, body
    assert fault.throttled == 3 and fault.passed == 1
    # jittered exponential backoff: attempt n waits base * 2**n * [0.5, 1.5)
    assert len(throttle.sleeps) == 3
    for attempt, delay in enumerate(throttle.sleeps):
        assert 0.05 * 2**attempt * 0.5 <= delay < 0.05 * 2**attempt * 1.5
    status, rules = call(stack, "GET", "/api/packages/rules?package_name=leftpad")
    assert [r["reason"] for r in rules["rules"]] == ["incident 7"]
    status, audit = call(stack, "GET", "/api/packages/audit?action=package.ban")
    assert len(audit["events"]) == 1


def test_a_table_that_stays_throttled_gives_a_clear_503_and_no_partial_state(stack, throttle):
    throttle(stack.settings.rules_table, times=100, code="ThrottlingException")
    status, body = call(stack, "POST", "/api/packages/ban", {"package_name": "leftpad", "reason": "incident 8"})
    assert status == 503
    assert body["error"] == "transient_error"
    assert "ThrottlingException" in body["message"]
    status, audit = call(stack, "GET", "/api/packages/audit?action=package.ban")
    assert audit["events"] == []  # no event for a ban that was not stored


def test_throttled_skill_table_during_an_import_does_not_fail_it(stack, throttle):
    fault = throttle(stack.settings.skills_table, times=2)
    accepted = upload(stack, PLAIN_SKILL)
    record = stack.wait_for_import(accepted["import_id"])
    assert record["status"] == "SUCCEEDED", record
    assert fault.throttled == 2
    assert len(skill_items(stack, "plain-adder")) == 1


# --- advisory database missing or corrupt -----------------------------------------------


@pytest.mark.parametrize(
    "make_db, expected",
    [
        (lambda tmp: tmp / "nowhere", "does not exist"),
        (lambda tmp: _write(tmp / "advisories.zip", b"PK\x03\x04 this is not really a zip"), "advisory database"),
        (lambda tmp: _write(tmp / "osv" / "PYSEC-0000-1.json", b"{ not json"), "advisory database"),
    ],
    ids=["missing", "corrupt-zip", "corrupt-record"],
)
def test_missing_or_corrupt_advisory_database_fails_the_scan_closed(monkeypatch, tmp_path, make_db, expected):
    db = make_db(tmp_path)
    if db.name.endswith(".json"):
        db = db.parent
    monkeypatch.setenv("SKILLHARBOR_ADVISORY_DB", str(db))
    with running_stack(monkeypatch, FakeEngine()) as stack:
        approve(stack, "six")
        accepted = upload(stack, SIX_SKILL)
        record = stack.wait_for_import(accepted["import_id"])
        assert record["status"] == "FAILED", record
        assert record["failed_step"] == "scan"
        assert record["error_type"] == "ScanUnavailable"
        assert "fails closed" in record["reason"] and expected in record["reason"]
        status, skill = call(stack, "GET", "/api/skills/six-helper")
        assert skill["status"] == "failed" and skill["status_reason"] == "scan_unavailable"
        assert skill["error"]["step"] == "scan"
        assert skill["requirements"] == ["six"] and [p["name"] for p in skill["pins"]] == ["six"]  # inputs kept
        assert not stack.engine.builds  # nothing unaudited was installed


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --- duplicated, out-of-order and repeated uploads ---------------------------------------


def _deliver_all(stack) -> None:
    from chalicelib.local.pollers import SqsPoller

    poller = SqsPoller(stack.sqs, stack.settings.inbox_queue_url, stack.app.handler_map["inbox_event"], name="inbox",
                       wait_seconds=0, retry_delay_seconds=0)  # fmt: skip
    while poller.poll_once():
        pass


def _take_events(stack) -> list[str]:
    """Every queued S3 notification body (test events dropped), removed from the queue.

    moto leaves ``versionId`` out of its notifications; S3 puts it in for a
    versioned bucket (the inbox is one), so it is added back here from the
    object's versions, matched by ETag.
    """
    bodies = []
    while True:
        messages = stack.sqs.receive_message(QueueUrl=stack.settings.inbox_queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            stack.sqs.delete_message(QueueUrl=stack.settings.inbox_queue_url, ReceiptHandle=message["ReceiptHandle"])
            notification = json.loads(message["Body"])
            if "Records" not in notification:
                continue
            for record in notification["Records"]:
                obj = record["s3"]["object"]
                versions = stack.s3.list_object_versions(Bucket=record["s3"]["bucket"]["name"], Prefix=unquote_plus(obj["key"]))["Versions"]
                obj.setdefault("versionId", next(v["VersionId"] for v in versions if v["ETag"].strip('"') == obj["eTag"]))
            bodies.append(json.dumps(notification))


def test_duplicated_and_out_of_order_upload_events_start_one_import_each(stack):
    stack.map_inbox("team/")
    first, second = skill_md("Ordered Skill", body="return 1"), skill_md("Ordered Skill", body="return 2")
    stack.s3.put_object(Bucket=stack.settings.inbox_bucket, Key="team/ordered/SKILL.md", Body=first)
    time.sleep(0.005)  # moto's events carry eventTime (ms) but no sequencer, which real S3 adds for same-key writes
    stack.s3.put_object(Bucket=stack.settings.inbox_bucket, Key="team/ordered/SKILL.md", Body=second)
    events = _take_events(stack)
    assert len(events) == 2
    # delivered newest first, then each one again (at-least-once delivery)
    for body in [events[1], events[0], events[1], events[0]]:
        stack.sqs.send_message(QueueUrl=stack.settings.inbox_queue_url, MessageBody=body)
    _deliver_all(stack)
    ids = import_ids(stack)
    assert len(ids) == 2
    for import_id in ids:
        assert stack.wait_for_import(import_id)["status"] == "SUCCEEDED"
    versions = {i["version"] for i in skill_items(stack, "ordered-skill")}
    assert len(versions) == 2  # both uploads kept, one record each


def test_out_of_order_upload_events_keep_the_newest_upload_as_latest(stack):
    from chalicelib.skills.model import content_version

    stack.map_inbox("team/")
    first, second = skill_md("Ordered Skill", body="return 1"), skill_md("Ordered Skill", body="return 2")
    stack.s3.put_object(Bucket=stack.settings.inbox_bucket, Key="team/ordered/SKILL.md", Body=first)
    time.sleep(0.005)  # moto's events carry eventTime (ms) but no sequencer, which real S3 adds for same-key writes
    stack.s3.put_object(Bucket=stack.settings.inbox_bucket, Key="team/ordered/SKILL.md", Body=second)
    events = _take_events(stack)
    for body in [events[1], events[0]]:
        stack.sqs.send_message(QueueUrl=stack.settings.inbox_queue_url, MessageBody=body)
        _deliver_all(stack)
        for import_id in import_ids(stack):
            stack.wait_for_import(import_id)
    status, latest = call(stack, "GET", "/api/skills/ordered-skill")
    assert latest["version"] == content_version({"SKILL.md": second})


def test_reuploading_the_same_skill_md_keeps_one_version_record(stack):
    accepted = [upload(stack, PLAIN_SKILL) for _ in range(2)]
    stack.map_inbox("again/", "key:bootstrap-admin")  # the admin's API upload made the skill the bootstrap key's
    stack.s3.put_object(Bucket=stack.settings.inbox_bucket, Key="again/SKILL.md", Body=PLAIN_SKILL)
    _deliver_all(stack)
    ids = import_ids(stack)
    assert len(ids) == 3  # each upload is followed as an import...
    for import_id in ids:
        assert stack.wait_for_import(import_id)["status"] == "SUCCEEDED"
    items = skill_items(stack, "plain-adder")
    assert len(items) == 1  # ...but they are one and the same version
    assert items[0]["version"] == accepted[0]["version"] == accepted[1]["version"]
    status, listing = call(stack, "GET", "/api/skills")
    assert [s["skill_id"] for s in listing["skills"]] == ["plain-adder"]


# --- a task function raising: Retry, then Catch --------------------------------------------


@pytest.mark.slow
def test_unreachable_package_index_is_retried_then_recorded_with_step_and_reason(monkeypatch, unused_port):
    monkeypatch.setenv("SKILLHARBOR_INDEX_URL", f"http://127.0.0.1:{unused_port}/simple")
    with running_stack(monkeypatch, FakeEngine()) as stack:
        accepted = upload(stack, SIX_SKILL)
        record = stack.wait_for_import(accepted["import_id"], timeout=300)
        assert record["status"] == "FAILED", record
        assert record["failed_step"] == "resolve"
        assert record["error_type"] == "TransientError"
        assert "package index unreachable" in record["reason"] and str(unused_port) in record["reason"]
        history = _history(stack, accepted["import_id"])
        resolve_attempts = [e for e in history if e["type"] == "LambdaFunctionScheduled"
                            and "resolve" in e.get("lambdaFunctionScheduledEventDetails", {}).get("resource", "")]  # fmt: skip
        assert len(resolve_attempts) == 4  # the first try and the ASL's three retries
        status, skill = call(stack, "GET", "/api/skills/six-helper")
        assert skill["status"] == "failed" and skill["status_reason"] == "transient_error"
        assert skill["error"]["step"] == "resolve" and skill["steps"]["parse"]["status"] == "succeeded"
        assert skill["requirements"] == ["six"]  # the inputs stay for a retry


def _history(stack, import_id: str) -> list[dict[str, Any]]:
    arn = stack.settings.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{import_id}"
    return stack.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- a runner worker killed mid-job ------------------------------------------------------


class WorkerKilled(BaseException):
    """Ends the worker thread the way SIGKILL ends the process: nothing after it runs."""


class DiesDuringFirstBuild(FakeEngine):
    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    def build(self, pins: list[Any]) -> Any:
        self.attempts += 1
        if self.attempts == 1:
            raise WorkerKilled()
        return super().build(pins)


@pytest.fixture
def thread_crashes(monkeypatch):
    """Thread deaths other than the simulated kill (a crash in moto's execution thread would otherwise hide)."""
    crashes: list[str] = []

    def hook(args: Any) -> None:
        if not isinstance(args.exc_value, WorkerKilled):
            crashes.append(f"{args.thread.name if args.thread else '?'}: {args.exc_type.__name__}: {args.exc_value}")

    monkeypatch.setattr(threading, "excepthook", hook)
    return crashes


def _short_visibility(stack, seconds: int = 2) -> None:
    """Compress time: the runner queue's 960 s visibility timeout becomes ``seconds``.

    A receive takes the queue's timeout when it starts: the worker's long poll
    already waiting would still hand a message out for 960 s (seen in CI when a
    cached resolution brought the build job within that second). Wait it out."""
    stack.sqs.set_queue_attributes(QueueUrl=stack.settings.runner_queue_url, Attributes={"VisibilityTimeout": str(seconds)})
    time.sleep(stack.runner.wait_seconds + 0.5)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the kill is the point
def test_worker_killed_mid_build_the_job_is_redelivered_and_completes_once(monkeypatch, thread_crashes):
    engine = DiesDuringFirstBuild()
    with running_stack(monkeypatch, engine) as stack:
        _short_visibility(stack)
        approve(stack, "six")
        accepted = upload(stack, SIX_SKILL)
        wait_until(lambda: engine.attempts >= 1, timeout=120, what="the first build attempt")
        replacement, thread = start_worker(stack, engine)
        try:
            try:
                record = stack.wait_for_import(accepted["import_id"])
            except AssertionError as error:
                raise AssertionError(f"{error}\nbuild attempts: {engine.attempts}; thread crashes: {thread_crashes}") from None
        finally:
            replacement.stop_event.set()
            thread.join(timeout=10)
        assert record["status"] == "SUCCEEDED", record
        assert engine.attempts == 2 and len(engine.builds) == 1
        assert queue_counts(stack, stack.settings.runner_queue_url) == (0, 0)
        assert queue_counts(stack, dead_letter_url(stack, stack.settings.runner_queue_url)) == (0, 0)
        status, skill = call(stack, "GET", "/api/skills/six-helper")
        assert skill["status"] == "ready" and skill["image_tag"].startswith("skillharbor/env:")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the kill is the point
def test_worker_killed_after_answering_but_before_deleting_is_harmless(monkeypatch):
    """The job finished, the message was not deleted: the redelivery must not fail the job or poison the queue."""
    engine = FakeEngine()
    with running_stack(monkeypatch, engine) as stack:
        _short_visibility(stack)
        real_delete = stack.sqs.delete_message
        deletes = {"runner": 0}

        def dies_on_first_delete(**kwargs: Any) -> Any:
            if kwargs.get("QueueUrl") == stack.settings.runner_queue_url:
                deletes["runner"] += 1
                if deletes["runner"] == 1:
                    raise WorkerKilled()
            return real_delete(**kwargs)

        stack.runner.sqs = SimpleNamespace(receive_message=stack.sqs.receive_message, delete_message=dies_on_first_delete,
                                           change_message_visibility=stack.sqs.change_message_visibility)  # fmt: skip
        approve(stack, "six")
        accepted = upload(stack, SIX_SKILL)
        record = stack.wait_for_import(accepted["import_id"])
        assert record["status"] == "SUCCEEDED", record
        replacement, thread = start_worker(stack, engine)
        try:
            wait_until(lambda: queue_counts(stack, stack.settings.runner_queue_url) == (0, 0), timeout=30,
                       what="the redelivered build job handled and deleted")  # fmt: skip
        finally:
            replacement.stop_event.set()
            thread.join(timeout=10)
        assert queue_counts(stack, dead_letter_url(stack, stack.settings.runner_queue_url)) == (0, 0)
        assert stack.execution_status(accepted["import_id"]) == "SUCCEEDED"
        assert len(import_ids(stack)) == 1


# --- the Docker engine unreachable -------------------------------------------------------

UNREACHABLE_DOCKER = "tcp://127.0.0.1:9"
#: the engine this machine really has (DOCKER_HOST and friends as the suite started)
REAL_DOCKER_ENV = {k: v for k, v in os.environ.items() if k.startswith("DOCKER_")}


def _docker_reachable() -> bool:
    from chalicelib.runner import engine

    try:
        engine.connect(timeout=5).close()
        return True
    except RunnerUnavailable:
        return False


needs_docker = pytest.mark.skipif("not _docker_reachable()", reason="the real Docker engine is not reachable")


class CountingDockerEngine:
    """The real DockerEngine, counting the RunnerUnavailable errors it raises (what the worker sees)."""

    def __init__(self) -> None:
        from chalicelib.runner.worker import DockerEngine
        from chalicelib.settings import get_settings

        self.inner = DockerEngine(get_settings())
        self.unavailable: list[str] = []
        self.builds: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            try:
                result = method(*args, **kwargs)
            except RunnerUnavailable as error:
                self.unavailable.append(str(error))
                raise
            if name == "run" and getattr(result, "status", None) is not None and result.status.value == "runner_unavailable":
                self.unavailable.append(result.error or "")
            if name == "build":
                self.builds.append(result)
            return result

        return counted


def _orphans_since(started: float, settle_seconds: float = 60) -> list[str]:
    """What :func:`_leftovers_since` still finds once concurrent builds (other suites) had time to prune theirs."""
    deadline = time.monotonic() + settle_seconds
    while True:
        left = _leftovers_since(started)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(2)


def _leftovers_since(started: float) -> list[str]:
    """Sandbox and build containers left stopped, and dangling images, created after ``started``.

    Other suites may be using the same engine: only leftovers (stopped run or
    build containers, dangling images) created during this test count.
    """
    import docker
    from datetime import datetime

    def created_after(iso: str) -> bool:
        return datetime.fromisoformat(iso[:26].rstrip("Z") + "+00:00").timestamp() >= started - 1

    client = docker.from_env(environment=REAL_DOCKER_ENV)
    try:
        left = []
        for role, states in (("run", ["exited", "dead"]), ("build", ["exited", "dead", "created"])):
            containers = client.containers.list(all=True, filters={"label": f"skillharbor.role={role}", "status": states})
            left += [c.name for c in containers if created_after(c.attrs["Created"])]
        dangling = client.images.list(filters={"dangling": True, "label": "skillharbor.managed=true"})
        left += [i.id for i in dangling if created_after(i.attrs["Created"])]
        return left
    finally:
        client.close()


@pytest.mark.docker
@needs_docker
def test_docker_unreachable_during_a_build_is_retried_and_completes_when_it_returns(monkeypatch):
    started = time.time()
    monkeypatch.setenv("DOCKER_HOST", UNREACHABLE_DOCKER)
    engine = CountingDockerEngine()
    with running_stack(monkeypatch, engine) as stack:
        approve(stack, "six")
        accepted = upload(stack, SIX_SKILL)
        wait_until(lambda: len(engine.unavailable) >= 2, timeout=120, what="two failed build attempts")
        assert all("Docker engine unreachable" in reason for reason in engine.unavailable)
        status, skill = call(stack, "GET", "/api/skills/six-helper")
        assert skill["status"] == "importing" and skill["requirements"] == ["six"]  # held, not failed, while retrying
        monkeypatch.delenv("DOCKER_HOST")  # the engine comes back
        record = stack.wait_for_import(accepted["import_id"], timeout=600)
        assert record["status"] == "SUCCEEDED", record
        status, skill = call(stack, "GET", "/api/skills/six-helper")
        assert skill["status"] == "ready" and skill["image_tag"].startswith("skillharbor/env:")
        assert [p["name"] for p in skill["pins"]] == ["six"] and skill["requirements"] == ["six"]
        assert len(engine.builds) == 1
        assert queue_counts(stack, dead_letter_url(stack, stack.settings.runner_queue_url)) == (0, 0)
    assert _orphans_since(started) == []


@pytest.mark.docker
@needs_docker
def test_docker_unreachable_during_a_run_is_retried_and_completes_when_it_returns(monkeypatch):
    started = time.time()
    engine = CountingDockerEngine()
    with running_stack(monkeypatch, engine) as stack:
        accepted = upload(stack, PLAIN_SKILL)
        assert stack.wait_for_import(accepted["import_id"])["status"] == "SUCCEEDED"
        monkeypatch.setenv("DOCKER_HOST", UNREACHABLE_DOCKER)
        engine.inner._reset()
        outcome: dict[str, Any] = {}

        def execute() -> None:
            with Client(stack.app) as client:
                response = client.http.post("/api/skills/plain-adder/execute", headers={**ADMIN_HEADERS, "Content-Type": "application/json"},
                                            body=json.dumps({"agent_id": "agent-r", "inputs": {"a": 20, "b": 22}}))  # fmt: skip
                outcome["status"], outcome["body"] = response.status_code, json.loads(response.body)

        caller = threading.Thread(target=execute)
        caller.start()
        wait_until(lambda: len(engine.unavailable) >= 2, timeout=60, what="two failed run attempts")
        assert all("unreachable" in reason.lower() for reason in engine.unavailable), engine.unavailable
        monkeypatch.delenv("DOCKER_HOST")  # the engine comes back
        caller.join(timeout=120)
        monkeypatch.delenv("DOCKER_HOST", raising=False)  # the test client restores the env it saw at its start
        if outcome["status"] == 202:  # the retries outlasted what a request waits: the result is at its URL
            outcome["status"], outcome["body"] = wait_until(
                lambda: (answer := call(stack, "GET", outcome["body"]["result_url"]))[0] == 200 and answer, timeout=120,
                what="the run's result at its URL")  # fmt: skip
        assert outcome["status"] == 200, outcome
        assert outcome["body"]["success"] is True and outcome["body"]["output"] == 42, outcome
    assert _orphans_since(started) == []


@pytest.mark.docker
@needs_docker
def test_docker_that_stays_away_fails_a_run_with_runner_unavailable(monkeypatch):
    engine = CountingDockerEngine()
    with running_stack(monkeypatch, engine) as stack:
        accepted = upload(stack, PLAIN_SKILL)
        assert stack.wait_for_import(accepted["import_id"])["status"] == "SUCCEEDED"
        monkeypatch.setenv("DOCKER_HOST", UNREACHABLE_DOCKER)
        engine.inner._reset()
        status, body = call(stack, "POST", "/api/skills/plain-adder/execute", {"agent_id": "agent-r", "inputs": {}})
        assert status == 200
        assert body["success"] is False and body["status"] == "runner_unavailable"
        assert "unreachable" in body["error"].lower()
        assert len(engine.unavailable) == 4  # the worker's max_attempts receives, then it gives up
        status, skill = call(stack, "GET", "/api/skills/plain-adder")
        assert skill["status"] == "ready"  # the skill itself is untouched
