"""skillharbor's own runner, measured in the same run as the peers.

The same three entry points as the execution benchmark (bench_execution.py):
``sandbox.run`` (cold, its container removed after the answer), ``WarmPool.run``
(warm: a started container whose interpreter waits with the skill's packages
imported) and ``DockerEngine.run`` (the worker's path: warm when a pooled
container is ready, else cold) for the concurrent bursts.
"""

from __future__ import annotations

from typing import Any

from bench.peers.variants import Variant
from bench.peers.workloads import Workload


def request(workload: Workload, settings: Any) -> Any:
    from chalicelib.runner.spec import RunLimits, RunRequest

    return RunRequest(image=workload.image, code=workload.code, entrypoint=workload.entrypoint, inputs=workload.inputs,
                      packages=workload.packages, preimport=bool(workload.packages),
                      limits=RunLimits.from_settings(settings))  # fmt: skip


def _output(result: Any) -> Any:
    if result is None or result.status.value != "ok":
        raise RuntimeError(f"skillharbor run failed: {result}")
    return result.output


class SkillharborCold(Variant):
    peer, mode, label = "skillharbor", "cold", "skillharbor cold"

    def __init__(self, workload: Workload, client: Any, settings: Any):
        super().__init__(workload)
        from chalicelib.runner import sandbox

        self.client, self.request = client, request(workload, settings)
        self.remover = sandbox.BackgroundRemover(client.api)

    def run(self) -> Any:
        from chalicelib.runner import sandbox

        return _output(sandbox.run(self.client, self.request, remover=self.remover))

    def settle(self) -> None:
        super().settle()
        self.remover.wait()

    def close(self) -> None:
        self.remover.close()

    def describe(self) -> dict[str, Any]:
        return {"entry point": "chalicelib.runner.sandbox.run (a fresh container per run; removed after the answer)",
                "flags": "chalicelib.runner.sandbox.host_config (all of skillharbor's isolation)"}  # fmt: skip


class SkillharborWarm(Variant):
    peer, mode, label = "skillharbor", "warm", "skillharbor warm pool"

    def __init__(self, workload: Workload, client: Any, settings: Any):
        super().__init__(workload)
        from chalicelib.runner.pool import WarmPool

        self.request = request(workload, settings)
        self.pool = WarmPool(client, size_per_image=1, max_total=2)

    def open(self) -> None:
        if not self.pool.wait_ready(self.request, count=1, timeout=180):
            raise RuntimeError(f"skillharbor's pool did not fill: {self.pool.stats()}")

    def run(self) -> Any:
        return _output(self.pool.run(self.request))

    def settle(self) -> None:
        super().settle()
        self.open()
        self.pool.wait_removed()

    def idle_containers(self) -> list[str]:
        return self.pool.container_ids()

    def close(self) -> None:
        self.pool.close()

    def describe(self) -> dict[str, Any]:
        return {"entry point": "WarmPool.run (one pooled container per image, refilled after each run; every run gets a "
                               "fresh container)" + (", packages pre-imported" if self.request.preimport else "")}  # fmt: skip


class SkillharborEngine(Variant):
    """The runner worker's engine: warm while the pool has a ready container, cold otherwise."""

    peer, mode, label = "skillharbor", "warm", "skillharbor (worker engine, pool on)"

    def __init__(self, workload: Workload, client: Any, settings: Any):
        super().__init__(workload)
        from chalicelib.runner.worker import DockerEngine

        self.request = request(workload, settings)
        self.engine = DockerEngine(settings, pool_enabled=True)
        self.pool_size = settings.pool_size_per_image

    def open(self) -> None:
        pool = self.engine.warm_pool()
        if pool is not None and not pool.wait_ready(self.request, timeout=180):
            raise RuntimeError(f"skillharbor's pool did not fill: {pool.stats()}")

    def run(self) -> Any:
        return _output(self.engine.run(self.request))

    def settle(self) -> None:
        super().settle()
        self.engine.wait_removed()
        self.open()

    def warm_hits(self) -> int | None:
        pool = self.engine.warm_pool()
        return None if pool is None else pool.hits

    def close(self) -> None:
        self.engine.close()

    def describe(self) -> dict[str, Any]:
        return {"entry point": f"DockerEngine.run (the worker's path; {self.pool_size} warm containers per image, the "
                               "runs beyond them start cold)"}  # fmt: skip
