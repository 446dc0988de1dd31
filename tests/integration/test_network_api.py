"""Network rules through the HTTP API (moto): approve, ban, list, revoke, the run's host check, the audit."""

from __future__ import annotations

import json

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


WEATHER = b"""---
name: Weather Now
description: Asks a weather API.
network:
  - api.weather.example:443
---
```python
def execute(city: str) -> str:
    return city
```
"""


def test_an_import_waits_for_its_host_and_resumes_when_approved_then_runs_need_the_maturity(stack, api):
    response = api.client.http.post("/api/skills", body=WEATHER, headers={**api.admin, "Content-Type": "text/markdown"})
    accepted = json.loads(response.body)
    assert stack.wait_for_import(accepted["import_id"])["status"] == "PENDING_APPROVAL"
    status, skill = api.call("get", "/api/skills/weather-now")
    assert skill["status"] == "pending_approval" and skill["waiting_for"] == ["network:api.weather.example:443"]
    status, rule = api.call("post", "/api/network/approve", {"host": "api.weather.example", "ports": [443], "min_maturity": "SUPERVISED"})
    assert status == 201 and rule["resumed_imports"] == [accepted["import_id"]]
    assert stack.wait_for_import(accepted["import_id"])["status"] == "SUCCEEDED"
    key = api.agent("intern-w", "INTERN")
    status, body = api.call("post", "/api/skills/weather-now/execute", {"inputs": {"city": "Oslo"}}, key=key)
    assert status == 403
    assert body["problems"] == ["api.weather.example:443: approved only for SUPERVISED agents and above (this agent is INTERN)"]
    student = api.agent("student-w", "STUDENT")
    status, body = api.call("post", "/api/skills/weather-now/execute", {"inputs": {"city": "Oslo"}}, key=student)
    assert status == 403 and "STUDENT agents never get network access" in body["problems"][0]


def test_a_banned_host_blocks_the_import(stack, api):
    api.call("post", "/api/network/ban", {"host": "*.weather.example", "reason": "leaks locations"})
    response = api.client.http.post("/api/skills", body=WEATHER, headers={**api.admin, "Content-Type": "text/markdown"})
    record = stack.wait_for_import(json.loads(response.body)["import_id"])
    assert record["status"] == "FAILED"
    status, skill = api.call("get", "/api/skills/weather-now")
    assert skill["status"] == "blocked" and "leaks locations" in json.dumps(skill)
