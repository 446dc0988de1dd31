"""The audit events of one run, built the same way by the API and by the runner worker.

A run leaves ``skill.execute`` ``started`` (the API, before the job is sent
anywhere; in one transaction with the run's record) and one end event (``ok``
or ``failed``). The worker writes the end event when its run is over, in one
transaction with the run's outcome (so a run is on record even if the API died
after sending it), before it answers; the API writes it only when the outcome
it got does not say it was stored (store/runs.py ``finish_with_event``). Both
would write the very same event, whose id comes from the job id and whose time
the worker fixed, so the store keeps one.
Jobs a runner refuses (unsigned, forged, expired, over its limits) leave
``runner.job_refused``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from chalicelib.governance.audit import DENIED, FAILED, OK, SKILL_EXECUTE, SYSTEM_ACTOR, AuditEvent, audit_event

STARTED = "started"
RUNNER_JOB_REFUSED = "runner.job_refused"


def _event_id(job_id: str, phase: str) -> str:
    return "evt_" + hashlib.sha256(f"{job_id}:{phase}".encode()).hexdigest()[:20]


def run_started(job: Any) -> AuditEvent:
    """Written before the job leaves the API."""
    return audit_event(
        SKILL_EXECUTE, actor=job.requested_by, agent_id=job.agent_id, skill_id=job.skill_id, outcome=STARTED,
        event_id=_event_id(job.job_id, "started"),
        detail={"job_id": job.job_id, "version": job.version, "image_tag": job.image_tag, "limits": job.limits.model_dump(),
                **job.audit_detail},
    )  # fmt: skip


def run_ended(job: Any, result: Any, *, image_tag: str | None, worker: str | None = None) -> AuditEvent:
    """The run's outcome (``result`` is a RunResult); its time is now, so build it once and share it."""
    detail: dict[str, Any] = {"job_id": job.job_id, "status": result.status.value, "duration_ms": result.duration_ms,
                              "image_tag": image_tag, **job.audit_detail}  # fmt: skip
    if worker:
        detail["worker"] = worker
    if result.error and not result.success and result.status.value == "runner_unavailable":
        detail["error"] = result.error[:300]
    return audit_event(SKILL_EXECUTE, actor=job.requested_by, agent_id=job.agent_id, skill_id=job.skill_id,
                       outcome=OK if result.success else FAILED, event_id=_event_id(job.job_id, "ended"), detail=detail)  # fmt: skip


def job_refused(reason: str, message: str, **detail: Any) -> AuditEvent:
    """A job a runner would not take (``reason``: unsigned, forged, expired, limits, image, ...)."""
    return audit_event(RUNNER_JOB_REFUSED, actor=SYSTEM_ACTOR, outcome=DENIED,
                       agent_id=detail.pop("agent_id", None), skill_id=detail.pop("skill_id", None),
                       detail={"reason": reason, "message": message[:500], **detail})  # fmt: skip
