"""API key material: generation, hashing, constant-time verification.

A key looks like ``shk_<key_id>_<secret>``:

* ``shk_`` makes leaked keys recognisable (secret scanners, logs);
* ``key_id`` (16 hex characters) is public: it names the key in the API
  (``DELETE /api/keys/{key_id}``), in audit events and in the store;
* ``secret`` is 32 random bytes (``secrets.token_urlsafe``).

Only ``sha256(key)`` is stored. A plain, unsalted, fast hash is enough here
because the key carries 256 bits of randomness: there is no dictionary to
try and brute force is hopeless, so slow salted hashes (bcrypt, scrypt) that
protect low-entropy passwords would only add latency to every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import NamedTuple

KEY_PREFIX = "shk_"
_KEY_ID_HEX_CHARS = 16
_KEY_RE = re.compile(rf"^{KEY_PREFIX}([0-9a-f]{{{_KEY_ID_HEX_CHARS}}})_([A-Za-z0-9_-]{{20,}})$")


class NewKey(NamedTuple):
    key_id: str
    api_key: str  # shown to its owner once, never stored
    key_hash: str


def hash_api_key(api_key: str) -> str:
    """Hex sha256 of the whole key (see the module doc for why sha256 suffices)."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def generate_api_key() -> NewKey:
    key_id = secrets.token_hex(_KEY_ID_HEX_CHARS // 2)
    api_key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return NewKey(key_id=key_id, api_key=api_key, key_hash=hash_api_key(api_key))


def key_id_of(api_key: str) -> str | None:
    """The public key id inside a well-formed key, or None when ``api_key`` is not one of ours."""
    if not isinstance(api_key, str):
        return None
    match = _KEY_RE.match(api_key.strip())
    return match.group(1) if match else None


def verify_api_key(api_key: str, key_hash: str) -> bool:
    """Whether ``api_key`` hashes to ``key_hash``, compared in constant time."""
    if not isinstance(api_key, str) or not isinstance(key_hash, str):
        return False
    return hmac.compare_digest(hash_api_key(api_key.strip()), key_hash)
