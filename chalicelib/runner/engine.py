"""Small helpers over the docker SDK shared by the runner modules.

This package is the only place in the project that imports ``docker``.
"""

from __future__ import annotations

import io
import json
import os
import socket
import tarfile
from typing import Any, Iterable

import docker
import docker.errors
import requests.exceptions

from chalicelib.errors import BuildFailed, RunnerUnavailable

#: label every image we create carries; cleanup only ever looks at these
MANAGED_LABEL = "skillharbor.managed"
ROLE_LABEL = "skillharbor.role"
#: ``host:pid`` of the process that created a container, so one runner (or test run) can tell its own apart
CREATOR_LABEL = "skillharbor.creator"


def creator() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"

#: errors that mean "the engine cannot be reached", not "the request was bad"
UNREACHABLE_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    ConnectionError,
    FileNotFoundError,  # unix socket missing
)


def connect(timeout: int = 60) -> docker.DockerClient:
    """A client for the engine named by DOCKER_HOST (or the local socket).

    Raises RunnerUnavailable with the reason when the engine cannot be reached.
    """
    try:
        client = docker.from_env(version="auto", timeout=timeout)
        client.ping()
    except docker.errors.DockerException as exc:
        raise RunnerUnavailable(f"Docker engine unreachable: {exc}") from exc
    except UNREACHABLE_ERRORS as exc:
        raise RunnerUnavailable(f"Docker engine unreachable: {exc}") from exc
    return client


def is_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` says the engine is away (vs. a rejected request)."""
    if isinstance(exc, UNREACHABLE_ERRORS):
        return True
    if isinstance(exc, docker.errors.APIError):
        return False
    if isinstance(exc, docker.errors.DockerException):
        # raised by from_env/transport setup: "Error while fetching server API version"
        return True
    return False


def api_with_timeout(client: docker.DockerClient, timeout: float) -> docker.APIClient:
    """The client's low-level API with another HTTP timeout (shares its connection pool)."""
    # copy.copy would go through requests.Session.__getstate__ and drop docker's attributes
    api = object.__new__(type(client.api))
    api.__dict__.update(client.api.__dict__)
    api.timeout = timeout
    return api


def tar_context(files: dict[str, bytes | str], modes: dict[str, int] | None = None) -> bytes:
    """An in-memory build context (a tar) from name -> content."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in sorted(files.items()):
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = (modes or {}).get(name, 0o644)
            info.mtime = 0  # stable contexts give stable build-cache keys
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build_image(
    client: docker.DockerClient,
    context: bytes,
    tag: str,
    *,
    network_mode: str = "none",
    timeout: int = 900,
) -> tuple[str, list[str]]:
    """Build ``context`` (a tar holding a Dockerfile) and tag it.

    Returns (image id, build log lines). On failure raises BuildFailed with
    the log tail; docker tags only after a successful build, so a failure
    leaves no tag behind.
    """
    log: list[str] = []
    image_id: str | None = None
    error: str | None = None
    api = api_with_timeout(client, timeout)
    try:
        stream: Iterable[dict[str, Any]] = api.build(
            fileobj=io.BytesIO(context),
            custom_context=True,
            tag=tag,
            rm=True,
            forcerm=True,
            pull=False,
            network_mode=network_mode,
            decode=True,
        )
        for chunk in stream:
            if "stream" in chunk:
                log.extend(line for line in chunk["stream"].splitlines() if line.strip())
            if "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
            if "error" in chunk:
                error = chunk["error"].strip()
                log.append(f"ERROR: {error}")
    except docker.errors.APIError as exc:
        error = str(exc)
        log.append(f"ERROR: {error}")
    if error or not image_id:
        tail = "\n".join(log[-30:])
        raise BuildFailed(f"image build failed for {tag}: {error or 'no image produced'}", build_log_tail=tail)
    return image_id, log


def run_probe(client: docker.DockerClient, image: str, script: str) -> dict[str, Any]:
    """Run a short Python script in ``image`` (no network) and parse its JSON stdout."""
    raw = client.containers.run(
        image,
        ["python3", "-I", "-c", script],
        remove=True,
        network_mode="none",
        stdout=True,
        stderr=False,
    )
    return json.loads(raw.decode().strip().splitlines()[-1])
