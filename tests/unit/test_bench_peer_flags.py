"""The peers' benchmark passes skillharbor's isolation flags to the peers that take
docker-py's ``containers.create`` arguments: they must stay equal to the runner's own."""

from __future__ import annotations

import docker
from docker.models.containers import _create_container_args

from bench.peers.hardening import docker_py_flags
from chalicelib.runner import sandbox
from chalicelib.runner.spec import RunLimits, RunRequest

API_VERSION = "1.41"  # no engine is contacted: host configs are built locally for this API version


def _as_created(flags: dict) -> dict:
    """What ``DockerClient.containers.create(**flags)`` sends to the engine."""
    return _create_container_args({"image": "skillharbor/base:latest", "version": API_VERSION, **flags})


def test_the_benchmark_flags_are_the_runners_flags() -> None:
    limits = RunLimits(memory_mb=192, cpus=0.25, pids=64, tmpfs_mb=16)
    request = RunRequest(image="skillharbor/base:latest", code="", limits=limits)
    created = _as_created(docker_py_flags(limits, user=sandbox.SKILL_USER, environment=sandbox.SAFE_ENVIRONMENT))

    expected = sandbox.host_config(docker.APIClient(version=API_VERSION), request)
    assert expected.pop("CapAdd") == sandbox.HARNESS_CAPABILITIES  # only skillharbor's harness uses (and drops) these
    assert created["host_config"] == expected
    assert created["user"] == sandbox.SKILL_USER
    assert created["working_dir"] == "/tmp"
    assert created["environment"] == sandbox.SAFE_ENVIRONMENT
