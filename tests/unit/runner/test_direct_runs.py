"""The direct run path: signed requests, the worker's endpoint, and when the API may fall back to the queue."""

from __future__ import annotations

import http.client
import json
import socket
import time

import pytest

from chalicelib.errors import RunnerUnavailable, Unauthorized
from chalicelib.packages.pins import Pin
from chalicelib.runner.direct import MAX_BODY_BYTES, DirectRunServer
from chalicelib.runner.jobs import RunJob
from chalicelib.runner.spec import RunResult, RunStatus
from chalicelib.workflow.direct_run import (
    SIGNATURE_HEADER,
    DirectRunClient,
    DirectRunLost,
    DirectRunRefused,
    DirectRunUnreachable,
    signature,
    verify,
)

SECRET = "s3cret-for-direct-runs-0123456789"


def _job(**fields) -> RunJob:
    return RunJob(**{"skill_id": "hello", "version": "v1", "image_tag": None, "pins": [], "entrypoint": "execute",
                     "code": "def execute():\n    return 1\n", **fields})


# --- signatures ----------------------------------------------------------------------


def test_a_signature_verifies_only_for_its_body_secret_and_time() -> None:
    body = b'{"type": "run"}'
    header = signature(SECRET, body)
    verify(SECRET, header, body)
    with pytest.raises(Unauthorized, match="does not match"):
        verify(SECRET, header, body + b" ")
    with pytest.raises(Unauthorized, match="does not match"):
        verify("another-secret-of-enough-length", header, body)
    with pytest.raises(Unauthorized, match="more than 300s away"):
        verify(SECRET, signature(SECRET, body, int(time.time()) - 301), body)
    for bad in (None, "", "v1=abc", "t=soon,v1=abc"):
        with pytest.raises(Unauthorized):
            verify(SECRET, bad, body)


# --- the endpoint and its client -------------------------------------------------------


class Recorder:
    def __init__(self, outcome=None):
        self.jobs: list[RunJob] = []
        self.outcome = outcome

    def __call__(self, job: RunJob) -> RunResult:
        self.jobs.append(job)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return RunResult(status=RunStatus.OK, output={"ran": job.job_id}, duration_ms=3)


@pytest.fixture
def serve():
    servers = []

    def start(execute, **kwargs) -> str:
        server = DirectRunServer(("127.0.0.1", 0), execute, SECRET, **kwargs)
        server.start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _raw(url: str, headers: dict, body: bytes = b"") -> tuple[int, str]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("POST", "/run")
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders(body)
    response = connection.getresponse()
    answer = (response.status, json.loads(response.read())["message"])
    connection.close()
    return answer


def test_a_signed_job_runs_once_and_its_result_comes_back(serve) -> None:
    execute = Recorder()
    client = DirectRunClient(serve(execute), SECRET)
    job = _job()
    body = job.model_dump_json().encode()
    result = client.run(body, timeout=10)
    assert result["status"] == "ok" and result["output"] == {"ran": job.job_id}
    assert [j.job_id for j in execute.jobs] == [job.job_id]
    with pytest.raises(DirectRunLost, match="409.*already taken"):
        client.run(body, timeout=10)  # a replay (or a resend) never runs twice, and is never queued either
    assert len(execute.jobs) == 1


def test_refusals_run_nothing_and_say_why(serve) -> None:
    execute = Recorder()
    url = serve(execute)
    with pytest.raises(DirectRunRefused, match="401.*SKILLHARBOR_RUNNER_SECRET"):
        DirectRunClient(url, "a-different-secret-0123456789").run(_job().model_dump_json().encode(), timeout=10)
    with pytest.raises(DirectRunRefused, match="400.*runner job message is invalid"):
        DirectRunClient(url, SECRET).run(b'{"type": "run", "code": 5}', timeout=10)
    with pytest.raises(DirectRunRefused, match="404"):
        DirectRunClient(url + "/prefix", SECRET).run(_job().model_dump_json().encode(), timeout=10)
    signed = {SIGNATURE_HEADER: signature(SECRET, b"x")}
    assert _raw(url, {**signed, "Content-Length": str(MAX_BODY_BYTES + 1)}, b"x" * 1024)[0] == 413
    assert _raw(url, {**signed, "Content-Length": "-1"}, b"x" * 1024) == (400, "Content-Length must not be negative")
    assert _raw(url, signed, b"") == (411, "Content-Length is required")
    assert execute.jobs == []


def test_an_engine_outage_lets_the_queue_take_the_job_but_a_crash_mid_run_does_not(serve) -> None:
    job_json = _job().model_dump_json().encode()
    down = DirectRunClient(serve(Recorder(RunnerUnavailable("Docker engine unreachable"))), SECRET)
    with pytest.raises(DirectRunUnreachable, match="503.*Docker engine unreachable"):
        down.run(job_json, timeout=10)
    crashed = DirectRunClient(serve(Recorder(RuntimeError("disk full at /var/lib/secret-path"))), SECRET)
    with pytest.raises(DirectRunLost, match="500") as lost:
        crashed.run(job_json, timeout=10)
    assert "secret-path" not in str(lost.value)  # internals stay in the runner's log


