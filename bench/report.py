"""docs/BENCHMARKS.md and its plots (docs/img/bench-*.png) from a results file.

    .venv/bin/python -m bench.report [bench/results/<date>.json]

Without an argument the newest ``bench/results/YYYY-MM-DD.json`` is used.

The results file (``bench/run_all.py`` writes it) holds one key per step, each that step's own JSON
document: ``b1``, ``execution``, ``api``, ``build``, ``peers``, ``runtimes``, ``malice``,
``sustained``, plus ``started``, ``environment``, ``steps`` (seconds per step), ``errors`` (step →
text) and ``duration_s``. A missing step's section is left out or shows n/a; the sections below are
optional: each renders only when its key is in the results, or else from the newest
``bench/results/<key>-YYYY-MM-DD.json`` its benchmark wrote when run alone (``report_optional``).
A stats block is ``bench.common.summary``'s: ``{"n", "p50_ms", "p95_ms", "mean_ms", "min_ms",
"max_ms", "samples_ms"}``.

* ``sustained`` (bench_sustained): ``{"arrivals", "seconds", "warmup_s", "p95_limit_ms",
  "target_rate_per_s", "pool_settings", "setup_errors", "headline": {"one_skill_highest_per_s",
  "ten_skills_highest_per_s", ...}, "scenarios": {"one_skill" | "ten_skills": {"skills",
  "highest_held_per_s", "steps": [{"rate_per_s", "offered_per_s", "ok", "errors", "cold",
  "cold_share", "holds", "api": stats, "runner": stats, "cpu_ms_per_run": {"engine", "daemons",
  "shims", "fuse", "containers", "api", "worker"}, "cpu_window": {"load_average"}, "pool":
  {"ready_mean", "ready_min", "target_max", "parallelism_max", "refill_ms"}}]}}}``;
* ``commands`` (B8, bench_commands): ``{"b8": {"rounds", "path", "warm_command": stats,
  "round_trip_1mib": stats, "runner_duration": {variant: stats}}}``;
* ``fleet`` (bench_fleet): ``{"workers": {"<count>": {"runs", "errors", "throughput_per_s",
  "p50_ms", "p95_ms"}}, "notes": str, "markdown": [lines of a section of its own]}`` (any part
  may be absent: a plot of throughput by workers is drawn when ``workers`` is there);
* ``scan`` (bench_scan, which writes ``scan-<date>.json`` itself): ``{"advisory_db":
  {"cold_load_ms", "warm_load": {"median_ms"}}, "scan_200_pins": {"audit": {"median_ms"}},
  "import_scan_step": {"skills", "p50_ms", "p90_ms", "max_ms", "slowest": {skill: ms},
  "excludes"}, "targets": {"warm_load_ms", "scan_200_pins_ms", "import_scan_step_p50_ms"},
  "meets_targets": {"warm_load", "scan_200_pins", "import_scan_step"}}``;
* ``api-path`` (B9, bench_api_path, which writes ``api-path-<date>.json`` itself): ``{"moto_call":
  {"get_item_end_to_end", "get_item_inside_moto"}, "b9": {"<path>": stats, "targets_p50_ms", "met",
  "aws_calls": {"<path>": {"calls_per_request", "aws_ms_per_request"}}, "note"}}``;
* ``behaviour`` (bench_behaviour): ``{"rounds", "probe_ms": {"<skill>/<runtime>": stats,
  "runsc_over_runc_code": ratio}}``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from bench.common import RESULTS, ROOT

DOCS = ROOT / "docs"
IMAGES = DOCS / "img"

# (id, description, where the figure is, comparison, limit)
TARGETS = [
    ("B2", "warm p50 at the runner", ("execution", "b2_runner", "warm_pool", "p50_ms"), "<=", 25.0, "ms"),
    ("B2", "warm p50 through the HTTP API (direct run path, `make run`'s default)", ("api", "b2_api", "warm_pool", "p50_ms"), "<=", 60.0, "ms"),
    ("B2", "warm p50 through the HTTP API (queue path, the fallback)", ("api", "b2_api", "warm_pool_queue", "p50_ms"), "<=", 60.0, "ms"),
    ("B2", "cold p50 / reference `docker run` p50", ("execution", "b2_runner", "ratio_cold_to_reference"), "<=", 1.2, "x"),
    ("B3", "pre-imported numpy+pandas p50", ("execution", "b3", "preimported_pool", "p50_ms"), "<=", 30.0, "ms"),
    ("B4", "rebuild of an unchanged set, p50 (six)", ("build", "one_package", "rebuild_unchanged", "p50_ms"), "<=", 100.0, "ms"),
    ("B4", "rebuild of an unchanged set, p50 (numpy+pandas)", ("build", "numpy_pandas", "rebuild_unchanged", "p50_ms"), "<=", 100.0, "ms"),
    ("B5", "import without packages, p50", ("api", "b5", "no_packages", "p50_ms"), "<=", 1000.0, "ms"),
    ("B6", "errors in 20 concurrent executions, pool on", ("execution", "b6", "pool_on", "errors"), "==", 0, ""),
    ("B6", "errors in 20 concurrent executions, pool off", ("execution", "b6", "pool_off", "errors"), "==", 0, ""),
    ("B1", "permission check cache hit p99", ("b1", "hit", "p99_us"), "<=", 10.0, "µs"),
    ("Peers", "fastest peer mode p50 / skillharbor warm p50 (the closest of llm-sandbox, epicbox)",
     ("peers", "headline", "min_peer_fastest_ratio_to_skillharbor_warm"), ">=", 10.0, "x"),
    ("Peers", "skillharbor cold p50 / `docker run` p50 (same script)", ("peers", "headline", "skillharbor_cold_ratio_to_docker_run"),
     "<=", 1.1, "x"),
    ("Sustained", "highest steady rate on one skill with API p95 ≤ 100 ms and no cold run",
     ("sustained", "headline", "one_skill_highest_per_s"), ">=", 5.0, "/s"),
]


def dig(data: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def fmt(value: Any, unit: str = "ms") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        text = f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"
    else:
        text = f"{value:,}"
    return f"{text} {unit}".strip()


def stat_row(name: str, stats: dict[str, Any] | None, extra: str = "") -> str:
    if not stats or not stats.get("n"):
        return f"| {name} | n/a | | | |{extra}"
    return f"| {name} | {stats['n']} | {fmt(stats['p50_ms'])} | {fmt(stats['p95_ms'])} | {fmt(stats['mean_ms'])} |{extra}"


def stats_table(rows: list[tuple[str, dict[str, Any] | None]], ratio_to: str | None = None) -> list[str]:
    header = "| variant | n | p50 | p95 | mean |" + (f" p50 ratio to {ratio_to} |" if ratio_to else "")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    base = dict(rows).get(ratio_to) if ratio_to else None
    for name, stats in rows:
        extra = ""
        if ratio_to:
            extra = f" {stats['p50_ms'] / base['p50_ms']:.2f}x |" if stats and base and stats.get("n") and base.get("n") else " n/a |"
        lines.append(stat_row(name, stats, extra))
    return lines


def verdict(results: dict[str, Any], previous: tuple[str, dict[str, Any]] | None = None) -> list[str]:
    """The targets table; with ``previous`` (its label, its results) a column of that run's figures beside."""
    lines = ["| target | limit | measured | met |" + (f" {previous[0]} |" if previous else ""), "|---|---|---|---|" + ("---|" if previous else "")]
    for ident, text, path, op, limit, unit in TARGETS:
        value = dig(results, path)
        before = ""
        if previous:
            earlier = dig(previous[1], path)
            before = f" {_shown_value(earlier, unit) if earlier is not None else ''} |"
        if value is None:
            met = "not measured"
        elif op == "<=":
            met = "yes" if value <= limit else "**no**"
        elif op == ">=":
            met = "yes" if value >= limit else "**no**"
        else:
            met = "yes" if value == limit else "**no**"
        lim = f"{op} {limit:g}{' ' + unit if unit != 'x' else 'x'}".replace("<=", "≤").replace(">=", "≥").strip()
        lines.append(f"| {ident} {text} | {lim} | {_shown_value(value, unit)} | {met} |{before}")
    return lines


