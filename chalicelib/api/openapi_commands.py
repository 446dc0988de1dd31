"""OpenAPI descriptions of the command-run, workspace and snippet routes (merged into openapi.ROUTE_DOCS)."""

from __future__ import annotations

from typing import Any

COMMAND_ROUTE_DOCS: dict[str, dict[str, Any]] = {
    "POST /api/skills/{skill_id}/commands": {
        "summary": "Run an argv in the skill's sandbox: the skill's folder read-only at /skill, the working directory a "
                   "size-capped workspace (`workspace_id`, else a throwaway one). `files` (path → base64) go in first, "
                   "`collect` (globs) come back in `files`; the answer has status, exit_code, stdout, stderr (capped, "
                   "with truncation flags), files and duration_ms; 413 past the body or file caps; 202 with a "
                   "result_url when it outlasts SKILLHARBOR_RUN_SYNC_WAIT_SECONDS"
    },
    "GET /api/skills/{skill_id}/snippets": {"summary": "Whether the skill accepts code sent to its execute (`allow_snippets`; "
                                                       "null: every agent but STUDENT ones)"},
    "PUT /api/skills/{skill_id}/snippets": {
        "summary": "Admin or the skill's publisher: allow (true), refuse (false) or reset (null) code sent to the skill's execute"
    },
    "POST /api/workspaces": {
        "summary": "A workspace for the calling agent (admins name agent_id): files kept between command runs of one skill "
                   "until `ttl_seconds`, at most `size_mb` (the sandbox enforces it as a tmpfs)"
    },
    "GET /api/workspaces/{workspace_id}": {"summary": "A workspace and its files (404 for other agents and once expired)"},
    "DELETE /api/workspaces/{workspace_id}": {"summary": "Delete a workspace and its files"},
    "GET /api/workspaces/{workspace_id}/files/{path}": {
        "summary": "One file's bytes (send Accept: application/octet-stream; `path` percent-encoded, e.g. out%2Ffilled.pdf)"
    },
    "PUT /api/workspaces/{workspace_id}/files/{path}": {
        "summary": "Store a file (the raw body, Content-Type: application/octet-stream); 413 past the per-file cap or the "
                   "workspace's size cap"
    },
}
