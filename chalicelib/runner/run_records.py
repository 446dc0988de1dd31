"""A run job's life on a worker: claimed once before its container starts, its outcome recorded and audited once.

The API registers every run job (store/runs.py) before sending it. Whichever
worker gets a copy first (a direct request, its queued fallback, a replay,
a redelivery) claims it; the others find it taken and run nothing. The
outcome goes into the run record together with its audit event, and the
worker appends that event itself, so a run is on record even if the API
died after sending it; the API appends the same event when it reads the
result (the store keeps one, see governance/run_events.py).
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.errors import Conflict
from chalicelib.governance.audit import AuditEvent
from chalicelib.governance.run_events import run_ended
from chalicelib.runner.intake import RefusedJob
from chalicelib.runner.jobs import RunJob
from chalicelib.runner.spec import RunResult, RunStatus
from chalicelib.store.runs import TAKEN, UNKNOWN

log = logging.getLogger("skillharbor.runner")

AUDIT_EVENT_FIELD = "audit_event"
#: in a run's outcome document: it was stored together with its audit event (one transaction)
EVENT_STORED_FIELD = "audit_event_stored"


class RunRecorder:
    def __init__(self, runs: Any, audit: Any, worker_id: str):
        self.runs, self.audit, self.worker_id = runs, audit, worker_id

    def claim(self, job: RunJob) -> None:
        """Take ``job`` for this worker: Conflict when another copy has it, RefusedJob when nobody registered it."""
        outcome = self.runs.claim(job.job_id, self.worker_id)
        if outcome == TAKEN:
            raise Conflict(f"run job {job.job_id} was already taken")
        if outcome == UNKNOWN:
            raise RefusedJob("unregistered", f"run job {job.job_id} was never registered by the API", job, {"job_id": job.job_id})

    def release(self, job: RunJob) -> None:
        """Its container never started: another attempt may take it."""
        self.runs.release(job.job_id, self.worker_id)

    def outcome(self, job: RunJob, result: RunResult) -> dict[str, Any]:
        """The document the run ends with: the result and the audit event that says so."""
        event = run_ended(job, result, image_tag=result.image or job.image_tag, worker=self.worker_id)
        return {**result.model_dump(mode="json"), AUDIT_EVENT_FIELD: event.to_json()}

    def refused(self, job: RunJob, refusal: RefusedJob) -> dict[str, Any]:
        result = RunResult(status=RunStatus.RUNNER_UNAVAILABLE, error=f"the runner refused the job: {refusal.message}")
        return self.outcome(job, result)

    def record(self, job: RunJob, document: dict[str, Any]) -> bool:
        """Store the outcome (the first one stands) and audit it; False when the run already had one.

        With the DynamoDB stores both are one transaction, and ``document`` (as stored and as given) is marked
        ``EVENT_STORED_FIELD``: whoever reads or is answered with it knows the end is on record already and need
        not write the event again."""
        event = AuditEvent.model_validate(document[AUDIT_EVENT_FIELD])
        together = getattr(self.runs, "finish_with_event", None)
        put = getattr(self.audit, "transact_put", None)
        if together is not None and put is not None:
            stored = together(job.job_id, {**document, EVENT_STORED_FIELD: True}, put(event))
            if stored:
                document[EVENT_STORED_FIELD] = True
        else:
            stored = self.runs.finish(job.job_id, document)
            if stored and self.audit is not None:
                self.audit.append(event)
        if not stored:
            log.warning("run job %s already had an outcome; this one (%s) is not recorded", job.job_id, document.get("status"))
        return stored
