"""Isolation rules (admin): which container runtime runs a skill (governance/isolation.py)."""

from __future__ import annotations

import re
from typing import Any

from chalicelib.api.auth import require
from chalicelib.api.http import json_response, route
from chalicelib.api.responses import IsolationRuleAnswer, IsolationRuleList, IsolationRuleRemoved
from chalicelib.api.models import IsolationRuleRequest
from chalicelib.api.services import isolation_policy
from chalicelib.errors import BadRequest
from chalicelib.governance.identity import Role

_RULE_ID = re.compile(r"^iso-[0-9a-f]{16}$")


def register(app: Any, authorizer: Any) -> None:
    @route(app, "/api/isolation/rules", methods=["POST"], response=IsolationRuleAnswer, authorizer=authorizer,
           body=IsolationRuleRequest, status=201)  # fmt: skip
    def add_isolation_rule(body: IsolationRuleRequest) -> Any:
        caller = require(app.current_request, Role.ADMIN)
        rule = isolation_policy().add(body.fields(), actor=caller.actor)
        return json_response(rule.to_json(), 201)

    @route(app, "/api/isolation/rules", methods=["GET"], response=IsolationRuleList, authorizer=authorizer)
    def list_isolation_rules() -> Any:
        require(app.current_request, Role.ADMIN)
        return json_response({"rules": [r.to_json() for r in isolation_policy().list()]})

    @route(app, "/api/isolation/rules/{rule_id}", methods=["DELETE"], response=IsolationRuleRemoved,
           authorizer=authorizer)  # fmt: skip
    def remove_isolation_rule(rule_id: str) -> Any:
        caller = require(app.current_request, Role.ADMIN)
        if not _RULE_ID.match(rule_id):
            raise BadRequest(f"invalid isolation rule id {rule_id[:80]!r}: expected iso- followed by 16 hex digits")
        return json_response({"removed": isolation_policy().remove(rule_id, actor=caller.actor).to_json()})
