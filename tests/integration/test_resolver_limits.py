"""Issue 11 item 6: resolution is no longer a cheap denial of service.

Against a package index on 127.0.0.1 that counts what reaches it: permissions are checked
before anything is resolved; each key gets a rate and a concurrency limit (429 with
Retry-After), counted in DynamoDB so that a second API instance sees the same uses; and a
resolved set is cached for every instance, so asking again costs the index nothing.
"""

from __future__ import annotations

import threading
import time

import pytest
from chalice.test import Client

from api_support import Api
from index_support import Release, chalice_project_using, local_index

RELEASES = [Release("harborfixture", "1.0"), Release("harborfixture", "1.1"), Release("harborfixture", "1.2"),
            Release("slowfixture", "1.0")]  # fmt: skip


@pytest.fixture
def index(stack, monkeypatch):
    from chalicelib.api.services import reset_services

    with local_index(RELEASES) as served:
        monkeypatch.setenv("SKILLHARBOR_INDEX_URL", served.url)
        monkeypatch.setenv("SKILLHARBOR_RESOLVE_RATE_PER_MINUTE", "2")
        monkeypatch.setenv("SKILLHARBOR_RESOLVE_CONCURRENCY_PER_KEY", "1")
        reset_services()
        yield served
        reset_services()


@pytest.fixture
def api(stack, index, tmp_path):
    with Client(stack.app, project_dir=chalice_project_using(index.url, tmp_path)) as client:
        yield Api(client)


def _new_instance() -> None:
    """What a second Lambda instance has: no process-wide state (services, caches) of the first."""
    from chalicelib.api.services import reset_services

    reset_services()


def _fresh_minute() -> None:
    """Start near the beginning of a rate window, so the few calls below share one (no assertion is timed)."""
    into = time.time() % 60
    if into > 45:
        time.sleep(60.5 - into)


def test_an_agent_key_is_refused_before_anything_is_resolved(api, index):
    agent = api.agent("intern-1", "INTERN")
    api.approve("harborfixture")
    status, body = api.call("post", "/api/packages/scan", {"requirements": ["harborfixture"]}, key=agent)
    assert status == 403 and "role admin or publisher" in body["message"], body
    assert index.resolution_requests() == 0


@pytest.mark.parametrize("maturity, approve, reason", [
    ("STUDENT", True, "STUDENT agents cannot execute Python packages"),
    ("INTERN", False, "no approval for harborfixture"),
    ("INTERN", "SUPERVISED", "requires maturity SUPERVISED or above"),
])  # fmt: skip
def test_install_checks_governance_of_the_named_packages_before_resolving(api, index, maturity, approve, reason):
    if approve:
        api.approve("harborfixture", maturity="INTERN" if approve is True else approve)
    agent = api.agent("agent-1", maturity)
    status, body = api.call("post", "/api/packages/install", {"skill_id": "calc", "requirements": ["harborfixture>=1"]}, key=agent)
    assert status == 403 and body["error"] == "permission_denied", body
    assert reason in body["problems"][0], body
    assert index.resolution_requests() == 0
    (event,) = api.audit(action="package.install")
    assert event["outcome"] == "denied" and event["detail"]["before_resolution"] is True


def test_an_exact_pin_outside_the_approval_is_refused_before_resolving(api, index):
    api.approve("harborfixture", "==1.1")
    agent = api.agent("agent-1", "INTERN")
    status, body = api.call("post", "/api/packages/install", {"skill_id": "calc", "requirements": ["harborfixture==1.0"]}, key=agent)
    assert status == 403 and "no approval for harborfixture 1.0" in body["problems"][0], body
    assert index.resolution_requests() == 0


def test_a_key_over_its_rate_gets_429_with_retry_after_on_every_instance(api, index):
    publisher, other = api.key("publisher", "busy"), api.key("publisher", "quiet")
    _fresh_minute()
    for requirement in ("harborfixture==1.0", "harborfixture==1.1"):
        status, body = api.call("post", "/api/packages/scan", {"requirements": [requirement]}, key=publisher)
        assert status == 200, body
    status, body = api.call("post", "/api/packages/scan", {"requirements": ["harborfixture==1.2"]}, key=publisher)
    assert status == 429 and body["error"] == "too_many_requests", body
    assert 1 <= int(api.last_headers["Retry-After"]) <= 60
    seen = index.resolution_requests()
    _new_instance()
    status, body = api.call("post", "/api/packages/scan", {"requirements": ["harborfixture==1.2"]}, key=publisher)
    assert status == 429, body
    assert index.resolution_requests() == seen  # refused before pip ran
    # an already resolved set costs nothing, so it is not limited; other keys have their own budget
    assert api.call("post", "/api/packages/scan", {"requirements": ["harborfixture==1.0"]}, key=publisher)[0] == 200
    assert api.call("post", "/api/packages/scan", {"requirements": ["harborfixture==1.2"]}, key=other)[0] == 200


def test_a_key_with_a_resolution_running_gets_429_for_another(api, index):
    publisher, other = api.key("publisher", "busy"), api.key("publisher", "quiet")
    index.held.add("slowfixture")
    outcome: dict = {}
    first = threading.Thread(target=lambda: outcome.update(
        slow=api.call("post", "/api/packages/scan", {"requirements": ["slowfixture"]}, key=publisher)))  # fmt: skip
    first.start()
    try:
        assert index.arrived.wait(120), "the first resolution never reached the index"
        status, body = api.call("post", "/api/packages/scan", {"requirements": ["harborfixture==1.0"]}, key=publisher)
        assert status == 429 and "running" in body["message"], body
        assert api.last_headers["Retry-After"] == "5"
        assert api.call("post", "/api/packages/scan", {"requirements": ["harborfixture==1.0"]}, key=other)[0] == 200
    finally:
        index.release.set()
        first.join(120)
    assert outcome["slow"][0] == 200, outcome
    # the slot was given back
    assert api.call("post", "/api/packages/scan", {"requirements": ["harborfixture==1.1"]}, key=publisher)[0] == 200


def test_a_resolved_set_is_served_from_the_shared_cache_by_a_new_instance(api, index):
    status, first = api.call("post", "/api/packages/scan", {"requirements": ["HarborFixture>=1.0,<1.2"]})
    assert status == 200 and [p["version"] for p in first["pins"]] == ["1.1"], first
    seen = index.resolution_requests()
    _new_instance()
    status, again = api.call("post", "/api/packages/scan", {"requirements": ["harborfixture<1.2,>=1.0"]})  # same set, other spelling
    assert status == 200 and again["pins"] == first["pins"]
    assert index.resolution_requests() == seen
