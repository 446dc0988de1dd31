"""Brokered secrets (admin): bind a value to a skill (optionally an agent) and hosts, as an environment variable
(mode ``env``) or a header the egress proxy adds (mode ``inject``); list and remove bindings."""

from __future__ import annotations

from typing import Any

from chalicelib.api.auth import require
from chalicelib.api.http import json_response, route
from chalicelib.api.models import SecretRequest
from chalicelib.api.queries import SkillQuery
from chalicelib.api.responses import SecretBindingAnswer, SecretBindingList
from chalicelib.api.services import secret_broker, valid_skill_id


def register(app: Any, authorizer: Any) -> None:
    @route(app, "/api/secrets", methods=["POST"], authorizer=authorizer, body=SecretRequest,
           response=SecretBindingAnswer, status=201)  # fmt: skip
    def bind_secret(body: SecretRequest) -> Any:
        caller = require(app.current_request)
        return json_response(secret_broker().bind(caller, body.fields()).public(), 201)  # the mode decides the rest

    @route(app, "/api/secrets", methods=["GET"], response=SecretBindingList, authorizer=authorizer, query=SkillQuery)
    def list_secrets(query: SkillQuery) -> Any:
        caller = require(app.current_request)
        return json_response({"bindings": [b.public() for b in secret_broker().list(caller, valid_skill_id(query.skill_id))]})

    @route(app, "/api/secrets/{skill_id}/{binding_id}", methods=["DELETE"], response=SecretBindingAnswer,
           authorizer=authorizer)  # fmt: skip
    def unbind_secret(skill_id: str, binding_id: str) -> Any:
        caller = require(app.current_request)
        return json_response(secret_broker().unbind(caller, valid_skill_id(skill_id), binding_id).public())
