"""What a command run asks for (plain domain code: the API, the queue and the runner exchange it as JSON).

A command run executes an argv in the skill's image with the skill's folder read-only at ``/skill`` and
the working directory a size-capped tmpfs workspace at ``/workspace`` (runner/workspace_io.py). A kept
workspace's files come from the workspace store and go back to it after the run; the API returns the
collected ones. A throwaway workspace with small files is ``inline``: its files travel in the job and
the collected ones in the result, so the run touches no store (what is too big for the result is left in
the store under the command's workspace id, for the caller to read until its TTL).
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.errors import BadRequest
from chalicelib.runner.workspace_io import COMMAND_SKILL_DIR, WORKSPACE_DIR, path_problem

MIB = 1024 * 1024
MAX_ARGV_ITEMS = 256
MAX_ARGV_BYTES = 128 * 1024
MAX_STDIN_BYTES = MIB
MAX_COLLECT_PATTERNS = 64
#: what a caller may set in a command's environment: names that carry no secret and change no loader
#: behaviour (PATH, LD_*, PYTHON* stay the sandbox's); SKILL_* names are the skill's own switches
ALLOWED_ENV = frozenset({"LANG", "LC_ALL", "LC_CTYPE", "TZ", "NO_COLOR", "TERM", "COLUMNS", "LINES", "PYTHONUNBUFFERED"})
_SKILL_ENV = re.compile(r"^SKILL_[A-Z0-9_]{1,60}$")
_RESERVED_ENV = frozenset({"SKILL_DIR"})


def new_workspace_id() -> str:
    return "ws-" + secrets.token_hex(12)


def env_problems(env: dict[str, str]) -> list[str]:
    problems = []
    for name, value in env.items():
        if name in _RESERVED_ENV or not (name in ALLOWED_ENV or _SKILL_ENV.match(name)):
            problems.append(f"env {name[:80]!r} is not allowed (allowed: {', '.join(sorted(ALLOWED_ENV))} and SKILL_* names)")
        elif not isinstance(value, str) or "\x00" in value or len(value) > 4096:
            problems.append(f"env {name} must be a string of at most 4096 characters without NUL")
    return problems


def pattern_problem(pattern: str) -> str | None:
    """A collect pattern must stay inside the workspace (relative, no '..')."""
    if not isinstance(pattern, str) or not pattern or len(pattern) > 512:
        return "a collect pattern must be a non-empty string of at most 512 characters"
    parts = pattern.split("/")
    if pattern.startswith("/") or "\\" in pattern or "\x00" in pattern or any(p in ("", ".", "..") for p in parts):
        return f"collect pattern {pattern[:200]!r} must be relative to the workspace, without '..', '.' or empty parts"
    return None


class CommandSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    argv: list[str]
    stdin: str = ""
    env: dict[str, str] = Field(default_factory=dict)
    collect: list[str] = Field(default_factory=list)
    workspace_id: str
    max_file_bytes: int = 8 * MIB
    max_collect_bytes: int = 16 * MIB
    #: a throwaway workspace whose files (path -> base64) are these, and whose collected files come back in
    #: the result while they total at most ``inline_bytes`` of base64
    inline: bool = False
    files: dict[str, str] = Field(default_factory=dict)
    inline_bytes: int = 0

    @field_validator("argv")
    @classmethod
    def _argv(cls, value: list[str]) -> list[str]:
        if not value or not value[0]:
            raise ValueError("argv must name a program first")
        if len(value) > MAX_ARGV_ITEMS or sum(len(a.encode()) for a in value) > MAX_ARGV_BYTES:
            raise ValueError(f"argv is longer than {MAX_ARGV_ITEMS} items or {MAX_ARGV_BYTES} bytes")
        if any("\x00" in a for a in value):
            raise ValueError("argv items must not contain NUL")
        return value

    def harness_job(self) -> dict[str, Any]:
        """The ``command`` part of the harness job."""
        return {"argv": self.argv, "stdin": self.stdin, "env": self.env, "collect": self.collect, "cwd": WORKSPACE_DIR,
                "skill_dir": COMMAND_SKILL_DIR, "max_file_bytes": self.max_file_bytes,
                "max_collect_bytes": self.max_collect_bytes}  # fmt: skip


def parse_command(body: dict[str, Any], *, workspace_id: str, max_file_bytes: int, max_collect_bytes: int,
                  inline_files: dict[str, str] | None = None, inline_bytes: int = 0) -> CommandSpec:
    """The request body's command fields → CommandSpec, or BadRequest listing every problem."""
    problems: list[str] = []
    argv = body.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        problems.append("argv is required: a non-empty JSON list of strings, e.g. [\"python\", \"scripts/run.py\", \"in.pdf\"]")
    stdin = body.get("stdin", "")
    if not isinstance(stdin, str) or len(stdin.encode()) > MAX_STDIN_BYTES:
        problems.append(f"stdin must be a string of at most {MAX_STDIN_BYTES} bytes")
    env = body.get("env", {})
    if not isinstance(env, dict):
        problems.append("env must be a JSON object of names to strings")
    else:
        problems += env_problems(env)
    collect = body.get("collect", [])
    if not isinstance(collect, list) or len(collect) > MAX_COLLECT_PATTERNS:
        problems.append(f"collect must be a list of at most {MAX_COLLECT_PATTERNS} glob patterns")
    else:
        problems += [p for p in (pattern_problem(c) for c in collect) if p]
    if problems:
        raise BadRequest("invalid command: " + "; ".join(problems), problems=problems)
    try:
        return CommandSpec(argv=argv, stdin=stdin, env=env, collect=collect, workspace_id=workspace_id,
                           max_file_bytes=max_file_bytes, max_collect_bytes=max_collect_bytes,
                           inline=inline_files is not None, files=inline_files or {}, inline_bytes=inline_bytes)  # fmt: skip
    except ValueError as error:
        raise BadRequest(f"invalid command: {error}") from error


def file_path_problem(rel: str) -> str | None:
    return path_problem(rel)
