"""Unaudited runs (issue 11, item 5): every run is on record from before it is sent to its end, whoever sees the
end, and every refusal of an authenticated run or install request is on record too."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from run_support import SKILL_ID, RunningEngine, agent, call, ready_skill, trail, wait_for
from stack_support import Stack, running_stack

from chalicelib.store.skills import DynamoSkillRegistry

SIX = {"name": "six", "version": "1.16.0", "sha256": "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254",
       "filename": "six-1.16.0-py2.py3-none-any.whl", "direct": True,
       "url": "https://files.pythonhosted.org/packages/d9/5a/e7c31adbe875f2abbb91bd84cf2dc52d792b5a01506781dbcf25c91daf11/six-1.16.0-py2.py3-none-any.whl"}  # fmt: skip


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    from chalicelib.store.audit import AuditStore

    with running_stack(monkeypatch, RunningEngine()) as running:
        running.runner.audit = AuditStore()  # as build_worker() wires it
        yield running


def _runs_of(stack: Stack, job_id: str) -> list[tuple[str, str]]:
    events = [e for e in trail(stack, action="skill.execute") if e["detail"].get("job_id") == job_id]
    return [(e["actor"], e["outcome"]) for e in events]


def test_a_run_is_audited_started_before_it_is_sent_and_ended_once(stack, monkeypatch):
    from chalicelib.api.services import execution_service

    ready_skill(stack)
    headers = agent(stack, "adder")
    at_send: list[list] = []
    queue = execution_service().queue
    send = queue.send
    monkeypatch.setattr(queue, "send", lambda job, **kw: (at_send.append(_runs_of(stack, job.job_id)), send(job, **kw))[1])
    status, result, _ = call(stack, "POST", f"/api/skills/{SKILL_ID}/execute", {"inputs": {"a": 1, "b": 2}}, headers)
    assert status == 200 and result["output"] == 3
    assert at_send == [[("agent:adder", "started")]]  # on record before the job left the API
    events = [e for e in trail(stack, skill_id=SKILL_ID, action="skill.execute")]
    assert [(e["actor"], e["outcome"]) for e in events] == [("agent:adder", "started"), ("agent:adder", "ok")]  # the API and
    started, ended = events  # the worker both appended the end: one event
    assert started["detail"]["job_id"] == ended["detail"]["job_id"] and ended["detail"]["status"] == "ok"
    assert ended["detail"]["worker"] == stack.runner.worker_id and started["agent_id"] == ended["agent_id"] == "adder"


def test_the_worker_records_the_end_of_a_run_the_api_stopped_waiting_for(stack, monkeypatch):
    """The API answers 202 and is gone (as after a crash, or its function's timeout): the run's end is still on
    record, written by the worker, without anyone asking for the result."""
    ready_skill(stack)
    headers = agent(stack, "patient")
    monkeypatch.setenv("SKILLHARBOR_RUN_SYNC_WAIT_SECONDS", "0.2")
    stack.engine.hold = threading.Event()
    try:
        status, pending, _ = call(stack, "POST", f"/api/skills/{SKILL_ID}/execute", {"inputs": {"a": 5}}, headers)
        assert status == 202, pending
        assert _runs_of(stack, pending["job_id"]) == [("agent:patient", "started")]
    finally:
        stack.engine.hold.set()
    wait_for(lambda: _runs_of(stack, pending["job_id"]), lambda runs: len(runs) == 2, "the worker's end event")
    assert _runs_of(stack, pending["job_id"]) == [("agent:patient", "started"), ("agent:patient", "ok")]
    status, result, _ = call(stack, "GET", pending["result_url"], headers=headers)
    assert status == 200 and result["output"] == 5
    assert len(_runs_of(stack, pending["job_id"])) == 2  # reading the result adds no second end


def test_a_run_no_worker_ends_is_ended_by_the_api_when_it_is_overdue(stack, monkeypatch):
    from chalicelib.workflow import run_handoff

    ready_skill(stack)
    headers = agent(stack, "stranded")
    stack.runner.stop_event.set()  # no worker takes jobs any more, once its last receive is over
    wait_for(lambda: [t for t in threading.enumerate() if t.name.startswith("runner-")], lambda alive: not alive, "the worker stopped")
    monkeypatch.setattr(run_handoff, "RUN_MARGIN_SECONDS", 0.2)
    monkeypatch.setenv("SKILLHARBOR_RUN_SYNC_WAIT_SECONDS", "0.2")
    status, pending, _ = call(stack, "POST", f"/api/skills/{SKILL_ID}/execute", {"inputs": {}, "timeout_seconds": 0.2}, headers)
    assert status == 202, pending
    time.sleep(1.0)  # past the time its result was due (2 x (0.2 s timeout + 0.2 s margin))
    status, result, _ = call(stack, "GET", pending["result_url"], headers=headers)
    assert status == 200 and result["status"] == "runner_unavailable" and "in time" in result["error"], result
    assert _runs_of(stack, pending["job_id"]) == [("agent:stranded", "started"), ("agent:stranded", "failed")]


def test_a_run_result_is_for_its_agent_and_admins(stack):
    ready_skill(stack)
    owner, other = agent(stack, "owner"), agent(stack, "other")
    assert call(stack, "POST", f"/api/skills/{SKILL_ID}/execute", {"inputs": {"a": 1}}, owner)[0] == 200
    job_id = next(e["detail"]["job_id"] for e in trail(stack, action="skill.execute"))
    assert call(stack, "GET", f"/api/runs/{job_id}", headers=owner)[0] == 200
    assert call(stack, "GET", f"/api/runs/{job_id}")[0] == 200  # the admin
    status, body, _ = call(stack, "GET", f"/api/runs/{job_id}", headers=other)
    assert status == 403 and body["error"] == "forbidden"
    assert call(stack, "GET", "/api/runs/run-" + "0" * 24, headers=owner)[0] == 404
    status, body, _ = call(stack, "GET", "/api/runs/not-a-run-id", headers=owner)
    assert status == 400 and "run- followed by 24 hex digits" in body["message"]


def test_every_refusal_of_an_authenticated_run_or_install_is_audited(stack):
    ready_skill(stack)
    student, intern = agent(stack, "pupil", "STUDENT"), agent(stack, "trainee")
    status, publisher, _ = call(stack, "POST", "/api/keys", {"role": "publisher", "name": "pub"})
    as_publisher = {"Authorization": f"Bearer {publisher['api_key']}"}
    registry = DynamoSkillRegistry()
    registry.put_version({"skill_id": "six-user", "version": "v1", "name": "six user", "status": "ready", "pins": [SIX],
                          "artifact_key": "none", "uploaded_at": "2026-01-01T00:00:00.000000Z"})  # fmt: skip
    registry.put_version({"skill_id": "pkgset:pupil:sixset", "version": "v1", "name": "sixset", "agent_id": "pupil", "status": "ready",
                          "skill_type": "package_set",
                          "pins": [SIX], "image_tag": "skillharbor/env:" + "a" * 32, "uploaded_at": "2026-01-01T00:00:00.000000Z"})  # fmt: skip
    registry.put_version({"skill_id": "broken-pins", "version": "v1", "name": "Broken Pins", "status": "failed",
                          "status_reason": "invalid_skill", "uploaded_at": "2026-01-01T00:00:00.000000Z"})  # fmt: skip

    refusals = [  # (what, method, path, body, headers, status, action, actor)
        ("permission denied", "POST", "/api/skills/six-user/execute", {"inputs": {}}, student, 403, "skill.execute", "agent:pupil"),
        ("not ready", "POST", "/api/skills/broken-pins/execute", {"inputs": {}}, intern, 409, "skill.execute", "agent:trainee"),
        ("no such skill", "POST", "/api/skills/nothing-here/execute", {"inputs": {}}, intern, 404, "skill.execute", "agent:trainee"),
        ("bad input", "POST", f"/api/skills/{SKILL_ID}/execute", {"inputs": "nope"}, intern, 400, "skill.execute", "agent:trainee"),
        ("limits over the maxima", "POST", f"/api/skills/{SKILL_ID}/execute", {"memory_mb": 10**6}, intern, 400, "skill.execute",
         "agent:trainee"),
        ("acting as another agent", "POST", f"/api/skills/{SKILL_ID}/execute", {"agent_id": "pupil"}, intern, 403, "skill.execute",
         "agent:trainee"),
        ("wrong role", "POST", f"/api/skills/{SKILL_ID}/execute", {"agent_id": "trainee"}, as_publisher, 403, "skill.execute",
         "publisher:pub"),
        ("seed execute, permission denied", "POST", "/api/packages/execute", {"skill_id": "sixset", "code": "x = 1"}, student, 403,
         "skill.execute", "agent:pupil"),
        ("seed execute, no image", "POST", "/api/packages/execute", {"skill_id": "unknown", "code": "x = 1"}, intern, 404,
         "skill.execute", "agent:trainee"),
        ("seed execute, bad input", "POST", "/api/packages/execute", {"skill_id": "sixset"}, intern, 400, "skill.execute",
         "agent:trainee"),
        ("seed install, invalid requirement", "POST", "/api/packages/install",
         {"skill_id": "x", "requirements": ["six", "--index-url http://evil"]}, intern, 400, "package.install", "agent:trainee"),
        ("seed install, bad input", "POST", "/api/packages/install", {"skill_id": "x", "requirements": "six"}, intern, 400,
         "package.install", "agent:trainee"),
        # refused and audited by the package-set service itself: still one event
        ("seed install, permission denied", "POST", "/api/packages/install", {"skill_id": "x", "requirements": ["six"]}, student,
         403, "package.install", "agent:pupil"),
    ]  # fmt: skip
    before = {e["event_id"] for e in trail(stack)}
    for what, method, path, body, headers, expected, action, actor in refusals:
        status, answer, _ = call(stack, method, path, body, headers)
        assert status == expected, (what, answer)
        new = [e for e in trail(stack) if e["event_id"] not in before]
        before |= {e["event_id"] for e in new}
        assert [(e["action"], e["actor"], e["outcome"]) for e in new] == [(action, actor, "denied")], (what, new)
        if "status" in new[0]["detail"]:  # (the service's own event says it in its own words)
            assert new[0]["detail"]["status"] == expected and new[0]["detail"]["error"] == answer["error"], what
    assert call(stack, "POST", f"/api/skills/{SKILL_ID}/execute", {}, {"Authorization": "Bearer nope"})[0] == 401
    assert [e for e in trail(stack) if e["event_id"] not in before] == []  # no actor to name: not audited
