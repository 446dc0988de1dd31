"""An OpenAPI 3 description generated from the Chalice app's own routes.

Paths, methods, path parameters, content types and which routes need a key
come from ``app.routes``, so a new route appears here by itself (with a
generic description until :data:`ROUTE_DOCS` says more). ``ROUTE_DOCS`` adds
what the routing table cannot know: query parameters and JSON bodies.
Served at ``GET /api/openapi.json`` (no key); the reliability suite fuzzes
the API from it.
"""

from __future__ import annotations

import re
from typing import Any

from chalicelib.api.http import JSON_ROUTE_CONTENT_TYPES, json_response, route
from chalicelib.api.openapi_commands import COMMAND_ROUTE_DOCS

_STRING = {"type": "string"}
_SHORT = {"type": "string", "maxLength": 256}
_MATURITY = {"type": "string", "enum": ["STUDENT", "INTERN", "SUPERVISED", "AUTONOMOUS"]}
_REQUIREMENTS = {"type": "array", "items": _SHORT, "maxItems": 50}
_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": _STRING, "message": _STRING, "problems": {"type": "array", "items": _STRING}, "details": {"type": "object"}},
}


def _object(required: tuple[str, ...] = (), **properties: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


#: "METHOD /path" → summary, query parameters ({name: (schema, required)}) and the JSON body's schema
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
        "query": {"version": (_SHORT, False)},
    },
    "GET /api/skills/{skill_id}/owner": {"summary": "Admin: who owns a skill (may publish its versions)"},
    "PUT /api/skills/{skill_id}/owner": {
        "summary": "Admin: assign or transfer a skill (also one not published yet) to team:<name> or key:<key id>",
        "body": _object(("owner",), owner=_SHORT, expected_owner=_SHORT),
    },
    "GET /api/inbox/prefixes": {"summary": "Admin: the inbox folders and the owner each one publishes as"},
    "PUT /api/inbox/prefixes": {
        "summary": "Admin: map an inbox folder (ending in '/', or '/' for the whole bucket) to an owner; uploads "
                   "under no mapped folder are refused",
        "body": _object(("prefix", "owner"), prefix=_SHORT, owner=_SHORT),
    },
    "DELETE /api/inbox/prefixes": {"summary": "Admin: unmap an inbox folder", "query": {"prefix": (_SHORT, True)}},
    "GET /api/imports/{import_id}": {"summary": "Follow an import"},
    "GET /api/imports": {
        "summary": "The imports an uploaded object started (refused inbox uploads included), newest first",
        "query": {"source": ({"type": "string", "maxLength": 1200}, True)},
    },
    "GET /api/skills/{skill_id}/sbom": {"summary": "The CycloneDX SBOM of a skill's closure"},
    "POST /api/skills/{skill_id}/approve-code": {
        "summary": "Admin: approve a version whose code had HIGH findings (release_malicious: also lift a CRITICAL block)",
        "body": _object(("reason",), reason=_STRING, version=_SHORT, release_malicious={"type": "boolean"}),
    },
    "POST /api/skills/{skill_id}/execute": {
        "summary": "Run a ready skill in the sandbox: 200 with the result, or 202 with a result_url when the run "
                   "outlasts SKILLHARBOR_RUN_SYNC_WAIT_SECONDS; `code` (skills that allow snippets) replaces the skill's code, "
                   "and without an entrypoint function runs as a script",
        "body": _object(
            (), agent_id=_SHORT, inputs={"type": "object"}, timeout_seconds={"type": "number"}, memory_mb={"type": "number"},
            cpus={"type": "number"}, code={"type": "string"},
        ),
    },
    "GET /api/runs/{job_id}": {"summary": "A run's result (200) once it has ended, 202 while it is queued or running "
                                          "(the agent that ran it, or an admin)"},
    "POST /api/agents": {"summary": "Admin: register an agent and issue its key", "body": _object(("agent_id", "maturity"), agent_id=_SHORT, maturity=_MATURITY)},
    "GET /api/agents/{agent_id}": {"summary": "An agent"},
    "PATCH /api/agents/{agent_id}": {
        "summary": "Admin: change an agent's maturity",
        "body": _object(("maturity",), maturity=_MATURITY, expected_version={"type": "integer"}),
    },
    "POST /api/keys": {
        "summary": "Admin: issue an admin or publisher key (publishing for `team`), or another key for an existing agent",
        "body": _object(("role", "name"), role={"type": "string", "enum": ["admin", "publisher", "agent"]}, name=_SHORT,
                        team=_SHORT, agent_id=_SHORT),  # fmt: skip
    },
    "POST /api/secrets": {
        "summary": "Admin: store a secret (Secrets Manager) and bind it to a skill (optionally one agent) and the hosts it may "
                   "be sent to. `mode` `env` (default): the skill's process gets it as `env_name`; `inject`: it never enters "
                   "the container, the egress proxy adds `header: format` (`{value}` replaced, default `{value}`) to requests "
                   "to the bound hosts, terminating TLS with the run's own CA (docs/EGRESS.md). The answer never holds the value",
        "body": _object(("skill_id", "value", "hosts"), skill_id=_SHORT, value={"type": "string", "maxLength": 16384},
                        hosts={"type": "array", "items": _SHORT, "maxItems": 50}, agent_id=_SHORT,
                        mode={"type": "string", "enum": ["env", "inject"]}, env_name=_SHORT, header=_SHORT,
                        format={"type": "string", "maxLength": 256}),  # fmt: skip
    },
    "GET /api/secrets": {"summary": "Admin: a skill's secret bindings (mode, hosts, env_name or header; never values)",
                         "query": {"skill_id": (_SHORT, True)}},
    "DELETE /api/secrets/{skill_id}/{binding_id}": {"summary": "Admin: remove a binding and its stored value"},
    "GET /api/keys": {
        "summary": "Keys (never their secrets): admins all, an agent key its agent's, a publisher key itself",
        "query": {"agent_id": (_SHORT, False), "include_revoked": ({"type": "string", "enum": ["true", "false"]}, False)},
    },
    "POST /api/keys/{key_id}/rotate": {
        "summary": "Replace a key: a new secret for the same role, agent and owner, the old key revoked at once; "
                   "a key may rotate itself, an admin any key"
    },
    "DELETE /api/keys/{key_id}": {
        "summary": "Admin: revoke a key; `bootstrap-admin` retires SKILLHARBOR_ADMIN_KEY (once another admin key exists)"
    },
    "GET /api/packages/check": {
        "summary": "May this agent use this package version?",
        "query": {"package_name": (_SHORT, True), "version": (_SHORT, True), "agent_id": (_SHORT, False)},
    },
    "POST /api/packages/request": {
        "summary": "Ask for an approval",
        "body": _object(("package_name", "version", "reason"), package_name=_SHORT, version=_SHORT, reason=_STRING,
                        agent_id=_SHORT, skill_id=_SHORT),  # fmt: skip
    },
    "GET /api/packages/requests": {"summary": "Approval requests", "query": {"status": (_SHORT, False)}},
    "POST /api/packages/requests/{request_id}/reject": {
        "summary": "Admin: reject a pending approval request, saying why",
        "body": _object((), reason=_STRING),
    },
    "POST /api/packages/approve": {
        "summary": "Admin: approve a package (all versions or a specifier) for a maturity and up",
        "body": _object(("package_name", "min_maturity"), package_name=_SHORT, version=_SHORT, min_maturity=_MATURITY),
    },
    "POST /api/packages/ban": {
        "summary": "Admin: ban a package (all versions or a specifier)",
        "body": _object(("package_name", "reason"), package_name=_SHORT, version=_SHORT, reason=_STRING),
    },
    "GET /api/packages/rules": {
        "summary": "Approvals and bans",
        "query": {"package_name": (_SHORT, False), "include_revoked": ({"type": "string", "enum": ["true", "false"]}, False)},
    },
    "DELETE /api/packages/rules/{rule_id}": {"summary": "Admin: revoke an approval or a ban"},
    "POST /api/isolation/rules": {
        "summary": "Admin: a rule choosing the container runtime of matching runs (runc, or runsc = gVisor); the most "
                   "specific matching rule wins (skill_id first, then the number of fields; ties go to runsc); no rule: "
                   "runc. A run whose runtime the engine lacks fails closed",
        "body": _object(("runtime",), runtime={"type": "string", "enum": ["runc", "runsc"]}, note=_SHORT,
                        match=_object(maturity=_MATURITY, skill_id=_SHORT, egress={"type": "boolean"},
                                      finding={"type": "string", "enum": ["high_code", "code", "vulnerability", "behaviour"]})),
    },
    "GET /api/isolation/rules": {"summary": "Admin: the isolation rules"},
    "DELETE /api/isolation/rules/{rule_id}": {"summary": "Admin: remove an isolation rule"},
    "GET /api/packages/audit": {
        "summary": "The audit trail, newest first (`since` and `until`: ISO 8601, inclusive; `limit` 1-1000, "
                   "default 50; repeat the filters with `next_token` for the next page); an agent key sees its own events",
        "query": {name: (_SHORT, False) for name in ("agent_id", "skill_id", "action", "since", "until", "limit", "next_token")},
    },
    "GET /api/runs": {
        "summary": "Runs that ended (`ok` or `failed`), newest first, from their audit events: status, duration, "
                   "image, worker; paginated like the audit trail. Admins see every agent's, an agent key its own",
        "query": {name: (_SHORT, False) for name in ("agent_id", "skill_id", "since", "until", "limit", "next_token")},
    },
    "GET /api/me": {"summary": "The caller's own key: key id, role, name, agent and owner (never the secret)"},
    "GET /api/skills/{skill_id}/versions": {"summary": "Every uploaded version of a skill, newest first, with its status"},
    "POST /api/packages/scan": {
        "summary": "Admin or publisher: pre-flight scan of requirements (resolved first) or exact pins",
        "body": _object(
            (), requirements=_REQUIREMENTS,
            pins={"type": "array", "maxItems": 50, "items": _object(("name", "version"), name=_SHORT, version=_SHORT)},
        ),  # fmt: skip
    },
    "POST /api/packages/ignores": {
        "summary": "Admin: ignore an advisory until a date, with a reason",
        "body": _object(("advisory_id", "reason", "expires_at"), advisory_id=_SHORT, reason=_STRING, expires_at=_SHORT, package=_SHORT),
    },
    "GET /api/packages/ignores": {"summary": "Advisory ignores"},
    "POST /api/scans/rescan": {
        "summary": "Admin: scan ready skill versions again now (the hourly schedule does it when the rule pack or "
                   "advisory database changed); a new CRITICAL blocks the version, a new vulnerability or HIGH flags it; "
                   "`force` re-scans every ready version, `limit` caps how many this call does (the rest stay for later)",
        "body": _object((), force={"type": "boolean"}, limit={"type": "integer", "minimum": 1, "maximum": 10000}),
    },
    "POST /api/packages/install": {
        "summary": "Seed-compatible: check, resolve, scan and build the agent's package set (only an admin may skip the scan)",
        "body": _object(("skill_id", "requirements"), skill_id=_SHORT, requirements=_REQUIREMENTS, agent_id=_SHORT,
                        scan_for_vulnerabilities={"type": "boolean"}),  # fmt: skip
    },
    "POST /api/packages/execute": {
        "summary": "Seed-compatible: run code in the agent's own package set (202 with a result_url like execute); code "
                   "that defines no entrypoint function runs as a script and its printed text is in `stdout`",
        "body": _object(("skill_id", "code"), skill_id=_SHORT, code=_STRING, entrypoint=_SHORT, agent_id=_SHORT, inputs={"type": "object"}),
    },
    "GET /api/packages/{skill_id}/status": {
        "summary": "Seed-compatible: does the image exist? (an agent key: its own package set; others may name agent_id)",
        "query": {"agent_id": (_SHORT, False)},
    },
    "DELETE /api/packages/{skill_id}": {
        "summary": "Admin: remove the image of agent_id's package set (without agent_id: every agent's set of that name, else the skill's)",
        "query": {"agent_id": (_SHORT, False)},
    },
    "GET /api/images": {"summary": "Admin: the managed images"},
    "POST /api/images/cleanup": {
        "summary": "Admin: remove images unused for ttl_days (and build-cache wheels unused for BUILD_CACHE_TTL_DAYS)",
        "body": _object((), ttl_days={"type": "number"}, dry_run={"type": "boolean"}),
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


def _operation(path: str, method: str, entry: Any) -> dict[str, Any]:
    doc = ROUTE_DOCS.get(f"{method} {path}", {})
    operation: dict[str, Any] = {
        "operationId": entry.view_name,
        "summary": doc.get("summary", entry.view_name.replace("_", " ")),
        "responses": {
            "default": {"description": "an error, as JSON naming what was wrong",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},  # fmt: skip
            "200": {"description": "success", "content": {"application/json": {"schema": {"type": "object"}}}},
        },
    }
    parameters = [{"name": name, "in": "path", "required": True, "schema": _SHORT} for name in _PATH_PARAM.findall(path)]
    for name, (schema, required) in doc.get("query", {}).items():
        parameters.append({"name": name, "in": "query", "required": required, "schema": schema})
    if parameters:
        operation["parameters"] = parameters
    if method in ("POST", "PUT", "PATCH"):
        content_types = list(entry.content_types or ["application/json"])
        if content_types in (["application/json"], JSON_ROUTE_CONTENT_TYPES):
            body_schema = doc.get("body", {"type": "object"})
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body_schema}}}
        else:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    ct: {"schema": {"type": "string", "format": "binary" if "zip" in ct or "octet" in ct else None}}
                    for ct in content_types
                },
            }
            for content in operation["requestBody"]["content"].values():
                if content["schema"]["format"] is None:
                    del content["schema"]["format"]
    if entry.authorizer is not None:
        operation["security"] = [{"apiKey": []}]
        operation["responses"]["401"] = {"description": "no key, or an unknown or revoked one"}
    return operation


def openapi_document(app: Any, *, server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.0 document of every route ``app`` has registered."""
    paths: dict[str, dict[str, Any]] = {}
    for path, methods in sorted(app.routes.items()):
        for method, entry in sorted(methods.items()):
            paths.setdefault(path, {})[method.lower()] = _operation(path, method, entry)
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "skillharbor", "version": "1", "description": "Skills, package governance and sandboxed execution."},
        "paths": paths,
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <api key>"}},
            "schemas": {"Error": _ERROR},
        },
    }
    if server_url:
        document["servers"] = [{"url": server_url}]
    return document


def register(app: Any) -> None:
    @route(app, "/api/openapi.json", methods=["GET"])
    def openapi_json() -> Any:
        return json_response(openapi_document(app))
