"""Executing a ready skill for an agent: permission per package, then one sandboxed run.

The API never touches Docker. It hands a run job to a runner worker
(workflow/run_handoff.py: straight to a worker when ``runner_url`` is set,
through the runner queue otherwise or when that worker did not take it) and
waits for its outcome, at most ``run_sync_wait_seconds``: longer runs are
answered as pending, with a URL for their result. Every job that leaves the
API is signed (runner/signing.py). Prompt-only skills are rendered here,
without a container.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from typing import Any

from chalicelib.errors import BadRequest, Conflict, NotFound, PermissionDenied, RunnerUnavailable
from chalicelib.governance.audit import OK, SKILL_EXECUTE, audit_event
from chalicelib.packages.pins import Pin
from chalicelib.runner.jobs import BuildJob, CleanupJob, RemoveJob, RunJob
from chalicelib.runner.signing import seal
from chalicelib.runner.snippets import defines_function
from chalicelib.runner.spec import RunLimits, RunResult
from chalicelib.settings import get_settings
from chalicelib.workflow.ports import JobQueue, MessageQueue
from chalicelib.workflow.permissions import refuse_denied
from chalicelib.workflow.run_handoff import PendingRun, RunHandoff

log = logging.getLogger("skillharbor.execution")


#: how long a job of each kind may wait for a worker before a worker must drop it (its signature expires)
SCHEDULED_CLEANUP_LIFETIME_SECONDS = 3600.0  # the next hourly cleanup takes over
PIPELINE_BUILD_LIFETIME_SECONDS = 1800.0  # the Install step's TimeoutSeconds (infra/state_machine.asl.json)


def default_lifetime(job: Any) -> float:
    settings = get_settings()
    if isinstance(job, RunJob):
        return job.limits.timeout_seconds + 30.0
    if isinstance(job, CleanupJob) and job.result_id is None:
        return SCHEDULED_CLEANUP_LIFETIME_SECONDS
    return settings.runner_job_timeout_seconds  # as long as whoever asked waits for it


class SqsJobQueue:
    """The runner queue; every message is a signed job."""

    def __init__(self, messages: MessageQueue | None = None) -> None:
        if messages is None:
            from chalicelib.store.queues import SqsQueue

            messages = SqsQueue()
        self.messages = messages

    def send(self, job: Any, *, lifetime_seconds: float | None = None) -> None:
        settings = get_settings()
        try:
            body = seal(settings.runner_secret, job, lifetime_seconds=lifetime_seconds or default_lifetime(job))
        except ValueError as error:  # no runner secret: a configuration problem, said plainly
            raise RunnerUnavailable(f"runner jobs cannot be signed: {error}") from error
        self.messages.send(body)


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
    def __init__(self, skills: Any, blobs: Any, images: Any, checker: Any, queue: JobQueue | None = None, *,
                 runs: Any = None, audit: Any = None, isolation: Any = None,
                 network: Any = None, secrets: Any = None):  # fmt: skip
        self.skills, self.blobs, self.images, self.checker = skills, blobs, images, checker
        self.isolation = isolation  # governance.isolation_policy.IsolationPolicy; None: every run under runc
        self.network = network  # governance.network_service.NetworkGovernance: the run's host check
        self.secrets = secrets  # governance.secret_service.SecretBroker: which bound secrets the run gets
        self.queue = queue or SqsJobQueue()
        if runs is None:
            from chalicelib.store.runs import RunStore

            runs = RunStore()
        self.audit = audit
        self.handoff = RunHandoff(runs, self.queue, audit)
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

    def tier(self, skill_id: str, agent_id: str | None, record: dict[str, Any]) -> dict[str, Any]:
        """The ``RunJob`` fields of the tier the isolation rules choose for this run: ``runtime``, and
        ``audit_detail`` naming it and the rule that chose it (None: no rule matched)."""
        choice = self.isolation.choose(skill_id, agent_id, record) if self.isolation is not None else None
        runtime = choice.runtime.value if choice is not None else "runc"
        return {"runtime": runtime, "audit_detail": {"runtime": runtime, "isolation_rule": choice.rule_id if choice else None}}

    def host_permission(self, agent_id: str, hosts: list[str]) -> list[str]:
        """The declared hosts this run may reach; PermissionDenied naming each host that is not allowed."""
        if not hosts:
            return []
        if self.network is None:
            raise PermissionDenied(f"skill needs network access ({', '.join(hosts)}) and no network rules are configured")
        decision = self.network.check(agent_id, hosts)
        if decision.denied:
            lines = [f"{d['host']}: {d['reason']}" for d in decision.denied]
            raise PermissionDenied(f"agent {agent_id} may not reach this skill's hosts", problems=lines, hosts=decision.denied)
        return decision.allowed

    def limits(self, body: dict[str, Any]) -> RunLimits:
        """The configured defaults with this request's overrides, within the admin maxima."""
        settings = get_settings()
        overrides = {k: body.get(k) for k in ("timeout_seconds", "memory_mb", "cpus")}
        for name, value in overrides.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise BadRequest(f"{name} must be a number")
        return RunLimits.from_settings(settings).with_overrides(settings, **overrides)

    def execute(self, skill_id: str, agent_id: str, inputs: dict[str, Any], body: dict[str, Any], *,
                actor: str = "system", snippet: str | None = None) -> dict[str, Any] | PendingRun:  # fmt: skip
        """The run's result document, or PendingRun when it outlasts the request (see run()).

        ``snippet``: code the caller sent (the skill allows snippets; the API checked): it replaces the skill's
        code, with the skill's files beside it, and runs as a script unless it defines the entrypoint."""
        # the newest *ready* version: a newer upload that is broken or still importing does not stop runs
        record = self.skills.runnable(skill_id)  # latest_ready, reused briefly (store/skills.py)
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
        refuse_denied(agent_id, self.permission_problems(agent_id, pins), "this skill's packages")
        egress = self.host_permission(agent_id, record.get("network") or [])
        artifact = self.artifact(record)
        packages = [f"{p.name}=={p.version}" for p in pins]
        if record.get("skill_type") in ("prompt_only", "script") and snippet is None:  # instructions; commands run elsewhere
            output = render_template(artifact.get("template") or "", inputs)
            if self.audit is not None:
                self.audit.append(audit_event(SKILL_EXECUTE, actor=actor, agent_id=agent_id, skill_id=skill_id, outcome=OK,
                                              detail={"status": "ok", "duration_ms": 0, "image_tag": None, "prompt_only": True}))  # fmt: skip
            return {"success": True, "status": "ok", "output": output, "stdout": "", "stderr": "", "duration_ms": 0,
                    "image_tag": None, "packages": packages}  # fmt: skip
        limits = self.limits(body)
        entrypoint = record.get("entrypoint") or "execute"
        script = snippet is not None and not defines_function(snippet, entrypoint)
        tier = self.tier(skill_id, agent_id, record)
        job = RunJob(
            skill_id=skill_id, version=record["version"], image_tag=record.get("image_tag"), pins=pins,
            code=artifact.get("code") or "" if snippet is None else snippet, entrypoint=entrypoint, inputs=inputs,
            files=artifact.get("files") or {}, limits=limits, agent_id=agent_id, preimport=record.get("preimport", True),
            requested_by=actor, runtime=tier["runtime"], script=script, egress=egress,
            audit_detail={**tier["audit_detail"], **({"snippet": True} if snippet is not None else {})},
            secrets=self.secrets.for_run(skill_id, agent_id, egress) if self.secrets is not None and egress else [],
        )  # fmt: skip
        outcome = self.run(job, packages=packages)
        if isinstance(outcome, PendingRun):
            return outcome
        return {**outcome.model_dump(mode="json"), "image_tag": job.image_tag or get_settings().base_image_tag, "packages": packages}

    def run(self, job: RunJob, *, packages: list[str] | None = None) -> RunResult | PendingRun:
        """Run the job on a worker: its result, or PendingRun when it is not over within ``run_sync_wait_seconds``
        (the worker kills the container at its timeout; ``run_status`` has the result later)."""
        settings = get_settings()
        rebuild = 0.0
        if job.image_tag and self.images.get_image(job.image_tag) is None:
            # removed by the cleanup: the worker rebuilds it from the stored pins first
            rebuild = settings.runner_job_timeout_seconds
        image_tag = job.image_tag or settings.base_image_tag
        return self.handoff.run(job, rebuild_margin=rebuild, record={
            "image_tag": image_tag, "packages": packages if packages is not None else [f"{p.name}=={p.version}" for p in job.pins],
            "audit_detail": job.audit_detail})  # fmt: skip

    def run_status(self, job_id: str) -> tuple[dict[str, Any], dict[str, Any] | PendingRun]:
        """A run's record, and its result document (as the execute endpoint answers it) or PendingRun."""
        record, outcome = self.handoff.status(job_id)
        if isinstance(outcome, PendingRun):
            return record, outcome
        return record, {**outcome.model_dump(mode="json"), "image_tag": record.get("image_tag"), "packages": record.get("packages") or []}

    @functools.cached_property
    def results(self) -> Any:
        """Build and cleanup outcomes (store/results.py), written by the worker that ran the job."""
        from chalicelib.store.results import ResultStore

        return ResultStore()

    def wait_for_result(self, job_id: str, timeout: float) -> dict[str, Any] | None:
        """Poll the result record from 5 ms apart, backing off to 100 ms (faster polling measured
        no better: every read competes with the worker's writes for the same store)."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        while time.monotonic() < deadline:
            result = self.results.get(job_id)
            if result is not None:
                return result
            time.sleep(delay)
            delay = min(delay * 1.5, 0.1)
        return None

    # --- jobs for the pipeline, the seed-compatible endpoints and the scheduler -------------

    def dispatch_build(self, event: dict[str, Any]) -> dict[str, Any]:
        """The pipeline's Install step: a signed build job whose worker answers ``task_token``."""
        from pydantic import ValidationError

        fields = {k: event.get(k) for k in ("task_token", "import_id", "skill_id", "version")}
        try:
            job = BuildJob.model_validate(fields)
        except ValidationError as error:
            raise BadRequest(f"dispatch_build needs task_token, import_id, skill_id and version: {error.errors()[:3]}") from error
        if not job.task_token:
            raise BadRequest("dispatch_build needs a task_token")
        self.queue.send(job, lifetime_seconds=PIPELINE_BUILD_LIFETIME_SECONDS)
        return {"job_id": job.job_id}

    def build(self, job: BuildJob, timeout: float = 900.0) -> dict[str, Any] | None:
        self.queue.send(job, lifetime_seconds=timeout)
        return self.wait_for_result(job.result_id or "", timeout)

    def cleanup(self, job: CleanupJob | RemoveJob, timeout: float = 120.0) -> dict[str, Any] | None:
        self.queue.send(job, lifetime_seconds=timeout if job.result_id else None)
        return self.wait_for_result(job.result_id, timeout) if job.result_id else None
