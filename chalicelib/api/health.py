"""GET /api/health: is each part of the stack reachable? (no key needed)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.settings import get_settings

_QUICK = Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=3)


def _check(probe: Any) -> dict[str, Any]:
    try:
        probe()
        return {"ok": True}
    except Exception as error:  # any failure is the answer here
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}


def stack_health() -> dict[str, Any]:
    settings = get_settings()
    kwargs = {"region_name": settings.region, "endpoint_url": settings.aws_endpoint_url, "config": _QUICK}
    dynamodb, s3 = boto3.client("dynamodb", **kwargs), boto3.client("s3", **kwargs)
    sqs, sfn = boto3.client("sqs", **kwargs), boto3.client("stepfunctions", **kwargs)
    parts: dict[str, dict[str, Any]] = {}
    for field in ("skills_table", "imports_table", "rules_table", "principals_table", "images_table", "audit_table"):
        name = getattr(settings, field)
        parts[f"dynamodb:{name}"] = _check(lambda n=name: dynamodb.describe_table(TableName=n))
    for bucket in (settings.inbox_bucket, settings.artifacts_bucket):
        parts[f"s3:{bucket}"] = _check(lambda b=bucket: s3.head_bucket(Bucket=b))
    for label, url in (("inbox", settings.inbox_queue_url), ("runner", settings.runner_queue_url)):
        parts[f"sqs:{label}"] = _check(lambda u=url: sqs.get_queue_attributes(QueueUrl=u, AttributeNames=["QueueArn"]))
    parts["stepfunctions:import"] = _check(lambda: sfn.describe_state_machine(stateMachineArn=settings.state_machine_arn))
    advisory_db = _advisory_db()
    healthy = all(p["ok"] for p in parts.values()) and advisory_db["ok"]
    return {"status": "ok" if healthy else "degraded", "parts": parts, "runners": _runners(), "advisory_db": advisory_db}


def _advisory_db() -> dict[str, Any]:
    """The offline advisory database the scan uses: its source, age and a warning when stale
    (loaded once per process; without it every scan fails closed, so the stack is degraded)."""
    from chalicelib.scanning.offline_osv import advisory_database_status

    try:
        status = advisory_database_status()
        if status.get("ok") and status.get("source") != "embedded snapshot":
            status["source"] = "SKILLHARBOR_ADVISORY_DB"  # not the path: this answer needs no key
        return status
    except Exception as error:
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}


def _runners() -> dict[str, Any]:
    """Runner workers that reported in the last minute (builds and runs need one)."""
    from chalicelib.store.images import ImageStore

    try:
        seen = ImageStore().runners()
    except Exception as error:
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
    cutoff = (datetime.now(UTC) - timedelta(seconds=60)).isoformat()
    active = [r for r in seen if r.get("seen_at", "") >= cutoff]
    return {"ok": bool(active), "active": len(active), "workers": active}
