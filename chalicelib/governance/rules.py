"""Package rules: approvals, bans and approval requests (plain data, no I/O).

Names are kept in PEP 503 normalized form, specifiers as normalized PEP 440
strings where ``""`` means every version. Approvals accumulate: when several
active approvals contain a version, the lowest ``min_maturity`` wins, so an
admin lowers a requirement by approving again and raises it by revoking.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from enum import Enum
from typing import Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.errors import BadRequest
from chalicelib.governance.enums import parse_member
from chalicelib.governance.maturity import Maturity
from chalicelib.governance.timeutil import now_iso

# PEP 508 project names: letters/digits, with . _ - inside.
_NAME_RE = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
_MAX_NAME_LENGTH = 200
_MAX_SPECIFIER_LENGTH = 500
_MAX_REASON_LENGTH = 2000


# --- parsing helpers ----------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def normalize_package_name(name: str) -> str:
    """PEP 503 normalized project name; BadRequest when ``name`` is not a valid project name."""
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("package_name is required", field="package_name")
    text = name.strip()
    if len(text) > _MAX_NAME_LENGTH or not _NAME_RE.match(text):
        raise BadRequest(
            f"package_name {name!r} is not a valid Python project name "
            "(letters, digits, '.', '_' and '-', starting and ending with a letter or digit)",
            field="package_name",
        )
    return canonicalize_name(text)


@functools.lru_cache(maxsize=4096)
def parse_exact_version(value: str) -> str:
    """An exact version, written ``1.26.4`` or ``==1.26.4``, in normalized form.

    Anything else (ranges, wildcards, ``===``, several clauses, empty) is a
    BadRequest that says an exact version is needed.
    """
    text = value.strip() if isinstance(value, str) else ""
    candidate = text[2:].strip() if text.startswith("==") and not text.startswith("===") else text
    try:
        if not candidate or "*" in candidate:
            raise InvalidVersion(candidate)
        return str(Version(candidate))
    except InvalidVersion:
        raise BadRequest(
            f"version must be an exact version such as 1.26.4 or ==1.26.4; got {value!r}",
            field="version",
        ) from None


@functools.lru_cache(maxsize=4096)
def normalize_specifier(value: str | None) -> str:
    """A PEP 440 specifier set in normalized form; ``""``/``None`` means all versions.

    A bare version (``1.26.4``) is read as ``==1.26.4`` because that is what
    people mean when they approve "a version".
    """
    text = (value or "").strip()
    if not text:
        return ""
    if len(text) > _MAX_SPECIFIER_LENGTH:
        raise BadRequest(f"version specifier is longer than {_MAX_SPECIFIER_LENGTH} characters", field="version")
    if text[0].isalnum():
        try:
            return str(SpecifierSet(f"=={text}"))
        except InvalidSpecifier:
            pass
    try:
        specifier = SpecifierSet(text)
    except InvalidSpecifier:
        raise BadRequest(
            f"version {value!r} is not a PEP 440 version specifier (e.g. ==1.26.4, >=1.26,<2, or empty for all versions)",
            field="version",
        ) from None
    # SpecifierSet orders its clauses, so equal sets get equal strings.
    return ",".join(sorted(str(s) for s in specifier))


@functools.lru_cache(maxsize=4096)
def specifier_set(specifier: str) -> SpecifierSet:
    """Parsed (and memoised) specifier set that treats pre-releases as ordinary versions."""
    return SpecifierSet(specifier, prereleases=True)


def specifier_contains(specifier: str, version: str) -> bool:
    """Whether ``version`` falls in ``specifier`` (``""`` contains every version, pre-releases included)."""
    if not specifier:
        return True
    return specifier_set(specifier).contains(version, prereleases=True)


def names_exact_version(specifier: str, version: str) -> bool:
    """Whether ``specifier`` is exactly one ``==V``/``===V`` clause (no wildcard) naming ``version``.

    Used for packages flagged as possible typosquats: there an approval only
    counts when an admin approved that very version by name, never through
    "all versions" or a range.
    """
    if not specifier or "," in specifier or "*" in specifier:
        return False
    if specifier.startswith("==="):
        return specifier[3:].strip() == version
    if specifier.startswith("=="):
        try:
            return Version(specifier[2:].strip()) == Version(version)
        except InvalidVersion:
            return False
    return False


def _check_reason(value: str, *, required: bool) -> str:
    text = (value or "").strip()
    if required and not text:
        raise BadRequest("reason is required", field="reason")
    if len(text) > _MAX_REASON_LENGTH:
        raise BadRequest(f"reason is longer than {_MAX_REASON_LENGTH} characters", field="reason")
    return text


def new_rule_id(kind: Literal["approval", "ban"]) -> str:
    return f"{'apr' if kind == 'approval' else 'ban'}_{secrets.token_hex(8)}"


def new_request_id() -> str:
    return f"req_{secrets.token_hex(8)}"


def request_id_for(*parts: str) -> str:
    """A deterministic request id, so a retried import files one request, not two.

    e.g. ``request_id_for(skill_id, package)``.
    """
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]
    return f"req_{digest}"


# --- models ---------------------------------------------------------------------


class _PackageModel(BaseModel):
    model_config = ConfigDict(frozen=True)

    package: str

    @field_validator("package")
    @classmethod
    def _normalize_package(cls, value: str) -> str:
        return normalize_package_name(value)


class _Rule(_PackageModel):
    rule_id: str
    specifier: str = ""
    created_by: str
    created_at: str = Field(default_factory=now_iso)
    revoked_at: str | None = None
    revoked_by: str | None = None

    @field_validator("specifier", mode="before")
    @classmethod
    def _normalize_specifier(cls, value: str | None) -> str:
        return normalize_specifier(value)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def contains(self, version: str) -> bool:
        return specifier_contains(self.specifier, version)


class Approval(_Rule):
    """``package`` versions in ``specifier`` may be used by agents of ``min_maturity`` or above."""

    kind: Literal["approval"] = "approval"
    min_maturity: Maturity

    @field_validator("min_maturity", mode="before")
    @classmethod
    def _parse_maturity(cls, value: object) -> Maturity:
        return Maturity.parse(value)

    @classmethod
    def new(cls, package: str, specifier: str | None, min_maturity: Maturity | str, created_by: str) -> Approval:
        return cls(
            rule_id=new_rule_id("approval"),
            package=package,
            specifier=specifier or "",
            min_maturity=Maturity.parse(min_maturity),
            created_by=created_by,
        )


class Ban(_Rule):
    """``package`` versions in ``specifier`` (``""`` = all) are denied to every agent."""

    kind: Literal["ban"] = "ban"
    reason: str

    @field_validator("reason", mode="before")
    @classmethod
    def _reason(cls, value: str) -> str:
        return _check_reason(value, required=True)

    @classmethod
    def new(cls, package: str, specifier: str | None, reason: str, created_by: str) -> Ban:
        return cls(
            rule_id=new_rule_id("ban"),
            package=package,
            specifier=specifier or "",
            reason=reason,
            created_by=created_by,
        )


Rule = Approval | Ban


class RequestStatus(str, Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"

    @classmethod
    def parse(cls, value: object) -> RequestStatus:
        return parse_member(cls, value, what="request status", field="status")

    def __str__(self) -> str:
        return self.value


def decided_status(status: RequestStatus | str) -> RequestStatus:
    """The status a request is decided as: approved or rejected (BadRequest for pending or an unknown word)."""
    decided = RequestStatus.parse(status)
    if decided is RequestStatus.PENDING:
        raise BadRequest("a request can only be decided as approved or rejected", field="status")
    return decided


class ApprovalRequest(_PackageModel):
    """Someone asks an admin to approve ``package`` at ``version``.

    ``version`` is what was asked for: an exact version, a specifier, or
    ``""`` for any version; it is validated as a PEP 440 specifier but kept
    as written so the admin sees the request verbatim.
    """

    request_id: str = Field(default_factory=new_request_id)
    version: str = ""
    reason: str = ""
    requested_by: str
    agent_id: str | None = None
    skill_id: str | None = None
    status: RequestStatus = RequestStatus.PENDING
    created_at: str = Field(default_factory=now_iso)
    decided_at: str | None = None
    decided_by: str | None = None
    decision_reason: str | None = None  # why it was decided so (an admin's rejection, or the rule that already covers it)

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: str | None) -> str:
        text = (value or "").strip()
        normalize_specifier(text)  # raises BadRequest when it is neither a version nor a specifier
        return text

    @field_validator("reason", mode="before")
    @classmethod
    def _reason(cls, value: str | None) -> str:
        return _check_reason(value or "", required=False)

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: object) -> RequestStatus:
        return RequestStatus.parse(value)


class RuleSet(_PackageModel):
    """Every rule that applies to one package (revoked ones are ignored by the decision)."""

    approvals: tuple[Approval, ...] = ()
    bans: tuple[Ban, ...] = ()

    @classmethod
    def of(cls, package: str, rules: list[Rule] | tuple[Rule, ...]) -> RuleSet:
        normalized = normalize_package_name(package)
        return cls(
            package=normalized,
            approvals=tuple(r for r in rules if isinstance(r, Approval) and r.package == normalized),
            bans=tuple(r for r in rules if isinstance(r, Ban) and r.package == normalized),
        )

    @property
    def active_approvals(self) -> tuple[Approval, ...]:
        return tuple(a for a in self.approvals if a.active)

    @property
    def active_bans(self) -> tuple[Ban, ...]:
        return tuple(b for b in self.bans if b.active)


def rule_from_dict(data: dict) -> Rule:
    """Rebuild an Approval or a Ban from its ``model_dump`` (the ``kind`` field tells which)."""
    kind = data.get("kind")
    if kind == "approval":
        return Approval.model_validate(data)
    if kind == "ban":
        return Ban.model_validate(data)
    raise ValueError(f"unknown rule kind {kind!r}")
