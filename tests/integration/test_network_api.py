"""Network rules through the HTTP API (moto): approve, ban, list, revoke, the run's host check, the audit."""

from __future__ import annotations

import pytest
from chalice.test import Client
from test_governance_api import Api

from chalicelib.api.services import network_governance


@pytest.fixture
def api(stack, admin_headers):
    with Client(stack.app) as client:
        yield Api(client, admin_headers)


def test_approval_by_maturity_and_a_ban_beating_it(api):
    api.agent("intern-n", "INTERN")
    api.agent("auto-n", "AUTONOMOUS")
    status, rule = api.call("post", "/api/network/approve", {"host": "API.example.com", "ports": [443], "min_maturity": "SUPERVISED"})
    assert status == 201 and rule["host"] == "api.example.com" and rule["ports"] == [443]
    check = network_governance().check
    assert check("auto-n", ["api.example.com:443"]).allowed == ["api.example.com:443"]
    assert "SUPERVISED" in check("intern-n", ["api.example.com:443"]).denied[0]["reason"]
    status, banned = api.call("post", "/api/network/ban", {"host": "*.example.com", "reason": "compromised"})
    assert status == 201 and banned["ports"] == "all"
    assert "banned" in check("auto-n", ["api.example.com:443"]).denied[0]["reason"]
    status, listed = api.call("get", "/api/network/rules")
    assert status == 200 and {r["kind"] for r in listed["rules"]} == {"network_approval", "network_ban"}
    status, _ = api.call("delete", f"/api/network/rules/{banned['rule_id']}")
    assert status == 200
    assert check("auto-n", ["api.example.com:443"]).allowed
    status, page = api.call("get", "/api/packages/audit?action=network.approve")
    assert status == 200 and page["events"][0]["detail"]["host"] == "api.example.com", page


def test_bad_hosts_and_non_admins_are_refused(api):
    key = api.agent("auto-x", "AUTONOMOUS")
    status, body = api.call("post", "/api/network/approve", {"host": "https://x.example.com/a", "min_maturity": "INTERN"})
    assert status == 400 and "URL" in body["message"]
    status, body = api.call("post", "/api/network/approve", {"host": "169.254.169.254", "min_maturity": "INTERN"})
    assert status == 400 and "link-local" in body["message"]
    status, _ = api.call("post", "/api/network/approve", {"host": "api.example.com", "min_maturity": "INTERN"}, key=key)
    assert status == 403
