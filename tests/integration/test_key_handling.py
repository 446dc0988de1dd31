"""Key handling (issue 11, low items): agent key rotation, the bootstrap admin key, health details.

Each test performs the attack or the operator's recovery through the HTTP API.
"""

from __future__ import annotations

import json
import threading

import pytest
from chalice.test import Client

from stack_support import ADMIN_KEY


class Api:
    def __init__(self, client, admin_headers):
        self.client, self.admin = client, admin_headers

    def call(self, method, path, body=None, key=None):
        headers = {"Authorization": f"Bearer {key}"} if key else dict(self.admin)
        kwargs = {"headers": headers}
        if body is not None:
            kwargs = {"headers": {**headers, "Content-Type": "application/json"}, "body": json.dumps(body)}
        response = getattr(self.client.http, method)(path, **kwargs)
        return response.status_code, json.loads(response.body or b"{}")

    def agent(self, agent_id, maturity="INTERN"):
        status, body = self.call("post", "/api/agents", {"agent_id": agent_id, "maturity": maturity})
        assert status == 201, body
        return body

    def works(self, key, agent_id) -> int:
        return self.call("get", f"/api/packages/check?agent_id={agent_id}&package_name=numpy&version=1.26.4", key=key)[0]


@pytest.fixture
def api(stack, admin_headers):
    with Client(stack.app) as client:
        yield Api(client, admin_headers)


# --- agent keys can be rotated ------------------------------------------------------------------


def test_an_agent_rotates_its_own_key_and_the_old_one_stops_working(api):
    agent = api.agent("bot-1")
    status, rotated = api.call("post", f"/api/keys/{agent['key_id']}/rotate", key=agent["api_key"])
    assert status == 201, rotated
    assert rotated["replaces"] == agent["key_id"] and rotated["agent_id"] == "bot-1" and rotated["role"] == "agent"
    assert api.works(rotated["api_key"], "bot-1") == 200
    status, body = api.call("get", "/api/packages/check?package_name=numpy&version=1.26.4", key=agent["api_key"])
    assert status == 401 and "revoked" in body["message"]
    assert api.call("post", f"/api/keys/{agent['key_id']}/rotate", key=rotated["api_key"])[0] == 403  # not its key now
    events = api.call("get", "/api/packages/audit?action=key.rotate")[1]["events"]
    assert [(e["actor"], e["detail"]["key_id"], e["detail"]["new_key_id"]) for e in events] == [
        ("agent:bot-1", agent["key_id"], rotated["key_id"])]  # fmt: skip
    assert "api_key" not in json.dumps(events) and rotated["api_key"] not in json.dumps(events)


def test_an_agent_cannot_rotate_or_list_another_agents_key(api):
    mine, theirs = api.agent("bot-a"), api.agent("bot-b")
    assert api.call("post", f"/api/keys/{theirs['key_id']}/rotate", key=mine["api_key"])[0] == 403
    assert api.works(theirs["api_key"], "bot-b") == 200
    assert api.call("get", "/api/keys?agent_id=bot-b", key=mine["api_key"])[0] == 403
    own = api.call("get", "/api/keys", key=mine["api_key"])[1]["keys"]
    assert [k["key_id"] for k in own] == [mine["key_id"]] and "api_key" not in own[0] and "key_hash" not in own[0]


def test_an_admin_rotates_any_key_and_reissues_one_for_an_agent_left_without(api):
    agent = api.agent("bot-1")
    status, rotated = api.call("post", f"/api/keys/{agent['key_id']}/rotate")
    assert status == 201 and api.works(rotated["api_key"], "bot-1") == 200
    assert api.call("delete", f"/api/keys/{rotated['key_id']}")[0] == 200  # revoked: the agent has no key left
    assert api.call("post", f"/api/keys/{rotated['key_id']}/rotate")[0] == 409
    status, issued = api.call("post", "/api/keys", {"role": "agent", "name": "bot-1 again", "agent_id": "bot-1"})
    assert status == 201 and issued["agent_id"] == "bot-1"
    assert api.works(issued["api_key"], "bot-1") == 200
    assert api.call("post", "/api/keys", {"role": "agent", "name": "x", "agent_id": "ghost"})[0] == 404
    assert api.call("post", "/api/keys", {"role": "agent", "name": "x"})[0] == 400
    listed = api.call("get", "/api/keys?agent_id=bot-1")[1]["keys"]
    assert [k["revoked_at"] is None for k in listed] == [False, False, True]


def test_concurrent_rotations_of_one_key_leave_exactly_one_new_key(api, stack):
    from chalicelib.api.services import governance_service
    from chalicelib.errors import Conflict

    agent = api.agent("bot-1")
    from chalicelib.governance.identity import authenticate

    caller = authenticate(ADMIN_KEY, governance_service().principals, bootstrap_admin_key=ADMIN_KEY)
    start, outcomes = threading.Barrier(4), []

    def rotate():
        start.wait(timeout=30)
        try:
            outcomes.append(governance_service().rotate_key(caller, agent["key_id"])[0].api_key)
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=rotate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    new_keys = [o for o in outcomes if o != "conflict"]
    assert len(outcomes) == 4 and len(new_keys) == 1, outcomes
    active = [k for k in api.call("get", "/api/keys?agent_id=bot-1")[1]["keys"] if k["revoked_at"] is None]
    assert len(active) == 1 and api.works(new_keys[0], "bot-1") == 200


