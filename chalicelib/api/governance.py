"""Agents, keys, package rules, approval requests and the audit trail (seed-compatible paths)."""

from __future__ import annotations

import re
from typing import Any

from chalicelib.api.auth import require
from chalicelib.api.http import json_body, json_response, query_params, route, string_field
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

    @route(app, "/api/agents", methods=["POST"], authorizer=authorizer)
    def create_agent() -> Any:
        caller = require(app.current_request)
        body = json_body(app.current_request, required=("agent_id", "maturity"))
        agent, issued = gov().create_agent(caller, body["agent_id"], body["maturity"])
        return json_response({**_agent_json(agent), "api_key": issued.api_key, "key_id": issued.principal.key_id}, 201)

    @route(app, "/api/agents/{agent_id}", methods=["GET"], authorizer=authorizer)
    def get_agent(agent_id: str) -> Any:
        return json_response(_agent_json(gov().get_agent(require(app.current_request), agent_id)))

    @route(app, "/api/agents/{agent_id}", methods=["PATCH"], authorizer=authorizer)
    def update_agent(agent_id: str) -> Any:
        caller = require(app.current_request)
        body = json_body(app.current_request, required=("maturity",))
        expected = body.get("expected_version")
        if expected is not None and not isinstance(expected, int):
            raise BadRequest("expected_version must be an integer")
        return json_response(_agent_json(gov().update_maturity(caller, agent_id, body["maturity"], expected_version=expected)))

    @route(app, "/api/keys", methods=["POST"], authorizer=authorizer)
    def create_key() -> Any:
        caller = require(app.current_request)
        body = json_body(app.current_request, required=("role", "name"))
        issued = gov().create_key(
            caller, body["role"], string_field(body, "name", required=True, max_length=200) or "",
            team=string_field(body, "team", max_length=64), agent_id=string_field(body, "agent_id"),
        )  # fmt: skip
        return json_response({**_key_json(issued.principal), "api_key": issued.api_key}, 201)

    @route(app, "/api/keys", methods=["GET"], authorizer=authorizer)
    def list_keys() -> Any:
        caller = require(app.current_request)
        params = query_params(app.current_request)
        keys = gov().list_keys(caller, agent_id=params.get("agent_id") or None, include_revoked=params.get("include_revoked") != "false")
        return json_response({"keys": [_key_json(k) for k in keys]})

    @route(app, "/api/keys/{key_id}/rotate", methods=["POST"], authorizer=authorizer)
    def rotate_key(key_id: str) -> Any:
        issued, revoked = gov().rotate_key(require(app.current_request), key_id)
        return json_response({**_key_json(issued.principal), "api_key": issued.api_key, "replaces": revoked.key_id,
                              "replaced_revoked_at": revoked.revoked_at}, 201)  # fmt: skip

    @route(app, "/api/keys/{key_id}", methods=["DELETE"], authorizer=authorizer)
    def revoke_key(key_id: str) -> Any:
        principal = gov().revoke_key(require(app.current_request), key_id)
        return json_response({"key_id": principal.key_id, "revoked_at": principal.revoked_at, "role": principal.role.value})

    # --- decisions and rules ---------------------------------------------------

    @route(app, "/api/packages/check", methods=["GET"], authorizer=authorizer)
    def check_package() -> Any:
        caller = require(app.current_request)
        params = query_params(app.current_request)
        for name in ("package_name", "version"):
            if not params.get(name):
                raise BadRequest(f"query parameter {name} is required")
        decision = gov().check(caller, params.get("agent_id"), params["package_name"], params["version"])
        return json_response(decision.to_json())

    @route(app, "/api/packages/request", methods=["POST"], authorizer=authorizer)
    def request_package() -> Any:
        caller = require(app.current_request)
        body = json_body(app.current_request, required=("package_name", "version", "reason"))
        request = gov().request(
            caller,
            string_field(body, "package_name", required=True) or "",
            string_field(body, "version", required=True) or "",
            string_field(body, "reason", required=True, max_length=2000, multiline=True) or "",
            agent_id=string_field(body, "agent_id"),
            skill_id=string_field(body, "skill_id"),
        )
        return json_response({**request.model_dump(mode="json"), "package_name": request.package}, 201)

    @route(app, "/api/packages/requests", methods=["GET"], authorizer=authorizer)
    def list_requests() -> Any:
        caller = require(app.current_request)
        requests = gov().list_requests(caller, query_params(app.current_request).get("status") or None)
        return json_response({"requests": [{**r.model_dump(mode="json"), "package_name": r.package} for r in requests]})

    @route(app, "/api/packages/requests/{request_id}/reject", methods=["POST"], authorizer=authorizer)
    def reject_request(request_id: str) -> Any:
        caller = require(app.current_request)
        body = json_body(app.current_request) if app.current_request.raw_body else {}
        reason = string_field(body, "reason", max_length=2000, multiline=True) or ""
        request = gov().reject_request(caller, valid_request_id(request_id), reason)
        blocked = import_service().block_rejected(request, actor=caller.actor)
        return json_response({**request.model_dump(mode="json"), "package_name": request.package, "blocked_imports": blocked})

    @route(app, "/api/packages/approve", methods=["POST"], authorizer=authorizer)
    def approve_package() -> Any:
        caller = require(app.current_request)
        body = json_body(app.current_request, required=("package_name", "min_maturity"))
        result = gov().approve(caller, string_field(body, "package_name", required=True) or "", string_field(body, "version") or "",
                              body["min_maturity"])
        resumed = resume_after_approval(caller.actor, result.approval.package)
        return json_response(
            {**_rule_json(result.approval), "fulfilled_requests": [r.request_id for r in result.fulfilled], "resumed_imports": resumed},
            201,
        )

    @route(app, "/api/packages/ban", methods=["POST"], authorizer=authorizer)
    def ban_package() -> Any:
        caller = require(app.current_request)
        body = json_body(app.current_request, required=("package_name", "reason"))
        ban = gov().ban(caller, string_field(body, "package_name", required=True) or "", string_field(body, "version") or "", string_field(body, "reason", required=True, max_length=2000, multiline=True) or "")
        return json_response(_rule_json(ban), 201)

    @route(app, "/api/packages/rules", methods=["GET"], authorizer=authorizer)
    def list_rules() -> Any:
        caller = require(app.current_request)
        params = query_params(app.current_request)
        rules = gov().list_rules(caller, package=params.get("package_name") or None, include_revoked=params.get("include_revoked") == "true")
        return json_response({"rules": [_rule_json(r) for r in rules]})

    @route(app, "/api/packages/rules/{rule_id}", methods=["DELETE"], authorizer=authorizer)
    def revoke_rule(rule_id: str) -> Any:
        return json_response(_rule_json(gov().revoke_rule(require(app.current_request), rule_id)))

    @route(app, "/api/packages/audit", methods=["GET"], authorizer=authorizer)
    def audit_trail() -> Any:
        caller = require(app.current_request)
        params = query_params(app.current_request)
        page = gov().audit(
            caller, agent_id=params.get("agent_id") or None, skill_id=params.get("skill_id") or None,
            action=params.get("action") or None, since=params.get("since") or None, until=params.get("until") or None,
            limit=params.get("limit") or None, next_token=params.get("next_token") or None,
        )  # fmt: skip
        return json_response(page.to_json())

    @route(app, "/api/runs", methods=["GET"], authorizer=authorizer)
    def list_runs() -> Any:
        caller = require(app.current_request)
        params = query_params(app.current_request)
        page = gov().runs(
            caller, agent_id=params.get("agent_id") or None, skill_id=params.get("skill_id") or None,
            since=params.get("since") or None, until=params.get("until") or None, limit=params.get("limit") or None,
            next_token=params.get("next_token") or None,
        )  # fmt: skip
        return json_response({"runs": [_run_json(e) for e in page.events], "next_token": page.next_token})

    @route(app, "/api/me", methods=["GET"], authorizer=authorizer)
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
