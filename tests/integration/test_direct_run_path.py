"""Slow-client denial of the direct run path (issue 11, item 4), through the HTTP API with a real worker endpoint.

The stack's runner worker serves its direct endpoint on 127.0.0.1 and drains
the runner queue; its engine runs without Docker and counts the runs.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from run_support import SKILL_ID, RunningEngine, agent, call, queue_counts, ready_skill, wait_for
from stack_support import Stack, running_stack

from chalicelib.runner.direct import MAX_UNVERIFIED_PER_ADDRESS


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with running_stack(monkeypatch, RunningEngine()) as running:
        running.runner.direct_listen = "127.0.0.1:0"
        monkeypatch.setenv("SKILLHARBOR_RUNNER_URL", running.runner.start_direct_server())
        try:
            yield running
        finally:
            running.runner.stop_direct_server(drain_seconds=5)


@pytest.fixture
def queued(stack, monkeypatch) -> list:
    """The jobs the API sends through the runner queue (they are still sent)."""
    from chalicelib.api.services import execution_service

    sent: list = []
    queue = execution_service().queue
    send = queue.send
    monkeypatch.setattr(queue, "send", lambda job, **kw: (sent.append(job), send(job, **kw))[1])
    return sent


class Trickler:
    """Keeps ``count`` connections to the worker's endpoint open, trickling one header byte every 100 ms,
    and opens a new one whenever the worker closes one."""

    def __init__(self, port: int, count: int):
        self.port, self.count = port, count
        self.stop = threading.Event()
        self.opened = 0
        self.threads = [threading.Thread(target=self._hold, daemon=True) for _ in range(count)]

    def _hold(self) -> None:
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                    self.opened += 1
                    sock.settimeout(0.1)
                    for byte in b"POST /run HTTP/1.1\r\nX-Slow: " + b"a" * 100_000:
                        if self.stop.is_set():
                            return
                        sock.send(bytes([byte]))
                        try:
                            if sock.recv(1) == b"":
                                break  # closed by the worker: reconnect
                        except TimeoutError:
                            pass
            except OSError:
                self.stop.wait(0.05)

    def __enter__(self) -> Trickler:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(5)


def test_runs_succeed_while_slow_clients_hold_the_direct_endpoint(stack, queued):
    """Trickled headers used to hold every slot of the endpoint and make every run fail; now each trickler is cut
    off at the header deadline, an address holds few unverified connections, and a job the endpoint could not
    take goes through the queue."""
    ready_skill(stack)
    headers = agent(stack, "adder")
    port = stack.runner.direct_server.server_address[1]
    with Trickler(port, 3 * MAX_UNVERIFIED_PER_ADDRESS) as attack:
        wait_for(lambda: stack.runner.direct_server._unverified_per_address.get("127.0.0.1", 0), lambda n: n >= MAX_UNVERIFIED_PER_ADDRESS,
                 "the attack holding the address's quota")  # fmt: skip
        for a in range(3):
            status, result, _ = call(stack, "POST", f"/api/skills/{SKILL_ID}/execute", {"inputs": {"a": a, "b": 10}}, headers)
            assert status == 200 and result["status"] == "ok" and result["output"] == a + 10, result
        assert attack.opened > 3 * MAX_UNVERIFIED_PER_ADDRESS  # the worker closed tricklers: they had to reconnect
    assert len(stack.engine.runs) == 3  # each run once, whichever way it came (mostly the queue, here)
    assert len(queued) <= 3


def test_without_slow_clients_runs_go_direct(stack, queued):
    ready_skill(stack)
    headers = agent(stack, "adder")
    status, result, _ = call(stack, "POST", f"/api/skills/{SKILL_ID}/execute", {"inputs": {"a": 1, "b": 1}}, headers)
    assert status == 200 and result["output"] == 2 and queued == []


def test_with_direct_runs_off_every_run_is_queued(stack, queued, monkeypatch):
    """SKILLHARBOR_DIRECT_RUNS=false: the worker still serves its endpoint (and SKILLHARBOR_RUNNER_URL names it),
    but the API queues the run; it runs once, through the queue. (The fleet's routing obeys the same switch:
    workflow/run_handoff.py asks the router only when direct runs are on.)"""
    ready_skill(stack)
    headers = agent(stack, "adder")
    monkeypatch.setenv("SKILLHARBOR_DIRECT_RUNS", "false")
    status, result, _ = call(stack, "POST", f"/api/skills/{SKILL_ID}/execute", {"inputs": {"a": 2, "b": 3}}, headers)
    assert status == 200 and result["output"] == 5
    assert len(queued) == 1 and len(stack.engine.runs) == 1


def test_a_run_longer_than_the_wait_is_pending_then_its_result_is_at_the_url(stack, queued, monkeypatch):
    """The API stops waiting before its function's timeout: 202 with a result URL. The queued copy it also sends
    (in case the direct worker never started it) finds the job claimed and runs nothing."""
    ready_skill(stack)
    headers = agent(stack, "patient")
    monkeypatch.setenv("SKILLHARBOR_RUN_SYNC_WAIT_SECONDS", "0.5")
    stack.engine.hold = threading.Event()
    try:
        status, pending, response_headers = call(stack, "POST", f"/api/skills/{SKILL_ID}/execute", {"inputs": {"a": 4}}, headers)
        assert status == 202 and pending["status"] in ("queued", "running"), pending
        assert pending["result_url"] == f"/api/runs/{pending['job_id']}" == response_headers["Location"]
        status, still, _ = call(stack, "GET", pending["result_url"], headers=headers)
        assert status == 202 and still["job_id"] == pending["job_id"]
    finally:
        stack.engine.hold.set()
    status, result = wait_for(lambda: call(stack, "GET", pending["result_url"], headers=headers)[:2], lambda r: r[0] == 200,
                              "the result at the URL")  # fmt: skip
    assert result["status"] == "ok" and result["output"] == 4 and result["packages"] == []
    wait_for(lambda: queue_counts(stack, stack.settings.runner_queue_url), lambda c: c == (0, 0), "the queued copy drained")
    assert len(stack.engine.runs) == 1 and len(queued) == 1


def test_a_replayed_direct_request_runs_nothing(stack):
    """The same signed request sent twice to the endpoint: the second finds the job claimed (409)."""
    import time

    from chalicelib.runner.jobs import RunJob
    from chalicelib.runner.signing import sign
    from chalicelib.store.runs import RunStore
    from chalicelib.workflow.direct_run import DirectRunClient, DirectRunLost
    from stack_support import RUNNER_SECRET

    job = RunJob(skill_id=SKILL_ID, version="v1", code="def execute():\n    return 1\n", entrypoint="execute", agent_id="a")
    RunStore().register(job.job_id, agent_id="a", skill_id=SKILL_ID, start_by=time.time() + 60, result_due=time.time() + 120)
    body = job.model_dump_json().encode()
    token = sign(RUNNER_SECRET, "run", job.job_id, body, lifetime_seconds=60)
    client = DirectRunClient(stack.runner.direct_server.url)
    assert client.run(body, token, timeout=10)["status"] == "ok"
    with pytest.raises(DirectRunLost, match="409.*already taken"):
        client.run(body, token, timeout=10)
    assert len(stack.engine.runs) == 1
