"""Image manifests in ECR, the runner fleet's registry in AWS (``SKILLHARBOR_REGISTRY`` =
``<account>.dkr.ecr.<region>.amazonaws.com``): what the schedule's cleanup deletes when the TTL expires an image.

The workers push and pull through the Docker engine with the login ``EcrLogin`` makes from the ECS task
role (``ecr:GetAuthorizationToken``; the token lasts 12 hours and is fetched again before it ends), so the
worker's image needs no credential helper; deleting is an ECR API call, ``ecr:BatchDeleteImage`` by digest,
which the task role grants too. The repository is the local image's (``skillharbor/env``) under the
registry's path prefix, if any. The token is a credential: it is handed to the engine and never logged.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import TransientError
from chalicelib.store import aws

_ECR_HOST = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


def is_ecr(registry: str) -> bool:
    return bool(_ECR_HOST.match(registry.split("/", 1)[0]))


class EcrManifests:
    def __init__(self, registry: str):
        host, _, prefix = registry.partition("/")
        match = _ECR_HOST.match(host)
        if match is None:
            raise ValueError(f"{host!r} is not an ECR registry host")
        self.account, self.prefix = match["account"], prefix.strip("/")

    def repository(self, tag: str) -> str:
        name = tag.rpartition(":")[0]
        return f"{self.prefix}/{name}" if self.prefix else name

    def delete(self, tag: str, digest: str) -> bool:
        """True when ECR deleted it now, False when it did not hold it; TransientError when it cannot say."""
        repository = self.repository(tag)
        try:
            answer = aws.client("ecr").batch_delete_image(registryId=self.account, repositoryName=repository,
                                                          imageIds=[{"imageDigest": digest}])  # fmt: skip
        except ClientError as error:
            if aws.error_code(error) == "RepositoryNotFoundException":
                return False
            raise TransientError(f"ECR deletion of {repository}@{digest} failed: {aws.error_code(error) or error}") from error
        except BotoCoreError as error:
            raise TransientError(f"ECR deletion of {repository}@{digest} failed: {error}") from error
        if answer.get("imageIds"):
            return True
        failures = answer.get("failures") or []
        if all(f.get("failureCode") == "ImageNotFound" for f in failures):
            return False
        reasons = "; ".join(f"{f.get('failureCode')}: {f.get('failureReason')}" for f in failures)
        raise TransientError(f"ECR deletion of {repository}@{digest} failed: {reasons}")


class EcrLogin:
    """The engine's credentials for an ECR registry, from the task role; cached until shortly before they expire."""

    RENEW_BEFORE_SECONDS = 600.0

    def __init__(self) -> None:
        self._cached: dict[str, tuple[float, dict[str, str]]] = {}
        self._lock = threading.Lock()

    def auth_config(self, registry: str, *, now: float | None = None) -> dict[str, str] | None:
        """``{"username", "password", "serveraddress"}`` for ``registry``; None when it is not ECR."""
        host = registry.split("/", 1)[0]
        match = _ECR_HOST.match(host)
        if match is None:
            return None
        now = time.time() if now is None else now
        with self._lock:
            cached = self._cached.get(host)
            if cached is not None and cached[0] - self.RENEW_BEFORE_SECONDS > now:
                return cached[1]
            try:
                answer = aws.client("ecr").get_authorization_token(registryIds=[match["account"]])
            except (ClientError, BotoCoreError) as error:
                raise TransientError(f"ECR login for {host} failed: {aws.error_code(error) or type(error).__name__}") from error
            data = answer["authorizationData"][0]
            username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
            auth = {"username": username, "password": password, "serveraddress": data.get("proxyEndpoint") or f"https://{host}"}
            self._cached[host] = (_epoch(data.get("expiresAt"), now), auth)
            return auth


def _epoch(expires: Any, now: float) -> float:
    if isinstance(expires, datetime):
        return expires.timestamp()
    return now + 12 * 3600.0  # ECR's documented token lifetime
