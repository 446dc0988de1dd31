"""The resolver table's adapters (throttle state, resolution cache) behave like their in-memory fakes, under moto."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from moto import mock_aws

from chalicelib.governance.memory import InMemoryThrottleStore
from chalicelib.local.provision import create_tables
from chalicelib.packages.resolution_cache import InMemoryResolutionCache
from chalicelib.settings import get_settings
from chalicelib.store import aws as aws_clients
from chalicelib.store.resolutions import DynamoResolutionCache
from chalicelib.store.throttle import DynamoThrottleStore


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("SKILLHARBOR_RESOLVER_TABLE", "test-resolver")
    aws_clients.reset_clients()
    with mock_aws():
        create_tables(boto3.client("dynamodb", region_name="us-east-1"), get_settings(), only=("resolver_table",))
        yield
    aws_clients.reset_clients()


@pytest.fixture(params=["memory", "dynamodb"])
def throttle_store(request, aws):
    return InMemoryThrottleStore() if request.param == "memory" else DynamoThrottleStore()


@pytest.fixture(params=["memory", "dynamodb"])
def cache(request, aws):
    return InMemoryResolutionCache() if request.param == "memory" else DynamoResolutionCache()


def test_uses_are_counted_up_to_the_limit_per_window_and_scope(throttle_store):
    assert [throttle_store.count_use("resolve#k", 7, 2, time.time() + 120) for _ in range(3)] == [True, True, False]
    assert throttle_store.count_use("resolve#k", 8, 2, time.time() + 120)
    assert throttle_store.count_use("resolve#other", 7, 2, time.time() + 120)


def test_concurrent_uses_never_exceed_the_limit(throttle_store):
    with ThreadPoolExecutor(8) as pool:
        counted = list(pool.map(lambda _: throttle_store.count_use("resolve#k", 1, 5, time.time() + 120), range(20)))
    assert counted.count(True) == 5


def test_slots_are_taken_released_and_reclaimed_after_their_lease(throttle_store):
    now = time.time()
    assert throttle_store.take_slot("build#k", 2, "a", now, now + 60)
    assert throttle_store.take_slot("build#k", 2, "b", now, now + 60)
    assert not throttle_store.take_slot("build#k", 2, "c", now, now + 60)
    throttle_store.release_slot("build#k", "a")
    assert throttle_store.take_slot("build#k", 2, "c", now, now + 60)
    assert throttle_store.take_slot("build#k", 2, "d", now + 120, now + 180)  # b's and c's leases ran out: d takes c's slot
    throttle_store.release_slot("build#k", "c")  # too late: that slot is d's now, and stays d's
    assert throttle_store.take_slot("build#k", 2, "e", now + 121, now + 180)  # b's expired slot
    assert not throttle_store.take_slot("build#k", 2, "f", now + 122, now + 180)


def test_cached_pins_come_back_until_they_expire(cache):
    pins = [{"name": "six", "version": "1.16.0", "sha256": "0" * 64, "direct": True, "via_extra": None, "requires": []}]
    assert cache.get("k") is None
    cache.put("k", pins, 60)
    assert cache.get("k") == pins
    cache.put("gone", pins, 0)  # a TTL of 0 keeps nothing
    assert cache.get("gone") is None
