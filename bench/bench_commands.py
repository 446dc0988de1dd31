"""Command runs through the HTTP API of the local stack, with the real engine (B8).

    .venv/bin/python -m bench.bench_commands [--rounds 15] [--out FILE]

The stack and the runner worker are set up as in ``bench.bench_api`` (direct run path, warm pool on).
Measured, against a skill without packages (the base image):

* B8 warm command run: ``["true"]`` in a throwaway workspace; the answer's ``duration_ms`` is the
  runner's share, the rest is the API, the workspace store and the hop to the worker;
* B8 workspace round trip: 1 MiB uploaded with the command, copied by it, 1 MiB collected back.

A pause before each request lets the pool refill the command runs' key (its containers carry the
``/workspace`` and ``/skill`` mounts, so they are a pool key of their own).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from bench.bench_api import ApiBench, Worker, free_port
from bench.common import environment, interleave, log, summary, write_json

SKILL = "---\nname: bench-commands\ndescription: Runs commands for the benchmark.\n---\nRun `true`.\n"
PAUSE_SECONDS = 0.5


def run(rounds: int) -> dict[str, Any]:
    bench = ApiBench()
    secret = secrets.token_urlsafe(32)
    direct_url = f"http://127.0.0.1:{free_port()}"
    os.environ["SKILLHARBOR_RUNNER_SECRET"] = secret
    worker = Worker({"SKILLHARBOR_RUNNER_LISTEN": direct_url.removeprefix("http://"), "SKILLHARBOR_RUNNER_SECRET": secret})
    os.environ["SKILLHARBOR_RUNNER_URL"] = direct_url
    try:
        _, record = bench.import_skill(SKILL)
        assert record.get("status") == "SUCCEEDED", record
        agent = bench.agent("bench-commands")
        blob = base64.b64encode(os.urandom(1 << 20)).decode("ascii")
        runner_ms: dict[str, list[float]] = {"warm_command": [], "round_trip_1mib": []}

        def command(name: str, body: dict[str, Any]) -> Any:
            def go() -> None:
                status, result = bench.post("/api/skills/bench-commands/commands", body, agent)
                assert status == 200 and result["status"] == "ok", result
                if "collect" in body:
                    assert result["files"]["out.bin"] == blob
                runner_ms[name].append(result["duration_ms"])

            return go

        log("B8 command runs through the HTTP API")
        times = interleave({"warm_command": command("warm_command", {"argv": ["true"]}),
                            "round_trip_1mib": command("round_trip_1mib", {"argv": ["cp", "in.bin", "out.bin"],
                                                                           "files": {"in.bin": blob}, "collect": ["out.bin"]})},
                           rounds, before=lambda _: time.sleep(PAUSE_SECONDS))  # fmt: skip
        runner = {name: summary(values[-len(times[name]):]) for name, values in runner_ms.items()}
        return {"b8": {"rounds": rounds, **{name: summary(values) for name, values in times.items()},
                       "runner_duration": runner, "path": "direct (make run's default)"}}  # fmt: skip
    finally:
        os.environ.pop("SKILLHARBOR_RUNNER_URL", None)
        worker.stop()
        bench.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description="command runs through the HTTP API (B8)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    document: dict[str, Any] = {"benchmark": "commands", "environment": environment(), **run(args.rounds)}
    path = write_json(document, args.out, "commands")
    print(json.dumps({k: v for k, v in document["b8"].items()}, default=str)[:1500])
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
