"""SQS adapter: the runner queue's messages, and a look into the dead-letter queues.

A message the inbox handler or the runner worker cannot process is never
deleted; after ``maxReceiveCount`` receives SQS moves it to the source
queue's dead-letter queue. Peeking at those does not consume anything:
peeked messages are received with a short visibility timeout and made
visible again at once.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.errors import TransientError
from chalicelib.settings import get_settings
from chalicelib.store import aws

BODY_PREVIEW_CHARS = 2000
#: long enough to read the batch and hand it back, short enough that a crash mid-peek delays nothing much
PEEK_VISIBILITY_SECONDS = 5


def sqs_client() -> Any:
    """The SQS client the runner worker drains its queue with (receive, delete, change visibility)."""
    return aws.client("sqs")


class SqsQueue:
    """One queue by URL; by default the runner queue of the current settings."""

    def __init__(self, url: str | None = None) -> None:
        self._url = url

    @property
    def url(self) -> str:
        return self._url or get_settings().runner_queue_url

    def send(self, body: str) -> None:
        sqs_client().send_message(QueueUrl=self.url, MessageBody=body)


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


def dead_letters(source_queues: dict[str, str], peek: int) -> list[dict[str, Any]]:
    """Each source queue's dead-letter queue (purpose → source URL given): message counts and up to
    ``peek`` bodies; TransientError when the queues cannot be read."""
    sqs = aws.client("sqs")
    queues = []
    try:
        for purpose, url in source_queues.items():
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
    except aws.AwsError as error:
        raise TransientError(f"cannot read the queues: {error}") from error
    return queues
