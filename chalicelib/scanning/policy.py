"""Vulnerability policy: every known advisory blocks unless an admin ignores it.

Public interface::

    AdvisoryIgnore(advisory_id, reason, expires_at, created_by, package=None, created_at=None)
        .applies_to(finding, now) -> bool
    JudgedFinding       # a VulnerabilityFinding + ignored + ignore (the AdvisoryIgnore used)
    VulnerabilityVerdict(status, findings, unaudited)     # status: passed | blocked | scan_unavailable
    judge(audit: AuditResult, ignores, now) -> VulnerabilityVerdict

An ignore names one advisory by its id *or any alias* (so ``CVE-2018-18074``
ignores ``PYSEC-2018-28``), optionally one package, and stops applying at
``expires_at``. ``now`` is always passed in (timezone-aware; naive datetimes
are read as UTC).

Status precedence: ``blocked`` (a known, not ignored vulnerability: the pins
must change whatever else happens) > ``scan_unavailable`` (some pin could not
be audited: fail closed) > ``passed``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Literal

from packaging.utils import canonicalize_name
from pydantic import BaseModel, ConfigDict, field_validator

from chalicelib.scanning.models import AuditResult, UnauditedPin, VulnerabilityFinding

ScanStatus = Literal["passed", "blocked", "scan_unavailable"]


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


class AdvisoryIgnore(BaseModel):
    """An admin's decision to accept one advisory until a date (audited by the caller)."""

    model_config = ConfigDict(frozen=True)

    advisory_id: str
    reason: str
    expires_at: datetime
    created_by: str
    package: str | None = None  # None: the advisory is ignored for every package it names
    created_at: datetime | None = None

    @field_validator("advisory_id", "reason", "created_by")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("package")
    @classmethod
    def _normalize(cls, value: str | None) -> str | None:
        return canonicalize_name(value) if value and value.strip() else None

    @field_validator("expires_at", "created_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value) if value is not None else None

    def applies_to(self, finding: VulnerabilityFinding, now: datetime) -> bool:
        if as_utc(now) >= self.expires_at:
            return False
        if self.package is not None and self.package != finding.package:
            return False
        wanted = self.advisory_id.upper()
        return any(wanted == known.upper() for known in finding.all_ids)


class JudgedFinding(VulnerabilityFinding):
    ignored: bool = False
    ignore: AdvisoryIgnore | None = None

    def describe(self) -> str:
        ids = self.id + (f" ({', '.join(self.aliases)})" if self.aliases else "")
        head = f"{self.package} {self.version}: {ids}"
        if self.ignored and self.ignore is not None:
            return (
                f"{head} ignored until {self.ignore.expires_at:%Y-%m-%d %H:%M} UTC "
                f"by {self.ignore.created_by}: {self.ignore.reason}"
            )
        return f"{head} fixed in {self.fixed_in}" if self.fixed_in else f"{head} no fixed version known"


class VulnerabilityVerdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: ScanStatus
    findings: tuple[JudgedFinding, ...] = ()
    unaudited: tuple[UnauditedPin, ...] = ()

    @property
    def blocking(self) -> tuple[JudgedFinding, ...]:
        return tuple(f for f in self.findings if not f.ignored)


def judge(audit: AuditResult, ignores: Iterable[AdvisoryIgnore], now: datetime) -> VulnerabilityVerdict:
    """Apply the ignores that are still in force to an audit's findings."""
    active = [i for i in ignores if as_utc(now) < i.expires_at]
    judged: list[JudgedFinding] = []
    for finding in audit.findings:
        ignore = next((i for i in active if i.applies_to(finding, now)), None)
        judged.append(JudgedFinding(**finding.model_dump(), ignored=ignore is not None, ignore=ignore))
    if any(not f.ignored for f in judged):
        status: ScanStatus = "blocked"
    elif audit.unaudited:
        status = "scan_unavailable"
    else:
        status = "passed"
    return VulnerabilityVerdict(status=status, findings=tuple(judged), unaudited=audit.unaudited)
