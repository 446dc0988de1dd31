"""Executing skills, their images, and the seed-compatible install/execute endpoints (per-agent package sets)."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from chalicelib.api.auth import agent_for, require
from chalicelib.api.http import json_response, requirements_field, route
from chalicelib.api.models import CleanupRequest, ExecuteRequest, PackageExecuteRequest, PackageInstallRequest
from chalicelib.api.refusals import audited_refusals
from chalicelib.api.queries import AgentQuery
from chalicelib.api.responses import CleanupAnswer, ImageList, ImageRemoval, InstallAnswer, PackageSetStatus, RunAnswer
from chalicelib.api.services import command_service, execution_service, import_service, package_set_service, valid_skill_id
from chalicelib.errors import BadRequest, Forbidden, RunnerUnavailable
from chalicelib.governance.audit import SKILL_EXECUTE
from chalicelib.governance.identity import Role, acting_agent_id
from chalicelib.runner.jobs import CleanupJob
from chalicelib.settings import get_settings
from chalicelib.workflow.package_sets import INSTALL
from chalicelib.workflow.run_handoff import PendingRun

_RUN_JOB_ID = re.compile(r"^run-[0-9a-f]{24}$")


def _inputs(body: Any) -> dict[str, Any]:
    if len(json.dumps(body.inputs)) > 256 * 1024:
        raise BadRequest("inputs are larger than 256 KiB", problems=["inputs: larger than 256 KiB"])
    return body.inputs


def _result_id() -> str:
    return "job-" + secrets.token_hex(12)


def _pending(outcome: PendingRun) -> Any:
    """202: the run outlasts what a request waits (run_sync_wait_seconds); its result will be at result_url."""
    return json_response(outcome.to_json(), 202, headers={"Location": outcome.result_url})


def register(app: Any, authorizer: Any) -> None:
    @route(app, "/api/skills/{skill_id}/execute", methods=["POST"], authorizer=authorizer, body=ExecuteRequest,
           response=RunAnswer, audit=audited_refusals(app, SKILL_EXECUTE))  # fmt: skip
    def execute_skill(skill_id: str, body: ExecuteRequest) -> Any:
        caller = require(app.current_request, Role.AGENT, Role.ADMIN)
        valid_skill_id(skill_id)
        agent_id = agent_for(caller, body)
        if body.code is not None:
            command_service().check_snippets_allowed(skill_id, agent_id)
        # audited by the run itself: started before it is sent, its end by whoever sees it (governance/run_events.py)
        result = execution_service().execute(skill_id, agent_id, _inputs(body), body.fields(), actor=caller.actor, snippet=body.code)
        return _pending(result) if isinstance(result, PendingRun) else json_response(result)

    @route(app, "/api/runs/{job_id}", methods=["GET"], authorizer=authorizer, response=RunAnswer)
    def run_result(job_id: str) -> Any:
        caller = require(app.current_request, Role.AGENT, Role.ADMIN)
        if not _RUN_JOB_ID.match(job_id):
            raise BadRequest(f"invalid run job id {job_id[:80]!r}: expected run- followed by 24 hex digits")
        record, outcome = execution_service().run_status(job_id)
        if caller.role != Role.ADMIN and caller.agent_id != record.get("agent_id"):
            raise Forbidden("this run belongs to another agent")
        return _pending(outcome) if isinstance(outcome, PendingRun) else json_response(outcome)

    @route(app, "/api/images", methods=["GET"], response=ImageList, authorizer=authorizer)
    def list_images() -> Any:
        require(app.current_request, Role.ADMIN)
        return json_response({"images": import_service().images.list_images()})

    @route(app, "/api/images/cleanup", methods=["POST"], response=CleanupAnswer, authorizer=authorizer,
           body=CleanupRequest, body_optional=True)  # fmt: skip
    def cleanup_images(body: CleanupRequest) -> Any:
        caller = require(app.current_request, Role.ADMIN)
        ttl = get_settings().image_ttl_days if body.ttl_days is None else body.ttl_days
        job = CleanupJob(ttl_days=ttl, dry_run=body.dry_run, requested_by=caller.actor, result_id=_result_id())
        outcome = execution_service().cleanup(job)
        if outcome is None:
            raise RunnerUnavailable("no runner worker answered the cleanup in time")
        return json_response(outcome)

    # --- seed-compatible package endpoints ---------------------------------

    @route(app, "/api/packages/install", methods=["POST"], authorizer=authorizer, body=PackageInstallRequest,
           response=InstallAnswer, audit=audited_refusals(app, INSTALL))  # fmt: skip
    def install_packages(body: PackageInstallRequest) -> Any:
        caller = require(app.current_request, Role.ADMIN, Role.PUBLISHER, Role.AGENT)
        skill_id = valid_skill_id(body.skill_id)
        declared = requirements_field(body.requirements)
        agent_id = agent_for(caller, body)
        return json_response(package_set_service().install(caller, agent_id, skill_id, declared, scan=body.scan_for_vulnerabilities))

    @route(app, "/api/packages/execute", methods=["POST"], authorizer=authorizer, body=PackageExecuteRequest,
           response=RunAnswer, audit=audited_refusals(app, SKILL_EXECUTE, seed_endpoint=True))  # fmt: skip
    def execute_code(body: PackageExecuteRequest) -> Any:
        caller = require(app.current_request, Role.AGENT, Role.ADMIN)
        skill_id = valid_skill_id(body.skill_id)
        agent_id = agent_for(caller, body)
        result = package_set_service().run(agent_id, skill_id, body.code, body.entrypoint, _inputs(body), body.fields(),
                                           actor=caller.actor)  # fmt: skip
        return _pending(result) if isinstance(result, PendingRun) else json_response(result)

    @route(app, "/api/packages/{skill_id}/status", methods=["GET"], response=PackageSetStatus, authorizer=authorizer,
           query=AgentQuery)  # fmt: skip
    def package_status(skill_id: str, query: AgentQuery) -> Any:
        caller = require(app.current_request)
        valid_skill_id(skill_id)
        requested = acting_agent_id(caller, query.agent_id)
        return json_response(package_set_service().image_status(skill_id, requested))

    @route(app, "/api/packages/{skill_id}", methods=["DELETE"], response=ImageRemoval, authorizer=authorizer,
           query=AgentQuery)  # fmt: skip
    def delete_package_image(skill_id: str, query: AgentQuery) -> Any:
        caller = require(app.current_request, Role.ADMIN)
        valid_skill_id(skill_id)
        agent_id = acting_agent_id(caller, query.agent_id)
        return json_response(package_set_service().remove_images(skill_id, agent_id, actor=caller.actor))


def scheduled_cleanup() -> None:
    """What the schedule does: ask a runner to remove images unused past IMAGE_TTL_DAYS."""
    execution_service().queue.send(CleanupJob(ttl_days=get_settings().image_ttl_days, requested_by="system:schedule"))
