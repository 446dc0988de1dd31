"""What the import's behaviour check costs (runner level, real engine).

    .venv/bin/python -m bench.bench_behaviour [--rounds 5] [--out FILE]

One probe run = a cold container of the skill's image running the probe driver, which runs each target
under the recorder with canaries planted. Measured for a code skill (one entrypoint) and a script skill
(a Python and a bash script), under runc and, when registered, runsc, interleaved round by round. The
figure is the wall time of ``DockerEngine.run`` of the probe job, which is what the Behaviour step waits
for beyond the queue hop. Writes ``bench/results/behaviour-<date>.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.common import environment, interleave, log, ratio, summary, write_json

CODE_SKILL = {"SKILL.md.py": "import json\n\ndef execute(rows=3):\n    return json.dumps([{'n': i} for i in range(int(rows))])\n"}
SCRIPT_SKILL = {
    "scripts/stats.py": "import json, statistics\nprint(json.dumps({'mean': statistics.fmean([1, 2, 3])}))\n",
    "scripts/clean.sh": "#!/bin/bash\nmkdir -p out\nfor f in *.tmp; do [ -e \"$f\" ] && rm \"$f\"; done\necho done > out/log\n",
}


def measure(rounds: int) -> dict[str, Any]:
    from chalicelib.runner import runtimes
    from chalicelib.runner.jobs import RunJob
    from chalicelib.runner.probe import probe_fields
    from chalicelib.runner.spec import RunLimits, RunRequest
    from chalicelib.runner.worker import DockerEngine
    from chalicelib.scanning.behaviour import make_canaries, plan_targets
    from chalicelib.settings import get_settings

    engine = DockerEngine(get_settings().model_copy(update={"pool_enabled": False}))
    base = engine.ensure_base()
    kinds = ["runc"] + (["runsc"] if "runsc" in runtimes.registered(engine._docker()) else [])
    skills = {"code": ({"code": CODE_SKILL["SKILL.md.py"], "files": {}}, "execute"), "scripts": ({"files": SCRIPT_SKILL}, None)}

    def probe(skill: str, runtime: str) -> None:
        artifact, entrypoint = skills[skill]
        targets, extra = plan_targets(artifact, entrypoint)
        canaries = make_canaries()
        job = RunJob(skill_id="bench", version="1", code="", entrypoint="probe", files={**artifact.get("files", {}), **extra},
                     probe={"targets": targets, "canary_env": canaries.env, "canary_files": canaries.files, "budget_seconds": 20})  # fmt: skip
        fields = probe_fields(job)
        result = engine.run(RunRequest(image=base.tag, code=fields["code"], entrypoint="probe", inputs=fields["inputs"], files=fields["files"],
                                       limits=RunLimits(timeout_seconds=30), preimport=False, runtime=runtime))  # fmt: skip
        assert result.status.value == "ok" and result.output["events"] is not None, (result.status, result.error)

    variants = {f"{skill}/{runtime}": (lambda s=skill, r=runtime: probe(s, r)) for skill in skills for runtime in kinds}
    timings = interleave(variants, rounds)
    engine.close()
    figures = {name: summary(samples) for name, samples in timings.items()}
    if "runsc" in kinds:
        figures["runsc_over_runc_code"] = ratio(figures["code/runsc"], figures["code/runc"])
    return {"benchmark": "behaviour", "rounds": rounds, "probe_ms": figures, "environment": environment()}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    result = measure(args.rounds)
    out = write_json(result, args.out, "behaviour")
    for name, figure in result["probe_ms"].items():
        log(f"{name}: {figure}")
    log(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
