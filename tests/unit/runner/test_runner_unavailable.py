"""An unreachable Docker engine gives a clear runner_unavailable (no engine needed)."""

from __future__ import annotations

import docker
import pytest

from chalicelib.errors import RunnerUnavailable
from chalicelib.packages.pins import Pin
from chalicelib.runner import builder, cleanup, engine, sandbox
from chalicelib.runner.base_image import BaseImageInfo
from chalicelib.runner.spec import RunRequest, RunStatus


@pytest.fixture
def dead_client(tmp_path):
    return docker.DockerClient(base_url=f"unix://{tmp_path}/no-docker.sock", version="1.41", timeout=5)


def test_connect_reports_runner_unavailable(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    with pytest.raises(RunnerUnavailable, match="Docker engine unreachable"):
        engine.connect()


def test_run_returns_runner_unavailable(dead_client):
    result = sandbox.run(dead_client, RunRequest(image="skillharbor/base:latest", code="def main():\n    return 1\n"))
    assert result.status == RunStatus.RUNNER_UNAVAILABLE and not result.success
    assert "Docker engine unavailable" in result.error


def test_build_raises_runner_unavailable(dead_client):
    base = BaseImageInfo(tag="skillharbor/base:latest", image_id="sha256:" + "a" * 64, python_version="3.11",
                         manylinux_tag="manylinux_2_36_x86_64", source="offline")
    pin = Pin(name="six", version="1.16.0", sha256="b" * 64, filename="six-1.16.0-py2.py3-none-any.whl", url="https://x/six.whl")
    with pytest.raises(RunnerUnavailable):
        builder.build_image(dead_client, base, [pin])


def test_cleanup_listing_raises_runner_unavailable(dead_client):
    with pytest.raises(RunnerUnavailable):
        cleanup.list_managed_images(dead_client)


def test_find_image_raises_runner_unavailable(dead_client):
    with pytest.raises(RunnerUnavailable):
        builder.find_image(dead_client, "skillharbor/env:any")
