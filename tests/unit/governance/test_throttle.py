"""Throttle: per-key rate windows and concurrency slots (in-memory store; the DynamoDB one is tested under moto)."""

from __future__ import annotations

import pytest

from chalicelib.errors import TooManyRequests
from chalicelib.governance.memory import InMemoryThrottleStore
from chalicelib.governance.throttle import BUSY_RETRY_SECONDS, Limit, Throttle


class Clock:
    def __init__(self, now: float = 1_000_040.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


LIMIT = Limit("resolve", "resolutions", per_minute=2, concurrent=1, lease_seconds=300)


def test_a_key_gets_its_rate_per_minute_then_429_until_the_window_ends() -> None:
    clock = Clock(1_000_040.0)  # 20 s into a minute: 40 s before it ends
    throttle = Throttle(InMemoryThrottleStore(), clock=clock)
    for _ in range(2):
        with throttle.admit("key-a", LIMIT):
            pass
    with pytest.raises(TooManyRequests) as refused:
        with throttle.admit("key-a", LIMIT):
            pass
    assert refused.value.retry_after_seconds == 40 and refused.value.http_status == 429
    with throttle.admit("key-b", LIMIT):  # other keys are counted apart
        pass
    clock.now += 40
    with throttle.admit("key-a", LIMIT):
        pass


def test_a_key_gets_its_concurrency_and_a_slot_comes_back_when_the_work_ends_or_its_lease_runs_out() -> None:
    clock = Clock()
    store = InMemoryThrottleStore()
    throttle = Throttle(store, clock=clock)
    unlimited_rate = Limit("build", "installs", per_minute=0, concurrent=1, lease_seconds=30)
    with throttle.admit("key-a", unlimited_rate):
        with pytest.raises(TooManyRequests) as refused:
            with throttle.admit("key-a", unlimited_rate):
                pass
        assert refused.value.retry_after_seconds == BUSY_RETRY_SECONDS
    with throttle.admit("key-a", unlimited_rate):  # released
        pass
    assert store.take_slot("build#key-a", 1, "crashed", clock.now, clock.now + 30)  # a holder that never returns
    clock.now += 31
    with throttle.admit("key-a", unlimited_rate):
        pass


def test_refused_for_concurrency_uses_up_no_rate_and_a_rate_refusal_frees_its_slot() -> None:
    throttle = Throttle(InMemoryThrottleStore(), clock=Clock())
    with throttle.admit("k", LIMIT):
        for _ in range(3):
            with pytest.raises(TooManyRequests):
                with throttle.admit("k", LIMIT):
                    pass
    with throttle.admit("k", LIMIT):  # the second of two per minute: the refusals counted nothing
        pass
    with pytest.raises(TooManyRequests):
        with throttle.admit("k", LIMIT):
            pass
    with pytest.raises(TooManyRequests) as refused:  # still the rate, not a slot left held by the refusal
        with throttle.admit("k", LIMIT):
            pass
    assert refused.value.details["limit"] == "resolve_rate"
