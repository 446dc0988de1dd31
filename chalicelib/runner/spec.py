"""What one sandboxed execution asks for and what it reports.

Plain domain code (no docker import): the API, the state machine and the
runner worker all exchange these models as JSON.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, computed_field, field_validator

from chalicelib.errors import BadRequest
from chalicelib.runner.command_spec import CommandSpec

MIB = 1024 * 1024

#: hard floors below which the harness itself cannot start
MIN_MEMORY_MB = 32
MIN_CPUS = 0.05
MIN_PIDS = 8
MIN_TMPFS_MB = 1
MIN_OUTPUT_BYTES = 1024


class LimitMaxima(Protocol):
    """The admin-set ceilings (``Settings`` satisfies this)."""

    max_memory_mb: int
    max_cpus: float
    max_timeout_seconds: float


class RunLimits(BaseModel):
    """Resource limits of one container. Defaults match DESIGN.md."""

    model_config = ConfigDict(frozen=True)

    memory_mb: int = 256
    cpus: float = 0.5
    pids: int = 128
    timeout_seconds: float = 30.0
    tmpfs_mb: int = 64
    max_output_bytes: int = MIB
    #: command runs: the size of the /workspace tmpfs (0: a function run, no /workspace or /skill mount)
    workspace_mb: int = 0

    @field_validator("cpus", "timeout_seconds")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @classmethod
    def from_settings(cls, settings: Any) -> RunLimits:
        """The configured defaults (``run_*`` settings)."""
        return cls(
            memory_mb=settings.run_memory_mb,
            cpus=settings.run_cpus,
            pids=settings.run_pids,
            timeout_seconds=settings.run_timeout_seconds,
            tmpfs_mb=settings.run_tmpfs_mb,
            max_output_bytes=settings.max_output_bytes,
        )

    def validated(self, maxima: LimitMaxima) -> RunLimits:
        """Return self if every limit is within the admin maxima and above
        the floors; otherwise raise BadRequest naming each offending limit."""
        problems: list[str] = []
        checks: list[tuple[str, float, float, float | None]] = [
            ("memory_mb", self.memory_mb, MIN_MEMORY_MB, maxima.max_memory_mb),
            ("cpus", self.cpus, MIN_CPUS, maxima.max_cpus),
            ("timeout_seconds", self.timeout_seconds, 0.1, maxima.max_timeout_seconds),
            ("pids", self.pids, MIN_PIDS, None),
            ("tmpfs_mb", self.tmpfs_mb, MIN_TMPFS_MB, None),
            ("max_output_bytes", self.max_output_bytes, MIN_OUTPUT_BYTES, None),
        ]
        for name, value, floor, ceiling in checks:
            if value < floor:
                problems.append(f"{name}={value} is below the minimum {floor}")
            if ceiling is not None and value > ceiling:
                problems.append(f"{name}={value} exceeds the admin maximum {ceiling}")
        if problems:
            raise BadRequest("run limits out of range: " + "; ".join(problems), problems=problems)
        return self

    def with_overrides(self, maxima: LimitMaxima, **overrides: Any) -> RunLimits:
        """Apply per-request overrides (``None`` means keep), then validate."""
        changes = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(changes) - set(type(self).model_fields)
        if unknown:
            raise BadRequest(f"unknown run limit(s): {', '.join(sorted(unknown))}")
        try:
            merged = type(self).model_validate({**self.model_dump(), **changes})
        except ValueError as exc:
            raise BadRequest(f"invalid run limits: {exc}") from exc
        return merged.validated(maxima)


class Runtime(str, Enum):
    """The container runtime (isolation tier) of a run: runc shares the host
    kernel behind a seccomp profile; runsc (gVisor) puts a user-space kernel
    between the skill and the host's."""

    RUNC = "runc"
    RUNSC = "runsc"


DEFAULT_RUNTIME = Runtime.RUNC


