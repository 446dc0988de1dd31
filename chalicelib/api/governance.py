"""Agents, keys, package rules, approval requests and the audit trail (seed-compatible paths)."""

from __future__ import annotations

import re
from typing import Any

from chalicelib.api.auth import require
from chalicelib.api.http import json_response, query_params, route
from chalicelib.api.models import (AgentCreateRequest, AgentUpdateRequest, ApproveRequest, BanRequest, KeyCreateRequest,
                                   PackageRequestRequest, RejectRequest)  # fmt: skip
from chalicelib.api.queries import AuditQuery, CheckQuery, KeysQuery, PageQuery, RulesQuery
from chalicelib.api.responses import (AgentAnswer, ApprovalRequestAnswer, ApprovalRequestList, AuditPage, DecisionAnswer,
                                      KeyAnswer, KeyList, KeyRevoked, RuleAnswer, RuleList, RunList, WhoAmI)  # fmt: skip
from chalicelib.api.services import governance_service, import_service
from chalicelib.errors import BadRequest


def _agent_json(agent: Any) -> dict[str, Any]:
    return {"agent_id": agent.agent_id, "maturity": agent.maturity.value, "created_at": agent.created_at,
            "updated_at": agent.updated_at, "version": agent.version}  # fmt: skip


def _key_json(principal: Any) -> dict[str, Any]:
    """A key as the API shows it (never its secret or hash)."""
    body = {"key_id": principal.key_id, "role": principal.role.value, "name": principal.name, "agent_id": principal.agent_id,
            "created_at": principal.created_at, "revoked_at": principal.revoked_at}  # fmt: skip
    if principal.role.value != "agent":
        body["owner"] = principal.publisher_id  # what the skills this key publishes belong to
    return body


def _rule_json(rule: Any) -> dict[str, Any]:
    data = rule.model_dump(mode="json")
    data["package_name"] = data.get("package")
    data["version"] = data.get("specifier", "")
    return data


