"""An OpenAPI 3 description generated from the Chalice app's own routes.

Paths, methods, path parameters, content types and which routes need a key
come from ``app.routes``, so a new route appears here by itself (with a
generic description until :data:`ROUTE_DOCS` says more). Request bodies and
answers are the pydantic models each route declares (api/models.py,
api/responses.py): the same schema validates the body, documents it and
drives the fuzzing; so are query strings, where a route names a query model
(api/queries.py). ``ROUTE_DOCS`` adds summaries, and the query parameters of the
routes that read theirs by hand.
Served at ``GET /api/openapi.json`` (no key); the reliability suite fuzzes
the API from it.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from chalicelib.api.http import JSON_ROUTE_CONTENT_TYPES, RouteDoc, json_response, route
from chalicelib.api.openapi_commands import COMMAND_ROUTE_DOCS
from chalicelib.api.responses import ErrorResponse, OpenApiDocument

_SHORT = {"type": "string", "maxLength": 256}


#: "METHOD /path" → summary and hand-read query parameters ({name: (schema, required)}); the rest comes from the models
ROUTE_DOCS: dict[str, dict[str, Any]] = {
    "GET /api/health": {"summary": "Stack health: `ok` or `degraded` for anyone (reused for a few seconds); with an "
                                   "admin key, each part's state and the advisory database's source and age "
                                   "(`advisory_db.warning` when it is older than SKILLHARBOR_ADVISORY_DB_MAX_AGE_DAYS) (no key needed)"},
    "GET /api/openapi.json": {"summary": "This document (no key)"},
    "GET /console": {"summary": "The admin console, an HTML page (no key: the page asks for one and calls this API "
                                "with it; see docs/CONSOLE.md)"},
    "GET /console/assets/{name}": {"summary": "The console's scripts and styles (no key)"},
    "POST /api/skills": {"summary": "Import a SKILL.md (text) or a skill zip; 202 with the import id. A new skill id "
                        "becomes the publisher's; a skill owned by someone else is 403 (only its owner or an admin may "
                        "publish versions). `?requirements=` (PEP 508, comma-separated) and/or "
                        "`?accept_proposed=true` add requirements the skill did not declare (its proposed ones), "
                        "checked and scanned like declared ones",
                        "query": {"requirements": ({"type": "string", "maxLength": 4000}, False),
                                  "accept_proposed": ({"type": "string", "enum": ["true", "false"]}, False)}},
    "GET /api/skills": {"summary": "The latest version of every skill, with `active_version` (the one runs use)"},
    "GET /api/skills/{skill_id}": {
        "summary": "One skill: the newest upload (or ?version=) with its status, `active_version` (the newest ready "
                   "version, the one runs use), `sandbox_needs` (each non-Python need: available or not available "
                   "in this sandbox, and why) and, for admins and the owner, `owner`",
    },
    "GET /api/skills/{skill_id}/owner": {"summary": "Admin: who owns a skill (may publish its versions)"},
    "PUT /api/skills/{skill_id}/owner": {
        "summary": "Admin: assign or transfer a skill (also one not published yet) to team:<name> or key:<key id>"
    },
    "GET /api/inbox/prefixes": {"summary": "Admin: the inbox folders and the owner each one publishes as"},
    "PUT /api/inbox/prefixes": {
        "summary": "Admin: map an inbox folder (ending in '/', or '/' for the whole bucket) to an owner; uploads "
                   "under no mapped folder are refused"
    },
    "DELETE /api/inbox/prefixes": {"summary": "Admin: unmap an inbox folder", "query": {"prefix": (_SHORT, True)}},
    "GET /api/imports/{import_id}": {"summary": "Follow an import"},
    "GET /api/imports": {
        "summary": "The imports an uploaded object started (refused inbox uploads included), newest first",
        "query": {"source": ({"type": "string", "maxLength": 1200}, True)},
    },
    "GET /api/skills/{skill_id}/sbom": {"summary": "The CycloneDX SBOM of a skill's closure"},
    "POST /api/skills/{skill_id}/approve-code": {
        "summary": "Admin: approve a version whose code or behaviour check had HIGH findings (release_malicious: also lift a CRITICAL block)"
    },
    "POST /api/skills/{skill_id}/execute": {
        "summary": "Run a ready skill in the sandbox: 200 with the result, or 202 with a result_url when the run "
                   "outlasts SKILLHARBOR_RUN_SYNC_WAIT_SECONDS; `code` (skills that allow snippets) replaces the skill's code, "
                   "and without an entrypoint function runs as a script"
    },
    "GET /api/runs/{job_id}": {"summary": "A run's result (200) once it has ended, 202 while it is queued or running "
                                          "(the agent that ran it, or an admin)"},
    "POST /api/agents": {"summary": "Admin: register an agent and issue its key"},
    "GET /api/agents/{agent_id}": {"summary": "An agent"},
    "PATCH /api/agents/{agent_id}": {
        "summary": "Admin: change an agent's maturity"
    },
    "POST /api/keys": {
        "summary": "Admin: issue an admin or publisher key (publishing for `team`), or another key for an existing agent"
    },
    "POST /api/secrets": {
        "summary": "Admin: store a secret (Secrets Manager) and bind it to a skill (optionally one agent) and the hosts it may "
                   "be sent to. `mode` `env` (default): the skill's process gets it as `env_name`; `inject`: it never enters "
                   "the container, the egress proxy adds `header: format` (`{value}` replaced, default `{value}`) to requests "
                   "to the bound hosts, terminating TLS with the run's own CA (docs/EGRESS.md). The answer never holds the value"
    },
    "GET /api/secrets": {"summary": "Admin: a skill's secret bindings (mode, hosts, env_name or header; never values)"},
    "DELETE /api/secrets/{skill_id}/{binding_id}": {"summary": "Admin: remove a binding and its stored value"},
    "GET /api/keys": {
        "summary": "Keys (never their secrets): admins all, an agent key its agent's, a publisher key itself"
    },
    "POST /api/keys/{key_id}/rotate": {
        "summary": "Replace a key: a new secret for the same role, agent and owner, the old key revoked at once; "
                   "a key may rotate itself, an admin any key"
    },
    "DELETE /api/keys/{key_id}": {
        "summary": "Admin: revoke a key; `bootstrap-admin` retires SKILLHARBOR_ADMIN_KEY (once another admin key exists)"
    },
    "GET /api/packages/check": {
        "summary": "May this agent use this package version?"
    },
    "POST /api/packages/request": {
        "summary": "Ask for an approval"
    },
    "GET /api/packages/requests": {"summary": "Approval requests", "query": {"status": (_SHORT, False)}},
    "POST /api/packages/requests/{request_id}/reject": {
        "summary": "Admin: reject a pending approval request, saying why"
    },
    "POST /api/packages/approve": {
        "summary": "Admin: approve a package (all versions or a specifier) for a maturity and up"
    },
    "POST /api/packages/ban": {
        "summary": "Admin: ban a package (all versions or a specifier)"
    },
    "GET /api/packages/rules": {
        "summary": "Approvals and bans"
    },
    "DELETE /api/packages/rules/{rule_id}": {"summary": "Admin: revoke an approval or a ban"},
    "POST /api/isolation/rules": {
        "summary": "Admin: a rule choosing the container runtime of matching runs (runc, or runsc = gVisor); the most "
                   "specific matching rule wins (skill_id first, then the number of fields; ties go to runsc); no rule: "
                   "runc. A run whose runtime the engine lacks fails closed"
    },
    "GET /api/isolation/rules": {"summary": "Admin: the isolation rules"},
    "DELETE /api/isolation/rules/{rule_id}": {"summary": "Admin: remove an isolation rule"},
    "GET /api/packages/audit": {
        "summary": "The audit trail, newest first (`since` and `until`: ISO 8601, inclusive; `limit` 1-1000, "
                   "default 50; repeat the filters with `next_token` for the next page); an agent key sees its own events"
    },
    "GET /api/runs": {
        "summary": "Runs that ended (`ok` or `failed`), newest first, from their audit events: status, duration, "
                   "image, worker; paginated like the audit trail. Admins see every agent's, an agent key its own"
    },
    "GET /api/me": {"summary": "The caller's own key: key id, role, name, agent and owner (never the secret)"},
    "GET /api/skills/{skill_id}/versions": {"summary": "Every uploaded version of a skill, newest first, with its status"},
    "POST /api/packages/scan": {
        "summary": "Admin or publisher: pre-flight scan of requirements (resolved first) or exact pins"
    },
    "POST /api/packages/ignores": {
        "summary": "Admin: ignore an advisory until a date, with a reason"
    },
    "GET /api/packages/ignores": {"summary": "Advisory ignores"},
    "POST /api/scans/rescan": {
        "summary": "Admin: scan ready skill versions again now (the hourly schedule does it when the rule pack or "
                   "advisory database changed); a new CRITICAL blocks the version, a new vulnerability or HIGH flags it; "
                   "`force` re-scans every ready version, `limit` caps how many this call does (the rest stay for later)"
    },
    "POST /api/packages/install": {
        "summary": "Seed-compatible: check, resolve, scan and build the agent's package set (only an admin may skip the scan)"
    },
    "POST /api/packages/execute": {
        "summary": "Seed-compatible: run code in the agent's own package set (202 with a result_url like execute); code "
                   "that defines no entrypoint function runs as a script and its printed text is in `stdout`"
    },
    "GET /api/packages/{skill_id}/status": {
        "summary": "Seed-compatible: does the image exist? (an agent key: its own package set; others may name agent_id)",
    },
    "DELETE /api/packages/{skill_id}": {
        "summary": "Admin: remove the image of agent_id's package set (without agent_id: every agent's set of that name, else the skill's)",
    },
    "GET /api/images": {"summary": "Admin: the managed images"},
    "POST /api/images/cleanup": {
        "summary": "Admin: remove images unused for ttl_days (and build-cache wheels unused for BUILD_CACHE_TTL_DAYS)"
    },
    "GET /api/runners": {"summary": "Admin: the runner workers (endpoint, runtimes, free run slots, images and warm pools held, "
                                    "up, gone after 3 missed heartbeats, or stopped)"},
    "GET /api/queues/dead-letters": {
        "summary": "Admin: messages in each dead-letter queue, with a peek at their bodies",
        "query": {"peek": ({"type": "string", "pattern": "^[0-9]{1,2}$"}, False)},
    },
}
ROUTE_DOCS.update(COMMAND_ROUTE_DOCS)

_PATH_PARAM = re.compile(r"{([^}]+)}")
_REF = "#/components/schemas/{model}"


def _openapi30(schema: Any) -> Any:
    """A pydantic (JSON Schema 2020-12) schema in OpenAPI 3.0's dialect: ``nullable`` for ``| None``, ``enum`` for
    ``const``, and a ``$ref`` that has siblings wrapped in ``allOf`` (3.0 ignores a reference's siblings)."""
    if isinstance(schema, list):
        return [_openapi30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _openapi30(value) if key != "default" else value for key, value in schema.items()}
    options = out.get("anyOf")
    if options and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        del out["anyOf"]
        if len(rest) == 1:
            out.update({k: v for k, v in rest[0].items() if k not in out or k == "type"})
        else:
            out["anyOf"] = rest
        out["nullable"] = True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if "$ref" in out and len(out) > 1:
        out["allOf"] = [{"$ref": out.pop("$ref")}]
    return out


class _Schemas:
    """The components/schemas of the document: each model once, with the models it nests."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, model: type[BaseModel], mode: str) -> dict[str, str]:
        schema = model.model_json_schema(ref_template=_REF, mode=mode)  # type: ignore[arg-type]
        for name, nested in schema.pop("$defs", {}).items():
            self.components.setdefault(name, _openapi30(nested))
        self.components.setdefault(model.__name__, _openapi30(schema))
        return {"$ref": _REF.format(model=model.__name__)}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(path: str, method: str, entry: Any, schemas: _Schemas) -> dict[str, Any]:
    doc = ROUTE_DOCS.get(f"{method} {path}", {})
    declared = getattr(entry.view_function, "route_doc", None) or RouteDoc(None, False, None, 200)
    answer = schemas.ref(declared.response, "serialization") if declared.response else {"type": "object"}
    content = {t: {"schema": _binary(t)} for t in declared.produces} if declared.produces else _json(answer)
    operation: dict[str, Any] = {
        "operationId": entry.view_name,
        "summary": doc.get("summary", entry.view_name.replace("_", " ")),
        "responses": {
            "default": {"description": "an error, as JSON naming what was wrong",
                        "content": _json(schemas.ref(ErrorResponse, "serialization"))},  # fmt: skip
            str(declared.status): {"description": "success", "content": content},
        },
    }
    parameters = [{"name": name, "in": "path", "required": True, "schema": _SHORT} for name in _PATH_PARAM.findall(path)]
    for name, (schema, required) in doc.get("query", {}).items():
        parameters.append({"name": name, "in": "query", "required": required, "schema": schema})
    if declared.query is not None:
        parameters += _query_parameters(declared.query)
    if parameters:
        operation["parameters"] = parameters
    if method in ("POST", "PUT", "PATCH"):
        content_types = list(entry.content_types or ["application/json"])
        if content_types in (["application/json"], JSON_ROUTE_CONTENT_TYPES):
            body = schemas.ref(declared.body, "validation") if declared.body else {"type": "object"}
            optional = declared.body is None or declared.body_optional
            operation["requestBody"] = {"required": not optional, "content": _json(body)}
        else:
            operation["requestBody"] = {"required": True, "content": {ct: {"schema": _binary(ct)} for ct in content_types}}
    if entry.authorizer is not None:
        operation["security"] = [{"apiKey": []}]
        operation["responses"]["401"] = {"description": "no key, or an unknown or revoked one"}
    return operation


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """A query model's fields as OpenAPI parameters (``| None`` is an optional parameter, not a null value)."""
    schema = model.model_json_schema(mode="validation")
    required = set(schema.get("required", []))
    parameters = []
    for name, field in schema["properties"].items():
        options = [o for o in field.get("anyOf", [field]) if o != {"type": "null"}]
        shown = {k: v for k, v in options[0].items() if k != "title"}
        if field.get("description"):
            shown["description"] = field["description"]
        parameters.append({"name": name, "in": "query", "required": name in required, "schema": _openapi30(shown)})
    return parameters


def _binary(content_type: str) -> dict[str, str]:
    if "zip" in content_type or "octet" in content_type:
        return {"type": "string", "format": "binary"}
    return {"type": "string"}


def openapi_document(app: Any, *, server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.0 document of every route ``app`` has registered."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for path, methods in sorted(app.routes.items()):
        for method, entry in sorted(methods.items()):
            paths.setdefault(path, {})[method.lower()] = _operation(path, method, entry, schemas)
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "skillharbor", "version": "1", "description": "Skills, package governance and sandboxed execution."},
        "paths": paths,
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <api key>"}},
            "schemas": dict(sorted(schemas.components.items())),
        },
    }
    if server_url:
        document["servers"] = [{"url": server_url}]
    return document


def register(app: Any) -> None:
    @route(app, "/api/openapi.json", methods=["GET"], response=OpenApiDocument)
    def openapi_json() -> Any:
        return json_response(openapi_document(app))
