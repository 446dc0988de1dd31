"""Result types shared by the scanning modules (all JSON-serialisable).

Public interface::

    PinLike                  # Protocol: anything with .name and .version (Pin fits)
    VulnerabilityFinding     # package, version, id, aliases, summary, fixed_in, source
    UnauditedPin             # package, version, reason  (fail closed: blocks the scan)
    AuditResult              # findings + unaudited;  .complete
    TyposquatMatch           # name, target, target_rank, kind
    CodeFinding              # file, test_id, severity, confidence, line, message

Every model is a frozen pydantic model: ``model_dump(mode="json")`` gives
plain JSON.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

Severity = Literal["LOW", "MEDIUM", "HIGH"]
SEVERITY_ORDER: dict[str, int] = {"LOW": 0, "MEDIUM": 1, "HIGH": 2}


@runtime_checkable
class PinLike(Protocol):
    """What the scanners need from a pin: :class:`chalicelib.packages.pins.Pin`
    fits, and so does any object with these two attributes (the pre-flight
    endpoint scans ``{name, version}`` pairs that have no hash)."""

    name: str
    version: str


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class VulnerabilityFinding(_Frozen):
    """One known advisory affecting one pinned package version."""

    package: str  # PEP 503 normalized
    version: str
    id: str  # e.g. PYSEC-2018-28 or GHSA-x84v-xcm2-53pg
    aliases: tuple[str, ...] = ()
    summary: str = ""
    fixed_in: str | None = None  # lowest fixed version above the pinned one
    source: str = ""  # which service reported it, e.g. "osv-offline", "pip-audit:pypi"

    @property
    def all_ids(self) -> frozenset[str]:
        return frozenset((self.id, *self.aliases))


class UnauditedPin(_Frozen):
    """A pin that could not be checked; the scan must not pass because of it."""

    package: str
    version: str
    reason: str


class AuditResult(_Frozen):
    findings: tuple[VulnerabilityFinding, ...] = ()
    unaudited: tuple[UnauditedPin, ...] = ()

    @property
    def complete(self) -> bool:
        """True when every pin was audited (findings may still exist)."""
        return not self.unaudited


TyposquatKind = Literal["separator", "homoglyph", "transposition", "insertion", "deletion", "substitution"]


class TyposquatMatch(_Frozen):
    """``name`` looks like a mistyped or imitated ``target`` (a popular project)."""

    name: str
    target: str
    target_rank: int  # 1 = most downloaded
    kind: TyposquatKind

    def describe(self) -> str:
        return f"{self.name}: likely typosquat of {self.target} (popularity rank {self.target_rank}, {self.kind})"


class CodeFinding(_Frozen):
    """One issue in the skill's own code (bandit ``B*`` ids, our own ``SH*`` ids)."""

    file: str
    test_id: str
    severity: Severity
    confidence: Severity
    line: int
    message: str

    def describe(self) -> str:
        return f"{self.file}:{self.line} {self.test_id} {self.severity}: {self.message}"
