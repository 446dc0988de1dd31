"""Audit completeness: a scripted session of every operation, one audit event per operation.

Each step performs one operation through the API (as the admin or as the
agent), waits for what it set off (an import, a runner job), then reads the
trail back through ``GET /api/packages/audit`` and asserts exactly the events
that operation owes: action, actor and outcome, nothing missing and nothing
twice. Operations that do two things say so (creating an agent also issues
its key; an approval also answers the pending request it covers).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.runner.spec import RunResult, RunStatus
from stack_support import FakeEngine, running_stack

from reliability_support import SIX_SKILL, call

ADMIN = "admin:bootstrap admin"
AGENT = "agent:agent-007"
SYSTEM = "system"


class SessionEngine(FakeEngine):
    """Builds, runs and removals that succeed without Docker (the protocol, not the sandbox, is under test)."""

    def run(self, request: Any) -> RunResult:
        return RunResult(status=RunStatus.OK, output="py3", image=request.image)

    def remove_unused(self, last_used: Any, ttl: Any, now: Any, dry_run: bool) -> list[str]:
        return ["skillharbor/env:stale-image"]

    def prune_build_cache(self, *args: Any) -> dict[str, Any]:
        return {"removed_wheels": 0, "removed_staged_trees": 0}

    def remove(self, tag: str) -> bool:
        return True


@pytest.fixture
def session(monkeypatch):
    from chalicelib.store.audit import AuditStore

    with running_stack(monkeypatch, SessionEngine()) as stack:
        stack.runner.audit = AuditStore()  # the worker audits image removals, as build_worker() wires it
        yield stack


def trail(stack) -> list[dict[str, Any]]:
    events, token = [], None
    while True:
        status, page = call(stack, "GET", "/api/packages/audit?limit=1000" + (f"&next_token={token}" if token else ""))
        assert status == 200, page
        events += page["events"]
        token = page["next_token"]
        if not token:
            return events


class Recorder:
    """Runs one operation at a time and returns the audit events it added."""

    def __init__(self, stack):
        self.stack = stack
        self.seen = {e["event_id"] for e in trail(stack)}
        self.operations: list[tuple[str, list[tuple[str, str, str]]]] = []

    def new_events(self) -> list[dict[str, Any]]:
        events = [e for e in trail(self.stack) if e["event_id"] not in self.seen]
        self.seen |= {e["event_id"] for e in events}
        return sorted(events, key=lambda e: e["time"])

    def expect(self, operation: str, expected: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
        events = self.new_events()
        got = Counter((e["action"], e["actor"], e["outcome"]) for e in events)
        assert got == Counter(expected), f"{operation}: expected {expected}, got {sorted(got.elements())}"
        self.operations.append((operation, expected))
        return events


def test_every_operation_leaves_exactly_its_audit_events(session):
    stack = session
    audit = Recorder(stack)

    status, agent = call(stack, "POST", "/api/agents", {"agent_id": "agent-007", "maturity": "INTERN"})
    assert status == 201, agent
    events = audit.expect("create agent (and its key)", [("agent.create", ADMIN, "ok"), ("key.create", ADMIN, "ok")])
    assert all(e["agent_id"] == "agent-007" for e in events)
    as_agent = {"Authorization": f"Bearer {agent['api_key']}"}

    status, key = call(stack, "POST", "/api/keys", {"role": "publisher", "name": "ci"})
    assert status == 201, key
    audit.expect("create key", [("key.create", ADMIN, "ok")])

    status, body = call(stack, "DELETE", f"/api/keys/{key['key_id']}")
    assert status == 200, body
    events = audit.expect("revoke key", [("key.revoke", ADMIN, "ok")])
    assert events[0]["detail"]["key_id"] == key["key_id"]

    status, body = call(stack, "PATCH", "/api/agents/agent-007", {"maturity": "SUPERVISED"})
    assert status == 200, body
    events = audit.expect("change maturity", [("agent.update", ADMIN, "ok")])
    assert events[0]["detail"] == {"maturity": "SUPERVISED", "previous": "INTERN"}

    status, body = call(stack, "GET", "/api/packages/check?package_name=six&version=1.17.0", headers=as_agent)
    assert status == 200 and body["allowed"] is False, body
    audit.expect("check (denied)", [("package.check", AGENT, "denied")])

    status, request = call(stack, "POST", "/api/packages/request",
                           {"package_name": "six", "version": "1.17.0", "reason": "needs py2/3 helpers"}, headers=as_agent)  # fmt: skip
    assert status == 201, request
    audit.expect("request approval", [("package.request", AGENT, "pending")])

    status, approval = call(stack, "POST", "/api/packages/approve", {"package_name": "six", "min_maturity": "INTERN"})
    assert status == 201 and approval["fulfilled_requests"] == [request["request_id"]], approval
    audit.expect("approve (answers the request)", [("package.approve", ADMIN, "ok"), ("request.decide", ADMIN, "ok")])

    status, body = call(stack, "GET", "/api/packages/check?package_name=six&version=1.17.0", headers=as_agent)
    assert status == 200 and body["allowed"] is True, body
    audit.expect("check (allowed)", [("package.check", AGENT, "allowed")])

    status, unwanted = call(stack, "POST", "/api/packages/request",
                            {"package_name": "leftpad", "version": "1.0.0", "reason": "pads"}, headers=as_agent)  # fmt: skip
    assert status == 201, unwanted
    audit.expect("request approval (to be rejected)", [("package.request", AGENT, "pending")])
    status, rejected = call(stack, "POST", f"/api/packages/requests/{unwanted['request_id']}/reject", {"reason": "use str.rjust"})
    assert status == 200 and rejected["status"] == "rejected", rejected
    audit.expect("reject the request", [("request.decide", ADMIN, "ok")])

    status, ban = call(stack, "POST", "/api/packages/ban", {"package_name": "leftpad", "reason": "incident 12"})
    assert status == 201, ban
    audit.expect("ban", [("package.ban", ADMIN, "ok")])

    status, body = call(stack, "DELETE", f"/api/packages/rules/{ban['rule_id']}")
    assert status == 200, body
    audit.expect("revoke rule", [("rule.revoke", ADMIN, "ok")])

    status, accepted = call(stack, "POST", "/api/skills", SIX_SKILL, content_type="text/markdown")
    assert status == 202, accepted
    assert stack.wait_for_import(accepted["import_id"])["status"] == "SUCCEEDED"
    events = audit.new_events()
    started = [e for e in events if e["action"] == "skill.import"]
    assert [(e["actor"], e["outcome"]) for e in started] == [(ADMIN, "started")], events
    steps = [e for e in events if e["action"] == "import.step"]
    step_names = [e["detail"]["step"] for e in steps]
    assert len(step_names) == len(set(step_names)), f"a step audited twice: {step_names}"
    assert step_names[-1] == "finalize" and steps[-1]["outcome"] == "ready", step_names
    assert {"parse", "resolve", "check", "scan", "install", "finalize"} <= set(step_names), step_names
    assert all(e["actor"] == SYSTEM and e["detail"]["import_id"] == accepted["import_id"] for e in steps)
    claimed = [e for e in events if e["action"] == "skill.owner"]  # the first publish of a new skill id claims it
    assert [(e["actor"], e["detail"]["owner"]) for e in claimed] == [(ADMIN, "key:bootstrap-admin")], events
    assert len(events) == len(started) + len(steps) + len(claimed), events

    expires = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    status, body = call(stack, "POST", "/api/packages/ignores",
                        {"advisory_id": "PYSEC-2099-1", "reason": "not reachable from our code", "expires_at": expires})  # fmt: skip
    assert status == 201, body
    audit.expect("ignore an advisory", [("scan.ignore", ADMIN, "ok")])

    status, body = call(stack, "POST", "/api/packages/scan", {"pins": [{"name": "six", "version": "1.17.0"}]})
    assert status == 200, body
    audit.expect("pre-flight scan", [("package.scan", ADMIN, body["scan_status"])])

    status, body = call(stack, "POST", "/api/skills/six-helper/approve-code", {"reason": "reviewed by hand"})
    assert status == 201, body
    audit.expect("approve code", [("skill.approve_code", ADMIN, "ok")])

    status, body = call(stack, "POST", "/api/skills/six-helper/execute", {"inputs": {}}, headers=as_agent)
    assert status == 200 and body["success"] is True, body
    # started before the job is sent, then its end (written by the worker and by the API: one event)
    audit.expect("execute", [("skill.execute", AGENT, "started"), ("skill.execute", AGENT, "ok")])

    status, body = call(stack, "POST", "/api/packages/install", {"skill_id": "six-set", "agent_id": "agent-007", "requirements": ["six"]})
    assert status == 200 and body["success"] is True, body
    audit.expect("install (seed endpoint)", [("package.install", ADMIN, "ok")])

    status, body = call(stack, "DELETE", "/api/packages/six-set")
    assert status == 200 and body["removed"] is True, body
    audit.expect("remove an image", [("image.remove", ADMIN, "removed")])

    status, body = call(stack, "POST", "/api/images/cleanup", {"ttl_days": 0})
    assert status == 200 and body["removed"] == ["skillharbor/env:stale-image"], body
    audit.expect("image cleanup", [("image.remove", ADMIN, "removed")])

    # nothing else was written behind the session's back
    assert audit.new_events() == []
    assert len(audit.operations) == 19  # and the import, checked step by step above


def test_refused_and_failed_operations_are_audited_with_their_outcome(session):
    stack = session
    audit = Recorder(stack)
    status, agent = call(stack, "POST", "/api/agents", {"agent_id": "agent-007", "maturity": "STUDENT"})
    as_agent = {"Authorization": f"Bearer {agent['api_key']}"}
    audit.new_events()

    # a skill whose package the agent may not use: the execution is refused, and audited as such
    call(stack, "POST", "/api/packages/approve", {"package_name": "six", "min_maturity": "SUPERVISED"})
    status, accepted = call(stack, "POST", "/api/skills", SIX_SKILL, content_type="text/markdown")
    assert stack.wait_for_import(accepted["import_id"])["status"] == "SUCCEEDED"
    audit.new_events()
    status, body = call(stack, "POST", "/api/skills/six-helper/execute", {"inputs": {}}, headers=as_agent)
    assert status == 403, body
    audit.expect("execute (denied)", [("skill.execute", AGENT, "denied")])

    # an upload that fails in the pipeline: started by its submitter, failed step recorded by the system
    bad = b"---\nname: Broken Pins\ndescription: d\npackages: ['six', '--index-url http://evil']\n---\n```python\ndef execute():\n    return 1\n```\n"
    stack.map_inbox("broken/")
    audit.new_events()  # the mapping's own inbox.map event
    stack.s3.put_object(Bucket=stack.settings.inbox_bucket, Key="broken/SKILL.md", Body=bad)
    stack.deliver_inbox_events()
    events = audit.new_events()
    import_id = next(e["detail"]["import_id"] for e in events if e["action"] == "skill.import")
    assert stack.wait_for_import(import_id)["status"] == "FAILED"
    events += audit.new_events()
    assert Counter((e["action"], e["actor"], e["outcome"]) for e in events) == Counter(
        [("skill.import", "s3-inbox", "started"), ("skill.owner", "s3-inbox", "ok"), ("import.step", SYSTEM, "failed")]
    ), events
    failed = next(e for e in events if e["action"] == "import.step")
    assert failed["detail"]["step"] == "parse" and "--index-url" in failed["detail"]["reason"]
