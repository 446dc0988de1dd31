"""Executing a ready skill for an agent: permission per package, then one sandboxed run.

The API never touches Docker. It posts a run job straight to a runner
worker when one is configured (``runner_url``, workflow/direct_run.py), and
otherwise, or when that worker cannot be reached, queues the job and waits
for the result record the worker writes. Prompt-only skills are rendered
here, without a container.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from typing import Any, Protocol

from chalicelib.errors import BadRequest, Conflict, NotFound, PermissionDenied
from chalicelib.packages.pins import Pin
from chalicelib.runner.jobs import BuildJob, CleanupJob, RemoveJob, RunJob
from chalicelib.runner.spec import RunLimits, RunResult, RunStatus
from chalicelib.settings import get_settings
from chalicelib.workflow.direct_run import DirectRunClient, DirectRunLost, DirectRunRefused, DirectRunUnreachable

log = logging.getLogger("skillharbor.execution")


class JobQueue(Protocol):
    def send(self, job: Any) -> None: ...


class SqsJobQueue:
    """The runner queue (SQS)."""

    @staticmethod
    @functools.lru_cache(maxsize=8)
    def _client(region: str, endpoint_url: str | None) -> Any:
        import boto3

        return boto3.client("sqs", region_name=region, endpoint_url=endpoint_url)

    def send(self, job: Any) -> None:
        settings = get_settings()
        self._client(settings.region, settings.aws_endpoint_url).send_message(
            QueueUrl=settings.runner_queue_url, MessageBody=job.model_dump_json()
        )


_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}|\{(\w+)\}")


def render_template(template: str, inputs: dict[str, Any]) -> str:
    """Fill ``{{name}}`` and ``{name}`` from ``inputs``; unknown names stay as written."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in inputs:
            return match.group(0)
        value = inputs[name]
        return value if isinstance(value, str) else json.dumps(value)

    return _PLACEHOLDER.sub(fill, template)


