"""skillharbor isolation add/list/remove against the local stack."""

from __future__ import annotations

import json


def test_an_admin_adds_lists_and_removes_an_isolation_rule(run_cli, unique):
    skill = unique("tiered")
    added = json.loads(run_cli("isolation", "add", "--skill", skill, "--maturity", "intern", "--no-egress",
                               "--runtime", "runsc", "--json").stdout)  # fmt: skip
    assert added["match"] == {"skill_id": skill, "maturity": "INTERN", "egress": False} and added["runtime"] == "runsc"
    listed = run_cli("isolation", "list").stdout
    assert added["rule_id"] in listed and "runsc" in listed
    assert added["rule_id"] in run_cli("isolation", "remove", added["rule_id"]).stdout
    assert added["rule_id"] not in run_cli("isolation", "list").stdout


def test_bad_isolation_rules_are_refused(run_cli):
    assert "runtime" in run_cli("isolation", "add", "--maturity", "STUDENT", expect=2).stderr  # --runtime is required
    result = run_cli("isolation", "remove", "iso-0000000000000000", expect=1)
    assert "no isolation rule" in result.stderr + result.stdout
