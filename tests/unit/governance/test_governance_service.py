"""The issue's "done when" flows through the service, over in-memory stores."""

from __future__ import annotations

import pytest

from chalicelib.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from chalicelib.governance import audit as actions
from chalicelib.governance.cache import DecisionCache, PermissionChecker
from chalicelib.governance.decision import STUDENT_REASON
from chalicelib.governance.identity import Principal, Role, authenticate
from chalicelib.governance.memory import InMemoryAuditLog, InMemoryPrincipalsStore, InMemoryRulesStore
from chalicelib.governance.rules import RequestStatus, request_id_for
from chalicelib.governance.service import GovernanceService

ADMIN_KEY = "test-bootstrap-admin-key-0123456789abcdef"


def login(svc: GovernanceService, api_key: str) -> Principal:
    """The caller a key authenticates as, the way the API's authorizer does it."""
    return authenticate(api_key, svc.principals, bootstrap_admin_key=ADMIN_KEY)


@pytest.fixture
def svc():
    rules, principals, audit_log = InMemoryRulesStore(), InMemoryPrincipalsStore(), InMemoryAuditLog()
    checker = PermissionChecker(principals, rules, DecisionCache(ttl_seconds=60, max_size=100))
    return GovernanceService(rules, principals, audit_log, checker, bootstrap_admin_key=ADMIN_KEY)


@pytest.fixture
def admin(svc):
    return login(svc, ADMIN_KEY)


def agent_principal(svc, admin, agent_id, maturity):
    _, issued = svc.create_agent(admin, agent_id, maturity)
    return login(svc, issued.api_key)


def test_student_intern_approval_and_ban_flow(svc, admin):
    student = agent_principal(svc, admin, "student-1", "STUDENT")
    intern = agent_principal(svc, admin, "intern-1", "INTERN")
    assert svc.check(student, None, "numpy", "1.26.4").reason == STUDENT_REASON

    denied = svc.check(intern, "intern-1", "numpy", "==1.26.4")
    assert not denied.allowed and "POST /api/packages/request" in denied.reason

    svc.approve(admin, "numpy", "==1.26.4", "INTERN")
    assert svc.check(intern, None, "numpy", "1.26.4").allowed
    assert svc.check(student, None, "numpy", "1.26.4").reason == STUDENT_REASON

    svc.ban(admin, "NumPy", "", "supply-chain incident")
    banned = svc.check(intern, None, "numpy", "1.26.4")
    assert not banned.allowed and "supply-chain incident" in banned.reason
    autonomous = agent_principal(svc, admin, "auto-1", "AUTONOMOUS")
    assert not svc.check(autonomous, None, "numpy", "1.26.4").allowed


def test_raising_maturity_takes_effect_at_once(svc, admin):
    intern = agent_principal(svc, admin, "bot", "INTERN")
    svc.approve(admin, "pandas", "", "SUPERVISED")
    assert not svc.check(intern, None, "pandas", "2.2.0").allowed
    updated = svc.update_maturity(admin, "bot", "supervised")
    assert updated.version == 2
    assert svc.check(intern, None, "pandas", "2.2.0").allowed


def test_agent_keys_cannot_act_as_other_agents(svc, admin):
    bot1 = agent_principal(svc, admin, "bot-1", "INTERN")
    agent_principal(svc, admin, "bot-2", "INTERN")
    with pytest.raises(Forbidden):
        svc.check(bot1, "bot-2", "numpy", "1.0")
    with pytest.raises(Forbidden):
        svc.request(bot1, "numpy", "1.0", "need it", agent_id="bot-2")
    with pytest.raises(Forbidden):
        svc.audit(bot1, agent_id="bot-2")
    with pytest.raises(Forbidden):
        svc.approve(bot1, "numpy", "", "INTERN")
    with pytest.raises(Forbidden):
        svc.get_agent(bot1, "bot-2")
    assert svc.get_agent(bot1, "bot-1").agent_id == "bot-1"


def test_agent_sees_only_its_own_audit_events(svc, admin):
    bot1 = agent_principal(svc, admin, "bot-1", "INTERN")
    bot2 = agent_principal(svc, admin, "bot-2", "INTERN")
    svc.check(bot1, None, "numpy", "1.0")
    svc.check(bot2, None, "numpy", "1.0")
    own = svc.audit(bot1).events
    assert own and {e.agent_id for e in own} == {"bot-1"}
    assert {e.agent_id for e in svc.audit(admin).events} >= {"bot-1", "bot-2"}


