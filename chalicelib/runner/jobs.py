"""Messages on the runner queue (plain models; no docker import).

Every job has a ``job_id`` and travels signed (``runner/signing.py``).

* ``build``: build (or find) the image for a skill version's pins; the
  pipeline's Install step waits on ``task_token``.
* ``run``: execute a skill; the result goes to the results store under
  ``job_id``, where the API waits for it.
* ``cleanup``: remove managed images unused for ``ttl_days``.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from chalicelib.errors import BadRequest
from chalicelib.packages.pins import Pin
from chalicelib.runner.command_spec import CommandSpec
from chalicelib.runner.spec import DEFAULT_RUNTIME, RunLimits, Runtime


def _job_id() -> str:
    return "job-" + secrets.token_hex(12)


class BuildJob(BaseModel):
    """Pins come from the skill version's record, or with the job (seed install endpoint)."""

    type: Literal["build"] = "build"
    job_id: str = Field(default_factory=_job_id)
    skill_id: str
    version: str = ""
    import_id: str | None = None
    task_token: str | None = None  # answer the pipeline's Install step
    result_id: str | None = None  # or store the outcome for a waiting API call
    pins: list[Pin] | None = None


class RunJob(BaseModel):
    type: Literal["run"] = "run"
    job_id: str = Field(default_factory=lambda: "run-" + secrets.token_hex(12))
    skill_id: str
    version: str
    image_tag: str | None = None  # None: the base image
    pins: list[Pin] = Field(default_factory=list)  # to rebuild the image if it was cleaned up
    code: str
    entrypoint: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict)
    limits: RunLimits = Field(default_factory=RunLimits)
    agent_id: str | None = None
    requested_by: str = "system"  # the audit actor of the run's events (the caller's key)
    audit_detail: dict[str, Any] = Field(default_factory=dict)  # extra detail for the run's audit events
    preimport: bool = True  # False: a warm container must not import the skill's packages ahead
    runtime: Runtime = DEFAULT_RUNTIME  # the tier the isolation rules chose (audit_detail names the rule)
    script: bool = False  # the code is a snippet run as a script, no entrypoint called
    command: CommandSpec | None = None  # a command run (its workspace's files come from the workspace store)
    egress: list[str] = Field(default_factory=list)  # hosts approved for this run (the API's host check); signed with the job
    secrets: list[dict[str, Any]] = Field(default_factory=list)  # granted secrets by reference (secret_name, env_name); no values
    # epoch seconds: a queued job not started by then is dropped: the API has stopped waiting for it, and
    # a late run would be a surprise (an agent told "runner_unavailable" may have asked again)
    start_by: float | None = None
    # a behaviour check (runner/probe/): the plan (targets, canaries, budget); the run is the probe driver's
    probe: dict[str, Any] | None = None


class CleanupJob(BaseModel):
    type: Literal["cleanup"] = "cleanup"
    job_id: str = Field(default_factory=_job_id)
    ttl_days: float
    dry_run: bool = False
    requested_by: str = "system"
    result_id: str | None = None


class RemoveJob(BaseModel):
    """Remove one skill's image now (the seed's DELETE /api/packages/{skill_id})."""

    type: Literal["remove"] = "remove"
    job_id: str = Field(default_factory=_job_id)
    image_tag: str
    requested_by: str
    result_id: str | None = None


Job = Annotated[BuildJob | RunJob | CleanupJob | RemoveJob, Field(discriminator="type")]
_JOB = TypeAdapter(Job)


def parse_job(body: str) -> BuildJob | RunJob | CleanupJob | RemoveJob:
    """A queue message body → a job, or BadRequest naming what is wrong (a poison message)."""
    try:
        return _JOB.validate_json(body)
    except ValidationError as error:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}" for e in error.errors()]
        raise BadRequest("runner job message is invalid", problems=problems) from error
