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


# --- answers of the operator and lookup routes ----------------------------------
# Loose where the service's document is open-ended (images, SBOMs, run outcomes): the named fields are the ones
# a client may rely on; the rest passes through (extra="allow").


class HealthAnswer(ResponseModel):
    """200 when ``ok``, 503 when ``degraded``; ``parts``, ``runners`` and ``advisory_db`` for admin keys only."""

    status: str = Field(description="ok or degraded")
    detail: str | None = Field(default=None, description="without an admin key: why the parts are not shown")
    parts: dict[str, dict[str, Any]] | None = None
    runners: dict[str, Any] | None = None
    advisory_db: dict[str, Any] | None = None


class RunnerFleet(ResponseModel):
    runners: list[dict[str, Any]] = Field(description="each worker: endpoint, runtimes, slots, images, state")
    up: int
    free_slots: int
    slots: int


class DeadLetters(ResponseModel):
    queues: list[dict[str, Any]]
    total: int


class PackageSetStatus(ResponseModel):
    skill_id: str
    image_exists: bool
    image_tag: str | None = None
    size_bytes: int | None = None
    created: str | None = None
    last_used: str | None = None
    tags: list[str] = Field(default_factory=list)


class ImageRemoval(ResponseModel):
    success: bool
    skill_id: str
    image_tag: str
    image_tags: list[str]
    removed: bool


class ImageList(ResponseModel):
    images: list[dict[str, Any]]


class CleanupAnswer(ResponseModel):
    """What the runner worker that did the cleanup reported."""


class HostRuleAnswer(ResponseModel):
    rule_id: str
    kind: str = Field(description="network_approval or network_ban")
    host: str
    ports: list[int] | str = Field(description="the port numbers, or \"all\" for a ban of every port")
    min_maturity: str | None = Field(default=None, description="approvals only")
    reason: str = ""
    created_by: str
    created_at: str
    revoked_at: str | None = None
    resumed_imports: list[str] | None = Field(default=None, description="on approval: imports that were waiting for it")


class HostRuleList(ResponseModel):
    rules: list[HostRuleAnswer]


class IsolationRuleAnswer(ResponseModel):
    rule_id: str
    match: dict[str, Any]
    runtime: str = Field(description="runc or runsc")
    created_by: str
    created_at: str
    note: str | None = None


class IsolationRuleList(ResponseModel):
    rules: list[IsolationRuleAnswer]


class IsolationRuleRemoved(ResponseModel):
    removed: IsolationRuleAnswer


class OwnerAnswer(ResponseModel):
    skill_id: str
    owner: str
    assigned_by: str
    assigned_at: str
    via: str
    import_id: str | None = None
    previous_owner: str | None = Field(default=None, description="on PUT only")


class PrefixAnswer(ResponseModel):
    prefix: str
    owner_id: str
    mapped_by: str
    mapped_at: str
    previous_owner: str | None = Field(default=None, description="on PUT only")


class PrefixList(ResponseModel):
    prefixes: list[PrefixAnswer]


class SecretBindingList(ResponseModel):
    bindings: list[SecretBindingAnswer]


class KeyRevoked(ResponseModel):
    key_id: str
    revoked_at: str | None
    role: str


class WhoAmI(ResponseModel):
    key_id: str
    role: str
    name: str | None = None
    agent_id: str | None = None
    owner: str | None = Field(default=None, description="not for agent keys")


class ApprovalRequestList(ResponseModel):
    requests: list[ApprovalRequestAnswer]


class RunSummary(ResponseModel):
    job_id: str | None = None
    skill_id: str | None = None
    agent_id: str | None = None
    status: str | None = None
    outcome: str | None = None
    duration_ms: int | None = None
    image_tag: str | None = None
    worker: str | None = None
    ended_at: str | None = None
    requested_by: str | None = None
    seed_endpoint: bool = False
    error: Any = None


class RunList(ResponseModel):
    runs: list[RunSummary]
    next_token: str | None = None


class IgnoreAnswer(ResponseModel):
    advisory_id: str
    reason: str
    expires_at: str
    created_by: str
    package: str | None = None
    created_at: str | None = None


class IgnoreList(ResponseModel):
    ignores: list[IgnoreAnswer]


class RescanAnswer(ResponseModel):
    basis: Any = None
    rescanned: int
    blocked: list[str] = Field(default_factory=list)
    flagged: list[str] = Field(default_factory=list)


class CodeApprovalAnswer(ResponseModel):
    reason: str
    resumed_import: Any = None


class Sbom(ResponseModel):
    """A CycloneDX document."""

    bomFormat: str | None = None  # noqa: N815 (CycloneDX's own field name)
    specVersion: str | None = None  # noqa: N815
    components: list[dict[str, Any]] = Field(default_factory=list)


class VersionList(ResponseModel):
    skill_id: str
    versions: list[dict[str, Any]]


class ImportRecord(ResponseModel):
    import_id: str
    status: str | None = None


class ImportList(ResponseModel):
    imports: list[ImportRecord]


class SnippetSetting(ResponseModel):
    skill_id: str
    allow_snippets: bool | None = None


class WorkspaceDeleted(ResponseModel):
    workspace_id: str
    deleted: bool


class WorkspaceFileStored(ResponseModel):
    workspace_id: str
    path: str
    size: int


class OpenApiDocument(ResponseModel):
    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]
