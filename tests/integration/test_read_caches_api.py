"""Keys and skill records a run reads, reused for SKILLHARBOR_RECORD_CACHE_SECONDS: what changes here applies at
once, what another instance changes applies once the bound has passed."""

from __future__ import annotations

import json
import time

import pytest
from chalice.test import Client

PROMPT = b"---\nname: Cached Prompt\ndescription: A prompt template.\n---\nAnswer {{query}}.\n"
BOUND = 0.5


def _post(client, path, body, headers):
    response = client.http.post(path, body=json.dumps(body), headers={**headers, "Content-Type": "application/json"})
    return response.status_code, json.loads(response.body)


@pytest.fixture
def short_bound(stack, monkeypatch):
    from chalicelib.api.services import reset_services

    monkeypatch.setenv("SKILLHARBOR_RECORD_CACHE_SECONDS", str(BOUND))
    reset_services()  # the services read the bound when they are built
    yield
    reset_services()


def _ready_prompt(client, admin_headers, stack):
    accepted = json.loads(client.http.post("/api/skills", body=PROMPT, headers={**admin_headers, "Content-Type": "text/markdown"}).body)
    assert stack.wait_for_import(accepted["import_id"])["status"] == "SUCCEEDED"
    status, agent = _post(client, "/api/agents", {"agent_id": "cache-bot", "maturity": "INTERN"}, admin_headers)
    assert status == 201, agent
    return agent


def _run(client, agent):
    return _post(client, "/api/skills/cached-prompt/execute", {"inputs": {"query": "why"}}, {"Authorization": f"Bearer {agent['api_key']}"})


def test_a_key_revoked_by_another_instance_is_refused_once_the_bound_has_passed(stack, admin_headers, short_bound):
    from chalicelib.store.principals import PrincipalsStore

    with Client(stack.app) as client:
        agent = _ready_prompt(client, admin_headers, stack)
        assert _run(client, agent)[0] == 200
        PrincipalsStore().revoke_key(agent["key_id"])  # another API instance's write: this one has the key cached
        time.sleep(BOUND + 0.1)
        status, body = _run(client, agent)
    assert status == 401 and "revoked" in body["message"]


def test_a_key_revoked_through_this_instance_is_refused_on_its_next_request(stack, admin_headers):
    with Client(stack.app) as client:
        agent = _ready_prompt(client, admin_headers, stack)
        assert _run(client, agent)[0] == 200
        response = client.http.delete(f"/api/keys/{agent['key_id']}", headers=admin_headers)
        assert response.status_code == 200, response.body
        status, body = _run(client, agent)
    assert status == 401 and "revoked" in body["message"]


def test_a_version_taken_out_of_service_stops_runs_here_at_once_and_elsewhere_within_the_bound(stack, admin_headers, short_bound):
    from chalicelib.api.services import import_service
    from chalicelib.store.skills import DynamoSkillRegistry

    with Client(stack.app) as client:
        agent = _ready_prompt(client, admin_headers, stack)
        assert _run(client, agent)[0] == 200
        version = import_service().skills.latest("cached-prompt")["version"]
        DynamoSkillRegistry().update_version("cached-prompt", version, status="blocked")  # another instance
        time.sleep(BOUND + 0.1)
        status, body = _run(client, agent)
        assert status == 409 and "blocked" in body["message"]
        import_service().skills.update_version("cached-prompt", version, status="ready")  # this instance
        assert _run(client, agent)[0] == 200
        import_service().skills.update_version("cached-prompt", version, status="blocked")
        assert _run(client, agent)[0] == 409
