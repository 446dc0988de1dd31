"""Sections of docs/BENCHMARKS.md for benchmarks that may or may not be part of a run.

Each section renders only when its results are there: in the run's results file under its key, or else
in the newest ``bench/results/<key>-YYYY-MM-DD.json`` that its benchmark wrote when run on its own (the
section then names that file). The layouts each section reads are described in ``bench/report.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bench import report
from bench.common import RESULTS, ROOT


def newest(key: str, results_dir: Path = RESULTS) -> tuple[Path | None, dict[str, Any]]:
    """The newest ``<key>-YYYY-MM-DD.json`` (variants such as ``<key>-<date>-cpus2`` are left out)."""
    found = sorted(p for p in results_dir.glob(f"{key}-*.json") if re.fullmatch(rf"{re.escape(key)}-\d{{4}}-\d{{2}}-\d{{2}}", p.stem))
    if not found:
        return None, {}
    try:
        return found[-1], json.loads(found[-1].read_text())
    except (OSError, ValueError):
        return None, {}


def source_of(results: dict[str, Any], key: str, results_dir: Path = RESULTS) -> tuple[str, dict[str, Any]]:
    """(where the figures come from, the figures): this run's, else the newest file of its own."""
    if results.get(key):
        return "this run", results[key]
    path, data = newest(key, results_dir)
    if not data or path is None:
        return "", {}
    try:
        shown = str(path.relative_to(ROOT))
    except ValueError:
        shown = path.name
    return f"`{shown}` (run on its own)", data


def commands_section(results: dict[str, Any], images: Path, results_dir: Path = RESULTS) -> list[str]:
    where, data = source_of(results, "commands", results_dir)
    b8 = data.get("b8") or {}
    if not b8:
        return []
    runner = b8.get("runner_duration") or {}
    rows = [(name, b8.get(name)) for name in ("warm_command", "round_trip_1mib") if b8.get(name)]
    lines = ["## B8 command runs through the HTTP API", "",
             f"POST /api/skills/{{id}}/commands ({b8.get('path', 'direct')} path, {b8.get('rounds', '?')} rounds, from {where}): "
             "`true` in a throwaway workspace, and a 1 MiB file sent in, copied by the command and collected back. The "
             "runner's own share is the answer's `duration_ms`.", ""]  # fmt: skip
    lines += report.stats_table(rows) + [""]
    if runner:
        lines += ["The runner's share (`duration_ms`):", ""] + report.stats_table([(n, runner.get(n)) for n, _ in rows]) + [""]
    lines += report.image("bench-b8.png", report.bar_plot(images / "bench-b8.png", "B8 command runs through the HTTP API", rows),
                          "B8 command runs")  # fmt: skip
    return lines


def fleet_section(results: dict[str, Any], images: Path, results_dir: Path = RESULTS) -> list[str]:
    where, data = source_of(results, "fleet", results_dir)
    workers = data.get("workers") or _workers_from_throughput(data.get("throughput") or [])
    if not workers and not data.get("markdown"):
        return []
    lines = ["## Fleet throughput (several runner workers)", "", f"From {where}." + (f" {data['notes']}" if data.get("notes") else ""), ""]
    if workers:
        ordered = sorted(workers.items(), key=lambda kv: float(kv[0]))
        one = ordered[0][1].get("throughput_per_s")
        lines += ["| workers | runs | errors | throughput | vs the fewest workers | p50 | p95 |", "|---|---|---|---|---|---|---|"]
        for count, row in ordered:
            rate = row.get("throughput_per_s")
            versus = f"{rate / one:.2f}x" if rate and one else "n/a"
            lines.append(f"| {count} | {row.get('runs', 'n/a')} | {row.get('errors', 'n/a')} | {report.fmt(rate, '/s')} | {versus} | "
                         f"{report.fmt(row.get('p50_ms'))} | {report.fmt(row.get('p95_ms'))} |")  # fmt: skip
        lines += [""] + report.image("bench-fleet.png", _fleet_plot(images / "bench-fleet.png", ordered), "fleet throughput")
    cold = data.get("cold_first_run") or {}
    if cold.get("by_pull") or cold.get("by_rebuild"):
        lines += ["A cold worker's first run of a package set, by pulling the image from the registry (by digest) "
                  "versus rebuilding it from the pins on that host:", ""]
        lines += report.stats_table([("by pull", cold.get("by_pull")), ("by rebuild", cold.get("by_rebuild"))])
        if cold.get("ratio_rebuild_to_pull"):
            lines += ["", f"Rebuild / pull: {cold['ratio_rebuild_to_pull']:.2f}x."]
        lines.append("")
    lines += list(data.get("markdown") or [])
    return lines + [""]