def test_a_rotated_publisher_key_keeps_its_skills(api, stack):
    status, publisher = api.call("post", "/api/keys", {"role": "publisher", "name": "ci"})
    skill = b"---\nname: Rotated Skill\ndescription: d\n---\n# r\n\nHello {name}.\n"
    response = api.client.http.post("/api/skills", body=skill,
                                    headers={"Authorization": f"Bearer {publisher['api_key']}", "Content-Type": "text/markdown"})  # fmt: skip
    assert response.status_code == 202 and stack.wait_for_import(json.loads(response.body)["import_id"])["status"] == "SUCCEEDED"
    status, rotated = api.call("post", f"/api/keys/{publisher['key_id']}/rotate", key=publisher["api_key"])
    assert status == 201 and rotated["owner"] == f"key:{publisher['key_id']}"
    response = api.client.http.post("/api/skills", body=skill.replace(b"Hello", b"Hi"),
                                    headers={"Authorization": f"Bearer {rotated['api_key']}", "Content-Type": "text/markdown"})  # fmt: skip
    assert response.status_code == 202, response.body


def test_the_bootstrap_key_cannot_be_rotated(api):
    status, body = api.call("post", "/api/keys/bootstrap-admin/rotate")
    assert status == 409 and "retire" in body["message"]


# --- the bootstrap admin key --------------------------------------------------------------------


def test_an_admin_retires_the_bootstrap_key_once_another_admin_key_exists(api):
    status, body = api.call("delete", "/api/keys/bootstrap-admin")
    assert status == 409 and "create another admin key first" in body["message"]
    status, admin = api.call("post", "/api/keys", {"role": "admin", "name": "ops"})
    assert status == 201
    status, retired = api.call("delete", "/api/keys/bootstrap-admin", key=admin["api_key"])
    assert status == 200 and retired["key_id"] == "bootstrap-admin" and retired["revoked_at"]
    status, body = api.call("get", "/api/skills")  # the bootstrap key, still in the environment
    assert status == 401 and "retired" in body["message"]
    assert api.call("get", "/api/skills", key=admin["api_key"])[0] == 200
    events = api.call("get", "/api/packages/audit?action=key.revoke", key=admin["api_key"])[1]["events"]
    assert [(e["actor"], e["detail"]) for e in events] == [
        ("admin:ops", {"key_id": "bootstrap-admin", "role": "admin", "bootstrap": True})]  # fmt: skip
    # the last admin key is now the only way in: revoking it is refused
    status, body = api.call("delete", f"/api/keys/{admin['key_id']}", key=admin["api_key"])
    assert status == 409 and "last admin key" in body["message"]
    assert api.call("delete", "/api/keys/bootstrap-admin", key=admin["api_key"])[0] == 409  # already retired


def test_a_new_bootstrap_key_in_the_environment_works_again(api, monkeypatch):
    """Recovery: whoever controls the deployment's environment sets a fresh key."""
    _, admin = api.call("post", "/api/keys", {"role": "admin", "name": "ops"})
    assert api.call("delete", "/api/keys/bootstrap-admin", key=admin["api_key"])[0] == 200
    fresh = "shk_admin_recovery-" + "r" * 24
    monkeypatch.setenv("SKILLHARBOR_ADMIN_KEY", fresh)
    assert api.call("get", "/api/skills", key=fresh)[0] == 200
    assert api.call("get", "/api/skills", key=ADMIN_KEY)[0] == 401


def test_a_short_bootstrap_key_is_refused_and_the_key_never_shows_in_settings(monkeypatch):
    from pydantic import ValidationError

    from chalicelib.settings import Settings

    monkeypatch.setenv("SKILLHARBOR_ADMIN_KEY", "short-but-sweet")
    with pytest.raises(ValidationError, match="32 characters or more"):
        Settings()
    monkeypatch.setenv("SKILLHARBOR_ADMIN_KEY", ADMIN_KEY)
    assert ADMIN_KEY not in repr(Settings()) and ADMIN_KEY not in str(Settings())


# --- GET /api/health ----------------------------------------------------------------------------


def _aws_calls(monkeypatch) -> list[str]:
    """Every AWS operation made from now on (boto3 clients made after this call)."""
    import boto3

    calls: list[str] = []
    session = boto3.session.Session()
    session.events.register("before-call", lambda model, **_: calls.append(model.name))
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
    return calls


def test_health_without_a_key_says_only_ok_and_costs_one_probe_per_interval(api, monkeypatch):
    from chalicelib.api import status as health_status

    monkeypatch.setattr(health_status, "SUMMARY_CACHE_SECONDS", 3600.0)
    health_status.forget_cached_status()
    calls = _aws_calls(monkeypatch)
    answers = [api.client.http.get("/api/health")]
    one_probe = len(calls)
    answers += [api.client.http.get("/api/health") for _ in range(19)]
    assert {a.status_code for a in answers} == {200}
    body = json.loads(answers[0].body)
    assert set(body) == {"status", "detail"} and body["status"] == "ok"
    text = answers[0].body.decode()
    for secret in ("skillharbor-", "dynamodb", "sqs", "runner", "workers", "error"):
        assert secret not in text, text
    assert 0 < one_probe == len(calls), calls  # one probe for twenty checks
    agent = api.agent("bot-1")
    assert set(json.loads(api.client.http.get("/api/health", headers={"Authorization": f"Bearer {agent['api_key']}"}).body)) == {"status", "detail"}
    bad = json.loads(api.client.http.get("/api/health", headers={"Authorization": "Bearer shk_nope"}).body)
    assert set(bad) == {"status", "detail"} and "not accepted" in bad["detail"]


def test_health_with_an_admin_key_shows_every_part(api, admin_headers):
    response = api.client.http.get("/api/health", headers=admin_headers)
    report = json.loads(response.body)
    assert response.status_code == 200 and report["status"] == "ok"
    assert "dynamodb:skillharbor-skills" in report["parts"] and "runners" in report
