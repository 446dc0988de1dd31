"""What Lambda's event sources do in the cloud, played locally.

* :class:`SqsPoller` is an SQS event source mapping: it receives messages,
  hands them to a Chalice ``on_sqs_message`` handler in Lambda's event shape,
  deletes them on success and leaves them for redelivery on failure (so the
  queue's redrive policy moves a poison message to its dead-letter queue).
* :class:`Scheduler` is EventBridge's schedule: it calls the app's
  ``@app.schedule`` functions at their rate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from chalicelib.local.lambda_seam import LocalLambdaContext

log = logging.getLogger("skillharbor.local")


class SqsPoller(threading.Thread):
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Callable[[Any, Any], Any],
        *,
        name: str,
        batch_size: int = 1,
        retry_delay_seconds: int = 2,
        wait_seconds: int = 1,
    ):
        super().__init__(name=f"poller-{name}", daemon=True)
        self.sqs, self.queue_url, self.handler = sqs, queue_url, handler
        self.batch_size = batch_size
        self.retry_delay_seconds = retry_delay_seconds
        self.wait_seconds = wait_seconds
        self._stop_event = threading.Event()
        self.processed = 0
        self.failed = 0

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.poll_once()
            except Exception:  # keep polling: the stack must survive a bad moment
                log.exception("poller %s: receive failed", self.name)
                self._stop_event.wait(1)

    def poll_once(self) -> int:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_seconds,
            AttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [self._lambda_record(m) for m in messages]}
        try:
            self.handler(event, LocalLambdaContext(self.name))
        except Exception as error:
            self.failed += 1
            log.warning("poller %s: handler failed (%s: %s); message will be redelivered", self.name, type(error).__name__, error)
            for message in messages:
                # shorter than the queue's visibility timeout so local retries are quick
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=self.retry_delay_seconds
                )
            return 0
        for message in messages:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        self.processed += len(messages)
        return len(messages)

    def _lambda_record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_url,
            "awsRegion": "local",
        }


def rate_seconds(expression: str) -> float | None:
    """``rate(5 minutes)`` → 300; cron expressions are not played locally (None)."""
    expression = expression.strip()
    if not expression.startswith("rate(") or not expression.endswith(")"):
        return None
    value, unit = expression[5:-1].split()
    per_unit = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
    return float(value) * per_unit[unit]


class Scheduler(threading.Thread):
    """Call each scheduled function every ``interval`` seconds (the first call after one interval)."""

    def __init__(self, jobs: list[tuple[str, float, Callable[[Any, Any], Any]]]):
        super().__init__(name="scheduler", daemon=True)
        self.jobs = jobs
        self._stop_event = threading.Event()
        self.runs: dict[str, int] = {name: 0 for name, _, _ in jobs}

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        due = {name: time.monotonic() + interval for name, interval, _ in self.jobs}
        while not self._stop_event.wait(0.5):
            for name, interval, handler in self.jobs:
                if time.monotonic() < due[name]:
                    continue
                due[name] = time.monotonic() + interval
                event = {"id": f"local-{name}-{self.runs[name]}", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
                try:
                    handler(event, LocalLambdaContext(name))
                    self.runs[name] += 1
                except Exception:
                    log.exception("scheduled function %s failed", name)
