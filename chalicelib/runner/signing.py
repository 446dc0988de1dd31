"""Signed runner jobs: a worker takes no job that a holder of the runner secret did not issue.

Everything that hands a job to a runner (the API, the pipeline's ``dispatch_build``
function, the schedule) signs it with ``SKILLHARBOR_RUNNER_SECRET``
(HMAC-SHA256). A signature covers the job's type and id, when it was issued,
until when it may start, and the length and sha256 of the job's JSON. So:

* a message from anyone without the secret (unsigned or forged) is refused;
* a signed job cannot be altered (the hash) nor started after its expiry;
* a signed run job cannot run twice: workers claim run job ids once in a
  shared store (``store/images.py``), so a replay within the expiry is refused too.

Wire forms:

* queue message body: ``{"signature": "<token>", "job": "<the job's JSON, as a string>"}``
  (the job stays a string so that exactly the signed bytes are verified);
* direct run (``runner/direct.py``): the token in the ``X-Skillharbor-Signature``
  header and the job's JSON as the body. The header is verified before any of
  the body is read, the body's length and hash once it has arrived.

A token: ``v1;type=run;id=run-…;iat=<epoch s>;exp=<epoch s>;len=<bytes>;sha256=<hex>;mac=<hex>``.
Plain domain code: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from chalicelib.errors import Unauthorized

SIGNATURE_HEADER = "X-Skillharbor-Signature"
VERSION = "v1"
#: how far ahead of the verifier's clock an issue time may be (clock skew between hosts)
MAX_SKEW_SECONDS = 300
#: the longest a signature may be valid: bounds the replay window whatever a signer asked for
MAX_LIFETIME_SECONDS = 2 * 3600
MIN_SECRET_LENGTH = 16
JOB_TYPES = frozenset({"build", "run", "cleanup", "remove"})

_FIELDS = ("type", "id", "iat", "exp", "len", "sha256")
_JOB_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class JobClaims:
    """What a signature vouches for."""

    type: str
    job_id: str
    issued_at: int
    expires_at: int
    length: int
    sha256: str

    def fields(self) -> dict[str, str]:
        return {"type": self.type, "id": self.job_id, "iat": str(self.issued_at), "exp": str(self.expires_at),
                "len": str(self.length), "sha256": self.sha256}  # fmt: skip

    def describe(self) -> dict[str, Any]:
        """For logs and audit events (no secret in here: the MAC is not part of it)."""
        return {"type": self.type, "job_id": self.job_id, "issued_at": self.issued_at, "expires_at": self.expires_at}


def _refused(why: str, message: str, claims: JobClaims | None = None) -> Unauthorized:
    details: dict[str, Any] = {"why": why}
    if claims is not None:
        details["claims"] = claims
    return Unauthorized(message, **details)


def refusal_reason(error: Unauthorized) -> str:
    """``unsigned``, ``malformed``, ``forged``, ``expired``, ``not_yet_valid`` or ``body_mismatch``."""
    return str(error.details.get("why", "forged"))


def authentic_claims(error: Unauthorized) -> JobClaims | None:
    """The claims of a refused job whose MAC was right (it is only expired), else None."""
    claims = error.details.get("claims")
    return claims if isinstance(claims, JobClaims) else None


def _mac(secret: str, fields: dict[str, str]) -> str:
    message = "\n".join([f"skillharbor-job-{VERSION}", *(f"{k}={fields[k]}" for k in _FIELDS)])
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def require_secret(secret: str | None) -> str:
    if not secret or len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"SKILLHARBOR_RUNNER_SECRET ({MIN_SECRET_LENGTH} characters or more) is required: "
                         "runner jobs are signed with it")  # fmt: skip
    return secret


def sign(secret: str, job_type: str, job_id: str, body: bytes, *, lifetime_seconds: float,
         now: float | None = None) -> str:  # fmt: skip
    """The token vouching that ``body`` (a job's JSON) is a ``job_type`` job issued now, startable for ``lifetime_seconds``."""
    require_secret(secret)
    if job_type not in JOB_TYPES or not _JOB_ID.match(job_id):
        raise ValueError(f"cannot sign a job of type {job_type!r} with id {job_id!r}")
    issued = int(time.time() if now is None else now)
    lifetime = max(1, min(int(lifetime_seconds), MAX_LIFETIME_SECONDS))
    claims = JobClaims(job_type, job_id, issued, issued + lifetime, len(body), hashlib.sha256(body).hexdigest())
    fields = claims.fields()
    return ";".join([VERSION, *(f"{k}={fields[k]}" for k in _FIELDS), f"mac={_mac(secret, fields)}"])


def _parse(token: str) -> tuple[JobClaims, str]:
    parts = token.strip().split(";")
    if parts[0] != VERSION:
        raise _refused("malformed", f"malformed signature: expected version {VERSION}")
    fields: dict[str, str] = {}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if not sep or key in fields:
            raise _refused("malformed", "malformed signature: fields must be key=value, each once")
        fields[key] = value
    if set(fields) != {*_FIELDS, "mac"}:
        raise _refused("malformed", f"malformed signature: expected the fields {', '.join((*_FIELDS, 'mac'))}")
    numbers = {k: fields[k] for k in ("iat", "exp", "len")}
    if not all(v.isascii() and v.isdigit() and len(v) <= 12 for v in numbers.values()):
        raise _refused("malformed", "malformed signature: iat, exp and len must be whole numbers")
    if fields["type"] not in JOB_TYPES or not _JOB_ID.match(fields["id"]) or not _HEX64.match(fields["sha256"]):
        raise _refused("malformed", "malformed signature: unknown job type, invalid job id or sha256")
    claims = JobClaims(fields["type"], fields["id"], int(fields["iat"]), int(fields["exp"]), int(fields["len"]),
                       fields["sha256"])  # fmt: skip
    return claims, fields["mac"]


def verify_token(secret: str, token: str | None, *, now: float | None = None) -> JobClaims:
    """The claims of a genuine, current token; Unauthorized saying why otherwise (see ``refusal_reason``).

    Needs no body: the direct endpoint checks this before it reads one."""
    if not token:
        raise _refused("unsigned", "the job is not signed")
    claims, mac = _parse(token)
    if not hmac.compare_digest(_mac(secret, claims.fields()).encode(), mac.encode()):
        raise _refused("forged", "the job's signature does not match (is SKILLHARBOR_RUNNER_SECRET the same on both sides?)")
    moment = time.time() if now is None else now
    if claims.issued_at > moment + MAX_SKEW_SECONDS or claims.expires_at - claims.issued_at > MAX_LIFETIME_SECONDS:
        raise _refused("not_yet_valid", f"the job's issue time is more than {MAX_SKEW_SECONDS}s ahead of the runner's "
                       "clock, or its lifetime is too long")  # fmt: skip
    if moment > claims.expires_at:
        raise _refused("expired", f"the job expired {moment - claims.expires_at:.0f}s ago, before a runner could start it",
                       claims)  # fmt: skip
    return claims


def check_body(claims: JobClaims, body: bytes) -> None:
    """The body is the one the claims were signed for."""
    if len(body) != claims.length or not hmac.compare_digest(hashlib.sha256(body).hexdigest(), claims.sha256):
        raise _refused("body_mismatch", "the job's body is not the one that was signed")


def check_job(claims: JobClaims, job: Any) -> None:
    """The parsed job is the one the claims name (its type and id)."""
    if job.type != claims.type or job.job_id != claims.job_id:
        raise _refused("body_mismatch", "the job's type or id is not the one that was signed")


# --- queue messages ----------------------------------------------------------------------------


def seal(secret: str, job: Any, *, lifetime_seconds: float, now: float | None = None) -> str:
    """A queue message body carrying ``job`` (a jobs.py model) and its signature."""
    body = job.model_dump_json()
    token = sign(secret, job.type, job.job_id, body.encode(), lifetime_seconds=lifetime_seconds, now=now)
    return json.dumps({"signature": token, "job": body})


@dataclass(frozen=True)
class Envelope:
    """A queue message taken apart (not yet verified)."""

    token: str | None
    body: bytes


def envelope_of(message_body: str) -> Envelope:
    """The token and job text of a queue message; an unsigned message has no token."""
    try:
        document = json.loads(message_body)
    except ValueError:
        return Envelope(None, message_body.encode("utf-8", "replace"))
    if not isinstance(document, dict) or not isinstance(document.get("job"), str):
        return Envelope(None, message_body.encode("utf-8", "replace"))
    token = document.get("signature")
    return Envelope(token if isinstance(token, str) else None, document["job"].encode("utf-8", "surrogatepass"))


def open_envelope(secret: str, message_body: str, *, now: float | None = None) -> tuple[JobClaims, bytes]:
    """The verified claims and job text of a queue message; Unauthorized (see ``refusal_reason``) otherwise.

    An expired but genuine message raises too; ``authentic_claims(error)`` then
    returns its claims, so the worker can answer whoever waits for it."""
    envelope = envelope_of(message_body)
    try:
        claims = verify_token(secret, envelope.token, now=now)
    except Unauthorized as error:
        expired = authentic_claims(error)
        if expired is not None:
            check_body(expired, envelope.body)  # a genuine token on another body is a forgery, not an expiry
        raise
    check_body(claims, envelope.body)
    return claims, envelope.body


def unsigned_summary(message_body: str) -> dict[str, Any]:
    """What can be said of a refused message without trusting it: for the audit trail and the log."""
    envelope = envelope_of(message_body)
    summary: dict[str, Any] = {"body_bytes": len(message_body.encode("utf-8", "replace")),
                               "body_sha256": hashlib.sha256(message_body.encode("utf-8", "replace")).hexdigest()}  # fmt: skip
    try:
        job = json.loads(envelope.body)
    except ValueError:
        return summary
    if isinstance(job, dict):
        for name in ("type", "job_id", "skill_id", "agent_id"):
            value = job.get(name)
            if isinstance(value, str):
                summary[f"claimed_{name}"] = value[:100]
    return summary

