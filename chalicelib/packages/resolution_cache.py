"""Resolved closures kept for a while, keyed by (normalised requirement set, target platform, index).

A resolution costs a pip run (seconds, many index requests); the same set on
the same target gives the same closure until the index changes, so results
are kept for ``RESOLUTION_CACHE_TTL_SECONDS``. The DynamoDB adapter
(``store/resolutions.py``) shares them across Lambda instances; the
in-memory one here serves unit tests and processes without a table.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from chalicelib.packages.pins import TargetPlatform


def resolution_key(requirements: list[str], platform: TargetPlatform, index_url: str) -> str:
    """``requirements`` must already be canonical (``normalize_requirement``); order and repeats do not count."""
    raw = json.dumps([sorted(set(requirements)), platform.key, index_url])
    return hashlib.sha256(raw.encode()).hexdigest()


class ResolutionCache(Protocol):
    def get(self, key: str) -> list[dict[str, Any]] | None:
        """The pins (as ``Pin.model_dump()``) stored under ``key`` and not yet expired."""
        ...

    def put(self, key: str, pins: list[dict[str, Any]], ttl_seconds: float) -> None: ...


class InMemoryResolutionCache:
    """Per-process LRU with expiry; thread-safe."""

    def __init__(self, max_entries: int = 256, *, clock: Callable[[], float] = time.time):
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, list[dict[str, Any]]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> list[dict[str, Any]] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return [dict(p) for p in entry[1]]

    def put(self, key: str, pins: list[dict[str, Any]], ttl_seconds: float) -> None:
        if ttl_seconds <= 0 or self.max_entries <= 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() + ttl_seconds, [dict(p) for p in pins])
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
