"""Isolation rules through the API (moto): admins set them, each run's job carries the chosen runtime,
and the audit says which runtime ran it and which rule chose it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from run_support import SKILL_ID, RunningEngine, agent, call, ready_skill, trail
from stack_support import Stack, running_stack


class TierEngine(RunningEngine):
    """Reports the runtime it was asked for, as the sandbox does."""

    def run(self, request: Any) -> Any:
        return super().run(request).model_copy(update={"runtime": request.runtime})


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    from chalicelib.store.audit import AuditStore

    with running_stack(monkeypatch, TierEngine()) as running:
        running.runner.audit = AuditStore()
        yield running


def test_rules_are_added_listed_and_removed_by_admins_only(stack):
    status, rule, _ = call(stack, "POST", "/api/isolation/rules", {"match": {"maturity": "STUDENT"}, "runtime": "runsc"})
    assert status == 201 and rule["match"] == {"maturity": "STUDENT"} and rule["runtime"] == "runsc"
    status, listed, _ = call(stack, "GET", "/api/isolation/rules")
    assert status == 200 and [r["rule_id"] for r in listed["rules"]] == [rule["rule_id"]]
    headers = agent(stack, "curious")
    assert call(stack, "GET", "/api/isolation/rules", headers=headers)[0] == 403
    assert call(stack, "POST", "/api/isolation/rules", {"match": {}, "runtime": "runc"}, headers)[0] == 403
    assert call(stack, "DELETE", f"/api/isolation/rules/{rule['rule_id']}", headers=headers)[0] == 403
    status, removed, _ = call(stack, "DELETE", f"/api/isolation/rules/{rule['rule_id']}")
    assert status == 200 and removed["removed"]["rule_id"] == rule["rule_id"]
    assert call(stack, "DELETE", f"/api/isolation/rules/{rule['rule_id']}")[0] == 404
    assert call(stack, "GET", "/api/isolation/rules")[1]["rules"] == []
    actions = [e["action"] for e in trail(stack, action="isolation.rule_add") + trail(stack, action="isolation.rule_remove")]
    assert actions == ["isolation.rule_add", "isolation.rule_remove"]


def test_bad_rules_get_a_400_that_says_why(stack):
    status, body, _ = call(stack, "POST", "/api/isolation/rules", {"match": {"maturity": "GURU"}, "runtime": "runsc"})
    assert status == 400 and "maturity" in body["message"]
    status, body, _ = call(stack, "POST", "/api/isolation/rules", {"match": {}, "runtime": "firecracker"})
    assert status == 400 and "runtime" in body["message"]
    assert call(stack, "DELETE", "/api/isolation/rules/not-an-id")[0] == 400


def test_the_most_specific_rule_picks_the_runtime_and_the_audit_names_it(stack):
    ready_skill(stack)
    student = call(stack, "POST", "/api/isolation/rules", {"match": {"maturity": "STUDENT"}, "runtime": "runsc"})[1]
    override = call(stack, "POST", "/api/isolation/rules",
                    {"match": {"maturity": "INTERN", "skill_id": SKILL_ID}, "runtime": "runc"})[1]  # fmt: skip
    learner, intern = agent(stack, "learner", "STUDENT"), agent(stack, "trusted", "INTERN")
    status, result, _ = call(stack, "POST", f"/api/skills/{SKILL_ID}/execute", {"inputs": {"a": 2}}, learner)
    assert status == 200 and result["runtime"] == "runsc"
    status, other, _ = call(stack, "POST", f"/api/skills/{SKILL_ID}/execute", {"inputs": {"a": 2}}, intern)
    assert status == 200 and other["runtime"] == "runc"
    assert [r.runtime.value for r in stack.engine.runs] == ["runsc", "runc"]
    ended = {e["agent_id"]: e["detail"] for e in trail(stack, action="skill.execute") if e["outcome"] == "ok"}
    assert (ended["learner"]["runtime"], ended["learner"]["isolation_rule"]) == ("runsc", student["rule_id"])
    assert (ended["trusted"]["runtime"], ended["trusted"]["isolation_rule"]) == ("runc", override["rule_id"])


def test_without_rules_every_run_is_runc_and_names_no_rule(stack):
    ready_skill(stack)
    status, result, _ = call(stack, "POST", f"/api/skills/{SKILL_ID}/execute", {"inputs": {}}, agent(stack, "plain", "STUDENT"))
    assert status == 200 and result["runtime"] == "runc"
    started = [e for e in trail(stack, action="skill.execute") if e["outcome"] == "started"]
    assert [(e["detail"]["runtime"], e["detail"].get("isolation_rule")) for e in started] == [("runc", None)]
