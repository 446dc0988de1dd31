"""Runs sent over HTTP straight to a runner worker, skipping the queue hop.

The queue path (SQS send, the worker's long poll, a result record the API
polls for) survives worker restarts, but each of its hops costs
milliseconds on every request. When ``runner_url`` is set, the API posts a
run job to the worker's direct endpoint and reads the result from the
response. Requests are signed with ``runner_secret`` (HMAC-SHA256 over a
timestamp and the body), so only holders of the secret can make a runner
execute code, and a captured request cannot be replayed later.

If the job does not start (no connection, every run slot busy, the engine
down before the container started), the caller falls back to the queue,
which holds the job until a worker can take it. A refusal (bad signature,
wrong URL) is a configuration problem and fails the run loudly instead of
quietly using the slow path. Once the job is handed over it is never sent
again, even if its answer is lost: a run must not happen twice.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
import urllib.parse
from typing import Any

from chalicelib.errors import Unauthorized

SIGNATURE_HEADER = "X-Skillharbor-Signature"
RUN_PATH = "/run"
MAX_SKEW_SECONDS = 300  # how old (or how far ahead) a signed request may be


def signature(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value that proves ``body`` comes from a holder of ``secret``."""
    moment = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), b"%d." % moment + body, hashlib.sha256).hexdigest()
    return f"t={moment},v1={mac}"


def verify(secret: str, header: str | None, body: bytes, *, now: float | None = None) -> int:
    """The request's timestamp if ``header`` signs ``body``; Unauthorized (saying why) otherwise."""
    if not header:
        raise Unauthorized(f"missing {SIGNATURE_HEADER} header")
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields.get("t", ""))
    except ValueError:
        raise Unauthorized("malformed signature: no timestamp") from None
    if abs((time.time() if now is None else now) - timestamp) > MAX_SKEW_SECONDS:
        raise Unauthorized(f"signature timestamp is more than {MAX_SKEW_SECONDS}s away from the runner's clock")
    expected = signature(secret, body, timestamp)
    if not hmac.compare_digest(expected.encode(), f"t={timestamp},v1={fields.get('v1', '')}".encode()):
        raise Unauthorized("signature does not match (is SKILLHARBOR_RUNNER_SECRET the same on both sides?)")
    return timestamp


class DirectRunUnreachable(Exception):
    """The job did not start (no connection, runner busy, engine down before the start): the queue may take it."""


class DirectRunRefused(Exception):
    """The runner turned the job down (bad signature, wrong URL, ...): a configuration problem, not for the queue
    to hide."""


class DirectRunLost(Exception):
    """The job was handed over but no usable answer came back: it must not be sent again."""


class DirectRunClient:
    def __init__(self, url: str, secret: str, *, connect_timeout: float = 2.0):
        problem = url_problem(url)
        if problem:
            raise ValueError(problem)
        self.url, self.secret, self.connect_timeout = url, secret, connect_timeout
        self._parsed = urllib.parse.urlsplit(url)

    def run(self, job_json: bytes, timeout: float) -> dict[str, Any]:
        """POST a serialised RunJob; the runner's result document."""
        connection_type = http.client.HTTPSConnection if self._parsed.scheme == "https" else http.client.HTTPConnection
        connection = connection_type(self._parsed.hostname, self._parsed.port, timeout=self.connect_timeout)
        try:
            try:
                connection.connect()
                connection.sock.settimeout(timeout)
                connection.request("POST", self._parsed.path.rstrip("/") + RUN_PATH, body=job_json, headers={
                    "Content-Type": "application/json", SIGNATURE_HEADER: signature(self.secret, job_json)})  # fmt: skip
            except (OSError, http.client.HTTPException) as error:
                raise DirectRunUnreachable(f"runner at {self.url} unreachable: {error}") from error
            try:
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as error:
                raise DirectRunLost(f"the runner at {self.url} took the job but did not answer: {error!r}") from error
        finally:
            connection.close()
        if response.status == 200:
            try:
                document = json.loads(payload)
            except ValueError as error:
                raise DirectRunLost(f"the runner at {self.url} answered with something that is not JSON") from error
            if not isinstance(document, dict):
                raise DirectRunLost(f"the runner at {self.url} answered with something that is not a result")
            return document
        message = f"runner at {self.url} answered {response.status}: {_message(payload)}"
        if response.status == 503:
            raise DirectRunUnreachable(message)
        if response.status in (500, 409) or response.status > 503:
            raise DirectRunLost(message)  # it failed mid-job, or already took this job id: never resend
        raise DirectRunRefused(message)


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a runner URL, or None."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return f"SKILLHARBOR_RUNNER_URL must be an http(s) URL with a host, got {url!r}"
    try:
        parsed.port
    except ValueError:
        return f"SKILLHARBOR_RUNNER_URL has an invalid port: {url!r}"
    return None


def _message(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("message", ""))[:300]
    except (ValueError, AttributeError):
        return payload[:300].decode("utf-8", "replace")
