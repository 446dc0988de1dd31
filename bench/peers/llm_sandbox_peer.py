"""llm-sandbox (PyPI ``llm-sandbox``), its Docker backend, in three modes.

* cold: a new ``SandboxSession`` per run (create + start a container, copy the
  code in, ``exec`` python on it); the session's close (stop, wait, remove)
  is left for after the answer;
* session: one session kept open, ``session.run`` per run (its reuse without
  a pool: every run is a new process in the same container);
* pool: ``create_pool_manager`` + ``PooledSandboxSession`` per run (its
  container pool: containers are handed out and returned, not replaced).

How it is pointed at skillharbor's image without a registry: a local image
is used as it is (``SandboxDockerSession._get_or_pull_image`` pulls only when
``images.get`` fails, and removes only an image it pulled or built itself).
``runtime_configs`` go to ``containers.create`` unchanged, so skillharbor's
flags are passed there, except those llm-sandbox cannot work with (see
``NOT_APPLIED``: found by running it, explained from its source).
"""

from __future__ import annotations

import copy
import time
from importlib.metadata import version
from typing import Any

from bench.peers.hardening import docker_py_flags
from bench.peers.variants import BENCH_LABEL, LABELS, RUN_ID, Variant
from bench.peers.workloads import Workload

VARIANT_LABEL = "skillharbor.bench.variant"

NOT_APPLIED = {
    "read-only root filesystem": "not set: llm-sandbox copies each run's code into the container with Docker's archive "
    "API (put_archive), which the engine refuses on a read-only root ('container rootfs is marked read-only'), and a "
    "tmpfs work directory is invisible to that API",
    "/tmp a noexec tmpfs": "not set, for the same reason (its work directory /sandbox is on the writable root)",
    "non-root user": "runs as root (uid 0, every capability dropped): the copied file is root-owned with mode 0600 and "
    "llm-sandbox's chown (an exec as root) needs CAP_CHOWN, which Docker does not give an exec in a container whose "
    "user is not root; as uid 10001 every run fails with 'Permission denied'",
}


def runtime_configs(limits: Any, site_packages: str, variant: str) -> dict[str, Any]:
    from chalicelib.runner import sandbox

    environment = {
        **sandbox.SAFE_ENVIRONMENT,
        # its pool runs code with a venv it creates from the system python: point that at the image's packages
        "PYTHONPATH": site_packages,
        # no network: its pool set-up's `pip install --upgrade pip` fails at once instead of retrying for ~9 s
        "PIP_NO_INDEX": "1",
    }
    flags = docker_py_flags(limits, user="root", environment=environment)
    for name in ("read_only", "tmpfs", "working_dir"):  # working_dir: its own workdir (/sandbox) is used for exec
        flags.pop(name)
    flags["command"] = ["sleep", "infinity"]  # the image has no CMD; llm-sandbox keeps the container running and execs in it
    flags["labels"] = {**LABELS, VARIANT_LABEL: variant}
    return flags


class _LlmSandbox(Variant):
    peer = "llm-sandbox"
    slug = "?"

    def __init__(self, workload: Workload, client: Any, limits: Any, site_packages: str):
        super().__init__(workload)
        self.client, self.timeout = client, limits.timeout_seconds
        self.configs = runtime_configs(limits, site_packages, self.slug)

    def session(self, **extra: Any) -> Any:
        from llm_sandbox import SandboxSession

        return SandboxSession(client=self.client, image=self.workload.image, lang="python", runtime_configs=copy.deepcopy(self.configs),
                              skip_environment_setup=True, execution_timeout=self.timeout, **extra)  # fmt: skip

    def result(self, output: Any) -> Any:
        if output.exit_code != 0:
            raise RuntimeError(f"llm-sandbox run exited {output.exit_code}: {output.stderr[-500:]}")
        return self.workload.decode(output.stdout)

    def idle_containers(self) -> list[str]:
        filters = {"label": [f"{BENCH_LABEL}={RUN_ID}", f"{VARIANT_LABEL}={self.slug}"], "status": "running"}
        return [c.id for c in self.client.containers.list(filters=filters)]

    def describe(self) -> dict[str, Any]:
        shown = {k: v for k, v in self.configs.items() if k != "labels"}
        return {"version": version("llm-sandbox"), "runtime_configs": shown,
                "session": "lang=python, skip_environment_setup=True (the image has the packages), "
                           f"execution_timeout={self.timeout:g} s, workdir /sandbox (its default)",
                "not applied": NOT_APPLIED}  # fmt: skip


class LlmSandboxCold(_LlmSandbox):
    mode, label, slug = "cold", "llm-sandbox new session", "llm_sandbox_cold"

    def run(self) -> Any:
        session = self.session()
        self.defer(session.close)  # stop + wait + remove: after the answer
        session.open()
        return self.result(session.run(self.workload.script))


class LlmSandboxSession(_LlmSandbox):
    mode, label, slug = "warm", "llm-sandbox kept session", "llm_sandbox_session"

    def open(self) -> None:
        self.kept = self.session()
        self.kept.open()

    def run(self) -> Any:
        return self.result(self.kept.run(self.workload.script))

    def close(self) -> None:
        super().close()
        if getattr(self, "kept", None) is not None:
            self.kept.close()


class LlmSandboxPool(_LlmSandbox):
    mode, label, slug = "warm", "llm-sandbox container pool", "llm_sandbox_pool"

    def __init__(self, workload: Workload, client: Any, limits: Any, site_packages: str, size: int = 1):
        super().__init__(workload, client, limits, site_packages)
        self.size = size

    def open(self) -> None:
        from llm_sandbox.pool import PoolConfig, create_pool_manager

        self.config = PoolConfig(min_pool_size=self.size, max_pool_size=self.size)
        self.pool = create_pool_manager(backend="docker", config=self.config, lang="python", image=self.workload.image,
                                        client=self.client, runtime_configs=copy.deepcopy(self.configs))  # fmt: skip
        deadline = time.monotonic() + 180
        while self.pool.get_stats()["state_counts"].get("idle", 0) < self.size:  # its pre-warming thread fills it
            if time.monotonic() > deadline:
                raise RuntimeError(f"llm-sandbox's pool did not fill: {self.pool.get_stats()}")
            time.sleep(0.05)

    def run(self) -> Any:
        from llm_sandbox.pool import PooledSandboxSession

        session = PooledSandboxSession(pool_manager=self.pool, execution_timeout=self.timeout)
        session.open()
        try:
            return self.result(session.run(self.workload.script))
        finally:
            session.close()  # hands the container back (no engine call); later runs wait for it

    def close(self) -> None:
        super().close()
        if getattr(self, "pool", None) is not None:
            self.pool.close()

    def describe(self) -> dict[str, Any]:
        config = self.config.model_dump(mode="json") if hasattr(self, "config") else {"min_pool_size": self.size}
        return {**super().describe(), "pool": config,
                "session": f"PooledSandboxSession per run (execution_timeout={self.timeout:g} s, workdir /sandbox)",
                "pool containers": "set up by its own session code, which a pool cannot skip (a venv in "
                                   "/sandbox/.sandbox-venv, whose python runs the code; a pip upgrade that fails offline); "
                                   "a container is handed back after a run and reused by the next: runs share its "
                                   "leftover processes and files"}  # fmt: skip
