"""Pre-flight scans, SBOMs, advisory ignores and code approvals."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from chalicelib.api.auth import require
from chalicelib.api.http import MAX_REQUIREMENTS, json_body, json_response, requirements_field, route, string_field
from chalicelib.api.services import import_service, record_event, rescan_service, resolve_for, valid_skill_id
from chalicelib.errors import BadRequest, Conflict, NotFound
from chalicelib.governance.audit import OK, SCAN_IGNORE
from chalicelib.governance.identity import Role
from chalicelib.scanning.policy import AdvisoryIgnore
from chalicelib.settings import get_settings
from chalicelib.store.reviews import parse_expiry


class _ExactPin:
    """A pin as given to the pre-flight scan: name and version, no file."""

    def __init__(self, name: str, version: str):
        self.name, self.version, self.direct = name, version, True


def _pins_from_body(body: dict[str, Any]) -> list[Any]:
    raw = body.get("pins")
    if not isinstance(raw, list) or not raw:
        raise BadRequest("pins must be a non-empty list of {name, version}")
    if len(raw) > MAX_REQUIREMENTS:
        raise BadRequest(f"pins lists {len(raw)} entries; at most {MAX_REQUIREMENTS} are accepted per request")
    pins, problems = [], []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not isinstance(item.get("version"), str):
            problems.append(f"pins[{index}]: expected {{name, version}} strings")
            continue
        pins.append(_ExactPin(item["name"], item["version"]))
    if problems:
        raise BadRequest("invalid pins", problems=problems)
    return pins


def register(app: Any, authorizer: Any) -> None:
    @route(app, "/api/packages/scan", methods=["POST"], authorizer=authorizer)
    def preflight_scan() -> Any:
        # a pre-flight is for whoever publishes; an agent's key has nothing to prepare, and a resolution is costly
        caller = require(app.current_request, Role.ADMIN, Role.PUBLISHER)
        body = json_body(app.current_request)
        service = import_service()
        if "requirements" in body:
            declared = requirements_field(body)
            pins = resolve_for(caller, [d.normalized for d in declared])
            pin_json = [p.model_dump() for p in pins]
        elif "pins" in body:
            pins = _pins_from_body(body)
            pin_json = [{"name": p.name, "version": p.version} for p in pins]
        else:
            raise BadRequest("send either requirements (resolved first) or pins (scanned as given)")
        report = service.scanner.scan(pins, ignores=service.reviews.ignores())
        record_event("package.scan", actor=caller.actor, outcome=report.status, detail={"pins": len(pin_json)})
        result = report.to_dict()
        return json_response({"pins": pin_json, "findings": result["findings"], "typosquats": result["typosquats"],
                              "unaudited": result["unaudited"], "scan_status": report.status, "reasons": result["reasons"],
                              "advisory_db": result["advisory_db"], "warnings": result["warnings"]})  # fmt: skip

    @route(app, "/api/skills/{skill_id}/sbom", methods=["GET"], authorizer=authorizer)
    def skill_sbom(skill_id: str) -> Any:
        require(app.current_request)
        service = import_service()
        record = service.skills.latest(valid_skill_id(skill_id))
        if record is None or not record.get("artifact_key"):
            raise NotFound(f"no skill {skill_id!r}")
        from chalicelib.settings import get_settings

        key = record["artifact_key"].rsplit("/", 1)[0] + "/sbom.json"
        try:
            return json_response(service.blobs.get_json(get_settings().artifacts_bucket, key))
        except NotFound as error:
            raise NotFound(f"skill {skill_id} has no SBOM yet (it is made by the Scan step)") from error

    @route(app, "/api/packages/ignores", methods=["POST"], authorizer=authorizer)
    def add_ignore() -> Any:
        caller = require(app.current_request, Role.ADMIN)
        body = json_body(app.current_request, required=("advisory_id", "reason", "expires_at"))
        try:
            ignore = AdvisoryIgnore(
                advisory_id=string_field(body, "advisory_id", required=True) or "",
                reason=string_field(body, "reason", required=True, max_length=2000, multiline=True) or "",
                expires_at=parse_expiry(string_field(body, "expires_at", required=True) or ""),
                package=string_field(body, "package"), created_by=caller.actor,
            )  # fmt: skip
        except (ValueError, ValidationError) as error:
            raise BadRequest(f"invalid ignore: {error}") from error
        import_service().reviews.add_ignore(ignore)
        record_event(SCAN_IGNORE, actor=caller.actor, package=ignore.package, outcome=OK,
                     detail={"advisory_id": ignore.advisory_id, "reason": ignore.reason, "expires_at": ignore.expires_at.isoformat()})  # fmt: skip
        return json_response(ignore.model_dump(mode="json"), 201)

    @route(app, "/api/scans/rescan", methods=["POST"], authorizer=authorizer)
    def rescan() -> Any:
        caller = require(app.current_request, Role.ADMIN)
        body = json_body(app.current_request)
        force, limit = body.get("force", False), body.get("limit", get_settings().rescan_batch)
        if not isinstance(force, bool):
            raise BadRequest("force must be true or false")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10000:
            raise BadRequest("limit must be an integer from 1 to 10000")
        return json_response(rescan_service().run(limit=limit, force=force, actor=caller.actor))

    @route(app, "/api/packages/ignores", methods=["GET"], authorizer=authorizer)
    def list_ignores() -> Any:
        require(app.current_request, Role.ADMIN, Role.PUBLISHER)
        return json_response({"ignores": [i.model_dump(mode="json") for i in import_service().reviews.ignores()]})

    @route(app, "/api/skills/{skill_id}/approve-code", methods=["POST"], authorizer=authorizer)
    def approve_code(skill_id: str) -> Any:
        caller = require(app.current_request, Role.ADMIN)
        body = json_body(app.current_request, required=("reason",))
        service = import_service()
        version = string_field(body, "version")
        record = service.skills.get_version(valid_skill_id(skill_id), version) if version else service.skills.latest(skill_id)
        if record is None:
            raise NotFound(f"no skill {skill_id!r}" + (f" at version {version}" if version else ""))
        release = body.get("release_malicious", False)
        if not isinstance(release, bool):
            raise BadRequest("release_malicious must be true or false")
        approval = service.reviews.approve_code(skill_id, record["version"], reason=string_field(body, "reason", required=True, max_length=2000, multiline=True) or "",
                                                approved_by=caller.actor, releases_malicious=release)  # fmt: skip
        record_event("skill.approve_code", actor=caller.actor, skill_id=skill_id, outcome=OK,
                     detail={"version": record["version"], "reason": approval["reason"], "releases_malicious": release})  # fmt: skip
        resumed = None
        rescans = rescan_service()
        if rescans.blocked_by_rescan(record):
            if not release:
                raise Conflict(f"skill {skill_id} was blocked as malicious by a re-scan: only release_malicious (with a reason) releases it")
            rescans.rescan_version(record, actor=caller.actor)  # scans again: the approval now releases it
        elif record.get("status") == "blocked" and (record.get("error") or {}).get("step") in ("scan", "behaviour"):
            resumed = service.resume_at_scan(record, actor=caller.actor)
        elif record.get("status") == "blocked":
            raise Conflict(f"skill {skill_id} is blocked by {record.get('error', {}).get('step')}, not by its code")
        return json_response({**approval, "resumed_import": resumed}, 201)


def scheduled_rescan() -> dict[str, Any]:
    """The schedule's part for scanning: re-scan ready versions scanned under another rule pack or advisory database."""
    return rescan_service().run(limit=get_settings().rescan_batch)
