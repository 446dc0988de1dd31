"""Response models of the main answers: what docs/API.md and the OpenAPI document say a route returns.

The handlers answer with the services' own documents; these models describe
them (the fields a client can count on; answers may carry more, hence
``extra="allow"``), and the unit tests check real answers against them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ResponseModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorResponse(ResponseModel):
    """Every error: ``error`` is the machine-readable reason, ``problems`` lists each field or item at fault."""

    error: str
    message: str
    problems: list[str] | None = None
    details: dict[str, Any] | None = None


class ImportAccepted(ResponseModel):
    import_id: str
    skill_id: str | None = None
    version: str | None = None
    status: str


class SkillSummary(ResponseModel):
    skill_id: str
    name: str | None = None
    description: str | None = None
    version: str | None = None
    status: str | None = None
    status_reason: str | None = None
    skill_type: str | None = None
    updated_at: str | None = None
    active_version: str | None = None


class SkillList(ResponseModel):
    skills: list[SkillSummary]


class SkillDetail(SkillSummary):
    sandbox_needs: list[dict[str, Any]] = Field(default_factory=list)
    pins: list[dict[str, Any]] = Field(default_factory=list)
    owner: str | None = None


class RunAnswer(ResponseModel):
    """A run's result (200) or, with ``result_url``, a run still going (202)."""

    status: str = Field(description="ok, error, timeout, oom, runner_unavailable...; queued or running on a 202")
    job_id: str | None = None
    result_url: str | None = Field(default=None, description="202 only: GET it for the result")
    output: Any = None
    stdout: str | None = None
    stderr: str | None = None
    exit_code: int | None = None
    duration_ms: int | None = None
    error: str | None = None
    image_tag: str | None = None
    packages: list[str] | None = None


class InstallAnswer(ResponseModel):
    success: bool
    skill_id: str
    image_tag: str | None = None
    packages_installed: list[str] = Field(default_factory=list)
    vulnerabilities: list[dict[str, Any]] = Field(default_factory=list)
    build_logs: list[str] = Field(default_factory=list)


class ScanAnswer(ResponseModel):
    pins: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    typosquats: list[Any]
    unaudited: list[Any]
    scan_status: str = Field(description="ok, flagged, blocked or scan_unavailable")
    reasons: list[str]
    advisory_db: dict[str, Any] | None = None
    warnings: list[str] = Field(default_factory=list)


class AgentAnswer(ResponseModel):
    agent_id: str
    maturity: str
    created_at: str | None = None
    updated_at: str | None = None
    version: int | None = None
    api_key: str | None = Field(default=None, description="on creation only: the agent's key, shown once")


class KeyAnswer(ResponseModel):
    key_id: str
    role: str
    name: str | None = None
    agent_id: str | None = None
    owner: str | None = None
    created_at: str | None = None
    revoked_at: str | None = None
    api_key: str | None = Field(default=None, description="on creation and rotation only, shown once")


class KeyList(ResponseModel):
    keys: list[KeyAnswer]


class DecisionAnswer(ResponseModel):
    allowed: bool
    maturity_required: str | None
    reason: str


class RuleAnswer(ResponseModel):
    rule_id: str
    kind: str
    package: str
    package_name: str
    specifier: str = ""
    version: str = ""
    min_maturity: str | None = None
    reason: str | None = None
    created_by: str | None = None
    created_at: str | None = None


class RuleList(ResponseModel):
    rules: list[RuleAnswer]


class ApprovalRequestAnswer(ResponseModel):
    request_id: str
    package: str
    package_name: str
    version: str
    reason: str
    status: str
    agent_id: str | None = None
    skill_id: str | None = None


class AuditPage(ResponseModel):
    events: list[dict[str, Any]]
    next_token: str | None = None


class WorkspaceAnswer(ResponseModel):
    workspace_id: str
    skill_id: str
    agent_id: str
    expires_at: str | None = None
    size_mb: int | None = None


class CommandAnswer(ResponseModel):
    status: str
    exit_code: int | None = None
    stdout: str | None = None
    stderr: str | None = None
    files: dict[str, str] = Field(default_factory=dict, description="collected path → base64")
    duration_ms: int | None = None
    result_url: str | None = Field(default=None, description="202 only")


class SecretBindingAnswer(ResponseModel):
    binding_id: str
    skill_id: str
    mode: str
    hosts: list[str]
    agent_id: str | None = None
    env_name: str | None = None
    header: str | None = None