def test_requests_are_idempotent_and_fulfilled_by_a_matching_approval(svc, admin):
    publisher = svc.create_key(admin, "publisher", "importer")
    pub = login(svc, publisher.api_key)
    rid = request_id_for("skill-9", "numpy")
    first = svc.request(pub, "numpy", "1.26.4", "skill-9 needs it", skill_id="skill-9", request_id=rid)
    again = svc.request(pub, "numpy", "1.26.4", "skill-9 needs it", skill_id="skill-9", request_id=rid)
    other = svc.request(pub, "numpy", "2.0.0", "later")
    assert first.request_id == again.request_id and first.status is RequestStatus.PENDING
    assert len(svc.list_requests(admin, "pending")) == 2

    result = svc.approve(admin, "numpy", ">=1.26,<2", "INTERN")
    assert [r.request_id for r in result.fulfilled] == [rid]
    assert [r.request_id for r in svc.list_requests(admin, "pending")] == [other.request_id]
    assert svc.list_requests(admin, "approved")[0].skill_id == "skill-9"

    svc.reject_request(admin, other.request_id)
    with pytest.raises(Conflict):
        svc.reject_request(admin, other.request_id)


def test_revoke_rule_and_keys(svc, admin):
    intern = agent_principal(svc, admin, "bot", "INTERN")
    result = svc.approve(admin, "numpy", "", "INTERN")
    assert svc.check(intern, None, "numpy", "1.0").allowed
    svc.revoke_rule(admin, result.approval.rule_id)
    assert not svc.check(intern, None, "numpy", "1.0").allowed
    with pytest.raises(Conflict, match="already revoked"):
        svc.revoke_rule(admin, result.approval.rule_id)
    with pytest.raises(NotFound):
        svc.revoke_rule(admin, "apr_nope")

    issued = svc.create_key(admin, "admin", "second admin")
    second = login(svc, issued.api_key)
    svc.revoke_key(second, issued.principal.key_id)
    with pytest.raises(Unauthorized, match="revoked"):
        login(svc, issued.api_key)
    with pytest.raises(BadRequest, match="POST /api/agents"):
        svc.create_key(admin, "agent", "sneaky")


def test_duplicate_agent_is_a_conflict(svc, admin):
    svc.create_agent(admin, "bot", "INTERN")
    with pytest.raises(Conflict):
        svc.create_agent(admin, "bot", "AUTONOMOUS")
    with pytest.raises(BadRequest, match="unknown maturity"):
        svc.create_agent(admin, "bot-2", "GURU")


def test_every_step_is_audited_with_its_actor(svc, admin):
    intern = agent_principal(svc, admin, "bot", "INTERN")
    svc.request(intern, "numpy", "1.26.4", "please")
    svc.approve(admin, "numpy", "==1.26.4", "INTERN")
    svc.check(intern, None, "numpy", "1.26.4")
    rule = svc.ban(admin, "numpy", "<1", "old")
    svc.revoke_rule(admin, rule.rule_id)
    svc.update_maturity(admin, "bot", "SUPERVISED")
    trail = list(reversed(svc.audit(admin, limit=100).events))
    assert [(e.action, e.actor) for e in trail] == [
        (actions.KEY_CREATE, "admin:bootstrap admin"),
        (actions.AGENT_CREATE, "admin:bootstrap admin"),
        (actions.PACKAGE_REQUEST, "agent:bot"),
        (actions.PACKAGE_APPROVE, "admin:bootstrap admin"),
        (actions.REQUEST_DECIDE, "admin:bootstrap admin"),
        (actions.PACKAGE_CHECK, "agent:bot"),
        (actions.PACKAGE_BAN, "admin:bootstrap admin"),
        (actions.RULE_REVOKE, "admin:bootstrap admin"),
        (actions.AGENT_UPDATE, "admin:bootstrap admin"),
    ]
    check = trail[5]
    assert check.outcome == actions.ALLOWED and check.package == "numpy" and check.detail["version"] == "1.26.4"
    assert all(e.time.endswith("Z") and len(e.time) == 27 for e in trail)


