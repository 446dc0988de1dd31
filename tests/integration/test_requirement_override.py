"""Accepting proposed requirements on import, through the API: owner or admin only, then resolved and checked."""

from __future__ import annotations

import io
import json
import zipfile

from chalice.test import Client

SKILL = b"---\nname: Yaml Lint\ndescription: Lint YAML files\n---\nRun `python scripts/lint.py FILE`.\n"
LINT = b"import sys\n\nimport yaml\n\nyaml.safe_load(open(sys.argv[1]))\n"


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("SKILL.md", SKILL)
        archive.writestr("scripts/lint.py", LINT)
    return buffer.getvalue()


def _post(client, path, headers):
    response = client.http.post(path, body=_zip(), headers={**headers, "Content-Type": "application/zip"})
    return response.status_code, json.loads(response.body)


def test_the_proposal_is_shown_and_accepting_it_sends_it_through_resolve_and_check(stack, admin_headers):
    with Client(stack.app) as client:
        status, plain = _post(client, "/api/skills", admin_headers)
        assert status == 202 and plain["requirements"] == [] and plain["proposed_requirements"] == ["pyyaml"]
        assert stack.wait_for_import(plain["import_id"])["status"] == "SUCCEEDED"
        record = json.loads(client.http.get("/api/skills/yaml-lint", headers=admin_headers).body)
        assert record["skill_type"] == "script" and record["scripts"] == ["scripts/lint.py"]
        assert record["undeclared_imports"][0]["distribution"] == "pyyaml" and record["requirements"] == []

        status, accepted = _post(client, "/api/skills?accept_proposed=true", admin_headers)
        assert status == 202 and accepted["requirements"] == ["pyyaml"]
        # the accepted package is governed like a declared one: not approved, so the import waits
        assert stack.wait_for_import(accepted["import_id"])["status"] == "PENDING_APPROVAL"
        record = json.loads(client.http.get("/api/skills/yaml-lint", headers=admin_headers).body)
        assert record["requirement_sources"] == {"pyyaml": ["override"]}
        assert record["accepted_requirements"] == ["pyyaml"] and record["proposed_requirements"] == []


def test_a_bad_override_is_a_400_and_someone_elses_skill_a_403(stack, admin_headers):
    with Client(stack.app) as client:
        status, body = _post(client, "/api/skills?requirements=--index-url%20http://evil", admin_headers)
        assert status == 400 and "index-url" in body["problems"][0]
        assert _post(client, "/api/skills", admin_headers)[0] == 202
        key = json.loads(client.http.post("/api/keys", body=json.dumps({"role": "publisher", "name": "other"}),
                                          headers={**admin_headers, "Content-Type": "application/json"}).body)  # fmt: skip
        status, body = _post(client, "/api/skills?requirements=pyyaml", {"Authorization": f"Bearer {key['api_key']}"})
        assert status == 403, body
