"""Issue 11 items 7 and "extras": the seed install endpoint no longer weakens the gate.

* ``scan_for_vulnerabilities: false`` is honoured only from an admin key, and audited either way;
* package sets belong to the agent they were installed for: another agent installing the same
  skill id gets its own set, and cannot execute (or see) the first agent's;
* an extra of an approved package (``harborfixture[fast]``) pulls in packages that need
  approval like the ones named, through the install endpoint and through an import.

Runs against a package index on 127.0.0.1 and the integration stack's recording engine.
"""

from __future__ import annotations

import pytest
from chalice.test import Client

from api_support import Api, skill_md
from index_support import Release, chalice_project_using, local_index

RELEASES = [
    Release("harborfixture", "1.0"), Release("harborfixture", "1.1"),
    Release("harborfixture", "2.0", requires=("harborextra>=1; extra == 'fast'",), extras=("fast",)),
    Release("harborextra", "1.0"),
]  # fmt: skip


@pytest.fixture
def index(stack, monkeypatch):
    from chalicelib.api.services import reset_services

    with local_index(RELEASES) as served:
        monkeypatch.setenv("SKILLHARBOR_INDEX_URL", served.url)  # the pipeline's steps read it here
        reset_services()
        yield served
        reset_services()


@pytest.fixture
def api(stack, index, tmp_path):
    with Client(stack.app, project_dir=chalice_project_using(index.url, tmp_path)) as client:
        yield Api(client)


def _install(api: Api, key: str | None, requirements: list[str], skill_id: str = "calc", **extra) -> tuple[int, dict]:
    return api.call("post", "/api/packages/install", {"skill_id": skill_id, "requirements": requirements, **extra}, key=key)


def test_only_an_admin_may_skip_the_vulnerability_scan_and_both_are_audited(api, index):
    api.approve("harborfixture")
    agent = api.agent("intern-1", "INTERN")
    status, body = _install(api, agent, ["harborfixture==1.0"], scan_for_vulnerabilities=False)
    assert status == 403 and "only an admin key may skip the vulnerability scan" in body["message"], body
    assert index.resolution_requests() == 0
    (refused,) = api.audit(action="package.install")
    assert refused["outcome"] == "denied" and refused["actor"] == "agent:intern-1"

    assert _install(api, agent, ["harborfixture==1.0"], scan_for_vulnerabilities="false")[0] == 400

    status, body = _install(api, None, ["harborfixture==1.0"], agent_id="intern-1", scan_for_vulnerabilities=False)
    assert status == 200 and body["success"] is True, body
    (skipped,) = api.audit(action="package.scan_skipped")
    assert skipped["actor"].startswith("admin:") and skipped["detail"]["pins"] == ["harborfixture==1.0"]
    installed = [e for e in api.audit(action="package.install") if e["outcome"] == "ok"]
    assert installed[0]["detail"]["scan_skipped"] is True


def test_package_sets_belong_to_the_agent_they_were_installed_for(api):
    api.approve("harborfixture")
    alice, bob = api.agent("alice", "INTERN"), api.agent("bob", "INTERN")
    status, mine = _install(api, alice, ["harborfixture==1.0"])
    assert status == 200, mine
    status, theirs = _install(api, bob, ["harborfixture==1.1"])  # the same skill id
    assert status == 200 and theirs["image_tag"] != mine["image_tag"], theirs

    assert api.call("get", "/api/packages/calc/status", key=alice)[1]["image_tag"] == mine["image_tag"]
    assert api.call("get", "/api/packages/calc/status", key=bob)[1]["image_tag"] == theirs["image_tag"]
    assert api.call("get", "/api/packages/calc/status?agent_id=alice")[1]["image_tag"] == mine["image_tag"]
    # bob can neither act as alice nor reach a set only alice has
    assert _install(api, bob, ["harborfixture==1.1"], agent_id="alice")[0] == 403
    assert _install(api, alice, ["harborfixture==1.0"], skill_id="alice-only")[0] == 200
    status, body = api.call("post", "/api/packages/execute", {"skill_id": "alice-only", "code": "def execute():\n    return 1\n"}, key=bob)
    assert status == 404 and "run POST /api/packages/install first" in body["message"], body
    assert api.call("get", "/api/packages/alice-only/status", key=bob)[1]["image_exists"] is False


def test_an_extra_of_an_approved_package_needs_its_own_packages_approved_on_install(api):
    api.approve("harborfixture")
    agent = api.agent("intern-1", "INTERN")
    status, body = _install(api, agent, ["harborfixture[fast]==2.0"])
    assert status == 403 and body["error"] == "permission_denied", body
    assert [p["package"] for p in body["details"]["packages"]] == ["harborextra"]
    assert _install(api, agent, ["harborfixture==2.0"])[0] == 200  # without the extra, nothing more is needed
    api.approve("harborextra")
    assert _install(api, agent, ["harborfixture[fast]==2.0"])[0] == 200


def test_an_extra_of_an_approved_package_waits_for_approval_in_an_import(api, stack):
    api.approve("harborfixture")
    status, accepted = api.upload(skill_md("Fast Fixture", ["harborfixture[fast]==2.0"]))
    assert status == 202, accepted
    record = stack.wait_for_import(accepted["import_id"])
    assert record["status"] == "PENDING_APPROVAL" and record["waiting_for"] == ["harborextra"], record
    skill = api.call("get", "/api/skills/fast-fixture")[1]
    pins = {p["name"]: p for p in skill["pins"]}
    assert pins["harborextra"]["direct"] is True and pins["harborextra"]["via_extra"] == "harborfixture[fast]"
    unapproved = skill["steps"]["check"]["unapproved"]
    assert unapproved[0]["package"] == "harborextra" and "harborfixture[fast]" in unapproved[0]["why"]
    api.approve("harborextra")
    assert stack.wait_for_import(accepted["import_id"])["status"] == "SUCCEEDED"
