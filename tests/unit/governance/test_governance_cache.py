"""Decision cache (TTL, LRU, invalidation) and the permission checker over fakes."""

from __future__ import annotations

import threading

import pytest

from chalicelib.errors import BadRequest
from chalicelib.governance.cache import DecisionCache, PermissionChecker
from chalicelib.governance.decision import Decision
from chalicelib.governance.identity import Agent
from chalicelib.governance.maturity import Maturity
from chalicelib.governance.memory import InMemoryPrincipalsStore, InMemoryRulesStore
from chalicelib.governance.rules import Approval, Ban


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


YES = Decision(allowed=True, maturity_required=Maturity.INTERN, reason="yes")
NO = Decision(allowed=False, maturity_required=None, reason="no")


def test_entries_expire_after_the_ttl():
    clock = FakeClock()
    cache = DecisionCache(ttl_seconds=60, max_size=10, clock=clock)
    cache.put(("bot", "numpy", "1.0"), YES)
    clock.now += 59.9
    assert cache.get(("bot", "numpy", "1.0")) == YES
    clock.now += 0.2
    assert cache.get(("bot", "numpy", "1.0")) is None
    assert len(cache) == 0


def test_least_recently_used_entry_is_evicted_first():
    cache = DecisionCache(ttl_seconds=60, max_size=2, clock=FakeClock())
    cache.put(("a", "p", "1"), YES)
    cache.put(("b", "p", "1"), YES)
    assert cache.get(("a", "p", "1")) == YES  # a is now the most recent
    cache.put(("c", "p", "1"), NO)
    assert cache.get(("b", "p", "1")) is None
    assert cache.get(("a", "p", "1")) == YES and cache.get(("c", "p", "1")) == NO
    assert len(cache) == 2


def test_invalidate_by_package_agent_and_everything():
    cache = DecisionCache(ttl_seconds=60, max_size=10, clock=FakeClock())
    for key in [("a", "numpy", "1"), ("b", "numpy", "2"), ("a", "pandas", "1"), ("c", "pandas", "1")]:
        cache.put(key, YES)
    assert cache.invalidate_package("NumPy") == 2
    assert cache.get(("a", "pandas", "1")) == YES and cache.get(("a", "numpy", "1")) is None
    assert cache.invalidate_agent("a") == 1
    assert cache.get(("c", "pandas", "1")) == YES
    cache.clear()
    assert len(cache) == 0


def test_a_decision_computed_before_an_invalidation_is_not_stored_after_it():
    cache = DecisionCache(ttl_seconds=60, max_size=10, clock=FakeClock())
    generation = cache.generation
    cache.invalidate_package("numpy")  # a rule changed while the miss was reading the old rules
    cache.put(("a", "numpy", "1"), YES, generation=generation)
    assert cache.get(("a", "numpy", "1")) is None


@pytest.mark.parametrize(("ttl", "size"), [(0, 10), (60, 0)])
def test_zero_ttl_or_size_disables_caching(ttl, size):
    cache = DecisionCache(ttl_seconds=ttl, max_size=size, clock=FakeClock())
    cache.put(("a", "p", "1"), YES)
    assert cache.get(("a", "p", "1")) is None


def test_settings_size_the_cache(monkeypatch):
    monkeypatch.setenv("PACKAGE_CACHE_TTL", "5")
    monkeypatch.setenv("SKILLHARBOR_PACKAGE_CACHE_MAX_SIZE", "7")
    cache = DecisionCache.from_settings()
    assert (cache.ttl_seconds, cache.max_size) == (5.0, 7)


def test_concurrent_use_keeps_the_size_bound():
    cache = DecisionCache(ttl_seconds=60, max_size=50)

    def work(worker: int) -> None:
        for i in range(2000):
            key = (f"a{worker}", "p", str(i % 80))
            if cache.get(key) is None:
                cache.put(key, YES)
            if i % 97 == 0:
                cache.invalidate_package("p")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) <= 50


class CountingRules(InMemoryRulesStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def rules_for(self, package, *, include_revoked=False):
        self.reads += 1
        return super().rules_for(package, include_revoked=include_revoked)


@pytest.fixture
def world():
    clock = FakeClock()
    agents, rules = InMemoryPrincipalsStore(), CountingRules()
    agents.create_agent(Agent(agent_id="intern-1", maturity=Maturity.INTERN))
    checker = PermissionChecker(agents, rules, DecisionCache(ttl_seconds=60, max_size=100, clock=clock))
    return clock, agents, rules, checker


def test_checker_caches_and_sees_writes_made_through_it(world):
    clock, agents, rules, checker = world
    assert not checker.check("intern-1", "numpy", "1.26.4").allowed
    assert not checker.check("intern-1", "NumPy", "==1.26.4").allowed
    assert rules.reads == 1  # same normalized key: served from the cache

    approval = rules.put_rule(Approval.new("numpy", "==1.26.4", "INTERN", created_by="admin:ops"))
    checker.rules_changed("numpy")
    assert checker.check("intern-1", "numpy", "1.26.4").allowed

    ban = rules.put_rule(Ban.new("numpy", "", "compromised release", created_by="admin:ops"))
    checker.rules_changed("numpy")
    assert "compromised release" in checker.check("intern-1", "numpy", "1.26.4").reason

    rules.revoke_rule(ban.rule_id, revoked_by="admin:ops")
    rules.revoke_rule(approval.rule_id, revoked_by="admin:ops")
    checker.rules_changed("numpy")
    assert not checker.check("intern-1", "numpy", "1.26.4").allowed


def test_maturity_change_is_seen_at_once_here_and_after_the_ttl_elsewhere(world):
    clock, agents, rules, checker = world
    rules.put_rule(Approval.new("numpy", "", "SUPERVISED", created_by="admin:ops"))
    other_process = PermissionChecker(agents, rules, DecisionCache(ttl_seconds=60, max_size=100, clock=clock))
    assert not checker.check("intern-1", "numpy", "1.0").allowed
    assert not other_process.check("intern-1", "numpy", "1.0").allowed

    agents.update_maturity("intern-1", "SUPERVISED")
    checker.agent_changed("intern-1")
    assert checker.check("intern-1", "numpy", "1.0").allowed
    assert not other_process.check("intern-1", "numpy", "1.0").allowed  # stale until the TTL
    clock.now += 61
    assert other_process.check("intern-1", "numpy", "1.0").allowed


def test_unknown_agent_then_created(world):
    clock, agents, rules, checker = world
    rules.put_rule(Approval.new("numpy", "", "INTERN", created_by="admin:ops"))
    assert "unknown agent 'new-bot'" in checker.check("new-bot", "numpy", "1.0").reason
    agents.create_agent(Agent(agent_id="new-bot", maturity="INTERN"))
    checker.agent_changed("new-bot")
    assert checker.check("new-bot", "numpy", "1.0").allowed


def test_checker_rejects_bad_input_before_touching_the_stores(world):
    _, _, rules, checker = world
    with pytest.raises(BadRequest, match="exact version"):
        checker.check("intern-1", "numpy", ">=1")
    with pytest.raises(BadRequest, match="package_name"):
        checker.check("intern-1", "not a name", "1.0")
    assert rules.reads == 0


def test_typosquat_flag_is_consulted(world):
    clock, agents, rules, _ = world
    rules.put_rule(Approval.new("nunpy", "", "INTERN", created_by="admin:ops"))
    checker = PermissionChecker(agents, rules, DecisionCache(clock=clock), is_flagged_typosquat=lambda name: name == "nunpy")
    assert "possible typosquat" in checker.check("intern-1", "nunpy", "1.0").reason
