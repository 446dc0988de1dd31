"""Shared helpers of the benchmark scripts: statistics, interleaving, output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"


def summary(samples_ms: list[float]) -> dict[str, Any]:
    """Median, p95 (nearest rank), mean, min, max of millisecond samples."""
    if not samples_ms:
        return {"n": 0}
    ordered = sorted(samples_ms)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))]

    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(rank(95), 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
        "min_ms": round(ordered[0], 2),
        "max_ms": round(ordered[-1], 2),
        "samples_ms": [round(s, 2) for s in samples_ms],
    }


def ratio(numerator: dict[str, Any], denominator: dict[str, Any], key: str = "p50_ms") -> float | None:
    a, b = numerator.get(key), denominator.get(key)
    if not a or not b:
        return None
    return round(a / b, 3)


def interleave(variants: dict[str, Callable[[], Any]], rounds: int, *, before: Callable[[str], None] | None = None,
               warmup: int = 1) -> dict[str, list[float]]:  # fmt: skip
    """Time each variant once per round, in rotating order (ABC, BCA, CAB...),
    so a drift of the machine's load hits every variant alike."""
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(warmup + rounds):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            if before is not None:
                before(name)
            start = time.perf_counter()
            variants[name]()
            elapsed = (time.perf_counter() - start) * 1000
            if round_no >= warmup:
                times[name].append(elapsed)
    return times


def environment() -> dict[str, Any]:
    facts: dict[str, Any] = {
        "time": datetime.now(timezone.utc).isoformat(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    try:
        facts["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    try:
        facts["docker"] = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                                         text=True, timeout=20).stdout.strip()  # fmt: skip
        facts["docker_storage"] = subprocess.run(["docker", "info", "--format", "{{.Driver}} cgroup v{{.CgroupVersion}}"],
                                                 capture_output=True, text=True, timeout=20).stdout.strip()  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        pass
    return facts


def write_json(document: dict[str, Any], out: Path | None, default_name: str) -> Path:
    path = out or RESULTS / f"{default_name}-{datetime.now(timezone.utc):%Y-%m-%d}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def rss_kib(pid: int) -> int:
    """Resident set size of a process (Linux /proc)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def container_memory_bytes(container_id: str) -> int | None:
    """Memory charged to a container's cgroup (v1 or v2 layout), read on the host."""
    for path in (f"/sys/fs/cgroup/memory/docker/{container_id}/memory.usage_in_bytes",
                 f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/memory.current"):  # fmt: skip
        try:
            return int(Path(path).read_text().strip())
        except (OSError, ValueError):
            continue
    return None


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
