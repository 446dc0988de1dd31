"""Pre-flight scans, SBOMs, advisory ignores and code approvals."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from chalicelib.api.auth import require
from chalicelib.api.http import json_response, requirements_field, route
from chalicelib.api.models import ApproveCodeRequest, IgnoreRequest, RescanRequest, ScanRequest
from chalicelib.api.responses import CodeApprovalAnswer, IgnoreAnswer, IgnoreList, RescanAnswer, Sbom, ScanAnswer
from chalicelib.api.services import (code_approvals, import_service, package_set_service, record_event, rescan_service,
                                     valid_skill_id)  # fmt: skip
from chalicelib.errors import BadRequest, NotFound
from chalicelib.governance.audit import OK, SCAN_IGNORE
from chalicelib.governance.identity import Role
from chalicelib.scanning.policy import AdvisoryIgnore
from chalicelib.settings import get_settings
from chalicelib.store.reviews import parse_expiry


def register(app: Any, authorizer: Any) -> None:
    @route(app, "/api/packages/scan", methods=["POST"], authorizer=authorizer, body=ScanRequest, response=ScanAnswer)
    def preflight_scan(body: ScanRequest) -> Any:
        # a pre-flight is for whoever publishes; an agent's key has nothing to prepare, and a resolution is costly
        caller = require(app.current_request, Role.ADMIN, Role.PUBLISHER)
        if body.requirements is not None:
            return json_response(package_set_service().preflight(caller, requirements_field(body.requirements), None))
        if body.pins is not None:
            return json_response(package_set_service().preflight(caller, None, [(p.name, p.version) for p in body.pins]))
        raise BadRequest("send either requirements (resolved first) or pins (scanned as given)")

    @route(app, "/api/skills/{skill_id}/sbom", methods=["GET"], response=Sbom, authorizer=authorizer)
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

    @route(app, "/api/packages/ignores", methods=["POST"], response=IgnoreAnswer, authorizer=authorizer,
           body=IgnoreRequest, status=201)  # fmt: skip
    def add_ignore(body: IgnoreRequest) -> Any:
        caller = require(app.current_request, Role.ADMIN)
        try:
            ignore = AdvisoryIgnore(advisory_id=body.advisory_id, reason=body.reason, expires_at=parse_expiry(body.expires_at),
                                    package=body.package, created_by=caller.actor)  # fmt: skip
        except (ValueError, ValidationError) as error:
            raise BadRequest(f"invalid ignore: {error}") from error
        import_service().reviews.add_ignore(ignore)
        record_event(SCAN_IGNORE, actor=caller.actor, package=ignore.package, outcome=OK,
                     detail={"advisory_id": ignore.advisory_id, "reason": ignore.reason, "expires_at": ignore.expires_at.isoformat()})  # fmt: skip
        return json_response(ignore.model_dump(mode="json"), 201)

    @route(app, "/api/scans/rescan", methods=["POST"], response=RescanAnswer, authorizer=authorizer, body=RescanRequest)
    def rescan(body: RescanRequest) -> Any:
        caller = require(app.current_request, Role.ADMIN)
        limit = get_settings().rescan_batch if body.limit is None else body.limit
        return json_response(rescan_service().run(limit=limit, force=body.force, actor=caller.actor))

    @route(app, "/api/packages/ignores", methods=["GET"], response=IgnoreList, authorizer=authorizer)
    def list_ignores() -> Any:
        require(app.current_request, Role.ADMIN, Role.PUBLISHER)
        return json_response({"ignores": [i.model_dump(mode="json") for i in import_service().reviews.ignores()]})

    @route(app, "/api/skills/{skill_id}/approve-code", methods=["POST"], response=CodeApprovalAnswer,
           authorizer=authorizer, body=ApproveCodeRequest, status=201)  # fmt: skip
    def approve_code(skill_id: str, body: ApproveCodeRequest) -> Any:
        caller = require(app.current_request, Role.ADMIN)
        approval = code_approvals().approve(valid_skill_id(skill_id), body.version, reason=body.reason, actor=caller.actor,
                                            release_malicious=body.release_malicious)  # fmt: skip
        return json_response(approval, 201)


def scheduled_rescan() -> dict[str, Any]:
    """The schedule's part for scanning: re-scan ready versions scanned under another rule pack or advisory database."""
    return rescan_service().run(limit=get_settings().rescan_batch)
