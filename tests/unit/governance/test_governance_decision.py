"""The decision table of issue 3, item 3."""

from __future__ import annotations

import pytest

from chalicelib.errors import BadRequest
from chalicelib.governance.decision import STUDENT_REASON, decide
from chalicelib.governance.identity import Agent
from chalicelib.governance.maturity import Maturity
from chalicelib.governance.rules import Approval, Ban, RuleSet

S, I, SUP, A = Maturity.STUDENT, Maturity.INTERN, Maturity.SUPERVISED, Maturity.AUTONOMOUS


def agent(maturity: Maturity) -> Agent:
    return Agent(agent_id=f"bot-{maturity.value.lower()}", maturity=maturity)


def approval(spec: str, level: Maturity, package: str = "numpy") -> Approval:
    return Approval.new(package, spec, level, created_by="admin:test")


def ban(spec: str, reason: str = "known malware", package: str = "numpy") -> Ban:
    return Ban.new(package, spec, reason, created_by="admin:test")


def rules(*items: Approval | Ban) -> RuleSet:
    return RuleSet.of("numpy", list(items))


def test_unknown_agent_is_denied_even_when_approved_for_everyone():
    decision = decide(None, "numpy", "1.26.4", rules(approval("", I)), agent_id="ghost")
    assert not decision.allowed
    assert "unknown agent 'ghost'" in decision.reason


@pytest.mark.parametrize("rule_set", [rules(), rules(approval("", I)), rules(approval("==1.26.4", S))])
def test_student_is_always_denied_with_the_seed_message(rule_set):
    decision = decide(agent(S), "numpy", "1.26.4", rule_set)
    assert not decision.allowed
    assert decision.reason == STUDENT_REASON == "STUDENT agents cannot execute Python packages"


@pytest.mark.parametrize("level", [I, SUP, A])
def test_no_approval_is_denied_with_how_to_request(level):
    decision = decide(agent(level), "numpy", "1.26.4", rules())
    assert not decision.allowed
    assert decision.maturity_required is None
    assert decision.reason == "no approval for numpy 1.26.4; request one with POST /api/packages/request"


def test_approval_of_another_version_does_not_count():
    decision = decide(agent(A), "numpy", "1.26.4", rules(approval("==1.26.3", I), approval(">=2", I)))
    assert not decision.allowed
    assert "no approval for numpy 1.26.4" in decision.reason


@pytest.mark.parametrize(
    ("approved_for", "level", "allowed"),
    [
        (I, I, True), (I, SUP, True), (I, A, True),
        (SUP, I, False), (SUP, SUP, True), (SUP, A, True),
        (A, I, False), (A, SUP, False), (A, A, True),
    ],
)
def test_agent_needs_at_least_the_approved_maturity(approved_for, level, allowed):
    decision = decide(agent(level), "numpy", "1.26.4", rules(approval("==1.26.4", approved_for)))
    assert decision.allowed is allowed
    assert decision.maturity_required is approved_for
    if not allowed:
        assert f"requires maturity {approved_for.value}" in decision.reason


@pytest.mark.parametrize("level", [I, SUP, A])
def test_ban_of_all_versions_beats_an_approval_for_everyone(level):
    decision = decide(agent(level), "numpy", "1.26.4", rules(approval("", I), ban("", "typosquat of numpy")))
    assert not decision.allowed
    assert decision.maturity_required is None
    assert decision.reason == "numpy 1.26.4 is banned: typosquat of numpy"


def test_ban_with_a_specifier_only_blocks_the_versions_it_names():
    rule_set = rules(approval("", I), ban("<1.26", "CVE-2024-0001"))
    assert not decide(agent(A), "numpy", "1.25.2", rule_set).allowed
    assert "CVE-2024-0001" in decide(agent(A), "numpy", "1.25.2", rule_set).reason
    assert decide(agent(I), "numpy", "1.26.4", rule_set).allowed


def test_lowest_minimum_among_matching_approvals_wins():
    rule_set = rules(approval(">=1.20", A), approval("==1.26.4", I), approval(">=1.26,<1.27", SUP), approval("==2.0", S))
    decision = decide(agent(I), "numpy", "1.26.4", rule_set)
    assert decision.allowed and decision.maturity_required is I
    other = decide(agent(SUP), "numpy", "1.26.5", rule_set)
    assert other.allowed and other.maturity_required is SUP
    old = decide(agent(SUP), "numpy", "1.21.0", rule_set)
    assert not old.allowed and old.maturity_required is A


