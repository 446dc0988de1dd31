"""What a runner worker checks before it trusts anything in a job, whichever way the job came.

1. The signature (runner/signing.py): unsigned, forged, altered and expired
   jobs are refused. Nothing of a refused message is acted on, except that a
   genuine job that merely expired is answered, so nobody waits for it.
2. The job parses and is the one that was signed (type and id).
3. A run job stays within this runner's own maxima (memory, cpus, timeout,
   output, pids, tmpfs) and names an image this runner manages, whatever the
   signer was configured with: a compromised or misconfigured API cannot
   start a container that this host's operator did not allow.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from chalicelib.errors import BadRequest, Unauthorized
from chalicelib.runner.jobs import BuildJob, CleanupJob, RemoveJob, RunJob, parse_job
from chalicelib.runner.signing import (
    JobClaims,
    authentic_claims,
    check_job,
    open_envelope,
    refusal_reason,
    unsigned_summary,
)
from chalicelib.runner.spec import MIN_CPUS, MIN_MEMORY_MB, MIN_OUTPUT_BYTES, MIN_PIDS, MIN_TMPFS_MB, RunLimits

#: the repository of the images the builder makes (builder.env_tag)
ENV_REPOSITORY = "skillharbor/env"
_ENV_TAG = re.compile(rf"^{re.escape(ENV_REPOSITORY)}:[0-9a-f]{{32}}$")

Job = BuildJob | RunJob | CleanupJob | RemoveJob


@dataclass
class RefusedJob(Exception):
    """A job this runner will not take; ``job`` is set only when the job is genuine (then it may be answered)."""

    reason: str  # unsigned, malformed, forged, expired, not_yet_valid, body_mismatch, limits, image, unregistered
    message: str
    job: Job | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


def open_message(secret: str, body: str) -> tuple[Job, JobClaims]:
    """The verified job of a queue message.

    Raises RefusedJob (not signed by a holder of the secret, or expired) or
    BadRequest (signed, but not a job this runner understands: a signer's bug,
    left for the dead-letter queue)."""
    try:
        claims, job_text = open_envelope(secret, body)
    except Unauthorized as error:
        expired = authentic_claims(error)
        genuine = None
        if expired is not None:
            try:
                genuine = parse_job(_open_text(body))
                check_job(expired, genuine)
            except (BadRequest, Unauthorized):
                genuine = None
        detail = expired.describe() if expired is not None and genuine is not None else unsigned_summary(body)
        raise RefusedJob(refusal_reason(error), str(error), genuine, detail) from error
    job = parse_job(job_text.decode("utf-8", "replace"))
    try:
        check_job(claims, job)
    except Unauthorized as error:
        raise RefusedJob(refusal_reason(error), str(error), None, unsigned_summary(body)) from error
    return job, claims


def _open_text(body: str) -> str:
    return str(json.loads(body)["job"])


def limit_problems(limits: RunLimits, maxima: Any) -> list[str]:
    """Each limit outside this runner's floors and ceilings (``maxima`` is the worker's Settings)."""
    checks: list[tuple[str, float, float, float]] = [
        ("memory_mb", limits.memory_mb, MIN_MEMORY_MB, maxima.max_memory_mb),
        ("cpus", limits.cpus, MIN_CPUS, maxima.max_cpus),
        ("timeout_seconds", limits.timeout_seconds, 0.1, maxima.max_timeout_seconds),
        ("max_output_bytes", limits.max_output_bytes, MIN_OUTPUT_BYTES, maxima.max_output_bytes),
        # requests cannot raise these two: the configured value is the ceiling
        ("pids", limits.pids, MIN_PIDS, maxima.run_pids),
        ("tmpfs_mb", limits.tmpfs_mb, MIN_TMPFS_MB, maxima.run_tmpfs_mb),
    ]
    problems = []
    for name, value, floor, ceiling in checks:
        if value < floor:
            problems.append(f"{name}={value} is below the minimum {floor}")
        elif value > ceiling:
            problems.append(f"{name}={value} exceeds this runner's maximum {ceiling}")
    return problems


def image_problem(tag: str | None, base_tag: str) -> str | None:
    """Why a run may not use image ``tag``: only the base image and the builder's env images are run."""
    if tag is None or tag == base_tag or _ENV_TAG.match(tag):
        return None
    return f"image {tag[:200]!r} is not one this runner builds (the base image or {ENV_REPOSITORY}:<digest>)"


def admit_run(job: RunJob, maxima: Any) -> None:
    """RefusedJob unless this runner may run ``job`` as it stands."""
    problems = limit_problems(job.limits, maxima)
    if problems:
        raise RefusedJob("limits", "run limits out of this runner's range: " + "; ".join(problems), job,
                         {"job_id": job.job_id, "problems": problems})  # fmt: skip
    problem = image_problem(job.image_tag, maxima.base_image_tag)
    if problem:
        raise RefusedJob("image", problem, job, {"job_id": job.job_id})


class RefusalThrottle:
    """At most one audit event per key (a client address) per ``interval`` seconds, counting the refusals between:
    a flood of forged requests must not become a flood of audit writes."""

    def __init__(self, interval: float = 60.0, max_keys: int = 10_000):
        self.interval, self.max_keys = interval, max_keys
        self._last: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def should_record(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if len(self._last) > self.max_keys:
                self._last = {k: t for k, t in self._last.items() if now - t < self.interval}
                self._counts = {k: n for k, n in self._counts.items() if k in self._last}
            self._counts[key] = self._counts.get(key, 0) + 1
            if now - self._last.get(key, -self.interval) < self.interval:
                return False
            self._last[key] = now
            return True

    def take_count(self, key: str) -> int:
        """The refusals of ``key`` since its last recorded event, this one included."""
        with self._lock:
            return self._counts.pop(key, 0)
