"""GET /api/skills/{id} shows each non-Python need with whether this sandbox has it."""

from __future__ import annotations

import json

from chalice.test import Client

SKILL = b"""---
name: Jq Report
description: Summarise JSON with jq
metadata:
  openclaw:
    requires: {bins: [jq, bash], env: [REPORT_TOKEN]}
    install:
      - {id: brew, kind: brew, formula: jq, bins: [jq]}
---
Run `jq . file.json`.
"""


def test_the_skill_page_says_what_the_sandbox_lacks(stack, admin_headers):
    with Client(stack.app) as client:
        response = client.http.post("/api/skills", body=SKILL, headers={**admin_headers, "Content-Type": "text/markdown"})
        assert stack.wait_for_import(json.loads(response.body)["import_id"])["status"] == "SUCCEEDED"
        skill = json.loads(client.http.get("/api/skills/jq-report", headers=admin_headers).body)
    needs = {(n["kind"], n["spec"]): n for n in skill["sandbox_needs"]}
    assert needs[("bin", "bash")]["status"] == "available"
    for key in [("bin", "jq"), ("brew", "jq"), ("env", "REPORT_TOKEN")]:
        assert needs[key]["status"] == "not available in this sandbox" and needs[key]["reason"]
    assert skill["skill_type"] == "prompt_only" and skill["code_choice"]["kind"] == "prompt"
