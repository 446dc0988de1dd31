"""Calling the HTTP API through Chalice's test client, as any key would."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from chalice.test import Client

from stack_support import ADMIN_HEADERS


class Api:
    def __init__(self, client: Client):
        self.client = client
        self.last_headers: dict[str, str] = {}

    def call(self, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {key}"} if key else dict(ADMIN_HEADERS)
        kwargs: dict[str, Any] = {"headers": headers}
        if body is not None:
            kwargs = {"headers": {**headers, "Content-Type": "application/json"}, "body": json.dumps(body)}
        response = getattr(self.client.http, method)(path, **kwargs)
        self.last_headers = dict(response.headers)
        return response.status_code, json.loads(response.body or b"{}")

    def upload(self, data: bytes, content_type: str = "text/markdown", key: str | None = None) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {key}"} if key else dict(ADMIN_HEADERS)
        response = self.client.http.post("/api/skills", body=data, headers={**headers, "Content-Type": content_type})
        return response.status_code, json.loads(response.body or b"{}")

    def agent(self, agent_id: str, maturity: str) -> str:
        status, body = self.call("post", "/api/agents", {"agent_id": agent_id, "maturity": maturity})
        assert status == 201, body
        return body["api_key"]

    def key(self, role: str, name: str) -> str:
        status, body = self.call("post", "/api/keys", {"role": role, "name": name})
        assert status == 201, body
        return body["api_key"]

    def approve(self, package: str, version: str = "", maturity: str = "INTERN") -> None:
        status, body = self.call("post", "/api/packages/approve", {"package_name": package, "version": version, "min_maturity": maturity})
        assert status == 201, body

    def audit(self, **filters: str) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in filters.items())
        status, body = self.call("get", f"/api/packages/audit?{query}&limit=200")
        assert status == 200, body
        return body["events"]


def skill_md(name: str, packages: list[str]) -> bytes:
    listed = "".join(f"  - {json.dumps(p)}\n" for p in packages)
    return f"---\nname: {name}\ndescription: d\npackages:\n{listed}---\n```python\ndef execute():\n    return 1\n```\n".encode()


def skill_zip(name: str, requirements_txt: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("skill/SKILL.md", f"---\nname: {name}\ndescription: d\n---\n```python\ndef execute():\n    return 1\n```\n")
        archive.writestr("skill/requirements.txt", requirements_txt)
    return buffer.getvalue()
