"""Fixtures for tests against the real Docker engine.

Skipped when the engine is unreachable, unless SKILLHARBOR_REQUIRE_DOCKER is
set (CI): then an unreachable engine fails every test here.
The base image is built (about two minutes the first time) or reused once
per session.
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Any, Callable

import pytest

from chalicelib.errors import RunnerUnavailable
from chalicelib.runner import engine, runtimes, sandbox
from chalicelib.runner.base_image import BaseImageInfo, ensure_base_image
from chalicelib.runner.spec import RunLimits, RunRequest, RunResult, Runtime
from chalicelib.settings import get_settings

#: set in the test process; must never be visible inside a container
HOST_CANARY_NAME = "SKILLHARBOR_TEST_HOST_CANARY"
HOST_CANARY_VALUE = "host-secret-7f3c"


def docker_required() -> bool:
    return os.environ.get("SKILLHARBOR_REQUIRE_DOCKER", "") not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def docker_client() -> Any:
    try:
        client = engine.connect()
    except RunnerUnavailable as exc:
        if docker_required():
            pytest.fail(f"SKILLHARBOR_REQUIRE_DOCKER is set but the Docker engine is unreachable: {exc.message}")
        pytest.skip(f"Docker engine unreachable ({exc.message}); set SKILLHARBOR_REQUIRE_DOCKER=1 to make this fail")
    yield client
    client.close()


def runsc_expected() -> bool:
    """Should gVisor be registered here? SKILLHARBOR_REQUIRE_RUNSC says so (1/0); otherwise yes on a CI host
    where ``make system-deps`` could install and register it (root with apt-get)."""
    flag = os.environ.get("SKILLHARBOR_REQUIRE_RUNSC")
    if flag is not None:
        return flag not in ("", "0", "false", "no")
    return docker_required() and os.geteuid() == 0 and shutil.which("apt-get") is not None


@pytest.fixture(scope="session")
def runsc_registered(docker_client: Any) -> bool:
    return Runtime.RUNSC.value in runtimes.registered(docker_client)


#: the runtimes the isolation tests run under (each attack class runs under both)
RUNTIMES = [Runtime.RUNC.value, Runtime.RUNSC.value]


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest, runsc_registered: bool) -> Runtime:
    """Each runtime in turn; runsc is skipped when the engine lacks it, and fails the test when it should be
    there (see ``runsc_expected``)."""
    chosen = Runtime(request.param)
    if chosen == Runtime.RUNSC and not runsc_registered:
        if runsc_expected():
            pytest.fail("gVisor (runsc) is not registered with the Docker engine although `make system-deps` could "
                        "install it here (root with apt-get): run `sudo make gvisor`, or set SKILLHARBOR_REQUIRE_RUNSC=0")
        pytest.skip("gVisor (runsc) is not registered with this Docker engine (sudo make gvisor registers it)")
    return chosen


@pytest.fixture(scope="session")
def offline_pypi() -> Callable[[str], None]:
    """What a test does when PyPI cannot be reached: fail in CI (it must be reachable there), else skip."""

    def handle(message: str) -> None:
        if docker_required():
            pytest.fail(f"PyPI unreachable while SKILLHARBOR_REQUIRE_DOCKER is set: {message}")
        pytest.skip(f"PyPI unreachable: {message} (set SKILLHARBOR_REQUIRE_DOCKER=1 to make this fail)")

    return handle


@pytest.fixture(scope="session")
def base_image(docker_client: Any) -> BaseImageInfo:
    return ensure_base_image(docker_client, get_settings())


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker: needs the real Docker engine")


@pytest.fixture(scope="session", autouse=True)
def host_canary() -> tuple[str, str]:
    os.environ[HOST_CANARY_NAME] = HOST_CANARY_VALUE
    return HOST_CANARY_NAME, HOST_CANARY_VALUE


RunCode = Callable[..., RunResult]


@pytest.fixture(scope="session")
def run_code(docker_client: Any, base_image: BaseImageInfo) -> RunCode:
    """run_code(code, inputs=None, *, entrypoint="main", image=None, files=None, runtime=runc, **limits)"""

    def _run(
        code: str,
        inputs: dict[str, Any] | None = None,
        *,
        entrypoint: str = "main",
        image: str | None = None,
        files: dict[str, str] | None = None,
        runtime: Runtime = Runtime.RUNC,
        **limits: Any,
    ) -> RunResult:
        request = RunRequest(
            image=image or base_image.tag,
            code=code,
            entrypoint=entrypoint,
            inputs=inputs or {},
            files=files or {},
            limits=RunLimits(**{"timeout_seconds": 10, **limits}),
            runtime=runtime,
        )
        return sandbox.run(docker_client, request)

    return _run


@pytest.fixture(autouse=True)
def _no_leftover_containers(request: pytest.FixtureRequest) -> Any:
    """Every execution removes its container: check after each test."""
    yield
    if "docker_client" not in request.fixturenames:
        return
    client = request.getfixturevalue("docker_client")
    # only this test process's containers: a bench or a second test run may share the engine
    mine = [f"{engine.ROLE_LABEL}=run", f"{engine.CREATOR_LABEL}={engine.creator()}"]
    deadline = time.monotonic() + 15  # the runner removes cold containers just after answering
    while (leftovers := client.api.containers(all=True, filters={"label": mine})) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftovers == [], f"containers left behind: {[c['Id'][:12] for c in leftovers]}"


@pytest.fixture
def docker_stack(monkeypatch: pytest.MonkeyPatch, docker_client: Any) -> Any:
    """The whole stack in moto, with a runner worker driving this machine's Docker engine."""
    from chalicelib.runner.worker import DockerEngine
    from stack_support import running_stack

    with running_stack(monkeypatch, DockerEngine(get_settings())) as stack:
        yield stack
