"""Re-checking ready skills when the rule pack or the advisory database changes (the schedule's re-scan)."""

from __future__ import annotations

import json
from pathlib import Path

from chalice.test import Client

CLEAN = b"""---
name: {name}
description: Prints a greeting.
---
Say hello. The word to use is {marker}.
```python
def execute():
    return "hello"
```
"""


def _post_json(client, path, body, headers):
    response = client.http.post(path, body=json.dumps(body), headers={**headers, "Content-Type": "application/json"})
    return response.status_code, json.loads(response.body)


def _import(client, stack, headers, text: bytes) -> dict:
    response = client.http.post("/api/skills", body=text, headers={**headers, "Content-Type": "text/markdown"})
    assert response.status_code == 202, response.body
    accepted = json.loads(response.body)
    record = stack.wait_for_import(accepted["import_id"])
    assert record["status"] == "SUCCEEDED", record
    return json.loads(client.http.get(f"/api/skills/{accepted['skill_id']}", headers=headers).body)


def _skill(client, name, headers) -> dict:
    return json.loads(client.http.get(f"/api/skills/{name}", headers=headers).body)


def _rescan_events(client, headers, skill_id) -> list[dict]:
    body = json.loads(client.http.get(f"/api/packages/audit?action=skill.rescan&skill_id={skill_id}", headers=headers).body)
    assert "events" in body, body
    return body["events"]


def test_a_rule_pack_that_finds_a_ready_skill_malicious_blocks_its_runs_at_once(stack, admin_headers, monkeypatch) -> None:
    from chalicelib.api.scanning import scheduled_rescan

    with Client(stack.app) as client:
        skill = _import(client, stack, admin_headers, CLEAN.replace(b"{name}", b"later-bad").replace(b"{marker}", b"zebra-marker-one"))
        assert skill["status"] == "ready" and skill["scan_basis"].startswith("rules:")
        assert scheduled_rescan()["rescanned"] >= 0  # an unchanged basis: nothing of this skill to do
        assert _rescan_events(client, admin_headers, "later-bad") == []

        from chalicelib.scanning import basis
        from chalicelib.scanning.malice import engine

        shipped = engine.load_rules()
        rule = engine.Rule(id="SKM-TEST-901", severity="CRITICAL", category="dropper", message="names the test marker",
                           rationale="a rule added after the import", fix="do not", patterns=(engine.LazyPattern(r"\bzebra-marker-\w+"),))  # fmt: skip
        monkeypatch.setattr(engine, "load_rules", lambda directory=None: (*shipped, rule))
        monkeypatch.setattr(basis, "rule_pack_digest", lambda: "a-later-rule-pack")
        outcome = scheduled_rescan()
        assert any(entry.startswith("later-bad@") for entry in outcome["blocked"]), outcome
        skill = _skill(client, "later-bad", admin_headers)
        assert skill["status"] == "blocked" and skill["rescan"]["action"] == "blocked"
        assert any("SKM-TEST-901" in f for f in skill["rescan"]["new_findings"]), skill["rescan"]
        _post_json(client, "/api/agents", {"agent_id": "rescan-agent", "maturity": "INTERN"}, admin_headers)
        status, ran = _post_json(client, "/api/skills/later-bad/execute", {"inputs": {}, "agent_id": "rescan-agent"}, admin_headers)
        assert status == 409 and "no ready version" in ran["message"], ran
        (event,) = _rescan_events(client, admin_headers, "later-bad")
        assert event["outcome"] == "blocked" and event["actor"] == "system"

        # the same basis again: nothing is scanned twice
        assert not any(e.startswith("later-bad@") for e in scheduled_rescan()["blocked"])
        # an admin's approval without release_malicious does not lift it; with it, it does (and is audited)
        status, refused = _post_json(client, "/api/skills/later-bad/approve-code", {"reason": "reviewed"}, admin_headers)
        assert status == 409 and "release_malicious" in refused["message"], refused
        status, _ = _post_json(client, "/api/skills/later-bad/approve-code", {"reason": "the marker is a harmless word",
                                                                            "release_malicious": True}, admin_headers)  # fmt: skip
        assert status == 201
        assert _skill(client, "later-bad", admin_headers)["status"] == "ready"


def test_a_new_advisory_flags_a_ready_skill_without_stopping_it(stack, admin_headers, monkeypatch, tmp_path: Path) -> None:
    from chalicelib.api.scanning import scheduled_rescan

    with Client(stack.app) as client:
        _post_json(client, "/api/packages/approve", {"package_name": "six", "min_maturity": "INTERN"}, admin_headers)
        text = b"---\nname: uses-six\ndescription: test skill\npackages:\n  - six==1.16.0\n---\n```python\ndef execute():\n    return 1\n```\n"
        skill = _import(client, stack, admin_headers, text)
        assert skill["scan"]["findings"] == []
        advisories = tmp_path / "advisories"
        advisories.mkdir()
        (advisories / "TEST-2026-0001.json").write_text(json.dumps({
            "id": "TEST-2026-0001", "modified": "2026-12-01T00:00:00Z", "summary": "six 1.16.0 found to be unsafe (test)",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "six"}, "versions": ["1.16.0"],
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.17.0"}]}]}],
        }))  # fmt: skip
        monkeypatch.setenv("SKILLHARBOR_ADVISORY_DB", str(advisories))
        from chalicelib.api.services import reset_services

        reset_services()  # as a deployment with the refreshed database starts its functions afresh
        outcome = scheduled_rescan()
        assert any(entry.startswith("uses-six@") for entry in outcome["flagged"]), outcome
        skill = _skill(client, "uses-six", admin_headers)
        assert skill["status"] == "ready" and skill["rescan"]["action"] == "flagged"
        assert any("TEST-2026-0001" in f for f in skill["rescan"]["new_findings"]), skill["rescan"]
        (event,) = _rescan_events(client, admin_headers, "uses-six")
        assert event["outcome"] == "flagged"


def test_an_admin_can_ask_for_a_rescan_and_bad_bodies_are_refused(stack, admin_headers) -> None:
    with Client(stack.app) as client:
        _import(client, stack, admin_headers, CLEAN.replace(b"{name}", b"asked-for").replace(b"{marker}", b"plain"))
        status, outcome = _post_json(client, "/api/scans/rescan", {"force": True, "limit": 50}, admin_headers)
        assert status == 200 and outcome["rescanned"] >= 1 and outcome["basis"].startswith("rules:"), outcome
        assert _rescan_events(client, admin_headers, "asked-for")[0]["actor"] != "system"
        for body, word in (({"force": "yes"}, "force"), ({"limit": 0}, "limit"), ({"limit": True}, "limit")):
            status, refused = _post_json(client, "/api/scans/rescan", body, admin_headers)
            assert status == 400 and word in refused["message"], refused
        status, _ = _post_json(client, "/api/scans/rescan", {}, {"Authorization": "Bearer nope"})
        assert status == 401
