"""Command runs and workspaces: the use cases behind ``/api/skills/{id}/commands`` and ``/api/workspaces``.

A command runs like an execution (the skill's newest ready version, the permission check for each of
its packages, one signed run job, the same runner, warm pool and audit), with an argv instead of a
function. Its files live in a workspace: one the agent created (kept between commands until its TTL),
or a throwaway one made for this command alone and removed after the answer. The runner loads the
workspace into the container's size-capped tmpfs and saves back what the command left.
"""

from __future__ import annotations

import base64
import binascii
import math
import time
from typing import Any

from chalicelib.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge
from chalicelib.governance.maturity import Maturity
from chalicelib.packages.pins import Pin
from chalicelib.runner.command_spec import CommandSpec, file_path_problem, new_workspace_id, parse_command
from chalicelib.runner.jobs import RunJob
from chalicelib.runner.snippets import snippet_allowed
from chalicelib.runner.spec import RunResult
from chalicelib.settings import get_settings
from chalicelib.workflow.permissions import refuse_denied
from chalicelib.workflow.run_handoff import PendingRun

MIB = 1024 * 1024
#: a throwaway workspace outlives its command by this much, so the cleanup removes it if the API could not
EPHEMERAL_MARGIN_SECONDS = 600


def _positive_int(body: dict[str, Any], name: str, default: int, ceiling: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"{name} must be a positive integer")
    if value > ceiling:
        raise BadRequest(f"{name}={value} exceeds the admin maximum {ceiling}")
    return value


