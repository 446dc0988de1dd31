"""Request bodies are validated once, by the route's model: a bad body is a 400 naming every field at fault,
unknown fields are refused (ignored on the seed-compatible routes), and the answers have the shapes the
OpenAPI document declares."""

from __future__ import annotations

import pytest
from chalice.test import Client

from api_support import Api
from stack_support import ADMIN_HEADERS


@pytest.fixture
def api(stack):
    with Client(stack.app) as client:
        yield Api(client)


def test_a_bad_body_is_a_400_listing_every_field_problem(api):
    status, body = api.call("post", "/api/keys", {"role": 7, "name": "", "team": ["x"]})
    assert status == 400 and body["error"] == "bad_request", body
    problems = body["problems"]
    assert [p.split(":")[0] for p in problems] == ["role", "name", "team"], problems
    assert all(p.split(": ", 1)[1] for p in problems)  # each says what is wrong


def test_nested_field_problems_name_their_path(api):
    status, body = api.call("post", "/api/packages/scan", {"pins": [{"name": "six"}, {"name": "x", "version": 1}]})
    assert status == 400, body
    assert "pins.0.version: Field required" in body["problems"], body
    assert any(p.startswith("pins.1.version:") for p in body["problems"]), body


def test_types_are_strict(api):
    api.agent("bot-1", "INTERN")
    status, body = api.call("patch", "/api/agents/bot-1", {"maturity": "SUPERVISED", "expected_version": "1"})
    assert status == 400 and body["problems"][0].startswith("expected_version:"), body
    status, body = api.call("post", "/api/scans/rescan", {"force": 1})
    assert status == 400 and body["problems"][0].startswith("force:"), body


def test_unknown_fields_are_refused_except_on_the_seed_routes(api):
    status, body = api.call("post", "/api/network/ban", {"host": "evil.example", "reason": "exfil", "prots": [443]})
    assert status == 400 and body["problems"] == ["prots: Extra inputs are not permitted"], body
    # the seed's clients send fields of their own (requested_by): ignored, as the seed's service did
    status, body = api.call("post", "/api/packages/ban", {"package_name": "evilpkg", "reason": "malware", "requested_by": "u-1"})
    assert status == 201 and body["package_name"] == "evilpkg", body


def test_not_json_and_too_large_bodies_still_say_why(api):
    response = api.client.http.post("/api/agents", body=b"agent_id=x", headers=dict(ADMIN_HEADERS))
    assert response.status_code == 400 and b"not valid JSON" in response.body
    status, body = api.call("post", "/api/agents", {"agent_id": "x" * 300_000, "maturity": "INTERN"})
    assert status == 413 and body["error"] == "payload_too_large", body


def test_an_empty_body_is_the_defaults_where_the_route_allows_it(api):
    api.agent("bot-2", "INTERN")
    status, body = api.call("post", "/api/packages/request", {"package_name": "six", "version": "1.16.0", "reason": "r",
                                                              "agent_id": "bot-2"})  # fmt: skip
    assert status == 201, body
    response = api.client.http.post(f"/api/packages/requests/{body['request_id']}/reject", headers=dict(ADMIN_HEADERS))
    assert response.status_code == 200, response.body
    response = api.client.http.post("/api/agents", headers=dict(ADMIN_HEADERS))  # this one needs a body
    assert response.status_code == 400, response.body


def test_answers_have_the_declared_shapes(api):
    from app import app
    from chalicelib.api.openapi import openapi_document
    from chalicelib.api.responses import AgentAnswer, DecisionAnswer, ErrorResponse, KeyList, RuleAnswer

    created = api.call("post", "/api/agents", {"agent_id": "bot-3", "maturity": "INTERN"})
    AgentAnswer.model_validate(created[1])
    status, rule = api.call("post", "/api/packages/approve", {"package_name": "six", "min_maturity": "INTERN"})
    assert status == 201
    RuleAnswer.model_validate(rule)
    DecisionAnswer.model_validate(api.call("get", "/api/packages/check?agent_id=bot-3&package_name=six&version=1.16.0")[1])
    KeyList.model_validate(api.call("get", "/api/keys")[1])
    ErrorResponse.model_validate(api.call("get", "/api/agents/nobody")[1])
    document = openapi_document(app)
    answer = document["paths"]["/api/agents"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/AgentAnswer"}
    body = document["paths"]["/api/agents"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert document["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]["required"] == ["agent_id", "maturity"]