class RunRequest(BaseModel):
    """One execution: which image, which code, which function, which inputs."""

    image: str
    code: str
    entrypoint: str = "main"
    inputs: dict[str, Any] = Field(default_factory=dict)
    #: extra skill files (relative path -> text), written under /tmp/skill
    files: dict[str, str] = Field(default_factory=dict)
    limits: RunLimits = Field(default_factory=RunLimits)
    #: the skill's declared (direct) distributions; a warm container may import them ahead
    packages: list[str] = Field(default_factory=list)
    #: False: never pre-import (the skill's opt-out)
    preimport: bool = True
    #: the isolation tier, chosen by the isolation rules before the job is queued
    runtime: Runtime = DEFAULT_RUNTIME
    #: the code is a snippet run as a script (no entrypoint function is called)
    script: bool = False
    #: a command run instead of a function call, with its workspace's files (path -> base64)
    command: CommandSpec | None = None
    workspace_files: dict[str, str] = Field(default_factory=dict)
    #: approved hosts of this run (``host`` / ``host:port``); non-empty: the run gets the egress proxy
    egress: list[str] = Field(default_factory=list)
    #: granted secrets, as environment variables of the skill's process (never logged, redacted from output)
    env: dict[str, str] = Field(default_factory=dict, repr=False)
    #: granted secrets in inject mode, for the egress proxy only ({"hosts", "name", "value"}): never sent to the container
    inject_headers: list[dict[str, Any]] = Field(default_factory=list, repr=False)

    @field_validator("entrypoint")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not value.isidentifier():
            raise ValueError(f"entrypoint {value!r} is not a Python identifier")
        return value

    @field_validator("files")
    @classmethod
    def _relative_paths(cls, value: dict[str, str]) -> dict[str, str]:
        for path in value:
            parts = path.replace("\\", "/").split("/")
            if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
                raise ValueError(f"skill file path {path!r} must be relative, without '..' or empty parts")
        return value


class RunStatus(str, Enum):
    OK = "ok"
    EXCEPTION = "exception"
    TIMEOUT = "timeout"
    OOM_KILLED = "oom_killed"
    OUTPUT_TRUNCATED = "output_truncated"
    EXIT_NONZERO = "exit_nonzero"
    RUNNER_UNAVAILABLE = "runner_unavailable"
    COLLECT_FAILED = "collect_failed"  # a command's collected files broke a cap or named a link


class RunResult(BaseModel):
    """Exactly what happened. ``output`` is the entrypoint's return value."""

    status: RunStatus
    output: Any = None
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None
    duration_ms: int = 0
    error: str | None = None
    traceback: str | None = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    result_truncated: bool = False
    #: what the runner did beyond the skill's own outcome (e.g. leftovers killed after the result)
    notes: list[str] = Field(default_factory=list)
    image: str | None = None
    #: the container runtime that ran it (None: no container was started)
    runtime: Runtime | None = None
    #: a warm container (started ahead by the pool) ran it; False: one started for this run (None: none ran)
    warm: bool | None = None
    #: command runs: the workspace files the collect patterns matched (their bytes travel beside the result)
    collected: list[str] = Field(default_factory=list)
    #: inline command runs: the collected files themselves (path -> base64), when they fit the result
    files: dict[str, str] = Field(default_factory=dict)
    #: command runs: the workspace that holds the collected files not in ``files`` (None: all are inline)
    workspace_id: str | None = None
    # runner-internal, not serialised: a command run's workspace as it was left (path -> base64)
    _workspace: dict[str, str] | None = PrivateAttr(default=None)
    #: every connection through the egress proxy: host, port, method, allowed, reason, bytes each way
    network: list[dict[str, Any]] = Field(default_factory=list)
    # runner-internal, not serialised: the engine failed after the container started, so the
    # skill may have run; a retry elsewhere could run it twice
    _may_have_run: bool = PrivateAttr(default=False)
    # runner-internal: the run's runtime is not registered with the engine (final: never retried elsewhere
    # under another tier, and no reason to reconnect to the engine)
    _runtime_missing: bool = PrivateAttr(default=False)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def success(self) -> bool:
        return self.status == RunStatus.OK

    @property
    def may_have_run(self) -> bool:
        return self._may_have_run

    @property
    def runtime_missing(self) -> bool:
        return self._runtime_missing

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def warm_key(image: str, limits: RunLimits, packages: list[str] | tuple[str, ...], preimport: bool, runtime: Runtime) -> str:
    """One line naming a warm pool's container shape: workers publish the keys of the pools they hold
    (store/runners.py) and the API sends a run to a worker holding its key (workflow/routing.py)."""
    imports = ",".join(sorted({p for p in packages if p})) if preimport else ""
    return (f"{image}|{limits.memory_mb}m|{limits.cpus:g}cpu|{limits.pids}pids|{limits.tmpfs_mb}tmp|{limits.workspace_mb}ws"
            f"|{runtime.value}|{imports}")  # fmt: skip
