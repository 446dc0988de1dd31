"""Per-key rate and concurrency limits on expensive work (resolutions, image builds).

A resolution costs a pip run of seconds to minutes and a build a runner's
time, so one API key may start only so many per minute and have only so
many running at once; beyond that the caller gets 429 with ``Retry-After``.
The state lives behind :class:`ThrottleStore` (DynamoDB in
``store/throttle.py``, so every Lambda instance counts the same uses; in
memory in ``governance/memory.py`` for unit tests):

* rate: a counter per (key, action, one-minute window), incremented only
  while below the limit, in one conditional write;
* concurrency: ``n`` slots per (key, action), each taken by a conditional
  write that succeeds only when the slot is free or its lease expired (a
  crashed instance frees its slots when the lease runs out).

A limit of 0 turns that check off.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from chalicelib.errors import TooManyRequests

WINDOW_SECONDS = 60
#: what a caller turned away for concurrency is told to wait: the running work's end is unknown
BUSY_RETRY_SECONDS = 5


class ThrottleStore(Protocol):
    def count_use(self, scope: str, window: int, limit: int, expires_at: float) -> bool:
        """Count one use of ``scope`` in ``window``; False, counting nothing, when ``limit`` uses are there."""
        ...

    def take_slot(self, scope: str, slots: int, lease_id: str, now: float, lease_until: float) -> bool:
        """Hold one of ``slots`` slots of ``scope`` until released or ``lease_until``; False when all are held."""
        ...

    def release_slot(self, scope: str, lease_id: str) -> None:
        """Free the slot ``lease_id`` holds (nothing if it expired and was taken by someone else)."""
        ...


@dataclass(frozen=True)
class Limit:
    action: str  # "resolve", "build": part of the stored scope
    noun: str  # for messages: "resolutions", "installs"
    per_minute: int
    concurrent: int
    lease_seconds: float  # longest the work can take; a slot is freed after this even if never released


class Throttle:
    def __init__(self, store: ThrottleStore, *, clock: Callable[[], float] = time.time):
        self.store = store
        self._clock = clock

    @contextlib.contextmanager
    def admit(self, key_id: str, limit: Limit) -> Iterator[None]:
        """Run the body within ``limit`` for ``key_id``, or raise TooManyRequests before it starts."""
        now = self._clock()
        scope = f"{limit.action}#{key_id}"
        lease_id = secrets.token_hex(8)
        holding = False
        if limit.concurrent > 0:
            if not self.store.take_slot(scope, limit.concurrent, lease_id, now, now + limit.lease_seconds):
                raise TooManyRequests(
                    f"this key already has {limit.concurrent} {limit.noun} running (the limit); "
                    f"retry when one has finished", retry_after_seconds=BUSY_RETRY_SECONDS, limit=f"{limit.action}_concurrency",
                )  # fmt: skip
            holding = True
        try:
            if limit.per_minute > 0:
                window = int(now // WINDOW_SECONDS)
                if not self.store.count_use(scope, window, limit.per_minute, (window + 2) * WINDOW_SECONDS):
                    retry = math.ceil((window + 1) * WINDOW_SECONDS - now)
                    raise TooManyRequests(
                        f"this key has started {limit.per_minute} {limit.noun} this minute (the limit); retry in {retry} s",
                        retry_after_seconds=retry, limit=f"{limit.action}_rate",
                    )  # fmt: skip
            yield
        finally:
            if holding:
                self.store.release_slot(scope, lease_id)


def resolve_limit(settings: object) -> Limit:
    return Limit("resolve", "resolutions", int(settings.resolve_rate_per_minute), int(settings.resolve_concurrency_per_key),  # type: ignore[attr-defined]
                 float(settings.resolver_timeout_seconds) + 60)  # type: ignore[attr-defined]  # fmt: skip


def build_limit(settings: object) -> Limit:
    return Limit("build", "installs", int(settings.build_rate_per_minute), int(settings.resolve_concurrency_per_key),  # type: ignore[attr-defined]
                 float(settings.resolver_timeout_seconds) + float(settings.runner_job_timeout_seconds) + 60)  # type: ignore[attr-defined]  # fmt: skip
