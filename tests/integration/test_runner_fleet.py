"""The runner fleet (issue 17): workers register and heartbeat, GET /api/runners lists them, and the API
routes direct runs across them, never resending a run a worker had claimed.

Three workers in this process, each with its own direct endpoint and an engine that runs without Docker
(the run path is under test; tests/docker/test_fleet.py runs real worker processes)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from run_support import SKILL_ID, RunningEngine, agent, call, ready_skill, wait_for
from stack_support import RUNNER_SECRET, Stack, running_stack

from chalicelib.runner.worker import RunnerWorker
from chalicelib.store.images import ImageStore
from chalicelib.store.runners import RunnerFleet
from chalicelib.store.skills import DynamoSkillRegistry
from chalicelib.store.stepfunctions import StepFunctionsOrchestrator

BEAT = 0.3


class Fleet:
    def __init__(self, stack: Stack):
        self.stack = stack
        self.workers: dict[str, RunnerWorker] = {}
        self.threads: dict[str, threading.Thread] = {}

    def add(self, name: str, slots: int = 2) -> RunnerWorker:
        worker = RunnerWorker(RunningEngine(), sqs=self.stack.sqs, queue_url=self.stack.settings.runner_queue_url, images=ImageStore(),
                              skills=DynamoSkillRegistry(), orchestrator=StepFunctionsOrchestrator(), secret=RUNNER_SECRET,
                              direct_listen="127.0.0.1:0", fleet=RunnerFleet(), heartbeat_seconds=BEAT, wait_seconds=1,
                              worker_id=name)  # fmt: skip
        thread = threading.Thread(target=worker.run_forever, kwargs={"threads": slots}, name=f"fleet-{name}", daemon=True)
        thread.start()
        self.workers[name], self.threads[name] = worker, thread
        wait_for(lambda: {m["worker_id"]: m for m in RunnerFleet().members()}.get(name, {}), lambda m: bool(m.get("endpoint")),
                 f"{name} registered with its endpoint")  # fmt: skip
        return worker

    def stop(self, name: str) -> None:
        self.workers[name].stop_event.set()
        self.threads[name].join(15)


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    from chalicelib.local.moto_locks import serialise_dynamodb

    serialise_dynamodb()  # many threads on one in-process moto, as the local stack has (moto is not thread-safe)
    with running_stack(monkeypatch, RunningEngine()) as stack:
        ready_skill(stack)
        group = Fleet(stack)
        try:
            yield group
        finally:
            for name in list(group.workers):
                group.stop(name)


def _members() -> dict[str, dict]:
    return {m["worker_id"]: m for m in RunnerFleet().members()}


def test_the_fleet_lists_each_worker_and_one_that_stops_beating_is_gone(fleet):
    for name in ("a", "b"):
        fleet.add(name)
    status, body, _ = call(fleet.stack, "GET", "/api/runners")
    assert status == 200, body
    listed = {m["worker_id"]: m for m in body["runners"]}
    for name in ("a", "b"):
        member = listed[name]
        assert member["state"] == "up" and member["endpoint"].startswith("http://127.0.0.1:")
        assert member["slots"] == 2 and member["runtimes"] == ["runc"] and member["heartbeat_seconds"] == BEAT
    assert body["up"] >= 2 and body["slots"] >= 4

    RunnerFleet().beat("silent", heartbeat_seconds=BEAT, endpoint="http://127.0.0.1:9", slots=4, free_slots=4)
    assert _members()["silent"]["state"] == "up"
    time.sleep(3 * BEAT + 0.3)  # three heartbeats missed
    assert _members()["silent"]["state"] == "gone"
    fleet.stop("b")
    assert _members()["b"]["state"] == "stopped" and _members()["a"]["state"] == "up"

    status, body, _ = call(fleet.stack, "GET", "/api/runners", headers=agent(fleet.stack, "nosy"))
    assert status == 403, body


def test_a_burst_of_runs_spreads_over_every_worker(fleet):
    names = ("a", "b", "c")
    for name in names:
        fleet.add(name)
    headers = agent(fleet.stack, "bursty")

    def one(i: int) -> tuple[int, dict]:
        status, result, _ = call(fleet.stack, "POST", f"/api/skills/{SKILL_ID}/execute", {"inputs": {"a": i, "b": 1}}, headers)
        deadline = time.monotonic() + 120
        while status == 202 and time.monotonic() < deadline:  # a loaded machine: the run outlasted the request's wait
            time.sleep(0.2)
            status, result, _ = call(fleet.stack, "GET", result["result_url"], headers=headers)
        return status, result

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(one, range(30)))
    assert [a for a in answers if a[0] != 200 or a[1]["status"] != "ok"] == []
    assert sorted(result["output"] for _, result in answers) == [i + 1 for i in range(30)]
    counts = {name: len(fleet.workers[name].engine.runs) for name in names}
    assert sum(counts.values()) + len(fleet.stack.engine.runs) == 30, counts  # each run once
    assert all(count >= 3 for count in counts.values()), counts  # tests/docker/test_fleet.py asks 10 of 60 of real workers


class _Died(BaseException):
    """Stands for the worker process dying: its connection closes with no answer, nothing is recorded."""


def test_a_run_lost_with_its_worker_is_reported_lost_and_never_run_again(fleet):
    worker = fleet.add("doomed")
    execute_run = worker.execute_run

    def run_then_die(job, **options):
        # dies with the run under way: claimed and started, its outcome never recorded (a run that
        # finished is on record before the worker answers, and is answered from there)
        execute_run(job, **options)
        raise _Died()

    worker.execute_run = run_then_die
    headers = agent(fleet.stack, "unlucky")
    status, result, _ = call(fleet.stack, "POST", f"/api/skills/{SKILL_ID}/execute", {"inputs": {"a": 1}}, headers)
    assert status == 200 and result["status"] == "runner_unavailable", result
    assert "lost" in result["error"] and "doomed" in result["error"] and "not retried" in result["error"]
    time.sleep(1.5)  # a resent or queued copy would have run by now
    assert len(worker.engine.runs) == 1 and fleet.stack.engine.runs == []


def test_a_worker_gone_before_it_claimed_the_run_passes_it_to_another(fleet):
    RunnerFleet().beat("vanished", heartbeat_seconds=60, endpoint="http://127.0.0.1:9", slots=8, free_slots=8, runtimes=["runc"])
    worker = fleet.add("steady")
    headers = agent(fleet.stack, "patient")
    for i in range(4):
        status, result, _ = call(fleet.stack, "POST", f"/api/skills/{SKILL_ID}/execute", {"inputs": {"a": i}}, headers)
        assert status == 200 and result["status"] == "ok" and result["output"] == i, result
    assert len(worker.engine.runs) + len(fleet.stack.engine.runs) == 4


def test_workers_publish_their_slots_for_the_autoscaling_at_most_once_a_minute(monkeypatch):
    import boto3
    from moto import mock_aws

    from chalicelib.store import aws
    from chalicelib.store.metrics import RunnerMetrics

    monkeypatch.setenv("SKILLHARBOR_RUNNER_METRICS_NAMESPACE", "skillharbor/runners")
    monkeypatch.setenv("SKILLHARBOR_RUNNER_FLEET_NAME", "prod")
    with mock_aws():
        aws.reset_clients()
        metrics = RunnerMetrics()
        assert metrics.publish(slots=4, free_slots=3, now=1000.0) is True
        assert metrics.publish(slots=4, free_slots=0, now=1030.0) is False  # within the minute
        listed = boto3.client("cloudwatch", region_name="us-east-1").list_metrics(Namespace="skillharbor/runners")["Metrics"]
        assert sorted(m["MetricName"] for m in listed) == ["FreeSlots", "Slots"]
        assert all(m["Dimensions"] == [{"Name": "Fleet", "Value": "prod"}] for m in listed)
        monkeypatch.setenv("SKILLHARBOR_RUNNER_METRICS_NAMESPACE", "")
        assert RunnerMetrics().publish(slots=4, free_slots=4, now=5000.0) is False  # off without a namespace
    aws.reset_clients()
