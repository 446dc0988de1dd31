"""The worker's direct run endpoint over a real socket: signed jobs, slow and hostile clients, and what the client
concludes from each answer (whether the API may fall back to the queue)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest

from chalicelib.errors import Conflict, RunnerUnavailable
from chalicelib.runner.direct import MAX_BODY_BYTES, MAX_HEADER_BYTES, DirectRunServer
from chalicelib.runner.jobs import RunJob
from chalicelib.runner.signing import SIGNATURE_HEADER, sign
from chalicelib.workflow.direct_run import (
    DirectRunClient,
    DirectRunLost,
    DirectRunNoAnswerYet,
    DirectRunRefused,
    DirectRunUnreachable,
)

SECRET = "s3cret-for-direct-runs-0123456789"


def _job(**fields) -> RunJob:
    return RunJob(**{"skill_id": "hello", "version": "v1", "image_tag": None, "pins": [], "entrypoint": "execute",
                     "code": "def execute():\n    return 1\n", **fields})


def _signed(job: RunJob, secret: str = SECRET) -> tuple[bytes, str]:
    body = job.model_dump_json().encode()
    return body, sign(secret, "run", job.job_id, body, lifetime_seconds=60)


class Recorder:
    def __init__(self, outcome=None):
        self.jobs: list[RunJob] = []
        self.outcome = outcome
        self.recorded: list[str] = []

    def __call__(self, job: RunJob) -> dict:
        self.jobs.append(job)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return {"status": "ok", "output": {"ran": job.job_id}, "duration_ms": 3}

    def after(self, job: RunJob, document: dict) -> None:
        self.recorded.append(job.job_id)


@pytest.fixture
def serve():
    servers = []

    def start(execute, **kwargs) -> DirectRunServer:
        server = DirectRunServer(("127.0.0.1", 0), execute, SECRET, **kwargs)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _port(server: DirectRunServer) -> int:
    return server.server_address[1]


def _raw(server: DirectRunServer, headers: dict, body: bytes = b"") -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", _port(server), timeout=10)
    connection.putrequest("POST", "/run")
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders(body)
    response = connection.getresponse()
    answer = (response.status, json.loads(response.read())["message"])
    connection.close()
    return answer


def _closed_by_server(sock: socket.socket, *, trickle: bytes = b"", limit: float = 20.0) -> bytes:
    """Keep trickling bytes (one every 50 ms) until the server closes the connection; what it answered.
    Fails if the server held the connection for ``limit`` seconds (the old per-read timeout never would close it)."""
    sock.settimeout(0.05)
    received, start, position = b"", time.monotonic(), 0
    while time.monotonic() - start < limit:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            chunk = None
        except ConnectionResetError:
            return received
        if chunk == b"":
            return received
        if chunk:
            received += chunk
            continue
        if trickle:
            try:
                sock.sendall(trickle[position % len(trickle):position % len(trickle) + 1])
            except OSError:
                return received
            position += 1
    raise AssertionError(f"the server held a trickling connection for {limit}s")


# --- signed jobs -------------------------------------------------------------------------------------


def test_a_signed_job_runs_and_its_result_comes_back_then_is_recorded(serve) -> None:
    execute = Recorder()
    server = serve(execute, after_answer=execute.after)
    job = _job()
    result = DirectRunClient(server.url).run(*_signed(job), timeout=10)
    assert result["status"] == "ok" and result["output"] == {"ran": job.job_id}
    deadline = time.monotonic() + 5
    while not execute.recorded and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [j.job_id for j in execute.jobs] == execute.recorded == [job.job_id]


def test_refusals_run_nothing_and_say_why(serve) -> None:
    execute = Recorder()
    refusals: list[tuple[str, str]] = []
    server = serve(execute, refused=lambda reason, message, client, detail: refusals.append((reason, client)))
    client = DirectRunClient(server.url)
    with pytest.raises(DirectRunRefused, match="401.*SKILLHARBOR_RUNNER_SECRET"):
        client.run(*_signed(_job(), "a-different-secret-0123456789"), timeout=10)
    with pytest.raises(DirectRunRefused, match="401.*not signed"):
        client.run(_job().model_dump_json().encode(), "", timeout=10)
    with pytest.raises(DirectRunRefused, match="404"):
        DirectRunClient(server.url + "/prefix").run(*_signed(_job()), timeout=10)
    build = b'{"type": "build", "skill_id": "x"}'
    with pytest.raises(DirectRunRefused, match="400.*only run jobs"):
        client.run(build, sign(SECRET, "build", "job-1", build, lifetime_seconds=60), timeout=10)
    body, token = _signed(_job())
    assert _raw(server, {SIGNATURE_HEADER: token}, b"") == (411, "Content-Length is required")
    assert _raw(server, {SIGNATURE_HEADER: token, "Content-Length": str(len(body) + 1)}, body + b" ")[0] == 400
    assert _raw(server, {SIGNATURE_HEADER: token, "Content-Length": str(MAX_BODY_BYTES + 1)})[0] == 413
    assert execute.jobs == []
    assert refusals == [("forged", "127.0.0.1"), ("unsigned", "127.0.0.1")]


def test_the_signature_is_checked_before_any_of_the_body_is_read(serve) -> None:
    """A client without the secret announces 16 MiB and sends none of it: the 401 comes back at once."""
    execute = Recorder()
    server = serve(execute)
    for token in ("", sign("not-the-runner-secret-0123456", "run", "run-x", b"x" * MAX_BODY_BYTES, lifetime_seconds=60)):
        with socket.create_connection(("127.0.0.1", _port(server)), timeout=10) as sock:
            sock.sendall(f"POST /run HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_BODY_BYTES}\r\n{SIGNATURE_HEADER}: {token}\r\n\r\n".encode())
            answer = sock.recv(4096)
        assert answer.startswith((b"HTTP/1.0 401", b"HTTP/1.1 401")), answer
    assert execute.jobs == []


def test_a_body_that_is_not_the_signed_one_is_refused(serve) -> None:
    execute = Recorder()
    server = serve(execute)
    body, token = _signed(_job())
    tampered = body.replace(b"return 1", b"return 2")
    assert len(tampered) == len(body)
    status, message = _raw(server, {SIGNATURE_HEADER: token, "Content-Length": str(len(tampered))}, tampered)
    assert (status, message) == (401, "the job's body is not the one that was signed") and execute.jobs == []


def test_oversized_headers_are_refused_before_the_signature(serve) -> None:
    server = serve(Recorder())
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=10) as sock:
        sock.sendall(b"POST /run HTTP/1.1\r\n" + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(60)) + b"\r\n")
        answer = _closed_by_server(sock)
    assert b" 431 " in answer.split(b"\r\n")[0] and MAX_HEADER_BYTES < 60 * 1000


# --- slow clients --------------------------------------------------------------------------------------


def test_trickled_headers_are_cut_off_at_the_total_deadline(serve) -> None:
    """One header byte every 50 ms: each read succeeds quickly, so only a deadline for all the headers ends it."""
    execute = Recorder()
    server = serve(execute, header_deadline=1.0)
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=10) as sock:
        answer = _closed_by_server(sock, trickle=b"POST /run HTTP/1.1\r\nX-Slow: " + b"a" * 10_000)
    assert answer == b"" and execute.jobs == []


def test_a_trickled_signed_body_is_cut_off_at_its_deadline(serve) -> None:
    execute = Recorder()
    server = serve(execute, body_deadline=1.0)
    body, token = _signed(_job())
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=10) as sock:
        sock.sendall(f"POST /run HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{SIGNATURE_HEADER}: {token}\r\n\r\n".encode())
        answer = _closed_by_server(sock, trickle=body)
    assert b" 408 " in answer.split(b"\r\n")[0] and execute.jobs == []


def test_one_address_cannot_hold_more_than_its_unverified_connections(serve) -> None:
    """Idle connections from one address fill its quota: further ones are closed before any byte (so the API
    queues its job), and once the deadline frees them the endpoint serves again."""
    execute = Recorder()
    server = serve(execute, header_deadline=2.0, max_unverified_per_address=3)
    client = DirectRunClient(server.url)
    idle = [socket.create_connection(("127.0.0.1", _port(server)), timeout=10) for _ in range(3)]
    try:
        deadline = time.monotonic() + 5
        while server._unverified_per_address.get("127.0.0.1", 0) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(DirectRunUnreachable):  # closed before any byte (or a broken pipe while sending)
            client.run(*_signed(_job()), timeout=10)
        assert execute.jobs == []
        for sock in idle:  # the header deadline closes them
            assert _closed_by_server(sock) == b""
    finally:
        for sock in idle:
            sock.close()
    job = _job()
    assert client.run(*_signed(job), timeout=10)["output"] == {"ran": job.job_id}


def test_verified_requests_do_not_count_against_their_address(serve) -> None:
    """With a quota of one unverified connection, one address still runs several jobs at once: a connection
    stops counting once its request is verified."""
    release = threading.Event()

    def slow(job: RunJob) -> dict:
        release.wait(10)
        return {"status": "ok", "output": job.job_id}

    server = serve(slow, slots=threading.BoundedSemaphore(4), max_unverified_per_address=1)
    client = DirectRunClient(server.url)
    answers: list[dict] = []
    running = []
    try:
        for started in range(1, 4):
            thread = threading.Thread(target=lambda: answers.append(client.run(*_signed(_job()), 10)))
            thread.start()
            running.append(thread)
            deadline = time.monotonic() + 5
            while server.slots._value > 4 - started and time.monotonic() < deadline:  # it holds a run slot
                time.sleep(0.01)
        assert server.slots._value == 1 and not server._unverified_per_address
    finally:
        release.set()
        for thread in running:
            thread.join(10)
    assert len(answers) == 3


# --- what the client concludes ----------------------------------------------------------------------------


def test_an_engine_outage_lets_the_queue_take_the_job_but_a_crash_mid_run_does_not(serve) -> None:
    down = DirectRunClient(serve(Recorder(RunnerUnavailable("Docker engine unreachable"))).url)
    with pytest.raises(DirectRunUnreachable, match="503.*Docker engine unreachable"):
        down.run(*_signed(_job()), timeout=10)
    crashed = DirectRunClient(serve(Recorder(RuntimeError("disk full at /var/lib/secret-path"))).url)
    with pytest.raises(DirectRunLost, match="500") as lost:
        crashed.run(*_signed(_job()), timeout=10)
    assert "secret-path" not in str(lost.value)  # internals stay in the runner's log
    taken = DirectRunClient(serve(Recorder(Conflict("run job x was already taken"))).url)
    with pytest.raises(DirectRunLost, match="409.*already taken"):
        taken.run(*_signed(_job()), timeout=10)


def test_no_answer_within_the_wait_is_pending_not_lost(serve) -> None:
    release = threading.Event()

    def hangs(job: RunJob) -> dict:
        release.wait(10)
        return {"status": "ok"}

    client = DirectRunClient(serve(hangs).url)
    try:
        with pytest.raises(DirectRunNoAnswerYet, match="did not answer within"):
            client.run(*_signed(_job()), timeout=0.5)
    finally:
        release.set()


def test_nothing_listening_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DirectRunUnreachable, match="unreachable"):
        DirectRunClient(f"http://127.0.0.1:{port}").run(b"{}", "", timeout=5)


def test_the_server_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="SKILLHARBOR_RUNNER_SECRET"):
        DirectRunServer(("127.0.0.1", 0), Recorder(), "")


def test_a_busy_runner_turns_extra_jobs_away_to_the_queue(serve) -> None:
    release = threading.Event()

    def slow(job: RunJob) -> dict:
        release.wait(10)
        return {"status": "ok", "output": job.job_id}

    slots = threading.BoundedSemaphore(1)
    client = DirectRunClient(serve(slow, slots=slots).url)
    first = threading.Thread(target=client.run, args=(*_signed(_job()), 10))
    first.start()
    deadline = time.monotonic() + 5
    while slots._value and time.monotonic() < deadline:  # wait until the first job holds the slot
        time.sleep(0.01)
    try:
        with pytest.raises(DirectRunUnreachable, match="503.*runner busy"):
            client.run(*_signed(_job()), timeout=10)
    finally:
        release.set()
        first.join(10)


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


# --- connection reuse -----------------------------------------------------------------------------------------


def test_runs_one_after_another_reuse_one_connection(serve) -> None:
    execute = Recorder()
    server = serve(execute)
    accepted = []
    original = server.process_request
    server.process_request = lambda request, address: (accepted.append(address), original(request, address))  # type: ignore[method-assign]
    client = DirectRunClient(server.url)
    for _ in range(3):
        job = _job()
        assert client.run(*_signed(job), timeout=10)["output"] == {"ran": job.job_id}
    assert len(execute.jobs) == 3 and len(accepted) == 1


def test_a_kept_connection_the_runner_closed_is_replaced_and_the_job_runs_once(serve) -> None:
    execute = Recorder()
    server = serve(execute)
    client = DirectRunClient(server.url)
    client.run(*_signed(_job()), timeout=10)
    [(_, kept)] = client._idle
    kept.sock.shutdown(socket.SHUT_RDWR)  # as when the runner restarted, or closed it while idle
    job = _job()
    assert client.run(*_signed(job), timeout=10)["output"] == {"ran": job.job_id}
    assert [j.job_id for j in execute.jobs].count(job.job_id) == 1


def test_an_error_answer_never_leaves_its_connection_for_the_next_job(serve) -> None:
    client = DirectRunClient(serve(Recorder(Conflict("run job x was already taken"))).url)
    with pytest.raises(DirectRunLost):
        client.run(*_signed(_job()), timeout=10)
    assert client._idle == []