def _shown_value(value: Any, unit: str) -> str:
    return fmt(value, unit) if unit != "x" else (f"{value:.2f}x" if value is not None else "n/a")


def previous_run(source: Path, results_dir: Path = RESULTS) -> tuple[str, dict[str, Any]] | None:
    """The newest full results file dated before ``source`` (its targets are shown beside this run's)."""
    dated = sorted(p for p in results_dir.glob("*.json") if re.fullmatch(r"\d{4}-\d{2}-\d{2}", p.stem) and p.stem < source.stem)
    if not dated:
        return None
    try:
        return f"previous run ({dated[-1].stem})", json.loads(dated[-1].read_text())
    except (OSError, ValueError):
        return None


# --- plots -------------------------------------------------------------------------------


def save_plot(fig: Any, path: Path, tight_box: bool = False) -> bool:
    """Lay out, write and close a figure (a legend under the axes needs ``tight_box`` to stay in the picture)."""
    fig.tight_layout()
    fig.savefig(path, dpi=110, **({"bbox_inches": "tight"} if tight_box else {}))
    _plt().close(fig)
    return True


def _plt() -> Any:
    IMAGES.mkdir(parents=True, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bar_plot(path: Path, title: str, rows: list[tuple[str, dict[str, Any] | None]], *, log_scale: bool = False, unit: str = "ms") -> bool:
    rows = [(n, s) for n, s in rows if s and s.get("n")]
    if not rows:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    names = [n for n, _ in rows]
    p50 = [s["p50_ms"] for _, s in rows]
    p95 = [s["p95_ms"] for _, s in rows]
    ax.barh(names, p95, color="#c9d6ea")
    ax.barh(names, p50, color="#3b6ea8")
    for y, (a, b) in enumerate(zip(p50, p95)):
        ax.text(b, y, f"  {a:,.0f} / {b:,.0f}", va="center", fontsize=8)
    if log_scale:
        ax.set_xscale("log")
    ax.set_xlabel(unit + (" (log scale)" if log_scale else ""))
    ax.set_title(f"{title} (dark: p50, light: p95)", fontsize=10)
    ax.invert_yaxis()
    ax.margins(x=0.25)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_plot(fig, path)


PHASE_COLOURS = {"create": "#3b6ea8", "attach": "#8fb3dc", "start": "#e39c37", "run": "#b5523b", "remove": "#7a9e5b",
                 "take": "#8b6bb5"}  # fmt: skip


def _phase(name: str) -> str:
    for prefix, category in (("create", "create"), ("attach", "attach"), ("start", "start"), ("remove", "remove"),
                             ("take", "take")):  # fmt: skip
        if name.startswith(prefix):
            return category
    return "run"


def profile_plot(path: Path, profile: dict[str, Any]) -> bool:
    if not profile:
        return False
    plt = _plt()
    kinds = [k for k in ("reference_sdk", "cold", "warm") if k in profile]
    fig, ax = plt.subplots(figsize=(7, 2.8))
    seen: set[str] = set()
    for row, kind in enumerate(kinds):
        left = 0.0
        phases = [(n, s["p50_ms"]) for n, s in profile[kind].items()
                  if n != "total" and not n.startswith(("request path total", "  ", "background"))]  # fmt: skip
        for name, value in phases:
            category = _phase(name)
            ax.barh(row, value, left=left, color=PHASE_COLOURS[category], edgecolor="white",
                    label=None if category in seen else category)  # fmt: skip
            seen.add(category)
            left += value
        ax.text(left, row, f"  {left:,.0f} ms", va="center", fontsize=8)
    ax.set_yticks(range(len(kinds)), kinds)
    ax.set_xlabel("ms (p50 of each phase; run = interpreters + skill until the result line)")
    ax.set_title("Where the time of one run goes (request path)", fontsize=10)
    ax.invert_yaxis()
    ax.margins(x=0.15)
    ax.legend(fontsize=7, loc="lower right", ncol=3)
    return save_plot(fig, path)


def concurrency_plot(path: Path, b6: dict[str, Any]) -> bool:
    names = [n for n in ("pool_on", "pool_off") if n in b6 and b6[n].get("samples_ms")]
    if not names:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.boxplot([b6[n]["samples_ms"] for n in names], orientation="horizontal", tick_labels=[f"{n} ({b6[n]['throughput_per_s']}/s)" for n in names])
    ax.set_xlabel("latency of each of 20 concurrent executions, ms")
    ax.set_title("B6: 20 concurrent hello-world executions", fontsize=10)
    return save_plot(fig, path)


def memory_plot(path: Path, b7: dict[str, Any]) -> bool:
    rows = [(name, b7[name]) for name in ("pool_0", "pool_10") if b7.get(name)]
    if not rows:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 2.2))
    names = [f"{name} ({data['warm_containers']} warm)" for name, data in rows]
    worker = [data["worker_rss_kib"] / 1024 for _, data in rows]
    warm = [(_mib(data.get("warm_containers_memory_bytes")) or 0) for _, data in rows]
    ax.barh(names, worker, color="#3b6ea8", label="runner worker RSS")
    ax.barh(names, warm, left=worker, color="#c9d6ea", label="charged to its warm containers")
    for y, (a, b) in enumerate(zip(worker, warm)):
        ax.text(a + b, y, f"  {a + b:,.0f} MiB", va="center", fontsize=8)
    ax.set_xlabel("MiB")
    ax.set_title("B7 memory: the worker and its warm pool", fontsize=10)
    ax.invert_yaxis()
    ax.margins(x=0.2)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=2, frameon=False)
    return save_plot(fig, path, tight_box=True)