def test_an_answer_that_never_comes_is_lost_not_resent(serve) -> None:
    import threading

    release = threading.Event()

    def hangs(job: RunJob) -> RunResult:
        release.wait(10)
        return RunResult(status=RunStatus.OK)

    client = DirectRunClient(serve(hangs), SECRET)
    try:
        with pytest.raises(DirectRunLost, match="did not answer"):
            client.run(_job().model_dump_json().encode(), timeout=0.5)
    finally:
        release.set()


def test_nothing_listening_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DirectRunUnreachable, match="unreachable"):
        DirectRunClient(f"http://127.0.0.1:{port}", SECRET).run(b"{}", timeout=5)


def test_the_server_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="SKILLHARBOR_RUNNER_SECRET"):
        DirectRunServer(("127.0.0.1", 0), Recorder(), "")


def test_a_busy_runner_turns_extra_jobs_away_to_the_queue(serve) -> None:
    import threading

    release = threading.Event()

    def slow(job: RunJob) -> RunResult:
        release.wait(10)
        return RunResult(status=RunStatus.OK, output=job.job_id)

    slots = threading.BoundedSemaphore(1)
    client = DirectRunClient(serve(slow, slots=slots), SECRET)
    first = threading.Thread(target=client.run, args=(_job().model_dump_json().encode(), 10))
    first.start()
    deadline = time.monotonic() + 5
    while slots._value and time.monotonic() < deadline:  # wait until the first job holds the slot
        time.sleep(0.01)
    try:
        with pytest.raises(DirectRunUnreachable, match="503.*runner busy"):
            client.run(_job().model_dump_json().encode(), timeout=10)
    finally:
        release.set()
        first.join(10)


# --- the API side: direct first, the queue only when the job did not start ---------------


class CapturingQueue:
    def __init__(self):
        self.sent: list[RunJob] = []

    def send(self, job) -> None:
        self.sent.append(job)


class NoImages:
    def get_image(self, tag):
        return None


def _service(queue):
    from chalicelib.workflow.execution import ExecutionService

    service = ExecutionService(skills=None, blobs=None, images=NoImages(), checker=None, queue=queue)
    service.wait_for_result = lambda job_id, timeout: {"status": "ok", "output": "via the queue"}
    return service


@pytest.fixture
def runner_at(monkeypatch):
    def point(url: str, secret: str = SECRET) -> None:
        monkeypatch.setenv("SKILLHARBOR_RUNNER_URL", url)
        monkeypatch.setenv("SKILLHARBOR_RUNNER_SECRET", secret)

    return point


def test_the_api_runs_directly_when_a_runner_url_is_set(serve, runner_at) -> None:
    execute = Recorder()
    runner_at(serve(execute))
    queue = CapturingQueue()
    job = _job(pins=[Pin(name="six", version="1.16.0", sha256="a" * 64, direct=True)])
    result = _service(queue).run(job)
    assert result.output == {"ran": job.job_id} and queue.sent == []


def test_the_api_queues_a_job_that_did_not_start(serve, runner_at) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for url in (f"http://127.0.0.1:{port}", serve(Recorder(RunnerUnavailable("engine down")))):
        runner_at(url)
        queue = CapturingQueue()
        job = _job()
        result = _service(queue).run(job)
        assert result.output == "via the queue" and [j.job_id for j in queue.sent] == [job.job_id]


def test_the_api_never_queues_a_job_the_runner_took_or_refused(serve, runner_at, caplog) -> None:
    cases = {
        "crashed mid-run": (serve(Recorder(RuntimeError("boom"))), SECRET, "its answer was lost"),
        "wrong secret": (serve(Recorder()), "not-the-runner-secret-0123456", "refused the job"),
        "wrong path": (serve(Recorder()) + "/api", SECRET, "refused the job"),
    }
    for name, (url, secret, says) in cases.items():
        runner_at(url, secret)
        queue = CapturingQueue()
        result = _service(queue).run(_job())
        assert result.status == RunStatus.RUNNER_UNAVAILABLE and says in result.error, name
        assert queue.sent == [], name
    assert "check SKILLHARBOR_RUNNER_URL" in caplog.text  # operators get the details


def test_runner_settings_are_checked_up_front(monkeypatch) -> None:
    from pydantic import ValidationError

    from chalicelib.settings import get_settings

    monkeypatch.setenv("SKILLHARBOR_RUNNER_URL", "http://127.0.0.1:8001")
    monkeypatch.delenv("SKILLHARBOR_RUNNER_SECRET", raising=False)
    with pytest.raises(ValidationError, match="SKILLHARBOR_RUNNER_SECRET"):
        get_settings()
    monkeypatch.setenv("SKILLHARBOR_RUNNER_SECRET", SECRET)
    for bad in ("127.0.0.1:8001", "ftp://runner:8001", "http://:8001"):
        monkeypatch.setenv("SKILLHARBOR_RUNNER_URL", bad)
        with pytest.raises(ValidationError, match="must be an http"):
            get_settings()
    monkeypatch.delenv("SKILLHARBOR_RUNNER_URL")
    monkeypatch.setenv("SKILLHARBOR_RUNNER_LISTEN", "0.0.0.0")
    with pytest.raises(ValidationError, match="host:port"):
        get_settings()
