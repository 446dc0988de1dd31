"""One exception hierarchy for the whole project, each error's mapping declared once.

A class declares the HTTP status every route answers it with (``http_status``),
the machine-readable ``reason`` of JSON bodies and records, and, when the import
state machine tells it apart, its ASL error name (``asl_name``: Lambda reports
an exception's class name as the error type, so it is the class name) and the
skill status a pipeline failure of that kind leaves (``record_status``). The
handlers, the direct run endpoint, the pipeline's failure record and docs/API.md
read these; tests/unit/test_error_mapping.py checks infra/'s ErrorEquals lists
against them.
"""

from __future__ import annotations

from typing import Any


class SkillharborError(Exception):
    """Base of every error this project raises on purpose."""

    http_status = 500
    #: machine-readable reason stored on records and returned in JSON bodies
    reason = "internal_error"
    #: the name the state machine's Retry/Catch clauses match this error by (None: only States.ALL catches it)
    asl_name: str | None = None
    #: the skill version's status when an import step fails with this error
    record_status = "failed"

    def __init__(self, message: str, *, problems: list[str] | None = None, **details: Any):
        super().__init__(message)
        self.message = message
        self.problems = list(problems or [])
        self.details = details

    def __str__(self) -> str:
        # Lambda reports str(exception) as errorMessage: the Catch step stores it as the reason
        unsaid = [p for p in self.problems if p not in self.message]
        return self.message + "".join(f"\n- {p}" for p in unsaid)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.reason, "message": self.message}
        if self.problems:
            body["problems"] = self.problems
        if self.details:
            body["details"] = self.details
        return body


# --- 4xx: the caller sent something wrong -----------------------------------


class BadRequest(SkillharborError):
    """The request is malformed: the message names the field and what is wrong."""

    http_status = 400
    reason = "bad_request"


class InvalidSkill(BadRequest):
    """The SKILL.md (or zip) cannot be accepted; ``problems`` lists every issue."""

    reason = "invalid_skill"


class InvalidRequirement(BadRequest):
    """A requirement is not an acceptable PEP 508 string; ``problems`` names each."""

    reason = "invalid_requirement"


class Unauthorized(SkillharborError):
    """No API key, or an unknown or revoked one."""

    http_status = 401
    reason = "unauthorized"


class Forbidden(SkillharborError):
    """The key's role may not do this, or an agent key named another agent."""

    http_status = 403
    reason = "forbidden"


class PermissionDenied(Forbidden):
    """Governance said no (per-package reasons in ``details``)."""

    reason = "permission_denied"


class NotFound(SkillharborError):
    """No such skill, import, agent, key, rule or image."""

    http_status = 404
    reason = "not_found"


class Conflict(SkillharborError):
    """The state does not allow it (skill not ready, agent exists, already revoked)."""

    http_status = 409
    reason = "conflict"


class RequestTimeout(SkillharborError):
    """The request's body did not arrive within its deadline."""

    http_status = 408
    reason = "request_timeout"


class LengthRequired(SkillharborError):
    """The request declares no Content-Length where one is needed."""

    http_status = 411
    reason = "length_required"


class PayloadTooLarge(SkillharborError):
    """The body is over its size limit."""

    http_status = 413
    reason = "payload_too_large"


class HeadersTooLarge(SkillharborError):
    """The request's headers are over their size limit."""

    http_status = 431
    reason = "headers_too_large"


class UnsupportedMediaType(SkillharborError):
    """The Content-Type is not one the route accepts."""

    http_status = 415
    reason = "unsupported_media_type"


class TooManyRequests(SkillharborError):
    """This key is over a rate or concurrency limit; retry after ``Retry-After`` seconds."""

    http_status = 429
    reason = "too_many_requests"

    def __init__(self, message: str, *, retry_after_seconds: int, **details: Any):
        super().__init__(message, retry_after_seconds=retry_after_seconds, **details)
        self.retry_after_seconds = max(1, int(retry_after_seconds))


# --- pipeline outcomes that are not bugs -------------------------------------


class ResolutionFailed(SkillharborError):
    """The requirement set has no solution for the target platform."""

    http_status = 422
    reason = "resolution_failed"


class Blocked(SkillharborError):
    """Policy (ban, vulnerability, dangerous code) stops the skill."""

    http_status = 422
    reason = "blocked"
    asl_name = "Blocked"
    record_status = "blocked"


class VulnerabilitiesFound(Blocked):
    """Known vulnerabilities stop a package set a caller asked for synchronously (install, pre-flight).

    400, not Blocked's 422: the seed's install contract answers a vulnerability verdict 400 with
    "Vulnerabilities detected" in the error, and its clients test for exactly that. The import pipeline
    raises Blocked (the record says blocked); no state machine step raises this one."""

    http_status = 400
    reason = "vulnerabilities_found"
    asl_name = None


class ScanUnavailable(SkillharborError):
    """A package could not be audited: fail closed."""

    http_status = 503
    reason = "scan_unavailable"
    asl_name = "ScanUnavailable"


class RunnerUnavailable(SkillharborError):
    """The Docker engine (or the runner worker) cannot be reached."""

    http_status = 503
    reason = "runner_unavailable"
    asl_name = "RunnerUnavailable"  # the Install step retries it (a worker may come back)


class BuildFailed(SkillharborError):
    """The image build failed (download, hash check or pip); the build log tail says why."""

    http_status = 500
    reason = "build_failed"
    asl_name = "BuildFailed"  # what the worker names a failed build when it answers the task token

    def to_dict(self) -> dict[str, Any]:
        # the seed's install answer: success false, the error and the build log's tail beside the usual fields
        return {**super().to_dict(), "success": False, "skill_id": self.details.get("skill_id"),
                "build_logs": self.details.get("build_logs") or []}  # fmt: skip


# --- transient: retried by the state machine and by adapters -----------------


class TransientError(SkillharborError):
    """Worth retrying: throttling, timeouts, a dependency briefly away."""

    http_status = 503
    reason = "transient_error"
    asl_name = "TransientError"


#: error names every task of the state machine retries (see infra/state_machine.asl.json)
RETRYABLE_ASL_ERRORS = (TransientError.asl_name, "Lambda.ServiceException", "Lambda.TooManyRequestsException")


def error_classes() -> list[type[SkillharborError]]:
    """Every class of the hierarchy, the base first."""
    found, pending = [], [SkillharborError]
    while pending:
        cls = pending.pop(0)
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def error_named(name: str) -> type[SkillharborError] | None:
    """The class an ASL error name (a Lambda error type) stands for, if it is one of ours."""
    return next((cls for cls in error_classes() if cls.__name__ == name), None)
