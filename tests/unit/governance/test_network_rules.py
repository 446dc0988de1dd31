"""Host decisions: approval by maturity, a ban beats an approval, STUDENT never, wildcards cover subdomains."""

from __future__ import annotations

import pytest

from chalicelib.errors import BadRequest
from chalicelib.governance.maturity import Maturity
from chalicelib.governance.network import NetworkChecker, NetworkRule, decide_hosts


def approval(host: str, maturity: str, ports: list[int] | None = None) -> NetworkRule:
    return NetworkRule.new("network_approval", host, ports, "admin", min_maturity=maturity)


def ban(host: str) -> NetworkRule:
    return NetworkRule.new("network_ban", host, None, "admin", reason="exfiltration endpoint")


def test_approval_applies_from_its_minimum_maturity_up() -> None:
    rules = [approval("api.example.com", "SUPERVISED")]
    assert decide_hosts(Maturity.AUTONOMOUS, ["api.example.com"], rules).allowed == ["api.example.com"]
    denied = decide_hosts(Maturity.INTERN, ["api.example.com"], rules).denied
    assert denied == [{"host": "api.example.com", "reason": "approved only for SUPERVISED agents and above (this agent is INTERN)"}]


def test_a_ban_beats_an_approval_even_through_a_wildcard() -> None:
    rules = [approval("*.example.com", "INTERN"), ban("evil.example.com")]
    decision = decide_hosts(Maturity.AUTONOMOUS, ["*.example.com", "evil.example.com:443", "api.example.com"], rules)
    assert decision.allowed == ["api.example.com"]
    assert [d["host"] for d in decision.denied] == ["*.example.com", "evil.example.com:443"]
    assert all("banned" in d["reason"] for d in decision.denied)


def test_student_agents_never_get_egress_and_cannot_be_approved_for() -> None:
    denied = decide_hosts(Maturity.STUDENT, ["api.example.com"], [approval("api.example.com", "INTERN")]).denied
    assert denied[0]["reason"] == "STUDENT agents never get network access"
    with pytest.raises(BadRequest, match="STUDENT"):
        approval("api.example.com", "STUDENT")


def test_unapproved_host_and_port_say_how_to_get_approval() -> None:
    rules = [approval("api.example.com", "INTERN", [443])]
    denied = decide_hosts(Maturity.AUTONOMOUS, ["api.example.com"], rules).denied  # 80 and 443, only 443 approved
    assert "POST /api/network/approve" in denied[0]["reason"]
    assert decide_hosts(Maturity.AUTONOMOUS, ["api.example.com:443"], rules).allowed == ["api.example.com:443"]


def test_revoked_rules_do_not_count_and_the_checker_cache_drops_on_change() -> None:
    rules = [approval("api.example.com", "INTERN")]
    checker = NetworkChecker(lambda: list(rules), lambda agent: Maturity.INTERN)
    assert checker.check("a", ["api.example.com"]).allowed
    rules[0] = rules[0].model_copy(update={"revoked_at": "2026-12-02T00:00:00Z"})
    assert checker.check("a", ["api.example.com"]).allowed  # cached
    checker.rules_changed()
    assert checker.check("a", ["api.example.com"]).denied


@pytest.mark.parametrize("host", ["*", "10.1.2.3", "https://api.example.com/x", "localhost"])
def test_rules_for_bad_hosts_are_refused(host: str) -> None:
    with pytest.raises(BadRequest):
        approval(host, "INTERN")
