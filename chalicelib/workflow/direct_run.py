"""Runs sent over HTTP straight to a runner worker, skipping the queue hop.

The queue path (SQS send, the worker's long poll, a result record the API
polls for) survives worker restarts, but each of its hops costs
milliseconds on every request. When ``runner_url`` is set, the API posts a
run job to the worker's direct endpoint and reads the result from the
response. Requests are signed with ``runner_secret`` (HMAC-SHA256 over a
timestamp and the body), so only holders of the secret can make a runner
execute code, and a captured request cannot be replayed later.

If the runner cannot be reached before the job is handed over, the caller
falls back to the queue, which retries until a worker takes the job. Once
the job is handed over it is never sent again: a run must not happen twice.
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
    """The job was not handed over: the queue path may take it."""


class DirectRunLost(Exception):
    """The job was handed over but no answer came back: it must not be sent again."""


class DirectRunClient:
    def __init__(self, url: str, secret: str, *, connect_timeout: float = 2.0):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"runner_url must be an http(s) URL, got {url!r}")
        self.url, self.secret, self.connect_timeout = url, secret, connect_timeout
        self._parsed = parsed

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
            except OSError as error:
                raise DirectRunUnreachable(f"runner at {self.url} unreachable: {error}") from error
            try:
                response = connection.getresponse()
                payload = response.read()
            except OSError as error:
                raise DirectRunLost(f"the runner at {self.url} took the job but did not answer: {error}") from error
        finally:
            connection.close()
        if response.status == 200:
            return json.loads(payload)
        if response.status >= 500 and response.status != 503:
            raise DirectRunLost(f"the runner at {self.url} failed during the job ({response.status}): {_message(payload)}")
        # 503 (engine down) and refusals (401, 400, 409) answer before anything runs
        raise DirectRunUnreachable(f"runner at {self.url} did not take the job ({response.status}): {_message(payload)}")


def _message(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("message", ""))[:300]
    except (ValueError, AttributeError):
        return payload[:300].decode("utf-8", "replace")
