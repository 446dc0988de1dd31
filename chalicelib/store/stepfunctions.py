"""Step Functions adapter: starts the import state machine and answers the Install step's task tokens."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.errors import TransientError
from chalicelib.settings import get_settings
from chalicelib.store import aws


def sfn_client() -> Any:
    return aws.client("stepfunctions")


class StepFunctionsOrchestrator:
    def execution_arn(self, import_id: str) -> str:
        """The ARN ``start`` gives the execution named ``import_id`` (Step Functions' documented form), known
        before it starts: the import record is written with it, one store round trip less per import."""
        arn = get_settings().state_machine_arn.replace(":stateMachine:", ":execution:")
        return f"{arn}:{import_id}"

    def start(self, import_id: str, state: dict[str, Any]) -> str:
        """Start one execution per import; the execution name makes a repeated start a no-op."""
        settings = get_settings()
        if not settings.state_machine_arn:
            raise TransientError("SKILLHARBOR_STATE_MACHINE_ARN is not configured")
        try:
            response = sfn_client().start_execution(
                stateMachineArn=settings.state_machine_arn, name=import_id, input=json.dumps(state)
            )
            return response["executionArn"]
        except ClientError as error:
            if aws.error_code(error) == "ExecutionAlreadyExists":
                return self.execution_arn(import_id)
            raise

    def send_task_success(self, task_token: str, output: dict[str, Any]) -> None:
        sfn_client().send_task_success(taskToken=task_token, output=json.dumps(output))

    def send_task_failure(self, task_token: str, error: str, cause: str) -> None:
        sfn_client().send_task_failure(taskToken=task_token, error=error[:256], cause=cause[:32768])
