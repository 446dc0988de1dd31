"""Images shared through a registry (issue 17): pushed after a build, pulled by digest and verified where
missing, and a registry that is down or serves another image never yields an unverified run."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from chalicelib.local.child_stack import free_port
from chalicelib.runner import builder, engine, registry
from chalicelib.runner.jobs import RunJob
from chalicelib.runner.spec import RunStatus
from chalicelib.settings import get_settings
from tests.wheel_support import make_wheel, pin_for

pytestmark = pytest.mark.docker

REGISTRY_BINARY = shutil.which("docker-registry") or "/usr/bin/docker-registry"


@pytest.fixture(scope="module")
def local_registry(tmp_path_factory) -> Iterator[str]:
    """The CNCF distribution registry (Debian's docker-registry) on 127.0.0.1, storage in a temporary folder."""
    if not os.path.exists(REGISTRY_BINARY):
        message = "docker-registry is not installed (make system-deps installs it as root with apt)"
        if os.environ.get("SKILLHARBOR_REQUIRE_DOCKER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    process = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"http://{address}/v2/", timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"the local registry did not start: {process.stderr.read().decode()[-500:]}")
            time.sleep(0.1)
    yield address
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def engine_with_registry(local_registry, monkeypatch) -> Any:
    from chalicelib.runner.worker import DockerEngine

    monkeypatch.setenv("SKILLHARBOR_REGISTRY", local_registry)
    worker_engine = DockerEngine(get_settings(), pool_enabled=False)
    yield worker_engine
    worker_engine.close()


@pytest.fixture
def demo_set(tmp_path, monkeypatch) -> Any:
    """A one-wheel package set whose wheel sits in the worker's wheelhouse; its image removed afterwards."""
    wheel = make_wheel(tmp_path)
    pin = pin_for(wheel)
    house = builder.Wheelhouse(Path(get_settings().cache_dir) / "wheelhouse")
    house.path_for(pin).parent.mkdir(parents=True, exist_ok=True)
    house.path_for(pin).write_bytes(wheel.read_bytes())
    yield [pin]
    from chalicelib.packages.pins import closure_digest

    client = engine.connect()
    for image in client.images.list(filters={"label": f"skillharbor.closure={closure_digest([pin])}"}):
        for name in [*image.tags, *(image.attrs.get("RepoDigests") or [])]:  # a push or pull's digest names keep it on disk
            try:
                client.images.remove(name, noprune=False)
            except Exception:
                pass


def test_an_image_built_on_one_host_is_pulled_by_digest_on_another(engine_with_registry, demo_set, docker_client, run_code):
    built = engine_with_registry.build(demo_set)
    assert built.built and built.registry_digest.startswith("sha256:")
    docker_client.images.remove(built.tag, force=True)  # "another host": the image is not here
    assert not engine_with_registry.image_exists(built.tag)

    pulled = engine_with_registry.pull(built.tag, built.registry_digest, demo_set)
    assert pulled.pulled and pulled.image_id == built.image_id  # the same image, byte for byte
    result = run_code("import demo_tool\ndef main():\n    return demo_tool.__name__\n", image=built.tag)
    assert result.status == RunStatus.OK and result.output == "demo_tool"


def test_a_worker_missing_the_image_pulls_it_and_says_so_instead_of_building(engine_with_registry, demo_set, docker_client):
    from chalicelib.runner.worker import RunnerWorker

    built = engine_with_registry.build(demo_set)
    docker_client.images.remove(built.tag, force=True)

    class Images:  # the images table's record of the build, as the building worker left it
        def get_image(self, tag: str) -> dict[str, Any] | None:
            return {"tag": tag, "registry_digest": built.registry_digest} if tag == built.tag else None

        def touch(self, tag: str) -> None:
            pass

        def record_image(self, *args: Any, **kwargs: Any) -> None:
            raise AssertionError("a pulled image is not rebuilt")

    worker = RunnerWorker(engine_with_registry, sqs=None, queue_url="", images=Images(), skills=None,
                          orchestrator=None, runs=object(), secret="x" * 32)  # fmt: skip
    job = RunJob(skill_id="demo", version="1", image_tag=built.tag, pins=demo_set, code="import demo_tool\ndef main():\n    return 'ok'\n",
                 entrypoint="main")  # fmt: skip
    result = worker.execute_run(job)
    assert result.status == RunStatus.OK, result
    assert result.notes[0] == f"image pulled from the registry by digest {built.registry_digest}"


def test_a_registry_serving_another_image_is_refused_and_nothing_is_tagged(engine_with_registry, demo_set, docker_client, local_registry):
    built = engine_with_registry.build(demo_set)
    # the env repository of the registry also holds the base image: a genuine digest there, the wrong content
    docker_client.images.get(get_settings().base_image_tag).tag("skillharbor/env", "impostor")
    try:
        impostor = registry.push(docker_client, "skillharbor/env:impostor", local_registry)
    finally:
        docker_client.images.remove("skillharbor/env:impostor", noprune=True)
    docker_client.images.remove(built.tag, force=True)
    with pytest.raises(registry.RegistryError, match="is not the one expected .skillharbor.base, skillharbor.closure differ"):
        engine_with_registry.pull(built.tag, impostor, demo_set)
    assert not engine_with_registry.image_exists(built.tag)
    assert docker_client.images.get(get_settings().base_image_tag)  # the refused pull removed nothing of ours


def test_a_registry_that_is_down_is_reported_and_the_digest_must_be_well_formed(engine_with_registry, demo_set, monkeypatch):
    built = engine_with_registry.build(demo_set)
    engine_with_registry.settings = engine_with_registry.settings.model_copy(update={"registry": f"127.0.0.1:{free_port()}"})
    engine_with_registry.remove(built.tag)
    with pytest.raises(registry.RegistryError, match="pull of"):
        engine_with_registry.pull(built.tag, built.registry_digest, demo_set)
    with pytest.raises(registry.RegistryError, match="not a sha256 digest"):
        engine_with_registry.pull(built.tag, "latest", demo_set)
    assert not engine_with_registry.image_exists(built.tag)


@pytest.mark.parametrize("trouble", ["registry_down", "other_digest"])
def test_a_run_whose_pull_fails_or_is_not_verified_rebuilds_from_the_pins(engine_with_registry, demo_set, docker_client, local_registry, trouble):
    """The run still happens, on an image built here from the pins, and says why; the unverified image never runs."""
    from chalicelib.runner.worker import RunnerWorker

    built = engine_with_registry.build(demo_set)
    digest = built.registry_digest
    if trouble == "other_digest":  # a genuine digest in the registry, of another image (the base)
        docker_client.images.get(get_settings().base_image_tag).tag("skillharbor/env", "impostor")
        try:
            digest = registry.push(docker_client, "skillharbor/env:impostor", local_registry)
        finally:
            docker_client.images.remove("skillharbor/env:impostor", noprune=True)
    else:
        engine_with_registry.settings = engine_with_registry.settings.model_copy(update={"registry": f"127.0.0.1:{free_port()}"})
    docker_client.images.remove(built.tag, force=True)
    recorded: list[str] = []

    class Images:
        def get_image(self, tag: str) -> dict[str, Any] | None:
            return {"tag": tag, "registry_digest": digest} if tag == built.tag else None

        def touch(self, tag: str) -> None:
            pass

        def record_image(self, tag: str, **fields: Any) -> None:
            recorded.append(tag)

    worker = RunnerWorker(engine_with_registry, sqs=None, queue_url="", images=Images(), skills=None,
                          orchestrator=None, runs=object(), secret="x" * 32)  # fmt: skip
    job = RunJob(skill_id="demo", version="1", image_tag=built.tag, pins=demo_set, entrypoint="main",
                 code="import demo_tool\ndef main():\n    return demo_tool.__name__\n")  # fmt: skip
    result = worker.execute_run(job)
    assert result.status == RunStatus.OK and result.output == "demo_tool", result
    assert result.notes[0].startswith("registry pull failed (") and result.notes[1] == "image rebuilt from the pins on this host"
    assert recorded == [built.tag]
    from chalicelib.packages.pins import closure_digest

    image = docker_client.images.get(built.tag)  # built here from the pins, not the impostor the registry served
    assert image.labels["skillharbor.closure"] == closure_digest(list(demo_set))
