"""Sustained load through the HTTP API: open-loop arrivals at increasing steady rates (issue 20, item 3).

    .venv/bin/python -m bench.bench_sustained [--rates 1,2,3,4,5,6,8,10] [--seconds 15] [--warmup 4]
                                              [--arrivals poisson|fixed] [--scenarios one_skill,ten_skills]
                                              [--out FILE]

The local stack and the runner worker are set up as in ``bench.bench_api`` (direct run path, the
worker's pool at its configured sizes). Two scenarios:

* ``one_skill``: every arrival executes one hello-world skill (no packages: the base image);
* ``ten_skills``: arrivals go round robin over ten skills that each declare one small package, so
  each has its own image and its own warm-pool key (ten keys share the pool's global cap).

For each rate (increasing; the search stops after two rates in a row miss), arrivals come from a
client process of their own (``bench.open_loop``) for ``warmup + seconds``; only those after the
warm-up count (the pool's demand estimate needs a few seconds of the new rate). Per rate: API
p50/p95, the share of cold runs (the run result's ``warm`` flag), the engine's CPU per run
(``bench.engine_cpu``: dockerd + containerd, the runner's shims and containers), the API and worker
processes' CPU per run, and the pool's sizes (sampled from the worker every 0.5 s). The figure
reported is the highest rate at which every rate up to it kept API p95 ≤ 100 ms with no cold run.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench import sustained_plan
from bench.bench_api import ApiBench, Worker, free_port
from bench.common import ROOT, environment, log, write_json
from bench.engine_cpu import CpuMeter

HELLO = "---\nname: {name}\ndescription: Greets under a steady load.\n---\n```python\ndef execute(name='world'):\n    return f'hello {{name}}'\n```\n"
WITH_PACKAGE = ("---\nname: {name}\ndescription: Greets under a steady load, with one package.\npackages:\n  - {package}\n---\n"
                "```python\nimport {module}\n\ndef execute(name='world'):\n    return f'hello {{name}}'\n```\n")  # fmt: skip
#: ten small pure-Python distributions (name, import name): one image and one pool key per skill
PACKAGES = (("six", "six"), ("idna", "idna"), ("attrs", "attr"), ("packaging", "packaging"), ("pyparsing", "pyparsing"),
            ("tomli", "tomli"), ("wcwidth", "wcwidth"), ("colorama", "colorama"), ("decorator", "decorator"),
            ("iniconfig", "iniconfig"))  # fmt: skip
TARGET_RATE = 5.0
POOL_SAMPLE_SECONDS = 0.5
#: an import that builds its image and has not finished by then leaves its scenario out (recorded in setup_errors)
IMPORT_TIMEOUT = 180.0


def fire(url: str, headers: dict[str, str], arrivals: list[tuple[float, str]], timeout: float) -> list[dict[str, Any]]:
    plan = {"url": url, "headers": headers, "body": {"inputs": {"name": "load"}}, "timeout_s": 60,
            "arrivals": [[offset, f"/api/skills/{skill}/execute"] for offset, skill in arrivals]}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "bench.open_loop"], cwd=ROOT, input=json.dumps(plan), capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"load client failed: {done.stderr[-1000:]}")
    return json.loads(done.stdout)


class PoolSampler:
    """The worker's pool sizes every POOL_SAMPLE_SECONDS while a step runs."""

    def __init__(self, worker: Worker):
        self.worker, self.samples, self._stop = worker, [], threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pool-sampler", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(POOL_SAMPLE_SECONDS):
            self.samples.append(self.worker.ask(cmd="stats"))

    def __enter__(self) -> PoolSampler:
        self.first = self.worker.ask(cmd="stats")
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.last = self.worker.ask(cmd="stats")

    def figures(self, images: set[str]) -> dict[str, Any]:
        def of_keys(stats: dict[str, Any], field: str) -> int:
            return sum(p[field] for p in stats.get("pools", []) if p["image"] in images)

        ready = [of_keys(s, "ready") for s in self.samples] or [0]
        target = [of_keys(s, "target") for s in self.samples] or [0]
        delta = {k: self.last.get(k, 0) - self.first.get(k, 0) for k in ("hits", "misses", "created", "failures")}
        return {"ready_min": min(ready), "ready_mean": round(sum(ready) / len(ready), 2), "ready_max": max(ready),
                "target_max": max(target), "idle_total_max": max([s.get("idle", 0) for s in self.samples] or [0]),
                "starting_max": max([s.get("starting", 0) for s in self.samples] or [0]),
                "parallelism_max": max([s.get("parallelism", 0) for s in self.samples] or [0]),
                "refill_ms": self.last.get("refill_ms"), **delta}  # fmt: skip


