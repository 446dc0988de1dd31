"""runc against gVisor's runsc, side by side in one run (runner level, real engine).

    .venv/bin/python -m bench.bench_runtimes [--rounds 8] [--numpy-rounds 4] [--out FILE]

* hello world: a cold container and a warm pool container, under each runtime;
* the seed numpy+pandas skill in a pre-imported warm container, under each runtime.

Variants are interleaved round by round (rotating order), with the pool refilled and removals done before
each timed run (``bench.common.interleave``). Writes ``bench/results/runtimes-<date>.json`` (or ``--out``),
``docs/img/bench-runtimes.png``, and the section of docs/BENCHMARKS.md between its runtimes markers.
Targets (issue 16): warm p50 under runsc ≤ 2x runc's, cold p50 ≤ 1.5x runc's. Command runs are not in the
sandbox yet, so they are not measured here.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.common import environment, interleave, log, ratio, summary, write_json


def measure(rounds: int, numpy_rounds: int) -> dict[str, Any]:
    from bench.bench_execution import ROWS, Bench, seed_code
    from chalicelib.runner import runtimes, sandbox
    from chalicelib.runner.pool import WarmPool
    from chalicelib.runner.spec import RunLimits, RunRequest, Runtime

    bench = Bench()
    if Runtime.RUNSC.value not in runtimes.registered(bench.client):
        return {"skipped": "gVisor (runsc) is not registered with this engine (sudo make gvisor)", "environment": environment()}
    pool = WarmPool(bench.client, size_per_image=1, max_total=4)
    remover = sandbox.BackgroundRemover(bench.client.api)

    def ok(result: Any) -> None:
        assert result is not None and result.status.value == "ok", result

    def variants(requests: dict[str, RunRequest], *, cold: bool) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, request in requests.items():
            found[f"warm {name}"] = lambda r=request: ok(pool.run(r))
            if cold:
                found[f"cold {name}"] = lambda r=request: ok(sandbox.run(bench.client, r, remover=remover))
        return found

    def settle_for(requests: dict[str, RunRequest]) -> Any:
        def settle(_: str) -> None:
            for request in requests.values():
                assert pool.wait_ready(request, count=1, timeout=180), pool.stats()
            pool.wait_removed()
            remover.wait()
            time.sleep(0.3)

        return settle

    try:
        hello = {rt.value: bench.hello(runtime=rt) for rt in (Runtime.RUNC, Runtime.RUNSC)}
        hello_times = interleave(variants(hello, cold=True), rounds, before=settle_for(hello))
        tag, direct = bench.numpy_pandas_image()
        numpy = {rt.value: RunRequest(image=tag, code=seed_code(), entrypoint="execute", inputs={"data": ROWS}, packages=direct,
                                      limits=RunLimits.from_settings(bench.settings), runtime=rt)
                 for rt in (Runtime.RUNC, Runtime.RUNSC)}  # fmt: skip
        numpy_times = interleave({f"numpy+pandas {k}": v for k, v in variants(numpy, cold=False).items()}, numpy_rounds,
                                 before=settle_for(numpy))  # fmt: skip
    finally:
        pool.close()
        remover.close()
    stats = {name: summary(values) for name, values in {**hello_times, **numpy_times}.items()}
    return {
        "rounds": rounds,
        "numpy_rounds": numpy_rounds,
        "environment": environment(),
        "runsc": "gVisor 20221219, platform ptrace, --network=none",
        **stats,
        "ratio_cold_runsc_to_runc": ratio(stats["cold runsc"], stats["cold runc"]),
        "ratio_warm_runsc_to_runc": ratio(stats["warm runsc"], stats["warm runc"]),
        "ratio_numpy_warm_runsc_to_runc": ratio(stats["numpy+pandas warm runsc"], stats["numpy+pandas warm runc"]),
    }


def main() -> int:
    from bench import report_runtimes

    parser = argparse.ArgumentParser(description="runc vs runsc execution benchmark")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--numpy-rounds", type=int, default=4)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    document = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"), **measure(args.rounds, args.numpy_rounds)}
    path = write_json(document, args.out, "runtimes")
    log(f"wrote {path}")
    if args.out is None:
        log(f"updated {report_runtimes.update_benchmarks_page()}")
    for line in report_runtimes.section(document, plot=False):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
