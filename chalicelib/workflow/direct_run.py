"""Runs sent over HTTP straight to a runner worker, skipping the queue hop (the endpoint is runner/direct.py).

The queue path (SQS send, the worker's long poll, a run record the API
polls) survives worker restarts, but each of its hops costs milliseconds on
every request. When ``runner_url`` is set, the API posts a run job to the
worker's direct endpoint and reads the result from the response. The
request carries the job's signature (runner/signing.py) in a header, so only
holders of the runner secret can make a runner execute code, and a captured
request cannot be replayed: the signature expires and each run job id is
claimed once, in the shared store, by whichever worker starts it.

That claim is what makes falling back safe. When the runner did not answer
at all (no connection, the connection closed or timed out before the first
byte of an answer) or answered 503, the job may be sent through the queue:
if the direct worker did start it after all, the queued copy finds the claim
and is dropped, and the result arrives in the run record either way. A
refusal (bad signature, wrong URL) is a configuration problem and fails the
run loudly instead of quietly using the slow path. An answer that started
but broke off means the job was taken: it is not sent again, and its result
is read from the run record.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.parse
from typing import Any

from chalicelib.runner.signing import SIGNATURE_HEADER

RUN_PATH = "/run"


class DirectRunUnreachable(Exception):
    """No answer began (no connection, closed before the first byte, 503): the queue may take the job."""


class DirectRunBusy(DirectRunUnreachable):
    """It answered 503: every run slot was taken, or its engine was unreachable; the job did not start there."""


class DirectRunNoAnswerYet(DirectRunUnreachable):
    """The wait ended before the first byte of an answer: the job may be running there, or may never have started."""


class DirectRunRefused(Exception):
    """The runner turned the job down (bad signature, wrong URL, ...): a configuration problem, not for the queue
    to hide."""


class DirectRunLost(Exception):
    """An answer began but is unusable (cut off, 500, 409): the job was taken, so it must not be sent again."""


class DirectRunClient:
    """Posts run jobs to one runner URL, reusing its connections (HTTP/1.1 keep-alive).

    A connection goes back to the idle set only after a 200 answer read to its
    end, and is used again only within ``IDLE_SECONDS`` (the endpoint closes an
    idle one after its header deadline, 5 s). A reused connection that turns out
    closed before any answer began is replaced by a new one once: the endpoint
    read nothing from it, and a copy it did read would be refused by the job's
    claim anyway."""

    IDLE_SECONDS = 2.0
    MAX_IDLE = 8

    def __init__(self, url: str, *, connect_timeout: float = 2.0):
        problem = url_problem(url)
        if problem:
            raise ValueError(problem)
        self.url, self.connect_timeout = url, connect_timeout
        self._parsed = urllib.parse.urlsplit(url)
        self._idle: list[tuple[float, http.client.HTTPConnection]] = []
        self._lock = threading.Lock()

    def run(self, job_json: bytes, signature: str, timeout: float) -> dict[str, Any]:
        """POST a serialised RunJob with its signature; the runner's result document."""
        connection = self._take()
        if connection is not None:
            try:
                return self._run_on(connection, job_json, signature, timeout, reused=True)
            except _StaleConnection:
                pass  # closed while idle: nothing was answered on it, a new connection takes the job
        return self._run_on(self._connect(), job_json, signature, timeout, reused=False)

    def _take(self) -> http.client.HTTPConnection | None:
        now = time.monotonic()
        with self._lock:
            while self._idle:
                since, connection = self._idle.pop()
                if now - since < self.IDLE_SECONDS:
                    return connection
                connection.close()
        return None

    def _give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.MAX_IDLE:
                self._idle.append((time.monotonic(), connection))
                return
        connection.close()

    def _connect(self) -> http.client.HTTPConnection:
        connection_type = http.client.HTTPSConnection if self._parsed.scheme == "https" else http.client.HTTPConnection
        connection = connection_type(self._parsed.hostname, self._parsed.port, timeout=self.connect_timeout)
        try:
            connection.connect()
        except (OSError, http.client.HTTPException) as error:
            raise DirectRunUnreachable(f"runner at {self.url} unreachable: {error}") from error
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # the request's head and body: no Nagle wait
        return connection

    def _run_on(self, connection: http.client.HTTPConnection, job_json: bytes, signature: str, timeout: float, *,
                reused: bool) -> dict[str, Any]:  # fmt: skip
        keep = False
        try:
            try:
                connection.sock.settimeout(timeout)
                connection.request("POST", self._parsed.path.rstrip("/") + RUN_PATH, body=job_json, headers={
                    "Content-Type": "application/json", SIGNATURE_HEADER: signature})  # fmt: skip
            except (OSError, http.client.HTTPException) as error:
                if reused:
                    raise _StaleConnection() from error
                raise DirectRunUnreachable(f"runner at {self.url} unreachable: {error}") from error
            try:
                response = connection.getresponse()
            except TimeoutError as error:
                raise DirectRunNoAnswerYet(f"runner at {self.url} did not answer within {timeout:.1f}s") from error
            except (OSError, http.client.RemoteDisconnected) as error:
                # closed (or reset) before the status line: nothing was answered
                if reused:
                    raise _StaleConnection() from error
                raise DirectRunUnreachable(f"runner at {self.url} closed the connection without answering: {error!r}") from error
            except http.client.HTTPException as error:
                raise DirectRunLost(f"the runner at {self.url} answered with something that is not HTTP: {error!r}") from error
            try:
                payload = response.read()
            except (OSError, http.client.HTTPException) as error:
                raise DirectRunLost(f"the runner at {self.url} took the job but its answer broke off: {error!r}") from error
            keep = response.status == 200 and not response.will_close
        finally:
            if keep:
                self._give_back(connection)
            else:
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
            raise DirectRunBusy(message)
        if response.status in (500, 409) or response.status > 503:
            raise DirectRunLost(message)  # it failed mid-job, or another copy took this job id: never resend
        raise DirectRunRefused(message)


class _StaleConnection(Exception):
    """A kept connection was closed by the runner while idle, before any answer on it began."""


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
