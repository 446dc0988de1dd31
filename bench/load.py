"""Load: concurrent API requests (checks, reads, imports) against a local stack, with the audit reconciled.

    .venv/bin/python -m bench.load [--requests 400] [--concurrency 200] [--imports 20]
                                   [--executions 20] [--no-runner] [--out FILE]

Starts ``python -m chalicelib.local.stack`` (moto server, Chalice's local
HTTP server, pollers, and the runner worker unless --no-runner) on free
loopback ports, fires ``--requests`` requests from ``--concurrency`` threads
at once (a shuffled mix: permission checks as an agent, reads, and
``--imports`` SKILL.md uploads), waits for the imports to finish, and, with a
runner, runs ``--executions`` skill executions at once. Then it reads the
audit trail back and counts, per action, the events against the operations
that were answered: lost (fewer) or duplicated (more) events are reported.
Everything stops by itself (overall --deadline); the stack is stopped at the
end. Results: bench/results/load-<date>.json.

Executions need the runner worker and a Docker engine with the sandbox base
image; they are skipped with --no-runner.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from bench.common import ROOT, environment, log, write_json

ADMIN_KEY = "shk_admin_load-key-0123456789abcdefghijklm"
AGENT_ID = "load-agent"
PLAIN_SKILL = "---\nname: {name}\ndescription: Adds numbers under load.\n---\n```python\ndef execute(a=1, b=2):\n    return a + b\n```\n"
CHECK_PACKAGES = [("six", "1.17.0"), ("six", "1.16.0"), ("requests", "2.32.3"), ("numpy", "2.1.0"), ("leftpad", "0.1.0")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentiles(samples: list[float]) -> dict[str, Any]:
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)

    def rank(p: float) -> float:  # nearest rank
        return ordered[min(len(ordered) - 1, max(0, int(p / 100 * len(ordered) + 0.999999) - 1))]

    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered), 1), "p90_ms": round(rank(90), 1),
            "p95_ms": round(rank(95), 1), "p99_ms": round(rank(99), 1), "max_ms": round(ordered[-1], 1),
            "mean_ms": round(statistics.fmean(ordered), 1)}  # fmt: skip


class LocalStack:
    """The local stack in a subprocess on free loopback ports."""

    def __init__(self, with_runner: bool):
        self.moto_port, self.api_port, self.runner_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.with_runner = with_runner
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = Path(tempfile.gettempdir()) / f"skillharbor-load-stack-{self.api_port}.log"

    def start(self, timeout: float = 120) -> LocalStack:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SKILLHARBOR_"))}
        env.update(SKILLHARBOR_ADMIN_KEY=ADMIN_KEY, SKILLHARBOR_LOCAL_SCHEDULE_SECONDS="86400")
        command = [sys.executable, "-m", "chalicelib.local.stack", "--host", "127.0.0.1",
                   "--moto-port", str(self.moto_port), "--api-port", str(self.api_port),
                   "--runner-port", str(self.runner_port)]  # fmt: skip
        if not self.with_runner:
            command.append("--no-runner")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = self.log_path.open("wb")
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the local stack exited with {self.process.returncode}; see {self.log_path}")
            try:
                if requests.get(f"{self.url}/api/openapi.json", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise SystemExit(f"the local stack did not come up in {timeout:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


class Client:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        return session

    def send(self, method: str, path: str, *, key: str = ADMIN_KEY, timeout: float = 120, **kwargs: Any) -> tuple[int, Any, float]:
        headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
        started = time.perf_counter()
        try:
            response = self._session().request(method, self.base_url + path, headers=headers, timeout=timeout, **kwargs)
        except requests.RequestException as error:
            return 0, {"error": "client", "message": str(error)}, (time.perf_counter() - started) * 1000
        elapsed = (time.perf_counter() - started) * 1000
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return response.status_code, body, elapsed

    def ok(self, method: str, path: str, expected: int, **kwargs: Any) -> Any:
        status, body, _ = self.send(method, path, **kwargs)
        if status != expected:
            raise SystemExit(f"{method} {path}: expected {expected}, got {status}: {body}")
        return body

    def audit(self, action: str, since: str) -> list[dict[str, Any]]:
        events, token = [], None
        while True:
            query = {"action": action, "since": since, "limit": "1000", **({"next_token": token} if token else {})}
            page = self.ok("GET", "/api/packages/audit", 200, params=query)
            events += page["events"]
            token = page["next_token"]
            if not token:
                return events


def plan(total: int, imports: int, run_id: str, seed: int) -> list[dict[str, Any]]:
    """The shuffled mix: imports, then about 60% checks and 40% reads."""
    rng = random.Random(seed)
    operations: list[dict[str, Any]] = [
        {"kind": "import", "method": "POST", "path": "/api/skills", "data": PLAIN_SKILL.format(name=f"Load {run_id} {i}"),
         "headers": {"Content-Type": "text/markdown"}}  # fmt: skip
        for i in range(imports)
    ]
    reads = ["/api/skills", "/api/packages/rules", "/api/packages/requests", "/api/skills/does-not-exist", "/api/images",
             "/api/packages/audit?limit=20", "/api/queues/dead-letters?peek=0"]  # fmt: skip
    for i in range(max(0, total - imports)):
        if rng.random() < 0.6:
            package, version = rng.choice(CHECK_PACKAGES)
            operations.append({"kind": "check", "method": "GET", "path": f"/api/packages/check?package_name={package}&version={version}",
                               "as_agent": True})  # fmt: skip
        else:
            operations.append({"kind": "read", "method": "GET", "path": rng.choice(reads)})
    rng.shuffle(operations)
    return operations


def fire(client: Client, operations: list[dict[str, Any]], concurrency: int, agent_key: str) -> list[dict[str, Any]]:
    start_together = threading.Barrier(min(concurrency, len(operations)))

    def one(index: int, operation: dict[str, Any]) -> dict[str, Any]:
        if index < concurrency:
            try:
                start_together.wait(timeout=60)  # the first wave leaves at once: `concurrency` requests in flight
            except threading.BrokenBarrierError:
                pass
        kwargs: dict[str, Any] = {}
        if "data" in operation:
            kwargs["data"] = operation["data"].encode()
            kwargs["headers"] = operation["headers"]
        status, body, elapsed = client.send(operation["method"], operation["path"], key=agent_key if operation.get("as_agent") else ADMIN_KEY,
                                            **kwargs)  # fmt: skip
        return {"kind": operation["kind"], "status": status, "ms": elapsed, "body": body if status >= 300 or operation["kind"] == "import" else None}

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(lambda pair: one(*pair), enumerate(operations)))


def wait_for_imports(client: Client, import_ids: list[str], deadline: float) -> dict[str, dict[str, Any]]:
    finished: dict[str, dict[str, Any]] = {}
    while len(finished) < len(import_ids) and time.monotonic() < deadline:
        for import_id in import_ids:
            if import_id in finished:
                continue
            status, body, _ = client.send("GET", f"/api/imports/{import_id}")
            if status == 200 and body.get("status") in ("SUCCEEDED", "FAILED", "PENDING_APPROVAL"):
                finished[import_id] = body
        time.sleep(0.5)
    return finished


def reconcile(expected: int, events: list[dict[str, Any]]) -> dict[str, Any]:
    return {"operations": expected, "events": len(events), "lost": max(0, expected - len(events)),
            "duplicated": max(0, len(events) - expected)}  # fmt: skip


def run_executions(client: Client, count: int, agent_key: str, run_id: str, deadline: float) -> dict[str, Any]:
    name = f"Load Runner {run_id}"
    accepted = client.ok("POST", "/api/skills", 202, data=PLAIN_SKILL.format(name=name).encode(),
                         headers={"Content-Type": "text/markdown"})  # fmt: skip
    done = wait_for_imports(client, [accepted["import_id"]], deadline)
    if done.get(accepted["import_id"], {}).get("status") != "SUCCEEDED":
        return {"skipped": f"the execution skill did not import: {done}"}
    skill_id = accepted["skill_id"]
    path = f"/api/skills/{skill_id}/execute"
    client.send("POST", path, key=agent_key, json={"inputs": {"a": 1, "b": 1}})  # warm-up: base image and pool
    barrier = threading.Barrier(count)

    def one(i: int) -> dict[str, Any]:
        barrier.wait(timeout=60)
        status, body, elapsed = client.send("POST", path, key=agent_key, json={"inputs": {"a": i, "b": 1}}, timeout=300)
        ok = status == 200 and isinstance(body, dict) and body.get("success") is True and body.get("output") == i + 1
        return {"status": status, "ms": elapsed, "ok": ok, "runner_ms": body.get("duration_ms") if isinstance(body, dict) else None,
                "error": None if ok else str(body)[:300]}  # fmt: skip

    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with ThreadPoolExecutor(max_workers=count) as pool:
        results = list(pool.map(one, range(count)))
    answered = sum(1 for r in results if r["status"] == 200)
    events = [e for e in client.audit("skill.execute", since) if e.get("skill_id") == skill_id]
    return {
        "count": count,
        "statuses": dict(Counter(str(r["status"]) for r in results)),
        "succeeded": sum(1 for r in results if r["ok"]),
        "server_errors": sum(1 for r in results if r["status"] >= 500 or r["status"] == 0),
        "latency": percentiles([r["ms"] for r in results]),
        "runner_duration": percentiles([r["runner_ms"] for r in results if r["runner_ms"] is not None]),
        "errors": [r["error"] for r in results if r["error"]][:5],
        "audit": reconcile(answered, events),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="API requests in the mix (imports included)")
    parser.add_argument("--concurrency", type=int, default=200, help="requests in flight at once")
    parser.add_argument("--imports", type=int, default=20, help="SKILL.md uploads in the mix")
    parser.add_argument("--executions", type=int, default=20, help="concurrent executions (needs the runner)")
    parser.add_argument("--no-runner", action="store_true", help="start the stack without the runner worker (no executions)")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--deadline", type=float, default=900, help="seconds before everything stops regardless")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.deadline
    run_id = datetime.now(UTC).strftime("%H%M%S")

    log(f"starting the local stack ({'no runner' if args.no_runner else 'with the runner worker'})")
    stack = LocalStack(with_runner=not args.no_runner).start()
    watchdog = threading.Timer(args.deadline, lambda: (log("deadline reached: stopping the stack"), stack.stop()))
    watchdog.daemon = True
    watchdog.start()
    try:
        client = Client(stack.url)
        agent = client.ok("POST", "/api/agents", 201, json={"agent_id": AGENT_ID, "maturity": "INTERN"})
        client.ok("POST", "/api/packages/approve", 201, json={"package_name": "six", "min_maturity": "INTERN"})
        since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

        operations = plan(args.requests, args.imports, run_id, args.seed)
        log(f"firing {len(operations)} requests, {args.concurrency} at once")
        started = time.perf_counter()
        results = fire(client, operations, args.concurrency, agent["api_key"])
        wall = time.perf_counter() - started

        import_ids = [r["body"]["import_id"] for r in results if r["kind"] == "import" and r["status"] == 202]
        log(f"waiting for {len(import_ids)} imports")
        finished = wait_for_imports(client, import_ids, deadline)

        checks_answered = sum(1 for r in results if r["kind"] == "check" and r["status"] == 200)
        check_events = client.audit("package.check", since)
        import_events = [e for e in client.audit("skill.import", since) if e["detail"].get("import_id") in set(import_ids)]
        step_events = [e for e in client.audit("import.step", since) if e["detail"].get("import_id") in set(import_ids)]
        steps_by_import: dict[str, list[str]] = defaultdict(list)
        for event in step_events:
            steps_by_import[event["detail"]["import_id"]].append(event["detail"]["step"])
        duplicated_steps = {i: s for i, s in steps_by_import.items() if len(s) != len(set(s))}
        unfinished_trail = [i for i in import_ids if "finalize" not in steps_by_import.get(i, []) and finished.get(i, {}).get("status") == "SUCCEEDED"]

        executions: dict[str, Any] = {"skipped": "started with --no-runner"}
        if not args.no_runner and args.executions > 0:
            log(f"running {args.executions} executions at once")
            executions = run_executions(client, args.executions, agent["api_key"], run_id, deadline)

        statuses = Counter(str(r["status"]) for r in results)
        server_errors = [r for r in results if r["status"] >= 500 or r["status"] == 0]
        document = {
            "benchmark": "load",
            "environment": environment(),
            "config": {"requests": len(operations), "concurrency": args.concurrency, "imports": args.imports,
                       "executions": 0 if args.no_runner else args.executions, "runner": not args.no_runner, "seed": args.seed},  # fmt: skip
            "wall_seconds": round(wall, 2),
            "throughput_rps": round(len(results) / wall, 1) if wall else None,
            "statuses": dict(statuses),
            "server_errors": len(server_errors),
            "server_error_samples": [{"kind": r["kind"], "status": r["status"], "body": str(r["body"])[:300]} for r in server_errors[:5]],
            "latency": {"all": percentiles([r["ms"] for r in results]),
                        **{kind: percentiles([r["ms"] for r in results if r["kind"] == kind]) for kind in ("check", "read", "import")}},  # fmt: skip
            "imports": {"accepted": len(import_ids), "finished": dict(Counter(v["status"] for v in finished.values())),
                        "unfinished": len(import_ids) - len(finished)},  # fmt: skip
            "audit": {
                "package.check": reconcile(checks_answered, check_events),
                "skill.import": reconcile(len(import_ids), import_events),
                "import.step": {"imports_with_a_step_twice": len(duplicated_steps), "succeeded_without_finalize_event": len(unfinished_trail),
                                "events": len(step_events)},  # fmt: skip
            },
            "executions": executions,
        }
        path = write_json(document, args.out, "load")
        log(f"wrote {path}")
        print(f"requests {len(results)} ({args.concurrency} at once) in {wall:.1f}s; statuses {dict(statuses)}; 5xx {len(server_errors)}")
        print(f"latency all {document['latency']['all']}")
        print(f"audit {document['audit']}")
        if isinstance(executions, dict) and "count" in executions:
            print(f"executions {executions['succeeded']}/{executions['count']} ok; latency {executions['latency']}; audit {executions['audit']}")
        lost = sum(v.get("lost", 0) + v.get("duplicated", 0) for v in document["audit"].values() if isinstance(v, dict))
        bad = server_errors or lost or duplicated_steps or unfinished_trail or (isinstance(executions, dict) and executions.get("server_errors"))
        return 1 if bad else 0
    finally:
        watchdog.cancel()
        stack.stop()
        log("stack stopped")


if __name__ == "__main__":
    raise SystemExit(main())
