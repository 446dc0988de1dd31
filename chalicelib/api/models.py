"""Request and response models of the HTTP API: one schema for validation, the OpenAPI document and the fuzzing.

A route names its request model (``route(app, path, body=Model)``); the body
is validated once, before the view runs, and a bad one is a 400 listing every
field problem (``field.path: message``). Unknown fields: the seed-compatible
``/api/packages/*`` POST routes ignore them (the seed's clients send their
own, e.g. ``requested_by``); every other route refuses them, so a misspelt
optional field is an error rather than a silent default.

Fields are strict (no ``"5"`` for 5, no ``1`` for true). An empty string in
an optional text field counts as not sent, as it always has. Services that
take the body as a mapping (command runs, workspaces, secrets, isolation
rules) get exactly what was sent (``fields()``), after these checks.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr

from chalicelib.governance.isolation import FINDINGS
from chalicelib.governance.maturity import Maturity as _Maturity
from chalicelib.governance.secrets import SecretMode
from chalicelib.runner.spec import Runtime

MAX_LIST = 50  # requirement lines and pins per request
MATURITIES = [m.value for m in _Maturity]
RUNTIMES = tuple(r.value for r in Runtime)
SECRET_MODES = tuple(m.value for m in SecretMode)


def _plain(value: str) -> str:
    if any(ord(c) < 32 and c != "\t" for c in value):
        raise ValueError("contains control characters")
    return value


def _text(value: str) -> str:
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value):
        raise ValueError("contains control characters")
    return value


def _unsent(value: Any) -> Any:
    return None if value == "" else value


def short(max_length: int = 256) -> Any:
    """One line of text (ids, names, versions): 1 to ``max_length`` characters, no control characters."""
    return Annotated[str, Field(min_length=1, max_length=max_length), AfterValidator(_plain)]


def optional_short(max_length: int = 256) -> Any:
    """An optional one-line field: "" is the same as leaving it out."""
    return Annotated[short(max_length) | None, BeforeValidator(_unsent)]


Short = short()
OptShort = optional_short()
#: free text (reasons): several lines, at most 2000 characters
Reason = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_text)]
OptReason = Annotated[Reason | None, BeforeValidator(_unsent)]
#: code sent to run: at most 512 KiB
Code = Annotated[str, Field(max_length=512 * 1024), AfterValidator(_text)]
Maturity = Annotated[str, Field(min_length=1, max_length=32, json_schema_extra={"enum": MATURITIES},
                                description="STUDENT, INTERN, SUPERVISED or AUTONOMOUS (case-insensitive)")]  # fmt: skip
Requirements = Annotated[list[Annotated[str, Field(max_length=256)]], Field(max_length=MAX_LIST, description="PEP 508 lines")]
Number = Annotated[float, Field(description="a number (seconds, MiB or CPUs)")]


class RequestModel(BaseModel):
    """A JSON request body: strict fields, unknown ones refused."""

    model_config = ConfigDict(extra="forbid", strict=True)
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Any:
        model = cls.model_validate(raw)
        model._raw = raw
        return model

    def fields(self) -> dict[str, Any]:
        """The body as sent (for services that read it as a mapping; it passed this model's checks)."""
        return dict(self._raw)


class SeedRequest(RequestModel):
    """A seed-compatible body: unknown fields are ignored, as the seed's service did."""

    model_config = ConfigDict(extra="ignore", strict=True)


class RunLimitsFields(RequestModel):
    """The run limits a caller may lower (or raise up to the admin maxima)."""

    timeout_seconds: Number | None = None
    memory_mb: Number | None = None
    cpus: Number | None = None


# --- runs and package sets ----------------------------------------------------------


class ExecuteRequest(RunLimitsFields):
    agent_id: OptShort = None
    inputs: dict[str, Any] = Field(default_factory=dict, description="argument names to values (at most 256 KiB)")
    code: Annotated[Code, Field(min_length=1)] | None = Field(
        default=None, description="code to run instead of the skill's (if the skill accepts snippets)")


class PackageInstallRequest(SeedRequest):
    skill_id: Short
    requirements: Requirements
    agent_id: OptShort = None
    scan_for_vulnerabilities: bool = True


class PackageExecuteRequest(RunLimitsFields):
    model_config = SeedRequest.model_config

    skill_id: Short
    code: Annotated[Code, Field(min_length=1)]
    entrypoint: OptShort = None
    agent_id: OptShort = None
    inputs: dict[str, Any] = Field(default_factory=dict)


class CleanupRequest(RequestModel):
    ttl_days: Annotated[float, Field(ge=0)] | None = None
    dry_run: bool = False


# --- scanning -----------------------------------------------------------------------


class ExactPin(RequestModel):
    name: Short
    version: Short


class ScanRequest(RequestModel):
    """Either ``requirements`` (resolved first) or ``pins`` (scanned as given)."""

    requirements: Requirements | None = None
    pins: Annotated[list[ExactPin], Field(min_length=1, max_length=MAX_LIST)] | None = None


class IgnoreRequest(RequestModel):
    advisory_id: Short
    reason: Reason
    expires_at: Annotated[Short, Field(description="ISO 8601 date or time, in the future")]
    package: OptShort = None


class RescanRequest(RequestModel):
    force: bool = False
    limit: Annotated[int, Field(ge=1, le=10000)] | None = None


class ApproveCodeRequest(RequestModel):
    reason: Reason
    version: OptShort = None
    release_malicious: bool = False


# --- agents, keys, package rules and requests ---------------------------------------


class AgentCreateRequest(RequestModel):
    agent_id: Short
    maturity: Maturity


class AgentUpdateRequest(RequestModel):
    maturity: Maturity
    expected_version: int | None = None


class KeyCreateRequest(RequestModel):
    role: Annotated[str, Field(json_schema_extra={"enum": ["admin", "publisher", "agent"]}, min_length=1, max_length=32)]
    name: short(200)
    team: optional_short(64) = None
    agent_id: OptShort = None


class PackageRequestRequest(SeedRequest):
    package_name: Short
    version: Short
    reason: Reason
    agent_id: OptShort = None
    skill_id: OptShort = None


class RejectRequest(RequestModel):
    reason: OptReason = None


class ApproveRequest(SeedRequest):
    package_name: Short
    version: OptShort = Field(default=None, description="a version specifier; left out: every version")
    min_maturity: Maturity


class BanRequest(SeedRequest):
    package_name: Short
    version: OptShort = Field(default=None, description="a version specifier; left out: every version")
    reason: Reason


# --- owners, secrets, isolation and network rules ----------------------------------


class OwnerRequest(RequestModel):
    owner: short(100)
    expected_owner: optional_short(100) = None


class PrefixRequest(RequestModel):
    prefix: short(600)
    owner: short(100)


class SecretRequest(RequestModel):
    """``mode`` env (default): the skill's process gets the value as ``env_name``; inject: the egress proxy adds
    ``header: format`` (``{value}`` replaced) to requests to the bound hosts and the value never enters the container."""

    skill_id: Short
    value: Annotated[str, Field(min_length=1, max_length=16384)]
    hosts: Annotated[list[Short], Field(min_length=1, max_length=MAX_LIST)]
    agent_id: Short | None = None
    mode: Literal[SECRET_MODES] | None = None  # type: ignore[valid-type]
    env_name: Short | None = None
    header: Short | None = None
    format: Short | None = None


class IsolationMatchFields(RequestModel):
    maturity: Maturity | None = None
    skill_id: Short | None = None
    egress: bool | None = None
    finding: Literal[FINDINGS] | None = None  # type: ignore[valid-type]


class IsolationRuleRequest(RequestModel):
    runtime: Literal[RUNTIMES]  # type: ignore[valid-type]
    match: IsolationMatchFields = Field(default_factory=IsolationMatchFields)
    note: Annotated[str, Field(max_length=500)] | None = None


Ports = Annotated[list[Annotated[int, Field(ge=1, le=65535)]], Field(min_length=1)]


class HostApproveRequest(RequestModel):
    host: Short
    ports: Ports | None = None
    min_maturity: Maturity


class HostBanRequest(RequestModel):
    host: Short
    ports: Ports | None = None
    reason: Reason


# --- command runs and workspaces ----------------------------------------------------


class CommandRequest(RunLimitsFields):
    argv: Annotated[list[str], Field(min_length=1, max_length=256)]
    stdin: str | None = None
    files: dict[str, str] | None = Field(default=None, description="workspace path → base64 contents")
    collect: Annotated[list[str], Field(max_length=64)] | None = Field(default=None, description="glob patterns to return")
    env: dict[str, str] | None = None
    workspace_id: Short | None = None
    agent_id: OptShort = None


class SnippetsRequest(RequestModel):
    allow_snippets: bool | None = Field(description="true, false or null (null: every agent but STUDENT ones)")


class WorkspaceRequest(RequestModel):
    skill_id: Short
    agent_id: OptShort = None
    ttl_seconds: Annotated[int, Field(ge=1)] | None = None
    size_mb: Annotated[int, Field(ge=1)] | None = None
