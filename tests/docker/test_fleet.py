"""Three local runner workers (issue 17): `make run` with SKILLHARBOR_LOCAL_WORKERS=3, the real stack process.

60 runs in bursts of 20 through the HTTP API spread over all three workers;
then a worker is SIGKILLed in the middle of a burst: every run still gets a
definite answer (a result; for a run the dead worker had claimed, a clear
"lost"; for a queued job it had received but not claimed, the overdue
answer at its due time), none runs twice, the fleet listing shows it gone
within its heartbeat window, and later runs avoid it.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from chalicelib.local.child_stack import ChildStack
from chalicelib.runner import engine

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "shk_admin_fleet-test-0123456789abcdefghij"
WORKERS, BURST, HEARTBEAT = 3, 20, 5.0


class FleetStack:
    def __init__(self, stack: ChildStack):
        self.stack, self.api, self.log = stack, stack.api, stack.log

    def fleet(self) -> dict[str, dict[str, Any]]:
        status, body = self.stack.http("/api/runners", timeout=120)
        assert status == 200, body
        return {m["worker_id"]: m for m in body["runners"]}

    def agent(self, name: str) -> str:
        status, body = self.stack.http("/api/agents", {"agent_id": name, "maturity": "STUDENT"}, timeout=120)
        assert status == 201, body
        return body["api_key"]

    def burst(self, key: str, count: int = BURST, during: Any = None) -> list[tuple[int, Any]]:
        def one(i: int) -> tuple[int, Any]:
            status, body = self.stack.http("/api/skills/hello/execute", {"inputs": {"name": f"n{i:02d}"}}, key=key, timeout=120)
            deadline = time.monotonic() + 300
            while status == 202 and time.monotonic() < deadline:  # a loaded machine: the run outlasted the request's wait
                time.sleep(0.5)
                status, body = self.stack.http(body["result_url"], key=key, timeout=120)
            return status, body

        with ThreadPoolExecutor(count) as pool:
            futures = [pool.submit(one, i) for i in range(count)]
            if during is not None:
                during()
            return [f.result() for f in futures]

    def ended_runs(self, agent_id: str) -> list[dict[str, Any]]:
        status, body = self.stack.http(f"/api/runs?agent_id={agent_id}&limit=1000", timeout=120)
        assert status == 200, body
        return body["runs"]


@pytest.fixture(scope="module")
def fleet_stack(base_image, tmp_path_factory) -> Any:
    stack = ChildStack(tmp_path_factory.mktemp("fleet") / "stack.log", admin_key=ADMIN_KEY, workers=WORKERS,
                       env={"SKILLHARBOR_RUNNER_HEARTBEAT_SECONDS": str(HEARTBEAT)})  # fmt: skip
    fleet = FleetStack(stack)
    pids: list[str] = []
    try:
        members = stack.wait_for(lambda: (f := fleet.fleet()) and sum(1 for m in f.values() if m["state"] == "up" and m["endpoint"]) == WORKERS and f,
                                 180, f"{WORKERS} workers registered")  # fmt: skip
        pids = [name.rsplit("-", 1)[1] for name in members]
        assert sorted(m["endpoint"] for m in members.values()) == [f"http://127.0.0.1:{stack.runner_port + i}" for i in range(WORKERS)]
        stack.import_skill(ROOT / "examples" / "hello" / "SKILL.md", timeout=180)
        yield fleet
    finally:
        stack.stop(timeout=60)
        client = engine.connect()
        for pid in pids:  # a killed worker's containers, and anything a stuck stop left
            for container in client.api.containers(all=True, filters={"label": [f"{engine.CREATOR_LABEL}={socket.gethostname()}:{pid}"]}):
                client.api.remove_container(container["Id"], force=True)


def test_sixty_runs_in_bursts_of_twenty_spread_over_three_workers(fleet_stack):
    key = fleet_stack.agent("spread")
    answers = [answer for _ in range(3) for answer in fleet_stack.burst(key)]
    assert len(answers) == 60
    failed = [a for a in answers if a[0] != 200 or a[1].get("status") != "ok"]
    assert failed == [], failed[:3]
    assert sorted(a[1]["output"]["greeting"] for a in answers) == sorted(f"Hello, n{i:02d}!" for _ in range(3) for i in range(BURST))
    runs = fleet_stack.ended_runs("spread")
    assert len(runs) == 60 and len({r["job_id"] for r in runs}) == 60
    per_worker = Counter(r["worker"] for r in runs)
    assert set(per_worker) == set(fleet_stack.fleet()), per_worker  # every run on a registered worker
    assert all(count >= 10 for count in per_worker.values()), per_worker


def test_a_worker_killed_mid_burst_loses_no_run_silently_and_later_runs_avoid_it(fleet_stack):
    key = fleet_stack.agent("survivor")
    members = fleet_stack.fleet()
    victim = sorted(members)[1]
    killed_at: list[float] = []
    gone_at: list[float] = []

    def watch() -> None:  # the listing, read while the burst goes on
        while time.monotonic() - killed_at[0] < 3 * HEARTBEAT + 30:
            try:
                if fleet_stack.fleet()[victim]["state"] == "gone":
                    gone_at.append(time.monotonic())
                    return
            except (OSError, AssertionError):
                pass
            time.sleep(0.5)

    def kill_soon() -> None:
        time.sleep(2.0)  # runs are in flight on every worker by now
        os.kill(int(victim.rsplit("-", 1)[1]), signal.SIGKILL)
        killed_at.append(time.monotonic())
        threading.Thread(target=watch, daemon=True).start()

    answers = fleet_stack.burst(key, during=kill_soon)
    outcomes = Counter()
    for status, result in answers:
        assert status == 200, result  # a definite answer for every run: none left pending or unanswered
        if result["status"] == "ok":
            outcomes["ok"] += 1
        elif "lost" in (result.get("error") or ""):  # a run the killed worker had claimed, said clearly
            assert result["status"] == "runner_unavailable" and victim in result["error"], result
            outcomes["lost"] += 1
        else:  # a queued job the killed worker had received but not claimed: held until the queue's visibility
            # timeout, so it ends at its due time instead; its copy then comes back expired and never runs
            assert result["status"] == "runner_unavailable" and "no runner worker reported a result in time" in result["error"], result
            outcomes["overdue"] += 1
    runs = fleet_stack.ended_runs("survivor")
    assert len(runs) == BURST and len({r["job_id"] for r in runs}) == BURST  # each run ended once
    assert {r["worker"] for r in runs if r["status"] == "ok"} <= set(members)
    print(f"killed {victim} mid-burst: {dict(outcomes)}")

    fleet_stack.stack.wait_for(lambda: gone_at, 3 * HEARTBEAT + 30, "the killed worker listed gone")
    # listed gone once three heartbeats are missed: at most 3 beats after its last one (+ the listing's poll and a
    # loaded machine's delay in answering it)
    assert gone_at[0] - killed_at[0] <= 3 * HEARTBEAT + 5, gone_at[0] - killed_at[0]
    print(f"listed gone {gone_at[0] - killed_at[0]:.1f}s after the kill")

    key_after = fleet_stack.agent("after")
    later = fleet_stack.burst(key_after)
    assert all(status == 200 and result["status"] == "ok" for status, result in later), later[:3]
    after = Counter(r["worker"] for r in fleet_stack.ended_runs("after"))
    assert victim not in after and sum(after.values()) == BURST, after
