"""The runner worker's direct run endpoint (the client is workflow/direct_run.py).

``POST /run`` takes a signed RunJob and answers with its result once the run
is over; ``GET /health`` says the worker is up.

What a client that is not the API can do to it, and what stops it:

* **hold connections open** (trickled headers, a body that never ends): each
  request has a total deadline for its headers (``header_deadline``) and one
  for its body (``body_deadline``), whatever the pace of the bytes; at most
  ``max_unverified_per_address`` connections per client address may be open
  before their first request is verified, and ``max_connections`` in all.
  A connection over a cap is closed before any byte is answered, so the API
  knows that job did not start and queues it.
* **make the worker buffer a large body**: the signature is a header that
  covers the body's length and sha256 (runner/signing.py); it is checked
  before any of the body is read, and at most ``MAX_HEADER_BYTES`` are read
  before that. The body's hash is checked once it has arrived.
* **replay a captured request**: the signature expires, and the worker claims
  each run job id once in the shared store, so a replay (here or on another
  worker, or through the queue) answers 409 and runs nothing.

Refusals (401 bad or missing signature, 400 not a run job, 409 a job id
already taken, 411/413/431 sizes) answer before anything runs. 503 means the
job did not start either: every run slot is busy, or the Docker engine was
unreachable before the container started; the API then queues the job. A run
that started and then lost its engine answers 200 with status
``runner_unavailable``: sending it elsewhere could run it twice.

Bind it to a private address only, and use TLS (or a private network)
between the API and the worker.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chalicelib.errors import (BadRequest, Conflict, HeadersTooLarge, LengthRequired, NotFound, PayloadTooLarge, RequestTimeout,
                               RunnerUnavailable, SkillharborError, Unauthorized)  # fmt: skip
from chalicelib.runner.jobs import RunJob, parse_job
from chalicelib.runner.signing import SIGNATURE_HEADER, check_body, check_job, refusal_reason, verify_token

log = logging.getLogger("skillharbor.runner.direct")

RUN_PATH = "/run"
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_HEADER_BYTES = 32 * 1024  # read before the signature is checked (request line, headers, what the buffer reads ahead)
HEADER_DEADLINE_SECONDS = 5.0  # the request line and every header must arrive within this, however slowly they trickle
BODY_DEADLINE_SECONDS = 30.0  # the whole (signed) body must arrive within this
MAX_CONNECTIONS = 64  # open connections at once; more are closed at once
MAX_UNVERIFIED_PER_ADDRESS = 8  # open connections of one client address whose first request is not yet verified
WRITE_TIMEOUT_SECONDS = 10.0  # an answer the client does not take within this is dropped

#: (reason, message, client address, detail) → None: told of every refusal (the worker audits them)
RefusalHook = Callable[[str, str, str, dict[str, Any]], None]


class _ReadBudgetExceeded(Exception):
    pass


class _DeadlineReader(io.RawIOBase):
    """A socket's reading side under a deadline and a byte budget for the current phase of a request.

    Every ``recv`` waits at most until the deadline, so bytes trickled one at
    a time cannot stretch a phase; reading past the budget fails."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.deadline: float | None = None
        self.budget: int | None = None
        self.deadline_missed = False
        self.received = 0  # bytes read in the current phase

    def phase(self, seconds: float, budget: int | None) -> None:
        self.deadline, self.budget, self.deadline_missed = time.monotonic() + seconds, budget, False
        self.received = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self.budget is not None:
            if self.budget <= 0:
                raise _ReadBudgetExceeded()
            view = view[: self.budget]
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self.deadline_missed = True
                raise TimeoutError("the request did not arrive in time")
            self.sock.settimeout(remaining)
        try:
            count = self.sock.recv_into(view)
        except TimeoutError:
            self.deadline_missed = True
            raise
        if self.budget is not None:
            self.budget -= count
        self.received += count
        return count


class _WarningThrottle:
    """A warning per key at most every ``interval`` seconds, saying how many it stands for: a flood of hostile
    connections must not become a flood of log lines."""

    def __init__(self, interval: float = 10.0, max_keys: int = 10_000):
        self.interval, self.max_keys = interval, max_keys
        self._counts: Counter[Any] = Counter()
        self._logged: dict[Any, float] = {}
        self._lock = threading.Lock()

    def warn(self, key: Any, message: str, *args: Any) -> None:
        """Log ``message % (count, *args)``."""
        now = time.monotonic()
        with self._lock:
            if len(self._logged) > self.max_keys:
                self._logged.clear()
            self._counts[key] += 1
            if now - self._logged.get(key, -self.interval) < self.interval:
                return
            self._logged[key] = now
            count = self._counts.pop(key)
        log.warning(message, count, *args)


class DirectRunServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], execute: Any, secret: str, *, slots: threading.Semaphore | None = None,
                 after_answer: Callable[[RunJob, dict[str, Any]], None] | None = None, refused: RefusalHook | None = None,
                 header_deadline: float = HEADER_DEADLINE_SECONDS, body_deadline: float = BODY_DEADLINE_SECONDS,
                 max_connections: int = MAX_CONNECTIONS, max_unverified_per_address: int = MAX_UNVERIFIED_PER_ADDRESS):  # fmt: skip
        """``execute(job) -> result document`` runs one job. It raises RunnerUnavailable when the job did not
        start, Conflict when its id was already taken; ``after_answer(job, document)`` runs once the answer is
        sent (the worker records the result and the audit event inside ``execute`` instead, before the answer,
        so that the answer never gets ahead of the record).

        A job runs only while it holds one of ``slots`` (the worker shares
        them with its queue threads); with none free the answer is 503 and
        the API queues the job, so a burst waits in SQS instead of starting
        more containers than the host can run."""
        if not secret:
            raise ValueError("the direct run endpoint needs a secret (SKILLHARBOR_RUNNER_SECRET)")
        self.execute, self.secret, self.after_answer, self.refused = execute, secret, after_answer, refused
        self.slots = slots if slots is not None else threading.BoundedSemaphore(4)
        self.header_deadline, self.body_deadline = header_deadline, body_deadline
        self.max_connections, self.max_unverified_per_address = max_connections, max_unverified_per_address
        self._lock = threading.Condition()
        self._open = 0
        self._unverified: dict[Any, str] = {}  # connection → client address, until its first request is verified
        self._unverified_per_address: Counter[str] = Counter()
        self.warnings = _WarningThrottle()
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="runner-direct", daemon=True)
        thread.start()
        return thread

    def process_request(self, request: Any, client_address: Any) -> None:
        address = str(client_address[0])
        with self._lock:
            over = self._open >= self.max_connections or self._unverified_per_address[address] >= self.max_unverified_per_address
            if not over:
                self._open += 1
                self._unverified[request] = address
                self._unverified_per_address[address] += 1
        if over:  # closed before any byte: the API knows the job did not start here and queues it
            self._note_turned_away(address)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def _note_turned_away(self, address: str) -> None:
        self.warnings.warn(("capped", address), "closed %d connection(s) from %s: too many open connections", address)

    def verified(self, request: Any) -> None:
        """The connection's first request carried a valid signature: it no longer counts against its address."""
        with self._lock:
            self._forget_unverified(request)

    def _forget_unverified(self, request: Any) -> None:
        address = self._unverified.pop(request, None)
        if address is not None:
            self._unverified_per_address[address] -= 1
            if self._unverified_per_address[address] <= 0:
                del self._unverified_per_address[address]

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._forget_unverified(request)
                self._open -= 1
                self._lock.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait until the requests being served have answered (after ``shutdown``)."""
        with self._lock:
            return self._lock.wait_for(lambda: self._open == 0, timeout)


class _Handler(BaseHTTPRequestHandler):
    server: DirectRunServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the socket stays open: reads go through the deadline reader instead
        self.reader = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self.reader)

    def handle_one_request(self) -> None:
        self.reader.phase(self.server.header_deadline, MAX_HEADER_BYTES)
        try:
            super().handle_one_request()
        except _ReadBudgetExceeded:
            self._fail(HeadersTooLarge(f"request headers over {MAX_HEADER_BYTES} bytes"))
            self.close_connection = True
        if self.reader.deadline_missed and self.reader.received:  # none at all: a kept-alive connection left idle
            log.info("closed a connection from %s: its request did not arrive in time", self.client_address[0])

    def do_GET(self) -> None:
        if self.path == "/health":
            self._answer(200, {"ok": True})
        else:
            self._fail(NotFound(f"no route {self.path[:200]}"))

    def do_POST(self) -> None:
        if self.path != RUN_PATH:
            self._fail(NotFound(f"no route {self.path[:200]}"))
            return
        try:
            claims = verify_token(self.server.secret, self.headers.get(SIGNATURE_HEADER))
            if claims.type != "run":
                raise BadRequest(f"only run jobs are taken here, not {claims.type}")
        except Unauthorized as error:
            self._refuse(error)
            return
        except BadRequest as error:
            self._fail(error)
            return
        length = self._content_length(claims.length)
        if length is None:
            return
        self.server.verified(self.request)
        body = self._body(length)
        if body is None:
            return
        try:
            check_body(claims, body)
            job = parse_job(body.decode("utf-8", "replace"))
            check_job(claims, job)
        except Unauthorized as error:
            self._refuse(error, job_id=claims.job_id)
            return
        except BadRequest as error:
            self._fail(error)
            return
        assert isinstance(job, RunJob)  # check_job: the signed type is "run"
        self._run(job)

    def _run(self, job: RunJob) -> None:
        if not self.server.slots.acquire(blocking=False):
            self._fail(RunnerUnavailable("runner busy: every run slot is taken"))
            return
        try:
            document = self.server.execute(job)
        except (RunnerUnavailable, Conflict) as error:  # Conflict: a replay, or the queued copy got it first; nothing ran
            self._fail(error)
            return
        except Exception:  # the run may have happened: the caller must not resend; details stay in this log
            log.exception("direct run of %s failed", job.job_id)
            self._fail(SkillharborError("the runner failed during the job; see the runner's log"))
            return
        finally:
            self.server.slots.release()
        self._answer(200, document)
        if self.server.after_answer is not None:
            try:
                self.server.after_answer(job, document)
            except Exception:
                log.exception("recording the outcome of direct run %s failed", job.job_id)

    def _content_length(self, signed_length: int) -> int | None:
        """The body's declared length, once it is acceptable; None once an error has been answered."""
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._fail(LengthRequired("Content-Length is required"))
            return None
        if length < 0:
            self._fail(BadRequest("Content-Length must not be negative"))
            return None
        if length > MAX_BODY_BYTES:
            self._fail(PayloadTooLarge(f"body over {MAX_BODY_BYTES} bytes"))
            return None
        if length != signed_length:
            self._fail(BadRequest("Content-Length is not the length the signature covers"))
            return None
        return length

    def _body(self, length: int) -> bytes | None:
        """The request body, or None once an error has been answered."""
        self.reader.phase(self.server.body_deadline, None)  # signed, so its length is the one the API meant
        try:
            body = self.rfile.read(length)
        except OSError:  # TimeoutError included: the deadline passed
            self._fail(RequestTimeout(f"the body did not arrive within {self.server.body_deadline:g}s"))
            return None
        if len(body) != length:
            self._fail(BadRequest("the body ended before Content-Length"))
            return None
        return body

    def _fail(self, error: SkillharborError) -> None:
        """Answer ``error`` with the status its class declares."""
        self._answer(error.http_status, {"message": str(error)})

    def _refuse(self, error: Unauthorized, **detail: Any) -> None:
        reason, message = refusal_reason(error), str(error)
        self.server.warnings.warn(("refused", self.client_address[0], reason), "refused %d direct run(s) from %s: %s",
                                  self.client_address[0], message)  # fmt: skip
        # recorded before the answer, as a run's end is: whoever hears the 401 can find it in the audit trail
        if self.server.refused is not None:
            try:
                self.server.refused(reason, message, str(self.client_address[0]), detail)
            except Exception:
                log.exception("recording a refused direct run failed")
        self._fail(error)

    def _answer(self, status: int, document: dict[str, Any]) -> None:
        payload = json.dumps(document).encode()
        if status != 200:
            self.close_connection = True  # whatever the client sent after an error is not read as a request
        try:
            self.connection.settimeout(WRITE_TIMEOUT_SECONDS)  # not what the last read had left of its deadline
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if status != 200:
                self.send_header("Connection", "close")
            # head and body in one send: two meet Nagle and the client's delayed ACK on a kept connection (40 ms)
            self._headers_buffer.extend((b"\r\n", payload))
            self.flush_headers()
        except OSError:
            pass  # the client went away

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.client_address[0], format % args)
