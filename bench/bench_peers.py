"""Peer sandboxes beside skillharbor, on the same engine and images (issue 20, item 5).

    .venv/bin/python -m bench.bench_peers [--rounds 10] [--numpy-rounds 5] [--burst-rounds 1] [--out FILE]

Peers: llm-sandbox (Docker backend: a new session per run, a kept session,
its container pool) and epicbox, with plain ``docker run`` (CLI), the Docker
SDK and ``docker exec`` into a kept container as floors; skillharbor's own
runner is measured in the same rounds, so every ratio comes from one run.
All use skillharbor's base image (and its numpy+pandas env image) and never
pull; skillharbor's isolation flags are applied wherever the peer takes
them, and a probe run inside each peer's container records which took
effect (``hardening``).

Measured: hello-world cold and warm latency, the numpy+pandas skill warm,
bursts of 20 concurrent runs (throughput), and the memory of one idle warm
container (the engine's stats). Variants of a comparison are interleaved
round by round in rotating order; before each timed run every variant
finishes its deferred and background work (``Variant.settle``).

The peers are bench-only dependencies (bench/requirements-peers.txt),
installed into this virtualenv on first use.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, environment, log, summary, write_json
from bench.peers.variants import BENCH_LABEL, RUN_ID, Variant

REQUIREMENTS = ROOT / "bench" / "requirements-peers.txt"
BURST = 20


def ensure_peers_installed() -> None:
    try:
        import epicbox  # noqa: F401
        import llm_sandbox  # noqa: F401
    except ImportError:
        log(f"installing the peer sandboxes ({REQUIREMENTS.relative_to(ROOT)}) into {sys.prefix}")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)], check=True)


def interleave_checked(variants: list[Variant], rounds: int, errors: dict[str, str]) -> dict[str, list[float]]:
    """Time each variant's run once per round in rotating order, after every
    variant settled; check all results agree. A variant that fails is
    recorded in ``errors`` and left out of the later rounds."""
    times: dict[str, list[float]] = {v.label: [] for v in variants}
    expected: list[Any] = []
    for round_no in range(rounds + 1):  # round 0 warms up, untimed
        shift = round_no % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            if variant.label in errors:
                continue
            try:
                for other in variants:
                    if other.label not in errors:
                        other.settle()
                time.sleep(0.3)  # let the engine finish the last removal or start
                start = time.perf_counter()
                value = variant.run()
                elapsed = (time.perf_counter() - start) * 1000
                if getattr(variant, "reads_output", True):
                    if expected and value != expected[0]:
                        raise RuntimeError(f"result {value!r} differs from the others' {expected[0]!r}")
                    expected = expected or [value]
            except Exception as error:  # one peer failing must not lose the others' figures
                log(f"{variant.label} failed: {error}")
                errors[variant.label] = f"{type(error).__name__}: {error}"[:1500]
                continue
            if round_no > 0:
                times[variant.label].append(elapsed)
    return times


def opened(variants: list[Variant], errors: dict[str, str]) -> list[Variant]:
    ready = []
    for variant in variants:
        try:
            variant.open()
            ready.append(variant)
        except Exception as error:
            log(f"{variant.label} did not open: {error}")
            errors[variant.label] = f"open: {type(error).__name__}: {error}"[:1500]
    return ready


def close_all(variants: list[Variant]) -> None:
    for variant in variants:
        try:
            variant.close()
        except Exception as error:  # keep closing the others
            log(f"closing {variant.label}: {error}")


def container_memory(api: Any, container_id: str) -> dict[str, int | None]:
    """The engine's memory figures for a container: its raw usage, and usage
    minus inactive file pages (what ``docker stats`` shows)."""
    stats = api.stats(container_id, stream=False, one_shot=True).get("memory_stats") or {}
    usage = stats.get("usage")
    detail = stats.get("stats") or {}
    inactive = detail.get("total_inactive_file", detail.get("inactive_file", 0))
    return {"usage_bytes": usage, "working_set_bytes": None if usage is None else usage - inactive}


def remove_leftovers(client: Any) -> None:
    """Remove the containers this run labelled and left behind (after a failure); never anyone else's."""
    for container in client.containers.list(all=True, filters={"label": f"{BENCH_LABEL}={RUN_ID}"}):
        log(f"removing leftover container {container.short_id}")
        container.remove(force=True)


