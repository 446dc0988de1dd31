"""Command runs and workspaces: ``/api/skills/{skill_id}/commands`` and ``/api/workspaces``."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from chalice import Response

from chalicelib.api.auth import agent_for, require
from chalicelib.api.http import json_response, route
from chalicelib.api.models import CommandRequest, SnippetsRequest, WorkspaceRequest
from chalicelib.api.refusals import audited_refusals
from chalicelib.api.responses import (CommandAnswer, SnippetSetting, WorkspaceAnswer, WorkspaceDeleted,
                                      WorkspaceFileStored)  # fmt: skip
from chalicelib.api.services import command_service, import_service, valid_skill_id
from chalicelib.errors import Forbidden, PayloadTooLarge
from chalicelib.governance.audit import SKILL_EXECUTE
from chalicelib.governance.identity import Role
from chalicelib.governance.ownership import Publisher
from chalicelib.settings import get_settings
from chalicelib.workflow.run_handoff import PendingRun

FILE_CONTENT_TYPES = ["application/octet-stream"]
MIB = 1024 * 1024


def _owner(caller: Any) -> str | None:
    """The agent whose workspaces the caller may touch; None: an admin (any)."""
    return None if caller.role == Role.ADMIN else caller.agent_id


def _file_path(path: str) -> str:
    """The path parameter, percent-decoded: clients send ``forms/in.pdf`` as ``forms%2Fin.pdf``."""
    return unquote(path)


def register(app: Any, authorizer: Any) -> None:
    @route(app, "/api/skills/{skill_id}/commands", methods=["POST"], authorizer=authorizer, body=CommandRequest,
           max_body=lambda: get_settings().command_max_body_mb * MIB, response=CommandAnswer,
           audit=audited_refusals(app, SKILL_EXECUTE, command=True))  # fmt: skip
    def run_command(skill_id: str, body: CommandRequest) -> Any:
        caller = require(app.current_request, Role.AGENT, Role.ADMIN)
        valid_skill_id(skill_id)
        agent_id = agent_for(caller, body)
        result = command_service().run_command(skill_id, agent_id, body.fields(), actor=caller.actor, admin=caller.role == Role.ADMIN)
        if isinstance(result, PendingRun):
            return json_response(result.to_json(), 202, headers={"Location": result.result_url})
        return json_response(result)

    @route(app, "/api/skills/{skill_id}/snippets", methods=["GET"], response=SnippetSetting, authorizer=authorizer)
    def get_snippets(skill_id: str) -> Any:
        require(app.current_request)
        return json_response(command_service().snippet_setting(valid_skill_id(skill_id)))

    @route(app, "/api/skills/{skill_id}/snippets", methods=["PUT"], response=SnippetSetting, authorizer=authorizer,
           body=SnippetsRequest)  # fmt: skip
    def set_snippets(skill_id: str, body: SnippetsRequest) -> Any:
        caller = require(app.current_request, Role.ADMIN, Role.PUBLISHER)
        valid_skill_id(skill_id)
        if caller.role == Role.PUBLISHER and not import_service().ownership.may_publish(skill_id, Publisher.of(caller)):
            raise Forbidden(f"only an admin or the publisher of {skill_id} may change whether it accepts code")
        return json_response(command_service().set_snippets(skill_id, body.allow_snippets, actor=caller.actor))

    @route(app, "/api/workspaces", methods=["POST"], authorizer=authorizer, body=WorkspaceRequest,
           response=WorkspaceAnswer, status=201)  # fmt: skip
    def create_workspace(body: WorkspaceRequest) -> Any:
        caller = require(app.current_request, Role.AGENT, Role.ADMIN)
        skill_id = valid_skill_id(body.skill_id)
        record = command_service().create_workspace(agent_for(caller, body), skill_id, body.fields(), actor=caller.actor)
        return json_response(record, 201, headers={"Location": f"/api/workspaces/{record['workspace_id']}"})

    @route(app, "/api/workspaces/{workspace_id}", methods=["GET"], authorizer=authorizer, response=WorkspaceAnswer)
    def get_workspace(workspace_id: str) -> Any:
        caller = require(app.current_request, Role.AGENT, Role.ADMIN)
        return json_response(command_service().describe(workspace_id, _owner(caller)))

    @route(app, "/api/workspaces/{workspace_id}", methods=["DELETE"], response=WorkspaceDeleted, authorizer=authorizer)
    def delete_workspace(workspace_id: str) -> Any:
        caller = require(app.current_request, Role.AGENT, Role.ADMIN)
        return json_response(command_service().delete_workspace(workspace_id, _owner(caller)))

    @route(app, "/api/workspaces/{workspace_id}/files/{path}", methods=["GET"], authorizer=authorizer,
           produces=("application/octet-stream",))  # fmt: skip
    def get_workspace_file(workspace_id: str, path: str) -> Any:
        caller = require(app.current_request, Role.AGENT, Role.ADMIN)
        data = command_service().get_file(workspace_id, _owner(caller), _file_path(path))
        return Response(body=data, status_code=200, headers={"Content-Type": "application/octet-stream"})

    @route(app, "/api/workspaces/{workspace_id}/files/{path}", methods=["PUT"], authorizer=authorizer,
           response=WorkspaceFileStored, content_types=FILE_CONTENT_TYPES, status=201)  # fmt: skip
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
