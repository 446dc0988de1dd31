"""The deployable definitions: the ASL graph is sound and the packaged template lints clean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.template import load_asl, merge_template, substitution_names

ROOT = Path(__file__).resolve().parents[2]


def _targets(state: dict) -> list[str]:
    targets = [state[k] for k in ("Next", "Default") if k in state]
    targets += [choice["Next"] for choice in state.get("Choices", [])]
    targets += [catch["Next"] for catch in state.get("Catch", [])]
    return targets


def test_every_transition_names_an_existing_state_and_every_state_is_reachable():
    asl = load_asl()
    states = asl["States"]
    for name, state in states.items():
        for target in _targets(state):
            assert target in states, f"{name} goes to missing state {target}"
        if state["Type"] not in ("Choice", "Succeed", "Fail") and not state.get("End"):
            assert "Next" in state, f"{name} neither ends nor continues"
    reachable, pending = set(), [asl["StartAt"]]
    while pending:
        name = pending.pop()
        if name not in reachable:
            reachable.add(name)
            pending += _targets(states[name])
    assert reachable == set(states), f"unreachable: {sorted(set(states) - reachable)}"


def test_every_task_that_can_fail_is_caught_and_recorded():
    states = load_asl()["States"]
    for name, state in states.items():
        if state["Type"] == "Task" and name != "RecordFailure":
            assert any("States.ALL" in c["ErrorEquals"] for c in state.get("Catch", [])), f"{name} has no catch-all"
            failed = states[state["Catch"][0]["Next"]]
            assert failed["Next"] == "RecordFailure" and failed["Result"] == name.lower()


def test_template_provides_every_substitution_the_definition_uses():
    template = merge_template()
    machine = template["Resources"]["ImportStateMachine"]["Properties"]
    assert substitution_names(machine["Definition"]) <= set(machine["DefinitionSubstitutions"])
    assert isinstance(machine["Definition"], dict), "Definition must stay a JSON object so cfn-lint validates it"


@pytest.mark.slow
def test_make_template_packages_and_lints_on_a_machine_with_no_aws_configuration(tmp_path):
    """The README's `make template`, as written, where no region (nor any AWS profile) is configured."""
    home = tmp_path / "home"  # no ~/.aws
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SKILLHARBOR_"))}
    env["HOME"] = str(home)
    out = tmp_path / "build"
    venv = Path(sys.executable).parent.parent
    if not (venv / ".installed").exists():  # make would set up a venv there: only run from the project's own
        pytest.skip(f"not run from a venv made by `make install` ({venv})")
    made = subprocess.run(["make", "template", f"TEMPLATE_DIR={out}", f"VENV={venv}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    assert "No region configured" not in made.stdout + made.stderr
    template = json.loads((out / "package" / "sam.json").read_text())
    functions = {name for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert {"Parse", "Resolve", "Check", "Scan", "Finalize", "RecordFailure", "InboxEvent", "CleanupImages"} <= functions


def test_the_runner_fleet_scales_on_what_the_workers_publish_and_the_queue_backlog():
    from infra.template import merge_template

    resources = merge_template()["Resources"]
    assert resources["RunnerService"]["Type"] == "AWS::ECS::Service"
    assert resources["RunnerAutoScalingGroup"]["Type"] == "AWS::AutoScaling::AutoScalingGroup"
    assert {resources[r]["Type"] for r in ("EnvImageRepository", "BaseImageRepository")} == {"AWS::ECR::Repository"}
    task = resources["RunnerTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    env = {e["Name"]: e["Value"] for e in task["Environment"]}
    for alarm in ("RunnerBacklogAlarm", "RunnerIdleAlarm"):
        stats = [m["MetricStat"]["Metric"] for m in resources[alarm]["Properties"]["Metrics"] if "MetricStat" in m]
        published = {m["MetricName"] for m in stats if m["Namespace"] == env["SKILLHARBOR_RUNNER_METRICS_NAMESPACE"]}
        assert published <= {"Slots", "FreeSlots"} and "FreeSlots" in published  # what store/metrics.py puts
        assert any(m["MetricName"] == "ApproximateNumberOfMessagesVisible" for m in stats)  # the runner queue's backlog
