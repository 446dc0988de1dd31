"""The cleanup's expiry in the shared registry (runner/registry_expiry.py) with the real image records
(store/images.py on moto), the registry's side through a registry-shaped server on 127.0.0.1 or ECR (moto);
and the record of the fleet's base image (store/platform.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws
from registry_support import ManifestServer, serve

from chalicelib.local.child_stack import free_port
from chalicelib.local.provision import create_tables
from chalicelib.runner import registry_expiry
from chalicelib.runner.registry_http import HttpManifests
from chalicelib.settings import get_settings
from chalicelib.store import aws as aws_clients
from chalicelib.store.ecr import EcrManifests
from chalicelib.store.images import ImageStore
from chalicelib.store.platform import PlatformStore

OLD, FRESH = "sha256:" + "a" * 64, "sha256:" + "b" * 64
TAG, FRESH_TAG, UNPUSHED = "skillharbor/env:" + "1" * 32, "skillharbor/env:" + "2" * 32, "skillharbor/env:" + "3" * 32
TTL = timedelta(days=7)


@pytest.fixture
def images(monkeypatch) -> Iterator[ImageStore]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("SKILLHARBOR_IMAGES_TABLE", "test-images")
    monkeypatch.delenv("SKILLHARBOR_AWS_ENDPOINT_URL", raising=False)
    aws_clients.reset_clients()
    with mock_aws():
        create_tables(boto3.client("dynamodb", region_name="us-east-1"), get_settings(), only=("images_table",))
        store = ImageStore()
        now = datetime.now(UTC)
        store.record_image(TAG, registry_digest=OLD, last_used=(now - timedelta(days=10)).isoformat())
        store.record_image(FRESH_TAG, registry_digest=FRESH, last_used=(now - timedelta(days=1)).isoformat())
        store.record_image(UNPUSHED, last_used=(now - timedelta(days=10)).isoformat())
        yield store
    aws_clients.reset_clients()


@pytest.fixture
def registry() -> Iterator[ManifestServer]:
    yield from serve(ManifestServer())


def _expire(images: ImageStore, manifests, *, dry_run: bool = False) -> registry_expiry.RegistryExpiry:
    return registry_expiry.expire(images.list_images(), TTL, datetime.now(UTC), manifests, images, dry_run=dry_run)


def test_the_cleanup_deletes_from_the_registry_only_what_the_ttl_expires_and_the_record_loses_its_digest(images, registry):
    registry.held |= {("skillharbor/env", OLD), ("skillharbor/env", FRESH)}
    planned = _expire(images, HttpManifests(registry.address), dry_run=True)
    assert planned.as_dict()["removed"] == [TAG] and len(registry.held) == 2  # a dry run deletes nothing
    assert images.get_image(TAG)["registry_digest"] == OLD

    done = _expire(images, HttpManifests(registry.address))
    assert done.as_dict() == {"removed": [TAG], "failed": []}
    assert registry.held == {("skillharbor/env", FRESH)}
    assert "registry_digest" not in images.get_image(TAG)  # a worker lacking it rebuilds from the pins
    assert images.get_image(FRESH_TAG)["registry_digest"] == FRESH


def test_a_registry_that_is_down_during_cleanup_is_noted_on_the_record_and_the_next_cleanup_retries(images, registry):
    first = _expire(images, HttpManifests(f"127.0.0.1:{free_port()}", timeout=2))
    assert first.kept() == {TAG} and first.removed == []
    record = images.get_image(TAG)
    assert record["registry_digest"] == OLD and "failed" in record["registry_delete_error"]

    registry.held.add(("skillharbor/env", OLD))
    second = _expire(images, HttpManifests(registry.address))
    assert second.as_dict()["removed"] == [TAG] and not registry.held
    record = images.get_image(TAG)
    assert "registry_digest" not in record and "registry_delete_error" not in record


def test_a_digest_recorded_again_since_is_not_dropped(images, registry):
    """A worker that rebuilt and pushed while the cleanup ran recorded a new digest: that one stays."""
    images.record_image(TAG, registry_digest=FRESH)
    images.forget_registry_digest(TAG, OLD)
    assert images.get_image(TAG)["registry_digest"] == FRESH


def test_in_aws_the_expired_image_is_deleted_from_ecr_by_digest(images):
    ecr = boto3.client("ecr", region_name="us-east-1")
    account = ecr.create_repository(repositoryName="skillharbor/env")["repository"]["registryId"]
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
                                      "digest": "sha256:" + "c" * 64}, "layers": []})  # fmt: skip
    digest = ecr.put_image(repositoryName="skillharbor/env", imageManifest=manifest, imageTag="1" * 32)["image"]["imageId"]["imageDigest"]
    images.record_image(TAG, registry_digest=digest)
    images.record_image(TAG, last_used=(datetime.now(UTC) - timedelta(days=10)).isoformat())
    manifests = EcrManifests(f"{account}.dkr.ecr.us-east-1.amazonaws.com")
    assert manifests.delete(TAG, FRESH) is False  # never there: nothing to do

    done = registry_expiry.expire([images.get_image(TAG)], TTL, datetime.now(UTC), manifests, images, dry_run=False)
    assert done.as_dict() == {"removed": [TAG], "failed": []}
    assert ecr.describe_images(repositoryName="skillharbor/env").get("imageDetails") == []
    assert "registry_digest" not in images.get_image(TAG)


def test_the_first_worker_s_base_image_record_stays_unless_it_could_not_be_used(images):
    platform = PlatformStore()
    assert platform.base_digest("127.0.0.1:5050", "skillharbor/base:latest", "k1") is None
    assert platform.record_base_digest("127.0.0.1:5050", "skillharbor/base:latest", "k1", digest=OLD, image_id="sha256:i1")
    assert not platform.record_base_digest("127.0.0.1:5050", "skillharbor/base:latest", "k1", digest=FRESH, image_id="sha256:i2")
    assert platform.base_digest("127.0.0.1:5050", "skillharbor/base:latest", "k1")["digest"] == OLD
    assert platform.record_base_digest("127.0.0.1:5050", "skillharbor/base:latest", "k1", digest=FRESH, image_id="sha256:i2",
                                       replace=True)  # fmt: skip
    assert platform.base_digest("127.0.0.1:5050", "skillharbor/base:latest", "k1")["image_id"] == "sha256:i2"
    assert platform.base_digest("127.0.0.1:5050", "skillharbor/base:latest", "k2") is None  # another harness layer
    assert [r["tag"] for r in images.list_images()].count(TAG) == 1  # the base's record is not an image record


def test_in_aws_the_engine_logs_in_to_ecr_with_the_task_role_and_reuses_the_token_until_it_nears_expiry(images):
    from chalicelib.store.ecr import EcrLogin

    login = EcrLogin()
    assert login.auth_config("127.0.0.1:5050") is None  # not ECR: the engine's own configuration
    host = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    expires = datetime(2015, 1, 1, tzinfo=UTC).timestamp()  # when moto's tokens expire
    day_before = expires - 86400
    auth = login.auth_config(f"{host}/stack", now=day_before)
    assert auth["username"] == "AWS" and auth["password"] and auth["serveraddress"].endswith(host)
    assert login.auth_config(f"{host}/stack", now=day_before + 3600) is auth  # cached: not one token call per push
    assert login.auth_config(host, now=expires - login.RENEW_BEFORE_SECONDS + 1) is not auth  # renewed before it ends
