"""The doctor against the real engine, and image expiry."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.runner import cleanup, doctor, engine

pytestmark = pytest.mark.docker


def test_doctor_finds_every_property_enforced(docker_client, base_image):
    checks = doctor.run_checks(docker_client, base_image.tag)
    failing = [c.to_dict() for c in checks if c.required and not c.enforced]
    assert failing == []
    names = {c.name for c in checks}
    assert {"network none", "read-only root", "memory limit enforced", "pids limit enforced", "non-root",
            "no capabilities", "seccomp", "no-new-privileges", "/dev/shm absent", "seccomp: socket families",
            "loopback sockets work", "seccomp: io_uring refused", "no message queues", "init in the image",
            "skill files read-only"} <= names


def test_doctor_cli_json(docker_client, base_image, capsys):
    code = doctor.main(["--json"], connect=lambda: docker_client)
    out = capsys.readouterr().out
    assert code == 0 and '"ok": true' in out


@pytest.fixture
def fake_env_image(docker_client, base_image):
    """A cheap image labelled like an env image (one LABEL step on the base)."""
    tags = []

    def make() -> str:
        tag = f"skillharbor/env:test-{uuid.uuid4().hex[:12]}"
        dockerfile = f'FROM {base_image.tag}\nLABEL skillharbor.managed="true" skillharbor.role="env" skillharbor.test="{tag}"\n'
        engine.build_image(docker_client, engine.tar_context({"Dockerfile": dockerfile}), tag)
        tags.append(tag)
        return tag

    yield make
    for tag in tags:
        try:
            docker_client.images.remove(tag, force=True)
        except Exception:
            pass


def _exists(client, tag: str) -> bool:
    try:
        client.images.get(tag)
        return True
    except Exception:
        return False


def test_images_past_the_ttl_are_removed_and_fresh_ones_kept(docker_client, base_image, fake_env_image):
    stale, fresh = fake_env_image(), fake_env_image()
    now = datetime.now(timezone.utc)
    # the base image is given an ancient last use: it must still never be removed
    # other env images on this host (e.g. from earlier builds) count as just used
    last_used = {tag: now for image in cleanup.list_managed_images(docker_client) for tag in image.tags}
    last_used |= {stale: now - timedelta(days=8), fresh: now - timedelta(hours=1), base_image.tag: now - timedelta(days=999)}

    planned = cleanup.remove_unused_images(docker_client, last_used, timedelta(days=7), now, dry_run=True)
    assert planned == [stale]
    assert _exists(docker_client, stale)

    removed = cleanup.remove_unused_images(docker_client, last_used, timedelta(days=7), now)
    assert removed == [stale]
    assert not _exists(docker_client, stale)
    assert _exists(docker_client, fresh) and _exists(docker_client, base_image.tag)
    roles = {image.role for image in cleanup.list_managed_images(docker_client)}
    assert "base" in roles


def test_image_used_by_a_running_container_is_kept(docker_client, fake_env_image):
    tag = fake_env_image()
    container = docker_client.containers.run(tag, ["python3", "-c", "import time; time.sleep(60)"],
                                             detach=True, network_mode="none")
    try:
        removed = cleanup.remove_unused_images(
            docker_client, {tag: datetime(2000, 1, 1, tzinfo=timezone.utc)}, timedelta(days=7)
        )
        assert tag not in removed and _exists(docker_client, tag)
    finally:
        container.remove(force=True)


def test_run_containers_of_a_dead_runner_are_removed_when_a_runner_connects(docker_client, base_image):
    import socket
    import subprocess

    from chalicelib.runner.worker import DockerEngine
    from chalicelib.settings import get_settings

    dead = subprocess.Popen(["true"])
    dead.wait()
    labels = {engine.MANAGED_LABEL: "true", engine.ROLE_LABEL: "run", engine.CREATOR_LABEL: f"{socket.gethostname()}:{dead.pid}"}
    alive = dict(labels, **{engine.CREATOR_LABEL: f"{socket.gethostname()}:1"})  # pid 1 lives: not an orphan
    orphan = docker_client.api.create_container(base_image.tag, command=["true"], labels=labels)["Id"]
    kept = docker_client.api.create_container(base_image.tag, command=["true"], labels=alive)["Id"]
    # still running: left alone (its harness ends at the job's timeout; a later sweep removes it)
    running = docker_client.api.create_container(base_image.tag, command=["python3", "-c", "import time; time.sleep(60)"],
                                                 labels=labels)["Id"]  # fmt: skip
    docker_client.api.start(running)
    try:
        DockerEngine(get_settings(), pool_enabled=False)._docker()
        remaining = {c["Id"] for c in docker_client.api.containers(all=True, filters={"label": f"{engine.ROLE_LABEL}=run"})}
        assert orphan not in remaining and kept in remaining and running in remaining
    finally:
        for container_id in (orphan, kept, running):
            try:
                docker_client.api.remove_container(container_id, force=True)
            except Exception:
                pass
