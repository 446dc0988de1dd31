"""Which worker of the fleet a direct run goes to (workflow/routing.py)."""

from __future__ import annotations

from chalicelib.packages.pins import Pin
from chalicelib.runner.jobs import RunJob
from chalicelib.runner.spec import RunLimits, Runtime, warm_key
from chalicelib.workflow.routing import FleetRouter

BASE = "skillharbor/base:latest"
IMAGE = "skillharbor/env:abc"


def _job(**fields) -> RunJob:
    return RunJob(skill_id="s", version="1", code="def main():\n    return 1\n", entrypoint="main", image_tag=IMAGE,
                  pins=[Pin(name="numpy", version="1.26.4", sha256="0" * 64, direct=True)], **fields)  # fmt: skip


def _member(name: str, *, free: int = 4, slots: int = 4, state: str = "up", images=(), warm=(), runtimes=("runc",)) -> dict:
    return {"worker_id": name, "endpoint": f"http://{name}:8001", "state": state, "slots": slots, "free_slots": free,
            "images": list(images), "warm": list(warm), "runtimes": list(runtimes)}  # fmt: skip


def _router(*members: dict) -> FleetRouter:
    return FleetRouter(lambda: list(members), lambda: BASE)


def test_warm_beats_holding_the_image_beats_the_least_loaded():
    job = _job()
    key = warm_key(IMAGE, job.limits, ["numpy"], True, Runtime.RUNC)
    router = _router(_member("idle", free=4), _member("holder", free=2, images=[IMAGE]), _member("warm", free=1, images=[IMAGE], warm=[key]))
    assert [(t.worker_id, t.reason) for t in router.targets(job)] == [("warm", "warm"), ("holder", "image"), ("idle", "least_loaded")]


def test_a_warm_pool_of_other_limits_does_not_count():
    job = _job(limits=RunLimits(memory_mb=512))
    other = warm_key(IMAGE, RunLimits(), ["numpy"], True, Runtime.RUNC)
    router = _router(_member("warm-elsewhere", free=1, warm=[other]), _member("idle", free=3))
    assert [t.worker_id for t in router.targets(job)] == ["idle", "warm-elsewhere"]


def test_gone_stopped_full_and_wrong_runtime_workers_are_never_chosen():
    router = _router(_member("gone", state="gone"), _member("stopped", state="stopped"), _member("runc-only"),
                     _member("gvisor", runtimes=("runc", "runsc")))  # fmt: skip
    assert [t.worker_id for t in router.targets(_job(runtime=Runtime.RUNSC))] == ["gvisor"]
    assert _router(_member("full", slots=0, free=0)).targets(_job()) == []


def test_runs_in_flight_from_this_process_spread_a_burst():
    router = _router(_member("a", slots=2, free=2), _member("b", slots=2, free=2))
    chosen = []
    held = []
    for _ in range(4):
        target = router.targets(_job())[0]
        chosen.append(target.worker_id)
        held.append(router.sending(target))
        held[-1].__enter__()
    assert sorted(chosen) == ["a", "a", "b", "b"]
    assert router.targets(_job()) == []  # every slot has a run in flight: the queue takes the next
    held[0].__exit__(None, None, None)
    assert [t.worker_id for t in router.targets(_job())] == [chosen[0]]


def test_a_worker_that_turned_a_run_away_is_skipped_for_a_moment():
    router = _router(_member("a"), _member("b", free=1))
    first = router.targets(_job())[0]
    router.busy(first)
    assert [t.worker_id for t in router.targets(_job())] == ["b"]


def test_a_reading_past_its_second_routes_at_once_while_a_new_one_is_read(monkeypatch):
    import threading

    from chalicelib.workflow import routing

    clock = [100.0]
    monkeypatch.setattr(routing.time, "monotonic", lambda: clock[0])
    fleets = [[_member("old")], [_member("new")]]
    release, reads = threading.Event(), []

    def read() -> list[dict]:
        reads.append(len(reads))
        if len(reads) > 1:
            release.wait(5)  # the background read is slow: the run must not wait for it
        return fleets[min(len(reads), 2) - 1]

    router = FleetRouter(read, lambda: BASE)
    assert [t.worker_id for t in router.targets(_job())] == ["old"]  # nothing read yet: read inline
    clock[0] += routing.FLEET_CACHE_SECONDS + 0.5
    assert [t.worker_id for t in router.targets(_job())] == ["old"]  # stale: routed on it, a read started
    for _ in range(100):
        if len(reads) == 2:
            break
        threading.Event().wait(0.01)
    assert [t.worker_id for t in router.targets(_job())] == ["old"] and len(reads) == 2  # one read at a time
    release.set()
    for _ in range(100):
        if router.fleet()[0]["worker_id"] == "new":
            break
        threading.Event().wait(0.01)
    assert [t.worker_id for t in router.targets(_job())] == ["new"]


def test_a_reading_older_than_a_heartbeat_is_read_again_before_routing(monkeypatch):
    from chalicelib.workflow import routing

    clock = [100.0]
    monkeypatch.setattr(routing.time, "monotonic", lambda: clock[0])
    fleets = iter([[_member("old")], [_member("new")]])
    router = FleetRouter(lambda: next(fleets), lambda: BASE)
    assert [t.worker_id for t in router.targets(_job())] == ["old"]
    clock[0] += routing.FLEET_STALE_SECONDS + 0.1
    assert [t.worker_id for t in router.targets(_job())] == ["new"]
