"""The seam between moto's Step Functions and the app's functions.

If a moto upgrade changes how state machines invoke Lambda, these tests fail
loudly instead of letting tasks "succeed" by echoing their input.
"""

from __future__ import annotations

import json
import time

import boto3
import pytest
from moto import mock_aws

from chalicelib.errors import TransientError
from chalicelib.local import lambda_seam

ROLE = "arn:aws:iam::123456789012:role/test"


def _arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:123456789012:function:{name}"


def _run(definition: dict, payload: dict) -> dict:
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    machine = sfn.create_state_machine(name="seam", definition=json.dumps(definition), roleArn=ROLE)
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input=json.dumps(payload))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise AssertionError("execution did not finish")


@pytest.fixture
def seam():
    with mock_aws(config=lambda_seam.STATE_MACHINE_CONFIG):
        lambda_seam.install()
        try:
            yield lambda_seam
        finally:
            lambda_seam.uninstall()


def test_task_runs_the_registered_function_and_returns_its_result(seam):
    calls = []
    seam.register("double", lambda event, context: calls.append(event) or {"value": event["value"] * 2})
    definition = {"StartAt": "Double", "States": {"Double": {"Type": "Task", "Resource": _arn("double"), "End": True}}}
    result = _run(definition, {"value": 21})
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"]) == {"value": 42}, "the seam no longer routes moto's Lambda invoke to the app"
    assert calls == [{"value": 21}]


def test_raised_error_reaches_retry_and_catch_by_its_class_name(seam):
    attempts = []

    def flaky(event, context):
        attempts.append(1)
        raise TransientError("index briefly unreachable")

    seam.register("flaky", flaky)
    definition = {
        "StartAt": "Flaky",
        "States": {
            "Flaky": {
                "Type": "Task",
                "Resource": _arn("flaky"),
                "Retry": [{"ErrorEquals": ["TransientError"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    result = _run(definition, {"x": 1})
    assert result["status"] == "SUCCEEDED"
    output = json.loads(result["output"])
    assert output["error"]["Error"] == "TransientError"
    assert json.loads(output["error"]["Cause"])["errorMessage"] == "index briefly unreachable"
    assert len(attempts) == 3, "Retry should run the function 1 + MaxAttempts times"


def test_missing_function_fails_instead_of_echoing(seam):
    definition = {"StartAt": "Ghost", "States": {"Ghost": {"Type": "Task", "Resource": _arn("ghost"), "End": True}}}
    result = _run(definition, {"x": 1})
    assert result["status"] == "FAILED"


def test_the_state_machine_shares_one_lambda_client_per_server(monkeypatch):
    """Outside in-process mocking, moto's per-task client is built once per region, service and port."""
    from moto.core.models import botocore_stubber
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    lambda_seam.install()
    try:
        monkeypatch.setattr(botocore_stubber, "enabled", False)
        monkeypatch.setenv("MOTO_PORT", "50123")
        first = lambda_eval_utils.boto_client_for(region="us-east-1", service="lambda", state_credentials=None)
        again = lambda_eval_utils.boto_client_for(region="us-east-1", service="lambda", state_credentials=None)
        assert first is again and first.meta.endpoint_url == "http://localhost:50123"
        monkeypatch.setenv("MOTO_PORT", "50124")
        assert lambda_eval_utils.boto_client_for(region="us-east-1", service="lambda", state_credentials=None) is not first
    finally:
        lambda_seam.uninstall()
    assert lambda_eval_utils.boto_client_for is not lambda_seam._shared_client
