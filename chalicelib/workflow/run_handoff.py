"""Handing one run job to a runner worker and getting its outcome, within what an API request may wait.

Order of events for every run:

1. the job is registered (store/runs.py, ``accepted``) and ``skill.execute
   started`` is audited, before the job leaves the API;
2. it goes straight to a worker (workflow/direct_run.py): one of the fleet
   (workflow/routing.py) or ``runner_url``; a worker that turned it away
   before claiming it passes it to the next; with none left, or when a
   worker did not begin an answer in time, it goes through the runner queue
   (the worker claims each job id once, so a copy that arrives twice runs
   once). A worker that went away after claiming the job never gets it
   resent elsewhere: the run is reported lost;
3. the API waits at most ``run_sync_wait_seconds`` (below the API function's
   timeout, ``.chalice/config.json``). A run that ends by then is answered
   with its result (200); a longer one is answered 202 with
   ``/api/runs/{job_id}``, where the result appears when the worker records it.

The end of a run is recorded (result and audit event) by the worker that ran
it; the API records it only when no worker will: the job was refused, could
not be handed over, or its result is overdue.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from chalicelib.errors import NotFound, RunnerUnavailable
from chalicelib.governance.audit import AuditEvent
from chalicelib.governance.run_events import run_started
from chalicelib.runner.jobs import RunJob
from chalicelib.runner.run_records import AUDIT_EVENT_FIELD, EVENT_STORED_FIELD, RunRecorder
from chalicelib.runner.signing import sign
from chalicelib.runner.spec import RunResult, RunStatus
from chalicelib.settings import get_settings
from chalicelib.store.runs import ACCEPTED, DONE, RUNNING
from chalicelib.workflow.direct_run import (
    DirectRunBusy,
    DirectRunClient,
    DirectRunLost,
    DirectRunNoAnswerYet,
    DirectRunRefused,
    DirectRunUnreachable,
)
from chalicelib.workflow.routing import FleetRouter, Target

log = logging.getLogger("skillharbor.execution")

#: time a run may need beyond its own timeout (container start, image pull, result upload)
RUN_MARGIN_SECONDS = 30.0
POLL_FIRST, POLL_MAX = 0.005, 0.1


@dataclass(frozen=True)
class PendingRun:
    """A run that was still going when the API stopped waiting: its result will be at ``result_url``."""

    job_id: str
    state: str  # accepted (not started yet) or running

    @property
    def result_url(self) -> str:
        return f"/api/runs/{self.job_id}"

    def to_json(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "status": "queued" if self.state == ACCEPTED else "running",
                "result_url": self.result_url,
                "message": "the run takes longer than a request waits; GET result_url for its result"}  # fmt: skip


def strip_event(document: dict[str, Any]) -> tuple[dict[str, Any], AuditEvent | None]:
    """A run document without its audit event, and the event (None as well when the worker stored it together
    with the run record: nothing is left to write)."""
    document = dict(document)
    raw = document.pop(AUDIT_EVENT_FIELD, None)
    stored = document.pop(EVENT_STORED_FIELD, False) is True
    document.pop("success", None)
    return document, AuditEvent.model_validate(raw) if isinstance(raw, dict) and not stored else None


class RunHandoff:
    def __init__(self, runs: Any, queue: Any, audit: Any, router: FleetRouter | None = None):
        self.runs, self.queue, self.audit = runs, queue, audit
        self._router = router  # which fleet worker takes a direct run (default: from the fleet registry)
        self.recorder = RunRecorder(runs, audit, worker_id="")

    def run(self, job: RunJob, *, rebuild_margin: float = 0.0, record: dict[str, Any] | None = None) -> RunResult | PendingRun:
        settings = get_settings()
        budget = job.limits.timeout_seconds + RUN_MARGIN_SECONDS + rebuild_margin  # once started
        now = time.time()
        job = job.model_copy(update={"start_by": now + budget})  # a queued job not started by then is dropped
        # the record and the started event in one write: both durable before the job leaves the API
        self.runs.register_started(job.job_id, run_started(job), self.audit, agent_id=job.agent_id, skill_id=job.skill_id,
                                   version=job.version, requested_by=job.requested_by, start_by=job.start_by,
                                   result_due=job.start_by + budget, **(record or {}))  # fmt: skip
        deadline = time.monotonic() + settings.run_sync_wait_seconds
        try:
            return self._hand_over(job, budget, deadline)
        except RunnerUnavailable:
            raise
        except Exception as error:  # never leave a started run without an end on record
            log.exception("handing run job %s to a runner failed", job.job_id)
            self._end(job, f"the job could not be handed to a runner: {type(error).__name__}")
            raise RunnerUnavailable("the run could not be handed to a runner; try again") from error

    def _hand_over(self, job: RunJob, budget: float, deadline: float) -> RunResult | PendingRun:
        """To a worker of the fleet (workflow/routing.py), else SKILLHARBOR_RUNNER_URL, else the queue."""
        settings = get_settings()
        job_json = job.model_dump_json().encode()
        targets = self._fleet_targets(job) if settings.direct_runs else []
        if settings.direct_runs and settings.runner_url and settings.runner_url not in {t.url for t in targets}:
            targets.append(Target("", settings.runner_url, "runner_url"))
        signature = sign(settings.runner_secret, "run", job.job_id, job_json, lifetime_seconds=budget) if targets else ""
        for target in targets:
            outcome = self._try_direct(job, job_json, signature, target, budget, deadline)
            if outcome is not None:
                return outcome
        self.queue.send(job, lifetime_seconds=budget)
        return self._wait(job.job_id, deadline)

    def _fleet_targets(self, job: RunJob) -> list[Target]:
        try:
            return self.router.targets(job)
        except Exception:  # a registry that cannot be read leaves today's paths
            log.warning("could not read the runner fleet; using SKILLHARBOR_RUNNER_URL or the queue", exc_info=True)
            return []

    def _try_direct(self, job: RunJob, job_json: bytes, signature: str, target: Target, budget: float,
                    deadline: float) -> RunResult | PendingRun | None:  # fmt: skip
        """The run's outcome through ``target``; None when it did not start there (the next target may take it)."""
        with self.router.sending(target):
            try:
                answer = self._direct(target.url).run(job_json, signature, max(0.1, deadline - time.monotonic()))
                return self._result(answer)
            except DirectRunNoAnswerYet as error:  # it may be running there; the claim keeps a queued copy from running too
                log.info("%s; job %s also queued, answered as pending", error, job.job_id)
                self.queue.send(job, lifetime_seconds=budget)
                return self._wait(job.job_id, deadline)
            except DirectRunBusy as error:
                log.info("%s; job %s goes to the next runner", error, job.job_id)
                self.router.busy(target)
                return None
            except DirectRunUnreachable as error:
                return self._unanswered(job, target, error)
            except DirectRunRefused as error:  # agents see a plain message; operators the details in this log
                log.error("direct run of job %s refused, check SKILLHARBOR_RUNNER_URL and _SECRET: %s", job.job_id, error)
                return self._end(job, "the runner refused the job (a configuration problem on the platform's side); "
                                 "the operators have the details")  # fmt: skip
            except (DirectRunLost, ValueError) as error:  # ValueError: a document that is not a RunResult
                log.error("direct run of job %s: answer lost (%s); waiting for its record", job.job_id, error)
                return self._wait(job.job_id, deadline)

    def _unanswered(self, job: RunJob, target: Target, error: Exception) -> RunResult | None:
        """No answer at all: unless the worker had claimed the job (it may have started: it is never sent again,
        and reported lost), it did not start, and the next target may take it."""
        self.router.gone(target)
        record = self.runs.get(job.job_id) or {}
        if record.get("state") == DONE:
            return self._result(record["result"])
        if record.get("state") == RUNNING:
            worker = record.get("worker") or target.worker_id or target.url
            log.error("direct run of job %s lost with runner %s: %s", job.job_id, worker, error)
            return self._end(job, lost_message(worker))
        log.warning("%s; job %s did not start there: trying the next runner", error, job.job_id)
        return None

    @property
    def router(self) -> FleetRouter:
        if self._router is None:
            from chalicelib.store.runners import RunnerFleet

            self._router = FleetRouter(RunnerFleet().members, lambda: get_settings().base_image_tag)
        return self._router

    @staticmethod
    def _direct(url: str) -> DirectRunClient:
        return _client(url)

    def _result(self, document: dict[str, Any], *, audit: bool = True) -> RunResult:
        document, event = strip_event(document)
        if event is not None and audit:
            self.audit.append(event)  # the worker appended the same one (or failed to); the store keeps one
        return RunResult(**document)

    def _end(self, job: RunJob, error: str) -> RunResult:
        """Record an end no worker will record; the recorded end (this one, or one that won the race)."""
        document = self.recorder.outcome(job, RunResult(status=RunStatus.RUNNER_UNAVAILABLE, error=error))
        if self.recorder.record(job, document):  # audited there
            return self._result(document, audit=False)
        stored = self.runs.get(job.job_id) or {}
        return self._result(stored.get("result") or document)

    def _wait(self, job_id: str, deadline: float) -> RunResult | PendingRun:
        """Poll the run record from 5 ms apart, backing off to 100 ms (faster polling measured no better: every
        read competes with the worker's writes for the same store)."""
        delay = POLL_FIRST
        record: dict[str, Any] | None = None
        while True:
            record = self.runs.get(job_id)
            if record is not None and record.get("state") == DONE:
                return self._result(record["result"])
            if time.monotonic() + delay > deadline:
                return PendingRun(job_id, (record or {}).get("state", ACCEPTED))
            time.sleep(delay)
            delay = min(delay * 1.5, POLL_MAX)

    def status(self, job_id: str) -> tuple[dict[str, Any], RunResult | PendingRun]:
        """The run record and the run's outcome, or PendingRun while it is not over (overdue runs are ended here)."""
        record = self.runs.get(job_id)
        if record is None:
            raise NotFound(f"no run job {job_id!r}")
        if record.get("state") == DONE:
            return record, self._result(record["result"])
        job = RunJob(job_id=job_id, skill_id=record["skill_id"], version=record.get("version", ""), code="", entrypoint="execute",
                     agent_id=record.get("agent_id"), requested_by=record.get("requested_by", "system"),
                     image_tag=record.get("image_tag"), audit_detail=record.get("audit_detail") or {})  # fmt: skip
        holder = self._gone_holder(record)
        if holder:  # claimed (from the queue or directly) by a worker the fleet lists gone: it will never report
            return record, self._end(job, lost_message(holder))
        if time.time() <= float(record.get("result_due", 0)):
            return record, PendingRun(job_id, record.get("state", ACCEPTED))
        return record, self._end(job, "no runner worker reported a result in time; is one running?")

    def _gone_holder(self, record: dict[str, Any]) -> str:
        """The worker holding this running job, when the fleet lists it gone ("" otherwise)."""
        worker = record.get("worker") if record.get("state") == RUNNING else None
        if not worker:
            return ""
        try:
            listed = {m.get("worker_id"): m.get("state") for m in self.router.fleet()}
        except Exception:  # the registry unreadable: wait for the result or its due time, as before
            return ""
        # not "stopped": a worker stopping cleanly may still be finishing it
        return str(worker) if listed.get(worker) == "gone" else ""


def lost_message(worker: str) -> str:
    return (f"the run was lost: runner worker {worker} went away while it held the run, which may have partly happened, "
            "so it was not retried; run it again if that is safe")


_clients: dict[str, DirectRunClient] = {}


def _client(url: str) -> DirectRunClient:
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = DirectRunClient(url)
    return client
