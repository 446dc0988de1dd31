"""The container side of command runs, kept apart from ``sandbox.py``: the two tmpfs mounts, the job
fields the harness reads, and the workspace taken off its result (no docker import).

* ``/skill``: the skill's folder, written by the supervisor (uid 10000, mode 0755): read-only to the skill;
* ``/workspace``: the working directory, writable by the skill, ``size=`` the workspace cap, so the kernel
  refuses what goes past it (ENOSPC) however the command writes. Both ``noexec``, like ``/tmp``: scripts run
  through an interpreter (``python x.py``, ``bash x.sh``), dropped binaries cannot be executed.
"""

from __future__ import annotations

from typing import Any

from chalicelib.runner.harness import SUPERVISOR_UID
from chalicelib.runner.workspace_io import COMMAND_SKILL_DIR, MAX_WORKSPACE_FILES, WORKSPACE_DIR

MIB = 1024 * 1024
#: the skill's folder holds its text files (the artefact keeps them small); this is its tmpfs cap
SKILL_DIR_MB = 16


def tmpfs_mounts(workspace_mb: int) -> dict[str, str]:
    if workspace_mb <= 0:
        return {}
    return {
        COMMAND_SKILL_DIR: f"rw,size={SKILL_DIR_MB}m,mode=0755,uid={SUPERVISOR_UID},gid={SUPERVISOR_UID},nosuid,nodev,noexec",
        WORKSPACE_DIR: f"rw,size={workspace_mb}m,mode=0777,nosuid,nodev,noexec",
    }


def workspace_stdout_allowance(workspace_mb: int) -> int:
    """Result-line bytes the workspace may add: base64 of all of it, plus JSON-escaped paths (6x at worst)."""
    if workspace_mb <= 0:
        return 0
    return (workspace_mb * MIB * 4) // 3 + MAX_WORKSPACE_FILES * (2 * 1024 * 6 + 16) + 64 * 1024


def harness_fields(request: Any) -> dict[str, Any]:
    """Extra job fields for a command run: where the skill's files go, the command, the workspace's files."""
    if request.command is None:
        return {}
    return {"workdir": COMMAND_SKILL_DIR, "command": request.command.harness_job(), "workspace_files": request.workspace_files}


def take_workspace(result: Any, document: dict[str, Any]) -> None:
    """Move the workspace the harness read back onto the (runner-internal) result."""
    workspace = document.get("workspace")
    if isinstance(workspace, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in workspace.items()):
        result._workspace = workspace
    collected = document.get("collected")
    if isinstance(collected, list):
        result.collected = [str(c) for c in collected if isinstance(c, str) and c in (workspace or {})]
