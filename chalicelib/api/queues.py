"""Dead-letter queues, seen from the API: how many messages sit there, and a peek at them.

A message the inbox handler or the runner worker cannot process is never
deleted; after ``maxReceiveCount`` receives SQS moves it to the source
queue's dead-letter queue. ``GET /api/queues/dead-letters`` shows each of
those queues without consuming anything: peeked messages are received with a
short visibility timeout and made visible again at once.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.api.auth import require
from chalicelib.api.http import json_response, query_params, route
from chalicelib.errors import BadRequest, TransientError
from chalicelib.governance.identity import Role
from chalicelib.settings import get_settings

MAX_PEEK = 10
DEFAULT_PEEK = 5
BODY_PREVIEW_CHARS = 2000
#: long enough to read the batch and hand it back, short enough that a crash mid-peek delays nothing much
PEEK_VISIBILITY_SECONDS = 5


def _sqs() -> Any:
    import boto3

    settings = get_settings()
    return boto3.client("sqs", region_name=settings.region, endpoint_url=settings.aws_endpoint_url)


def source_queues() -> dict[str, str]:
    """The queues whose dead letters are reported: purpose → queue URL."""
    settings = get_settings()
    return {name: url for name, url in (("inbox", settings.inbox_queue_url), ("runner", settings.runner_queue_url)) if url}


def _peek(sqs: Any, queue_url: str, count: int) -> list[dict[str, Any]]:
    if count <= 0:
        return []
    response = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=count, VisibilityTimeout=PEEK_VISIBILITY_SECONDS, WaitTimeSeconds=0,
        AttributeNames=["All"],
    )  # fmt: skip
    peeked = []
    for message in response.get("Messages", []):
        # hand it back at once: peeking must not hide a message from whoever redrives the queue
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
        body = message.get("Body", "")
        attributes = message.get("Attributes", {})
        peeked.append({
            "message_id": message.get("MessageId"),
            "body": body[:BODY_PREVIEW_CHARS],
            "body_truncated": len(body) > BODY_PREVIEW_CHARS,
            "receive_count": int(attributes.get("ApproximateReceiveCount", "0")),
            "first_received_at": attributes.get("ApproximateFirstReceiveTimestamp"),
            "sent_at": attributes.get("SentTimestamp"),
        })  # fmt: skip
    return peeked


def dead_letter_report(peek: int = DEFAULT_PEEK) -> dict[str, Any]:
    """Every source queue's dead-letter queue: message counts and up to ``peek`` bodies each."""
    from botocore.exceptions import BotoCoreError, ClientError

    sqs = _sqs()
    queues = []
    try:
        for purpose, url in source_queues().items():
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy", "QueueArn"])["Attributes"]
            policy = json.loads(attributes.get("RedrivePolicy") or "{}")
            entry: dict[str, Any] = {"purpose": purpose, "source_queue": url.rsplit("/", 1)[-1]}
            if not policy.get("deadLetterTargetArn"):
                queues.append(dict(entry, dead_letter_queue=None, messages=0, in_flight=0, peek=[],
                                   problem="the source queue has no redrive policy"))  # fmt: skip
                continue
            dlq_name = policy["deadLetterTargetArn"].rsplit(":", 1)[-1]
            dlq_url = sqs.get_queue_url(QueueName=dlq_name)["QueueUrl"]
            counts = sqs.get_queue_attributes(
                QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            )["Attributes"]
            queues.append(dict(
                entry, dead_letter_queue=dlq_name, max_receive_count=int(policy.get("maxReceiveCount", 0)),
                messages=int(counts.get("ApproximateNumberOfMessages", "0")),
                in_flight=int(counts.get("ApproximateNumberOfMessagesNotVisible", "0")),
                peek=_peek(sqs, dlq_url, peek),
            ))  # fmt: skip
    except (BotoCoreError, ClientError) as error:
        raise TransientError(f"cannot read the queues: {error}") from error
    return {"queues": queues, "total": sum(q["messages"] for q in queues)}


def _peek_count(params: dict[str, str]) -> int:
    raw = params.get("peek")
    if raw is None or raw == "":
        return DEFAULT_PEEK
    if not raw.isdigit() or int(raw) > MAX_PEEK:
        raise BadRequest(f"peek must be an integer from 0 to {MAX_PEEK}; got {raw!r}")
    return int(raw)


def register(app: Any, authorizer: Any) -> None:
    @route(app, "/api/queues/dead-letters", methods=["GET"], authorizer=authorizer)
    def dead_letters() -> Any:
        require(app.current_request, Role.ADMIN)
        return json_response(dead_letter_report(_peek_count(query_params(app.current_request))))
