"""The runner worker's composition root: ``python -m chalicelib.runner.main`` next to a Docker engine.

Wires the worker (runner/worker.py, which takes every store and the engine as arguments and so runs
in tests against fakes or moto) to the real ones: the Docker engine, DynamoDB, SQS, Step Functions,
the fleet registry and CloudWatch metrics; then serves until SIGTERM/SIGINT, drains, and removes its
containers.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from typing import Any

from chalicelib.errors import RunnerUnavailable
from chalicelib.runner.worker import DockerEngine, RunnerWorker

log = logging.getLogger("skillharbor.runner")


def build_worker(settings: Any | None = None) -> RunnerWorker:
    """A worker wired to the Docker engine and the AWS stores the settings name."""
    from chalicelib.settings import get_settings
    from chalicelib.store.audit import AuditStore
    from chalicelib.store.images import ImageStore
    from chalicelib.store.queues import sqs_client
    from chalicelib.store.runners import RunnerFleet
    from chalicelib.store.skills import DynamoSkillRegistry
    from chalicelib.store.metrics import RunnerMetrics
    from chalicelib.store.platform import PlatformStore
    from chalicelib.store.stepfunctions import StepFunctionsOrchestrator

    settings = settings or get_settings()
    sqs = sqs_client()
    platform = PlatformStore()  # the base image's platform, and its digest in the registry
    worker = RunnerWorker(
        DockerEngine(settings, base_digests=platform), platform=platform, sqs=sqs, queue_url=settings.runner_queue_url,
        images=ImageStore(),
        skills=DynamoSkillRegistry(), orchestrator=StepFunctionsOrchestrator(), audit=AuditStore(),
        secret=settings.runner_secret, maxima=settings, direct_listen=settings.runner_listen,
        heartbeat_seconds=settings.runner_heartbeat_seconds, fleet=RunnerFleet(), advertise_url=settings.runner_advertise_url,
    )  # fmt: skip
    worker.metrics = RunnerMetrics()
    return worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="skillharbor container-runner worker")
    parser.add_argument("--threads", type=int, default=4, help="jobs handled at once")
    parser.add_argument("--drain-seconds", type=float, default=10.0,
                        help="on SIGTERM/SIGINT, how long running jobs may finish before they go back to the queue")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from chalicelib.runner.signing import require_secret
    from chalicelib.settings import get_settings

    try:
        require_secret(get_settings().runner_secret)
    except ValueError as error:
        parser.exit(2, f"skillharbor runner: {error}\n")
    worker = build_worker()
    worker.drain_seconds = args.drain_seconds
    signal.signal(signal.SIGTERM, lambda *_: worker.request_stop())
    signal.signal(signal.SIGINT, lambda *_: worker.request_stop())
    try:
        worker._publish_platform()
        prewarm = getattr(worker.engine, "prewarm", None)
        if prewarm is not None:
            prewarm()  # the first skill without packages starts warm
    except RunnerUnavailable as error:
        log.warning("base image not ready yet: %s (jobs will retry)", error)
    log.info("runner worker polling %s with %d thread(s)", worker.queue_url, args.threads)
    started = time.monotonic()
    try:
        worker.run_forever(threads=args.threads)
    finally:
        present, left = worker.engine.shut_down() if isinstance(worker.engine, DockerEngine) else ([], [])
    from chalicelib.runner.leftovers import summary

    stopping = worker.stop_requested_at or time.monotonic()
    log.info("runner worker stopped after %.0fs, %.1fs after the stop signal; removed %s", stopping - started,
             time.monotonic() - stopping, summary([c for c in present if c not in left]))  # fmt: skip
    if left:
        log.error("runner worker could not remove %s", summary(left))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
