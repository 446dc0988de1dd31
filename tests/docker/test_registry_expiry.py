"""The shared registry's life cycle (issue 17) against the real local registry (chalicelib/local/registry.py,
Debian's docker-registry on 127.0.0.1) and the real engine: the scheduled cleanup deletes what the TTL
expires there and a later run rebuilds it; the base image is pushed by the first worker and pulled by digest
by one that lacks it, and one it cannot verify is built instead.

Every image here is tagged under its own name (``skillharbor/base-regtest``, a fresh package set): the
shared ``skillharbor/base`` other tests use is only ever tagged from, never removed."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import docker.errors
import pytest
from moto import mock_aws

from chalicelib.local.child_stack import free_port
from chalicelib.packages.pins import closure_digest
from chalicelib.runner import builder, engine, registry
from chalicelib.runner.jobs import CleanupJob, RunJob
from chalicelib.runner.registry_http import HttpManifests, manifest_url
from chalicelib.runner.spec import RunStatus
from chalicelib.settings import get_settings
from wheel_support import make_wheel, pin_for

pytestmark = pytest.mark.docker

BASE_TAG = "skillharbor/base-regtest:latest"
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
#: only what was last used before 2000 is expired: other tests' images on this engine are never candidates
TTL_DAYS = (datetime.now(UTC) - LONG_AGO).days - 30


@pytest.fixture(scope="module")
def local_registry() -> Iterator[str]:
    from chalicelib.local.registry import RegistryNotAvailable, start_registry

    try:
        started = start_registry(free_port())
    except RegistryNotAvailable as missing:
        pytest.skip(str(missing))
    yield started.address
    started.stop()


@pytest.fixture
def stores(monkeypatch) -> Iterator[Any]:
    """The images table (image records, the base image's record) in moto."""
    from chalicelib.local.provision import create_tables
    from chalicelib.store import aws as aws_clients
    from chalicelib.store.images import ImageStore
    from chalicelib.store.platform import PlatformStore

    monkeypatch.setenv("SKILLHARBOR_IMAGES_TABLE", "regtest-images")
    monkeypatch.delenv("SKILLHARBOR_AWS_ENDPOINT_URL", raising=False)
    aws_clients.reset_clients()
    with mock_aws():
        create_tables(boto3.client("dynamodb", region_name=get_settings().region), get_settings(), only=("images_table",))
        yield type("Stores", (), {"images": ImageStore(), "platform": PlatformStore()})
    aws_clients.reset_clients()


@pytest.fixture
def settings(local_registry, docker_client, base_image) -> Iterator[Any]:
    """The worker's settings: the local registry, and a base tag of this test's own (a copy of the shared base)."""
    docker_client.images.get(base_image.tag).tag(*BASE_TAG.split(":"))
    yield get_settings().model_copy(update={"registry": local_registry, "base_image_tag": BASE_TAG})
    _untag(docker_client, BASE_TAG)
    for name in docker_client.images.get(base_image.tag).attrs.get("RepoDigests") or []:
        if name.startswith(f"{local_registry}/"):  # what the push and pull here named the shared base: only those
            _untag(docker_client, name)


def _untag(client: Any, tag: str) -> None:
    try:
        client.api.remove_image(tag, noprune=False)  # only this name: the image stays while the shared tag names it
    except Exception:
        pass


def _engine(settings: Any, digests: Any = None) -> Any:
    from chalicelib.runner.worker import DockerEngine

    return DockerEngine(settings, pool_enabled=False, base_digests=digests)


def _status(url: str) -> int:
    request = urllib.request.Request(url, headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture
def package_set(tmp_path, docker_client) -> Iterator[list[Any]]:
    wheel = make_wheel(tmp_path, extra={"demo_tool/regtest.py": "EXPIRY = True\n"})
    pin = pin_for(wheel)
    house = builder.Wheelhouse(Path(get_settings().cache_dir) / "wheelhouse")
    house.path_for(pin).parent.mkdir(parents=True, exist_ok=True)
    house.path_for(pin).write_bytes(wheel.read_bytes())
    yield [pin]
    for image in docker_client.images.list(filters={"label": f"skillharbor.closure={closure_digest([pin])}"}):
        for name in [*image.tags, *(image.attrs.get("RepoDigests") or [])]:  # tags and the registry's digest names
            _untag(docker_client, name)


def _worker(worker_engine: Any, stores: Any) -> Any:
    from chalicelib.runner.worker import RunnerWorker

    return RunnerWorker(worker_engine, sqs=None, queue_url="", images=stores.images, skills=None, orchestrator=None,
                        runs=object(), results=object(), platform=stores.platform, secret="x" * 32)  # fmt: skip


def test_cleanup_deletes_the_expired_image_from_the_registry_and_a_later_run_rebuilds_it(settings, stores, package_set, docker_client):
    worker_engine = _engine(settings)
    try:
        built = worker_engine.build(package_set)
        assert built.built and built.registry_digest.startswith("sha256:")
        stores.images.record_image(built.tag, image_id=built.image_id, pins=[p.model_dump() for p in package_set],
                                   registry_digest=built.registry_digest, last_used=LONG_AGO.isoformat())  # fmt: skip
        url = manifest_url(settings.registry, built.tag, built.registry_digest)
        assert _status(url) == 200

        worker = _worker(worker_engine, stores)
        worker._cleanup(CleanupJob(ttl_days=TTL_DAYS, dry_run=True))
        assert _status(url) == 200 and worker_engine.image_exists(built.tag)  # a dry run deletes nothing

        worker._cleanup(CleanupJob(ttl_days=TTL_DAYS))
        assert _status(url) == 404  # the registry no longer serves it
        assert not worker_engine.image_exists(built.tag)
        with pytest.raises(docker.errors.ImageNotFound):  # gone from disk, not only untagged: the push's digest name went too
            docker_client.images.get(built.image_id)
        assert stores.images.get_image(built.tag) is None  # removed here too: its record goes

        job = RunJob(skill_id="demo", version="1", image_tag=built.tag, pins=package_set, entrypoint="main",
                     code="import demo_tool.regtest\ndef main():\n    return demo_tool.regtest.EXPIRY\n")  # fmt: skip
        result = worker.execute_run(job)
        assert result.status == RunStatus.OK and result.output is True, result
        assert result.notes == ["image rebuilt from the pins on this host"]  # nothing to pull any more
        again = stores.images.get_image(built.tag)
        assert again["registry_digest"].startswith("sha256:") and again["registry_digest"] != built.registry_digest
        assert _status(manifest_url(settings.registry, built.tag, again["registry_digest"])) == 200  # pushed again
    finally:
        worker_engine.close()


def test_a_registry_that_is_down_during_cleanup_keeps_the_record_for_the_next_one(settings, stores, package_set, docker_client):
    worker_engine = _engine(settings)
    try:
        built = worker_engine.build(package_set)
        stores.images.record_image(built.tag, image_id=built.image_id, registry_digest=built.registry_digest,
                                   last_used=LONG_AGO.isoformat())  # fmt: skip
        worker_engine.settings = settings.model_copy(update={"registry": f"127.0.0.1:{free_port()}"})
        _worker(worker_engine, stores)._cleanup(CleanupJob(ttl_days=TTL_DAYS))
        record = stores.images.get_image(built.tag)
        assert record["registry_digest"] == built.registry_digest and "failed" in record["registry_delete_error"]
        assert not worker_engine.image_exists(built.tag)  # this host's copy went as usual

        worker_engine.settings = settings  # the registry is back: the next cleanup finishes the job
        _worker(worker_engine, stores)._cleanup(CleanupJob(ttl_days=TTL_DAYS))
        assert _status(manifest_url(settings.registry, built.tag, built.registry_digest)) == 404
        assert stores.images.get_image(built.tag) is None
    finally:
        worker_engine.close()


def test_removing_an_image_on_request_deletes_it_from_the_registry_too(settings, stores, package_set, docker_client):
    from chalicelib.runner.jobs import RemoveJob

    worker_engine = _engine(settings)
    try:
        built = worker_engine.build(package_set)
        stores.images.record_image(built.tag, image_id=built.image_id, registry_digest=built.registry_digest)
        _worker(worker_engine, stores)._remove(RemoveJob(image_tag=built.tag, requested_by="admin"))
        assert _status(manifest_url(settings.registry, built.tag, built.registry_digest)) == 404  # no orphan left there
        assert stores.images.get_image(built.tag) is None and not worker_engine.image_exists(built.tag)
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(built.image_id)
    finally:
        worker_engine.close()


def test_the_base_image_is_pushed_by_the_first_worker_and_pulled_by_digest_by_one_that_lacks_it(settings, stores, docker_client):
    first = _engine(settings, stores.platform)
    base = first.ensure_base()
    assert first.base_source == "present"
    from chalicelib.runner.base_image import layer_key

    recorded = stores.platform.base_digest(settings.registry, BASE_TAG, layer_key())
    assert recorded["image_id"] == base.image_id
    assert HttpManifests(settings.registry).exists(BASE_TAG, recorded["digest"])

    _untag(docker_client, BASE_TAG)  # the second worker's engine does not have it
    second = _engine(settings, stores.platform)
    pulled = second.ensure_base()
    assert second.base_source == "pulled" and pulled.image_id == base.image_id  # byte for byte the first one's
    assert f"{settings.registry}/skillharbor/base-regtest@{recorded['digest']}" in docker_client.images.get(BASE_TAG).attrs["RepoDigests"]
    assert stores.platform.base_digest(settings.registry, BASE_TAG, layer_key()) == recorded  # the first record stays


def test_a_base_image_digest_that_does_not_verify_is_not_used_and_the_base_is_built(settings, stores, docker_client, package_set):
    from chalicelib.runner.base_image import layer_key

    # a genuine digest in the base's repository, of another image (a package-set image on the base)
    impostor_engine = _engine(settings)
    try:
        built = impostor_engine.build(package_set)
    finally:
        impostor_engine.close()
    docker_client.images.get(built.tag).tag("skillharbor/base-regtest", "impostor")
    try:
        digest = registry.push(docker_client, "skillharbor/base-regtest:impostor", settings.registry)
    finally:
        _untag(docker_client, "skillharbor/base-regtest:impostor")
    stores.platform.record_base_digest(settings.registry, BASE_TAG, layer_key(), digest=digest, image_id=built.image_id)

    _untag(docker_client, BASE_TAG)
    worker_engine = _engine(settings, stores.platform)
    base = worker_engine.ensure_base()
    assert worker_engine.base_source == "built"
    image = docker_client.images.get(BASE_TAG)
    assert image.id == base.image_id != built.image_id and image.labels[engine.ROLE_LABEL] == "base"
    replaced = stores.platform.base_digest(settings.registry, BASE_TAG, layer_key())
    assert replaced["image_id"] == base.image_id and replaced["digest"] != digest  # the unusable record is replaced
