"""The whole product against the real engine: upload → pipeline → image → execution.

The stack runs in moto (as in tests/integration) but its runner worker drives
this machine's Docker engine: wheels are downloaded and verified, the image is
built with the network off, and the skill runs in the sandbox.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from chalice.test import Client

from chalicelib.settings import get_settings
from stack_support import ADMIN_HEADERS, Stack

SEED_SKILL = (Path(__file__).resolve().parents[1] / "unit" / "skills" / "fixtures" / "seed-data-summary" / "SKILL.md").read_bytes()
ROWS = [{"city": "Oslo", "temp": 4.5, "rain": 12}, {"city": "Rome", "temp": 16.1, "rain": None}, {"city": "Lima", "temp": 19.0, "rain": 3}]


def _post(client, path: str, body: dict, headers: dict) -> tuple[int, dict]:
    response = client.http.post(path, body=json.dumps(body), headers={**headers, "Content-Type": "application/json"})
    return response.status_code, json.loads(response.body)


def _run(client, path: str, body: dict, headers: dict) -> tuple[int, dict]:
    """An execution, following a 202 (the run outlasted the request's wait, e.g. a rebuild) to its result."""
    status, result = _post(client, path, body, headers)
    deadline = time.monotonic() + 900
    while status == 202 and time.monotonic() < deadline:
        time.sleep(0.5)
        response = client.http.get(result["result_url"], headers=headers)
        status, result = response.status_code, json.loads(response.body)
    return status, result


def _import(client, stack: Stack, text: bytes) -> dict:
    response = client.http.post("/api/skills", body=text, headers={**ADMIN_HEADERS, "Content-Type": "text/markdown"})
    assert response.status_code == 202, response.body
    accepted = json.loads(response.body)
    record = stack.wait_for_import(accepted["import_id"], timeout=900)
    assert record["status"] == "SUCCEEDED", record
    return json.loads(client.http.get(f"/api/skills/{accepted['skill_id']}", headers=ADMIN_HEADERS).body)


def test_seed_numpy_pandas_skill_imports_builds_once_and_runs(docker_stack: Stack) -> None:
    with Client(docker_stack.app) as client:
        for package in ("numpy", "pandas"):
            assert _post(client, "/api/packages/approve", {"package_name": package, "min_maturity": "INTERN"}, ADMIN_HEADERS)[0] == 201
        status, agent = _post(client, "/api/agents", {"agent_id": "analyst-1", "maturity": "INTERN"}, ADMIN_HEADERS)
        assert status == 201
        agent_headers = {"Authorization": f"Bearer {agent['api_key']}"}

        skill = _import(client, docker_stack, SEED_SKILL)
        assert skill["status"] == "ready"
        assert skill["image_tag"].startswith("skillharbor/env:")
        assert {"numpy", "pandas"} <= {p["name"] for p in skill["pins"]}

        status, result = _post(client, "/api/skills/data-summary/execute", {"inputs": {"data": ROWS}}, agent_headers)
        assert status == 200, result
        assert result["success"] is True and result["status"] == "ok", result
        assert result["output"]["rows"] == 3
        assert result["output"]["columns"]["temp"]["max"] == 19.0
        assert result["output"]["columns"]["rain"]["missing"] == 1
        assert result["image_tag"] == skill["image_tag"]

        # the same package set under another skill: no second build, one shared image
        twin = SEED_SKILL.replace(b"name: data-summary", b"name: data-summary-twin")
        twin_skill = _import(client, docker_stack, twin)
        assert twin_skill["image_tag"] == skill["image_tag"]
        assert twin_skill["steps"]["install"]["built"] is False

        # a STUDENT may not run it
        status, student = _post(client, "/api/agents", {"agent_id": "student-1", "maturity": "STUDENT"}, ADMIN_HEADERS)
        status, denied = _post(client, "/api/skills/data-summary/execute", {"inputs": {"data": ROWS}},
                               {"Authorization": f"Bearer {student['api_key']}"})  # fmt: skip
        assert status == 403
        assert any("STUDENT agents cannot execute Python packages" in p for p in denied["problems"])

        # cleanup past the TTL removes the image; the next execution rebuilds it from the stored pins
        status, removed = _post(client, "/api/images/cleanup", {"ttl_days": 0}, ADMIN_HEADERS)
        assert status == 200 and skill["image_tag"] in removed["removed"]
        # the wheels outlive the image (BUILD_CACHE_TTL_DAYS): the rebuild below does not download again
        assert removed["build_cache"]["removed_wheels"] == 0
        assert not docker_stack.engine.image_exists(skill["image_tag"])
        status, again = _run(client, "/api/skills/data-summary/execute", {"inputs": {"data": ROWS}}, agent_headers)
        assert status == 200 and again["status"] == "ok", again
        assert again["output"] == result["output"]
        assert docker_stack.engine.image_exists(skill["image_tag"])


def test_skill_without_packages_runs_in_the_base_image(docker_stack: Stack) -> None:
    hello = b"---\nname: hello\ndescription: Greets.\n---\n```python\ndef execute(name='world'):\n    print('side note')\n    return f'hello {name}'\n```\n"
    with Client(docker_stack.app) as client:
        status, agent = _post(client, "/api/agents", {"agent_id": "greeter", "maturity": "STUDENT"}, ADMIN_HEADERS)
        skill = _import(client, docker_stack, hello)
        assert skill["pins"] == [] and skill.get("image_tag") is None
        status, result = _post(client, "/api/skills/hello/execute", {"inputs": {"name": "ada"}},
                               {"Authorization": f"Bearer {agent['api_key']}"})  # fmt: skip
        assert status == 200, result
        assert result["output"] == "hello ada" and result["stdout"] == "side note\n"
        assert result["image_tag"] == get_settings().base_image_tag


def test_runs_go_straight_to_the_worker_when_a_runner_url_is_set(docker_stack: Stack, monkeypatch) -> None:
    from chalicelib.api.services import execution_service

    secret = "direct-run-secret-for-the-test-0123"
    docker_stack.runner.direct_listen, docker_stack.runner.secret = "127.0.0.1:0", secret
    url = docker_stack.runner.start_direct_server()
    monkeypatch.setenv("SKILLHARBOR_RUNNER_URL", url)
    monkeypatch.setenv("SKILLHARBOR_RUNNER_SECRET", secret)
    queued: list = []
    queue = execution_service().queue
    send = queue.send
    monkeypatch.setattr(queue, "send", lambda job, **kw: queued.append(job))  # first: nothing may be queued
    hello = b"---\nname: direct hello\ndescription: Greets.\n---\n```python\ndef execute(name='world'):\n    return f'hello {name}'\n```\n"
    try:
        with Client(docker_stack.app) as client:
            status, agent = _post(client, "/api/agents", {"agent_id": "direct-greeter", "maturity": "INTERN"}, ADMIN_HEADERS)
            _import(client, docker_stack, hello)
            status, result = _post(client, "/api/skills/direct-hello/execute", {"inputs": {"name": "bo"}},
                                   {"Authorization": f"Bearer {agent['api_key']}"})  # fmt: skip
            assert status == 200 and result["output"] == "hello bo", result
            assert queued == []  # no queue hop
            events = json.loads(client.http.get("/api/packages/audit?skill_id=direct-hello&action=skill.execute", headers=ADMIN_HEADERS).body)
            assert sorted((e["actor"], e["outcome"]) for e in events["events"]) == [("agent:direct-greeter", "ok"),
                                                                                    ("agent:direct-greeter", "started")]
            docker_stack.runner.stop_direct_server()  # the worker's endpoint goes away: the queue takes over
            monkeypatch.setattr(queue, "send", lambda job, **kw: (queued.append(job), send(job, **kw)))
            status, result = _post(client, "/api/skills/direct-hello/execute", {"inputs": {"name": "cy"}},
                                   {"Authorization": f"Bearer {agent['api_key']}"})  # fmt: skip
            assert status == 200 and result["output"] == "hello cy", result
            assert len(queued) == 1  # ... through the queue
    finally:
        docker_stack.runner.stop_direct_server()
