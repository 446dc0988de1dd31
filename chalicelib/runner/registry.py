"""Images shared between runner hosts through a container registry, by digest.

A worker that builds an image pushes it (``SKILLHARBOR_REGISTRY``: ECR in AWS,
the CNCF distribution registry on 127.0.0.1 locally); a worker that lacks it
pulls it by the digest recorded at push time instead of rebuilding. A pull by
digest is verified by the engine (the manifest must hash to the digest we
asked for), and here again: the pulled image must carry the labels of the
package set and base the run expects. Anything else (registry down, unknown
digest, other labels) is reported as a reason and the caller rebuilds from the
pins: an unverified image never runs.

Locally, a registry on a loopback address needs no TLS: Docker treats
127.0.0.0/8 as an insecure registry by default. ECR needs a login: ``auth``
is the engine's credentials for the registry (store/ecr.py ``EcrLogin`` makes
them from the task role), or None to use the engine's own configuration.
"""

from __future__ import annotations

from typing import Any

import docker
import docker.errors

from chalicelib.runner import engine

PUSH_TIMEOUT_SECONDS = 600


class RegistryError(Exception):
    """A push or pull that did not happen (the caller falls back to building)."""


def remote_name(registry: str, tag: str) -> tuple[str, str]:
    """(repository in the registry, tag) for a local ``repo:tag``."""
    repository, _, version = tag.rpartition(":")
    return f"{registry.rstrip('/')}/{repository}", version


def push(client: docker.DockerClient, tag: str, registry: str, auth: dict[str, str] | None = None) -> str:
    """Push local image ``tag`` to ``registry``; its manifest digest (``sha256:...``)."""
    repository, version = remote_name(registry, tag)
    try:
        image = client.images.get(tag)
        image.tag(repository, version)
        api = engine.api_with_timeout(client, PUSH_TIMEOUT_SECONDS)
        digest = None
        for chunk in api.push(repository, tag=version, stream=True, decode=True, auth_config=auth):
            if "error" in chunk:
                raise RegistryError(f"push of {tag} to {registry} failed: {chunk['error'].strip()}")
            aux = chunk.get("aux") or {}
            digest = aux.get("Digest") or digest
        if not digest:
            raise RegistryError(f"push of {tag} to {registry} reported no digest")
        return str(digest)
    except docker.errors.DockerException as exc:
        raise RegistryError(f"push of {tag} to {registry} failed: {exc}") from exc
    except engine.UNREACHABLE_ERRORS as exc:
        raise RegistryError(f"push of {tag} to {registry} failed: {exc}") from exc
    finally:
        try:
            client.api.remove_image(f"{repository}:{version}", noprune=True)  # the alias only; ``tag`` stays
        except Exception:
            pass


def pull_verified(client: docker.DockerClient, tag: str, registry: str, digest: str, labels: dict[str, str],
                  auth: dict[str, str] | None = None) -> Any:  # fmt: skip
    """Pull ``tag`` by ``digest`` from ``registry``, check it, tag it locally; the image.

    ``labels``: what the image must carry (e.g. the closure digest and the
    base image id of the run's package set). Raises RegistryError saying why
    the image cannot be used.
    """
    if not digest.startswith("sha256:") or len(digest) != 71:
        raise RegistryError(f"{digest[:80]!r} is not a sha256 digest")
    repository, version = remote_name(registry, tag)
    reference = f"{repository}@{digest}"
    try:
        image = client.images.pull(reference, auth_config=auth)
    except docker.errors.DockerException as exc:
        raise RegistryError(f"pull of {reference} failed: {exc}") from exc
    except engine.UNREACHABLE_ERRORS as exc:
        raise RegistryError(f"pull of {reference} failed: {exc}") from exc
    if reference not in (image.attrs.get("RepoDigests") or []):
        _drop(client, reference)
        raise RegistryError(f"the engine did not record {reference} for the pulled image")
    found = image.labels or {}
    wrong = sorted(key for key, value in labels.items() if found.get(key) != value)
    if wrong:
        _drop(client, reference)
        raise RegistryError(f"the image at {reference} is not the one expected ({', '.join(wrong)} differ)")
    local_repository, _, local_version = tag.rpartition(":")
    image.tag(local_repository, local_version)
    return client.images.get(tag)


def _drop(client: docker.DockerClient, reference: str) -> None:
    """Forget the pulled reference (the image goes with it unless something else of ours names it)."""
    try:
        client.images.remove(reference)
    except Exception:
        pass
