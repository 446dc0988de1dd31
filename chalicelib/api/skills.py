"""Skills and imports: upload a SKILL.md or a zip, follow the import, read the registry."""

from __future__ import annotations

from typing import Any


from chalicelib.api.auth import require
from chalicelib.api.http import json_response, query_params, route
from chalicelib.api.queries import VersionQuery
from chalicelib.api.responses import ImportAccepted, ImportList, ImportRecord, SkillDetail, SkillList, VersionList
from chalicelib.api.services import import_service, valid_import_id, valid_skill_id
from chalicelib.errors import BadRequest, NotFound, UnsupportedMediaType
from chalicelib.governance.identity import Role
from chalicelib.governance.ownership import Publisher
from chalicelib.skills.needs import sandbox_needs
from chalicelib.skills.proposals import RequirementOverride


SKILL_CONTENT_TYPES = ["text/markdown", "text/plain", "application/zip", "application/octet-stream", "text/x-markdown"]
_ZIP_MAGIC = b"PK\x03\x04"


def _public(record: dict[str, Any]) -> dict[str, Any]:
    """A skill record as the API shows it."""
    hidden = {"artifact_key", "source"}
    return {k: v for k, v in record.items() if k not in hidden}


def register(app: Any, authorizer: Any) -> None:
    @route(app, "/api/skills", methods=["POST"], authorizer=authorizer, content_types=SKILL_CONTENT_TYPES, response=ImportAccepted,
           status=202)  # fmt: skip
    def import_skill() -> Any:
        request = app.current_request
        principal = require(request, Role.ADMIN, Role.PUBLISHER)
        body = request.raw_body or b""
        if not body:
            raise BadRequest("empty body: send the SKILL.md text, or a zip with Content-Type: application/zip")
        content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        is_zip = content_type == "application/zip" or body.startswith(_ZIP_MAGIC)
        if content_type == "application/zip" and not body.startswith(_ZIP_MAGIC):
            raise BadRequest("Content-Type is application/zip but the body is not a zip archive")
        if content_type not in SKILL_CONTENT_TYPES:
            raise UnsupportedMediaType(f"unsupported Content-Type {content_type!r}")
        query = query_params(request)
        override = RequirementOverride.from_request(query.get("requirements"), query.get("accept_proposed"))
        result = import_service().submit_upload(body, is_zip=is_zip, publisher=Publisher.of(principal), override=override)
        return json_response(result, 202, headers={"Location": f"/api/imports/{result['import_id']}"})

    @route(app, "/api/skills", methods=["GET"], authorizer=authorizer, response=SkillList)
    def list_skills() -> Any:
        require(app.current_request)
        skills = [_public(r) for r in import_service().skills.list_latest()]
        summary_fields = ("skill_id", "name", "description", "version", "status", "status_reason", "skill_type", "updated_at",
                          "active_version")  # fmt: skip
        return json_response({"skills": [{k: s.get(k) for k in summary_fields} for s in skills]})

    @route(app, "/api/skills/{skill_id}", methods=["GET"], authorizer=authorizer, query=VersionQuery, response=SkillDetail)
    def get_skill(skill_id: str, query: VersionQuery) -> Any:
        caller = require(app.current_request)
        valid_skill_id(skill_id)
        version = query.version
        service = import_service()
        record = service.skills.get_version(skill_id, version) if version else service.skills.latest(skill_id)
        if record is None:
            raise NotFound(f"no skill {skill_id!r}" + (f" at version {version}" if version else ""))
        newest_is_ready = not version and record.get("status") == "ready"
        active = record if newest_is_ready else service.skills.latest_ready(skill_id)
        shown = dict(_public(record), active_version=active["version"] if active else None)  # the version runs use
        shown["sandbox_needs"] = sandbox_needs(record.get("non_python_requirements") or [],
                                               python_version=service.target_platform().python_version)  # fmt: skip
        owner = service.ownership.visible_owner(caller, skill_id)
        if owner:
            shown["owner"] = owner
        return json_response(shown)

    @route(app, "/api/skills/{skill_id}/versions", methods=["GET"], response=VersionList, authorizer=authorizer)
    def list_versions(skill_id: str) -> Any:
        require(app.current_request)
        versions = import_service().skills.versions(valid_skill_id(skill_id))
        if not versions:
            raise NotFound(f"no skill {skill_id!r}")
        fields = ("version", "status", "status_reason", "uploaded_at", "updated_at", "image_tag", "import_id")
        return json_response({"skill_id": skill_id, "versions": [{k: v.get(k) for k in fields} for v in versions]})

    @route(app, "/api/imports", methods=["GET"], response=ImportList, authorizer=authorizer)
    def find_imports() -> Any:
        require(app.current_request)
        source = (app.current_request.query_params or {}).get("source") or ""
        bucket, _, key = source.removeprefix("s3://").partition("/")
        if not source.startswith("s3://") or not bucket or not key or len(source.encode()) > 1200:  # S3 keys: 1 KiB
            raise BadRequest("query parameter source is required: s3://<bucket>/<key> of an uploaded skill")
        records = import_service().imports.for_source(bucket, key)
        return json_response({"imports": [{k: v for k, v in r.items() if k != "execution_arn"} for r in records]})

    @route(app, "/api/imports/{import_id}", methods=["GET"], response=ImportRecord, authorizer=authorizer)
    def get_import(import_id: str) -> Any:
        require(app.current_request)
        record = import_service().imports.get(valid_import_id(import_id))
        if record is None:
            raise NotFound(f"no import {import_id!r}")
        record.pop("execution_arn", None)
        return json_response(record)
