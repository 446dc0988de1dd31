"""Isolation rules: which runtime a run gets, the most specific rule winning, and every bad rule refused."""

from __future__ import annotations

import pytest

from chalicelib.errors import BadRequest, NotFound
from chalicelib.governance.identity import Agent
from chalicelib.governance.isolation import IsolationMatch, IsolationRule, RunFacts, choose, rule_from_request
from chalicelib.governance.isolation_policy import IsolationPolicy
from chalicelib.governance.maturity import Maturity
from chalicelib.governance.memory import InMemoryAuditLog, InMemoryIsolationRulesStore, InMemoryPrincipalsStore
from chalicelib.runner.spec import Runtime


def _rule(runtime: str, created_at: str = "2026-01-01T00:00:00Z", **match) -> IsolationRule:
    return IsolationRule(match=IsolationMatch(**match), runtime=runtime, created_at=created_at)


def _facts(**fields) -> RunFacts:
    return RunFacts(**{"skill_id": "adder", **fields})


def test_no_rule_means_runc_and_names_no_rule() -> None:
    choice = choose([], _facts(maturity=Maturity.STUDENT))
    assert choice.runtime == Runtime.RUNC and choice.rule_id is None


def test_maturity_rule_sends_students_to_gvisor_and_leaves_others_alone() -> None:
    student = _rule("runsc", maturity="STUDENT")
    assert choose([student], _facts(maturity=Maturity.STUDENT)).rule_id == student.rule_id
    assert choose([student], _facts(maturity=Maturity.SUPERVISED)).runtime == Runtime.RUNC


def test_a_skill_override_beats_a_broader_rule_even_with_fewer_fields() -> None:
    broad = _rule("runsc", maturity="INTERN", egress=True)
    override = _rule("runc", skill_id="adder")
    choice = choose([broad, override], _facts(maturity=Maturity.INTERN, egress=True))
    assert (choice.runtime, choice.rule_id) == (Runtime.RUNC, override.rule_id)


def test_more_fields_win_and_ties_go_to_the_stricter_tier() -> None:
    everyone = _rule("runsc")
    intern_egress = _rule("runc", maturity="INTERN", egress=True)
    assert choose([everyone, intern_egress], _facts(maturity=Maturity.INTERN, egress=True)).runtime == Runtime.RUNC
    loose = _rule("runc", finding="code", created_at="2026-02-01T00:00:00Z")
    strict = _rule("runsc", egress=False)
    assert choose([loose, strict], _facts(findings=frozenset({"code"}))).rule_id == strict.rule_id


def test_facts_come_from_the_skill_versions_scan_record() -> None:
    record = {"scan": {"code_findings": [{"severity": "HIGH"}], "findings": []}, "egress_hosts": ["api.example.com"]}
    facts = RunFacts.of("adder", Maturity.AUTONOMOUS, record)
    assert facts.findings == {"code", "high_code"} and facts.egress is True
    assert RunFacts.of("adder", None, {}).findings == frozenset()
    high = _rule("runsc", finding="high_code")
    assert choose([high], facts).runtime == Runtime.RUNSC
    assert choose([high], RunFacts.of("adder", None, {"scan": {"code_findings": [{"severity": "LOW"}]}})).runtime == Runtime.RUNC


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"match": {"maturity": "STUDENT"}}, "runtime is required"),
        ({"match": {}, "runtime": "kata"}, "runtime"),
        ({"match": {"maturity": "GENIUS"}, "runtime": "runsc"}, "maturity"),
        ({"match": {"finding": "scary"}, "runtime": "runsc"}, "unknown finding"),
        ({"match": {"skill_id": "Bad Id"}, "runtime": "runsc"}, "invalid skill id"),
        ({"match": {"colour": "red"}, "runtime": "runsc"}, "colour"),
        ({"match": {"egress": "yes"}, "runtime": "runsc"}, "egress"),
        ({"match": [], "runtime": "runsc"}, "match must be a JSON object"),
        ({"runtime": "runsc", "priority": 3}, "unknown field"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(body, named) -> None:
    with pytest.raises(BadRequest) as caught:
        rule_from_request(body, actor="admin")
    assert named in str(caught.value)


def test_the_policy_stores_audits_and_chooses_from_the_agents_maturity() -> None:
    principals, audit = InMemoryPrincipalsStore(), InMemoryAuditLog()
    principals.create_agent(Agent(agent_id="newbie", maturity=Maturity.STUDENT))
    policy = IsolationPolicy(InMemoryIsolationRulesStore(), principals, audit)
    rule = policy.add({"match": {"maturity": "STUDENT"}, "runtime": "runsc"}, actor="key:admin")
    assert [r.rule_id for r in policy.list()] == [rule.rule_id]
    assert policy.choose("adder", "newbie", {}).to_json() == {"runtime": "runsc", "isolation_rule": rule.rule_id}
    assert policy.choose("adder", "unknown-agent", {}).runtime == Runtime.RUNC
    policy.remove(rule.rule_id, actor="key:admin")
    with pytest.raises(NotFound):
        policy.remove(rule.rule_id, actor="key:admin")
    assert policy.choose("adder", "newbie", {}).runtime == Runtime.RUNC
    actions = [e.action for e in audit.query().events]
    assert actions.count("isolation.rule_add") == 1 and actions.count("isolation.rule_remove") == 1
