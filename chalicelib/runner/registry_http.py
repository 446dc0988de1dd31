"""Deleting a pushed manifest from a registry that speaks the Registry HTTP API v2 (the CNCF distribution
registry, Debian's ``docker-registry``): ``DELETE /v2/<name>/manifests/<digest>``.

The Docker engine pushes and pulls; it cannot delete from a registry, so the schedule's cleanup asks the
registry itself. A registry on a loopback address is spoken to in plain HTTP, as the engine does
(127.0.0.0/8 is an insecure registry by default); any other over HTTPS. ECR is not asked this way: its
deletion is an AWS API call (store/ecr.py).
"""

from __future__ import annotations

import ipaddress
import re
import urllib.error
import urllib.parse
import urllib.request

from chalicelib.runner.registry import RegistryError, remote_name

TIMEOUT_SECONDS = 10.0
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def base_url(registry: str) -> str:
    """``http://host:port`` for a loopback registry, ``https://host[:port]`` otherwise."""
    host = registry.split("/", 1)[0]
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:host.index("]")]
    try:
        loopback = ipaddress.ip_address(name).is_loopback
    except ValueError:
        loopback = name == "localhost"
    return f"{'http' if loopback else 'https'}://{host}"


def manifest_url(registry: str, tag: str, digest: str) -> str:
    """The manifest URL of local image ``tag``'s repository in ``registry`` at ``digest``."""
    if not _DIGEST.match(digest):
        raise RegistryError(f"{digest[:80]!r} is not a sha256 digest")
    repository, _ = remote_name(registry, tag)
    name = repository.split("/", 1)[1]  # the path after the registry's host (a registry path prefix stays)
    return f"{base_url(registry)}/v2/{urllib.parse.quote(name)}/manifests/{digest}"


class HttpManifests:
    """Manifests of one v2 registry (``SKILLHARBOR_REGISTRY``), addressed by local tag and digest."""

    def __init__(self, registry: str, timeout: float = TIMEOUT_SECONDS):
        self.registry, self.timeout = registry, timeout
        # a loopback registry must be reached directly, whatever proxy the environment names
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def delete(self, tag: str, digest: str) -> bool:
        """True when the registry deleted it now, False when it did not hold it; RegistryError when it cannot say."""
        return self._ask("DELETE", tag, digest, {202: True, 200: True, 404: False})

    def exists(self, tag: str, digest: str) -> bool:
        accept = ", ".join(("application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json",
                            "application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.oci.image.index.v1+json"))  # fmt: skip
        return self._ask("HEAD", tag, digest, {200: True, 404: False}, {"Accept": accept})

    def _ask(self, method: str, tag: str, digest: str, answers: dict[int, bool], headers: dict[str, str] | None = None) -> bool:
        url = manifest_url(self.registry, tag, digest)
        request = urllib.request.Request(url, method=method, headers={"User-Agent": "skillharbor-runner", **(headers or {})})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
            error.close()
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise RegistryError(f"{method} {url} failed: {getattr(error, 'reason', error)}") from error
        if status in answers:
            return answers[status]
        if status == 405:
            raise RegistryError(f"{method} {url}: the registry does not allow deletion (storage.delete.enabled is off)")
        if status in (401, 403):
            raise RegistryError(f"{method} {url}: the registry refused this runner's request ({status})")
        raise RegistryError(f"{method} {url}: the registry answered {status}")
