"""Image manifests in ECR, the runner fleet's registry in AWS (``SKILLHARBOR_REGISTRY`` =
``<account>.dkr.ecr.<region>.amazonaws.com``): what the schedule's cleanup deletes when the TTL expires an image.

The workers push and pull through the Docker engine (its credential helper logs in with the ECS task role,
docs/DEPLOYMENT.md); deleting is an ECR API call, ``ecr:BatchDeleteImage`` by digest, which the task role
grants. The repository is the local image's (``skillharbor/env``) under the registry's path prefix, if any.
"""

from __future__ import annotations

import re

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