def test_revoked_rules_are_ignored():
    revoked_ban = ban("").model_copy(update={"revoked_at": "2024-01-01T00:00:00.000000Z"})
    revoked_approval = approval("", I).model_copy(update={"revoked_at": "2024-01-01T00:00:00.000000Z"})
    assert decide(agent(I), "numpy", "1.0", rules(approval("", I), revoked_ban)).allowed
    assert not decide(agent(A), "numpy", "1.0", rules(revoked_approval)).allowed


def test_prereleases_are_contained_by_specifiers():
    rule_set = rules(approval(">=2", I))
    assert decide(agent(I), "numpy", "2.1.0rc1", rule_set).allowed
    assert decide(agent(I), "numpy", "2.0.0.dev1", rules(approval("", I))).allowed
    assert not decide(agent(I), "numpy", "2.0.0b1", rules(approval("", I), ban(">=2.0.0a0", "unstable"))).allowed


def test_names_and_versions_are_normalized():
    rule_set = RuleSet.of("Typing_Extensions", [approval("==4.12.0", I, package="typing.extensions")])
    decision = decide(agent(I), "TYPING-extensions", "==4.12", rule_set)
    assert decision.allowed
    assert "typing-extensions 4.12" in decision.reason


@pytest.mark.parametrize("version", ["", ">=1.0", "1.*", "==1.*", "latest", "1.0,<2"])
def test_version_must_be_exact(version):
    with pytest.raises(BadRequest, match="exact version"):
        decide(agent(I), "numpy", version, rules(approval("", I)))


def test_flagged_typosquat_needs_an_approval_naming_the_exact_version():
    broad = rules(approval("", I), approval(">=1", I))
    decision = decide(agent(A), "numpy", "1.26.4", broad, requires_explicit_approval=True)
    assert not decision.allowed
    assert "possible typosquat" in decision.reason and "==1.26.4" in decision.reason
    exact = rules(approval("", I), approval("==1.26.4", SUP))
    decision = decide(agent(SUP), "numpy", "1.26.4", exact, requires_explicit_approval=True)
    assert decision.allowed and decision.maturity_required is SUP
    assert not decide(agent(I), "numpy", "1.26.4", exact, requires_explicit_approval=True).allowed


def test_decision_json_matches_the_seed_shape():
    decision = decide(agent(I), "numpy", "1.26.4", rules(approval("", I)))
    assert decision.to_json() == {"allowed": True, "maturity_required": "INTERN", "reason": decision.reason}


# --- before resolution: a request that cannot succeed costs no resolution -------------------


@pytest.mark.parametrize(("who", "specifier", "rule_set", "allowed", "words"), [
    (None, ">=1", rules(approval("", I)), False, "unknown agent"),
    (S, ">=1", rules(approval("", I)), False, STUDENT_REASON),
    (I, ">=1", rules(), False, "no approval for numpy"),
    (I, ">=1", rules(approval("<2", SUP)), False, "requires maturity SUPERVISED or above"),
    (I, ">=1", rules(approval("<2", I), ban("", "malware")), False, "numpy is banned: malware"),
    (I, ">=1", rules(approval("<2", I), ban("<1.5", "old")), True, "checked next"),  # a partial ban: the resolved version decides
    (I, "", rules(approval("==1.26.4", I)), True, "checked next"),
    (I, "==1.25.0", rules(approval("==1.26.4", I)), False, "no approval for numpy 1.25.0"),  # an exact pin decides now
    (I, "===1.26.4", rules(approval("==1.26.4", I)), True, "approved for INTERN"),
])  # fmt: skip
def test_decide_before_resolution(who, specifier, rule_set, allowed, words):
    from chalicelib.governance.decision import decide_before_resolution

    decision = decide_before_resolution(agent(who) if who else None, "numpy", specifier, rule_set, agent_id="bot")
    assert decision.allowed is allowed and words in decision.reason, decision


def test_before_resolution_a_flagged_name_needs_an_exact_approval():
    from chalicelib.governance.decision import decide_before_resolution

    broad = decide_before_resolution(agent(I), "numpy", ">=1", rules(approval("", I)), requires_explicit_approval=True)
    assert not broad.allowed and "naming an exact version" in broad.reason
    exact = decide_before_resolution(agent(I), "numpy", ">=1", rules(approval("==1.26.4", I)), requires_explicit_approval=True)
    assert exact.allowed
