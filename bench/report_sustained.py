"""The "Sustained load" section of docs/BENCHMARKS.md (results of bench/bench_sustained.py) and its plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import report

SCENARIOS = {"one_skill": "one skill", "ten_skills": "ten skills, ten images"}
ENGINE_PARTS = ("daemons", "shims", "fuse", "containers")


def plot(path: Path, scenarios: dict[str, Any], limit_ms: float) -> bool:
    measured = {name: data["steps"] for name, data in scenarios.items() if data.get("steps")}
    if not measured:
        return False
    plt = report._plt()
    fig, (latency, cold) = plt.subplots(1, 2, figsize=(8, 3.0))
    for name, steps in measured.items():
        rates = [s["rate_per_s"] for s in steps]
        label = SCENARIOS.get(name, name)
        latency.plot(rates, [s["api"].get("p95_ms") or float("nan") for s in steps], marker="o", label=label)
        cold.plot(rates, [100 * (s.get("cold_share") or 0) for s in steps], marker="o", label=label)
    latency.axhline(limit_ms, color="#b5523b", linestyle="--", linewidth=1)
    latency.set_yscale("log")
    latency.set_xlabel("arrivals per second")
    latency.set_ylabel("API p95, ms (log scale)")
    latency.set_title(f"API p95 (dashed: {limit_ms:g} ms)", fontsize=9)
    cold.set_xlabel("arrivals per second")
    cold.set_ylabel("% of runs cold")
    cold.set_ylim(bottom=0)
    cold.set_title("runs that found no warm container", fontsize=9)
    for ax in (latency, cold):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Sustained load through the HTTP API", fontsize=10)
    return report.save_plot(fig, path)


def _cpu(step: dict[str, Any]) -> tuple[str, str]:
    cpu = step.get("cpu_ms_per_run") or {}
    above = step.get("cpu_ms_per_run_above_idle") or {}
    parts = " + ".join(f"{cpu[p]:g}" for p in ENGINE_PARTS if p in cpu)
    engine = f"{cpu['engine']:g} ({parts})" if "engine" in cpu else "n/a"

    def own(name: str) -> str:
        return f"{cpu.get(name, 'n/a')}" + (f" ({above[name]:g})" if name in above else "")

    return engine, f"{own('api')} / {own('worker')}"


def table(steps: list[dict[str, Any]]) -> list[str]:
    lines = ["| rate | offered | runs | errors | API p50 | API p95 | cold | runner p50 | engine CPU per run, ms (daemons + shims + "
             "fuse + containers) | API / worker CPU per run, ms (above idle) | pool ready mean (min) | target max | starts at once max | "
             "refill | load | holds |", "|" + "---|" * 16]  # fmt: skip
    for s in steps:
        engine, own = _cpu(s)
        pool = s.get("pool") or {}
        api = s.get("api") or {}
        cold = f"{s['cold']} ({100 * s['cold_share']:.0f}%)" if s.get("cold_share") is not None else str(s.get("cold", "n/a"))
        load = (s.get("cpu_window") or {}).get("load_average") or ["?"]
        lines.append(f"| {s['rate_per_s']:g}/s | {s.get('offered_per_s', 'n/a')}/s | {s['ok']} | {s['errors']} | "
                     f"{report.fmt(api.get('p50_ms'))} | {report.fmt(api.get('p95_ms'))} | {cold} | "
                     f"{report.fmt((s.get('runner') or {}).get('p50_ms'))} | {engine} | {own} | {pool.get('ready_mean', 'n/a')} "
                     f"({pool.get('ready_min', 'n/a')}) | {pool.get('target_max', 'n/a')} | {pool.get('parallelism_max', 'n/a')} | "
                     f"{report.fmt(pool.get('refill_ms'))} | {load[0]} | {'yes' if s.get('holds') else 'no'} |")  # fmt: skip
    return lines


def ceiling(step: dict[str, Any], cpus: Any, idle: dict[str, float] | None = None) -> str:
    """What the host's CPUs allow at a step's CPU cost per run (engine, API and worker together): with the idle
    rates known, the CPU left beside them divided by the cost per run above idle."""
    parts = ("engine", "api", "worker")
    cpu = step.get("cpu_ms_per_run") or {}
    total = sum(cpu.get(k) or 0 for k in parts)
    above = step.get("cpu_ms_per_run_above_idle") or {}
    try:
        if idle and above and sum(above.get(k) or 0 for k in parts):
            busy = 1000 * sum(idle.get(f"{k}_s") or 0 for k in parts)
            extra = sum(above.get(k) or 0 for k in parts)
            return (f"{total:,.0f} ms of CPU per run in all, {extra:,.0f} ms above what the same processes spend idle "
                    f"({busy:,.0f} ms per second); so {int(cpus)} CPUs serve at most {(int(cpus) * 1000 - busy) / extra:.1f} runs/s")
        return f"{total:,.0f} ms of CPU per run in all, so {int(cpus)} CPUs serve at most {int(cpus) * 1000 / total:.1f} runs/s" if total else ""
    except (TypeError, ValueError, ZeroDivisionError):
        return ""


def _budget(cpus: Any, rate: Any) -> str:
    try:
        return f" (the target of {float(rate):g}/s leaves {int(cpus) * 1000 / float(rate):,.0f} ms of CPU per run, with nothing else on the host)"
    except (TypeError, ValueError, ZeroDivisionError):
        return ""


def section(data: dict[str, Any], images: Path) -> list[str]:
    if not data:
        return []
    env = data.get("environment") or {}
    limit = data.get("p95_limit_ms", 100)
    headline = data.get("headline") or {}
    settings = data.get("pool_settings") or {}
    lines = ["## Sustained load (open-loop arrivals through the HTTP API)", "",
             f"`bench/bench_sustained.py`: {data.get('arrivals', '?')} arrivals at each rate from a client process of its own "
             f"(requests are sent on schedule whether or not earlier ones were answered), {data.get('warmup_s', '?')} s of warm-up "
             f"then {data.get('seconds', '?')} s measured per rate, through POST /api/skills/{{id}}/execute on the "
             f"{data.get('path', 'direct')} path; the pool at its settings ({settings.get('size_per_image', '?')} per image at least, "
             f"{settings.get('max_total', '?')} in all). *one skill*: a hello-world skill without packages; *ten skills*: arrivals "
             "round robin over ten hello-world skills that each declare one small package (ten images, ten pool keys under one "
             "cap). A rate holds when its API p95 is within "
             f"{limit:g} ms with no cold run (the result's `warm` flag) and no error; the search goes up until two rates in a row "
             f"miss. Load average at the step's start {env.get('load_average', '?')}"
             f"{report._load_note(env.get('load_average'), env.get('cpu_count'))}; each rate's own is in its row.", ""]  # fmt: skip
    for name, label in (("one_skill", "one skill"), ("ten_skills", "ten skills")):
        value = headline.get(f"{name}_highest_per_s")
        if name in (data.get("scenarios") or {}):
            lines.append(f"* highest rate that held, {label}: **{f'{value:g}/s' if value else 'none (not even the lowest rate)'}** "
                         f"(target ≥ {data.get('target_rate_per_s', 5):g}/s on one skill)")  # fmt: skip
    for name, why in (data.get("setup_errors") or {}).items():
        lines.append(f"* {SCENARIOS.get(name, name)}: not measured, {why}")
    lines.append("")
    for name, scenario in (data.get("scenarios") or {}).items():
        steps = scenario.get("steps") or []
        if not steps:
            continue
        lines += [f"### {SCENARIOS.get(name, name).capitalize()}", "", *table(steps), ""]
        cost = ceiling(steps[0], env.get("cpu_count"), data.get("idle_cpu_s_per_s"))
        if cost:
            budget = _budget(env.get("cpu_count"), data.get("target_rate_per_s"))
            lines += [f"At the lowest rate: {cost}{budget}.", ""]
    lines += report.image("bench-sustained.png", plot(images / "bench-sustained.png", data.get("scenarios") or {}, limit),
                          "sustained load: p95 and cold share by rate")  # fmt: skip
    lines += [READING, ""]
    return lines


READING = """\
Reading the sustained figures:

* *engine CPU per run* is read from /proc and the cgroup tree over each rate's whole window (warm-up included), divided
  by the runs answered: dockerd and containerd (shared by everything on the engine: other work on the machine lands
  there too), the containerd shim, the fuse-overlayfs process (the storage driver here: every file an interpreter opens
  goes through it) and the cgroup of each container the worker created. The API process (the local stack, with moto
  serving DynamoDB and SQS in the same process) and the worker are counted apart.
* a warm run still costs a whole container: the pool starts its replacement (create, start, two interpreters), and
  removes the used one, so the CPU per run hardly depends on warm or cold; warm only moves that work off the request
  path. On a small host the sustained rate is therefore bounded by the CPU per run, whatever the pool's size.
* *target max* is the pool's demand-sized target for the keys in use (ready and starting containers), *starts at once
  max* how many containers it let start together, *refill* its measured create-to-ready time at the end of the rate."""
