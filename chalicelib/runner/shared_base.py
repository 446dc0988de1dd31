"""The base image through the shared registry: built (or found) once in the fleet, pulled by digest elsewhere.

The first worker that has the current base (this harness layer key) pushes it and records its digest
(store/platform.py); a worker lacking it pulls that digest and checks the labels ``ensure_base_image``
checks (role, harness layer key) instead of bootstrapping Debian offline. Pulled by digest, the image is
byte for byte the first worker's, so its image id, and with it every package-set tag built on it, is the
same on every host: the package-set images in the registry fit all of them.

A recorded digest that cannot be pulled or verified (registry down, manifest gone, another image) falls
back to building here; the worker then records its own push in place of the record it could not use.
Without a registry or a record store, this is ``ensure_base_image`` alone.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Protocol

from chalicelib.runner import engine, registry
from chalicelib.runner.base_image import LAYER_LABEL, BaseImageInfo, ensure_base_image, layer_key

log = logging.getLogger(__name__)


class BaseDigests(Protocol):
    """Where the pushed base's digest is kept (store/platform.py PlatformStore has these)."""

    def base_digest(self, registry: str, tag: str, layer_key: str) -> dict[str, Any] | None: ...
    def record_base_digest(self, registry: str, tag: str, layer_key: str, *, digest: str, image_id: str,
                           replace: bool = False) -> bool: ...  # fmt: skip


def ensure_shared_base(client: Any, settings: Any, digests: BaseDigests | None,
                       auth: Callable[[], dict[str, str] | None] = lambda: None) -> tuple[BaseImageInfo, str]:  # fmt: skip
    """(the base image, how it came: "present", "pulled" or "built"); ``auth``: the engine's registry login."""
    address, tag, key = settings.registry, settings.base_image_tag, layer_key()
    if not address or digests is None:
        info = ensure_base_image(client, settings)
        return info, "built" if info.built else "present"
    try:
        recorded = digests.base_digest(address, tag, key)
    except Exception as error:  # the record store away: the base is still made here
        log.warning("could not read the shared base image's record: %s", error)
        return ensure_base_image(client, settings), "built"
    refused: list[str] = []
    pulled: list[str] = []

    def pull() -> Any:
        if not recorded or not recorded.get("digest"):
            return None
        expected = {engine.ROLE_LABEL: "base", LAYER_LABEL: key}
        try:
            image = registry.pull_verified(client, tag, address, recorded["digest"], expected, auth())
        except registry.RegistryError as error:
            log.warning("%s: building the base image here instead", error)
            refused.append(str(error))
            return None
        pulled.append(recorded["digest"])
        return image

    info = ensure_base_image(client, settings, pull=pull)
    how = "built" if info.built else "pulled" if pulled else "present"
    if how == "pulled":
        log.info("base image pulled from the registry by digest %s", pulled[0])
    if not recorded or how == "built":  # the first to have it, or the record could not be used here
        _share(client, settings, digests, info, auth(), replace=bool(recorded))
    return info, how


def _share(client: Any, settings: Any, digests: BaseDigests, info: BaseImageInfo, auth: dict[str, str] | None, *,
           replace: bool) -> None:  # fmt: skip
    """Push this host's base and record it (a failure leaves the other hosts building their own)."""
    try:
        digest = registry.push(client, info.tag, settings.registry, auth)
        if digests.record_base_digest(settings.registry, info.tag, layer_key(), digest=digest, image_id=info.image_id,
                                      replace=replace):  # fmt: skip
            log.info("base image %s pushed to the registry as %s", info.image_id[:19], digest)
    except registry.RegistryError as error:
        log.warning("%s", error)
    except Exception as error:
        log.warning("could not record the shared base image: %s", error)
