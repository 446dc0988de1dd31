"""skillharbor: the Chalice app. Wiring only; the logic lives in chalicelib/."""

from __future__ import annotations

import json
import logging
from typing import Any

from chalice import Chalice, Rate

from chalicelib.api import auth, commands, console, governance, isolation, network, openapi, ownership, queues, runners, runs, scanning, secrets, skills, status
from chalicelib.api.services import execution_service, import_service
from chalicelib.errors import BadRequest

app = Chalice(app_name="skillharbor")
app.api.binary_types.extend(["application/zip", "application/octet-stream"])
app.log.setLevel(logging.INFO)


# --- HTTP -------------------------------------------------------------------


@app.authorizer(ttl_seconds=0)  # no gateway caching: a revoked key stops working at once
def api_key(auth_request: Any) -> Any:
    return auth.authorize(auth_request.token)


status.register(app)  # GET /api/health: the status word for anyone, the details for admins
skills.register(app, api_key)
ownership.register(app, api_key)
governance.register(app, api_key)
isolation.register(app, api_key)  # admin rules choosing each run's container runtime
network.register(app, api_key)  # host rules for egress (docs/EGRESS.md)
secrets.register(app, api_key)  # brokered secrets (docs/EGRESS.md)
runs.register(app, api_key)
commands.register(app, api_key)  # command runs and workspaces
scanning.register(app, api_key)
queues.register(app, api_key)
runners.register(app, api_key)  # the runner fleet (docs/DEPLOYMENT.md)
openapi.register(app)
console.register(app)  # GET /console: the admin console (static; it calls the API above with the admin's key)


# --- import pipeline: the state machine's task functions --------------------


@app.lambda_function(name="parse")
def parse(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return import_service().parse_step(event)


@app.lambda_function(name="resolve")
def resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return import_service().resolve_step(event)


@app.lambda_function(name="check")
def check(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return import_service().check_step(event)


@app.lambda_function(name="scan")
def scan(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return import_service().scan_step(event)


@app.lambda_function(name="dispatch_build")
def dispatch_build(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Install step: a signed build job on the runner queue (the state machine waits for its task token)."""
    return execution_service().dispatch_build(event)


@app.lambda_function(name="behaviour")
def behaviour(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from chalicelib.workflow.behaviour import BehaviourCheck

    return BehaviourCheck(import_service(), execution_service()).step(event)


@app.lambda_function(name="finalize")
def finalize(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return import_service().finalize_step(event)


@app.lambda_function(name="record_failure")
def record_failure(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return import_service().record_failure_step(event)


# --- upload trigger: S3 → SQS (with a dead-letter queue) → here -------------


@app.on_sqs_message(queue="skillharbor-inbox-events", batch_size=1)
def inbox_event(event: Any) -> None:
    """Start one import per uploaded SKILL.md or zip.

    A message that is not an S3 notification raises, so SQS redelivers it and
    finally moves it to the dead-letter queue, where it stays visible.
    """
    for record in event:
        try:
            notification = json.loads(record.body)
        except ValueError as error:
            raise BadRequest(f"inbox message {record.receipt_handle[:12]}… is not JSON") from error
        if not isinstance(notification, dict):
            raise BadRequest("inbox message is not an S3 notification object")
        if notification.get("Event") == "s3:TestEvent":
            continue
        records = notification.get("Records")
        if not isinstance(records, list) or not records:
            raise BadRequest("inbox message has no S3 Records")
        for s3_record in records:
            import_service().submit_s3_event(s3_record)


# --- housekeeping -------------------------------------------------------------


@app.schedule(Rate(1, unit=Rate.HOURS))
def cleanup_images(event: Any) -> None:
    """Ask a runner worker to remove images unused for IMAGE_TTL_DAYS (audited per image); remove expired workspaces;
    re-scan ready skills when the rule pack or the advisory database changed."""
    runs.scheduled_cleanup()
    commands.scheduled_cleanup()
    scanning.scheduled_rescan()
