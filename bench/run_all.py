"""`make bench`: every benchmark of issue 6, then docs/BENCHMARKS.md.

    .venv/bin/python -m bench.run_all [--quick]

Runs, one after the other (each in its own process, so their environments
do not mix): B1 (bench_permission_check), the execution benchmarks on the
real engine (B2 runner level, B3, B6, profile), the API benchmarks on the
local stack (B2 API, B5, B7), the image builds (B4) and the peer sandboxes
beside skillharbor (bench_peers: llm-sandbox, epicbox, plain Docker), the
command runs (B8), runc against runsc, the malice scan, and the sustained load
through the API (bench_sustained). Benchmarks that other work adds later run
too once their module is there (OPTIONAL: the scan benchmark, the behaviour
check, the fleet), each under its key in the results. Writes
``bench/results/<date>.json`` and regenerates the report with its plots.
A failing step is recorded in the results (and the report) and the rest go on.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import report
from bench.common import RESULTS, ROOT, environment, log


#: name -> (module file, arguments for --quick, arguments for the full run, timeout in seconds, the file
#: prefix when the benchmark writes bench/results/<prefix>-<date>.json itself instead of taking --out)
OPTIONAL: dict[str, tuple[str, list[str], list[str], int, str | None]] = {
    "scan": ("bench/bench_scan.py", ["--runs", "3"], ["--runs", "10"], 600, "scan"),
    "behaviour": ("bench/bench_behaviour.py", ["--rounds", "2"], ["--rounds", "5"], 900, None),
    "fleet": ("bench/bench_fleet.py", ["--runs", "20", "--first-run-rounds", "1"], [], 1200, None),
    "api-path": ("bench/bench_api_path.py", ["--rounds", "5", "--imports", "2", "--no-package-imports"], [], 1500, None),
}


def optional_steps(quick: bool, root: Path = ROOT) -> list[tuple[str, list[str], int]]:
    """The OPTIONAL benchmarks whose module exists in ``root``."""
    found = []
    for name, (module_file, quick_args, full_args, timeout, _) in OPTIONAL.items():
        if (root / module_file).exists():
            module = module_file.removesuffix(".py").replace("/", ".")
            found.append((name, [sys.executable, "-m", module, *(quick_args if quick else full_args)], timeout))
    return found


PROGRESS = RESULTS / "in-progress.json"


def steps(quick: bool) -> list[tuple[str, list[str], int]]:
    """(name, command without --out, timeout in seconds)."""
    return core_steps(quick) + optional_steps(quick)


def core_steps(quick: bool) -> list[tuple[str, list[str], int]]:
    """In the order they run: the API benchmarks last (their imports wait for the pipeline, the slowest to finish
    on a busy machine)."""
    python = sys.executable
    if quick:
        return [
            ("b1", [python, "bench/bench_permission_check.py", "--hits", "5000", "--misses", "100"], 300),
            ("execution", [python, "-m", "bench.bench_execution", "--rounds", "4", "--b3-rounds", "2", "--b6-rounds", "1",
                           "--profile-runs", "2"], 1200),  # fmt: skip
            ("commands", [python, "-m", "bench.bench_commands", "--rounds", "4"], 900),
            ("build", [python, "-m", "bench.bench_build", "--six-rounds", "1", "--heavy-rounds", "1", "--rebuilds", "5"], 1800),
            ("peers", [python, "-m", "bench.bench_peers", "--rounds", "3", "--numpy-rounds", "2", "--burst-rounds", "1"], 1200),
            ("runtimes", [python, "-m", "bench.bench_runtimes", "--rounds", "3", "--numpy-rounds", "2"], 900),
            ("malice", [python, "-m", "bench.bench_malice", "--runs", "3"], 600),
            ("sustained", [python, "-m", "bench.bench_sustained", "--rates", "2,5", "--seconds", "6", "--warmup", "2"], 900),
            ("api", [python, "-m", "bench.bench_api", "--rounds", "4", "--imports", "2"], 1200),
        ]
    return [
        ("b1", [python, "bench/bench_permission_check.py", "--hits", "50000", "--misses", "500"], 300),
        ("execution", [python, "-m", "bench.bench_execution", "--rounds", "15", "--b3-rounds", "5", "--b6-rounds", "2",
                       "--profile-runs", "5"], 1500),  # fmt: skip
        ("commands", [python, "-m", "bench.bench_commands", "--rounds", "15"], 900),
        ("build", [python, "-m", "bench.bench_build", "--six-rounds", "1", "--heavy-rounds", "1", "--rebuilds", "20"], 1800),
        ("peers", [python, "-m", "bench.bench_peers", "--rounds", "10", "--numpy-rounds", "5", "--burst-rounds", "2"], 1800),
        ("runtimes", [python, "-m", "bench.bench_runtimes", "--rounds", "8", "--numpy-rounds", "4"], 1200),
        ("malice", [python, "-m", "bench.bench_malice", "--runs", "10"], 600),
        ("sustained", [python, "-m", "bench.bench_sustained", "--rates", "1,2,3,4,5,6,8", "--seconds", "12", "--warmup", "4"], 1200),
        ("api", [python, "-m", "bench.bench_api", "--rounds", "15", "--imports", "5"], 900),
    ]


def carry(results: dict, earlier: dict, names: list[str]) -> None:
    """Copy steps ``names`` of an earlier run into ``results``, remembering which run each came from."""
    carried = dict(earlier.get("carried", {}))
    for name in names:
        if name not in earlier:
            continue
        results[name] = earlier[name]
        results["steps"].setdefault(name, earlier.get("steps", {}).get(name))
        if name in earlier.get("errors", {}):
            results["errors"][name] = earlier["errors"][name]
        carried.setdefault(name, earlier.get("started", "?"))
    results["carried"] = {name: started for name, started in carried.items() if name in names}
    results["duration_s"] = round(sum(v for v in results["steps"].values() if v), 1)


def main() -> int:
    parser = argparse.ArgumentParser(description="run every benchmark and regenerate docs/BENCHMARKS.md")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    parser.add_argument("--only", default="", help="comma-separated steps: b1,execution,api,commands,build,peers,runtimes,malice,"
                                                   "sustained (and scan, behaviour, fleet when their benchmark is there)")
    parser.add_argument("--carry-from", type=Path, default=None,
                        help="with --only: take the other steps from this earlier results file (default: today's file), "
                             "the report names the run each carried step comes from")
    args = parser.parse_args()
    wanted = set(filter(None, args.only.split(",")))
    started = time.monotonic()
    results: dict = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "environment": environment(),
                     "steps": {}, "errors": {}}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="skillharbor-bench-") as work:
        for name, command, timeout in steps(args.quick):
            if wanted and name not in wanted:
                continue
            out = Path(work) / f"{name}.json"
            log(f"step {name}: {' '.join(command[1:])}")
            step_started = time.monotonic()
            own_file = OPTIONAL.get(name, (None, None, None, None, None))[4]
            try:
                done = subprocess.run(command if own_file else [*command, "--out", str(out)], cwd=ROOT, timeout=timeout,
                                      capture_output=True, text=True)  # fmt: skip
                if done.returncode != 0:
                    raise RuntimeError(f"exit {done.returncode}: {(done.stderr or done.stdout)[-1500:]}")
                if own_file:
                    out = RESULTS / f"{own_file}-{datetime.now(timezone.utc):%Y-%m-%d}.json"
                results[name] = json.loads(out.read_text())
            except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError) as error:
                log(f"step {name} failed: {str(error)[-500:]}")
                results["errors"][name] = str(error)[-2000:]
            results["steps"][name] = round(time.monotonic() - step_started, 1)
            log(f"step {name} took {results['steps'][name]} s")
            # a run cut short keeps its finished steps: `python -m bench.report bench/results/in-progress.json`
            RESULTS.mkdir(parents=True, exist_ok=True)
            PROGRESS.write_text(json.dumps({**results, "duration_s": round(time.monotonic() - started, 1)}, indent=2) + "\n")
    results["duration_s"] = round(time.monotonic() - started, 1)
    PROGRESS.unlink(missing_ok=True)
    path = RESULTS / f"{datetime.now(timezone.utc):%Y-%m-%d}.json"
    earlier_path = args.carry_from or path
    if wanted and earlier_path.exists():  # a partial re-run keeps the other steps of today's (or the named) file
        carry(results, json.loads(earlier_path.read_text()), [name for name, _, _ in steps(args.quick) if name not in wanted])
        results["partial_rerun"] = sorted(wanted)
    path.write_text(json.dumps(results, indent=2) + "\n")
    log(f"wrote {path}")
    doc = report.generate(results, path)
    log(f"wrote {doc}")
    for line in report.verdict(results)[2:]:
        print(line)
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