class CommandService:
    def __init__(self, execution: Any, workspaces: Any, skill_settings: Any = None, agents: Any = None):
        self.execution, self.workspaces = execution, workspaces
        self.skill_settings, self.agents = skill_settings, agents

    # --- snippets (code sent to a skill's execute) ---------------------------------------------

    def snippet_setting(self, skill_id: str) -> dict[str, Any]:
        self._ready_skill(skill_id)
        return {"skill_id": skill_id, "allow_snippets": self.skill_settings.get(skill_id).get("allow_snippets")}

    def set_snippets(self, skill_id: str, allow: Any, *, actor: str) -> dict[str, Any]:
        if allow is not None and not isinstance(allow, bool):
            raise BadRequest("allow_snippets must be true, false or null (null: every agent but STUDENT ones)")
        self._ready_skill(skill_id)
        stored = self.skill_settings.put(skill_id, actor=actor, allow_snippets=allow)
        return {"skill_id": skill_id, "allow_snippets": stored.get("allow_snippets")}

    def check_snippets_allowed(self, skill_id: str, agent_id: str) -> None:
        setting = self.skill_settings.get(skill_id).get("allow_snippets")
        agent = self.agents.get_agent(agent_id)
        if agent is None:
            raise NotFound(f"no agent {agent_id!r}")
        if not snippet_allowed(setting, agent.maturity.rank, Maturity.STUDENT.rank):
            why = "this skill does not accept code" if setting is False else "STUDENT agents may not send code to this skill"
            raise Forbidden(f"{why}: an admin or the skill's publisher can allow it with PUT /api/skills/{skill_id}/snippets "
                            "{\"allow_snippets\": true}")  # fmt: skip

    # --- workspaces -----------------------------------------------------------------------------

    def create_workspace(self, agent_id: str, skill_id: str, body: dict[str, Any], *, actor: str) -> dict[str, Any]:
        settings = get_settings()
        self._ready_skill(skill_id)
        size_mb = _positive_int(body, "size_mb", settings.workspace_default_mb, settings.workspace_max_mb)
        ttl = _positive_int(body, "ttl_seconds", settings.workspace_default_ttl_seconds, settings.workspace_max_ttl_seconds)
        record = self.workspaces.create(new_workspace_id(), agent_id=agent_id, skill_id=skill_id, size_mb=size_mb,
                                        ttl_seconds=ttl, expires_at=math.ceil(time.time() + ttl), created_by=actor)  # fmt: skip
        return self._describe(record)

    def workspace(self, workspace_id: str, agent_id: str | None) -> dict[str, Any]:
        """The workspace if it exists, is unexpired and belongs to ``agent_id`` (None: an admin); else 404."""
        record = self.workspaces.get(workspace_id) if workspace_id.startswith("ws-") else None
        if record is None or (agent_id is not None and record.get("agent_id") != agent_id):
            raise NotFound(f"no workspace {workspace_id[:40]!r}")  # another agent's is not even said to exist
        if int(record.get("expires_at", 0)) < time.time():
            raise NotFound(f"workspace {workspace_id} has expired (its TTL was {record.get('ttl_seconds')}s); create a new one")
        return record

    def describe(self, workspace_id: str, agent_id: str | None) -> dict[str, Any]:
        return self._describe(self.workspace(workspace_id, agent_id))

    def _describe(self, record: dict[str, Any]) -> dict[str, Any]:
        sizes = self.workspaces.sizes(record["workspace_id"])
        return {**{k: record.get(k) for k in ("workspace_id", "agent_id", "skill_id", "size_mb", "ttl_seconds", "expires_at",
                                              "created_at")},
                "files": [{"path": p, "size": n} for p, n in sorted(sizes.items())], "used_bytes": sum(sizes.values())}  # fmt: skip

    def get_file(self, workspace_id: str, agent_id: str | None, path: str) -> bytes:
        self.workspace(workspace_id, agent_id)
        self._path(path)
        try:
            return self.workspaces.get_file(workspace_id, path)
        except NotFound:
            raise NotFound(f"workspace {workspace_id} has no file {path!r}") from None

    def put_file(self, workspace_id: str, agent_id: str | None, path: str, data: bytes) -> dict[str, Any]:
        record = self.workspace(workspace_id, agent_id)
        self._path(path)
        self._fits(record, {path: data})
        self.workspaces.put_file(workspace_id, path, data)
        return {"workspace_id": workspace_id, "path": path, "size": len(data)}

    def delete_workspace(self, workspace_id: str, agent_id: str | None) -> dict[str, Any]:
        record = self.workspaces.get(workspace_id) if workspace_id.startswith("ws-") else None
        if record is None or (agent_id is not None and record.get("agent_id") != agent_id):
            raise NotFound(f"no workspace {workspace_id[:40]!r}")
        self.workspaces.delete(workspace_id)
        return {"workspace_id": workspace_id, "deleted": True}

    def remove_expired(self) -> list[str]:
        """What the schedule does: remove workspaces past their TTL (files, then record)."""
        removed = []
        for workspace_id in self.workspaces.expired():
            self.workspaces.delete(workspace_id)
            removed.append(workspace_id)
        return removed

    @staticmethod
    def _path(path: str) -> None:
        problem = file_path_problem(path)
        if problem:
            raise BadRequest(problem)

    def _fits(self, record: dict[str, Any], new: dict[str, bytes]) -> None:
        """Each file under the per-file cap, and the workspace under its size cap once they are in."""
        cap = get_settings().command_max_file_mb * MIB
        for path, data in new.items():
            if len(data) > cap:
                raise PayloadTooLarge(f"file {path!r} is {len(data)} bytes, over the {cap}-byte cap per file")
        # a throwaway workspace is empty until these files: no listing needed
        sizes = {} if record.get("ephemeral") else self.workspaces.sizes(record["workspace_id"])
        sizes.update({path: len(data) for path, data in new.items()})
        limit = int(record["size_mb"]) * MIB
        if sum(sizes.values()) > limit:
            raise PayloadTooLarge(f"workspace {record['workspace_id']} would hold {sum(sizes.values())} bytes, over its "
                                  f"{record['size_mb']} MiB size cap")  # fmt: skip

    # --- command runs --------------------------------------------------------------------------

    def _ready_skill(self, skill_id: str) -> dict[str, Any]:
        record = self.execution.skills.runnable(skill_id)  # latest_ready, reused briefly (store/skills.py)
        if record is None:
            if self.execution.skills.latest(skill_id) is None:
                raise NotFound(f"no skill {skill_id!r}")
            raise Conflict(f"skill {skill_id} has no ready version")
        return record

    @staticmethod
    def _decoded_files(body: dict[str, Any]) -> dict[str, bytes]:
        files = body.get("files", {})
        if not isinstance(files, dict):
            raise BadRequest("files must be a JSON object of workspace paths to base64 contents")
        decoded: dict[str, bytes] = {}
        problems = []
        for path, encoded in files.items():
            problem = file_path_problem(path)
            if problem:
                problems.append(problem)
                continue
            try:
                decoded[path] = base64.b64decode(encoded, validate=True)
            except (binascii.Error, TypeError, ValueError):
                problems.append(f"file {path!r} is not valid base64")
        if problems:
            raise BadRequest("invalid files: " + "; ".join(problems), problems=problems)
        return decoded

    def run_command(self, skill_id: str, agent_id: str, body: dict[str, Any], *, actor: str, admin: bool) -> dict[str, Any] | PendingRun:
        settings = get_settings()
        record = self._ready_skill(skill_id)
        pins = [Pin(**p) for p in record.get("pins", [])]
        refuse_denied(agent_id, self.execution.permission_problems(agent_id, pins), "this skill's packages")
        # scripts that call APIs get the hosts an admin approved for this agent, as function runs do
        egress = self.execution.host_permission(agent_id, record.get("network") or [])
        files = self._decoded_files(body)
        workspace_id = body.get("workspace_id")
        limits = self.execution.limits(body)
        if workspace_id is not None:
            if not isinstance(workspace_id, str):
                raise BadRequest("workspace_id must be a string")
            workspace = self.workspace(workspace_id, None if admin else agent_id)
            if workspace.get("skill_id") != skill_id:
                raise BadRequest(f"workspace {workspace_id} belongs to skill {workspace.get('skill_id')}, not {skill_id}")
        inline_bytes = settings.command_inline_kb * 1024
        encoded = {path: base64.b64encode(data).decode("ascii") for path, data in files.items()}
        inline = workspace_id is None and sum(len(e) for e in encoded.values()) <= inline_bytes
        if workspace_id is None:
            workspace_id = new_workspace_id()
            workspace = {"workspace_id": workspace_id, "size_mb": settings.workspace_default_mb, "ephemeral": True}
            if not inline:  # its files go through the store: a record, so the cleanup removes them if the API could not
                workspace = self.workspaces.create(workspace_id, agent_id=agent_id, skill_id=skill_id, size_mb=settings.workspace_default_mb,
                                                   ephemeral=True, ttl_seconds=int(limits.timeout_seconds) + EPHEMERAL_MARGIN_SECONDS,
                                                   expires_at=int(time.time() + limits.timeout_seconds + EPHEMERAL_MARGIN_SECONDS))  # fmt: skip
        command = parse_command(body, workspace_id=workspace_id, max_file_bytes=settings.command_max_file_mb * MIB,
                                max_collect_bytes=settings.command_max_collect_mb * MIB, inline_files=encoded if inline else None,
                                inline_bytes=inline_bytes)  # fmt: skip
        stored = bool(workspace.get("ephemeral")) and not inline  # a throwaway workspace in the store: removed after the answer
        try:
            if files:
                self._fits(workspace, files)
                if not inline:
                    for path, data in files.items():
                        self.workspaces.put_file(workspace_id, path, data)
            outcome = self._run(record, pins, command, limits.model_copy(update={"workspace_mb": int(workspace["size_mb"])}),
                                agent_id, actor, egress)  # fmt: skip
            if isinstance(outcome, PendingRun):
                stored = False  # its files are read when it ends; the cleanup removes the workspace at its TTL
                return outcome
            if inline and outcome.workspace_id:
                stored = True  # the runner left collected files too big for its answer in the store
            return self._answer(outcome, record, pins, workspace_id, persistent=not workspace.get("ephemeral"))
        finally:
            if stored:
                self.workspaces.delete(workspace_id)

    def _run(self, record: dict[str, Any], pins: list[Pin], command: CommandSpec, limits: Any, agent_id: str,
             actor: str, egress: list[str]) -> RunResult | PendingRun:  # fmt: skip
        artifact = self.execution.artifact(record)
        tier = self.execution.tier(record["skill_id"], agent_id, record)  # the isolation rules apply as to any run
        secrets = self.execution.secrets
        granted = secrets.for_run(record["skill_id"], agent_id, egress) if secrets is not None and egress else []
        job = RunJob(skill_id=record["skill_id"], version=record["version"], image_tag=record.get("image_tag"), pins=pins, code="",
                     entrypoint="execute", files=artifact.get("files") or {}, limits=limits, agent_id=agent_id,
                     preimport=record.get("preimport", True), requested_by=actor, command=command, runtime=tier["runtime"],
                     egress=egress, secrets=granted, audit_detail={**tier["audit_detail"], "command": command.argv[0][:200], "workspace_id": command.workspace_id})  # fmt: skip
        return self.execution.run(job)

    def _answer(self, result: RunResult, record: dict[str, Any], pins: list[Pin], workspace_id: str, *,
                persistent: bool) -> dict[str, Any]:  # fmt: skip
        document = result.model_dump(mode="json")
        for name in ("output", "result_truncated", "traceback"):
            document.pop(name, None)
        files = {path: result.files[path] for path in result.collected if path in result.files}
        for path in result.collected:
            if path not in files:  # not inline: the run left it in the workspace store
                files[path] = base64.b64encode(self.workspaces.get_file(workspace_id, path)).decode()
        document.update(files=files, workspace_id=workspace_id if persistent else None, image_tag=record.get("image_tag") or get_settings().base_image_tag,
                        packages=[f"{p.name}=={p.version}" for p in pins])  # fmt: skip
        return document

