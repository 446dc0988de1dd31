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

from chalicelib.errors import BuildFailed, Forbidden, NotFound, RunnerUnavailable, ScanUnavailable, VulnerabilitiesFound
from chalicelib.governance.audit import DENIED, OK
from chalicelib.governance.identity import Principal, Role
from chalicelib.governance.throttle import Throttle, build_limit, resolve_limit
from chalicelib.packages.pins import Pin
from chalicelib.packages.targets import target_marker_environment
from chalicelib.runner.jobs import BuildJob, RemoveJob, RunJob
from chalicelib.runner.snippets import defines_function
from chalicelib.settings import get_settings
from chalicelib.skills.requirements import DeclaredRequirement
from chalicelib.workflow.imports import ImportService, upload_order
from chalicelib.workflow.permissions import denial_lines, refuse_denied
from chalicelib.workflow.run_handoff import PendingRun

PACKAGE_SET_TYPE = "package_set"
INSTALL = "package.install"
SCAN_SKIPPED = "package.scan_skipped"
PREFLIGHT_SCAN = "package.scan"

Audit = Callable[..., None]  # record_event(action, actor=..., **fields)


def _result_id() -> str:
    return "job-" + secrets.token_hex(12)


def package_set_id(agent_id: str, skill_id: str) -> str:
    return f"pkgset:{agent_id}:{skill_id}"


