"""The seed-compatible package sets: install (check, resolve, check again, scan, build) and look-up.

A package set belongs to the agent it was installed for: its record is
``pkgset:<agent_id>:<skill_id>`` in the skills table (``:`` occurs in neither
id, so no pair of ids can name another's set), and execution and status read
only the caller's own. The order of :meth:`PackageSetService.install` is the
order of cost: who may ask, then what governance already knows about the
named packages, then the per-key limits, and only then a resolution and a
build. Only an admin may skip the vulnerability scan, and every skip, and
every refusal of one, is audited.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from packaging.markers import Marker

from chalicelib.errors import BadRequest, Forbidden, PermissionDenied, RunnerUnavailable, ScanUnavailable
from chalicelib.governance.audit import DENIED, OK
from chalicelib.governance.identity import Principal, Role
from chalicelib.governance.throttle import Throttle, build_limit, resolve_limit
from chalicelib.packages.pins import Pin
from chalicelib.packages.targets import target_marker_environment
from chalicelib.runner.jobs import BuildJob
from chalicelib.settings import get_settings
from chalicelib.skills.requirements import DeclaredRequirement
from chalicelib.workflow.imports import ImportService, upload_order

PACKAGE_SET_TYPE = "package_set"
INSTALL = "package.install"
SCAN_SKIPPED = "package.scan_skipped"

Audit = Callable[..., None]  # record_event(action, actor=..., **fields)


def package_set_id(agent_id: str, skill_id: str) -> str:
    return f"pkgset:{agent_id}:{skill_id}"


def denial_lines(denied: list[dict[str, Any]]) -> list[str]:
    return [f"{d['package']}{' ' + d['version'] if d.get('version') else ''}: {d['reason']}" for d in denied]


class PackageSetService:
    def __init__(self, imports: ImportService, execution: Any, throttle: Throttle, audit: Audit):
        self.imports, self.execution, self.throttle, self.audit = imports, execution, throttle, audit

    # --- look-up ---------------------------------------------------------------

    def own_set(self, agent_id: str, skill_id: str) -> dict[str, Any] | None:
        return self.imports.skills.latest(package_set_id(agent_id, skill_id))

    def sets_named(self, skill_id: str) -> list[dict[str, Any]]:
        """Every agent's package set called ``skill_id``, newest first (admin views)."""
        return [r for r in self.imports.skills.list_latest()
                if r.get("skill_type") == PACKAGE_SET_TYPE and r.get("name") == skill_id and r.get("agent_id")]  # fmt: skip

    # --- install ---------------------------------------------------------------

    def install(self, caller: Principal, agent_id: str, skill_id: str, declared: list[DeclaredRequirement], *, scan: bool) -> dict[str, Any]:
        where = {"agent_id": agent_id, "skill_id": skill_id}
        if not scan and caller.role is not Role.ADMIN:
            self.audit(INSTALL, actor=caller.actor, outcome=DENIED, **where,
                       detail={"reason": "scan_for_vulnerabilities: false from a non-admin key"})  # fmt: skip
            raise Forbidden("only an admin key may skip the vulnerability scan (scan_for_vulnerabilities: false)")
        self._precheck(caller, agent_id, skill_id, declared)
        settings = get_settings()
        with self.throttle.admit(caller.key_id, build_limit(settings)):
            pins = self.imports.resolver.resolve(
                [d.normalized for d in declared], self.imports.target_platform(),
                admission=lambda: self.throttle.admit(caller.key_id, resolve_limit(settings)),
            )  # fmt: skip
            denied = self.execution.permission_problems(agent_id, pins)
            if denied:
                self.audit(INSTALL, actor=caller.actor, outcome=DENIED, **where, detail={"problems": denial_lines(denied)})
                raise PermissionDenied(f"agent {agent_id} may not use these packages", problems=denial_lines(denied), packages=denied)
            vulnerabilities = self._scan(caller, pins, where) if scan else self._skip_scan(caller, pins, where)
            outcome = self.execution.build(BuildJob(skill_id=skill_id, pins=pins, result_id="job-" + secrets.token_hex(12)))
        if outcome is None:
            raise RunnerUnavailable("no runner worker answered the build in time")
        if not outcome.get("success"):
            return {"success": False, "skill_id": skill_id, "error": outcome.get("error"), "build_logs": outcome.get("build_log_tail") or []}
        version = hashlib.sha256(json.dumps(sorted(p.requirement_line for p in pins)).encode()).hexdigest()
        self.imports.skills.put_version({
            "skill_id": package_set_id(agent_id, skill_id), "version": version, "name": skill_id, "agent_id": agent_id,
            "status": "ready", "skill_type": PACKAGE_SET_TYPE, "pins": [p.model_dump() for p in pins],
            "image_tag": outcome["image_tag"], "requirements": [d.normalized for d in declared], "submitted_by": caller.actor,
            "scan_skipped": not scan, "uploaded_at": upload_order(datetime.now(UTC)),  # installing an earlier set again makes it the latest
        })  # fmt: skip
        self.audit(INSTALL, actor=caller.actor, outcome=OK, **where,
                   detail={"image_tag": outcome["image_tag"], "packages": len(pins), "scan_skipped": not scan})  # fmt: skip
        return {"success": True, "skill_id": skill_id, "image_tag": outcome["image_tag"],
                "packages_installed": [f"{p.name}=={p.version}" for p in pins], "vulnerabilities": vulnerabilities,
                "build_logs": []}  # fmt: skip

    def _precheck(self, caller: Principal, agent_id: str, skill_id: str, declared: list[DeclaredRequirement]) -> None:
        """Refuse, before any resolution, what governance already refuses for the named packages."""
        environment = target_marker_environment(self.imports.target_platform())
        denied = []
        for item in declared:
            requirement = item.requirement
            if requirement.marker is not None and not Marker(str(requirement.marker)).evaluate(environment):
                continue  # not installed on the target
            decision = self.execution.checker.precheck(agent_id, requirement.name, str(requirement.specifier))
            if not decision.allowed:
                denied.append({"package": item.normalized, "version": None, **decision.to_json()})
        if denied:
            self.audit(INSTALL, actor=caller.actor, outcome=DENIED, agent_id=agent_id, skill_id=skill_id,
                       detail={"problems": denial_lines(denied), "before_resolution": True})  # fmt: skip
            raise PermissionDenied(f"agent {agent_id} may not use these packages", problems=denial_lines(denied), packages=denied)

    def _scan(self, caller: Principal, pins: list[Pin], where: dict[str, str]) -> list[dict[str, Any]]:
        service = self.imports
        report = service.scanner.scan(pins, direct_names={p.name for p in pins if p.direct}, ignores=service.reviews.ignores())
        vulnerabilities = [f.model_dump(mode="json") for f in report.findings if not f.ignored]
        if report.status == "scan_unavailable":
            raise ScanUnavailable("the vulnerability scan could not audit every package", problems=list(report.reasons))
        if report.status == "blocked":
            self.audit(INSTALL, actor=caller.actor, outcome=DENIED, **where, detail={"problems": list(report.reasons)})
            raise BadRequest("known vulnerabilities", problems=list(report.reasons), vulnerabilities=vulnerabilities)
        return vulnerabilities

    def _skip_scan(self, caller: Principal, pins: list[Pin], where: dict[str, str]) -> list[dict[str, Any]]:
        self.audit(SCAN_SKIPPED, actor=caller.actor, outcome=OK, **where,
                   detail={"pins": [f"{p.name}=={p.version}" for p in pins]})  # fmt: skip
        return []