def register(app: Any, authorizer: Any) -> None:
    gov = governance_service

    # --- agents and keys ----------------------------------------------------

    @route(app, "/api/agents", methods=["POST"], authorizer=authorizer, body=AgentCreateRequest,
           response=AgentAnswer, status=201)  # fmt: skip
    def create_agent(body: AgentCreateRequest) -> Any:
        caller = require(app.current_request)
        agent, issued = gov().create_agent(caller, body.agent_id, body.maturity)
        return json_response({**_agent_json(agent), "api_key": issued.api_key, "key_id": issued.principal.key_id}, 201)

    @route(app, "/api/agents/{agent_id}", methods=["GET"], authorizer=authorizer, response=AgentAnswer)
    def get_agent(agent_id: str) -> Any:
        return json_response(_agent_json(gov().get_agent(require(app.current_request), agent_id)))

    @route(app, "/api/agents/{agent_id}", methods=["PATCH"], authorizer=authorizer, body=AgentUpdateRequest,
           response=AgentAnswer)  # fmt: skip
    def update_agent(agent_id: str, body: AgentUpdateRequest) -> Any:
        caller = require(app.current_request)
        agent = gov().update_maturity(caller, agent_id, body.maturity, expected_version=body.expected_version)
        return json_response(_agent_json(agent))

    @route(app, "/api/keys", methods=["POST"], authorizer=authorizer, body=KeyCreateRequest, response=KeyAnswer,
           status=201)  # fmt: skip
    def create_key(body: KeyCreateRequest) -> Any:
        caller = require(app.current_request)
        issued = gov().create_key(caller, body.role, body.name, team=body.team, agent_id=body.agent_id)
        return json_response({**_key_json(issued.principal), "api_key": issued.api_key}, 201)

    @route(app, "/api/keys", methods=["GET"], authorizer=authorizer, query=KeysQuery, response=KeyList)
    def list_keys(query: KeysQuery) -> Any:
        caller = require(app.current_request)
        keys = gov().list_keys(caller, agent_id=query.agent_id, include_revoked=query.include_revoked != "false")
        return json_response({"keys": [_key_json(k) for k in keys]})

    @route(app, "/api/keys/{key_id}/rotate", methods=["POST"], authorizer=authorizer, response=KeyAnswer, status=201)
    def rotate_key(key_id: str) -> Any:
        issued, revoked = gov().rotate_key(require(app.current_request), key_id)
        return json_response({**_key_json(issued.principal), "api_key": issued.api_key, "replaces": revoked.key_id,
                              "replaced_revoked_at": revoked.revoked_at}, 201)  # fmt: skip

    @route(app, "/api/keys/{key_id}", methods=["DELETE"], response=KeyRevoked, authorizer=authorizer)
    def revoke_key(key_id: str) -> Any:
        principal = gov().revoke_key(require(app.current_request), key_id)
        return json_response({"key_id": principal.key_id, "revoked_at": principal.revoked_at, "role": principal.role.value})

    # --- decisions and rules ---------------------------------------------------

    @route(app, "/api/packages/check", methods=["GET"], authorizer=authorizer, query=CheckQuery, response=DecisionAnswer)
    def check_package(query: CheckQuery) -> Any:
        caller = require(app.current_request)
        decision = gov().check(caller, query.agent_id, query.package_name, query.version)
        return json_response(decision.to_json())

    @route(app, "/api/packages/request", methods=["POST"], authorizer=authorizer, body=PackageRequestRequest,
           response=ApprovalRequestAnswer, status=201)  # fmt: skip
    def request_package(body: PackageRequestRequest) -> Any:
        caller = require(app.current_request)
        request = gov().request(caller, body.package_name, body.version, body.reason, agent_id=body.agent_id, skill_id=body.skill_id)
        return json_response({**request.model_dump(mode="json"), "package_name": request.package}, 201)

    @route(app, "/api/packages/requests", methods=["GET"], response=ApprovalRequestList, authorizer=authorizer)
    def list_requests() -> Any:
        caller = require(app.current_request)
        requests = gov().list_requests(caller, query_params(app.current_request).get("status") or None)
        return json_response({"requests": [{**r.model_dump(mode="json"), "package_name": r.package} for r in requests]})

    @route(app, "/api/packages/requests/{request_id}/reject", methods=["POST"], authorizer=authorizer, body=RejectRequest,
           body_optional=True, response=ApprovalRequestAnswer)  # fmt: skip
    def reject_request(request_id: str, body: RejectRequest) -> Any:
        caller = require(app.current_request)
        request = gov().reject_request(caller, valid_request_id(request_id), body.reason or "")
        blocked = import_service().block_rejected(request, actor=caller.actor)
        return json_response({**request.model_dump(mode="json"), "package_name": request.package, "blocked_imports": blocked})

    @route(app, "/api/packages/approve", methods=["POST"], authorizer=authorizer, body=ApproveRequest,
           response=RuleAnswer, status=201)  # fmt: skip
    def approve_package(body: ApproveRequest) -> Any:
        caller = require(app.current_request)
        result = gov().approve(caller, body.package_name, body.version or "", body.min_maturity)
        resumed = resume_after_approval(caller.actor, result.approval.package)
        return json_response(
            {**_rule_json(result.approval), "fulfilled_requests": [r.request_id for r in result.fulfilled], "resumed_imports": resumed},
            201,
        )

    @route(app, "/api/packages/ban", methods=["POST"], authorizer=authorizer, body=BanRequest, response=RuleAnswer,
           status=201)  # fmt: skip
    def ban_package(body: BanRequest) -> Any:
        caller = require(app.current_request)
        ban = gov().ban(caller, body.package_name, body.version or "", body.reason)
        return json_response(_rule_json(ban), 201)

    @route(app, "/api/packages/rules", methods=["GET"], authorizer=authorizer, query=RulesQuery, response=RuleList)
    def list_rules(query: RulesQuery) -> Any:
        caller = require(app.current_request)
        rules = gov().list_rules(caller, package=query.package_name, include_revoked=query.include_revoked == "true")
        return json_response({"rules": [_rule_json(r) for r in rules]})

    @route(app, "/api/packages/rules/{rule_id}", methods=["DELETE"], response=RuleAnswer, authorizer=authorizer)
    def revoke_rule(rule_id: str) -> Any:
        return json_response(_rule_json(gov().revoke_rule(require(app.current_request), rule_id)))

    @route(app, "/api/packages/audit", methods=["GET"], authorizer=authorizer, query=AuditQuery, response=AuditPage)
    def audit_trail(query: AuditQuery) -> Any:
        caller = require(app.current_request)
        page = gov().audit(caller, **query.model_dump())
        return json_response(page.to_json())

    @route(app, "/api/runs", methods=["GET"], response=RunList, authorizer=authorizer, query=PageQuery)
    def list_runs(query: PageQuery) -> Any:
        caller = require(app.current_request)
        page = gov().runs(caller, **query.model_dump())
        return json_response({"runs": [_run_json(e) for e in page.events], "next_token": page.next_token})

    @route(app, "/api/me", methods=["GET"], response=WhoAmI, authorizer=authorizer)
    def whoami() -> Any:
        caller = require(app.current_request)
        body = {"key_id": caller.key_id, "role": caller.role.value, "name": caller.name, "agent_id": caller.agent_id}
        if caller.role.value != "agent":
            body["owner"] = caller.publisher_id
        return json_response(body)


def _run_json(event: Any) -> dict[str, Any]:
    """A run as its end event records it."""
    detail = event.detail
    return {"job_id": detail.get("job_id"), "skill_id": event.skill_id, "agent_id": event.agent_id,
            "status": detail.get("status"), "outcome": event.outcome, "duration_ms": detail.get("duration_ms"),
            "image_tag": detail.get("image_tag"), "worker": detail.get("worker"), "ended_at": event.time,
            "requested_by": event.actor, "seed_endpoint": bool(detail.get("seed_endpoint")), "error": detail.get("error")}  # fmt: skip


def valid_request_id(request_id: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", request_id):
        raise BadRequest(f"{request_id[:80]!r} is not an approval request id", field="request_id")
    return request_id


def resume_after_approval(actor: str, package: str) -> list[str]:
    """Restart, at the Check step, every import that was waiting for ``package``."""
    return import_service().resume_waiting_for(package, actor=actor)
