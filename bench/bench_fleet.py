"""The runner fleet (issue 17): warm-run throughput with 1, 2 and 3 local workers, and a cold worker's first run
of a package set by pull from the registry versus by rebuild.

    .venv/bin/python -m bench.bench_fleet [--workers 1,2,3] [--runs 40] [--first-run-rounds 3] [--out FILE]

Throughput: for each worker count, the real local stack (``python -m
chalicelib.local.stack`` with SKILLHARBOR_LOCAL_WORKERS=N) on free ports; the
stdlib ``hello`` skill is imported and warmed, then ``--runs`` executions go
through the HTTP API with 4 x N in flight (each worker has 4 run slots).
Reported: runs per second over the whole batch, and each run's latency.

First run on a cold worker: a one-wheel package set is built and pushed to
a local registry (Debian's docker-registry on 127.0.0.1) as worker A would,
then its image is removed ("worker B never had it"); B's first run of it is
timed once by pulling it by digest and once by rebuilding from the pins
(its wheel already in B's wheelhouse, so the rebuild pays no download: the
pull's advantage over a truly cold host is understated), interleaved.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import ROOT, environment, log, ratio, summary, write_json
from chalicelib.local.child_stack import ChildStack, free_port

ADMIN_KEY = "shk_admin_bench-fleet-0123456789abcdefghij"
SLOTS_PER_WORKER = 4


def throughput(workers: int, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch, ChildStack(Path(scratch) / "stack.log", admin_key=ADMIN_KEY, workers=workers) as stack:
        stack.wait_for(lambda: (b := stack.http("/api/runners")[1]) and b.get("up") == workers, 240, f"{workers} workers up", 0.3)
        stack.import_skill(ROOT / "examples" / "hello" / "SKILL.md")
        key = stack.http("/api/agents", {"agent_id": "bench", "maturity": "STUDENT"})[1]["api_key"]

        def one(i: int) -> float:
            began = time.perf_counter()
            status, body = stack.http("/api/skills/hello/execute", {"inputs": {"name": f"b{i}"}}, key=key)
            while status == 202:
                time.sleep(0.2)
                status, body = stack.http(body["result_url"], key=key)
            if status != 200 or body.get("status") != "ok":
                raise RuntimeError(f"run {i} failed: {status} {body}")
            return (time.perf_counter() - began) * 1000

        in_flight = SLOTS_PER_WORKER * workers
        with ThreadPoolExecutor(in_flight) as pool:
            list(pool.map(one, range(2 * in_flight)))  # every worker's pool warm for hello
            load = os.getloadavg()[0]
            began = time.perf_counter()
            latencies = list(pool.map(one, range(runs)))
            elapsed = time.perf_counter() - began
        per_worker: dict[str, int] = {}
        for run in stack.http("/api/runs?agent_id=bench&limit=1000")[1]["runs"][:runs]:
            per_worker[run.get("worker") or "?"] = per_worker.get(run.get("worker") or "?", 0) + 1
        return {"workers": workers, "runs": runs, "in_flight": in_flight, "seconds": round(elapsed, 2),
                "runs_per_second": round(runs / elapsed, 2), "latency": summary(latencies), "runs_per_worker": per_worker,
                "load_average_before": round(load, 2)}  # fmt: skip


def first_run(rounds: int) -> dict[str, Any]:
    from chalicelib.local.registry import start_registry
    from chalicelib.runner import builder, engine
    from chalicelib.runner.jobs import RunJob
    from chalicelib.runner.spec import RunStatus
    from chalicelib.runner.worker import DockerEngine, RunnerWorker
    from chalicelib.settings import get_settings
    from tests.wheel_support import make_wheel, pin_for

    registry = start_registry(free_port())
    os.environ["SKILLHARBOR_REGISTRY"] = registry.address
    client = engine.connect()
    samples: dict[str, list[float]] = {"by_pull": [], "by_rebuild": []}
    notes: dict[str, str] = {}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            wheel = make_wheel(Path(scratch))
            pin = pin_for(wheel)
            house = builder.Wheelhouse(Path(get_settings().cache_dir) / "wheelhouse")
            house.path_for(pin).parent.mkdir(parents=True, exist_ok=True)
            house.path_for(pin).write_bytes(wheel.read_bytes())
            worker_engine = DockerEngine(get_settings(), pool_enabled=False)
            built = worker_engine.build([pin])  # worker A: built and pushed
            digest = built.registry_digest

            class Images:
                def get_image(self, tag: str) -> dict[str, Any] | None:
                    return {"tag": tag, "registry_digest": digest} if use_registry and tag == built.tag else None

                def touch(self, tag: str) -> None:
                    pass

                def record_image(self, *args: Any, **kwargs: Any) -> None:
                    pass

            worker = RunnerWorker(worker_engine, sqs=None, queue_url="", images=Images(), skills=None, orchestrator=None,
                                  runs=object(), secret="x" * 32)  # fmt: skip
            job = RunJob(skill_id="demo", version="1", image_tag=built.tag, pins=[pin], entrypoint="main",
                         code="import demo_tool\ndef main():\n    return demo_tool.__name__\n")  # fmt: skip
            for _ in range(rounds):
                for variant in ("by_pull", "by_rebuild"):
                    client.images.remove(built.tag, force=True)  # worker B never had it
                    use_registry = variant == "by_pull"
                    began = time.perf_counter()
                    result = worker.execute_run(job)
                    samples[variant].append((time.perf_counter() - began) * 1000)
                    if result.status != RunStatus.OK:
                        raise RuntimeError(f"{variant}: {result}")
                    notes[variant] = result.notes[0] if result.notes else ""
            worker_engine.close()
            client.images.remove(built.tag, force=True)
    finally:
        registry.stop()
        os.environ.pop("SKILLHARBOR_REGISTRY", None)
    stats = {variant: summary(values) for variant, values in samples.items()}
    return {**stats, "notes": notes, "ratio_rebuild_to_pull": ratio(stats["by_rebuild"], stats["by_pull"]),
            "image_bytes": built.size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--first-run-rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    document: dict[str, Any] = {"benchmark": "fleet", "environment": environment(), "throughput": []}
    for count in [int(n) for n in args.workers.split(",")]:
        log(f"throughput with {count} worker(s)")
        document["throughput"].append(throughput(count, args.runs))
        log(json.dumps({k: v for k, v in document["throughput"][-1].items() if k != "latency"}))
    base = document["throughput"][0]["runs_per_second"] if document["throughput"] else None
    document["speedup_vs_one_worker"] = {str(t["workers"]): round(t["runs_per_second"] / base, 2) for t in document["throughput"]} if base else {}
    log("first run on a cold worker: pull vs rebuild")
    document["cold_first_run"] = first_run(args.first_run_rounds)
    document["environment_after"] = {"load_average": [round(x, 2) for x in os.getloadavg()]}
    print(write_json(document, args.out, "fleet"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
