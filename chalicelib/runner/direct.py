"""The runner worker's direct run endpoint (see workflow/direct_run.py).

``POST /run`` takes a signed RunJob and answers with its RunResult once the
run is over; ``GET /health`` says the worker is up. Refusals (401 bad
signature, 400 not a run job, 409 a job id already taken, 411/413 body
length) answer before anything runs. 503 means the job did not start
either: every run slot is busy, or the Docker engine was unreachable
before the container started; the API then queues the job. A run that
started and then lost its engine answers 200 with status
``runner_unavailable``: sending it elsewhere could run it twice.

Bind it to a private address only, and use TLS (or a private network)
between the API and the worker: the replay check is per worker.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chalicelib.errors import BadRequest, RunnerUnavailable, Unauthorized
from chalicelib.runner.jobs import RunJob, parse_job
from chalicelib.workflow.direct_run import MAX_SKEW_SECONDS, RUN_PATH, SIGNATURE_HEADER, verify

log = logging.getLogger("skillharbor.runner.direct")

MAX_BODY_BYTES = 16 * 1024 * 1024
BODY_DEADLINE_SECONDS = 30.0  # the whole body must arrive within this: a trickling client cannot hold a thread
MAX_CONNECTIONS = 64  # open connections at once; more are closed at once


class SeenJobs:
    """Job ids taken within the signature window: a replayed request is refused."""

    def __init__(self, window_seconds: float = 2 * MAX_SKEW_SECONDS):
        self.window = window_seconds
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_time(self, job_id: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > 1000:
                self._seen = {k: t for k, t in self._seen.items() if now - t < self.window}
            if job_id in self._seen:
                return False
            self._seen[job_id] = now
            return True


class DirectRunServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], execute: Any, secret: str, *, slots: threading.Semaphore | None = None):
        """``execute(job) -> RunResult`` runs one job; it raises RunnerUnavailable when it could not start it.

        A job runs only while it holds one of ``slots`` (the worker shares
        them with its queue threads); with none free the answer is 503 and
        the API queues the job, so a burst waits in SQS instead of starting
        more containers than the host can run."""
        if not secret:
            raise ValueError("the direct run endpoint needs a secret (SKILLHARBOR_RUNNER_SECRET)")
        self.execute, self.secret, self.seen = execute, secret, SeenJobs()
        self.slots = slots if slots is not None else threading.BoundedSemaphore(4)
        self.connections = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._in_flight = 0
        self._in_flight_lock = threading.Condition()
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
        if not self.connections.acquire(blocking=False):
            self.shutdown_request(request)  # too many open connections: drop this one
            return
        with self._in_flight_lock:
            self._in_flight += 1
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.release()
            with self._in_flight_lock:
                self._in_flight -= 1
                self._in_flight_lock.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait until the requests being served have answered (after ``shutdown``)."""
        with self._in_flight_lock:
            return self._in_flight_lock.wait_for(lambda: self._in_flight == 0, timeout)


class _Handler(BaseHTTPRequestHandler):
    server: DirectRunServer
    protocol_version = "HTTP/1.1"
    timeout = 10  # per socket read/write (the run itself is not bounded by it)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._answer(200, {"ok": True})
        else:
            self._answer(404, {"message": f"no route {self.path[:200]}"})

    def do_POST(self) -> None:
        if self.path != RUN_PATH:
            self._answer(404, {"message": f"no route {self.path[:200]}"})
            return
        body = self._body()
        if body is None:
            return
        try:
            verify(self.server.secret, self.headers.get(SIGNATURE_HEADER), body)
            job = parse_job(body.decode("utf-8", "replace"))
            if not isinstance(job, RunJob):
                raise BadRequest(f"only run jobs are taken here, not {job.type}")
        except Unauthorized as error:
            log.warning("refused a direct run from %s: %s", self.client_address[0], error)
            self._answer(401, {"message": str(error)})
            return
        except BadRequest as error:
            self._answer(400, {"message": str(error)})
            return
        # marked before anything else: a replay is refused even if this attempt ends busy (then it is queued)
        if not self.server.seen.first_time(job.job_id):
            self._answer(409, {"message": f"job {job.job_id} was already taken"})
            return
        if not self.server.slots.acquire(blocking=False):
            self._answer(503, {"message": "runner busy: every run slot is taken"})
            return
        try:
            result = self.server.execute(job)
        except RunnerUnavailable as error:
            self._answer(503, {"message": str(error)})
            return
        except Exception:  # the run may have happened: the caller must not resend; details stay in this log
            log.exception("direct run of %s failed", job.job_id)
            self._answer(500, {"message": "the runner failed during the job; see the runner's log"})
            return
        finally:
            self.server.slots.release()
        self._answer(200, result.model_dump(mode="json"))

    def _body(self) -> bytes | None:
        """The request body, or None once an error has been answered."""
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._answer(411, {"message": "Content-Length is required"})
            return None
        if length < 0:
            self._answer(400, {"message": "Content-Length must not be negative"})
            return None
        if length > MAX_BODY_BYTES:
            self._answer(413, {"message": f"body over {MAX_BODY_BYTES} bytes"})
            return None
        deadline = time.monotonic() + BODY_DEADLINE_SECONDS
        chunks, remaining = [], length
        while remaining:
            if time.monotonic() > deadline:
                self._answer(408, {"message": f"the body did not arrive within {BODY_DEADLINE_SECONDS:g}s"})
                return None
            try:
                chunk = self.rfile.read1(min(remaining, 1 << 16))
            except OSError:  # a read timed out, or the client went away
                self._answer(408, {"message": "the body did not arrive in time"})
                return None
            if not chunk:
                self._answer(400, {"message": "the body ended before Content-Length"})
                return None
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _answer(self, status: int, document: dict[str, Any]) -> None:
        payload = json.dumps(document).encode()
        if status != 200:
            self.close_connection = True  # whatever the client sent after an error is not read as a request
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if status != 200:
            self.send_header("Connection", "close")
        self.end_headers()
        try:
            self.wfile.write(payload)
        except OSError:
            pass  # the client went away

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.client_address[0], format % args)
