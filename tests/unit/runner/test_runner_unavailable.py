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


class _Images:
    def record_image(self, *args, **kwargs):
        raise AssertionError("nothing was built")

    def touch(self, tag):
        pass

    def get_image(self, tag):
        return None  # no record of a registry copy: the worker rebuilds


class _Engine:
    """Engine doubles for the worker's retry decisions (the real engine is tested in tests/docker)."""

    def __init__(self, run_result=None, build_error=None):
        self.run_result, self.build_error, self.runs = run_result, build_error, 0

    def ensure_base(self):
        return BaseImageInfo(tag="skillharbor/base:latest", image_id="sha256:" + "a" * 64, python_version="3.11",
                             manylinux_tag="manylinux_2_36_x86_64", source="offline")  # fmt: skip

    def image_exists(self, tag):
        return self.build_error is None

    def build(self, pins):
        raise self.build_error

    def run(self, request):
        self.runs += 1
        return self.run_result


def _worker(engine):
    from chalicelib.runner.worker import RunnerWorker

    return RunnerWorker(engine, sqs=None, queue_url="", images=_Images(), skills=None, orchestrator=None)


def _job(**fields):
    from chalicelib.runner.jobs import RunJob

    return RunJob(**{"skill_id": "s", "version": "v", "image_tag": None, "pins": [], "code": "", "entrypoint": "execute", **fields})


def test_an_engine_failure_before_the_start_is_retried_on_both_paths():
    before_start = sandbox.unavailable(RunRequest(image="x", code=""), OSError("socket gone"), 0.0)
    worker = _worker(_Engine(run_result=before_start))
    for retry_started in (True, False):
        with pytest.raises(RunnerUnavailable):
            worker.execute_run(_job(), retry_started=retry_started)
    assert worker.execute_run(_job(), last_attempt=True).status == RunStatus.RUNNER_UNAVAILABLE


def test_an_engine_failure_after_the_start_is_not_retried_on_the_direct_path():
    after_start = sandbox.unavailable(RunRequest(image="x", code=""), OSError("socket gone"), 0.0, may_have_run=True)
    worker = _worker(_Engine(run_result=after_start))
    with pytest.raises(RunnerUnavailable):
        worker.execute_run(_job())  # the queue path retries, as it always has
    result = worker.execute_run(_job(), retry_started=False)  # direct: answered, never resent
    assert result.status == RunStatus.RUNNER_UNAVAILABLE and result.may_have_run
    assert "may_have_run" not in result.model_dump()  # runner-internal


def test_a_failed_rebuild_of_a_removed_image_ends_the_run_with_the_reason():
    from chalicelib.errors import BuildFailed

    engine = _Engine(build_error=BuildFailed("six==1.16.0: sha256 mismatch"))
    pin = Pin(name="six", version="1.16.0", sha256="b" * 64, direct=True)
    result = _worker(engine).execute_run(_job(image_tag="skillharbor/env:gone", pins=[pin]))
    assert result.status == RunStatus.RUNNER_UNAVAILABLE and "rebuilding it failed: six==1.16.0: sha256 mismatch" in result.error
    assert engine.runs == 0


def test_a_missing_runtime_ends_the_run_at_once_and_is_never_retried():
    """Fail closed: the job asked for gVisor and this engine lacks it; retrying (or reconnecting) cannot help."""
    from chalicelib.runner.spec import Runtime

    missing = sandbox.runtime_missing(RunRequest(image="x", code="", runtime=Runtime.RUNSC), 0.0)
    engine = _Engine(run_result=missing)
    result = _worker(engine).execute_run(_job(runtime="runsc"))
    assert engine.runs == 1 and result.status == RunStatus.RUNNER_UNAVAILABLE
    assert "require the runsc runtime" in result.error and "runtime_missing" not in result.model_dump()
