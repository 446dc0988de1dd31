"""The import's Behaviour step: run the skill once in the sandbox with canaries and judge what it tried.

After Scan (and Install, so the skill's packages are there), the step sends a probe job (``RunJob.probe``)
to a runner worker like any run; the worker runs the probe driver (``runner/probe/``) in the skill's image
under the tier the isolation rules choose, with no network. The recorded events are judged by
``scanning/behaviour.py``: CRITICAL blocks the version as a static CRITICAL does (only an admin's approval
with ``release_malicious`` releases it), HIGH needs an admin's approval of the version, the rest is reported.

``SKILLHARBOR_BEHAVIOUR_CHECK``: ``non_admin`` (default: skills published by non-admins), ``all``, ``off``.
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib.errors import Blocked, InvalidSkill, RunnerUnavailable, ScanUnavailable
from chalicelib.governance.audit import BLOCKED, IMPORT_STEP, SYSTEM_ACTOR, audit_event
from chalicelib.packages.pins import Pin
from chalicelib.runner.jobs import RunJob
from chalicelib.runner.spec import RunLimits, RunResult, RunStatus
from chalicelib.scanning.behaviour import INLINE_CODE_FILE, SEVERITIES, judge, make_canaries, plan_targets, redact_canaries
from chalicelib.settings import get_settings
from chalicelib.governance.timeutil import now_iso
from chalicelib.workflow.run_handoff import PendingRun

MODES = ("off", "non_admin", "all")
#: the container's time beyond the driver's own budget (start, planting canaries, reading the log)
DRIVER_MARGIN_SECONDS = 10.0
MAX_RECORDED_EVENTS = 60


class BehaviourCheck:
    def __init__(self, imports: Any, execution: Any):
        self.imports, self.execution = imports, execution  # ImportService, ExecutionService

    def step(self, state: dict[str, Any]) -> dict[str, Any]:
        settings = get_settings()
        if settings.behaviour_check == "off":
            return state  # off is off: nothing recorded, the import goes on as before the check existed
        skip = self._skip_reason(settings.behaviour_check, state)
        if skip is not None:  # known from the publisher alone: nothing to read
            self._save(state, {"status": "skipped", "reason": skip}, outcome="skipped", next_step=True)
            return state
        record = self.imports.skills.get_version(state["skill_id"], state["version"])
        if record is None:
            raise InvalidSkill(f"skill {state['skill_id']} version {state['version']} has no record")
        artifact = self.execution.artifact(record)
        targets, extra = plan_targets(artifact, record.get("entrypoint"), max_targets=settings.behaviour_max_targets)
        if not targets:
            self._save(state, {"status": "skipped", "reason": "nothing to run (no code or bundled scripts)"}, outcome="skipped",
                       next_step=True)  # fmt: skip
            return state
        canaries = make_canaries()
        budget = settings.behaviour_timeout_seconds
        image = (state.get("image") or {}).get("image_tag") or record.get("image_tag")
        tier = self.execution.tier(state["skill_id"], None, record)
        job = RunJob(skill_id=state["skill_id"], version=state["version"], image_tag=image,
                     pins=[Pin(**p) for p in record.get("pins", [])], code="", entrypoint="probe",
                     files={**(artifact.get("files") or {}), **extra}, requested_by=SYSTEM_ACTOR, runtime=tier["runtime"],
                     limits=RunLimits.from_settings(settings).model_copy(update={"timeout_seconds": budget + DRIVER_MARGIN_SECONDS}),
                     audit_detail={**tier["audit_detail"], "behaviour_check": True, "import_id": state["import_id"]},
                     probe={"targets": targets, "canary_env": canaries.env, "canary_files": canaries.files, "budget_seconds": budget})  # fmt: skip
        started = time.monotonic()
        result = self._run(job)
        if result.status != RunStatus.OK or not isinstance(result.output, dict):
            reason = f"the behaviour check did not complete ({result.status.value}): {result.error or 'no report'}"
            self._save(state, {"status": "failed", "reason": reason}, outcome="failed")
            if result.status == RunStatus.RUNNER_UNAVAILABLE:
                raise RunnerUnavailable(reason)
            raise ScanUnavailable(reason)  # fail closed, as the scan does
        report = result.output
        events = [e for e in report.get("events") or [] if isinstance(e, dict)]
        printed = [str(t.get(k) or "") for t in report.get("targets") or [] for k in ("stdout", "stderr")]
        findings = [f.to_dict() for f in judge(events, canaries, declared_hosts=record.get("network") or [], outputs=printed,
                                               home=report.get("home", ""), workspace=report.get("workspace", ""),
                                               skill_dir=report.get("skill_dir", "/tmp/skill"))]  # fmt: skip
        for finding in findings:
            if finding["file"] == INLINE_CODE_FILE:
                finding["file"] = "SKILL.md"
        severity = worst_of(findings)
        summary = {
            "status": "blocked" if severity == "CRITICAL" else "needs_approval" if severity == "HIGH" else "passed",
            "worst": severity, "findings": findings, "event_count": len(events),
            "events": redact_canaries(events[:MAX_RECORDED_EVENTS], canaries),
            "targets": [{**t.get("target", {}), **{k: t.get(k) for k in ("exit_code", "timed_out", "seconds", "skipped")}}
                        for t in report.get("targets") or []],
            "runtime": result.runtime.value if result.runtime else tier["runtime"], "duration_ms": int((time.monotonic() - started) * 1000),
        }  # fmt: skip
        prefix = record["artifact_key"].rsplit("/", 1)[0]
        self.imports.blobs.put_json(settings.artifacts_bucket, f"{prefix}/behaviour.json",
                                    dict(summary, events=redact_canaries(events, canaries), printed=redact_canaries(printed, canaries)))  # fmt: skip
        self._save(state, summary, outcome=summary["status"], next_step=severity not in ("CRITICAL", "HIGH"))
        self._enforce(state, findings, severity)
        return state

    def _skip_reason(self, mode: str, state: dict[str, Any]) -> str | None:
        publisher = state.get("publisher") or {}  # resumed executions carry none: checked (the safe side)
        if mode == "non_admin" and publisher.get("admin"):
            return "published by an admin (SKILLHARBOR_BEHAVIOUR_CHECK=non_admin)"
        return None

    def _run(self, job: RunJob) -> RunResult:
        """The probe's result, waiting past the handoff's request-sized wait (its record ends overdue runs)."""
        outcome = self.execution.run(job)
        while isinstance(outcome, PendingRun):
            time.sleep(0.2)
            outcome = self.execution.handoff.status(job.job_id)[1]
        return outcome

    def _save(self, state: dict[str, Any], summary: dict[str, Any], *, outcome: str, next_step: bool = False) -> None:
        """The check's summary on the version and the import, and its audit event, in one write; ``next_step``:
        the import moves on to Finalize (nothing for an admin to approve)."""
        step = {"status": "failed" if outcome in ("blocked", "needs_approval", "failed") else "succeeded", "at": now_iso(),
                **{k: summary[k] for k in ("reason", "worst", "event_count") if k in summary},
                "findings": len(summary.get("findings", []))}  # fmt: skip
        import_fields: dict[str, Any] = {"behaviour": {k: v for k, v in summary.items() if k not in ("events",)}}
        if next_step:
            import_fields["current_step"] = "finalize"
        event = audit_event(
            IMPORT_STEP, actor=SYSTEM_ACTOR, skill_id=state["skill_id"], outcome=BLOCKED if outcome == "blocked" else outcome,
            detail={"import_id": state["import_id"], "step": "behaviour", "worst": summary.get("worst"), "reason": summary.get("reason"),
                    "findings": [_line(f) for f in summary.get("findings", [])][:20], "event_kinds": _kinds(summary.get("events") or [])})  # fmt: skip
        self.imports.commit_step(state, version={"behaviour": summary, "steps__behaviour": step}, import_fields=import_fields,
                                 events=(event,))  # fmt: skip

    def _enforce(self, state: dict[str, Any], findings: list[dict[str, Any]], severity: str | None) -> None:
        if severity not in ("CRITICAL", "HIGH"):
            return  # _save moved the import on
        approval = self.imports.reviews.code_approval(state["skill_id"], state["version"])
        lines = [_line(f) for f in findings if f["severity"] in ("CRITICAL", "HIGH")]
        if severity == "CRITICAL" and not (approval and approval.get("releases_malicious")):
            raise Blocked("the skill behaved maliciously in the behaviour check (CRITICAL findings); only an admin's approval "
                          "of this version with release_malicious (and a reason) releases it", problems=lines)  # fmt: skip
        if severity == "HIGH" and approval is None:
            raise Blocked("the skill's behaviour check has HIGH severity findings; an admin must approve this version "
                          f"(POST /api/skills/{state['skill_id']}/approve-code)", problems=lines)  # fmt: skip


def worst_of(findings: list[dict[str, Any]]) -> str | None:
    ranks = [SEVERITIES.index(f["severity"]) for f in findings]
    return SEVERITIES[max(ranks)] if ranks else None


def _line(f: dict[str, Any]) -> str:
    return f"{f['file']}:{f['line']} {f['rule_id']} {f['severity']}: {f['message']}: {f['matched']!r} (fix: {f['fix']})"


def _kinds(events: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in events:
        counts[str(event.get("kind"))] = counts.get(str(event.get("kind")), 0) + 1
    return counts

