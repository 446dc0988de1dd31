"""One exception hierarchy for the whole project.

Each error carries the HTTP status the API answers with; its class name is the
error name the state machine's Retry/Catch clauses match (Lambda reports the
exception's class name as the error type).
"""

from __future__ import annotations

from typing import Any


class SkillharborError(Exception):
    """Base of every error this project raises on purpose."""

    http_status = 500
    #: machine-readable reason stored on records and returned in JSON bodies
    reason = "internal_error"

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


class PayloadTooLarge(SkillharborError):
    """The body is over its size limit."""

    http_status = 413
    reason = "payload_too_large"


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


class ScanUnavailable(SkillharborError):
    """A package could not be audited: fail closed."""

    http_status = 503
    reason = "scan_unavailable"


class RunnerUnavailable(SkillharborError):
    """The Docker engine (or the runner worker) cannot be reached."""

    http_status = 503
    reason = "runner_unavailable"


class BuildFailed(SkillharborError):
    """The image build failed (download, hash check or pip); the build log tail says why."""

    http_status = 500
    reason = "build_failed"


# --- transient: retried by the state machine and by adapters -----------------


class TransientError(SkillharborError):
    """Worth retrying: throttling, timeouts, a dependency briefly away."""

    http_status = 503
    reason = "transient_error"


#: error names the state machine retries (see infra/state_machine.asl.json)
RETRYABLE_ASL_ERRORS = ("TransientError", "Lambda.ServiceException", "Lambda.TooManyRequestsException")