def ratios(stats: dict[str, dict[str, Any]], reference: str) -> dict[str, float | None]:
    base = (stats.get(reference) or {}).get("p50_ms")
    return {name: (round(s["p50_ms"] / base, 2) if base and s.get("n") else None) for name, s in stats.items()}


class PeerBench:
    def __init__(self) -> None:
        from bench.bench_execution import Bench

        self.executions = Bench()
        self.client, self.settings, self.base = self.executions.client, self.executions.settings, self.executions.base
        from chalicelib.runner.spec import RunLimits

        self.limits = RunLimits.from_settings(self.settings)
        self._site_packages: dict[str, str] = {}

    def site_packages(self, image: str) -> str:
        """The image python's package directories (for llm-sandbox's pool venv), asked of the image itself."""
        if image not in self._site_packages:
            from bench.peers.workloads import IN_IMAGE_PYTHON

            script = "import json, sys; print(':'.join(p for p in sys.path if p.endswith('-packages')))"
            out = self.client.containers.run(image, [IN_IMAGE_PYTHON, "-c", script], network_mode="none", remove=True)
            self._site_packages[image] = out.decode().strip()
        return self._site_packages[image]

    # --- the variants --------------------------------------------------------------------------

    def cold(self, workload: Any) -> list[Variant]:
        from bench.peers import docker_floor, epicbox_peer, llm_sandbox_peer, skillharbor_side

        request = skillharbor_side.request(workload, self.settings)
        return [
            skillharbor_side.SkillharborCold(workload, self.client, self.settings),
            docker_floor.DockerRunCli(workload, self.limits),
            docker_floor.DockerSdk(workload, self.client.api, request),
            llm_sandbox_peer.LlmSandboxCold(workload, self.client, self.limits, self.site_packages(workload.image)),
            epicbox_peer.Epicbox(workload, self.limits),
        ]

    def warm(self, workload: Any, *, with_epicbox: bool = False) -> list[Variant]:
        from bench.peers import docker_floor, epicbox_peer, llm_sandbox_peer, skillharbor_side

        request = skillharbor_side.request(workload, self.settings)
        packages = self.site_packages(workload.image)
        variants: list[Variant] = [
            skillharbor_side.SkillharborWarm(workload, self.client, self.settings),
            llm_sandbox_peer.LlmSandboxSession(workload, self.client, self.limits, packages),
            llm_sandbox_peer.LlmSandboxPool(workload, self.client, self.limits, packages),
            docker_floor.DockerExec(workload, self.client.api, request),
        ]
        if with_epicbox:  # it has no warm mode: its new container per run is its fastest
            variants.append(epicbox_peer.Epicbox(workload, self.limits))
        return variants

    def burst_variants(self, workload: Any) -> list[Variant]:
        from bench.peers import docker_floor, epicbox_peer, llm_sandbox_peer, skillharbor_side

        request = skillharbor_side.request(workload, self.settings)
        packages = self.site_packages(workload.image)
        return [
            skillharbor_side.SkillharborEngine(workload, self.client, self.settings),
            llm_sandbox_peer.LlmSandboxPool(workload, self.client, self.limits, packages, size=self.settings.pool_size_per_image),
            llm_sandbox_peer.LlmSandboxCold(workload, self.client, self.limits, packages),
            epicbox_peer.Epicbox(workload, self.limits),
            docker_floor.DockerRunCli(workload, self.limits),
            docker_floor.DockerSdk(workload, self.client.api, request),
        ]

    # --- the measurements ----------------------------------------------------------------------

    def compare(self, variants: list[Variant], rounds: int, *, memory: bool = False) -> dict[str, Any]:
        errors: dict[str, str] = {}
        out: dict[str, Any] = {"rounds": rounds}
        try:
            ready = opened(variants, errors)
            times = interleave_checked(ready, rounds, errors)
            for variant in ready:
                variant.settle()
            out["variants"] = {v.label: {"peer": v.peer, "mode": v.mode, **summary(times[v.label]),
                                         "teardown_after_answer": summary(v.teardown_ms)}  # fmt: skip
                               for v in ready if v.label not in errors}  # fmt: skip
            if memory:
                time.sleep(1)
                out["idle_container_memory"] = {v.label: [container_memory(self.client.api, c) for c in v.idle_containers()]
                                                for v in ready if v.label not in errors and v.mode == "warm"}  # fmt: skip
        finally:
            close_all(variants)
        out["configuration"] = {v.label: v.describe() for v in variants}
        out["errors"] = errors
        return out

    def bursts(self, workload: Any, rounds: int) -> dict[str, Any]:
        variants = self.burst_variants(workload)
        errors: dict[str, str] = {}
        runs: dict[str, dict[str, list[Any]]] = {v.label: {"latency": [], "wall": [], "errors": []} for v in variants}
        hits = None
        try:
            ready = opened(variants, errors)
            for round_no in range(rounds):
                for variant in ready if round_no % 2 == 0 else list(reversed(ready)):
                    log(f"burst {round_no + 1}/{rounds}: {variant.label}")
                    for other in ready:
                        other.settle()
                    time.sleep(0.3)

                    def one(_: int, variant: Variant = variant) -> tuple[float, str | None]:
                        start = time.perf_counter()
                        try:
                            variant.run()
                            problem = None
                        except Exception as error:
                            problem = f"{type(error).__name__}: {error}"[:300]
                        return (time.perf_counter() - start) * 1000, problem

                    start = time.perf_counter()
                    with concurrent.futures.ThreadPoolExecutor(max_workers=BURST) as executor:
                        outcomes = list(executor.map(one, range(BURST)))
                    runs[variant.label]["wall"].append(time.perf_counter() - start)
                    runs[variant.label]["latency"] += [ms for ms, _ in outcomes]
                    runs[variant.label]["errors"] += [problem for _, problem in outcomes if problem]
            for variant in ready:
                variant.settle()
                if hasattr(variant, "warm_hits"):
                    hits = variant.warm_hits()
        finally:
            close_all(variants)
        out: dict[str, Any] = {"concurrency": BURST, "rounds": rounds, "variants": {}, "errors": errors}
        for variant in variants:
            data = runs[variant.label]
            if not data["wall"]:
                continue
            out["variants"][variant.label] = {
                "peer": variant.peer, **summary(data["latency"]),
                "throughput_per_s": round(BURST * len(data["wall"]) / sum(data["wall"]), 2),
                "wall_s": [round(w, 2) for w in data["wall"]], "errors": len(data["errors"]),
                "error_samples": sorted(set(data["errors"]))[:3],
            }  # fmt: skip
        out["skillharbor_warm_hits"] = hits
        out["configuration"] = {v.label: v.describe() for v in variants}
        return out

    def hardening(self, probe: Any) -> dict[str, Any]:
        """Run the probe once through each peer's cold path and judge it against skillharbor's."""
        from bench.peers import hardening

        found: dict[str, Any] = {}
        variants = [v for v in self.cold(probe) if getattr(v, "reads_output", True)]
        try:
            for variant in variants:
                try:
                    found[variant.label] = {"peer": variant.peer, "probe": variant.run()}
                except Exception as error:
                    found[variant.label] = {"peer": variant.peer, "error": f"{type(error).__name__}: {error}"[:1500]}
                variant.settle()
        finally:
            close_all(variants)
        reference = (found.get("skillharbor cold") or {}).get("probe") or {}
        for variant in variants:
            entry = found[variant.label]
            if "probe" in entry:
                entry["readings"] = hardening.readings(entry["probe"])
                entry["lacks"] = hardening.judge(entry["probe"], reference) if reference else None
                not_applied = variant.describe().get("not applied", {})
                entry["why"] = {name: not_applied[name] for name in entry["lacks"] or [] if name in not_applied}
        found["SDK and exec floors"] = {"note": "the same flags as `docker run` (sandbox.host_config); not probed separately"}
        return found


