"""The runtime tiers against the real engine: each run is where it was sent (checked from inside), the warm
pool never hands a container of one runtime to a run of the other, the doctor finds every property enforced
under each, and a runtime the engine lacks fails the run closed."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client
from stack_support import ADMIN_HEADERS

from chalicelib.runner import doctor, runtimes, sandbox
from chalicelib.runner.pool import WarmPool
from chalicelib.runner.spec import RunLimits, RunRequest, RunStatus, Runtime

pytestmark = pytest.mark.docker

KERNEL = "import platform\ndef main():\n    return platform.release()\n"


def test_each_run_reports_the_kernel_of_its_runtime(run_code, runtime):
    result = run_code(KERNEL, runtime=runtime)
    assert result.status == RunStatus.OK and result.runtime == runtime
    if runtime == Runtime.RUNSC:
        assert result.output == doctor.GVISOR_RELEASE  # gVisor's own kernel answers uname
    else:
        assert result.output != doctor.GVISOR_RELEASE


def test_the_doctor_finds_every_property_enforced_under_each_runtime(docker_client, base_image, runtime):
    checks = doctor.run_checks(docker_client, base_image.tag, runtime)
    assert [c.to_dict() for c in checks if c.required and not c.enforced] == []


def test_the_warm_pool_keeps_runtimes_apart(docker_client, base_image, runsc_registered):
    if not runsc_registered:
        pytest.skip("gVisor (runsc) is not registered with this Docker engine")
    pool = WarmPool(docker_client, size_per_image=1, max_total=2)
    try:
        requests = {rt: RunRequest(image=base_image.tag, code=KERNEL, limits=RunLimits(timeout_seconds=10), runtime=rt)
                    for rt in (Runtime.RUNC, Runtime.RUNSC)}  # fmt: skip
        for request in requests.values():
            assert pool.wait_ready(request, count=1, timeout=120), pool.stats()
        assert sorted(p["runtime"] for p in pool.stats()["pools"]) == ["runc", "runsc"]
        gvisor, plain = pool.run(requests[Runtime.RUNSC]), pool.run(requests[Runtime.RUNC])
        assert pool.hits == 2
        assert (gvisor.runtime, gvisor.output) == (Runtime.RUNSC, doctor.GVISOR_RELEASE)
        assert plain.runtime == Runtime.RUNC and plain.output != doctor.GVISOR_RELEASE
    finally:
        pool.close()


def test_a_runtime_the_engine_lacks_fails_the_run_closed(docker_client, base_image, monkeypatch):
    """The engine itself refuses the unknown runtime: the run is refused with a reason, never run under runc."""
    real = runtimes.adapt
    monkeypatch.setattr(runtimes, "adapt", lambda options, runtime, limits: {**real(options, runtime, limits),
                                                                            "runtime": "runsc-not-registered"})  # fmt: skip
    request = RunRequest(image=base_image.tag, code=KERNEL, runtime=Runtime.RUNSC)
    result = sandbox.run(docker_client, request)
    assert result.status == RunStatus.RUNNER_UNAVAILABLE and result.runtime_missing and result.output is None
    assert "require the runsc runtime" in result.error and "weaker runtime" in result.error


KERNEL_SKILL = b"""---
name: Which Kernel
description: Says which kernel answers it.
---
```python
import platform

def execute():
    return platform.release()
```
"""


def test_an_admin_rule_sends_student_runs_to_gvisor_through_the_api(docker_stack, runsc_registered):
    """End to end: the rule, a STUDENT agent's run under gVisor (seen from inside), an INTERN's under runc."""
    from run_support import agent, call, trail

    if not runsc_registered:
        pytest.skip("gVisor (runsc) is not registered with this Docker engine")
    status, rule, _ = call(docker_stack, "POST", "/api/isolation/rules", {"match": {"maturity": "STUDENT"}, "runtime": "runsc"})
    assert status == 201, rule
    with Client(docker_stack.app) as client:
        response = client.http.post("/api/skills", body=KERNEL_SKILL, headers={**ADMIN_HEADERS, "Content-Type": "text/markdown"})
    assert response.status_code == 202, response.body
    accepted = json.loads(response.body)
    assert docker_stack.wait_for_import(accepted["import_id"], timeout=300)["status"] == "SUCCEEDED"
    outputs = {}
    for agent_id, maturity in (("pupil", "STUDENT"), ("helper", "INTERN")):
        status, result, _ = call(docker_stack, "POST", f"/api/skills/{accepted['skill_id']}/execute", {"timeout_seconds": 10},
                                 agent(docker_stack, agent_id, maturity))  # fmt: skip
        assert status == 200 and result["status"] == "ok", result
        outputs[agent_id] = (result["runtime"], result["output"])
    assert outputs["pupil"] == ("runsc", doctor.GVISOR_RELEASE)
    assert outputs["helper"][0] == "runc" and outputs["helper"][1] != doctor.GVISOR_RELEASE
    ended = {e["agent_id"]: e["detail"] for e in trail(docker_stack, action="skill.execute") if e["outcome"] == "ok"}
    assert (ended["pupil"]["runtime"], ended["pupil"]["isolation_rule"]) == ("runsc", rule["rule_id"])