# --- the document ---------------------------------------------------------------------------


def _carried_note(carried: dict[str, str] | None) -> str:
    """Which steps' figures come from an earlier run (and which run), so no figure passes for today's."""
    if not carried:
        return ""
    runs = ", ".join(f"{name} (run started {started})" for name, started in sorted(carried.items()))
    return f" Steps carried over unchanged from earlier runs: {runs}."


def image(name: str, made: bool, alt: str) -> list[str]:
    return [f"![{alt}](img/{name})", ""] if made else []


def generate(results: dict[str, Any], source: Path, out: Path = DOCS / "BENCHMARKS.md", images: Path = IMAGES,
             results_dir: Path = RESULTS) -> Path:  # fmt: skip
    """Write the page (plots into ``images``; optional sections may come from files in ``results_dir``)."""
    execution, api, build, b1 = (results.get(k) or {} for k in ("execution", "api", "build", "b1"))
    env = execution.get("environment") or results.get("environment") or {}
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` (`python -m bench.run_all`) from `{_shown(source)}`; "
        "regenerate the page alone with `python -m bench.report`.",
        "",
        f"Machine: {env.get('cpu_count', '?')} CPUs, {env.get('platform', '?')}, Docker {env.get('docker', '?')} "
        f"({env.get('docker_storage', '?')}), Python {env.get('python', '?')}; load average at start "
        f"{env.get('load_average', '?')}{_load_note(env.get('load_average'), env.get('cpu_count'))}. "
        f"Run started {results.get('started', '?')}, "
        f"took {results.get('duration_s', '?')} s (per step: {results.get('steps', {})})."
        + (f" Steps re-run separately: {', '.join(results['partial_rerun'])}." if results.get("partial_rerun") else "")
        + _carried_note(results.get("carried")),
        "",
        "Method: the variants of each comparison are measured in the same run, interleaved round by round in "
        "rotating order; figures are the median (p50) and the 95th percentile (nearest rank) in milliseconds. "
        "Iteration counts are small to keep the whole suite under ~20 minutes on this 2-core machine, so the p95 "
        "of small samples is close to their maximum. Before each timed run the warm pool is refilled and pending "
        "removals finish, so a warm run meets a ready container and no background work.",
        "",
        "## Targets",
        "",
        *verdict(results, previous_run(source, results_dir)),
        "",
    ]
    errors = results.get("errors") or {}
    if errors:
        lines += ["Steps that failed in this run:", ""] + [f"* `{k}`: {v[:300]}" for k, v in errors.items()] + [""]

    lines += list((results.get("malice") or _read(results_dir / "malice.json")).get("markdown") or [])  # bench_malice writes its own section

    profile = execution.get("profile") or {}
    lines += ["## Where the time goes (profile)", ""]
    lines += image("bench-profile.png", profile_plot(images / "bench-profile.png", profile), "phases of a run")
    for kind, phases in profile.items():
        lines += [f"**{kind}**", "", "| phase | p50 | p95 |", "|---|---|---|"]
        lines += [f"| {name} | {fmt(s['p50_ms'])} | {fmt(s['p95_ms'])} |" for name, s in phases.items()]
        lines.append("")
    lines += [PROFILE_NOTES, ""]

    b2 = execution.get("b2_runner") or {}
    lines += ["## B2 hello world", "", "Runner level (`WarmPool.run` / `sandbox.run` / the reference, one at a time):", ""]
    rows = [(n, b2.get(n)) for n in ("warm_pool", "cold", "reference_docker_run", "reference_sdk")]
    lines += stats_table(rows, ratio_to="reference_docker_run") + [""]
    lines += image("bench-b2-runner.png", bar_plot(images / "bench-b2-runner.png", "B2 hello world at the runner", rows, log_scale=True),
                   "B2 runner")  # fmt: skip
    if b2.get("reference_command"):
        lines += [f"Reference: `{b2['reference_command']}`", ""]
    b2api = api.get("b2_api") or {}
    lines += ["Through the HTTP API, POST /api/skills/{id}/execute, by the two ways a job reaches the worker: "
              "*direct* (a signed POST to the worker, the result in its answer; `make run`'s default) and "
              "*queue* (SQS → worker → result record the API polls; the fallback):", ""]  # fmt: skip
    api_variants = [n for n in ("warm_pool", "warm_pool_queue", "cold", "cold_queue") if n in b2api]
    rows_api = [(n, b2api.get(n)) for n in api_variants]
    lines += stats_table(rows_api, ratio_to="warm_pool") + [""]
    overhead = b2api.get("api_and_queue_overhead") or {}
    if overhead:
        lines += ["API + queue overhead per request (API latency minus the runner's own duration):", ""]
        lines += stats_table([(n, overhead.get(n)) for n in api_variants]) + [""]
    api_phases = b2api.get("phases") or {}
    if api_phases:
        lines += ["Parts of an API request (timed inside the API process; p50 / p95):", "",
                  "| part | " + " | ".join(api_phases) + " |", "|---|" + "---|" * len(api_phases)]  # fmt: skip
        parts = list(dict.fromkeys(part for values in api_phases.values() for part in values))
        for part in parts:
            cells = [f"{fmt(api_phases[v][part]['p50_ms'])} / {fmt(api_phases[v][part]['p95_ms'])}" if part in api_phases[v] else "n/a"
                     for v in api_phases]  # fmt: skip
            lines.append(f"| {part} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += image("bench-b2-api.png", bar_plot(images / "bench-b2-api.png", "B2 hello world through the HTTP API", rows_api, log_scale=True),
                   "B2 API")  # fmt: skip

    b3 = execution.get("b3") or {}
    lines += ["## B3 numpy + pandas skill", "", f"{b3.get('skill', '')}; image `{b3.get('image', '?')}`.", ""]
    rows3 = [(n, b3.get(n)) for n in ("preimported_pool", "plain_pool", "cold")]
    lines += stats_table(rows3, ratio_to="preimported_pool") + [""]
    lines += image("bench-b3.png", bar_plot(images / "bench-b3.png", "B3 numpy+pandas skill", rows3, log_scale=True), "B3")
    memory = execution.get("warm_container_memory") or {}
    if memory:
        lines += [f"Memory charged to one idle warm container: plain {fmt(_mib(memory.get('base_plain_bytes')), 'MiB')}, "
                  f"with numpy+pandas pre-imported {fmt(_mib(memory.get('numpy_pandas_preimported_bytes')), 'MiB')}.", ""]  # fmt: skip

    lines += ["## B4 image builds", ""]
    b4_rows = []
    for key, label in (("one_package", "six"), ("numpy_pandas", "numpy+pandas")):
        data = build.get(key) or {}
        for variant in ("wheelhouse_cold", "wheelhouse_warm_unstaged", "wheelhouse_warm", "rebuild_unchanged"):
            b4_rows.append((f"{label}: {variant.replace('_', ' ')}", data.get(variant)))
    lines += stats_table(b4_rows) + [""]
    for key in ("one_package", "numpy_pandas"):
        data = build.get(key) or {}
        if data:
            lines.append(f"* {', '.join(data.get('pins', []))}: wheels {fmt(_mib(data.get('wheel_bytes')), 'MiB')}, "
                         f"image {fmt(_mib(data.get('image_size_bytes')), 'MiB')}")  # fmt: skip
            for variant, phases in (data.get("phases_ms") or {}).items():
                lines.append(f"  * {variant.replace('_', ' ')}, p50 per phase: "
                             + ", ".join(f"{phase} {fmt(ms)}" for phase, ms in phases.items()))  # fmt: skip
    lines += ["", "First builds run on a throw-away copy of the base image (a new image id, so no build cache and no "
              "existing tag); cold wheelhouse = an empty temporary wheelhouse (download + sha256 check + staging); warm "
              "unstaged = the wheels cached but never installed (the first build of a new set); warm = wheels and their "
              "staged trees cached. Phases: download (verify included), install (wheels unpacked and compiled on the host "
              "into cached per-wheel trees), layer (one tar of those trees registered with `docker load` on top of the "
              "base's layers).", ""]  # fmt: skip
    lines += image("bench-b4.png", bar_plot(images / "bench-b4.png", "B4 image builds", b4_rows, log_scale=True), "B4")

    b5 = api.get("b5") or {}
    lines += ["## B5 import pipeline end to end", "",
              "POST the SKILL.md, then poll GET /api/imports/{id} every 10 ms until SUCCEEDED (parse → resolve → check → "
              "scan → install through the state machine in moto).", ""]  # fmt: skip
    lines += stats_table([("no packages", b5.get("no_packages")), (f"three packages ({', '.join(b5.get('packages', []))}), image exists",
                                                                  b5.get("three_packages_image_exists"))]) + [""]  # fmt: skip
    rows5 = [("no packages", b5.get("no_packages")), ("three packages, image exists", b5.get("three_packages_image_exists"))]
    lines += image("bench-b5.png", bar_plot(images / "bench-b5.png", "B5 import to ready", rows5), "B5")
    if b5.get("three_packages_first_import_ms"):
        lines += [f"The unmeasured first import of the three-package set (it builds the image when it does not exist "
                  f"yet) took {fmt(b5['three_packages_first_import_ms'])}. Note: {b5.get('note', '')}.", ""]  # fmt: skip

    b6 = execution.get("b6") or {}
    lines += ["## B6 20 concurrent executions", "", f"{b6.get('concurrency', 20)} hello-world executions at once through "
              f"`DockerEngine.run`, {b6.get('rounds', '?')} bursts per variant.", "",
              "| variant | executions | errors | throughput | p50 | p95 | max |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in ("pool_on", "pool_off"):
        data = b6.get(name)
        if data:
            lines.append(f"| {name} | {data['n']} | {data['errors']} | {data['throughput_per_s']}/s | {fmt(data['p50_ms'])} | "
                         f"{fmt(data['p95_ms'])} | {fmt(data['max_ms'])} |")  # fmt: skip
    if b6.get("pool_on", {}).get("warm_hits") is not None:
        lines += ["", f"Warm containers used with the pool on: {b6['pool_on']['warm_hits']} of {b6['pool_on']['n']} "
                  "(the pool holds 2 per image; the rest ran cold while it refilled)."]  # fmt: skip
    lines.append("")
    lines += image("bench-b6.png", concurrency_plot(images / "bench-b6.png", b6), "B6")

    b7 = api.get("b7") or {}
    lines += ["## B7 memory", "", "| | runner worker RSS | warm containers | memory charged to them |", "|---|---|---|---|"]
    for name in ("pool_0", "pool_10"):
        data = b7.get(name)
        if data:
            lines.append(f"| {name} | {fmt(data['worker_rss_kib'] / 1024, 'MiB')} | {data['warm_containers']} | "
                         f"{fmt(_mib(data['warm_containers_memory_bytes']), 'MiB')} |")  # fmt: skip
    lines += ["", f"Base image size: {fmt(_mib(b7.get('base_image_size_bytes')), 'MiB')}.", ""]
    lines += image("bench-b7.png", memory_plot(images / "bench-b7.png", b7), "B7")

    if b1:
        lines += ["## B1 permission check", "", "| case | n | p50 | p99 | p99.9 |", "|---|---|---|---|---|"]
        for case in ("hit", "miss", "cache_get_only"):
            data = b1.get(case)
            if data:
                lines.append(f"| {case} | {data['count']} | {data['p50_us']} µs | {data['p99_us']} µs | {data['p999_us']} µs |")
        lines += ["", str(b1.get("notes", "")), ""]

    from bench import report_optional, report_peers, report_sustained

    lines += report_optional.commands_section(results, images, results_dir)
    lines += report_sustained.section(results.get("sustained") or {}, images)

    lines += report_peers.section(results.get("peers") or {}, images)

    from bench import report_runtimes

    source_file, runtimes = (None, results["runtimes"]) if results.get("runtimes") else report_runtimes.newest()
    lines += [""] + report_runtimes.section(runtimes, source=source_file, images=images) + [""]
    lines += report_optional.fleet_section(results, images, results_dir)
    lines += report_optional.api_path_section(results, images, results_dir)
    lines += report_optional.scan_section(results, images, results_dir)

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines).rstrip() + "\n")
    return out


def _read(path: Path) -> dict[str, Any]:
    """A results file of its own (a step this run did not include), or nothing."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return path.name


def _load_note(load: Any, cpus: Any) -> str:
    """Say when the machine was busy before the run (its figures then carry that load)."""
    try:
        busy = float(load[0]) > 0.5 * float(cpus)
    except (TypeError, ValueError, IndexError):
        return ""
    return " (other work shared the machine)" if busy else " (the machine was otherwise idle)"


def _mib(value: Any) -> float | None:
    return None if value in (None, 0) else round(value / (1024 * 1024), 1)


PROFILE_NOTES = """\
Reading the profile:

* **cold**: most of a cold run is the engine's `start` (runc, namespaces, cgroup set-up, the init process;
  fuse-overlayfs storage on this machine); then two interpreter starts inside the container (the
  supervisor, `python -I -S`, and the skill's child, `python -I`) at the default 0.5 CPU limit, whose CFS
  quota (50 ms per 100 ms) throttles any burst longer than 50 ms. The reference `python -c pass` pays
  `start`, `remove` and one interpreter. The runner removes a cold container after it has answered (on its
  remover thread), so `remove` is off the request path and shown apart.
* **warm**: the request path is only the job's trip over the attach socket, the child (already started,
  modules imported, stopped) reading its job, running, writing its result, and the supervisor's signed
  line coming back; the container's removal and the start of its replacement happen afterwards, in the
  background, and are shown separately.
* **API**: on the direct path the API's own work (authentication, the cached permission check per pin,
  the audit record) and one signed HTTP round trip to the worker are all that is added to the runner's
  time. On the queue path the SQS send, the worker's long-poll wake-up and the API's polling of the
  result record (from 5 ms apart, growing by 1.5x to 100 ms) add about twice as much; it remains as the fallback
  because queued jobs survive worker restarts and engine outages."""


def main() -> int:
    parser = argparse.ArgumentParser(description="regenerate docs/BENCHMARKS.md from a results file")
    parser.add_argument("results", nargs="?", type=Path)
    args = parser.parse_args()
    source = args.results
    if source is None:
        dated = sorted(p for p in RESULTS.glob("*.json") if re.fullmatch(r"\d{4}-\d{2}-\d{2}", p.stem))
        if not dated:
            parser.error("no bench/results/YYYY-MM-DD.json yet: run `make bench`")
        source = dated[-1]
    path = generate(json.loads(source.read_text()), source.resolve())
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
