"""The floors: plain Docker with all of skillharbor's isolation flags.

* ``docker run --rm`` (the CLI), the execution benchmark's B2 reference,
  here running the workload's script instead of ``python -c pass``;
* the Docker SDK: create, start, wait (the removal left for after the
  answer, as a caller could); the log driver is ``none`` as skillharbor's, so
  its output is not read and its exit status is checked instead;
* ``docker exec`` into a kept, hardened container: the floor of any sandbox
  whose warm mode runs a new process in a running container (llm-sandbox's
  session and pool do this).
"""

from __future__ import annotations

import subprocess
from typing import Any

from bench.peers.variants import LABELS, Variant
from bench.peers.workloads import IN_IMAGE_PYTHON, Workload


class DockerRunCli(Variant):
    peer, mode, label = "docker run (CLI, floor)", "cold", "docker run --rm"

    def __init__(self, workload: Workload, limits: Any):
        super().__init__(workload)
        from bench.bench_execution import reference_flags

        labels = [part for name, value in LABELS.items() for part in ("--label", f"{name}={value}")]
        self.flags = reference_flags(limits)
        self.command = ["docker", "run", "--rm", *self.flags, *labels, workload.image, IN_IMAGE_PYTHON, "-c", workload.script]

    def run(self) -> Any:
        done = subprocess.run(self.command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"docker run exited {done.returncode}: {done.stderr[-500:]}")
        return self.workload.decode(done.stdout)

    def describe(self) -> dict[str, Any]:
        return {"command": "docker run --rm " + " ".join(self.flags) + f" {self.workload.image} {IN_IMAGE_PYTHON} -c <script>",
                "timed": "the whole command (the CLI waits for the removal)"}  # fmt: skip


class DockerSdk(Variant):
    peer, mode, label = "Docker SDK (floor)", "cold", "Docker SDK create/start/wait"
    reads_output = False

    def __init__(self, workload: Workload, api: Any, run_request: Any):
        super().__init__(workload)
        from chalicelib.runner import sandbox

        self.api = api
        self.create_args = {"command": [IN_IMAGE_PYTHON, "-c", workload.script], "user": sandbox.SKILL_USER,
                            "working_dir": "/tmp", "environment": dict(sandbox.SAFE_ENVIRONMENT), "labels": dict(LABELS),
                            "host_config": sandbox.host_config(api, run_request)}  # fmt: skip

    def run(self) -> Any:
        container = self.api.create_container(self.workload.image, **self.create_args)["Id"]
        self.defer(lambda: self.api.remove_container(container, force=True))
        self.api.start(container)
        status = self.api.wait(container, timeout=120).get("StatusCode")
        if status != 0:
            raise RuntimeError(f"the SDK's container exited {status}")
        return None

    def describe(self) -> dict[str, Any]:
        return {"calls": "APIClient.create_container (host_config = sandbox.host_config), start, wait; remove after the "
                         "answer, untimed", "output": "not read (log driver none); the exit status is checked"}  # fmt: skip


class DockerExec(Variant):
    peer, mode, label = "docker exec (floor)", "warm", "docker exec into a kept container"

    def __init__(self, workload: Workload, api: Any, run_request: Any):
        super().__init__(workload)
        from chalicelib.runner import sandbox

        self.api, self.sandbox = api, sandbox
        self.host_config = sandbox.host_config(api, run_request)
        self.container: str | None = None

    def open(self) -> None:
        sandbox = self.sandbox
        self.container = self.api.create_container(self.workload.image, command=["sleep", "infinity"], user=sandbox.SKILL_USER,
                                                   working_dir="/tmp", environment=dict(sandbox.SAFE_ENVIRONMENT),
                                                   labels=dict(LABELS), host_config=self.host_config)["Id"]  # fmt: skip
        self.api.start(self.container)

    def run(self) -> Any:
        execution = self.api.exec_create(self.container, [IN_IMAGE_PYTHON, "-c", self.workload.script], stdout=True, stderr=True,
                                         user=self.sandbox.SKILL_USER, workdir="/tmp")  # fmt: skip
        stdout, stderr = self.api.exec_start(execution["Id"], demux=True)
        code = self.api.exec_inspect(execution["Id"]).get("ExitCode")
        if code != 0:
            raise RuntimeError(f"docker exec exited {code}: {(stderr or b'')[-500:]!r}")
        return self.workload.decode(stdout or b"")

    def idle_containers(self) -> list[str]:
        return [self.container] if self.container else []

    def close(self) -> None:
        super().close()
        if self.container:
            self.api.remove_container(self.container, force=True)
            self.container = None

    def describe(self) -> dict[str, Any]:
        return {"calls": "one container (sleep infinity, sandbox.host_config) kept running; per run exec_create + "
                         "exec_start + exec_inspect of the script", "state": "the same container serves every run"}  # fmt: skip
