"""``skillharbor runners``: the runner fleet as GET /api/runners lists it."""

from __future__ import annotations

import json

import pytest

from chalicelib.store import aws
from chalicelib.store.runners import RunnerFleet


@pytest.fixture
def registered(local_stack, monkeypatch):
    """A worker's heartbeat written into the stack's images table, as a worker process would."""
    monkeypatch.setenv("SKILLHARBOR_AWS_ENDPOINT_URL", local_stack.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    aws.reset_clients()
    RunnerFleet().beat("cli-worker-1", heartbeat_seconds=60, endpoint="http://127.0.0.1:8001", runtimes=["runc", "runsc"], slots=4,
                       free_slots=3, images=["skillharbor/env:abc"], warm=["k1", "k2"])  # fmt: skip
    yield "cli-worker-1"
    aws.reset_clients()


def test_runners_shows_each_worker_with_its_room_and_what_it_holds(run_cli, registered):
    result = run_cli("runners")
    line = next(line for line in result.stdout.splitlines() if registered in line)
    assert "up" in line and "http://127.0.0.1:8001" in line and "runc,runsc" in line and "3/4" in line
    listed = json.loads(run_cli("--json", "runners", "list").stdout)
    member = next(m for m in listed["runners"] if m["worker_id"] == registered)
    assert member["state"] == "up" and member["warm"] == ["k1", "k2"] and member["images"] == ["skillharbor/env:abc"]