def test_audit_pages_newest_first_in_memory(svc, admin):
    log = svc.audit_log
    for i in range(5):
        log.append(actions.audit_event(actions.SKILL_EXECUTE, actor="agent:bot", agent_id="bot", detail={"i": i}))
    page = log.query(agent_id="bot", limit=2)
    assert [e.detail["i"] for e in page.events] == [4, 3]
    page = log.query(agent_id="bot", limit=2, next_token=page.next_token)
    assert [e.detail["i"] for e in page.events] == [2, 1]
    last = log.query(agent_id="bot", limit=2, next_token=page.next_token)
    assert [e.detail["i"] for e in last.events] == [0] and last.next_token is None
    with pytest.raises(BadRequest, match="limit"):
        log.query(limit=0)


def test_audit_until_and_runs_in_memory(svc, admin):
    log = svc.audit_log
    bot = agent_principal(svc, admin, "bot", "INTERN")
    for i, outcome in enumerate(["started", "ok", "started", "failed"]):
        log.append(actions.audit_event(actions.SKILL_EXECUTE, actor="agent:bot", agent_id="bot", outcome=outcome,
                                       detail={"i": i}, time=f"2024-05-01T12:00:0{i}Z"))  # fmt: skip
    log.append(actions.audit_event(actions.SKILL_EXECUTE, actor="agent:other", agent_id="other", outcome="ok",
                                   detail={"i": 9}, time="2024-05-01T12:00:09Z"))  # fmt: skip
    assert [e.detail["i"] for e in svc.audit(admin, action=actions.SKILL_EXECUTE, until="2024-05-01T12:00:02Z").events] == [2, 1, 0]
    assert [e.detail["i"] for e in svc.runs(admin).events] == [9, 3, 1]
    assert [e.detail["i"] for e in svc.runs(bot).events] == [3, 1]  # an agent key: its own runs only
    assert [e.detail["i"] for e in svc.runs(admin, until="2024-05-01T12:00:02Z").events] == [1]
    with pytest.raises(Forbidden):
        svc.runs(bot, agent_id="other")
    publisher = login(svc, svc.create_key(admin, "publisher", "ci", team="t").api_key)
    with pytest.raises(Forbidden, match="publisher"):
        svc.runs(publisher)
    with pytest.raises(BadRequest, match="before since"):
        svc.audit(admin, since="2024-05-02", until="2024-05-01")


def test_principal_actor_names():
    assert Principal(key_id="k", role=Role.PUBLISHER, name="ci").actor == "publisher:ci"


def test_a_request_an_approval_already_answers_is_approved_at_once_by_the_system(svc, admin):
    intern = agent_principal(svc, admin, "intern-9", "INTERN")
    rule = svc.approve(admin, "numpy", ">=2", "INTERN").approval
    svc.approve(admin, "pandas", "", "SUPERVISED")
    answered = svc.request(intern, "numpy", "2.2.6", "summaries")
    assert answered.status is RequestStatus.APPROVED and answered.decided_by == actions.SYSTEM_ACTOR
    assert answered.decision_reason == f"already approved by rule {rule.rule_id} (>=2, INTERN and up)"
    again = svc.request(intern, "numpy", "2.2.6", "summaries", request_id=answered.request_id)
    assert again.status is RequestStatus.APPROVED  # idempotent: no second decision
    # an approval this agent's maturity does not reach leaves the request for an admin
    assert svc.request(intern, "pandas", "2.1.0", "frames").status is RequestStatus.PENDING
    assert svc.request(intern, "numpy", "1.26.4", "old").status is RequestStatus.PENDING  # outside the specifier
    svc.ban(admin, "numpy", "==2.2.7", "broken wheel")
    assert svc.request(intern, "numpy", "2.2.7", "newer").status is RequestStatus.PENDING  # banned: the check says no
    assert svc.request(intern, "numpy", ">=2.2", "a range").status is RequestStatus.PENDING  # not one exact version
    publisher = login(svc, svc.create_key(admin, "publisher", "ci").api_key)
    assert svc.request(publisher, "numpy", "2.2.6", "no agent named").status is RequestStatus.PENDING
    decided = [e for e in svc.audit(admin, action=actions.REQUEST_DECIDE).events]
    assert [(e.actor, e.detail["rule_id"]) for e in decided] == [(actions.SYSTEM_ACTOR, rule.rule_id)]
