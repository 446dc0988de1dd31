"""Identity for the HTTP API.

Chalice's built-in authorizer (the only kind ``chalice local`` enforces)
turns the ``Authorization: Bearer <key>`` header into a principal. A missing
header is refused by API Gateway itself (401). An unknown or revoked key is
let through as *anonymous* with the reason, and every view refuses anonymous
callers with 401 and a JSON body: a denying authorizer would give 403, and an
authorizer exception a bare 500 under ``chalice local``.
"""

from __future__ import annotations

from typing import Any

from chalice import AuthResponse
from chalice.app import Request

from chalicelib.errors import BadRequest, SkillharborError, Unauthorized
from chalicelib.governance.identity import Principal, Role, acting_agent_id, authenticate, require_role
from chalicelib.settings import get_settings

ANONYMOUS = "anonymous"


def _key_store() -> Any:
    from chalicelib.api.services import governance_service

    return governance_service().principals  # the process's key cache (governance/key_cache.py)


def bearer_token(header_value: str | None) -> str | None:
    if not header_value:
        return None
    scheme, _, token = header_value.strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return header_value.strip()  # a bare key is accepted too


def authorize(token_header: str | None) -> AuthResponse:
    """The authorizer's decision: always a policy for every route, with who the caller is."""
    try:
        principal = authenticate(bearer_token(token_header), _key_store(), bootstrap_admin_key=get_settings().admin_key)
    except SkillharborError as error:
        return AuthResponse(routes=["*"], principal_id=ANONYMOUS, context={"auth_error": error.message})
    context = {"key_id": principal.key_id, "role": principal.role.value, "name": principal.name}
    if principal.agent_id:
        context["agent_id"] = principal.agent_id
    if principal.owner_id:
        context["owner_id"] = principal.owner_id  # a team key publishes as its team
    return AuthResponse(routes=["*"], principal_id=principal.key_id, context=context)


def principal_from_header(token_header: str | None) -> Principal:
    """The caller named by an Authorization header, on a route without the authorizer; 401 for a bad key."""
    return authenticate(bearer_token(token_header), _key_store(), bootstrap_admin_key=get_settings().admin_key)


def principal_of(request: Request) -> Principal:
    """The authenticated caller of this request, or 401."""
    context = (request.context or {}).get("authorizer") or {}
    if not context.get("role"):
        raise Unauthorized(context.get("auth_error") or "an API key is required (Authorization: Bearer <key>)")
    return Principal(
        key_id=context["key_id"], role=context["role"], name=context.get("name") or context["key_id"],
        agent_id=context.get("agent_id"), owner_id=context.get("owner_id"),
    )


def require(request: Request, *roles: Role) -> Principal:
    principal = principal_of(request)
    return require_role(principal, *roles) if roles else principal


def agent_for(caller: Principal, body: Any) -> str:
    """The agent a run or workspace is for: an agent key's own, or (admins) the body's ``agent_id``."""
    agent_id = acting_agent_id(caller, body.agent_id)
    if not agent_id:
        raise BadRequest("agent_id is required when the key is not an agent key", problems=["agent_id: required for this key"])
    return agent_id
