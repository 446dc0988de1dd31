"""The Scan step's domain: vulnerabilities, typosquats and the skill's code.

Public interface::

    scanner = Scanner(vulnerabilities, popular=None, *, use_bandit=True)
    scanner = Scanner.from_settings(settings=None)
    report = scanner.scan(pins, direct_names=None, code=None, ignores=(), now=None) -> ScanReport

    ScanReport: status ("passed" | "blocked" | "scan_unavailable"), findings
        (JudgedFinding: the advisory + ignored/ignore), unaudited, typosquats,
        code_findings, needs_approval (.typosquats: names, .code: HIGH
        findings, .required), reasons (human-readable lines), scanned_at,
        vulnerability_service, advisory_db (source and age of the offline
        database), warnings (e.g. that database is stale);
        report.to_dict() -> JSON-ready dict

``status`` is the vulnerability verdict only (see ``policy.judge``: blocked >
scan_unavailable > passed). Typosquats and HIGH code findings do not change
it: they are listed in ``needs_approval`` for governance, which demands an
admin approval naming the package (typosquats) or the skill version (code).

``skill_files`` (relative path -> content: the whole uploaded skill) runs the
malicious-skill rule pack (``chalicelib.scanning.malice``): CRITICAL findings
are listed in ``malicious`` (the import blocks them outright), HIGH ones join
``needs_approval.malice``.

``direct_names`` defaults to the pins marked ``direct``. ``code`` is one
source text or a mapping of file name to source (``None``: no code).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from packaging.utils import canonicalize_name
from pydantic import BaseModel, ConfigDict

from chalicelib.scanning.code_analysis import analyse_code
from chalicelib.scanning.malice import scan_skill
from chalicelib.scanning.models import AuditResult, CodeFinding, PinLike, TyposquatMatch, UnauditedPin
from chalicelib.scanning.policy import AdvisoryIgnore, JudgedFinding, ScanStatus, judge
from chalicelib.scanning.typosquats import PopularNames, load_popular_names
from chalicelib.scanning.vulnerabilities import VulnerabilityService, make_vulnerability_service


class NeedsApproval(BaseModel):
    model_config = ConfigDict(frozen=True)

    typosquats: tuple[str, ...] = ()  # package names an admin approval must name
    code: tuple[CodeFinding, ...] = ()  # HIGH findings in the skill's code
    malice: tuple[dict[str, Any], ...] = ()  # HIGH malicious-skill rule findings (MaliceFinding.to_dict())

    @property
    def required(self) -> bool:
        return bool(self.typosquats or self.code or self.malice)


class ScanReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: ScanStatus
    findings: tuple[JudgedFinding, ...] = ()
    unaudited: tuple[UnauditedPin, ...] = ()
    typosquats: tuple[TyposquatMatch, ...] = ()
    code_findings: tuple[CodeFinding, ...] = ()
    malice_findings: tuple[dict[str, Any], ...] = ()  # every rule-pack finding, worst first
    malicious: tuple[dict[str, Any], ...] = ()  # the CRITICAL ones: blocked unless an admin released this version (release_malicious)
    needs_approval: NeedsApproval = NeedsApproval()
    reasons: tuple[str, ...] = ()
    scanned_at: datetime
    vulnerability_service: str = ""
    advisory_db: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Scanner:
    def __init__(
        self,
        vulnerabilities: VulnerabilityService,
        popular: PopularNames | None = None,
        *,
        use_bandit: bool = True,
    ):
        self.vulnerabilities = vulnerabilities
        self._popular = popular
        self.use_bandit = use_bandit

    @classmethod
    def from_settings(cls, settings: Any = None) -> Scanner:
        if settings is None:
            from chalicelib.settings import get_settings

            settings = get_settings()
        popular = load_popular_names(settings.popular_packages_file) if settings.popular_packages_file else None
        return cls(make_vulnerability_service(settings), popular)

    @property
    def popular(self) -> PopularNames:
        if self._popular is None:
            self._popular = load_popular_names()
        return self._popular

    def _audit(self, pins: Sequence[PinLike]) -> AuditResult:
        try:
            return self.vulnerabilities.audit(pins)
        except Exception as exc:  # fail closed on anything the service did not foresee
            reason = f"vulnerability service {getattr(self.vulnerabilities, 'name', '?')} failed: {exc}"
            return AuditResult(
                unaudited=tuple(
                    UnauditedPin(package=canonicalize_name(p.name), version=p.version, reason=reason) for p in pins
                )
            )

    def typosquats(self, names: Iterable[str]) -> list[TyposquatMatch]:
        matches: dict[str, TyposquatMatch] = {}
        for name in names:
            match = self.popular.check(name)
            if match and match.name not in matches:
                matches[match.name] = match
        return list(matches.values())

    def scan(
        self,
        pins: Sequence[PinLike],
        direct_names: Iterable[str] | None = None,
        code: str | Mapping[str, str] | None = None,
        ignores: Iterable[AdvisoryIgnore] = (),
        now: datetime | None = None,
        skill_files: Mapping[str, bytes | str] | None = None,
    ) -> ScanReport:
        now = now or datetime.now(timezone.utc)
        verdict = judge(self._audit(pins), list(ignores), now)
        if direct_names is None:
            direct_names = [p.name for p in pins if getattr(p, "direct", False)]
        squats = self.typosquats(direct_names)
        code_findings = analyse_code(code, use_bandit=self.use_bandit) if code else []
        high_code = tuple(f for f in code_findings if f.severity == "HIGH")
        malice = scan_skill(skill_files) if skill_files else []
        critical = tuple(f.to_dict() for f in malice if f.severity == "CRITICAL")
        high_malice = tuple(f.to_dict() for f in malice if f.severity == "HIGH")
        needs = NeedsApproval(typosquats=tuple(m.name for m in squats), code=high_code, malice=high_malice)

        reasons: list[str] = [f.describe() for f in verdict.findings if not f.ignored]
        reasons += [f"{u.package} {u.version}: could not be audited: {u.reason}" for u in verdict.unaudited]
        reasons += [f.describe() for f in verdict.findings if f.ignored]
        reasons += [f"{m.describe()}; needs an admin approval naming {m.name}" for m in squats]
        reasons += [f"{f.describe()}; needs an admin approval of this skill version" for f in high_code]
        reasons += [f"{f.describe()}; malicious: blocked" for f in malice if f.severity == "CRITICAL"]
        reasons += [f"{f.describe()}; needs an admin approval of this skill version" for f in malice if f.severity == "HIGH"]
        database = self._database_status(now) if pins else None  # nothing was looked up: its age says nothing
        warnings = (database["warning"],) if database and database.get("warning") else ()
        return ScanReport(
            status=verdict.status,
            findings=verdict.findings,
            unaudited=verdict.unaudited,
            typosquats=tuple(squats),
            code_findings=tuple(code_findings),
            malice_findings=tuple(f.to_dict() for f in malice),
            malicious=critical,
            needs_approval=needs,
            reasons=tuple(reasons),
            scanned_at=now,
            vulnerability_service=getattr(self.vulnerabilities, "name", ""),
            advisory_db=database,
            warnings=warnings,
        )

    def basis(self) -> str:
        """The rule pack and advisory database a scan now runs on (scanning/basis.py)."""
        from chalicelib.scanning.basis import scan_basis

        return scan_basis(self._database_status(datetime.now(timezone.utc)))

    def _database_status(self, now: datetime) -> dict[str, Any] | None:
        status_of = getattr(self.vulnerabilities, "database_status", None)
        if status_of is None:
            return None
        try:
            return status_of(now)
        except Exception as exc:  # the age is information: its failure must not fail the scan
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
