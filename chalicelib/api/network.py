"""Network rules: approve and ban host patterns, list and revoke them (admin)."""

from __future__ import annotations

from typing import Any

from chalicelib.api.auth import require
from chalicelib.api.http import json_response, route
from chalicelib.api.queries import HostRulesQuery
from chalicelib.api.responses import HostRuleAnswer, HostRuleList
from chalicelib.api.models import HostApproveRequest, HostBanRequest
from chalicelib.api.services import import_service, network_governance


def register(app: Any, authorizer: Any) -> None:
    @route(app, "/api/network/approve", methods=["POST"], response=HostRuleAnswer, authorizer=authorizer,
           body=HostApproveRequest, status=201)  # fmt: skip
    def approve_host(body: HostApproveRequest) -> Any:
        caller = require(app.current_request)
        rule = network_governance().approve(caller, body.host, body.ports, body.min_maturity)
        resumed = import_service().resume_waiting_for_hosts(actor=caller.actor)  # as a package approval resumes imports
        return json_response({**rule.to_json(), "resumed_imports": resumed}, 201)

    @route(app, "/api/network/ban", methods=["POST"], response=HostRuleAnswer, authorizer=authorizer,
           body=HostBanRequest, status=201)  # fmt: skip
    def ban_host(body: HostBanRequest) -> Any:
        caller = require(app.current_request)
        return json_response(network_governance().ban(caller, body.host, body.ports, body.reason).to_json(), 201)

    @route(app, "/api/network/rules", methods=["GET"], response=HostRuleList, authorizer=authorizer, query=HostRulesQuery)
    def list_host_rules(query: HostRulesQuery) -> Any:
        caller = require(app.current_request)
        revoked = query.include_revoked == "true"
        return json_response({"rules": [r.to_json() for r in network_governance().list_rules(caller, include_revoked=revoked)]})

    @route(app, "/api/network/rules/{rule_id}", methods=["DELETE"], response=HostRuleAnswer, authorizer=authorizer)
    def revoke_host_rule(rule_id: str) -> Any:
        return json_response(network_governance().revoke(require(app.current_request), rule_id).to_json())
