"""B4 image builds on the real engine.

    .venv/bin/python -m bench.bench_build [--six-rounds 2] [--heavy-rounds 1] [--out FILE]

* first build of a one-package set (six) and of numpy+pandas, with the
  wheelhouse cold (an empty temporary directory: wheels are downloaded,
  verified, installed into staging trees), warm but unstaged (the wheels are
  cached, never installed before: the honest "first build of a new set") and
  warm (wheels and their staged trees cached: a new set made of packages an
  earlier set already used); each with its time per phase;
* the rebuild of an unchanged set (the content-addressed tag exists: no build).

"First build" needs an image that was never built, but env tags are keyed by
the base image id: so each trial builds on its own throw-away copy of the
base image (one LABEL, a new id, no shared build cache) which is removed
afterwards with the env images built on it. Nothing else is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import environment, log, ratio, summary, write_json


class BuildBench:
    def __init__(self) -> None:
        from chalicelib.runner import engine
        from chalicelib.runner.base_image import ensure_base_image
        from chalicelib.settings import get_settings

        self.settings = get_settings()
        self.client = engine.connect()
        self.base = ensure_base_image(self.client, self.settings)
        self.created: list[str] = []

    def throwaway_base(self) -> Any:
        from chalicelib.runner import engine

        tag = f"skillharbor/bench-base:{uuid.uuid4().hex[:12]}"
        dockerfile = f'FROM {self.base.tag}\nLABEL skillharbor.bench="{tag}"\n'
        image_id, _ = engine.build_image(self.client, engine.tar_context({"Dockerfile": dockerfile}), tag)
        self.created.append(tag)
        return self.base.model_copy(update={"tag": tag, "image_id": image_id})

    def pins(self, requirements: list[str]) -> list[Any]:
        from chalicelib.packages.resolver import PipResolver

        return PipResolver(self.settings.index_url).resolve(requirements, self.base.target_platform)

    def build(self, base: Any, pins: list[Any], wheelhouse_dir: Path) -> tuple[float, Any]:
        """Milliseconds for one build on ``base`` (the image's ``phases`` say where they went)."""
        from chalicelib.runner.builder import Wheelhouse, build_image

        start = time.perf_counter()
        image = build_image(self.client, base, pins, wheelhouse=Wheelhouse(wheelhouse_dir))
        elapsed = (time.perf_counter() - start) * 1000
        if image.built:
            self.created.insert(0, image.tag)  # env images go before their base
        return elapsed, image

    def package_set(self, name: str, requirements: list[str], rounds: int, rebuilds: int) -> dict[str, Any]:
        from chalicelib.runner.builder import Wheelhouse

        pins = self.pins(requirements)
        warm_dir = Path(self.settings.cache_dir) / "wheelhouse"
        Wheelhouse(warm_dir).fetch_all(pins)  # the warm variant starts warm
        variants = ["wheelhouse_cold", "wheelhouse_warm_unstaged", "wheelhouse_warm"]
        times: dict[str, list[float]] = {v: [] for v in variants}
        phases: dict[str, dict[str, list[float]]] = {v: {} for v in variants}
        last_image, last_base = None, None
        for round_no in range(rounds):
            order = variants if round_no % 2 == 0 else variants[::-1]
            for variant in order:
                base = self.throwaway_base()
                with tempfile.TemporaryDirectory(prefix="bench-wheelhouse-") as scratch:
                    directory = warm_dir
                    if variant != "wheelhouse_warm":
                        directory = Path(scratch)
                    if variant == "wheelhouse_warm_unstaged":  # the same verified files, no staged trees
                        house = Wheelhouse(directory)
                        for pin in pins:
                            house.path_for(pin).parent.mkdir(parents=True, exist_ok=True)
                            os.link(Wheelhouse(warm_dir).path_for(pin), house.path_for(pin))
                    elapsed, image = self.build(base, pins, directory)
                assert image.built, "a first build found an existing image"
                times[variant].append(elapsed)
                for phase, seconds in image.phases.items():
                    phases[variant].setdefault(phase, []).append(seconds * 1000)
                last_image, last_base = image, base
                log(f"B4 {name} {variant}: {elapsed:.0f} ms {image.phases}")
        rebuild = []
        for _ in range(rebuilds):
            elapsed, image = self.build(last_base, pins, warm_dir)
            assert not image.built and image.tag == last_image.tag
            rebuild.append(elapsed)
        stats = {k: summary(v) for k, v in times.items()}
        return {
            "requirements": requirements,
            "pins": [f"{p.name}=={p.version}" for p in pins],
            "wheel_bytes": sum(Wheelhouse(warm_dir).path_for(p).stat().st_size for p in pins),
            "image_size_bytes": last_image.size if last_image else None,
            **stats,
            "phases_ms": {v: {phase: summary(ms)["p50_ms"] for phase, ms in by_phase.items()} for v, by_phase in phases.items()},
            "rebuild_unchanged": summary(rebuild),
            "ratio_cold_to_warm_wheelhouse": ratio(stats["wheelhouse_cold"], stats["wheelhouse_warm"]),
        }

    def cleanup(self) -> None:
        for tag in self.created:
            try:
                self.client.images.remove(tag, noprune=False)
            except Exception as exc:  # keep going: report what stayed
                log(f"could not remove {tag}: {exc}")


def main() -> int:
    parser = argparse.ArgumentParser(description="B4 image build benchmark")
    parser.add_argument("--six-rounds", type=int, default=2)
    parser.add_argument("--heavy-rounds", type=int, default=1)
    parser.add_argument("--rebuilds", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    bench = BuildBench()
    document: dict[str, Any] = {"benchmark": "build", "environment": environment()}
    try:
        document["one_package"] = bench.package_set("six", ["six"], args.six_rounds, args.rebuilds)
        document["numpy_pandas"] = bench.package_set("numpy+pandas", ["numpy>=1.26,<3", "pandas>=2.1"], args.heavy_rounds, args.rebuilds)
    finally:
        bench.cleanup()
    path = write_json(document, args.out, "build")
    print(json.dumps(document)[:1500])
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
