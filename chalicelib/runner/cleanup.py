"""Listing and expiring the images skillharbor built.

Only env images (``skillharbor.role=env``) are ever removed: the base image
and its root filesystem image are never candidates, nor is any image that a
container (running or not) still references.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import docker
import docker.errors
from pydantic import BaseModel, Field

from chalicelib.errors import RunnerUnavailable
from chalicelib.governance.timeutil import as_utc
from chalicelib.runner import engine

REMOVABLE_ROLES = frozenset({"env"})


class ManagedImage(BaseModel):
    image_id: str
    tags: list[str] = Field(default_factory=list)
    #: ``<registry>/<repository>@sha256:...`` references a push or a pull left: they keep the image on disk too
    repo_digests: list[str] = Field(default_factory=list)
    role: str = ""
    created: datetime | None = None
    size: int = 0
    labels: dict[str, str] = Field(default_factory=dict)


def _parse_created(value: str | None) -> datetime | None:
    if not value:
        return None
    # docker gives RFC 3339 with nanoseconds: trim to microseconds for fromisoformat
    text = value.rstrip("Z")
    if "." in text:
        head, frac = text.split(".", 1)
        text = f"{head}.{frac[:6]}"
    try:
        return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def list_managed_images(client: docker.DockerClient) -> list[ManagedImage]:
    try:
        images = client.images.list(filters={"label": f"{engine.MANAGED_LABEL}=true"})
    except docker.errors.DockerException as exc:
        raise RunnerUnavailable(f"Docker engine unreachable while listing images: {exc}") from exc
    except engine.UNREACHABLE_ERRORS as exc:
        raise RunnerUnavailable(f"Docker engine unreachable while listing images: {exc}") from exc
    result = []
    for image in images:
        labels = image.labels or {}
        result.append(
            ManagedImage(
                image_id=image.id,
                tags=list(image.tags),
                repo_digests=list(image.attrs.get("RepoDigests") or []),
                role=labels.get(engine.ROLE_LABEL, ""),
                created=_parse_created(image.attrs.get("Created")),
                size=int(image.attrs.get("Size") or 0),
                labels=labels,
            )
        )
    return result


def _images_in_use(client: docker.DockerClient) -> set[str]:
    in_use: set[str] = set()
    for container in client.api.containers(all=True):
        image_id = container.get("ImageID")
        if image_id:
            in_use.add(image_id)
    return in_use


def remove_unused_images(
    client: docker.DockerClient,
    last_used: dict[str, datetime],
    ttl: timedelta,
    now: datetime | None = None,
    dry_run: bool = False,
) -> list[str]:
    """Remove env images whose tags were all last used more than ``ttl`` ago.

    ``last_used`` maps tag -> last execution time (from the images table);
    a tag missing from it counts from the image's creation time. Returns the
    removed (or, with ``dry_run``, removable) tags.
    """
    now = now or datetime.now(timezone.utc)
    removed: list[str] = []
    in_use = _images_in_use(client)
    for image in list_managed_images(client):
        if image.role not in REMOVABLE_ROLES or image.image_id in in_use or not (image.tags or image.repo_digests):
            continue
        times = [as_utc(last_used[tag]) for tag in image.tags if tag in last_used]
        last = max(times) if times else image.created
        if last is None or now - as_utc(last) <= ttl:
            continue
        if not dry_run:
            try:
                # the digest references after the tags: an image a registry push or pull named stays on disk otherwise
                for reference in [*image.tags, *image.repo_digests]:
                    client.images.remove(reference, noprune=False)
            except docker.errors.ImageNotFound:
                pass
            except docker.errors.APIError:
                continue  # a container started using it since we looked: keep it
        removed.extend(image.tags)
    return removed
