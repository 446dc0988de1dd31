"""Vulnerability services: who says whether exact pins have known advisories.

Public interface::

    class VulnerabilityService(Protocol):
        name: str
        def audit(self, pins: Sequence[PinLike]) -> AuditResult

    OfflineOsvService(...), advisory_database_status(...)   # see offline_osv (re-exported here)
    PipAuditService(service="pypi", *, timeout_seconds=120.0, request_timeout_seconds=15.0,
                    python=sys.executable, env=None, cache_dir=None)
    CombinedService(services)            # union of findings, union of unaudited pins
    make_vulnerability_service(settings=None) -> VulnerabilityService

The offline database is the embedded snapshot unless ``advisory_db`` names
another; one offline service per database is kept per process, so it is
loaded once however many scanners and health checks ask.

Fail closed everywhere: a pin a service could not check (database missing or
corrupt, pip-audit skipped it, timed out, crashed or printed no JSON) is
returned in ``AuditResult.unaudited`` with the reason; it is never treated as
"no known vulnerabilities".
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from packaging.utils import canonicalize_name, canonicalize_version
from packaging.version import InvalidVersion, Version

from chalicelib.errors import ScanUnavailable
from chalicelib.packages.environment import resolver_environment
from chalicelib.redact import redact
from chalicelib.scanning.models import AuditResult, PinLike, UnauditedPin, VulnerabilityFinding
from chalicelib.scanning.offline_osv import (  # noqa: F401  (re-exported: the services live together for callers)
    OfflineOsvService,
    advisory_database_status,
    all_unaudited,
    offline_service_for,
)

PIP_AUDIT_SERVICES = ("pypi", "osv")
_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_REASON_MAX = 400


@runtime_checkable
class VulnerabilityService(Protocol):
    name: str

    def audit(self, pins: Sequence[PinLike]) -> AuditResult:
        """Findings for ``pins``; pins that could not be checked go to ``unaudited``."""
        ...


# --- online, through pip-audit -------------------------------------------------------

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def _lowest_fix_above(version: str, fixes: Sequence[str]) -> str | None:
    try:
        pinned = Version(version)
    except InvalidVersion:
        return None
    above: list[tuple[Version, str]] = []
    for text in fixes:
        try:
            candidate = Version(str(text))
        except InvalidVersion:
            continue
        if candidate > pinned:
            above.append((candidate, str(text)))
    return min(above)[1] if above else None


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _REASON_MAX else text[: _REASON_MAX - 4] + " ..."


def _last_error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in (stderr or "").splitlines() if ln.strip()]
    # pip-audit logs harmless warnings; the traceback's last line names the failure
    errors = [ln for ln in lines if not ln.startswith("WARNING:")]
    # the line is kept on the skill's scan record: a proxy's password in an error message must not be
    return _short(redact(errors[-1])) if errors else "no error output"


class PipAuditService:
    """Runs ``pip-audit`` against one of its online services (PyPI JSON API or OSV).

    Each pin is written as ``name==version`` to a requirements file audited
    with ``--no-deps --disable-pip`` (nothing is installed or resolved).
    ``env`` entries are added to the inherited environment, less its secrets
    (proxy settings such as ``HTTPS_PROXY`` are honoured by pip-audit's HTTP client).
    """

    def __init__(
        self,
        service: str = "pypi",
        *,
        timeout_seconds: float = 120.0,
        request_timeout_seconds: float = 15.0,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
        cache_dir: Path | str | None = None,
        runner: Runner = subprocess.run,
    ):
        if service not in PIP_AUDIT_SERVICES:
            raise ValueError(f"pip-audit service must be one of {PIP_AUDIT_SERVICES}, not {service!r}")
        self.service = service
        self.name = f"pip-audit:{service}"
        self.timeout_seconds = timeout_seconds
        self.request_timeout_seconds = request_timeout_seconds
        self.python = python
        self.env = dict(env or {})
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._run = runner

    def command(self, requirements: Path, output: Path, cache_dir: Path) -> list[str]:
        return [
            self.python, "-m", "pip_audit",
            "-r", str(requirements),
            "--no-deps", "--disable-pip",
            "-s", self.service,
            "-f", "json", "-o", str(output),
            "--desc", "on", "--aliases", "on",
            "--progress-spinner", "off",
            "--timeout", str(int(max(1, self.request_timeout_seconds))),
            "--cache-dir", str(cache_dir),
        ]  # fmt: skip

    def audit(self, pins: Sequence[PinLike]) -> AuditResult:
        unaudited: list[UnauditedPin] = []
        valid: list[PinLike] = []
        for pin in pins:
            problem = _pin_problem(pin)
            if problem:
                unaudited.append(UnauditedPin(package=str(pin.name), version=str(pin.version), reason=problem))
            else:
                valid.append(pin)
        if not valid:
            return AuditResult(unaudited=tuple(unaudited))
        result = self._audit_valid(valid)
        return AuditResult(findings=result.findings, unaudited=tuple(unaudited) + result.unaudited)

    def _audit_valid(self, pins: Sequence[PinLike]) -> AuditResult:
        with tempfile.TemporaryDirectory(prefix="skillharbor-pip-audit-") as tmp:
            requirements = Path(tmp) / "requirements.txt"
            output = Path(tmp) / "report.json"
            requirements.write_text("".join(f"{canonicalize_name(p.name)}=={p.version}\n" for p in pins))
            cache_dir = self.cache_dir or Path(tmp) / "cache"
            for private in ("home", "tmp"):
                (Path(tmp) / private).mkdir()
            # the resolver's allow-list (no credentials, no AWS or skillharbor settings), plus the service's proxy
            env = {**resolver_environment(home=Path(tmp) / "home", tmp=Path(tmp) / "tmp"), **self.env}
            try:
                completed = self._run(
                    self.command(requirements, output, cache_dir),
                    capture_output=True,
                    text=True,
                    timeout=self.timeout_seconds,
                    env=env,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                return all_unaudited(pins, f"{self.name} timed out after {self.timeout_seconds:g} s")
            except OSError as exc:
                return all_unaudited(pins, f"{self.name} could not be started: {exc}")
            report = _read_report(output)
        # pip-audit exits 1 when it found vulnerabilities, 0 when not; anything
        # else, or no report, means the audit itself failed.
        if completed.returncode not in (0, 1) or report is None:
            return all_unaudited(
                pins, f"{self.name} failed (exit {completed.returncode}): {_last_error_line(completed.stderr)}"
            )
        return self._interpret(pins, report)

    def _interpret(self, pins: Sequence[PinLike], report: dict[str, Any]) -> AuditResult:
        by_name: dict[str, dict[str, Any]] = {}
        for dep in report.get("dependencies") or []:
            if isinstance(dep, dict) and dep.get("name"):
                by_name[canonicalize_name(str(dep["name"]))] = dep
        findings: list[VulnerabilityFinding] = []
        unaudited: list[UnauditedPin] = []
        for pin in pins:
            package = canonicalize_name(pin.name)
            dep = by_name.get(package)
            reason = None
            if dep is None:
                reason = f"{self.name} did not report on this package"
            elif dep.get("skip_reason"):
                reason = f"{self.name} skipped it: {_short(str(dep['skip_reason']))}"
            elif not isinstance(dep.get("vulns"), list):
                reason = f"{self.name} returned no vulnerability list for it"
            elif _normal(str(dep.get("version", ""))) != _normal(pin.version):
                reason = f"{self.name} audited version {dep.get('version')!r} instead of {pin.version!r}"
            if reason:
                unaudited.append(UnauditedPin(package=package, version=pin.version, reason=reason))
                continue
            for vuln in dep["vulns"]:
                fixes = [str(v) for v in vuln.get("fix_versions") or []]
                findings.append(
                    VulnerabilityFinding(
                        package=package,
                        version=pin.version,
                        id=str(vuln.get("id") or "unknown"),
                        aliases=tuple(str(a) for a in vuln.get("aliases") or []),
                        summary=_short(str(vuln.get("description") or "")),
                        fixed_in=_lowest_fix_above(pin.version, fixes),
                        source=self.name,
                    )
                )
        return AuditResult(findings=tuple(findings), unaudited=tuple(unaudited))


def _normal(version: str) -> str:
    return canonicalize_version(version.strip())


def _pin_problem(pin: PinLike) -> str | None:
    """Refuse anything that would not be one exact ``name==version`` line."""
    if not isinstance(pin.name, str) or not _NAME_RE.match(pin.name):
        return f"{pin.name!r} is not a valid package name"
    try:
        Version(pin.version)
    except (InvalidVersion, TypeError):
        return f"{pin.version!r} is not a valid PEP 440 version, so it cannot be audited online"
    return None


def _read_report(output: Path) -> dict[str, Any] | None:
    try:
        report = json.loads(output.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or not isinstance(report.get("dependencies"), list):
        return None
    return report


# --- several services ----------------------------------------------------------------


class CombinedService:
    """Asks every service; a pin any of them could not audit stays unaudited.

    Findings reported by several services (same package and version, sharing
    an id or alias) are kept once, with the union of their ids.
    """

    def __init__(self, services: Sequence[VulnerabilityService]):
        if not services:
            raise ValueError("CombinedService needs at least one service")
        self.services = list(services)
        self.name = "+".join(s.name for s in self.services)

    def database_status(self, now: datetime | None = None) -> dict[str, Any] | None:
        for service in self.services:
            status_of = getattr(service, "database_status", None)
            if status_of is not None:
                return status_of(now)
        return None

    def audit(self, pins: Sequence[PinLike]) -> AuditResult:
        findings: list[VulnerabilityFinding] = []
        unaudited: dict[tuple[str, str], UnauditedPin] = {}
        for service in self.services:
            result = service.audit(pins)
            for finding in result.findings:
                _merge_finding(findings, finding)
            for item in result.unaudited:
                key = (item.package, item.version)
                if key in unaudited:
                    item = item.model_copy(update={"reason": f"{unaudited[key].reason}; {item.reason}"})
                unaudited[key] = item
        return AuditResult(findings=tuple(findings), unaudited=tuple(unaudited.values()))


def _merge_finding(findings: list[VulnerabilityFinding], new: VulnerabilityFinding) -> None:
    for i, old in enumerate(findings):
        if (old.package, old.version) == (new.package, new.version) and old.all_ids & new.all_ids:
            aliases = tuple(sorted((old.all_ids | new.all_ids) - {old.id}))
            fixes = [f for f in (old.fixed_in, new.fixed_in) if f]
            fixed_in = _lowest_fix_above(old.version, fixes) if fixes else None
            findings[i] = old.model_copy(
                update={
                    "aliases": aliases,
                    "fixed_in": fixed_in or old.fixed_in or new.fixed_in,
                    "summary": old.summary or new.summary,
                    "source": old.source if new.source in old.source.split("+") else f"{old.source}+{new.source}",
                }
            )
            return
    findings.append(new)


# --- from settings -------------------------------------------------------------------


def _proxy_environment(proxy: str | None) -> dict[str, str]:
    return {name: proxy for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")} if proxy else {}


def make_vulnerability_service(settings: Any = None) -> VulnerabilityService:
    """The service the settings ask for: always the offline database (the
    embedded snapshot unless ``advisory_db`` names one), plus pip-audit when
    ``vulnerability_service`` is ``pypi`` or ``osv``."""
    if settings is None:
        from chalicelib.settings import get_settings

        settings = get_settings()
    cache_root = Path(settings.cache_dir)
    offline = offline_service_for(settings)
    mode = str(settings.vulnerability_service or "offline").lower()
    if mode == "offline":
        return offline
    if mode in PIP_AUDIT_SERVICES:
        online = PipAuditService(
            mode,
            timeout_seconds=float(getattr(settings, "scan_timeout_seconds", 120.0)),
            cache_dir=cache_root / "pip-audit",
            env=_proxy_environment(getattr(settings, "vulnerability_service_proxy", None)),
        )
        return CombinedService([offline, online])
    raise ScanUnavailable(
        f"unknown vulnerability_service {settings.vulnerability_service!r}: use offline, pypi or osv"
    )