def run_step(bench: ApiBench, worker: Worker, headers: dict[str, str], skills: list[str], images: set[str], rate: float,
             args: argparse.Namespace, seed: int, idle: dict[str, float]) -> dict[str, Any]:  # fmt: skip
    total = args.warmup + args.seconds
    arrivals = sustained_plan.assign(sustained_plan.arrivals(rate, total, args.arrivals, seed), skills, seed)
    meter = CpuMeter(worker.process.pid, {"api": os.getpid(), "worker": worker.process.pid}).start()
    with PoolSampler(worker) as sampler:
        outcomes = fire(bench.url, headers, arrivals, timeout=total + 120)
    cpu = meter.stop()
    figures = sustained_plan.step_figures(rate, outcomes, args.warmup)
    runs = sum(1 for o in outcomes if o.get("ok")) or 1
    figures["cpu_ms_per_run"] = {k.removesuffix("_s"): round(v * 1000 / runs, 1) for k, v in cpu.items() if k.endswith("_s")}
    # what the processes spend with nothing arriving (the local stack's moto answering the worker's long polls, say)
    # is not the runs' cost: per run above that idle rate
    figures["cpu_ms_per_run_above_idle"] = {
        k.removesuffix("_s"): round(max(0.0, v - idle.get(k, 0.0) * cpu["seconds"]) * 1000 / runs, 1)
        for k, v in cpu.items() if k.endswith("_s")}  # fmt: skip
    figures["cpu_window"] = {"runs": runs, "containers_seen": cpu["containers_seen"], "load_average": _load()}
    figures["pool"] = sampler.figures(images)
    return figures


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def settle(worker: Worker, seconds: float = 3.0) -> None:
    """Let the previous step's removals and refills finish before the next rate."""
    worker.ask(cmd="ready", count=2)
    time.sleep(seconds)


def scenario(bench: ApiBench, worker: Worker, headers: dict[str, str], skills: list[str], images: set[str],
             args: argparse.Namespace, idle: dict[str, float]) -> dict[str, Any]:  # fmt: skip
    steps: list[dict[str, Any]] = []
    for n, rate in enumerate(args.rates):
        if not sustained_plan.keep_going(steps):
            break
        settle(worker)
        log(f"  {len(skills)} skill(s) at {rate}/s for {args.warmup + args.seconds:g} s")
        step = run_step(bench, worker, headers, skills, images, rate, args, seed=n, idle=idle)
        log(f"    p50 {step['api'].get('p50_ms')} ms, p95 {step['api'].get('p95_ms')} ms, cold {step['cold']}/{step['ok']}, "
            f"errors {step['errors']}, engine CPU {step['cpu_ms_per_run'].get('engine')} ms/run, pool ready {step['pool']['ready_mean']}")  # fmt: skip
        steps.append(step)
    return {"skills": skills, "steps": steps, "highest_held_per_s": sustained_plan.highest_held(steps)}


def idle_cpu(worker: Worker, seconds: float) -> dict[str, float]:
    """CPU seconds per second of each part while nothing arrives (the pool full, no removal pending)."""
    settle(worker, 1.0)
    meter = CpuMeter(worker.process.pid, {"api": os.getpid(), "worker": worker.process.pid}).start()
    time.sleep(seconds)
    cpu = meter.stop()
    return {k: round(v / cpu["seconds"], 4) for k, v in cpu.items() if k.endswith("_s")}


