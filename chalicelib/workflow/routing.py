"""Which runner worker gets a direct run (the fleet registry is store/runners.py).

Preference, among the workers that are up, offer the run's runtime and have
a free run slot: one with a warm container of the run's image and limits
(``spec.warm_key``), else one holding the image, else the one with the most
free slots. Ties go to the worker this API process has fewer runs in flight
on, then at random, so a burst spreads instead of piling onto one worker.

Free slots come from the workers' heartbeats (seconds old); this process
subtracts the runs it has in flight on each worker since, so twenty runs
arriving at once are not all sent to the worker that looked emptiest. A
worker that still turns a run away (503: another API process filled it)
is skipped for the next candidate. None able: the caller falls back to
``SKILLHARBOR_RUNNER_URL``, then to the queue.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from chalicelib.runner.jobs import RunJob
from chalicelib.runner.spec import warm_key

#: how long one reading of the fleet is reused (the registry itself changes every heartbeat)
FLEET_CACHE_SECONDS = 1.0
#: past FLEET_CACHE_SECONDS and up to this age a reading still routes a run while a new one is read in the
#: background, so a run waits for the registry only when nothing was read for a heartbeat's time
FLEET_STALE_SECONDS = 5.0
#: at most this many workers are tried for one run before it goes to the queue
MAX_TRIES = 3

WARM, HOLDS_IMAGE, LEAST_LOADED = "warm", "image", "least_loaded"


@dataclass(frozen=True)
class Target:
    worker_id: str
    url: str
    reason: str  # warm, image or least_loaded


class FleetRouter:
    def __init__(self, members: Callable[[], list[dict[str, Any]]], base_image: Callable[[], str]):
        """``members()`` reads the fleet (RunnerFleet.members); ``base_image()`` is the tag runs without packages use."""
        self._read, self._base_image = members, base_image
        self._lock = threading.Lock()
        self._cached: tuple[float, list[dict[str, Any]]] = (0.0, [])
        self._in_flight: Counter[str] = Counter()
        self._busy_until: dict[str, float] = {}  # worker id → when a 503 from it stops counting
        self._refreshing = False  # a background read of the fleet is under way
        self._generation = 0  # counts gone() calls: a read that started before one is not kept

    def fleet(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            read_at, members = self._cached
            age = now - read_at
            if age < FLEET_CACHE_SECONDS:
                return members
            if age < FLEET_STALE_SECONDS and read_at > 0.0:
                if not self._refreshing:
                    self._refreshing = True
                    threading.Thread(target=self._refresh_in_background, name="fleet-refresh", daemon=True).start()
                return members
        return self._refresh()

    def _refresh_in_background(self) -> None:
        try:
            self._refresh()
        except Exception:  # the next run past the stale window reads inline and reports what fails
            pass
        finally:
            with self._lock:
                self._refreshing = False

    def _refresh(self) -> list[dict[str, Any]]:
        with self._lock:
            generation = self._generation
        started = time.monotonic()  # a reading is as old as its start: the fleet may change while it is read
        members = self._read()
        with self._lock:
            # not after a gone() during the read (the next run reads again), nor over a reading begun later
            if generation == self._generation and started >= self._cached[0]:
                self._cached = (started, members)
        return members

    def targets(self, job: RunJob) -> list[Target]:
        """The workers to try for ``job``, best first (empty: no worker that is up can take it now)."""
        image = job.image_tag or self._base_image()
        key = warm_key(image, job.limits, [p.name for p in job.pins if p.direct], job.preimport, job.runtime)
        now = time.monotonic()
        ranked = []
        members = self.fleet()
        with self._lock:
            for member in members:
                worker, url = member.get("worker_id", ""), member.get("endpoint") or ""
                if member.get("state") != "up" or not url or member.get("engine") == "unreachable" \
                        or job.runtime.value not in (member.get("runtimes") or ["runc"]):
                    continue
                if self._busy_until.get(worker, 0.0) > now:
                    continue
                # room: its slots less what this process has in flight there (the heartbeat's count may be
                # seconds old); ranked by what the heartbeat said was free, less the same
                local = self._in_flight[url]
                if int(member.get("slots") or 0) - local <= 0:
                    continue
                free = int(member.get("free_slots") or 0) - local
                warm = not (job.egress or job.secrets) and key in (member.get("warm") or [])
                tier = 0 if warm else 1 if image in (member.get("images") or []) or image == self._base_image() else 2
                reason = WARM if tier == 0 else HOLDS_IMAGE if tier == 1 else LEAST_LOADED
                ranked.append(((tier, -free, local, random.random()), Target(worker, url, reason)))
        return [target for _, target in sorted(ranked, key=lambda r: r[0])[:MAX_TRIES]]

    @contextmanager
    def sending(self, target: Target) -> Iterator[None]:
        """Count ``target``'s run in flight while it is being sent and answered."""
        with self._lock:
            self._in_flight[target.url] += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[target.url] -= 1

    def busy(self, target: Target, seconds: float = FLEET_CACHE_SECONDS) -> None:
        """``target`` turned a run away: skip it until its next heartbeat can say otherwise."""
        with self._lock:
            self._busy_until[target.worker_id] = time.monotonic() + seconds

    def gone(self, target: Target) -> None:
        """``target`` did not answer at all: read the fleet again before the next run."""
        with self._lock:
            self._cached = (0.0, [])
            self._generation += 1
            self._busy_until[target.worker_id] = time.monotonic() + 3 * FLEET_CACHE_SECONDS