class _ExactPin:
    """A pin as given to the pre-flight scan: name and version, no file."""

    def __init__(self, name: str, version: str):
        self.name, self.version, self.direct = name, version, True


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

    def sets_for(self, skill_id: str, agent_id: str | None) -> list[dict[str, Any]]:
        """The agent's own set of that name, or (admin views naming no agent) every agent's, newest first."""
        if agent_id is not None:
            return [r for r in [self.own_set(agent_id, skill_id)] if r]
        return self.sets_named(skill_id)

    def image_status(self, skill_id: str, agent_id: str | None) -> dict[str, Any]:
        """The seed's status answer: the image of the set (or, with none, of the imported skill) and its record."""
        record = (self.sets_for(skill_id, agent_id) or [self.imports.skills.latest(skill_id) or {}])[0]
        tag = record.get("image_tag")
        image = self.imports.images.get_image(tag) if tag else None
        return {"skill_id": skill_id, "image_exists": image is not None, "image_tag": tag,
                "size_bytes": (image or {}).get("size"), "created": (image or {}).get("created_at"),
                "last_used": (image or {}).get("last_used"), "tags": [tag] if image else []}  # fmt: skip

    # --- removal ---------------------------------------------------------------

    def remove_images(self, skill_id: str, agent_id: str | None, *, actor: str) -> dict[str, Any]:
        """Remove the image of ``agent_id``'s set ``skill_id`` (no agent: every agent's set of that name, else
        the imported skill's own image); a removed set's record keeps no image, so its execute asks for an install."""
        records = [r for r in self.sets_for(skill_id, agent_id) if r.get("image_tag")]
        latest = self.imports.skills.latest(skill_id) if not records and not agent_id else None
        records = records or [r for r in [latest] if r and r.get("image_tag")]
        if not records:
            raise NotFound(f"skill {skill_id} has no image" + (f" for agent {agent_id}" if agent_id else ""))
        removed: dict[str, bool] = {}
        for record in records:
            tag = record["image_tag"]
            if tag not in removed:
                outcome = self.execution.cleanup(RemoveJob(image_tag=tag, requested_by=actor, result_id=_result_id()))
                if outcome is None:
                    raise RunnerUnavailable("no runner worker answered the removal in time")
                removed[tag] = bool(outcome.get("removed"))
            if record.get("skill_type") == PACKAGE_SET_TYPE:
                # the seed's contract: after DELETE, execute answers "run POST /install first"
                self.imports.skills.update_version(record["skill_id"], record["version"], image_tag=None, status="removed")
        tags = list(removed)
        return {"success": True, "skill_id": skill_id, "image_tag": tags[0], "image_tags": tags, "removed": all(removed.values())}

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
            refuse_denied(agent_id, denied)
            vulnerabilities = self._scan(caller, pins, where) if scan else self._skip_scan(caller, pins, where)
            outcome = self.execution.build(BuildJob(skill_id=skill_id, pins=pins, result_id=_result_id()))
        if outcome is None:
            raise RunnerUnavailable("no runner worker answered the build in time")
        if not outcome.get("success"):
            raise BuildFailed(str(outcome.get("error") or "the image build failed"), skill_id=skill_id,
                              build_logs=outcome.get("build_log_tail") or [])  # fmt: skip
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
        refuse_denied(agent_id, denied)

    # --- pre-flight scan ----------------------------------------------------------

    def preflight(self, caller: Principal, declared: list[DeclaredRequirement] | None, exact: list[tuple[str, str]] | None) -> dict[str, Any]:
        """Scan ``declared`` requirements (resolved first, against the key's limits) or ``exact`` (name, version)
        pins as given; the report, nothing built or recorded but the audit event."""
        if declared is not None:
            settings = get_settings()
            pins: list[Any] = self.imports.resolver.resolve(
                [d.normalized for d in declared], self.imports.target_platform(),
                admission=lambda: self.throttle.admit(caller.key_id, resolve_limit(settings)),
            )  # fmt: skip
            pin_json = [p.model_dump() for p in pins]
        else:
            pins = [_ExactPin(name, version) for name, version in exact or []]
            pin_json = [{"name": p.name, "version": p.version} for p in pins]
        report = self.imports.scanner.scan(pins, ignores=self.imports.reviews.ignores())
        self.audit(PREFLIGHT_SCAN, actor=caller.actor, outcome=report.status, detail={"pins": len(pin_json)})
        result = report.to_dict()
        return {"pins": pin_json, "findings": result["findings"], "typosquats": result["typosquats"],
                "unaudited": result["unaudited"], "scan_status": report.status, "reasons": result["reasons"],
                "advisory_db": result["advisory_db"], "warnings": result["warnings"]}  # fmt: skip

    def _scan(self, caller: Principal, pins: list[Pin], where: dict[str, str]) -> list[dict[str, Any]]:
        service = self.imports
        report = service.scanner.scan(pins, direct_names={p.name for p in pins if p.direct}, ignores=service.reviews.ignores())
        vulnerabilities = [f.model_dump(mode="json") for f in report.findings if not f.ignored]
        if report.status == "scan_unavailable":
            raise ScanUnavailable("the vulnerability scan could not audit every package", problems=list(report.reasons))
        if report.status == "blocked":
            self.audit(INSTALL, actor=caller.actor, outcome=DENIED, **where, detail={"problems": list(report.reasons)})
            raise VulnerabilitiesFound(f"Vulnerabilities detected: {len(vulnerabilities)} known in the requested packages",
                                      problems=list(report.reasons), vulnerabilities=vulnerabilities)  # fmt: skip
        return vulnerabilities

    def _skip_scan(self, caller: Principal, pins: list[Pin], where: dict[str, str]) -> list[dict[str, Any]]:
        self.audit(SCAN_SKIPPED, actor=caller.actor, outcome=OK, **where,
                   detail={"pins": [f"{p.name}=={p.version}" for p in pins]})  # fmt: skip
        return []

    # --- execute ---------------------------------------------------------------

    def run(self, agent_id: str, skill_id: str, code: str, entrypoint: str | None, inputs: dict[str, Any],
            body: dict[str, Any], *, actor: str) -> dict[str, Any] | PendingRun:  # fmt: skip
        """Run ``code`` in the agent's own package set (``entrypoint`` named: call it; else a script unless
        the code defines ``execute``); the result with the set's image and packages, or PendingRun."""
        record = self.own_set(agent_id, skill_id)
        if record is None or not record.get("image_tag"):
            raise NotFound(f"agent {agent_id} has no package set {skill_id!r} with an image: run POST /api/packages/install first")
        pins = [Pin(**p) for p in record.get("pins", [])]
        refuse_denied(agent_id, self.execution.permission_problems(agent_id, pins))
        function = entrypoint or "execute"
        script = not entrypoint and not defines_function(code, function)  # no function to call: a snippet, run as a script
        tier = self.execution.tier(skill_id, agent_id, record)
        job = RunJob(skill_id=skill_id, version=record["version"], image_tag=record["image_tag"], pins=pins, code=code,
                     entrypoint=function, inputs=inputs, limits=self.execution.limits(body), agent_id=agent_id,
                     requested_by=actor, runtime=tier["runtime"], script=script,
                     audit_detail={"seed_endpoint": True, "snippet": script, **tier["audit_detail"]})  # fmt: skip
        result = self.execution.run(job)  # audited by the run itself, as for the execute endpoint
        if isinstance(result, PendingRun):
            return result
        return {**result.model_dump(mode="json"), "image_tag": record["image_tag"], "packages": [f"{p.name}=={p.version}" for p in pins]}
