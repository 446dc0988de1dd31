"""Can each AWS part of the stack be reached? One quick call per table, bucket, queue and state machine."""

from __future__ import annotations

from typing import Any

from chalicelib.settings import get_settings
from chalicelib.store import aws

TABLE_FIELDS = ("skills_table", "imports_table", "rules_table", "principals_table", "images_table", "audit_table")


def _check(probe: Any) -> dict[str, Any]:
    try:
        probe()
        return {"ok": True}
    except Exception as error:  # any failure is the answer here
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}


def probe_parts() -> dict[str, dict[str, Any]]:
    """``{"dynamodb:<table>": {"ok": True} | {"ok": False, "error": ...}, "s3:...", "sqs:...", ...}``."""
    settings = get_settings()
    dynamodb, s3 = aws.client("dynamodb", quick=True), aws.client("s3", quick=True)
    sqs, sfn = aws.client("sqs", quick=True), aws.client("stepfunctions", quick=True)
    parts: dict[str, dict[str, Any]] = {}
    for field in TABLE_FIELDS:
        name = getattr(settings, field)
        parts[f"dynamodb:{name}"] = _check(lambda n=name: dynamodb.describe_table(TableName=n))
    for bucket in (settings.inbox_bucket, settings.artifacts_bucket):
        parts[f"s3:{bucket}"] = _check(lambda b=bucket: s3.head_bucket(Bucket=b))
    for label, url in (("inbox", settings.inbox_queue_url), ("runner", settings.runner_queue_url)):
        parts[f"sqs:{label}"] = _check(lambda u=url: sqs.get_queue_attributes(QueueUrl=u, AttributeNames=["QueueArn"]))
    parts["stepfunctions:import"] = _check(lambda: sfn.describe_state_machine(stateMachineArn=settings.state_machine_arn))
    return parts
