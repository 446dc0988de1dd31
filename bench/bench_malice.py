"""Benchmark of the malicious-skill scanner on the labelled corpus (tests/corpus).

Detection: a malicious case counts as detected when its worst finding reaches the label's
``expected_min_severity``; the scan sees the case's files without its label.json (whose notes spell out
the payload). False positive: a benign skill blocked (a CRITICAL finding); benign skills held
for an admin's approval (HIGH) are counted separately. Real published skills join the benign side when
``SKILLHARBOR_CORPUS_REAL_DIR`` points at a local copy. Also: scan time per skill, and ``skillharbor scan``
wall time including start-up.

Usage::

    .venv/bin/python -m bench.bench_malice [--out PATH] [--runs N]
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = {"LOW": 0, "MEDIUM": 1, "HIGH": 2, "CRITICAL": 3}


def _corpus():
    spec = importlib.util.spec_from_file_location("corpus", ROOT / "tests" / "corpus" / "corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("corpus", module)
    spec.loader.exec_module(module)
    return module


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def measure(runs: int) -> dict:
    sys.path.insert(0, str(ROOT))
    from chalicelib.scanning.malice import scan_skill

    corpus = _corpus()
    times: list[float] = []
    per: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    missed = []
    for case in corpus.malicious_cases():
        started = time.perf_counter()
        worst = max((ORDER[f.severity] for f in scan_skill(case.skill_files())), default=-1)
        times.append(time.perf_counter() - started)
        per[case.category][1] += 1
        if worst >= ORDER[case.label["expected_min_severity"]]:
            per[case.category][0] += 1
        else:
            missed.append(case.id)
    benign: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0])  # blocked, held, total
    blocked = []
    for case in corpus.benign_cases():
        kind = case.source.get("kind", "?") if case.source else "?"
        started = time.perf_counter()
        worst = max((ORDER[f.severity] for f in scan_skill(case.skill_files())), default=-1)
        times.append(time.perf_counter() - started)
        benign[kind][2] += 1
        if worst == ORDER["CRITICAL"]:
            benign[kind][0] += 1
            blocked.append(case.id)
        elif worst == ORDER["HIGH"]:
            benign[kind][1] += 1
    folder = ROOT / "tests" / "corpus" / "benign" / "authored" / "safe-fetch"
    cli = ROOT / ".venv" / "bin" / "skillharbor"
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([str(cli), "scan", str(folder)], capture_output=True, check=False)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # user + system CPU of the scan process: steadier than wall time on a shared machine
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    detected = sum(v[0] for v in per.values())
    total = sum(v[1] for v in per.values())
    fp = sum(v[0] for v in benign.values())
    n_benign = sum(v[2] for v in benign.values())
    return {
        "detection": {"detected": detected, "total": total, "rate_pct": _pct(detected, total),
                      "per_category": {k: {"detected": v[0], "total": v[1], "rate_pct": _pct(*v)} for k, v in sorted(per.items())},
                      "missed": missed},
        "false_positives": {"blocked": fp, "total": n_benign, "rate_pct": _pct(fp, n_benign), "blocked_cases": blocked,
                            "per_kind": {k: {"blocked": v[0], "held_for_approval": v[1], "total": v[2]} for k, v in benign.items()}},
        "scan_ms": {"p50": round(statistics.median(times) * 1000, 1), "max": round(max(times) * 1000, 1)},
        "cli_wall_ms": {"p50": round(statistics.median(walls) * 1000, 1), "runs": runs},
        "cli_cpu_ms": {"p50": round(statistics.median(cpus) * 1000, 1), "runs": runs},
    }  # fmt: skip


def markdown(r: dict) -> list[str]:
    d, f = r["detection"], r["false_positives"]
    lines = ["## Malicious-skill scanner (tests/corpus)", "",
             f"Detection {d['detected']}/{d['total']} = **{d['rate_pct']}%** (target >= 90%); benign skills blocked "
             f"{f['blocked']}/{f['total']} = **{f['rate_pct']}%** (target <= 3%). Scan p50 {r['scan_ms']['p50']} ms per "
             f"skill (max {r['scan_ms']['max']} ms); `skillharbor scan` of a folder p50 {r['cli_wall_ms']['p50']} ms "
             f"wall including start-up (target 200 ms), {r['cli_cpu_ms']['p50']} ms CPU (user + system).", "",
             "| category | detected | rate |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {k} | {v['detected']}/{v['total']} | {v['rate_pct']}% |" for k, v in d["per_category"].items()]
    lines += ["", "| benign kind | blocked (CRITICAL) | held for approval (HIGH) | skills |", "|---|---|---|---|"]
    lines += [f"| {k} | {v['blocked']} | {v['held_for_approval']} | {v['total']} |" for k, v in f["per_kind"].items()]
    lines += ["", f"Missed: {', '.join(d['missed']) or 'none'}. Blocked benign: {', '.join(f['blocked_cases']) or 'none'}.", ""]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "malice.json")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    result = measure(args.runs)
    result["markdown"] = markdown(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print("\n".join(result["markdown"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
