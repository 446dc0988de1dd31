"""The principals repository with the reads authentication makes on every request cached briefly.

``get_key`` (the stored hash and principal of a key id) and ``is_retired_bootstrap_key`` are reused for
``ttl`` seconds (governance/read_cache.py). The key itself is still checked against the stored hash on
every request; only the store round trip is saved. Revoking, rotating or retiring a key through this
wrapper drops the entry at once, so this process refuses the key on its next request; another process
(another API instance) refuses it at most ``ttl`` seconds later. Unknown keys are never cached: a key
created a moment ago elsewhere works at once, and random guesses cannot fill the cache.

Everything else is passed to the wrapped repository unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chalicelib.governance.identity import Principal, StoredKey
from chalicelib.governance.read_cache import ReadCache


class CachedKeys:
    def __init__(self, principals: Any, ttl_seconds: float, *, clock: Callable[[], float] = time.monotonic):
        self.principals = principals
        self._keys: ReadCache[StoredKey | None] = ReadCache(ttl_seconds, clock=clock)
        self._retired: ReadCache[bool] = ReadCache(ttl_seconds, clock=clock)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.principals, name)

    def get_key(self, key_id: str) -> StoredKey | None:
        stored = self._keys.get(key_id, lambda: self.principals.get_key(key_id))
        if stored is None:
            self._keys.invalidate(key_id)  # never keep "unknown": it may exist a moment from now
        return stored

    def is_retired_bootstrap_key(self, key_hash: str) -> bool:
        return self._retired.get(key_hash, lambda: self.principals.is_retired_bootstrap_key(key_hash))

    def put_key(self, principal: Principal, key_hash: str) -> None:
        self.principals.put_key(principal, key_hash)
        self._keys.invalidate(principal.key_id)

    def revoke_key(self, key_id: str, **kwargs: Any) -> Principal:
        try:
            return self.principals.revoke_key(key_id, **kwargs)
        finally:
            self._keys.invalidate(key_id)

    def rotate_key(self, old_key_id: str, new: Principal, new_key_hash: str) -> Principal:
        try:
            return self.principals.rotate_key(old_key_id, new, new_key_hash)
        finally:
            self._keys.invalidate(old_key_id)
            self._keys.invalidate(new.key_id)

    def retire_bootstrap_key(self, key_hash: str, *, retired_by: str) -> bool:
        try:
            return self.principals.retire_bootstrap_key(key_hash, retired_by=retired_by)
        finally:
            self._retired.invalidate(key_hash)

    def forget(self) -> None:
        """Drop every cached key (tests, and an operator's "refuse revoked keys now" in this process)."""
        self._keys.clear()
        self._retired.clear()
