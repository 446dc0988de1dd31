"""The interface every measured sandbox mode offers the benchmark."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.peers.workloads import Workload

#: on every container the peers' benchmark creates, so it removes its own leftovers and no one else's
BENCH_LABEL = "skillharbor.bench.peers"
RUN_ID = f"{os.getpid()}-{secrets.token_hex(4)}"
LABELS = {BENCH_LABEL: RUN_ID}


class Variant:
    """One sandbox in one mode, bound to one workload.

    ``run`` is what is timed: from the call until the result is in the
    caller's hands. Work a caller need not wait for (removing a used
    container, refilling a pool) is left for ``settle``, which the benchmark
    calls before every timed run, so no variant's background work competes
    with another's measurement; its duration is kept in ``teardown_ms``.
    """

    peer = "?"  # the product measured ("llm-sandbox")
    mode = "cold"  # "cold": a new container per run; "warm": a container prepared or kept before the run
    label = "?"  # how this variant appears in tables

    def __init__(self, workload: Workload):
        self.workload = workload
        self.teardown_ms: list[float] = []
        self._pending: list[Callable[[], Any]] = []
        self._pending_lock = threading.Lock()

    def open(self) -> None:
        """Prepare (start a pool, open a session); not timed."""

    def run(self) -> Any:
        """One execution of the workload; returns the workload's result value."""
        raise NotImplementedError

    def defer(self, cleanup: Callable[[], Any]) -> None:
        """Work to do after the answer (removal of the run's container)."""
        with self._pending_lock:
            self._pending.append(cleanup)

    def settle(self) -> None:
        """Finish deferred and background work before the next timed run."""
        with self._pending_lock:
            pending, self._pending = self._pending, []
        for cleanup in pending:
            start = time.perf_counter()
            cleanup()
            self.teardown_ms.append((time.perf_counter() - start) * 1000)

    def idle_containers(self) -> list[str]:
        """Ids of this variant's idle warm containers (for their memory)."""
        return []

    def close(self) -> None:
        self.settle()

    def describe(self) -> dict[str, Any]:
        """How this variant is configured, for the report."""
        return {}
