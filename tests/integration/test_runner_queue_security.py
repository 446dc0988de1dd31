"""Queue forgery (issue 11, item 8): whoever can send to the runner queue, without the runner secret, gets nothing run.

Each test sends its attack to the runner queue in moto, where the stack's
runner worker drains it with an engine that records every run, build and
removal it is asked for.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from run_support import (
    SKILL_ID,
    RunningEngine,
    agent,
    call,
    dead_letter_url,
    queue_counts,
    ready_skill,
    run_done,
    trail,
    wait_for,
    wait_until,
)
from stack_support import RUNNER_SECRET, Stack, running_stack

from chalicelib.packages.pins import Pin
from chalicelib.runner.jobs import BuildJob, CleanupJob, RemoveJob, RunJob
from chalicelib.runner.signing import seal
from chalicelib.runner.spec import RunLimits
from chalicelib.settings import Settings
from chalicelib.store.runs import RunStore


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    from chalicelib.store.audit import AuditStore

    with running_stack(monkeypatch, RunningEngine()) as running:
        running.runner.audit = AuditStore()  # the worker audits refusals and run ends, as build_worker() wires it
        yield running


def _run_job(**fields) -> RunJob:
    return RunJob(**{"skill_id": SKILL_ID, "version": "v1", "code": "import os\ndef execute():\n    return os.listdir('/')\n",
                     "entrypoint": "execute", "agent_id": "intruder", **fields})  # fmt: skip


def _send(stack: Stack, body: str) -> None:
    stack.sqs.send_message(QueueUrl=stack.settings.runner_queue_url, MessageBody=body)


def _refusals(stack: Stack) -> list[dict]:
    return trail(stack, action="runner.job_refused")


def test_unsigned_forged_and_altered_jobs_run_nothing_are_audited_and_dead_lettered(stack):
    evil_pin = Pin(name="evil", version="1", sha256="0" * 64, filename="evil-1-py3-none-any.whl", url="file:///etc/shadow")
    genuine = json.loads(seal(RUNNER_SECRET, _run_job(), lifetime_seconds=60))
    altered = json.loads(genuine["job"]) | {"code": "def execute():\n    return open('/etc/passwd').read()\n"}
    attacks = {
        "unsigned run (the old wire form)": _run_job().model_dump_json(),
        "unsigned build with a file:// pin": BuildJob(skill_id="x", pins=[evil_pin], result_id="job-x").model_dump_json(),
        "unsigned cleanup of every image": CleanupJob(ttl_days=0, requested_by="admin:bootstrap admin").model_dump_json(),
        "unsigned removal of the base image": RemoveJob(image_tag="skillharbor/base:latest", requested_by="admin").model_dump_json(),
        "run signed with a guessed secret": seal("guessed-runner-secret-0123456789", _run_job(), lifetime_seconds=60),
        "genuine signature on altered code": json.dumps({**genuine, "job": json.dumps(altered)}),
    }
    for body in attacks.values():
        _send(stack, body)
    dlq = dead_letter_url(stack)
    wait_until(lambda: queue_counts(stack, dlq)[0] == len(attacks), "every forged message in the dead-letter queue")
    assert queue_counts(stack, stack.settings.runner_queue_url) == (0, 0)  # not retried forever
    assert stack.engine.runs == [] and stack.engine.builds == [] and stack.engine.removed == []
    refusals = wait_for(lambda: _refusals(stack), lambda r: len(r) >= len(attacks), "the refusals audited")
    assert len(refusals) == len(attacks)  # audited once each, though each was received several times
    assert sorted(e["detail"]["reason"] for e in refusals) == sorted(["unsigned"] * 4 + ["forged", "body_mismatch"])
    for event in refusals:
        assert event["actor"] == "system" and event["outcome"] == "denied"
        assert event["agent_id"] is None  # what an unsigned message claims is not filed under that agent
        assert event["detail"]["sender_id"] and len(event["detail"]["body_sha256"]) == 64
    _, report, _ = call(stack, "GET", "/api/queues/dead-letters?peek=10")
    runner = next(q for q in report["queues"] if q["purpose"] == "runner")
    assert runner["messages"] == len(attacks)  # there for an operator to look at


def test_a_captured_signed_run_job_replayed_on_the_queue_runs_once(stack, monkeypatch):
    from chalicelib.store.queues import sqs_client

    ready_skill(stack)
    headers = agent(stack, "adder")
    captured: list[str] = []
    client = sqs_client()  # the API's runner-queue sends go through this client
    send = client.send_message
    monkeypatch.setattr(client, "send_message", lambda **kw: (captured.append(kw["MessageBody"]), send(**kw))[1])
    status, result, _ = call(stack, "POST", f"/api/skills/{SKILL_ID}/execute", {"inputs": {"a": 2, "b": 3}}, headers)
    assert status == 200 and result["output"] == 5, result
    assert len(captured) == 1 and len(stack.engine.runs) == 1
    for _ in range(3):  # whoever captured it sends it again
        _send(stack, captured[0])
    wait_until(lambda: queue_counts(stack, stack.settings.runner_queue_url) == (0, 0), "the replays drained")
    assert len(stack.engine.runs) == 1
    job_id = json.loads(json.loads(captured[0])["job"])["job_id"]
    status, again, _ = call(stack, "GET", f"/api/runs/{job_id}", headers=headers)
    assert status == 200 and again["output"] == 5  # the one result stands


def test_a_genuine_job_that_expired_in_the_queue_is_answered_not_run(stack):
    job = _run_job(agent_id="late-agent", requested_by="agent:late-agent")
    RunStore().register(job.job_id, agent_id=job.agent_id, skill_id=job.skill_id, requested_by=job.requested_by,
                        start_by=time.time() - 55, result_due=time.time() + 60)  # fmt: skip
    _send(stack, seal(RUNNER_SECRET, job, lifetime_seconds=5, now=time.time() - 60))  # e.g. the queue was backed up
    record = run_done(job.job_id)
    assert record["result"]["status"] == "runner_unavailable" and "expired" in record["result"]["error"]
    assert stack.engine.runs == []
    assert queue_counts(stack, stack.settings.runner_queue_url) == (0, 0)  # answered, so deleted
    refusal = wait_until(lambda: _refusals(stack), "the refusal audited")[0]
    assert refusal["detail"]["reason"] == "expired" and refusal["detail"]["job_id"] == job.job_id
    assert refusal["agent_id"] == "late-agent"  # genuine, so filed under its agent
    ended = [e for e in trail(stack, action="skill.execute") if e["detail"].get("job_id") == job.job_id]
    assert [(e["actor"], e["outcome"]) for e in ended] == [("agent:late-agent", "failed")]


def test_the_runner_holds_jobs_to_its_own_maxima_and_images(stack, monkeypatch):
    """An API allowed more than this runner allows (or compromised into asking for it) gets a refusal, not a run."""
    ready_skill(stack)
    headers = agent(stack, "greedy")
    monkeypatch.setenv("SKILLHARBOR_MAX_MEMORY_MB", "65536")  # the API's ceiling
    stack.runner._maxima = Settings(max_memory_mb=1024)  # the runner's own
    status, result, _ = call(stack, "POST", f"/api/skills/{SKILL_ID}/execute", {"inputs": {}, "memory_mb": 32768}, headers)
    assert status == 200 and result["status"] == "runner_unavailable", result
    assert "memory_mb=32768 exceeds this runner's maximum 1024" in result["error"]
    job = _run_job(image_tag="docker:dind", limits=RunLimits())
    RunStore().register(job.job_id, agent_id=job.agent_id, skill_id=job.skill_id, start_by=time.time() + 60, result_due=time.time() + 120)
    _send(stack, seal(RUNNER_SECRET, job, lifetime_seconds=60))
    assert "is not one this runner builds" in run_done(job.job_id)["result"]["error"]
    assert stack.engine.runs == []
    refusals = wait_for(lambda: _refusals(stack), lambda r: len(r) == 2, "the refusals audited")
    reasons = sorted(e["detail"]["reason"] for e in refusals)
    assert reasons == ["image", "limits"]


def test_a_signed_run_nobody_registered_is_refused(stack):
    job = _run_job()
    _send(stack, seal(RUNNER_SECRET, job, lifetime_seconds=60))
    refusal = wait_until(lambda: _refusals(stack), "the refusal audited")[0]
    assert refusal["detail"]["reason"] == "unregistered" and stack.engine.runs == []
