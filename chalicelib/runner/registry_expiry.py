"""The schedule's cleanup in the shared registry: a package-set image the TTL expires is deleted there too.

Which images expire is decided from the images table (the fleet's record of last use), not from what this
host holds: the worker that happens to take the cleanup job may never have had the image. A deleted
manifest takes its digest off the image's record, so a worker lacking the image later rebuilds it from the
pins (and pushes it again). A registry that cannot be asked (down, refusing) leaves the digest and says why
on the record; the record's last use stays old, so the next cleanup tries again. Nothing here raises.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Protocol

from chalicelib.errors import TransientError
from chalicelib.governance.timeutil import as_utc
from chalicelib.runner.registry import RegistryError

log = logging.getLogger(__name__)


class Manifests(Protocol):
    """A registry's manifests by local tag and digest (runner/registry_http.py, store/ecr.py)."""

    def delete(self, tag: str, digest: str) -> bool: ...  # True deleted now, False absent; raises when it cannot say


def manifests_for(registry: str) -> Manifests | None:
    """The deleting side of ``registry`` (None when none is configured)."""
    if not registry:
        return None
    from chalicelib.store.ecr import EcrManifests, is_ecr

    if is_ecr(registry):
        return EcrManifests(registry)
    from chalicelib.runner.registry_http import HttpManifests

    return HttpManifests(registry)


@dataclass
class RegistryExpiry:
    removed: list[dict[str, str]] = field(default_factory=list)  # tag, digest (or what would be, in a dry run)
    failed: list[dict[str, str]] = field(default_factory=list)  # tag, digest, error: kept for the next round
    retried: list[str] = field(default_factory=list)  # tags deleted now that an earlier round could not delete

    def kept(self) -> set[str]:
        return {entry["tag"] for entry in self.failed}

    def as_dict(self) -> dict[str, Any]:
        return {"removed": [e["tag"] for e in self.removed], "failed": self.failed}


def expired_records(records: Iterable[dict[str, Any]], ttl: timedelta, now: datetime) -> list[dict[str, Any]]:
    """Records with a registry digest whose image was last used more than ``ttl`` ago."""
    due = []
    for record in records:
        stamp = record.get("last_used") or record.get("created_at")
        if not record.get("registry_digest") or not stamp:
            continue
        try:
            last = as_utc(datetime.fromisoformat(stamp))
        except (TypeError, ValueError):
            continue
        if now - last > ttl:
            due.append(record)
    return due


def expire(records: Iterable[dict[str, Any]], ttl: timedelta, now: datetime, manifests: Manifests | None, images: Any,
           *, dry_run: bool) -> RegistryExpiry:  # fmt: skip
    """Delete from the registry what the TTL expires; ``images`` (store/images.py) records the outcome."""
    outcome = RegistryExpiry()
    if manifests is None:
        return outcome
    for record in expired_records(records, ttl, now):
        tag, digest = record["tag"], record["registry_digest"]
        if dry_run:
            outcome.removed.append({"tag": tag, "digest": digest})
            continue
        error = delete(record, manifests, images)
        if error is not None:
            outcome.failed.append({"tag": tag, "digest": digest, "error": error})
            continue
        outcome.removed.append({"tag": tag, "digest": digest})
        if record.get("registry_delete_error"):  # kept only for this retry (its host copy may be gone already)
            outcome.retried.append(tag)
    return outcome


def delete(record: dict[str, Any], manifests: Manifests, images: Any) -> str | None:
    """Delete ``record``'s image from the registry and take the digest off the record; why not, or None.

    A manifest the registry no longer holds (deleted by hand, a registry reset) counts as deleted."""
    tag, digest = record["tag"], record["registry_digest"]
    try:
        manifests.delete(tag, digest)
    except (RegistryError, TransientError) as error:
        log.warning("cleanup: %s stays in the registry for now: %s", tag, error)
        _quietly(lambda: images.note_registry_trouble(tag, str(error)))
        return str(error)
    _quietly(lambda: images.forget_registry_digest(tag, digest))
    return None


def _quietly(call: Any) -> None:
    try:
        call()
    except Exception:  # the record is retried on the next round; the cleanup itself goes on
        log.exception("cleanup: could not update an image record")
