"""The worker's run slots: a bounded semaphore that can say how many are free.

Queued and direct jobs share them (runner/worker.py, runner/direct.py); the
fleet registry publishes ``free`` with every heartbeat so the API routes a
run to a worker with room (workflow/routing.py).
"""

from __future__ import annotations

import threading
from typing import Any


class RunSlots:
    def __init__(self, size: int):
        self.size = max(1, int(size))
        self._semaphore = threading.BoundedSemaphore(self.size)
        self._lock = threading.Lock()
        self._taken = 0

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        if not self._semaphore.acquire(blocking, timeout):
            return False
        with self._lock:
            self._taken += 1
        return True

    def release(self) -> None:
        with self._lock:
            self._taken -= 1
        self._semaphore.release()

    @property
    def free(self) -> int:
        with self._lock:
            return self.size - self._taken

    def __enter__(self) -> RunSlots:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