def headline(document: dict[str, Any]) -> dict[str, Any]:
    """The ratios the issue asks for, from this run's medians."""
    cold = (document.get("hello_cold") or {}).get("variants") or {}
    warm = (document.get("hello_warm") or {}).get("variants") or {}
    heavy = (document.get("numpy_pandas_warm") or {}).get("variants") or {}
    out: dict[str, Any] = {
        "hello_cold_ratio_to_skillharbor_cold": ratios(cold, "skillharbor cold"),
        "hello_warm_ratio_to_skillharbor_warm": ratios(warm, "skillharbor warm pool"),
        "numpy_pandas_ratio_to_skillharbor_warm": ratios(heavy, "skillharbor warm pool"),
    }
    sh_warm = (warm.get("skillharbor warm pool") or {}).get("p50_ms")
    fastest: dict[str, Any] = {}
    for label, stats in {**cold, **warm}.items():
        peer = stats["peer"]
        if peer == "skillharbor" or not stats.get("n"):
            continue
        if peer not in fastest or stats["p50_ms"] < fastest[peer]["p50_ms"]:
            fastest[peer] = {"variant": label, "p50_ms": stats["p50_ms"],
                             "ratio_to_skillharbor_warm": round(stats["p50_ms"] / sh_warm, 1) if sh_warm else None}  # fmt: skip
    out["fastest_mode_per_peer"] = fastest
    real_peers = [f["ratio_to_skillharbor_warm"] for p, f in fastest.items() if p in ("llm-sandbox", "epicbox")]
    out["min_peer_fastest_ratio_to_skillharbor_warm"] = min((r for r in real_peers if r), default=None)
    reference = (cold.get("docker run --rm") or {}).get("p50_ms")
    sh_cold = (cold.get("skillharbor cold") or {}).get("p50_ms")
    out["skillharbor_cold_ratio_to_docker_run"] = round(sh_cold / reference, 3) if sh_cold and reference else None
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description="peer sandboxes beside skillharbor on the same engine and images")
    parser.add_argument("--rounds", type=int, default=10, help="hello-world rounds, cold and warm")
    parser.add_argument("--numpy-rounds", type=int, default=5)
    parser.add_argument("--burst-rounds", type=int, default=1, help="bursts of 20 concurrent runs per variant")
    parser.add_argument("--only", default="hardening,hello_cold,hello_warm,numpy_pandas_warm,bursts")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    only = set(args.only.split(","))
    ensure_peers_installed()
    bench = PeerBench()
    try:
        document = measure(bench, args, only)
    finally:
        remove_leftovers(bench.client)
    path = write_json(document, args.out, "peers")
    print(json.dumps(document["headline"], default=str)[:2000])
    log(f"wrote {path}")
    return 0


