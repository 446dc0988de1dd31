"""The runner worker's direct run endpoint (see workflow/direct_run.py).

``POST /run`` takes a signed RunJob and answers with its RunResult once the
run is over; ``GET /health`` says the worker is up. It answers 401 for a
bad signature, 409 for a job id it has already taken (a replay), 400 for a
body that is not a run job, 413 for one over the size limit and 503 when
the Docker engine is unreachable or every run slot is busy; none of these
ran anything, so the API may hand the job to the queue instead. Bind it to a private address only.
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

    def __init__(self, address: tuple[str, int], execute: Any, secret: str, *, max_running: int = 4):
        """``execute(job) -> RunResult`` runs one job; it raises RunnerUnavailable when it cannot.

        At most ``max_running`` jobs run here at once; past that the answer is
        503 and the API queues the job, so a burst waits in SQS instead of
        starting more containers than the host can run."""
        if not secret:
            raise ValueError("the direct run endpoint needs a secret (SKILLHARBOR_RUNNER_SECRET)")
        self.execute, self.secret, self.seen = execute, secret, SeenJobs()
        self.slots = threading.BoundedSemaphore(max(1, max_running))
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="runner-direct", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: DirectRunServer
    protocol_version = "HTTP/1.1"
    timeout = 60  # per socket read/write: a stalled client cannot hold a thread forever (the run itself is not bounded by it)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._answer(200, {"ok": True})
        else:
            self._answer(404, {"message": f"no route {self.path}"})

    def do_POST(self) -> None:
        if self.path != RUN_PATH:
            self._answer(404, {"message": f"no route {self.path}"})
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._answer(411, {"message": "Content-Length is required"})
            return
        if length > MAX_BODY_BYTES:
            self._answer(413, {"message": f"body over {MAX_BODY_BYTES} bytes"})
            return
        body = self.rfile.read(length)
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
        if not self.server.slots.acquire(blocking=False):
            self._answer(503, {"message": "runner busy: every direct slot is running a job"})
            return
        try:
            if not self.server.seen.first_time(job.job_id):
                self._answer(409, {"message": f"job {job.job_id} was already taken"})
                return
            try:
                result = self.server.execute(job)
            except RunnerUnavailable as error:
                self._answer(503, {"message": str(error)})
                return
            except Exception as error:  # the run may have happened: the caller must not resend
                log.exception("direct run of %s failed", job.job_id)
                self._answer(500, {"message": f"runner error: {error}"})
                return
            self._answer(200, result.model_dump(mode="json"))
        finally:
            self.server.slots.release()

    def _answer(self, status: int, document: dict[str, Any]) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.client_address[0], format % args)
