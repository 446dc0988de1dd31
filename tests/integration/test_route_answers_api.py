"""Real answers of the operator and lookup routes validate against the answer model each route declares."""

from __future__ import annotations

import pytest
from chalice.test import Client

from api_support import Api


@pytest.fixture
def api(stack):
    with Client(stack.app) as client:
        yield Api(client)


def _declared(method: str, path: str):
    from app import app

    return app.routes[path][method].view_function.route_doc


def check(api: Api, method: str, route: str, url: str | None = None, body=None, key=None):
    """Call the route; its answer must be its declared status and validate against its declared model."""
    status, answer = api.call(method.lower(), url or route, body, key=key)
    doc = _declared(method, route)
    assert status in (doc.status, 503 if route == "/api/health" else doc.status), (route, status, answer)
    doc.response.model_validate(answer)
    return answer


def test_network_and_isolation_rules_answer_as_declared(api):
    approved = check(api, "POST", "/api/network/approve", body={"host": "api.example.com", "min_maturity": "INTERN"})
    banned = check(api, "POST", "/api/network/ban", body={"host": "evil.example.com", "reason": "exfiltration"})
    assert banned["ports"] == "all" and approved["resumed_imports"] == []
    listed = check(api, "GET", "/api/network/rules")
    assert {r["rule_id"] for r in listed["rules"]} == {approved["rule_id"], banned["rule_id"]}
    check(api, "DELETE", "/api/network/rules/{rule_id}", f"/api/network/rules/{banned['rule_id']}")
    rule = check(api, "POST", "/api/isolation/rules", body={"runtime": "runsc", "match": {"maturity": "INTERN"}})
    assert check(api, "GET", "/api/isolation/rules")["rules"][0]["rule_id"] == rule["rule_id"]
    removed = check(api, "DELETE", "/api/isolation/rules/{rule_id}", f"/api/isolation/rules/{rule['rule_id']}")
    assert removed["removed"]["rule_id"] == rule["rule_id"]


def test_keys_owners_and_lookups_answer_as_declared(api):
    me = check(api, "GET", "/api/me")
    assert me["role"] == "admin"
    check(api, "GET", "/api/health")
    check(api, "GET", "/api/runners")
    check(api, "GET", "/api/runs")
    check(api, "GET", "/api/packages/requests")
    check(api, "GET", "/api/openapi.json")
    status, issued = api.call("post", "/api/keys", {"role": "publisher", "name": "pub", "team": "data"})
    assert status == 201, issued
    check(api, "DELETE", "/api/keys/{key_id}", f"/api/keys/{issued['key_id']}")
    owner = check(api, "PUT", "/api/skills/{skill_id}/owner", "/api/skills/report-tool/owner", {"owner": "team:data"})
    assert owner["owner"] == "team:data" and owner["previous_owner"] is None
    check(api, "GET", "/api/skills/{skill_id}/owner", "/api/skills/report-tool/owner")
    check(api, "PUT", "/api/inbox/prefixes", body={"prefix": "data/", "owner": "team:data"})
    check(api, "GET", "/api/inbox/prefixes")
    check(api, "DELETE", "/api/inbox/prefixes", "/api/inbox/prefixes?prefix=data/")
    check(api, "GET", "/api/secrets", "/api/secrets?skill_id=report-tool")
    status, refused = api.call("get", "/api/secrets")
    assert status == 400 and refused["problems"] == ["skill_id: Field required"]
    status, refused = api.call("get", "/api/packages/check?package_name=six")
    assert status == 400 and refused["problems"] == ["version: Field required"]
    ignore = check(api, "POST", "/api/packages/ignores",
                   body={"advisory_id": "GHSA-xxxx-yyyy-zzzz", "reason": "not reachable", "expires_at": "2099-01-01"})
    assert ignore["advisory_id"] == "GHSA-xxxx-yyyy-zzzz"
    check(api, "GET", "/api/packages/ignores")
    check(api, "POST", "/api/scans/rescan", body={})
