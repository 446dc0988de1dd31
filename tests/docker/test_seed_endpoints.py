"""The seed-compatible package endpoints: install → status → execute → delete, on the real engine."""

from __future__ import annotations

import json

from chalice.test import Client

from stack_support import ADMIN_HEADERS


def _call(client, method: str, path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
    headers = dict(headers or ADMIN_HEADERS)
    kwargs: dict = {"headers": headers}
    if body is not None:
        kwargs = {"headers": {**headers, "Content-Type": "application/json"}, "body": json.dumps(body)}
    response = getattr(client.http, method)(path, **kwargs)
    return response.status_code, json.loads(response.body)


def test_install_status_execute_delete(docker_stack) -> None:
    with Client(docker_stack.app) as client:
        _call(client, "post", "/api/packages/approve", {"package_name": "six", "version": "==1.16.0", "min_maturity": "INTERN"})
        _call(client, "post", "/api/agents", {"agent_id": "seed-agent", "maturity": "INTERN"})

        status, body = _call(client, "post", "/api/packages/execute", {"agent_id": "seed-agent", "skill_id": "six-user", "code": "x"})
        assert status == 404 and "POST /api/packages/install first" in body["message"]

        status, installed = _call(client, "post", "/api/packages/install",
                                  {"agent_id": "seed-agent", "skill_id": "six-user", "requirements": ["six==1.16.0"],
                                   "scan_for_vulnerabilities": True})  # fmt: skip
        assert status == 200, installed
        assert installed["success"] is True and installed["packages_installed"] == ["six==1.16.0"]
        assert installed["image_tag"].startswith("skillharbor/env:") and installed["vulnerabilities"] == []

        status, state = _call(client, "get", "/api/packages/six-user/status")
        assert status == 200 and state["image_exists"] is True and state["image_tag"] == installed["image_tag"]
        assert state["size_bytes"] > 0 and state["tags"] == [installed["image_tag"]]

        code = "import six\n\ndef execute(word):\n    return six.ensure_text(word).upper()\n"
        status, ran = _call(client, "post", "/api/packages/execute",
                            {"agent_id": "seed-agent", "skill_id": "six-user", "code": code, "inputs": {"word": "harbor"}})  # fmt: skip
        assert status == 200 and ran["success"] is True and ran["output"] == "HARBOR", ran

        status, denied = _call(client, "post", "/api/packages/install",
                               {"agent_id": "seed-agent", "skill_id": "other", "requirements": ["--index-url http://evil"]})  # fmt: skip
        assert status == 400 and "--index-url" in " ".join(denied["problems"])

        status, deleted = _call(client, "delete", "/api/packages/six-user")
        assert status == 200 and deleted["removed"] is True
        assert not docker_stack.engine.image_exists(installed["image_tag"])
        status, state = _call(client, "get", "/api/packages/six-user/status")
        assert state["image_exists"] is False
        status, body = _call(client, "post", "/api/packages/execute", {"agent_id": "seed-agent", "skill_id": "six-user", "code": code})
        assert status == 404