def _workers_from_throughput(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """bench_fleet's ``throughput`` list (one row per worker count) in the ``workers`` layout."""
    table = {}
    for row in rows:
        latency = row.get("latency") or {}
        table[str(row.get("workers"))] = {"runs": row.get("runs"), "errors": row.get("errors", 0),
                                          "throughput_per_s": row.get("runs_per_second"),
                                          "p50_ms": latency.get("p50_ms"), "p95_ms": latency.get("p95_ms")}  # fmt: skip
    return table


def api_path_section(results: dict[str, Any], images: Path, results_dir: Path = RESULTS) -> list[str]:
    """B9 (bench_api_path): per-request latency and AWS calls of the hot API paths."""
    where, data = source_of(results, "api-path", results_dir)
    b9 = data.get("b9") or {}
    if not b9:
        return []
    names = ("execute_direct", "execute_queue", "command", "import_no_packages", "import_three_packages")
    targets, met, calls = b9.get("targets_p50_ms") or {}, b9.get("met") or {}, b9.get("aws_calls") or {}
    lines = ["## B9 the API's hot paths (latency and AWS calls per request)", "",
             f"`bench/bench_api_path.py`, from {where}: warm runs and imports through the local stack's HTTP API, "
             "with every AWS call the API makes counted. " + str(b9.get("note") or ""), "",
             "| path | p50 | p95 | target p50 | met | AWS calls per request | time in AWS calls (p50) |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in names:
        stats = b9.get(name)
        if not stats:
            continue
        aws = calls.get(name) or {}
        lines.append(f"| {name} | {report.fmt(stats.get('p50_ms'))} | {report.fmt(stats.get('p95_ms'))} | "
                     f"{report.fmt(targets.get(name))} | {'yes' if met.get(name) else '**no**'} | "
                     f"{aws.get('calls_per_request', 'n/a')} | {report.fmt((aws.get('aws_ms_per_request') or {}).get('p50_ms'))} |")  # fmt: skip
    moto = data.get("moto_call") or {}
    if moto:
        lines += ["", f"One bare GetItem end to end: {report.fmt((moto.get('get_item_end_to_end') or {}).get('p50_ms'))} p50, "
                      f"of which inside moto {report.fmt((moto.get('get_item_inside_moto') or {}).get('p50_ms'))}."]  # fmt: skip
    return lines + [""]


def _fleet_plot(path: Path, ordered: list[tuple[str, dict[str, Any]]]) -> bool:
    points = [(float(n), row["throughput_per_s"]) for n, row in ordered if row.get("throughput_per_s")]
    if not points:
        return False
    plt = report._plt()
    fig, ax = plt.subplots(figsize=(6, 2.8))
    ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", color="#3b6ea8")
    ax.set_xlabel("runner workers")
    ax.set_ylabel("runs per second")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.set_title("Fleet throughput by number of workers", fontsize=10)
    return report.save_plot(fig, path)


def scan_section(results: dict[str, Any], images: Path, results_dir: Path = RESULTS) -> list[str]:
    where, data = source_of(results, "scan", results_dir)
    if not data:
        return []
    step = data.get("import_scan_step") or {}
    database = data.get("advisory_db") or {}
    closure = data.get("scan_200_pins") or {}
    lines = ["## Scanning cost", "", f"`bench/bench_scan.py`, from {where}.", "",
             "| figure | measured | target | met |", "|---|---|---|---|"]  # fmt: skip
    targets, met = data.get("targets") or {}, data.get("meets_targets") or {}
    rows = [("advisory database, warm load (median)", (database.get("warm_load") or {}).get("median_ms"), "warm_load_ms", "warm_load"),
            ("advisory database, cold load (parse + index)", database.get("cold_load_ms"), None, None),
            ("audit of a 200-pin closure (median)", (closure.get("audit") or {}).get("median_ms"), "scan_200_pins_ms", "scan_200_pins"),
            ("import scan step, skill without packages (p50 over the corpus)", step.get("p50_ms"), "import_scan_step_p50_ms",
             "import_scan_step")]  # fmt: skip
    for label, value, target_key, met_key in rows:
        if value is None:
            continue
        target = f"≤ {targets[target_key]:g} ms" if target_key in targets else ""
        verdict = ("yes" if met[met_key] else "**no**") if met_key in met else ""
        lines.append(f"| {label} | {report.fmt(value)} | {target} | {verdict} |")
    lines.append("")
    if step:
        slowest = ", ".join(f"{name} {report.fmt(ms)}" for name, ms in (step.get("slowest") or {}).items())
        lines += [f"The import's scan step over {step.get('skills', '?')} benign corpus skills: p50 {report.fmt(step.get('p50_ms'))}, "
                  f"p90 {report.fmt(step.get('p90_ms'))}, max {report.fmt(step.get('max_ms'))}"
                  + (f" (slowest: {slowest})" if slowest else "") + (f"; excludes {step['excludes']}" if step.get("excludes") else "")
                  + ".", ""]  # fmt: skip
    lines += behaviour_lines(results, images, results_dir)
    return lines


def behaviour_lines(results: dict[str, Any], images: Path, results_dir: Path = RESULTS) -> list[str]:
    where, data = source_of(results, "behaviour", results_dir)
    probes = {name: stats for name, stats in (data.get("probe_ms") or {}).items() if isinstance(stats, dict)}
    if not probes:
        return []
    rows = list(probes.items())
    lines = ["### Behaviour check per import", "",
             f"`bench/bench_behaviour.py`, from {where}: one probe run (a cold container of the skill's image running the "
             f"probe driver with canaries planted), {data.get('rounds', '?')} rounds per variant, interleaved.", ""]  # fmt: skip
    lines += report.stats_table(rows) + [""]
    ratio = (data.get("probe_ms") or {}).get("runsc_over_runc_code")
    if ratio:
        lines += [f"runsc / runc, code skill: {ratio:.2f}x.", ""]
    lines += report.image("bench-behaviour.png", report.bar_plot(images / "bench-behaviour.png", "Behaviour check: one probe run", rows),
                          "behaviour check cost")  # fmt: skip
    return lines