def measure(bench: PeerBench, args: argparse.Namespace, only: set[str]) -> dict[str, Any]:
    from bench.bench_execution import HELLO, ROWS, seed_code
    from bench.peers import hardening, workloads

    hello = workloads.hello(bench.base.tag, HELLO)
    document: dict[str, Any] = {"benchmark": "peers", "environment": environment(), "base_image": bench.base.tag,
                                "limits": bench.limits.model_dump()}  # fmt: skip
    if "hardening" in only:
        log("peers: isolation probe")
        document["hardening"] = bench.hardening(workloads.Workload("probe", bench.base.tag, hardening.PROBE_CODE, "main", {}))
    if "hello_cold" in only:
        log("peers: hello world, cold")
        document["hello_cold"] = bench.compare(bench.cold(hello), args.rounds)
    if "hello_warm" in only:
        log("peers: hello world, warm")
        document["hello_warm"] = bench.compare(bench.warm(hello), args.rounds, memory=True)
    if "numpy_pandas_warm" in only:
        log("peers: numpy + pandas, warm")
        try:
            tag, packages = bench.executions.numpy_pandas_image()
        except Exception as error:  # no PyPI or no build: say why instead of a figure
            document["numpy_pandas_warm"] = {"skipped": f"no numpy+pandas image: {type(error).__name__}: {error}"[:1500]}
        else:
            heavy = workloads.numpy_pandas(tag, seed_code(), ROWS, packages)
            document["numpy_pandas_warm"] = {"image": tag, "packages": packages,
                                             **bench.compare(bench.warm(heavy, with_epicbox=True), args.numpy_rounds, memory=True)}  # fmt: skip
    if "bursts" in only:
        log("peers: bursts of 20 concurrent hello-world runs")
        document["bursts"] = bench.bursts(hello, args.burst_rounds)
    document["headline"] = headline(document)
    return document


if __name__ == "__main__":
    raise SystemExit(main())
