"""Execution benchmarks on the real Docker engine (runner level).

    .venv/bin/python -m bench.bench_execution [--rounds 15] [--b3-rounds 6] [--out FILE]

* B2 hello world: warm pool vs cold container vs the reference
  ``docker run --rm`` of the base image running ``python -c pass`` with the
  same isolation flags (CLI, and the same through the SDK for scale);
* B3 a numpy+pandas skill (the seed's data-summary): pre-imported pool vs
  plain pool vs cold;
* B6 20 concurrent executions through DockerEngine (pool on and off):
  throughput, p50/p95, errors;
* profile: where the time of a cold, a warm and a reference run goes.

Variants of one comparison are interleaved round by round (rotating order).
Before every timed run the pool is refilled and pending removals are done,
so "warm" means a ready container and no background work competes.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, container_memory_bytes, environment, interleave, log, ratio, summary, write_json

HELLO = "def main(name='world'):\n    return 'hello ' + name\n"
SEED_SKILL = ROOT / "tests" / "unit" / "skills" / "fixtures" / "seed-data-summary" / "SKILL.md"
ROWS = [{"city": "Oslo", "temp": 4.5, "rain": 12}, {"city": "Rome", "temp": 16.1, "rain": None}, {"city": "Lima", "temp": 19.0, "rain": 3}]


def reference_flags(limits: Any) -> list[str]:
    """``docker run`` flags equal to sandbox.host_config and sandbox.create."""
    from chalicelib.runner import sandbox

    memory = f"{limits.memory_mb}m"
    flags = [
        "--network", "none", "--read-only",
        "--tmpfs", f"/tmp:rw,size={limits.tmpfs_mb}m,mode=1777,nosuid,nodev,noexec",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--pids-limit", str(limits.pids), "--memory", memory, "--memory-swap", memory,
        "--cpus", str(limits.cpus), "--ipc", "none", "--init", "--log-driver", "none",
        "--ulimit", "nofile=1024:1024", "--ulimit", "core=0",
        "--user", sandbox.SKILL_USER, "--workdir", "/tmp",
    ]  # fmt: skip
    for name, value in sandbox.SAFE_ENVIRONMENT.items():
        flags += ["--env", f"{name}={value}"]
    return flags


def seed_code() -> str:
    text = SEED_SKILL.read_text()
    return text.split("```python\n", 1)[1].split("```", 1)[0]


class Bench:
    def __init__(self) -> None:
        from chalicelib.runner import engine
        from chalicelib.runner.base_image import ensure_base_image
        from chalicelib.settings import get_settings

        self.settings = get_settings()
        self.client = engine.connect()
        self.base = ensure_base_image(self.client, self.settings)

    def hello(self, **fields: Any) -> Any:
        from chalicelib.runner.spec import RunLimits, RunRequest

        return RunRequest(image=self.base.tag, code=HELLO, entrypoint="main", inputs={"name": "bench"},
                          limits=RunLimits.from_settings(self.settings), **fields)  # fmt: skip

    # --- B2 ------------------------------------------------------------------------------

    def b2(self, rounds: int) -> dict[str, Any]:
        from chalicelib.runner import sandbox
        from chalicelib.runner.pool import WarmPool

        request = self.hello()
        pool = WarmPool(self.client, size_per_image=1, max_total=2)
        cli = ["docker", "run", "--rm", *reference_flags(request.limits), self.base.tag, sandbox.IN_IMAGE_PYTHON, "-c", "pass"]
        api = self.client.api

        def warm() -> None:
            result = pool.run(request)
            assert result is not None and result.status.value == "ok", result

        remover = sandbox.BackgroundRemover(api)

        def cold() -> None:  # as the worker runs it: the container is removed after the answer
            result = sandbox.run(self.client, request, remover=remover)
            assert result.status.value == "ok", result

        def reference_cli() -> None:
            subprocess.run(cli, check=True, capture_output=True)

        def reference_sdk() -> None:
            container = api.create_container(self.base.tag, command=[sandbox.IN_IMAGE_PYTHON, "-c", "pass"], user=sandbox.SKILL_USER,
                                             working_dir="/tmp", environment=dict(sandbox.SAFE_ENVIRONMENT),
                                             host_config=sandbox.host_config(api, request))  # fmt: skip
            api.start(container["Id"])
            api.wait(container["Id"])
            api.remove_container(container["Id"], force=True)

        def settle(_: str) -> None:
            assert pool.wait_ready(request, count=1), pool.stats()
            pool.wait_removed()
            remover.wait()
            time.sleep(0.3)  # let the engine finish the last removal/start

        try:
            times = interleave({"warm_pool": warm, "cold": cold, "reference_docker_run": reference_cli,
                                "reference_sdk": reference_sdk}, rounds, before=settle)  # fmt: skip
        finally:
            pool.close()
            remover.close()
        stats = {name: summary(values) for name, values in times.items()}
        return {
            "rounds": rounds,
            "limits": request.limits.model_dump(),
            "cold_removal": "after the answer, on the runner's remover thread (as the worker does)",
            "reference_command": " ".join(cli),
            **stats,
            "ratio_cold_to_reference": ratio(stats["cold"], stats["reference_docker_run"]),
            "ratio_cold_to_warm": ratio(stats["cold"], stats["warm_pool"]),
            "ratio_reference_to_warm": ratio(stats["reference_docker_run"], stats["warm_pool"]),
        }

    # --- B3 ------------------------------------------------------------------------------

    def numpy_pandas_image(self) -> tuple[str, list[str]]:
        from chalicelib.packages.resolver import PipResolver
        from chalicelib.runner.builder import build_image

        pins = PipResolver(self.settings.index_url).resolve(["numpy>=1.26,<3", "pandas>=2.1"], self.base.target_platform)
        image = build_image(self.client, self.base, pins)
        log(f"numpy+pandas image {image.tag} ({'built' if image.built else 'existing'})")
        return image.tag, [p.name for p in pins if p.direct]

    def b3(self, rounds: int) -> dict[str, Any]:
        from chalicelib.runner import sandbox
        from chalicelib.runner.pool import WarmPool
        from chalicelib.runner.spec import RunLimits, RunRequest

        tag, direct = self.numpy_pandas_image()
        code = seed_code()

        def request(preimport: bool) -> RunRequest:
            return RunRequest(image=tag, code=code, entrypoint="execute", inputs={"data": ROWS}, packages=direct,
                              preimport=preimport, limits=RunLimits.from_settings(self.settings))  # fmt: skip

        pre, plain = request(True), request(False)
        pool = WarmPool(self.client, size_per_image=1, max_total=2)
        outputs: list[Any] = []

        def pooled(req: RunRequest) -> Any:
            def go() -> None:
                result = pool.run(req)
                assert result is not None and result.status.value == "ok", result
                outputs.append(result.output)

            return go

        remover = sandbox.BackgroundRemover(self.client.api)

        def cold() -> None:
            result = sandbox.run(self.client, pre, remover=remover)
            assert result.status.value == "ok", result
            outputs.append(result.output)

        def settle(_: str) -> None:
            for req in (pre, plain):
                assert pool.wait_ready(req, count=1, timeout=180), pool.stats()
            pool.wait_removed()
            remover.wait()
            time.sleep(0.3)

        try:
            times = interleave({"preimported_pool": pooled(pre), "plain_pool": pooled(plain), "cold": cold}, rounds, before=settle)
        finally:
            pool.close()
            remover.close()
        assert all(o == outputs[0] for o in outputs), "variants disagree"
        stats = {name: summary(values) for name, values in times.items()}
        return {
            "rounds": rounds,
            "image": tag,
            "packages": direct,
            "skill": "seed data-summary (numpy + pandas) on 3 rows",
            **stats,
            "ratio_plain_to_preimported": ratio(stats["plain_pool"], stats["preimported_pool"]),
            "ratio_cold_to_preimported": ratio(stats["cold"], stats["preimported_pool"]),
        }

    # --- B6 ------------------------------------------------------------------------------

    def b6(self, concurrency: int, rounds: int) -> dict[str, Any]:
        from chalicelib.runner.worker import DockerEngine

        request = self.hello()
        engines = {"pool_on": DockerEngine(self.settings, pool_enabled=True), "pool_off": DockerEngine(self.settings, pool_enabled=False)}
        runs: dict[str, dict[str, list[Any]]] = {name: {"latency": [], "wall": [], "errors": []} for name in engines}

        def burst(name: str) -> None:
            engine = engines[name]
            pool = engine.warm_pool()
            if pool is not None:
                assert pool.wait_ready(request), pool.stats()
                pool.wait_removed()
                time.sleep(0.3)

            def one(_: int) -> tuple[float, str]:
                start = time.perf_counter()
                result = engine.run(request)
                return (time.perf_counter() - start) * 1000, result.status.value

            start = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as executor:
                outcomes = list(executor.map(one, range(concurrency)))
            runs[name]["wall"].append(time.perf_counter() - start)
            runs[name]["latency"] += [ms for ms, _ in outcomes]
            runs[name]["errors"] += [status for _, status in outcomes if status != "ok"]

        try:
            for round_no in range(rounds):
                for name in (list(engines) if round_no % 2 == 0 else list(reversed(engines))):
                    log(f"B6 round {round_no + 1}/{rounds}: {name}")
                    burst(name)
            hits = engines["pool_on"].warm_pool().hits
        finally:
            for engine in engines.values():
                engine.close()
        out: dict[str, Any] = {"concurrency": concurrency, "rounds": rounds}
        for name, data in runs.items():
            total = concurrency * rounds
            out[name] = {
                **summary(data["latency"]),
                "throughput_per_s": round(total / sum(data["wall"]), 2),
                "wall_s": [round(w, 2) for w in data["wall"]],
                "errors": len(data["errors"]),
                "error_statuses": sorted(set(data["errors"])),
            }
        out["pool_on"]["warm_hits"] = hits
        return out

    # --- profile ------------------------------------------------------------------------------

    def profile(self, runs: int) -> dict[str, Any]:
        """Phase timings of cold, warm and reference runs (one at a time)."""
        import socket

        from chalicelib.runner import sandbox
        from chalicelib.runner.pool import PoolKey, WarmPool

        api = self.client.api
        request = self.hello()
        phases: dict[str, dict[str, list[float]]] = {"cold": {}, "warm": {}, "reference_sdk": {}}

        def add(kind: str, name: str, seconds: float) -> None:
            phases[kind].setdefault(name, []).append(seconds * 1000)

        def clock() -> float:
            return time.perf_counter()

        for _ in range(runs):
            # cold, step by step as sandbox.run does it
            t0 = clock()
            nonce = secrets.token_hex(32)
            container_id = sandbox.create(api, request, command=list(sandbox.HARNESS_COMMAND))
            t1 = clock()
            attachment = sandbox.attach(api, container_id, sandbox.stdout_cap(request.limits.max_output_bytes), timeout=60, nonce=nonce)
            t2 = clock()
            api.start(container_id)
            t3 = clock()
            attachment.raw.sendall(sandbox.job_bytes(request, nonce))
            attachment.raw.shutdown(socket.SHUT_WR)
            attachment.reader.finished.wait(60)
            t4 = clock()
            document = attachment.reader.document or {}
            attachment.close()
            sandbox._remove(api, container_id)
            t5 = clock()
            add("cold", "create", t1 - t0)
            add("cold", "attach", t2 - t1)
            add("cold", "start (runc, namespaces, cgroups)", t3 - t2)
            add("cold", "job sent -> result line (interpreters start, skill runs)", t4 - t3)
            add("cold", "  of which skill child, from job to its exit", document.get("duration_ms", 0) / 1000)
            add("cold", "request path total (create to result)", t4 - t0)
            add("cold", "background: remove (after the answer)", t5 - t4)
            time.sleep(0.2)

            # reference: python -c pass through the SDK
            t0 = clock()
            container = api.create_container(self.base.tag, command=[sandbox.IN_IMAGE_PYTHON, "-c", "pass"], user=sandbox.SKILL_USER,
                                             host_config=sandbox.host_config(api, request))  # fmt: skip
            t1 = clock()
            api.start(container["Id"])
            t2 = clock()
            api.wait(container["Id"])
            t3 = clock()
            api.remove_container(container["Id"], force=True)
            t4 = clock()
            add("reference_sdk", "create", t1 - t0)
            add("reference_sdk", "start", t2 - t1)
            add("reference_sdk", "python -c pass until exit", t3 - t2)
            add("reference_sdk", "remove", t4 - t3)
            add("reference_sdk", "total", t4 - t0)
            time.sleep(0.2)

        pool = WarmPool(self.client, size_per_image=1, max_total=1)
        try:
            key = PoolKey.of(request)
            for _ in range(runs):
                assert pool.wait_ready(request, count=1)
                pool.wait_removed()
                time.sleep(0.3)
                t1 = clock()
                with pool._lock:
                    warm = next(w for w in pool._idle[key] if w.ready)
                    pool._idle[key].remove(warm)
                t2 = clock()
                nonce = secrets.token_hex(32)
                warm.attachment.reader.nonce = nonce
                job = sandbox.job_bytes(request, nonce)
                warm.attachment.raw.sendall(b"%d\n" % len(job) + job)
                warm.attachment.raw.shutdown(socket.SHUT_WR)
                warm.attachment.reader.finished.wait(60)
                t3 = clock()
                document = warm.attachment.reader.document or {}
                pool._destroy(warm)
                t4 = clock()
                add("warm", "take a ready container", t2 - t1)
                add("warm", "job sent -> result line", t3 - t2)
                add("warm", "  of which skill child, from job to its exit", document.get("duration_ms", 0) / 1000)
                add("warm", "request path total", t3 - t1)
                add("warm", "background: remove the used container", t4 - t3)
                if warm.attachment.reader.ready_at is not None:
                    add("warm", "background: refill (create, start, harness ready)", warm.attachment.reader.ready_at - warm.created)
        finally:
            pool.close()
        return {kind: {name: summary(values) for name, values in data.items()} for kind, data in phases.items()}

    def pooled_container_memory(self) -> dict[str, Any]:
        """Memory charged to idle warm containers (plain and pre-imported numpy+pandas)."""
        from chalicelib.runner.pool import WarmPool
        from chalicelib.runner.spec import RunLimits, RunRequest

        out: dict[str, Any] = {}
        pool = WarmPool(self.client, size_per_image=1, max_total=2)
        try:
            hello = self.hello()
            assert pool.wait_ready(hello, count=1)
            tag, direct = self.numpy_pandas_image()
            heavy = RunRequest(image=tag, code="", packages=direct, limits=RunLimits.from_settings(self.settings))
            assert pool.wait_ready(heavy, count=1, timeout=180)
            time.sleep(1)
            for name, req in (("base_plain_bytes", hello), ("numpy_pandas_preimported_bytes", heavy)):
                from chalicelib.runner.pool import PoolKey

                [warm] = pool._idle[PoolKey.of(req)]
                out[name] = container_memory_bytes(warm.container_id)
        finally:
            pool.close()
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description="execution benchmarks (B2, B3, B6, profile) on the real engine")
    parser.add_argument("--rounds", type=int, default=15, help="B2 rounds (each variant once per round)")
    parser.add_argument("--b3-rounds", type=int, default=6)
    parser.add_argument("--b6-rounds", type=int, default=2)
    parser.add_argument("--profile-runs", type=int, default=5)
    parser.add_argument("--only", default="b2,b3,b6,profile,memory")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    only = set(args.only.split(","))
    bench = Bench()
    document: dict[str, Any] = {"benchmark": "execution", "environment": environment(), "base_image": bench.base.tag}
    if "profile" in only:
        log("profile")
        document["profile"] = bench.profile(args.profile_runs)
    if "b2" in only:
        log("B2 hello world, runner level")
        document["b2_runner"] = bench.b2(args.rounds)
    if "b3" in only:
        log("B3 numpy + pandas")
        document["b3"] = bench.b3(args.b3_rounds)
    if "b6" in only:
        log("B6 20 concurrent")
        document["b6"] = bench.b6(20, args.b6_rounds)
    if "memory" in only:
        log("memory of warm containers")
        document["warm_container_memory"] = bench.pooled_container_memory()
    path = write_json(document, args.out, "execution")
    print(json.dumps({k: v for k, v in document.items() if k not in ("profile",)}, default=str)[:2000])
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