class ExecutionService:
    def __init__(self, skills: Any, blobs: Any, images: Any, checker: Any, queue: JobQueue | None = None):
        self.skills, self.blobs, self.images, self.checker = skills, blobs, images, checker
        self.queue = queue or SqsJobQueue()
        self._artifacts: dict[tuple[str, str], dict[str, Any]] = {}

    def artifact(self, record: dict[str, Any]) -> dict[str, Any]:
        """The parsed skill (code, files, template); immutable per version, so cached."""
        key = (record["skill_id"], record["version"])
        if key not in self._artifacts:
            self._artifacts[key] = self.blobs.get_json(get_settings().artifacts_bucket, record["artifact_key"])
        return self._artifacts[key]

    def permission_problems(self, agent_id: str, pins: list[Pin]) -> list[dict[str, Any]]:
        denied = []
        for pin in pins:
            # direct pins need an approval for this agent; every pin must be free of bans
            decision = self.checker.check(agent_id, pin.name, pin.version) if pin.direct else self.checker.ban_check(pin.name, pin.version)
            if not decision.allowed:
                denied.append({"package": pin.name, "version": pin.version, **decision.to_json()})
        return denied

    def limits(self, body: dict[str, Any]) -> RunLimits:
        """The configured defaults with this request's overrides, within the admin maxima."""
        settings = get_settings()
        overrides = {k: body.get(k) for k in ("timeout_seconds", "memory_mb", "cpus")}
        for name, value in overrides.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise BadRequest(f"{name} must be a number")
        return RunLimits.from_settings(settings).with_overrides(settings, **overrides)

    def execute(self, skill_id: str, agent_id: str, inputs: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        # the newest *ready* version: a newer upload that is broken or still importing does not stop runs
        record = self.skills.latest_ready(skill_id)
        if record is None:
            newest = self.skills.latest(skill_id)
            if newest is None:
                raise NotFound(f"no skill {skill_id!r}")
            raise Conflict(
                f"skill {skill_id} has no ready version (the newest is {newest.get('status')}"
                + (f": {newest.get('status_reason')}" if newest.get("status_reason") else "") + ")",
                status=newest.get("status"),
            )  # fmt: skip
        pins = [Pin(**p) for p in record.get("pins", [])]
        denied = self.permission_problems(agent_id, pins)
        if denied:
            lines = [f"{d['package']} {d['version']}: {d['reason']}" for d in denied]
            raise PermissionDenied(f"agent {agent_id} may not use this skill's packages", problems=lines, packages=denied)
        artifact = self.artifact(record)
        packages = [f"{p.name}=={p.version}" for p in pins]
        if record.get("skill_type") == "prompt_only":
            return {"success": True, "status": "ok", "output": render_template(artifact.get("template") or "", inputs),
                    "stdout": "", "stderr": "", "duration_ms": 0, "image_tag": None, "packages": packages}  # fmt: skip
        limits = self.limits(body)
        job = RunJob(
            skill_id=skill_id, version=record["version"], image_tag=record.get("image_tag"), pins=pins,
            code=artifact.get("code") or "", entrypoint=record.get("entrypoint") or "execute", inputs=inputs,
            files=artifact.get("files") or {}, limits=limits, agent_id=agent_id, preimport=record.get("preimport", True),
        )  # fmt: skip
        result = self.run(job)
        return {**result.model_dump(mode="json"), "image_tag": job.image_tag or get_settings().base_image_tag, "packages": packages}

    def run(self, job: RunJob) -> RunResult:
        """Run the job on a worker and wait for its result (the worker kills the container at its timeout)."""
        settings = get_settings()
        margin = 30.0
        if job.image_tag and self.images.get_image(job.image_tag) is None:
            # removed by the cleanup: the worker rebuilds it from the stored pins first
            margin = settings.runner_job_timeout_seconds
        if settings.runner_url:
            try:
                raw = self._direct(settings.runner_url, settings.runner_secret).run(
                    job.model_dump_json().encode(), job.limits.timeout_seconds + margin)
                return RunResult(**{k: v for k, v in raw.items() if k != "success"})
            except DirectRunUnreachable as error:
                log.warning("%s; sending job %s through the runner queue", error, job.job_id)
            except DirectRunRefused as error:  # agents see a plain message; operators the details in this log
                log.error("direct run of job %s refused, check SKILLHARBOR_RUNNER_URL and _SECRET: %s", job.job_id, error)
                return RunResult(status=RunStatus.RUNNER_UNAVAILABLE, error="the runner refused the job (a configuration "
                                 "problem on the platform's side); the operators have the details")  # fmt: skip
            except (DirectRunLost, ValueError) as error:  # ValueError: a result document that is not a RunResult
                log.error("direct run of job %s lost: %s", job.job_id, error)
                return RunResult(status=RunStatus.RUNNER_UNAVAILABLE, error="the runner took the job but its answer "
                                 "was lost; it is not retried, so that it cannot run twice")  # fmt: skip
        wait = job.limits.timeout_seconds + margin
        job = job.model_copy(update={"start_by": time.time() + wait})  # after that nobody waits for it
        self.queue.send(job)
        raw = self.wait_for_result(job.job_id, wait)
        if raw is None:
            return RunResult(status=RunStatus.RUNNER_UNAVAILABLE, error="no runner worker answered in time; is one running?")
        return RunResult(**{k: v for k, v in raw.items() if k != "success"})

    @staticmethod
    @functools.lru_cache(maxsize=4)
    def _direct(url: str, secret: str) -> DirectRunClient:
        return DirectRunClient(url, secret)

    def wait_for_result(self, job_id: str, timeout: float) -> dict[str, Any] | None:
        """Poll the result record from 5 ms apart, backing off to 100 ms (faster polling measured
        no better: every read competes with the worker's writes for the same store)."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        while time.monotonic() < deadline:
            result = self.images.get_result(job_id)
            if result is not None:
                return result
            time.sleep(delay)
            delay = min(delay * 1.5, 0.1)
        return None

    # --- jobs for the seed-compatible endpoints and the scheduler -------------

    def build(self, job: BuildJob, timeout: float = 900.0) -> dict[str, Any] | None:
        self.queue.send(job)
        return self.wait_for_result(job.result_id or "", timeout)

    def cleanup(self, job: CleanupJob | RemoveJob, timeout: float = 120.0) -> dict[str, Any] | None:
        self.queue.send(job)
        return self.wait_for_result(job.result_id, timeout) if job.result_id else None
