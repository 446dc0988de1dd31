"""Benchmarks through the HTTP API of the local stack, with the real engine.

    .venv/bin/python -m bench.bench_api [--rounds 15] [--imports 5] [--out FILE] [--only-b5]

The stack is the one `make run` starts (moto server, Chalice's local HTTP
server, pollers; ``chalicelib.local.stack``) on free ports in this process,
and the runner worker is a separate process (``bench.worker_proc``: the real
RunnerWorker and DockerEngine plus a control channel to switch the pool).

* B2 (API): a hello-world execution, warm pool vs cold, interleaved. Each
  answer carries the runner's own ``duration_ms``, so the API + queue hop
  overhead is measured per request;
* B5: the import pipeline end to end (POST the SKILL.md, poll the import
  until it is SUCCEEDED) for a skill without packages and for one with three
  packages whose image exists (one unmeasured import builds it first);
* B7: the runner worker's RSS with no pool and with a pool of 10, the memory
  charged to the 10 warm containers, and the base image size.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import ROOT, container_memory_bytes, environment, interleave, log, ratio, summary, write_json

HELLO = "---\nname: {name}\ndescription: Greets.\n---\n```python\ndef execute(name='world'):\n    return f'hello {{name}}'\n```\n"
THREE = (
    "---\nname: {name}\ndescription: Uses three small packages.\npackages:\n  - six\n  - idna\n  - attrs\n---\n"
    "```python\nimport six, idna, attr\n\ndef execute(host='example.org'):\n    return idna.encode(host).decode()\n```\n"
)
THREE_PACKAGES = ("six", "idna", "attrs")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Worker:
    """The runner worker subprocess and its control channel."""

    def __init__(self, extra_env: dict[str, str] | None = None):
        env = {**os.environ, **(extra_env or {})}
        self.process = subprocess.Popen([sys.executable, "-m", "bench.worker_proc"], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert json.loads(self.process.stdout.readline()).get("ready"), "worker did not start"

    def ask(self, **command: Any) -> dict[str, Any]:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def stop(self) -> None:
        try:
            self.ask(cmd="quit")
        except (OSError, ValueError):
            pass
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Phases:
    """Times parts of the API's execute handler (it runs in this process)."""

    PARTS = (
        ("chalicelib.workflow.execution", "ExecutionService", "execute", "API execute(): checks, queue, wait"),
        ("chalicelib.workflow.execution", "SqsJobQueue", "send", "SQS send of the run job"),
        ("chalicelib.store.runs", "RunStore", "register", "run record before the send"),
        ("chalicelib.workflow.run_handoff", "RunHandoff", "_wait", "waiting for the run record (queue hop, worker, polling)"),
        ("chalicelib.workflow.direct_run", "DirectRunClient", "run", "direct POST to the worker until its answer"),
        ("chalicelib.workflow.run_handoff", "RunHandoff", "_result", "the run's end event (audit) after the run"),
    )

    def __init__(self) -> None:
        self.current = ""
        self.samples: dict[str, dict[str, list[float]]] = {}

    def add(self, variant: str, part: str, value: float) -> None:
        self.samples.setdefault(variant, {}).setdefault(part, []).append(value)

    def installed(self) -> Any:
        import contextlib
        import importlib

        @contextlib.contextmanager
        def patch() -> Any:
            originals = []
            for module_name, owner_name, attribute, label in self.PARTS:
                owner = importlib.import_module(module_name)
                if owner_name:
                    owner = getattr(owner, owner_name)
                original = getattr(owner, attribute)
                setattr(owner, attribute, self._timed(original, label))
                originals.append((owner, attribute, original))
            try:
                yield
            finally:
                for owner, attribute, original in originals:
                    setattr(owner, attribute, original)

        return patch()

    def _timed(self, function: Any, label: str) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(self.current, label, (time.perf_counter() - start) * 1000)

        return timed

    def summaries(self, keep: int) -> dict[str, dict[str, Any]]:
        return {variant: {part: summary(values[-keep:]) for part, values in parts.items()} for variant, parts in self.samples.items()}


