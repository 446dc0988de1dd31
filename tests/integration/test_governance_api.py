"""Governance through the HTTP API, as issue 3's "done when" lists it."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client


class Api:
    def __init__(self, client, admin_headers):
        self.client, self.admin = client, admin_headers

    def call(self, method: str, path: str, body: dict | None = None, key: str | None = None) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {key}"} if key else dict(self.admin)
        kwargs = {"headers": headers}
        if body is not None:
            kwargs = {"headers": {**headers, "Content-Type": "application/json"}, "body": json.dumps(body)}
        response = getattr(self.client.http, method)(path, **kwargs)
        return response.status_code, json.loads(response.body or b"{}")

    def agent(self, agent_id: str, maturity: str) -> str:
        status, body = self.call("post", "/api/agents", {"agent_id": agent_id, "maturity": maturity})
        assert status == 201, body
        return body["api_key"]

    def check(self, agent_id: str, package: str, version: str, key: str | None = None) -> tuple[int, dict]:
        return self.call("get", f"/api/packages/check?agent_id={agent_id}&package_name={package}&version={version}", key=key)


@pytest.fixture
def api(stack, admin_headers):
    with Client(stack.app) as client:
        yield Api(client, admin_headers)


def test_student_is_denied_with_the_seed_message(api):
    api.agent("stu", "STUDENT")
    api.call("post", "/api/packages/approve", {"package_name": "numpy", "version": "", "min_maturity": "INTERN"})
    status, decision = api.check("stu", "numpy", "1.26.4")
    assert status == 200
    assert decision == {"allowed": False, "maturity_required": "INTERN", "reason": "STUDENT agents cannot execute Python packages"}


def test_intern_is_denied_until_an_admin_approves_that_version(api):
    api.agent("intern-1", "INTERN")
    status, decision = api.check("intern-1", "numpy", "==1.26.4")
    assert status == 200 and decision["allowed"] is False
    assert "POST /api/packages/request" in decision["reason"]
    status, _ = api.call("post", "/api/packages/approve", {"package_name": "NumPy", "version": "==1.26.4", "min_maturity": "INTERN"})
    assert status == 201
    assert api.check("intern-1", "numpy", "1.26.4")[1]["allowed"] is True
    assert api.check("intern-1", "numpy", "1.26.5")[1]["allowed"] is False


def test_a_ban_overrides_approvals_for_every_maturity(api):
    api.call("post", "/api/packages/approve", {"package_name": "requests", "version": ">=2", "min_maturity": "INTERN"})
    for agent_id, maturity in (("i", "INTERN"), ("s", "SUPERVISED"), ("a", "AUTONOMOUS")):
        api.agent(agent_id, maturity)
        assert api.check(agent_id, "requests", "2.31.0")[1]["allowed"] is True
    status, ban = api.call("post", "/api/packages/ban", {"package_name": "requests", "version": "<2.32", "reason": "CVE-2024-35195"})
    assert status == 201
    for agent_id in ("i", "s", "a"):
        decision = api.check(agent_id, "requests", "2.31.0")[1]
        assert decision["allowed"] is False and "CVE-2024-35195" in decision["reason"]
        assert api.check(agent_id, "requests", "2.32.3")[1]["allowed"] is True
    status, _ = api.call("delete", f"/api/packages/rules/{ban['rule_id']}")
    assert status == 200
    assert api.check("i", "requests", "2.31.0")[1]["allowed"] is True


def test_an_agent_key_acts_only_as_its_own_agent(api):
    mine = api.agent("bot-a", "AUTONOMOUS")
    api.agent("bot-b", "AUTONOMOUS")
    assert api.check("bot-b", "numpy", "1.26.4", key=mine)[0] == 403
    assert api.check("bot-a", "numpy", "1.26.4", key=mine)[0] == 200
    status, _ = api.call("post", "/api/packages/request",
                         {"package_name": "numpy", "version": "1.26.4", "reason": "x", "agent_id": "bot-b"}, key=mine)  # fmt: skip
    assert status == 403
    status, request = api.call("post", "/api/packages/request", {"package_name": "numpy", "version": "1.26.4", "reason": "need it"}, key=mine)
    assert status == 201 and request["status"] == "pending"
    assert api.call("get", "/api/packages/audit?agent_id=bot-b", key=mine)[0] == 403
    status, own = api.call("get", "/api/packages/audit", key=mine)
    assert status == 200 and own["events"] and {e["agent_id"] for e in own["events"]} == {"bot-a"}
    assert api.call("post", "/api/packages/approve", {"package_name": "numpy", "min_maturity": "INTERN"}, key=mine)[0] == 403


def test_keys_are_shown_once_hashed_and_revocable(api):
    status, created = api.call("post", "/api/keys", {"role": "publisher", "name": "ci pipeline"})
    assert status == 201 and created["api_key"].startswith("shk_")
    assert api.call("get", "/api/skills", key=created["api_key"])[0] == 200
    assert api.call("post", "/api/agents", {"agent_id": "x", "maturity": "INTERN"}, key=created["api_key"])[0] == 403
    assert api.call("delete", f"/api/keys/{created['key_id']}")[0] == 200
    status, body = api.call("get", "/api/skills", key=created["api_key"])
    assert status == 401 and "revoked" in body["message"]


def test_version_must_be_exact_and_maturity_known(api):
    api.agent("v", "INTERN")
    status, body = api.check("v", "numpy", ">=1.0")
    assert status == 400 and "version" in body["message"]
    status, body = api.call("post", "/api/agents", {"agent_id": "w", "maturity": "GENIUS"})
    assert status == 400 and "STUDENT" in body["message"]


def test_every_step_is_in_the_audit_trail_with_its_actor(api):
    key = api.agent("auditee", "INTERN")
    api.check("auditee", "numpy", "1.26.4")
    api.call("post", "/api/packages/approve", {"package_name": "numpy", "min_maturity": "INTERN"})
    api.check("auditee", "numpy", "1.26.4", key=key)
    status, page = api.call("get", "/api/packages/audit?agent_id=auditee")
    events = [(e["action"], e["actor"], e["outcome"]) for e in reversed(page["events"])]
    assert events == [
        ("key.create", "admin:bootstrap admin", "ok"),
        ("agent.create", "admin:bootstrap admin", "ok"),
        ("package.check", "admin:bootstrap admin", "denied"),
        ("package.check", "agent:auditee", "allowed"),
    ]
    status, first = api.call("get", "/api/packages/audit?limit=2")
    assert len(first["events"]) == 2 and first["next_token"]
    status, second = api.call("get", f"/api/packages/audit?limit=2&next_token={first['next_token']}")
    assert {e["event_id"] for e in first["events"]}.isdisjoint(e["event_id"] for e in second["events"])


def test_an_admin_rejects_a_request_with_a_reason_the_requester_can_read(api):
    key = api.agent("asker", "INTERN")
    status, filed = api.call("post", "/api/packages/request", {"package_name": "leftpad", "version": "1.0.0", "reason": "padding"}, key=key)
    assert status == 201 and filed["status"] == "pending"
    path = f"/api/packages/requests/{filed['request_id']}/reject"
    status, refused = api.call("post", path, {"reason": "use str.rjust"}, key=key)
    assert status == 403  # agents cannot decide requests
    status, rejected = api.call("post", path, {"reason": "use str.rjust"})
    assert status == 200 and rejected["status"] == "rejected" and rejected["decision_reason"] == "use str.rjust"
    status, listed = api.call("get", "/api/packages/requests?status=rejected", key=key)
    assert [(r["package_name"], r["decision_reason"]) for r in listed["requests"]] == [("leftpad", "use str.rjust")]
    other = api.agent("bystander", "INTERN")
    assert api.call("get", "/api/packages/requests", key=other)[1]["requests"] == []  # agents see their own requests only
    status, again = api.call("post", path, {"reason": "twice"})
    assert status == 409 and "already rejected" in again["message"]
    assert api.call("post", "/api/packages/requests/req_unknown/reject", {})[0] == 404
    status, bad = api.call("post", "/api/packages/requests/..%2Fetc/reject", {})
    assert status == 400 and "not an approval request id" in bad["message"]
    status, trail = api.call("get", "/api/packages/audit?action=request.decide")
    assert [(e["actor"], e["detail"]["status"], e["detail"].get("reason")) for e in trail["events"]] == [
        ("admin:bootstrap admin", "rejected", "use str.rjust")]  # fmt: skip


def test_runs_are_listed_from_their_end_events_newest_first_and_scoped_to_the_agent(api):
    from chalicelib.governance.audit import SKILL_EXECUTE, audit_event
    from chalicelib.store.audit import AuditStore

    bot_key = api.agent("runs-bot", "INTERN")
    api.agent("runs-other", "INTERN")
    store = AuditStore()
    for n, (agent, outcome) in enumerate([("runs-bot", "started"), ("runs-bot", "ok"), ("runs-other", "failed"), ("runs-bot", "failed")]):
        store.append(audit_event(SKILL_EXECUTE, actor=f"agent:{agent}", agent_id=agent, skill_id="calc", outcome=outcome,
                                 time=f"2025-01-02T03:04:0{n}Z", detail={"job_id": f"run-{n:024x}", "status": outcome if outcome != "ok" else "ok",
                                 "duration_ms": 100 + n, "image_tag": "skillharbor/env:abc", "worker": "w1"}))  # fmt: skip
    status, page = api.call("get", "/api/runs?skill_id=calc&limit=2")
    assert status == 200 and [r["job_id"][-1] for r in page["runs"]] == ["3", "2"] and page["next_token"]
    status, rest = api.call("get", f"/api/runs?skill_id=calc&limit=2&next_token={page['next_token']}")
    assert [r["job_id"][-1] for r in rest["runs"]] == ["1"] and rest["next_token"] is None  # "started" is no run's end
    assert rest["runs"][0] == {"job_id": f"run-{1:024x}", "skill_id": "calc", "agent_id": "runs-bot", "status": "ok", "outcome": "ok",
                               "duration_ms": 101, "image_tag": "skillharbor/env:abc", "worker": "w1",
                               "ended_at": "2025-01-02T03:04:01.000000Z", "requested_by": "agent:runs-bot",
                               "seed_endpoint": False, "error": None}  # fmt: skip
    status, own = api.call("get", "/api/runs", key=bot_key)
    assert status == 200 and {r["agent_id"] for r in own["runs"]} == {"runs-bot"}
    assert api.call("get", "/api/runs?agent_id=runs-other", key=bot_key)[0] == 403
    status, early = api.call("get", "/api/runs?skill_id=calc&until=2025-01-02T03:04:02Z")
    assert [r["job_id"][-1] for r in early["runs"]] == ["2", "1"]
    status, audit = api.call("get", "/api/packages/audit?skill_id=calc&until=2025-01-02T03:04:00Z")
    assert status == 200 and [e["outcome"] for e in audit["events"]] == ["started"]
    status, error = api.call("get", "/api/packages/audit?since=2025-02-01&until=2025-01-01")
    assert status == 400 and "until" in error["message"]


def test_me_names_the_callers_key_and_role_without_its_secret(api):
    status, me = api.call("get", "/api/me")
    assert status == 200 and me["role"] == "admin" and me["key_id"] == "bootstrap-admin"
    key = api.agent("me-bot", "INTERN")
    status, me = api.call("get", "/api/me", key=key)
    assert status == 200 and me["role"] == "agent" and me["agent_id"] == "me-bot" and "owner" not in me
    assert key not in json.dumps(me)
    assert api.call("get", "/api/me", key="shk_unknown-key-0000")[0] == 401
