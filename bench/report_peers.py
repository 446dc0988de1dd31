"""The "Peers" section of docs/BENCHMARKS.md (results of bench/bench_peers.py) and its plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import report

SKILLHARBOR_WARM = "skillharbor warm pool"
SKILLHARBOR_COLD = "skillharbor cold"


def _ratio(stats: dict[str, Any] | None, base: dict[str, Any] | None) -> str:
    if not stats or not base or not stats.get("n") or not base.get("n"):
        return "n/a"
    return f"{stats['p50_ms'] / base['p50_ms']:.2f}x"


def latency_table(variants: dict[str, Any], reference: dict[str, str], versus: str = "skillharbor (same mode)") -> list[str]:
    """One row per variant; the ratio is to skillharbor's variant for its mode (``reference[mode]``)."""
    lines = [f"| variant | peer | mode | n | p50 | p95 | p50 ratio to {versus} | left for after the answer, p50 |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, stats in variants.items():
        base = variants.get(reference.get(stats["mode"], ""))
        teardown = (stats.get("teardown_after_answer") or {}).get("p50_ms")
        lines.append(f"| {name} | {stats['peer']} | {stats['mode']} | {stats['n']} | {report.fmt(stats.get('p50_ms'))} | "
                     f"{report.fmt(stats.get('p95_ms'))} | {_ratio(stats, base)} | {report.fmt(teardown) if teardown else ''} |")  # fmt: skip
    return lines


def throughput_plot(path: Path, bursts: dict[str, Any]) -> bool:
    rows = [(name, data) for name, data in bursts.items() if data.get("throughput_per_s")]
    if not rows:
        return False
    plt = report._plt()
    fig, ax = plt.subplots(figsize=(7, 3.0))
    names = [name for name, _ in rows]
    values = [data["throughput_per_s"] for _, data in rows]
    ax.barh(names, values, color=["#b5523b" if d["peer"] == "skillharbor" else "#3b6ea8" for _, d in rows])
    for y, value in enumerate(values):
        ax.text(value, y, f"  {value:.2f}/s", va="center", fontsize=8)
    ax.set_xlabel("runs per second (20 at once; higher is better)")
    ax.set_title("20 concurrent hello-world runs: throughput", fontsize=10)
    ax.invert_yaxis()
    ax.margins(x=0.2)
    return report.save_plot(fig, path)


def memory_plot(path: Path, memory: list[tuple[str, str, float | None, float | None]]) -> bool:
    rows = [(f"{name} ({workload})", (working, usage)) for name, workload, working, usage in memory if working]
    if not rows:
        return False
    plt = report._plt()
    fig, ax = plt.subplots(figsize=(7, 1.4 + 0.3 * len(rows)))
    names = [name for name, _ in rows]
    ax.barh(names, [v[1] or 0 for _, v in rows], color="#c9d6ea", label="engine usage (with page cache)")
    ax.barh(names, [v[0] for _, v in rows], color="#3b6ea8", label="working set (as docker stats shows)")
    for y, (_, v) in enumerate(rows):
        ax.text(max(v[0], v[1] or 0), y, f"  {v[0]:.1f} MiB", va="center", fontsize=8)
    ax.set_xlabel("MiB per idle warm container")
    ax.set_title("Memory of one idle warm container", fontsize=10)
    ax.invert_yaxis()
    ax.margins(x=0.2)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
    return report.save_plot(fig, path, tight_box=True)


def _memory_rows(*sections: tuple[str, dict[str, Any]]) -> list[tuple[str, str, float | None, float | None]]:
    """(variant, workload, working set MiB, engine usage MiB), averaged over the variant's idle containers."""
    rows = []
    for workload, data in sections:
        for name, containers in (data.get("idle_container_memory") or {}).items():
            working = [c["working_set_bytes"] for c in containers if c.get("working_set_bytes") is not None]
            usage = [c["usage_bytes"] for c in containers if c.get("usage_bytes") is not None]
            if working:
                rows.append((name, workload, report._mib(sum(working) / len(working)),
                             report._mib(sum(usage) / len(usage)) if usage else None))  # fmt: skip
    return rows


def memory_table(rows: list[tuple[str, str, float | None, float | None]]) -> list[str]:
    own = {workload: working for name, workload, working, _ in rows if name == SKILLHARBOR_WARM}
    lines = ["| container | workload | working set | ratio to skillharbor's | engine usage |", "|---|---|---|---|---|"]
    for name, workload, working, usage in rows:
        versus = f"{working / own[workload]:.2f}x" if working and own.get(workload) else "n/a"
        lines.append(f"| {name} | {workload} | {report.fmt(working, 'MiB')} | {versus} | {report.fmt(usage, 'MiB')} |")
    return lines


def section(peers: dict[str, Any], images: Path) -> list[str]:
    if not peers:
        return []
    env = peers.get("environment") or {}
    headline = peers.get("headline") or {}
    lines = ["## Peers: llm-sandbox, epicbox and plain Docker beside skillharbor", "",
             f"`bench/bench_peers.py`, in the same run: every sandbox on the same engine, with skillharbor's base image "
             f"`{peers.get('base_image', '?')}` (and its numpy+pandas env image), nothing pulled. Load average at the step's "
             f"start {env.get('load_average', '?')}{report._load_note(env.get('load_average'), env.get('cpu_count'))}. "
             "Each peer runs the same skill code as a script that prints its result as JSON, and every result is checked "
             "against the others. *Latency* is from the call until the result is in the caller's hands; what a caller "
             "need not wait for (removing the used container: a closed llm-sandbox session, `epicbox.destroy`, the "
             "SDK's remove) is done before the next timed run and shown apart. Warm modes: skillharbor's pool (a fresh, "
             "started container per run, packages pre-imported); llm-sandbox's kept session and its container pool (a "
             "new process in a container that is reused: runs share its leftovers); `docker exec` into a kept hardened "
             "container is the floor of any such exec-based warm mode. epicbox and `docker run` have no warm mode.", ""]  # fmt: skip

    fastest = headline.get("fastest_mode_per_peer") or {}
    if fastest:
        lines += ["Each peer's fastest mode against skillharbor's warm path (hello world; goal ≥ 10x), and skillharbor's "
                  "cold run against `docker run` running the same script (goal ≤ 1.1x):", "",
                  "| peer | its fastest mode | p50 | skillharbor warm is faster by |", "|---|---|---|---|"]  # fmt: skip
        for peer, data in fastest.items():
            ratio = data.get("ratio_to_skillharbor_warm")
            lines.append(f"| {peer} | {data['variant']} | {report.fmt(data['p50_ms'])} | {f'{ratio:g}x' if ratio else 'n/a'} |")
        cold_ratio = headline.get("skillharbor_cold_ratio_to_docker_run")
        lines += ["", f"skillharbor cold / `docker run --rm` (same script, same flags): "
                  f"{f'{cold_ratio:.2f}x' if cold_ratio else 'n/a'}.", ""]  # fmt: skip

    reference = {"cold": SKILLHARBOR_COLD, "warm": SKILLHARBOR_WARM}
    hello = {**((peers.get("hello_cold") or {}).get("variants") or {}), **((peers.get("hello_warm") or {}).get("variants") or {})}
    if hello:
        lines += ["### Hello world", ""] + latency_table(hello, reference) + [""]
        rows = list(hello.items())
        lines += report.image("bench-peers-hello.png", report.bar_plot(images / "bench-peers-hello.png", "Peers: hello world, "
                              "cold and warm", rows, log_scale=True), "peers hello world")  # fmt: skip

    heavy = peers.get("numpy_pandas_warm") or {}
    lines += ["### numpy + pandas, warm", ""]
    if heavy.get("skipped"):
        lines += [f"Not measured: {heavy['skipped']}", ""]
    elif heavy.get("variants"):
        lines += [f"The seed data-summary skill on image `{heavy.get('image', '?')}` ({', '.join(heavy.get('packages', []))}); "
                  "epicbox has no warm mode, so its row is its new container per run.", ""]  # fmt: skip
        lines += latency_table(heavy["variants"], {"cold": SKILLHARBOR_WARM, "warm": SKILLHARBOR_WARM}, "skillharbor warm") + [""]
        lines += report.image("bench-peers-numpy.png", report.bar_plot(images / "bench-peers-numpy.png", "Peers: numpy+pandas "
                              "skill, warm", list(heavy["variants"].items()), log_scale=True), "peers numpy pandas")  # fmt: skip

    bursts = (peers.get("bursts") or {}).get("variants") or {}
    if bursts:
        base = next((d for d in bursts.values() if d["peer"] == "skillharbor"), None)
        lines += ["### 20 concurrent runs", "",
                  f"{peers['bursts'].get('rounds', '?')} burst(s) of 20 hello-world runs at once per variant; skillharbor "
                  "through the worker's engine (its pool's warm containers, the rest cold), llm-sandbox's pool with as many "
                  "containers as skillharbor's pool per image (runs wait for a free one).", "",
                  "| variant | runs | errors | throughput | skillharbor / peer | p50 | p95 | max |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for name, data in bursts.items():
            versus = f"{base['throughput_per_s'] / data['throughput_per_s']:.2f}x" if base and data.get("throughput_per_s") else "n/a"
            lines.append(f"| {name} | {data['n']} | {data['errors']} | {data['throughput_per_s']}/s | {versus} | "
                         f"{report.fmt(data['p50_ms'])} | {report.fmt(data['p95_ms'])} | {report.fmt(data['max_ms'])} |")  # fmt: skip
        hits = peers["bursts"].get("skillharbor_warm_hits")
        lines += ([""] + ([f"skillharbor's warm containers used: {hits} of {base['n']}."] if hits is not None and base else []) + [""])
        lines += report.image("bench-peers-bursts.png", throughput_plot(images / "bench-peers-bursts.png", bursts), "peers bursts")

    memory = _memory_rows(("hello", peers.get("hello_warm") or {}), ("numpy+pandas", heavy))
    if memory:
        lines += ["### Memory of an idle warm container", "",
                  "From the engine's stats after the warm runs (`memory_stats`: working set = usage minus inactive file "
                  "pages, as `docker stats` shows it). skillharbor's idle container holds a started supervisor and a "
                  "child interpreter (with the packages imported); the peers' hold `sleep` and whatever page cache "
                  "their earlier runs left.", ""]  # fmt: skip
        lines += memory_table(memory) + [""]
        lines += report.image("bench-peers-memory.png", memory_plot(images / "bench-peers-memory.png", memory), "peers memory")

    lines += [READING, ""]
    lines += hardening_section(peers.get("hardening") or {})
    lines += configuration_section(peers)
    errors = {f"{part}: {name}": text for part in ("hello_cold", "hello_warm", "numpy_pandas_warm", "bursts")
              for name, text in ((peers.get(part) or {}).get("errors") or {}).items()}  # fmt: skip
    if errors:
        lines += ["Variants that failed in this run:", ""] + [f"* {k}: {v[:300]}" for k, v in errors.items()] + [""]
    return lines


READING = """\
Reading the peers' figures:

* epicbox has no CPU quota setting: its runs may use a whole core, while every other sandbox here is held to
  skillharbor's default of 0.5 CPU. That favours it wherever interpreter start-up dominates (cold runs,
  importing numpy and pandas).
* llm-sandbox's warm modes start a new python process per run (an `exec`), after copying the code in (an
  `exec` of `mkdir -p`, then the archive API), so a numpy+pandas skill imports its packages on every run; its
  kept session and its pool
  reuse one container across runs, where skillharbor gives every run a fresh container.
* `docker run --rm` includes the removal (the CLI waits for it); the SDK floor, llm-sandbox's session close,
  `epicbox.destroy` and skillharbor's cold removal are left for after the answer.
* The floors are the engine's own cost with no sandbox library on top; `docker exec` into a kept container is
  the floor of exec-based warm modes such as llm-sandbox's."""


def hardening_section(found: dict[str, Any]) -> list[str]:
    probed = {name: entry for name, entry in found.items() if entry.get("readings")}
    if not probed:
        return []
    properties = list(next(iter(probed.values()))["readings"])
    lines = ["### Isolation, read from inside each container", "",
             "A probe skill run through each peer's own path reads its process status, mounts, cgroup limits and "
             "rlimits. skillharbor's flags were passed wherever the peer takes them; what is still missing is listed "
             "below the table, with the reason.", "",
             "| | " + " | ".join(probed) + " |", "|---|" + "---|" * len(probed)]  # fmt: skip
    for prop in properties:
        lines.append(f"| {prop} | " + " | ".join(entry["readings"].get(prop, "?") for entry in probed.values()) + " |")
    lines.append("")
    for name, entry in probed.items():
        if entry.get("lacks"):
            lines.append(f"* **{name}** lacks: " + "; ".join(
                f"*{prop}*" + (f" ({entry['why'][prop]})" if prop in (entry.get("why") or {}) else "") for prop in entry["lacks"]))  # fmt: skip
    for name, entry in found.items():
        if entry.get("error"):
            lines.append(f"* **{name}**: the probe failed: {entry['error'][:300]}")
        elif entry.get("note"):
            lines.append(f"* {name}: {entry['note']}.")
    return lines + [""]


def configuration_section(peers: dict[str, Any]) -> list[str]:
    configured: dict[str, Any] = {}
    for part in ("hello_cold", "hello_warm", "numpy_pandas_warm", "bursts"):
        for name, config in ((peers.get(part) or {}).get("configuration") or {}).items():
            configured.setdefault(name, {k: v for k, v in config.items() if k != "not applied"})
    if not configured:
        return []
    lines = ["### How each variant was configured", ""]
    first_with: dict[str, str] = {}  # a setting's text -> the variant it was first shown for
    for name, config in configured.items():
        parts = []
        for key, value in config.items():
            text = value if isinstance(value, str) else f"`{json.dumps(value, default=str)}`"
            shown_for = first_with.setdefault(f"{key}={text}", name)
            parts.append(f"{key}: {text}" if shown_for == name or len(text) < 60 else f"{key}: as for {shown_for}")
        lines.append(f"* **{name}**: " + "; ".join(parts))
    return lines + [""]