class ApiBench:
    def __init__(self) -> None:
        import requests

        from chalicelib.local.stack import LocalStack, StackOptions

        self.options = StackOptions(moto_port=free_port(), api_port=free_port(), start_runner=False,
                                    admin_key="shk_admin_bench-" + uuid.uuid4().hex)  # fmt: skip
        os.environ["SKILLHARBOR_ADMIN_KEY"] = self.options.admin_key
        self.stack = LocalStack(self.options).start()
        self.http = requests.Session()
        self.admin = {"Authorization": f"Bearer {self.options.admin_key}"}
        self.url = self.options.api_url

    def post(self, path: str, body: Any, headers: dict[str, str], content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        response = self.http.post(self.url + path, data=data, headers={**headers, "Content-Type": content_type}, timeout=600)
        return response.status_code, response.json()

    def get(self, path: str) -> dict[str, Any]:
        return self.http.get(self.url + path, headers=self.admin, timeout=60).json()

    def agent(self, agent_id: str, maturity: str = "INTERN") -> dict[str, str]:
        status, created = self.post("/api/agents", {"agent_id": agent_id, "maturity": maturity}, self.admin)
        assert status == 201, created
        return {"Authorization": f"Bearer {created['api_key']}"}

    def import_skill(self, text: str, timeout: float = 900, poll_seconds: float = 0.025) -> tuple[float, dict[str, Any]]:
        """Upload ``text`` and wait for its import to end: (ms from the upload's start to the end the import
        record states in ``finished_at``, the record). The end is read from the record, on the same clock as
        the start, rather than taken when a poll sees it: every poll is a request to the same process that runs
        the pipeline, so polling fast enough to time the end would slow the import it times. ``last_seen_ms``
        is when this poller (every ``poll_seconds``) saw the end."""
        started_wall, start = time.time(), time.perf_counter()
        status, accepted = self.post("/api/skills", text, self.admin, "text/markdown")
        assert status == 202, accepted
        deadline = time.monotonic() + timeout
        record: dict[str, Any] = {}
        while time.monotonic() < deadline:
            record = self.get(f"/api/imports/{accepted['import_id']}")
            if record.get("status") in ("SUCCEEDED", "FAILED", "PENDING_APPROVAL"):
                break
            time.sleep(poll_seconds)
        self.last_seen_ms = (time.perf_counter() - start) * 1000
        finished = record.get("finished_at")
        if not finished:  # PENDING_APPROVAL has no end yet: when it was seen
            return self.last_seen_ms, record
        ended = datetime.fromisoformat(finished.replace("Z", "+00:00")).timestamp()
        return max(0.0, (ended - started_wall) * 1000), record

    def stop(self) -> None:
        self.stack.stop()


def run(rounds: int, imports: int, only_b5: bool = False) -> dict[str, Any]:
    bench = ApiBench()
    out: dict[str, Any] = {}
    # the worker serves direct runs (as under `make run`); each variant turns the API's use of it on or off
    secret = secrets.token_urlsafe(32)
    direct_url = f"http://127.0.0.1:{free_port()}"
    os.environ["SKILLHARBOR_RUNNER_SECRET"] = secret
    worker = Worker({"SKILLHARBOR_RUNNER_LISTEN": direct_url.removeprefix("http://"), "SKILLHARBOR_RUNNER_SECRET": secret})
    try:
        # --- B5 first: the import pipeline (skills it creates serve B2) ---------------
        log("B5 import pipeline: no packages")
        worker.ask(cmd="ready", count=2)  # the worker's start-up (pool fill) is over: imports on a settled stack
        no_packages: list[float] = []
        seen: list[float] = []
        for n in range(imports + 1):
            elapsed, record = bench.import_skill(HELLO.format(name=f"hello-{n}"))
            assert record.get("status") == "SUCCEEDED", record
            if n > 0:  # the first import also warms the API process (imports, caches)
                no_packages.append(elapsed)
                seen.append(bench.last_seen_ms)
        log("B5 import pipeline: three packages (image built by an unmeasured import first)")
        for package in THREE_PACKAGES:
            status, body = bench.post("/api/packages/approve", {"package_name": package, "min_maturity": "INTERN"}, bench.admin)
            assert status in (200, 201), body
        first, record = bench.import_skill(THREE.format(name="three-0"))
        assert record.get("status") == "SUCCEEDED", record
        three: list[float] = []
        for n in range(1, imports + 1):
            elapsed, record = bench.import_skill(THREE.format(name=f"three-{n}"))
            assert record.get("status") == "SUCCEEDED", record
            three.append(elapsed)
        out["b5"] = {
            "no_packages": summary(no_packages),
            "no_packages_seen_by_poller": summary(seen),
            "three_packages_image_exists": summary(three),
            "three_packages_first_import_ms": round(first, 1),
            "packages": list(THREE_PACKAGES),
            "note": "resolution of an unchanged requirement set is served from the resolver's in-process cache; "
                    "each figure runs from the upload's start to the finished_at its import record states (same clock); "
                    "no_packages_seen_by_poller is when a client polling every 25 ms saw it",
        }
        if only_b5:
            return out

        # --- B2 through the API --------------------------------------------------------
        log("B2 hello world through the HTTP API")
        agent = bench.agent("bench-agent")
        variants = {"warm_pool": ("pool", "direct"), "warm_pool_queue": ("pool", "queue"),
                    "cold": ("cold", "direct"), "cold_queue": ("cold", "queue")}  # fmt: skip
        runner_ms: dict[str, list[float]] = {name: [] for name in variants}
        phases = Phases()

        def execute(variant: str) -> Any:
            def go() -> None:
                phases.current = variant
                status, result = bench.post("/api/skills/hello-1/execute", {"inputs": {"name": "bench"}}, agent)
                assert status == 200 and result["status"] == "ok", result
                runner_ms[variant].append(result["duration_ms"])
                phases.add(variant, "runner (container work, from the result)", result["duration_ms"])

            return go

        def before(variant: str) -> None:
            containers, path = variants[variant]
            if path == "direct":
                os.environ["SKILLHARBOR_RUNNER_URL"] = direct_url
                os.environ.pop("SKILLHARBOR_DIRECT_RUNS", None)
            else:  # the worker is in the fleet registry too: only this turns the direct path off
                os.environ.pop("SKILLHARBOR_RUNNER_URL", None)
                os.environ["SKILLHARBOR_DIRECT_RUNS"] = "false"
            if containers == "pool":
                assert worker.ask(cmd="pool", enabled=True)["pool_enabled"]
                assert worker.ask(cmd="ready", count=2)["ready"]
            else:
                worker.ask(cmd="ready", count=2)  # no refill may run during the cold request either
                worker.ask(cmd="pool", enabled=False)
            time.sleep(0.3)

        with phases.installed():
            times = interleave({name: execute(name) for name in variants}, rounds, before=before)
        os.environ.pop("SKILLHARBOR_RUNNER_URL", None)
        os.environ.pop("SKILLHARBOR_DIRECT_RUNS", None)
        worker.ask(cmd="pool", enabled=True)
        stats = {name: summary(values) for name, values in times.items()}
        # the first (warm-up) round is not in `times`
        runner_ms = {name: values[-len(times[name]):] for name, values in runner_ms.items()}
        overhead = {name: summary([total - runner for total, runner in zip(times[name], runner_ms[name])]) for name in times}
        out["b2_api"] = {
            "rounds": rounds,
            **stats,
            "runner_duration": {name: summary(values) for name, values in runner_ms.items()},
            "api_and_queue_overhead": overhead,
            "phases": phases.summaries(len(times["warm_pool"])),
            "ratio_cold_to_warm": ratio(stats["cold"], stats["warm_pool"]),
            "ratio_queue_to_direct_warm": ratio(stats["warm_pool_queue"], stats["warm_pool"]),
            "paths": {"direct": "POST to the worker's signed endpoint (make run's default)",
                      "queue": "SQS runner queue, result record polled (the fallback)"},
        }
    finally:
        worker.stop()
        if only_b5:
            bench.stop()

    # --- B7 memory ---------------------------------------------------------------------
    log("B7 runner worker RSS without and with a pool of 10")
    agent_headers = bench.agent("bench-memory")
    memory: dict[str, Any] = {}
    for label, env in (("pool_0", {"SKILLHARBOR_POOL_ENABLED": "false"}),
                       ("pool_10", {"SKILLHARBOR_POOL_SIZE_PER_IMAGE": "10", "SKILLHARBOR_POOL_MAX_TOTAL": "10"})):  # fmt: skip
        worker = Worker(env)
        try:
            for _ in range(3):
                status, result = bench.post("/api/skills/hello-1/execute", {"inputs": {}}, agent_headers)
                assert status == 200 and result["status"] == "ok", result
            if label == "pool_10":
                assert worker.ask(cmd="ready", count=10)["ready"]
            time.sleep(1)
            facts = worker.ask(cmd="rss")
            containers = facts["warm_containers"]
            charged = [container_memory_bytes(c) for c in containers]
            memory[label] = {
                "worker_rss_kib": facts["rss_kib"],
                "warm_containers": len(containers),
                "warm_containers_memory_bytes": sum(c for c in charged if c) if containers else 0,
                "per_warm_container_bytes": round(sum(c for c in charged if c) / len(containers)) if containers and all(charged) else None,
            }
        finally:
            worker.stop()
    from chalicelib.runner import engine
    from chalicelib.settings import get_settings

    client = engine.connect()
    memory["base_image_size_bytes"] = int(client.images.get(get_settings().base_image_tag).attrs.get("Size") or 0)
    out["b7"] = memory
    bench.stop()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description="benchmarks through the HTTP API (B2 API, B5, B7)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--imports", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--only-b5", action="store_true", help="the import pipeline alone (B2 and B7 skipped)")
    args = parser.parse_args()
    document: dict[str, Any] = {"benchmark": "api", "environment": environment(), **run(args.rounds, args.imports, args.only_b5)}
    path = write_json(document, args.out, "api")
    print(json.dumps(document)[:1500])
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
