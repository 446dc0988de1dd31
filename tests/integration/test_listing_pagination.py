"""Listings read to the end (issue 11, low items): a full page must not hide what comes after it.

DynamoDB answers at most 1 MB per query page (moto too), and the request
listing used to take the newest 500 requests before filtering per agent.
"""

from __future__ import annotations

import json
import time

import pytest
from chalice.test import Client


@pytest.fixture
def client(stack):
    with Client(stack.app) as test_client:
        yield test_client


def _call(client, headers, method, path, body=None):
    kwargs = {"headers": dict(headers)}
    if body is not None:
        kwargs = {"headers": {**headers, "Content-Type": "application/json"}, "body": json.dumps(body)}
    response = getattr(client.http, method)(path, **kwargs)
    return response.status_code, json.loads(response.body or b"{}")


def test_the_newest_version_is_found_past_a_full_page_of_older_ones(client, admin_headers):
    from chalicelib.store.skills import DynamoSkillRegistry

    registry = DynamoSkillRegistry()
    # four large older versions (about 1.2 MB in all) sort before the newest one by their keys
    for index in range(4):
        registry.put_version({"skill_id": "busy", "version": f"{index:064d}", "name": "Busy", "status": "ready",
                              "uploaded_at": f"2026-01-0{index + 1}T00:00:00+00:00", "notes": "x" * 300_000})  # fmt: skip
    newest = "f" * 64
    registry.put_version({"skill_id": "busy", "version": newest, "name": "Busy", "status": "ready",
                          "uploaded_at": "2026-02-01T00:00:00+00:00"})  # fmt: skip
    status, skill = _call(client, admin_headers, "get", "/api/skills/busy")
    assert status == 200 and skill["version"] == newest and skill["active_version"] == newest
    assert len(registry.versions("busy")) == 5


def test_one_agents_flood_of_requests_does_not_hide_another_agents(client, admin_headers):
    keys = {}
    for agent_id in ("spammer", "victim"):
        status, agent = _call(client, admin_headers, "post", "/api/agents", {"agent_id": agent_id, "maturity": "INTERN"})
        keys[agent_id] = {"Authorization": f"Bearer {agent['api_key']}"}
    status, mine = _call(client, keys["victim"], "post", "/api/packages/request",
                         {"package_name": "numpy", "version": "1.26.4", "reason": "charts"})  # fmt: skip
    assert status == 201
    time.sleep(0.002)  # the flood comes after: newest first, it would fill the first 500
    from chalicelib.governance.rules import ApprovalRequest
    from chalicelib.store.rules import RulesStore

    for index in range(500):  # as POST /api/packages/request files them (the store is faster to fill)
        RulesStore().create_request(ApprovalRequest(package=f"pkg-{index}", version="1.0", reason="spam",
                                                    requested_by="agent:spammer", agent_id="spammer"))  # fmt: skip
    for index in range(5):
        status, _ = _call(client, keys["spammer"], "post", "/api/packages/request",
                          {"package_name": f"more-{index}", "version": "1.0", "reason": "spam"})  # fmt: skip
        assert status == 201
    status, listed = _call(client, keys["victim"], "get", "/api/packages/requests")
    assert [r["request_id"] for r in listed["requests"]] == [mine["request_id"]]
    status, listed = _call(client, keys["victim"], "get", "/api/packages/requests?status=pending")
    assert [r["request_id"] for r in listed["requests"]] == [mine["request_id"]]


def test_an_approval_fulfils_every_pending_request_for_the_package(client, admin_headers):
    from chalicelib.governance.rules import ApprovalRequest
    from chalicelib.store.rules import RulesStore

    store = RulesStore()
    for index in range(505):  # as filed by POST /api/packages/request (the store is faster to fill)
        store.create_request(ApprovalRequest(package="numpy", version="1.26.4", reason="r", requested_by=f"agent:a{index}",
                                             agent_id=f"a{index}"))  # fmt: skip
    status, approved = _call(client, admin_headers, "post", "/api/packages/approve",
                             {"package_name": "numpy", "version": "==1.26.4", "min_maturity": "INTERN"})  # fmt: skip
    assert status == 201 and len(approved["fulfilled_requests"]) == 505
    assert store.list_requests("pending", package="numpy", limit=None) == []


def test_requests_filed_before_the_agent_index_are_backfilled(client, admin_headers):
    from chalicelib.governance.rules import ApprovalRequest
    from chalicelib.store.rules import RulesStore

    store = RulesStore()
    old = store.create_request(ApprovalRequest(package="six", version="1.16.0", reason="r", requested_by="agent:old",
                                               agent_id="old"))  # fmt: skip
    store.table.update_item(Key={"pk": f"req#{old.request_id}", "sk": "request"}, UpdateExpression="REMOVE gsi3pk, gsi3sk")
    assert store.list_requests(agent_id="old") == []
    assert store.backfill_agent_index() == 1
    assert [r.request_id for r in store.list_requests(agent_id="old")] == [old.request_id]
