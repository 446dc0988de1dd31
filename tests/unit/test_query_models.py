"""Query strings are parsed by the route's query model, and the OpenAPI parameters are that model's fields."""

from __future__ import annotations

import pytest
from chalice.app import Request

from chalicelib.api.http import parse_query
from chalicelib.api.queries import AuditQuery, CheckQuery, RulesQuery
from chalicelib.errors import BadRequest


def _request(query: dict[str, str]) -> Request:
    return Request({"multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None, "headers": {},
                    "pathParameters": {}, "requestContext": {"httpMethod": "GET", "resourcePath": "/"},
                    "body": None, "isBase64Encoded": False, "stageVariables": {}})  # fmt: skip


def test_an_empty_value_is_not_sent_and_unknown_parameters_are_ignored():
    query = parse_query(_request({"agent_id": "", "limit": "10", "utm_source": "mail"}), AuditQuery)
    assert query.agent_id is None and query.limit == "10"


def test_a_missing_required_parameter_is_named():
    with pytest.raises(BadRequest) as caught:
        parse_query(_request({"package_name": "six"}), CheckQuery)
    assert caught.value.problems == ["version: Field required"]


def test_a_flag_is_true_or_false():
    with pytest.raises(BadRequest, match="include_revoked"):
        parse_query(_request({"include_revoked": "yes"}), RulesQuery)


def test_the_document_lists_each_routes_query_fields():
    from app import app
    from chalicelib.api.openapi import openapi_document

    paths = openapi_document(app)["paths"]
    check = {p["name"]: p["required"] for p in paths["/api/packages/check"]["get"]["parameters"]}
    assert check == {"package_name": True, "version": True, "agent_id": False}
    audit = [p["name"] for p in paths["/api/packages/audit"]["get"]["parameters"]]
    assert set(audit) == set(AuditQuery.model_fields)
    flag = paths["/api/network/rules"]["get"]["parameters"][0]
    assert flag["name"] == "include_revoked" and flag["schema"]["enum"] == ["true", "false"]