def import_skills(bench: ApiBench, scenarios: list[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The skills of each scenario (imported now) and the scenarios that could not be set up, with why."""
    skills: dict[str, list[str]] = {}
    failed: dict[str, str] = {}
    if "one_skill" in scenarios:
        _, record = bench.import_skill(HELLO.format(name="steady-hello"))
        if record.get("status") == "SUCCEEDED":
            skills["one_skill"] = ["steady-hello"]
        else:
            failed["one_skill"] = f"import: {json.dumps(record)[:300]}"
    if "ten_skills" in scenarios:
        names = []
        for package, module in PACKAGES:
            status, body = bench.post("/api/packages/approve", {"package_name": package, "min_maturity": "INTERN"}, bench.admin)
            if status not in (200, 201):
                failed["ten_skills"] = f"approve {package}: {body}"
                break
            name = f"steady-{package}"
            elapsed, record = bench.import_skill(WITH_PACKAGE.format(name=name, package=package, module=module), timeout=IMPORT_TIMEOUT)
            if record.get("status") != "SUCCEEDED":
                failed["ten_skills"] = f"import {name}: {json.dumps(record)[:300]}"
                break
            log(f"  imported {name} in {elapsed / 1000:.1f} s")
            names.append(name)
        if "ten_skills" not in failed:
            skills["ten_skills"] = names
    return skills, failed


def run(args: argparse.Namespace) -> dict[str, Any]:
    bench = ApiBench()
    secret = secrets.token_urlsafe(32)
    direct_url = f"http://127.0.0.1:{free_port()}"
    os.environ["SKILLHARBOR_RUNNER_SECRET"] = secret
    worker = Worker({"SKILLHARBOR_RUNNER_LISTEN": direct_url.removeprefix("http://"), "SKILLHARBOR_RUNNER_SECRET": secret})
    os.environ["SKILLHARBOR_RUNNER_URL"] = direct_url
    out: dict[str, Any] = {"arrivals": args.arrivals, "seconds": args.seconds, "warmup_s": args.warmup, "rates": args.rates,
                           "p95_limit_ms": sustained_plan.P95_LIMIT_MS, "target_rate_per_s": TARGET_RATE,
                           "path": "direct (make run's default)", "scenarios": {}}  # fmt: skip
    try:
        from chalicelib.settings import get_settings

        settings = get_settings()
        out["pool_settings"] = {"size_per_image": settings.pool_size_per_image, "max_total": settings.pool_max_total}
        log("importing the skills")
        skills, failed = import_skills(bench, args.scenarios)
        out["setup_errors"] = failed
        headers = bench.agent("steady-agent")
        out["idle_cpu_s_per_s"] = idle = idle_cpu(worker, 5.0)
        log(f"idle CPU per second: {idle}")
        for name, names in skills.items():
            images = set()
            for skill in names:  # first runs: the API's caches and each key's pool
                status, result = bench.post(f"/api/skills/{skill}/execute", {"inputs": {}}, headers)
                assert status == 200 and result.get("status") == "ok", result
                images.add(result.get("image"))
            log(f"scenario {name}: {len(names)} skill(s), {len(images)} image(s)")
            out["scenarios"][name] = {**scenario(bench, worker, headers, names, images, args, idle), "images": sorted(images)}
    finally:
        os.environ.pop("SKILLHARBOR_RUNNER_URL", None)
        worker.stop()
        bench.stop()
    one = out["scenarios"].get("one_skill") or {}
    out["headline"] = {  # 0: measured, and not even the lowest rate held; None: not measured
        "one_skill_highest_per_s": _highest(one),
        "ten_skills_highest_per_s": _highest(out["scenarios"].get("ten_skills") or {}),
        "one_skill_engine_cpu_ms_per_run": _at(one, TARGET_RATE, ("cpu_ms_per_run", "engine")),
    }
    return out


def _highest(scenario_: dict[str, Any]) -> float | None:
    if not scenario_.get("steps"):
        return None
    return scenario_.get("highest_held_per_s") or 0.0


def _at(scenario_: dict[str, Any], rate: float, path: tuple[str, ...]) -> Any:
    for step in scenario_.get("steps", []):
        if step["rate_per_s"] == rate:
            value: Any = step
            for part in path:
                value = (value or {}).get(part)
            return value
    return None


def main() -> int:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server would log every call, as make run does not
    parser = argparse.ArgumentParser(description="sustained open-loop load through the HTTP API (issue 20, item 3)")
    parser.add_argument("--rates", default="1,2,3,4,5,6,8,10", help="comma-separated runs per second, increasing")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per rate")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds per rate before the measured part")
    parser.add_argument("--arrivals", choices=("poisson", "fixed"), default="poisson")
    parser.add_argument("--scenarios", default="one_skill,ten_skills")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.rates = sorted(float(r) for r in args.rates.split(",") if r.strip())
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(args.scenarios) - {"one_skill", "ten_skills"}
    if unknown or not args.rates or any(r <= 0 for r in args.rates):
        parser.error(f"rates must be positive; scenarios are one_skill, ten_skills (not {sorted(unknown)})")
    document: dict[str, Any] = {"benchmark": "sustained", "environment": environment(), **run(args)}
    path = write_json(document, args.out, "sustained")
    print(json.dumps(document["headline"]))
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
