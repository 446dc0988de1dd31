"""Command runs and workspaces: ``/api/skills/{skill_id}/commands`` and ``/api/workspaces``."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from chalice import Response

from chalicelib.api.auth import require
from chalicelib.api.http import json_body, json_response, route, string_field
from chalicelib.api.refusals import audited_refusals
from chalicelib.api.services import command_service, import_service, valid_skill_id
from chalicelib.errors import BadRequest, Forbidden, PayloadTooLarge
from chalicelib.governance.audit import SKILL_EXECUTE
from chalicelib.governance.identity import Role, acting_agent_id
from chalicelib.governance.ownership import Publisher
from chalicelib.settings import get_settings
from chalicelib.workflow.run_handoff import PendingRun

FILE_CONTENT_TYPES = ["application/octet-stream"]
MIB = 1024 * 1024


def _agent_for(caller: Any, body: dict[str, Any]) -> str:
    agent_id = acting_agent_id(caller, string_field(body, "agent_id"))
    if not agent_id:
        raise BadRequest("agent_id is required when the key is not an agent key")
    return agent_id


def _owner(caller: Any) -> str | None:
    """The agent whose workspaces the caller may touch; None: an admin (any)."""
    return None if caller.role == Role.ADMIN else caller.agent_id


def _file_path(path: str) -> str:
    """The path parameter, percent-decoded: clients send ``forms/in.pdf`` as ``forms%2Fin.pdf``."""
    return unquote(path)


def register(app: Any, authorizer: Any) -> None:
    @route(app, "/api/skills/{skill_id}/commands", methods=["POST"], authorizer=authorizer)
    @audited_refusals(app, SKILL_EXECUTE, command=True)
    def run_command(skill_id: str) -> Any:
        caller = require(app.current_request, Role.AGENT, Role.ADMIN)
        valid_skill_id(skill_id)
        body = json_body(app.current_request, max_bytes=get_settings().command_max_body_mb * MIB)
        agent_id = _agent_for(caller, body)
        result = command_service().run_command(skill_id, agent_id, body, actor=caller.actor, admin=caller.role == Role.ADMIN)
        if isinstance(result, PendingRun):
            return json_response(result.to_json(), 202, headers={"Location": result.result_url})
        return json_response(result)

    @route(app, "/api/skills/{skill_id}/snippets", methods=["GET"], authorizer=authorizer)
    def get_snippets(skill_id: str) -> Any:
        require(app.current_request)
        return json_response(command_service().snippet_setting(valid_skill_id(skill_id)))

    @route(app, "/api/skills/{skill_id}/snippets", methods=["PUT"], authorizer=authorizer)
    def set_snippets(skill_id: str) -> Any:
        caller = require(app.current_request, Role.ADMIN, Role.PUBLISHER)
        valid_skill_id(skill_id)
        if caller.role == Role.PUBLISHER and not import_service().ownership.may_publish(skill_id, Publisher.of(caller)):
            raise Forbidden(f"only an admin or the publisher of {skill_id} may change whether it accepts code")
        body = json_body(app.current_request)
        if "allow_snippets" not in body:
            raise BadRequest("missing required field allow_snippets (true, false or null)")
        return json_response(command_service().set_snippets(skill_id, body["allow_snippets"], actor=caller.actor))

    @route(app, "/api/workspaces", methods=["POST"], authorizer=authorizer)
    def create_workspace() -> Any:
        caller = require(app.current_request, Role.AGENT, Role.ADMIN)
        body = json_body(app.current_request, required=("skill_id",))
        skill_id = valid_skill_id(str(body["skill_id"]))
        record = command_service().create_workspace(_agent_for(caller, body), skill_id, body, actor=caller.actor)
        return json_response(record, 201, headers={"Location": f"/api/workspaces/{record['workspace_id']}"})

    @route(app, "/api/workspaces/{workspace_id}", methods=["GET"], authorizer=authorizer)
    def get_workspace(workspace_id: str) -> Any:
        caller = require(app.current_request, Role.AGENT, Role.ADMIN)
        return json_response(command_service().describe(workspace_id, _owner(caller)))

    @route(app, "/api/workspaces/{workspace_id}", methods=["DELETE"], authorizer=authorizer)
    def delete_workspace(workspace_id: str) -> Any:
        caller = require(app.current_request, Role.AGENT, Role.ADMIN)
        return json_response(command_service().delete_workspace(workspace_id, _owner(caller)))

    @route(app, "/api/workspaces/{workspace_id}/files/{path}", methods=["GET"], authorizer=authorizer)
    def get_workspace_file(workspace_id: str, path: str) -> Any:
        caller = require(app.current_request, Role.AGENT, Role.ADMIN)
        data = command_service().get_file(workspace_id, _owner(caller), _file_path(path))
        return Response(body=data, status_code=200, headers={"Content-Type": "application/octet-stream"})

    @route(app, "/api/workspaces/{workspace_id}/files/{path}", methods=["PUT"], authorizer=authorizer,
           content_types=FILE_CONTENT_TYPES)  # fmt: skip
    def put_workspace_file(workspace_id: str, path: str) -> Any:
        caller = require(app.current_request, Role.AGENT, Role.ADMIN)
        data = app.current_request.raw_body or b""
        cap = get_settings().command_max_file_mb * MIB
        if len(data) > cap:
            raise PayloadTooLarge(f"file is {len(data)} bytes, over the {cap}-byte cap per file")
        return json_response(command_service().put_file(workspace_id, _owner(caller), _file_path(path), data), 201)


def scheduled_cleanup() -> list[str]:
    """The schedule's part for workspaces: remove the expired ones."""
    return command_service().remove_expired()
