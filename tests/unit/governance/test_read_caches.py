"""Records a run reads on every request, reused briefly: keys, isolation rules (the bound and its invalidation)."""

from __future__ import annotations

import pytest

from chalicelib.errors import Unauthorized
from chalicelib.governance.identity import Agent, authenticate
from chalicelib.governance.isolation_policy import IsolationPolicy
from chalicelib.governance.key_cache import CachedKeys
from chalicelib.governance.maturity import Maturity
from chalicelib.governance.memory import InMemoryAuditLog, InMemoryIsolationRulesStore, InMemoryPrincipalsStore, InMemoryRulesStore
from chalicelib.governance.read_cache import ReadCache
from chalicelib.governance.service import GovernanceService
from chalicelib.runner.spec import Runtime

ADMIN_KEY = "test-bootstrap-admin-key-0123456789abcdef"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingLoad:
    def __init__(self, value: object) -> None:
        self.value, self.calls = value, 0

    def __call__(self) -> object:
        self.calls += 1
        return self.value


def test_a_value_is_reused_within_the_ttl_and_read_again_after_it():
    clock, load = Clock(), CountingLoad("record")
    cache = ReadCache(5, clock=clock)
    assert [cache.get("k", load) for _ in range(3)] == ["record"] * 3 and load.calls == 1
    clock.now += 5.01
    cache.get("k", load)
    assert load.calls == 2


def test_an_invalidation_forces_the_next_read_and_a_ttl_of_zero_never_caches():
    load = CountingLoad(1)
    cache = ReadCache(60)
    cache.get("k", load)
    cache.invalidate("k")
    cache.get("k", load)
    assert load.calls == 2
    off = ReadCache(0)
    off.get("k", load)
    off.get("k", load)
    assert load.calls == 4


def test_a_read_that_raced_an_invalidation_is_not_kept():
    cache: ReadCache[str] = ReadCache(60)

    def stale_read() -> str:
        cache.invalidate("k")  # a write lands while this read is on its way back
        return "before the write"

    assert cache.get("k", stale_read) == "before the write"
    assert cache.get("k", lambda: "after the write") == "after the write"


@pytest.fixture
def keys():
    clock, store = Clock(), InMemoryPrincipalsStore()
    cached = CachedKeys(store, 5, clock=clock)
    service = GovernanceService(InMemoryRulesStore(), cached, InMemoryAuditLog(), bootstrap_admin_key=ADMIN_KEY)
    admin = authenticate(ADMIN_KEY, cached, bootstrap_admin_key=ADMIN_KEY)
    _, issued = service.create_agent(admin, "bot-1", "INTERN")
    return clock, store, cached, service, admin, issued


def test_a_key_revoked_through_this_process_is_refused_on_its_next_request(keys):
    _clock, _store, cached, service, admin, issued = keys
    assert authenticate(issued.api_key, cached).agent_id == "bot-1"
    service.revoke_key(admin, issued.principal.key_id)
    with pytest.raises(Unauthorized, match="revoked"):
        authenticate(issued.api_key, cached)


def test_a_key_revoked_by_another_process_is_refused_once_the_ttl_has_passed(keys):
    clock, store, cached, _service, _admin, issued = keys
    assert authenticate(issued.api_key, cached).agent_id == "bot-1"
    store.revoke_key(issued.principal.key_id)  # written straight to the store, as another API instance would
    clock.now += 4.9
    assert authenticate(issued.api_key, cached).agent_id == "bot-1"  # within the documented bound
    clock.now += 0.2
    with pytest.raises(Unauthorized, match="revoked"):
        authenticate(issued.api_key, cached)


def test_a_cached_key_still_needs_the_right_secret_and_unknown_keys_are_not_cached(keys):
    _clock, store, cached, service, admin, issued = keys
    authenticate(issued.api_key, cached)
    forged = issued.api_key[:-4] + ("aaaa" if not issued.api_key.endswith("aaaa") else "bbbb")
    with pytest.raises(Unauthorized, match="unknown"):
        authenticate(forged, cached)
    # a key created elsewhere right after a failed attempt with it works at once
    _, other = GovernanceService(InMemoryRulesStore(), store, InMemoryAuditLog(), bootstrap_admin_key=ADMIN_KEY).create_agent(
        admin, "bot-2", "INTERN")
    assert authenticate(other.api_key, cached).agent_id == "bot-2"


def test_a_retired_bootstrap_key_is_refused_at_once_here(keys):
    _clock, _store, cached, service, admin, _issued = keys
    service.create_key(admin, "admin", name="second admin")
    assert authenticate(ADMIN_KEY, cached, bootstrap_admin_key=ADMIN_KEY).key_id == "bootstrap-admin"
    service.retire_bootstrap_key(admin)
    with pytest.raises(Unauthorized, match="retired"):
        authenticate(ADMIN_KEY, cached, bootstrap_admin_key=ADMIN_KEY)


def test_isolation_rules_apply_at_once_when_changed_here_and_within_the_ttl_when_changed_elsewhere():
    clock, rules, principals = Clock(), InMemoryIsolationRulesStore(), InMemoryPrincipalsStore()
    principals.create_agent(Agent(agent_id="newbie", maturity=Maturity.STUDENT))
    policy = IsolationPolicy(rules, principals, InMemoryAuditLog(), cache_seconds=5, clock=clock)
    assert policy.choose("adder", "newbie", {}).runtime == Runtime.RUNC
    rule = policy.add({"match": {"maturity": "STUDENT"}, "runtime": "runsc"}, actor="key:admin")
    assert policy.choose("adder", "newbie", {}).runtime == Runtime.RUNSC
    rules.delete(rule.rule_id)  # another process removed it
    assert policy.choose("adder", "newbie", {}).runtime == Runtime.RUNSC
    clock.now += 5.1
    assert policy.choose("adder", "newbie", {}).runtime == Runtime.RUNC
