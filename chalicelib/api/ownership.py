"""Skill owners and the inbox's prefix map (admin only): who may publish which skill, from where."""

from __future__ import annotations

from typing import Any

from chalicelib.api.auth import require
from chalicelib.api.http import json_response, query_params, route
from chalicelib.api.responses import OwnerAnswer, PrefixAnswer, PrefixList
from chalicelib.api.models import OwnerRequest, PrefixRequest
from chalicelib.api.services import import_service, valid_skill_id
from chalicelib.errors import BadRequest
from chalicelib.governance.identity import Role


def _owner_json(owner: Any, previous: Any = None) -> dict[str, Any]:
    body = owner.model_dump(mode="json")
    body["owner"] = body.pop("owner_id")
    if previous is not False:
        body["previous_owner"] = previous.owner_id if previous else None
    return body


def register(app: Any, authorizer: Any) -> None:
    @route(app, "/api/skills/{skill_id}/owner", methods=["GET"], response=OwnerAnswer, authorizer=authorizer)
    def get_owner(skill_id: str) -> Any:
        caller = require(app.current_request, Role.ADMIN)
        return json_response(_owner_json(import_service().ownership.owner(caller, valid_skill_id(skill_id)), False))

    @route(app, "/api/skills/{skill_id}/owner", methods=["PUT"], response=OwnerAnswer, authorizer=authorizer,
           body=OwnerRequest)  # fmt: skip
    def set_owner(skill_id: str, body: OwnerRequest) -> Any:
        caller = require(app.current_request, Role.ADMIN)
        owner, previous = import_service().ownership.transfer(caller, valid_skill_id(skill_id), body.owner,
                                                              expected_owner_id=body.expected_owner)  # fmt: skip
        return json_response(_owner_json(owner, previous))

    @route(app, "/api/inbox/prefixes", methods=["GET"], response=PrefixList, authorizer=authorizer)
    def list_prefixes() -> Any:
        caller = require(app.current_request, Role.ADMIN)
        return json_response({"prefixes": [m.to_json() for m in import_service().ownership.list_prefixes(caller)]})

    @route(app, "/api/inbox/prefixes", methods=["PUT"], response=PrefixAnswer, authorizer=authorizer,
           body=PrefixRequest)  # fmt: skip
    def map_prefix(body: PrefixRequest) -> Any:
        caller = require(app.current_request, Role.ADMIN)
        mapping, previous = import_service().ownership.map_prefix(caller, body.prefix, body.owner)
        return json_response({**mapping.to_json(), "previous_owner": previous.owner_id if previous else None})

    @route(app, "/api/inbox/prefixes", methods=["DELETE"], response=PrefixAnswer, authorizer=authorizer)
    def unmap_prefix() -> Any:
        caller = require(app.current_request, Role.ADMIN)
        prefix = query_params(app.current_request).get("prefix")
        if not prefix:
            raise BadRequest("query parameter prefix is required (a folder ending in '/', or '/' for the whole bucket)")
        return json_response(import_service().ownership.unmap_prefix(caller, prefix).to_json())
