"""Code snippets on the real engine: code without an entrypoint function runs as a script."""

from __future__ import annotations

import json

from chalice.test import Client

from stack_support import ADMIN_HEADERS, Stack


def _call(client, method: str, path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
    headers = dict(headers or ADMIN_HEADERS)
    kwargs: dict = {"headers": headers}
    if body is not None:
        kwargs = {"headers": {**headers, "Content-Type": "application/json"}, "body": json.dumps(body)}
    response = getattr(client.http, method)(path, **kwargs)
    return response.status_code, json.loads(response.body)


def test_seed_execute_runs_code_without_a_function_as_a_script(docker_stack: Stack) -> None:
    with Client(docker_stack.app) as client:
        _call(client, "post", "/api/packages/approve", {"package_name": "six", "version": "==1.16.0", "min_maturity": "INTERN"})
        _call(client, "post", "/api/agents", {"agent_id": "snippet-agent", "maturity": "INTERN"})
        status, installed = _call(client, "post", "/api/packages/install",
                                  {"agent_id": "snippet-agent", "skill_id": "six-snippets", "requirements": ["six==1.16.0"]})  # fmt: skip
        assert status == 200, installed
        status, ran = _call(client, "post", "/api/packages/execute",
                            {"agent_id": "snippet-agent", "skill_id": "six-snippets", "code": "import six; print(six.__version__)"})  # fmt: skip
        assert status == 200 and ran["status"] == "ok" and ran["stdout"] == "1.16.0\n" and ran["output"] is None, ran
        status, ran = _call(client, "post", "/api/packages/execute",
                            {"agent_id": "snippet-agent", "skill_id": "six-snippets", "code": "import sys; sys.exit(3)"})  # fmt: skip
        assert ran["status"] == "exception" and "sys.exit(3)" in ran["error"], ran
        status, ran = _call(client, "post", "/api/packages/execute",
                            {"agent_id": "snippet-agent", "skill_id": "six-snippets", "code": "def execute():\n    return 42\n"})  # fmt: skip
        assert ran["output"] == 42, ran  # a function is still called


def test_skill_execute_takes_code_when_the_skill_allows_snippets(docker_stack: Stack) -> None:
    skill = b"---\nname: helpers\ndescription: Has a helper module.\n---\nUse helpers.shout.\n"
    with Client(docker_stack.app) as client:
        response = client.http.post("/api/skills", body=skill, headers={**ADMIN_HEADERS, "Content-Type": "text/markdown"})
        assert docker_stack.wait_for_import(json.loads(response.body)["import_id"])["status"] == "SUCCEEDED"
        _, student = _call(client, "post", "/api/agents", {"agent_id": "pupil", "maturity": "STUDENT"})
        _, intern = _call(client, "post", "/api/agents", {"agent_id": "trainee", "maturity": "INTERN"})
        code = {"code": "print('from a snippet', 6 * 7)"}
        status, ran = _call(client, "post", "/api/skills/helpers/execute", code, {"Authorization": f"Bearer {intern['api_key']}"})
        assert status == 200 and ran["stdout"] == "from a snippet 42\n", ran
        status, refused = _call(client, "post", "/api/skills/helpers/execute", code, {"Authorization": f"Bearer {student['api_key']}"})
        assert status == 403 and "STUDENT" in refused["message"], refused
        assert _call(client, "put", "/api/skills/helpers/snippets", {"allow_snippets": True})[0] == 200
        status, ran = _call(client, "post", "/api/skills/helpers/execute", code, {"Authorization": f"Bearer {student['api_key']}"})
        assert status == 200 and ran["stdout"] == "from a snippet 42\n", ran
        assert _call(client, "put", "/api/skills/helpers/snippets", {"allow_snippets": False})[0] == 200
        status, refused = _call(client, "post", "/api/skills/helpers/execute", code, {"Authorization": f"Bearer {intern['api_key']}"})
        assert status == 403 and "does not accept code" in refused["message"], refused
