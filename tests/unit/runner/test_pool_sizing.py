"""The warm pool sizes each key from its demand: a steady stream must not outrun the refills."""

from __future__ import annotations

from types import SimpleNamespace

from chalicelib.runner.pool import (BACKGROUND_DELAY_SECONDS, DEFAULT_REFILL_SECONDS, MAX_REFILL_PARALLELISM, REFILL_PARALLELISM,
                                    PoolKey, WarmContainer, WarmPool)

KEY = PoolKey(image="skillharbor/img:abc", memory_mb=256, cpus=0.5, pids=64, tmpfs_mb=64)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pool(clock: Clock, **sizes: int) -> WarmPool:
    client = SimpleNamespace(api=SimpleNamespace(adapters={}, base_url="http+docker://localhost"))
    pool = WarmPool(client, clock=clock, **sizes)  # type: ignore[arg-type]
    pool._start_threads = lambda: None  # type: ignore[method-assign]  # no engine behind it: sizing only
    return pool


def _arrive(pool: WarmPool, clock: Clock, per_second: float, seconds: float) -> None:
    for _ in range(int(per_second * seconds)):
        clock.now += 1 / per_second
        assert pool._claim(KEY) is None  # nothing warm here: every arrival is a miss that records demand


def test_an_idle_or_slow_key_keeps_the_configured_size() -> None:
    clock = Clock()
    pool = _pool(clock, size_per_image=2, max_total=10)
    assert pool.target_size(KEY) == 2
    _arrive(pool, clock, per_second=0.5, seconds=10)
    assert pool.target_size(KEY) == 2


def test_a_steady_stream_gets_what_arrives_during_a_replacement_and_a_burst_margin() -> None:
    clock = Clock()
    pool = _pool(clock, size_per_image=2, max_total=10)
    _arrive(pool, clock, per_second=5, seconds=10)
    # 5/s × (0.2 s pause + 0.5 s refill) = 3.5 arrivals on average while one is replaced; + 2 × √3.5 → 7.24 → 8
    assert (BACKGROUND_DELAY_SECONDS, DEFAULT_REFILL_SECONDS) == (0.2, 0.5) and pool.target_size(KEY) == 8
    clock.now += 30  # the stream stopped: the window forgets it
    assert pool.target_size(KEY) == 2


def test_a_stream_that_just_began_counts_at_its_own_rate() -> None:
    clock = Clock()
    pool = _pool(clock, size_per_image=2, max_total=10)
    _arrive(pool, clock, per_second=5, seconds=2)  # two seconds in: not 10 arrivals per 10 s window, but 5/s
    assert pool.target_size(KEY) == 8
    clock.now += 12  # and a stream that stopped is forgotten
    assert pool.target_size(KEY) == 2


def test_a_lone_arrival_asks_for_no_extra_container() -> None:
    clock = Clock()
    pool = _pool(clock, size_per_image=1, max_total=10)
    _arrive(pool, clock, per_second=1, seconds=1)
    assert pool.target_size(KEY) == 1


def test_refills_under_way_keep_up_with_the_stream_within_a_cap() -> None:
    clock = Clock()
    pool = _pool(clock, size_per_image=2, max_total=10)
    assert pool.parallelism() == REFILL_PARALLELISM == 2  # nothing arrives: the configured two
    _arrive(pool, clock, per_second=4, seconds=10)
    assert pool.parallelism() == 3  # 4/s × 0.5 s refill = 2 under way, and one more
    pool._refill_seconds = 2.0  # a slow, busy host: 8 would be needed, the cap holds
    assert pool.parallelism() == MAX_REFILL_PARALLELISM == 4


def test_demand_never_takes_a_key_past_the_global_cap() -> None:
    clock = Clock()
    pool = _pool(clock, size_per_image=2, max_total=3)
    _arrive(pool, clock, per_second=20, seconds=5)
    assert pool.target_size(KEY) == 3


def _holding(pool: WarmPool, clock: Clock, keys: list[PoolKey], each: int) -> list[str]:
    """Give each key ``each`` idle containers, the last key the most recently used; returns the removed ids."""
    removed: list[str] = []
    pool.api.remove_container = lambda container_id, force: removed.append(container_id)  # type: ignore[attr-defined]
    for n, key in enumerate(keys):
        clock.now += 0.5
        pool._demand[key] = clock.now
        pool._idle[key] = [WarmContainer(key, SimpleNamespace(container_id=f"{n}-{i}", close=lambda: None), clock.now)  # type: ignore[arg-type]
                           for i in range(each)]  # fmt: skip
    return removed


def test_at_the_cap_a_key_never_takes_the_container_a_round_robin_needs_next() -> None:
    clock = Clock()
    pool = _pool(clock, size_per_image=2, max_total=10)
    keys = [PoolKey(image=f"skillharbor/img:{n}", memory_mb=256, cpus=0.5, pids=64, tmpfs_mb=64) for n in range(10)]
    removed = _holding(pool, clock, keys, each=1)
    assert pool._next_key() is None and removed == []  # every key holds its even share of one: nothing to take

    pool._demand[keys[0]] = clock.now - 60  # the least recently used key went idle: its container may go
    assert pool._next_key() == keys[-1] and removed == ["0-0"]


def test_at_the_cap_a_key_may_take_from_one_above_an_even_share() -> None:
    clock = Clock()
    pool = _pool(clock, size_per_image=2, max_total=3)
    first, second = (PoolKey(image="skillharbor/img:abc", memory_mb=m, cpus=0.5, pids=64, tmpfs_mb=64) for m in (100, 120))
    _holding(pool, clock, [first], each=2)
    removed = _holding(pool, clock, [second], each=1)  # the removals are recorded from here on
    assert pool._next_key() == second and removed == ["0-0"]  # the first key's oldest container


def _starting_container(pool: WarmPool, clock: Clock) -> WarmContainer:
    import threading

    reader = SimpleNamespace(ready=threading.Event(), finished=threading.Event(), ready_at=None)
    warm = WarmContainer(KEY, SimpleNamespace(reader=reader, container_id="c" * 64), clock.now)  # type: ignore[arg-type]
    pool._idle.setdefault(KEY, []).append(warm)
    return warm


def test_a_miss_takes_the_container_already_starting_once_it_is_ready() -> None:
    import threading

    clock = Clock()
    pool = _pool(clock, size_per_image=2, max_total=10)
    warm = _starting_container(pool, clock)
    threading.Timer(0.05, warm.attachment.reader.ready.set).start()
    assert pool._claim(KEY) is warm  # not a cold start on top of the one under way
    assert (pool.hits, pool.waited, pool.misses) == (0, 1, 0) and pool._idle[KEY] == []


def test_a_miss_waits_no_longer_than_a_refill_for_a_starting_container() -> None:
    import time

    clock = Clock()
    pool = _pool(clock, size_per_image=2, max_total=10)
    pool._refill_seconds = 0.05
    _starting_container(pool, clock)  # never ready
    began = time.monotonic()
    assert pool._claim(KEY) is None
    assert time.monotonic() - began < 0.5 and (pool.waited, pool.misses) == (0, 1)
