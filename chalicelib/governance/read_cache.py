"""A short-lived cache of records a run's admission reads on every request (keys, skill records, rules).

Every read of the store costs a round trip (milliseconds in DynamoDB, more under moto locally), and a
run request used to make four of them before its own writes. Holding what was read for a few seconds
(``SKILLHARBOR_RECORD_CACHE_SECONDS``) removes them from the common path. What bounds the staleness:

* a change made through this process drops the entry at once (revoking a key, removing a rule, a skill
  version changing status), so the next request reads the store again;
* a change made by another process (another API instance, the pipeline's functions) is seen once the
  entry expires: at most ``ttl`` seconds later;
* a generation counter, bumped by every invalidation, keeps a read that started before an invalidation
  from storing its stale answer after it (as the decision cache does, governance/cache.py).

A ttl of 0 turns caching off (every call reads the store).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")
MAX_ENTRIES = 10_000


class ReadCache(Generic[V]):
    def __init__(self, ttl_seconds: float, *, clock: Callable[[], float] = time.monotonic, max_entries: int = MAX_ENTRIES):
        if ttl_seconds < 0:
            raise ValueError("ttl_seconds must be >= 0")
        self.ttl_seconds, self._clock, self.max_entries = float(ttl_seconds), clock, max_entries
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._lock = threading.Lock()
        self._generation = 0

    def get(self, key: Hashable, load: Callable[[], V]) -> V:
        """The cached value of ``key`` while it is fresh, else ``load()`` (stored unless invalidated meanwhile)."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] > self._clock():
            return entry[1]
        generation = self._generation
        value = load()
        if self.ttl_seconds > 0:
            with self._lock:
                if generation == self._generation:
                    if len(self._entries) >= self.max_entries:
                        self._entries.clear()  # rare: a flood of distinct keys; start over rather than grow
                    self._entries[key] = (self._clock() + self.ttl_seconds, value)
        return value

    def invalidate(self, key: Hashable) -> None:
        with self._lock:
            self._generation += 1
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()
