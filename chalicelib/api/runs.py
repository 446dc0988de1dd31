"""Executing skills, their images, and the seed-compatible install/execute endpoints (per-agent package sets)."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from chalicelib.api.auth import require
from chalicelib.api.http import json_body, json_response, query_params, requirements_field, route, string_field
from chalicelib.api.refusals import audited_refusals
from chalicelib.api.services import command_service, execution_service, import_service, package_set_service, valid_skill_id
from chalicelib.errors import BadRequest, Forbidden, NotFound, PermissionDenied, RunnerUnavailable
from chalicelib.governance.audit import SKILL_EXECUTE
from chalicelib.governance.identity import Role, acting_agent_id
from chalicelib.packages.pins import Pin
from chalicelib.runner.jobs import CleanupJob, RemoveJob, RunJob
from chalicelib.runner.snippets import defines_function
from chalicelib.settings import get_settings
from chalicelib.workflow.package_sets import INSTALL
from chalicelib.workflow.run_handoff import PendingRun

_RUN_JOB_ID = re.compile(r"^run-[0-9a-f]{24}$")


def _inputs(body: dict[str, Any]) -> dict[str, Any]:
    inputs = body.get("inputs", {})
    if not isinstance(inputs, dict):
        raise BadRequest("inputs must be a JSON object of argument names to values")
    if len(json.dumps(inputs)) > 256 * 1024:
        raise BadRequest("inputs are larger than 256 KiB")
    return inputs


def _agent_for(caller: Any, body: dict[str, Any]) -> str:
    agent_id = acting_agent_id(caller, string_field(body, "agent_id"))
    if not agent_id:
        raise BadRequest("agent_id is required when the key is not an agent key")
    return agent_id


def _result_id() -> str:
    return "job-" + secrets.token_hex(12)


def _package_sets(skill_id: str, agent_id: str | None) -> list[dict[str, Any]]:
    """The agent's own package set of that name, or (admin views naming no agent) every agent's, newest first."""
    service = package_set_service()
    if agent_id is not None:
        return [r for r in [service.own_set(agent_id, skill_id)] if r]
    return service.sets_named(skill_id)


def _pending(outcome: PendingRun) -> Any:
    """202: the run outlasts what a request waits (run_sync_wait_seconds); its result will be at result_url."""
    return json_response(outcome.to_json(), 202, headers={"Location": outcome.result_url})


def register(app: Any, authorizer: Any) -> None:
    @route(app, "/api/skills/{skill_id}/execute", methods=["POST"], authorizer=authorizer)
    @audited_refusals(app, SKILL_EXECUTE)
    def execute_skill(skill_id: str) -> Any:
        caller = require(app.current_request, Role.AGENT, Role.ADMIN)
        valid_skill_id(skill_id)
        body = json_body(app.current_request)
        agent_id = _agent_for(caller, body)
        snippet = None
        if body.get("code") is not None:
            snippet = string_field(body, "code", required=True, max_length=512 * 1024, multiline=True) or ""
            command_service().check_snippets_allowed(skill_id, agent_id)
        # audited by the run itself: started before it is sent, its end by whoever sees it (governance/run_events.py)
        result = execution_service().execute(skill_id, agent_id, _inputs(body), body, actor=caller.actor, snippet=snippet)
        return _pending(result) if isinstance(result, PendingRun) else json_response(result)

    @route(app, "/api/runs/{job_id}", methods=["GET"], authorizer=authorizer)
    def run_result(job_id: str) -> Any:
        caller = require(app.current_request, Role.AGENT, Role.ADMIN)
        if not _RUN_JOB_ID.match(job_id):
            raise BadRequest(f"invalid run job id {job_id[:80]!r}: expected run- followed by 24 hex digits")
        record, outcome = execution_service().run_status(job_id)
        if caller.role != Role.ADMIN and caller.agent_id != record.get("agent_id"):
            raise Forbidden("this run belongs to another agent")
        return _pending(outcome) if isinstance(outcome, PendingRun) else json_response(outcome)

    @route(app, "/api/images", methods=["GET"], authorizer=authorizer)
    def list_images() -> Any:
        require(app.current_request, Role.ADMIN)
        return json_response({"images": import_service().images.list_images()})

    @route(app, "/api/images/cleanup", methods=["POST"], authorizer=authorizer)
    def cleanup_images() -> Any:
        caller = require(app.current_request, Role.ADMIN)
        body = json_body(app.current_request) if app.current_request.raw_body else {}
        ttl = body.get("ttl_days", get_settings().image_ttl_days)
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl < 0:
            raise BadRequest("ttl_days must be a non-negative number")
        job = CleanupJob(ttl_days=ttl, dry_run=bool(body.get("dry_run", False)), requested_by=caller.actor, result_id=_result_id())
        outcome = execution_service().cleanup(job)
        if outcome is None:
            raise RunnerUnavailable("no runner worker answered the cleanup in time")
        return json_response(outcome)

    # --- seed-compatible package endpoints ---------------------------------

    @route(app, "/api/packages/install", methods=["POST"], authorizer=authorizer)
    @audited_refusals(app, INSTALL)
    def install_packages() -> Any:
        caller = require(app.current_request, Role.ADMIN, Role.PUBLISHER, Role.AGENT)
        body = json_body(app.current_request, required=("skill_id", "requirements"))
        skill_id = valid_skill_id(str(body["skill_id"]))
        agent_id = _agent_for(caller, body)
        scan = body.get("scan_for_vulnerabilities", True)
        if not isinstance(scan, bool):
            raise BadRequest("scan_for_vulnerabilities must be true or false")
        result = package_set_service().install(caller, agent_id, skill_id, requirements_field(body), scan=scan)
        return json_response(result, 200 if result["success"] else 500)

    @route(app, "/api/packages/execute", methods=["POST"], authorizer=authorizer)
    @audited_refusals(app, SKILL_EXECUTE, seed_endpoint=True)
    def execute_code() -> Any:
        caller = require(app.current_request, Role.AGENT, Role.ADMIN)
        body = json_body(app.current_request, required=("skill_id", "code"))
        skill_id = valid_skill_id(str(body["skill_id"]))
        agent_id = _agent_for(caller, body)
        record = package_set_service().own_set(agent_id, skill_id)
        if record is None or not record.get("image_tag"):
            raise NotFound(f"agent {agent_id} has no package set {skill_id!r} with an image: run POST /api/packages/install first")
        pins = [Pin(**p) for p in record.get("pins", [])]
        denied = execution_service().permission_problems(agent_id, pins)
        if denied:
            raise PermissionDenied(f"agent {agent_id} may not use these packages",
                                   problems=[f"{d['package']} {d['version']}: {d['reason']}" for d in denied], packages=denied)  # fmt: skip
        code = string_field(body, "code", required=True, max_length=512 * 1024, multiline=True) or ""
        named = string_field(body, "entrypoint")
        entrypoint = named or "execute"
        script = not named and not defines_function(code, entrypoint)  # no function to call: a snippet, run as a script
        tier = execution_service().tier(skill_id, agent_id, record)
        job = RunJob(skill_id=skill_id, version=record["version"], image_tag=record["image_tag"], pins=pins, code=code,
                     entrypoint=entrypoint, inputs=_inputs(body), limits=execution_service().limits(body), agent_id=agent_id,
                     requested_by=caller.actor, runtime=tier["runtime"], script=script,
                     audit_detail={"seed_endpoint": True, "snippet": script, **tier["audit_detail"]})  # fmt: skip
        result = execution_service().run(job)  # audited by the run itself, as for the execute endpoint
        if isinstance(result, PendingRun):
            return _pending(result)
        return json_response({**result.model_dump(mode="json"), "image_tag": record["image_tag"],
                              "packages": [f"{p.name}=={p.version}" for p in pins]})  # fmt: skip

    @route(app, "/api/packages/{skill_id}/status", methods=["GET"], authorizer=authorizer)
    def package_status(skill_id: str) -> Any:
        caller = require(app.current_request)
        valid_skill_id(skill_id)
        service = import_service()
        requested = acting_agent_id(caller, query_params(app.current_request).get("agent_id"))
        record = (_package_sets(skill_id, requested) or [service.skills.latest(skill_id) or {}])[0]
        tag = record.get("image_tag")
        image = service.images.get_image(tag) if tag else None
        return json_response({
            "skill_id": skill_id, "image_exists": image is not None, "image_tag": tag,
            "size_bytes": (image or {}).get("size"), "created": (image or {}).get("created_at"),
            "last_used": (image or {}).get("last_used"), "tags": [tag] if image else [],
        })  # fmt: skip

    @route(app, "/api/packages/{skill_id}", methods=["DELETE"], authorizer=authorizer)
    def delete_package_image(skill_id: str) -> Any:
        caller = require(app.current_request, Role.ADMIN)
        valid_skill_id(skill_id)
        service = import_service()
        agent_id = acting_agent_id(caller, query_params(app.current_request).get("agent_id"))
        # every agent's set of that name (or the named agent's), else the imported skill's own image
        records = [r for r in _package_sets(skill_id, agent_id) if r.get("image_tag")]
        records = records or [r for r in [service.skills.latest(skill_id)] if r and r.get("image_tag") and not agent_id]
        if not records:
            raise NotFound(f"skill {skill_id} has no image" + (f" for agent {agent_id}" if agent_id else ""))
        removed: dict[str, bool] = {}
        for record in records:
            tag = record["image_tag"]
            if tag not in removed:
                outcome = execution_service().cleanup(RemoveJob(image_tag=tag, requested_by=caller.actor, result_id=_result_id()))
                if outcome is None:
                    raise RunnerUnavailable("no runner worker answered the removal in time")
                removed[tag] = bool(outcome.get("removed"))
            if record.get("skill_type") == "package_set":
                # the seed's contract: after DELETE, execute answers "run POST /install first"
                service.skills.update_version(record["skill_id"], record["version"], image_tag=None, status="removed")
        tags = list(removed)
        return json_response({"success": True, "skill_id": skill_id, "image_tag": tags[0], "image_tags": tags,
                              "removed": all(removed.values())})  # fmt: skip


def scheduled_cleanup() -> None:
    """What the schedule does: ask a runner to remove images unused past IMAGE_TTL_DAYS."""
    execution_service().queue.send(CleanupJob(ttl_days=get_settings().image_ttl_days, requested_by="system:schedule"))
