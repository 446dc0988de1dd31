"""Execution through the API without a container: prompt-only skills, readiness and limits."""

from __future__ import annotations

import json

from chalice.test import Client

PROMPT = b"""---
name: Ask Politely
description: A prompt template.
---
Please answer {{query}} in the voice of {persona}; keep {unknown} as written.
"""


def _post(client, path, body, headers):
    response = client.http.post(path, body=json.dumps(body), headers={**headers, "Content-Type": "application/json"})
    return response.status_code, json.loads(response.body)


def test_prompt_only_skill_returns_its_rendered_template(stack, admin_headers):
    with Client(stack.app) as client:
        accepted = json.loads(client.http.post("/api/skills", body=PROMPT, headers={**admin_headers, "Content-Type": "text/markdown"}).body)
        assert stack.wait_for_import(accepted["import_id"])["status"] == "SUCCEEDED"
        status, agent = _post(client, "/api/agents", {"agent_id": "asker", "maturity": "STUDENT"}, admin_headers)
        status, result = _post(client, "/api/skills/ask-politely/execute", {"inputs": {"query": "why", "persona": "a pirate"}},
                               {"Authorization": f"Bearer {agent['api_key']}"})  # fmt: skip
    assert status == 200
    assert result["output"].strip() == "Please answer why in the voice of a pirate; keep {unknown} as written."
    assert result["image_tag"] is None and result["status"] == "ok"


def test_skill_that_is_not_ready_answers_409(stack, admin_headers):
    skill = b"---\nname: Waits\ndescription: d\npackages: [requests]\n---\n```python\ndef execute():\n    return 1\n```\n"
    with Client(stack.app) as client:
        accepted = json.loads(client.http.post("/api/skills", body=skill, headers={**admin_headers, "Content-Type": "text/markdown"}).body)
        assert stack.wait_for_import(accepted["import_id"])["status"] == "PENDING_APPROVAL"
        status, body = _post(client, "/api/skills/waits/execute", {"agent_id": "nobody", "inputs": {}}, admin_headers)
    assert status == 409 and "pending_approval" in body["message"]


def test_limits_over_the_admin_maxima_are_refused(stack, admin_headers):
    with Client(stack.app) as client:
        accepted = json.loads(client.http.post("/api/skills", body=PROMPT, headers={**admin_headers, "Content-Type": "text/markdown"}).body)
        stack.wait_for_import(accepted["import_id"])
        from chalicelib.api.services import execution_service

        try:
            execution_service().limits({"memory_mb": 999999, "timeout_seconds": 10_000})
        except Exception as error:  # BadRequest naming both limits
            assert "memory_mb" in str(error) and "timeout_seconds" in str(error)
        else:
            raise AssertionError("limits over the maxima were accepted")
        status, body = _post(client, "/api/skills/ask-politely/execute", {"agent_id": "x", "inputs": "nope"}, admin_headers)
        assert status == 400 and "inputs" in body["message"]


def test_a_skill_that_opts_out_of_preimport_sends_jobs_that_say_so(stack, admin_headers, monkeypatch):
    from chalicelib.api.services import execution_service
    from chalicelib.runner.spec import RunResult, RunStatus

    skill = b"---\nname: Lazy Imports\ndescription: d\npreimport: false\n---\n```python\ndef execute():\n    return 1\n```\n"
    sent = []

    def run_and_capture(job, **kwargs):  # stands in for the queue hop to the runner (runs need the real engine)
        sent.append(job)
        return RunResult(status=RunStatus.OK, output=1)

    monkeypatch.setattr(execution_service(), "run", run_and_capture)
    with Client(stack.app) as client:
        accepted = json.loads(client.http.post("/api/skills", body=skill, headers={**admin_headers, "Content-Type": "text/markdown"}).body)
        assert stack.wait_for_import(accepted["import_id"])["status"] == "SUCCEEDED"
        status, agent = _post(client, "/api/agents", {"agent_id": "lazy", "maturity": "INTERN"}, admin_headers)
        status, result = _post(client, "/api/skills/lazy-imports/execute", {"inputs": {}}, {"Authorization": f"Bearer {agent['api_key']}"})
    assert status == 200 and result["output"] == 1
    assert [job.preimport for job in sent] == [False]
