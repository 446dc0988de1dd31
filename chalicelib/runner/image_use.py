"""When a worker tells the store that an image was used: at most once a minute per image.

``last_used`` feeds only the cleanup, whose TTL is measured in days (IMAGE_TTL_DAYS, 7 by default). Writing
it on every run put a store write between each run's end and its answer; once a minute per image (or a
hundredth of a TTL set shorter) keeps the cleanup's view as good and takes that write off nearly every run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

EVERY_SECONDS = 60.0


class ImageUse:
    def __init__(self, ttl_seconds: Callable[[], float] | None = None, *, clock: Callable[[], float] = time.monotonic):
        self._ttl_seconds, self._clock = ttl_seconds or _settings_ttl_seconds, clock
        self._noted: dict[str, float] = {}
        self._lock = threading.Lock()

    def note(self, tag: str, touch: Callable[[str], None]) -> bool:
        """Call ``touch(tag)`` unless this worker did within the interval; True when it did now."""
        now = self._clock()
        interval = min(EVERY_SECONDS, self._ttl_seconds() / 100)
        with self._lock:
            last = self._noted.get(tag)
            if last is not None and now - last < interval:
                return False
            self._noted[tag] = now
        try:
            touch(tag)
        except Exception:
            with self._lock:  # not on record: the next run tries again
                if self._noted.get(tag) == now:
                    del self._noted[tag]
            raise
        return True


def _settings_ttl_seconds() -> float:
    from chalicelib.settings import get_settings

    return get_settings().image_ttl_days * 86400
