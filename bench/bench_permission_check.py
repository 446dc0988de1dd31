"""Permission check latency: cache hits and misses against moto DynamoDB.

    .venv/bin/python bench/bench_permission_check.py [--hits 100000] [--misses 2000]

* hit: ``PermissionChecker.check`` for a key already in the cache (name and
  version normalisation included, as the API calls it);
* miss: the same call with a version not seen before, so it reads the agent
  (GetItem) and the package's rules (Query) from DynamoDB. moto runs in
  process (``mock_aws``), so a miss measures moto's request handling
  and botocore's serialisation, not network latency; fewer misses are timed
  because each costs milliseconds.

Each call is timed on its own with ``time.perf_counter_ns`` (that adds the
timer's own ~0.1 µs). Results go to ``bench/results/permission-check-<date>.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HIT_TARGET_P99_US = 10.0
TABLES = {
    "SKILLHARBOR_RULES_TABLE": "bench-rules",
    "SKILLHARBOR_PRINCIPALS_TABLE": "bench-principals",
}


def _summary(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] / 1000, 3)

    return {
        "count": len(ordered),
        "p50_us": pct(50),
        "p90_us": pct(90),
        "p99_us": pct(99),
        "p999_us": pct(99.9),
        "max_us": round(ordered[-1] / 1000, 3),
        "mean_us": round(statistics.fmean(ordered) / 1000, 3),
    }


def run(hits: int, misses: int, packages: int) -> dict:
    import boto3
    from moto import mock_aws

    from chalicelib.governance.cache import DecisionCache, PermissionChecker
    from chalicelib.governance.identity import Agent
    from chalicelib.governance.rules import Approval, Ban
    from chalicelib.local.provision import create_tables
    from chalicelib.settings import get_settings
    from chalicelib.store import aws
    from chalicelib.store.principals import PrincipalsStore
    from chalicelib.store.rules import RulesStore

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "bench")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("SKILLHARBOR_AWS_ENDPOINT_URL", None)
    os.environ.update(TABLES)
    aws.reset_clients()

    with mock_aws():
        create_tables(boto3.client("dynamodb", region_name="us-east-1"), get_settings(), only=("rules_table", "principals_table"))
        rules, principals = RulesStore(), PrincipalsStore()
        agent_ids = [f"agent-{n}" for n in range(4)]
        for n, agent_id in enumerate(agent_ids):
            principals.create_agent(Agent(agent_id=agent_id, maturity=["INTERN", "SUPERVISED", "AUTONOMOUS", "STUDENT"][n]))
        names = [f"package-{n}" for n in range(packages)]
        for n, name in enumerate(names):
            rules.put_rule(Approval.new(name, "", "INTERN", created_by="admin:bench"))
            rules.put_rule(Approval.new(name, ">=2", "AUTONOMOUS", created_by="admin:bench"))
            if n % 4 == 0:
                rules.put_rule(Ban.new(name, "<0.5", "bench ban", created_by="admin:bench"))

        cache = DecisionCache(ttl_seconds=3600, max_size=1000)
        checker = PermissionChecker(principals, rules, cache)

        # --- hits: a working set smaller than the cache, all warmed first ---
        keys = [(agent_ids[i % 4], names[i % packages], f"1.{i % 7}.0") for i in range(400)]
        for key in keys:
            checker.check(*key)
        for _ in range(3):  # warm up interpreter caches on the hit path
            for key in keys:
                checker.check(*key)
        hit_samples = [0] * hits
        gc.collect()
        clock = time.perf_counter_ns
        check = checker.check
        count = len(keys)
        for i in range(hits):
            agent_id, package, version = keys[i % count]
            start = clock()
            check(agent_id, package, version)
            hit_samples[i] = clock() - start
        assert cache.misses == len(keys), "hits loop must not miss"

        # --- misses: versions never seen, so every call reads DynamoDB ---
        miss_samples = [0] * misses
        for i in range(misses):
            agent_id, package = agent_ids[i % 4], names[i % packages]
            version = f"3.{i}.0"
            start = clock()
            check(agent_id, package, version)
            miss_samples[i] = clock() - start

        # --- the bare cache lookup, for reference ---
        raw_samples = [0] * hits
        get = cache.get
        normalized = [(a, p, v) for a, p, v in keys]
        for i in range(hits):
            key = normalized[i % count]
            start = clock()
            get(key)
            raw_samples[i] = clock() - start

    aws.reset_clients()
    hit = _summary(hit_samples)
    return {
        "benchmark": "permission-check",
        "time": datetime.now(timezone.utc).isoformat(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "setup": {
            "packages": packages,
            "agents": len(agent_ids),
            "hit_working_set": len(keys),
            "cache_max_size": cache.max_size,
            "store": "moto mock_aws (in process)",
        },
        "hit": hit,
        "miss": _summary(miss_samples),
        "cache_get_only": _summary(raw_samples),
        "target_hit_p99_us": HIT_TARGET_P99_US,
        "hit_p99_within_target": hit["p99_us"] <= HIT_TARGET_P99_US,
        "notes": "hit = PermissionChecker.check with a cached key (includes name/version normalisation); "
        "miss = first check of a new version (GetItem agent + Query rules on moto); "
        "each call timed alone with perf_counter_ns",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=100_000)
    parser.add_argument("--misses", type=int, default=2_000)
    parser.add_argument("--packages", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.hits < 1 or args.misses < 1 or args.packages < 1:
        parser.error("--hits, --misses and --packages must be positive")

    result = run(args.hits, args.misses, args.packages)
    out = args.out or ROOT / "bench" / "results" / f"permission-check-{datetime.now(timezone.utc):%Y-%m-%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    for label in ("hit", "miss", "cache_get_only"):
        s = result[label]
        print(
            f"{label:>15}: n={s['count']:>7}  p50={s['p50_us']:>9.2f} µs  p99={s['p99_us']:>9.2f} µs  "
            f"p99.9={s['p999_us']:>9.2f} µs  max={s['max_us']:>10.2f} µs"
        )
    verdict = "within" if result["hit_p99_within_target"] else "ABOVE"
    print(f"hit p99 {result['hit']['p99_us']:.2f} µs is {verdict} the {HIT_TARGET_P99_US:.0f} µs target; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
