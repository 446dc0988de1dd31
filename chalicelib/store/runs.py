"""Run jobs and their outcome (items in the images table): what makes a run happen at most once.

Item ``pk = run#<job_id>``, ``sk = run``, written by the API before it hands
the job to any runner (``state = accepted``, who asked, for which agent and
skill, until when it may start and when its result is due). A worker
*claims* it before starting the container (``accepted → running``, a
conditional write, so exactly one worker of however many copies of the job
exist gets it: a direct request and its queued fallback, a replayed message,
an SQS redelivery). A worker that could not start it releases it
(``running → accepted``); the first outcome recorded ends it
(``state = done`` with the result). ``expires_at`` (epoch seconds) lets
DynamoDB's TTL delete old items.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.governance.timeutil import now_iso
from chalicelib.store.dynamo import TableStore, from_dynamo, is_conditional_failure, to_dynamo, with_retries

ACCEPTED, RUNNING, DONE = "accepted", "running", "done"
CLAIMED, TAKEN, UNKNOWN = "claimed", "taken", "unknown"
KEEP_SECONDS = 7 * 24 * 3600  # how long a run's record (and result) stays readable


def _key(job_id: str) -> dict[str, str]:
    return {"pk": f"run#{job_id}", "sk": "run"}


class RunStore(TableStore):
    settings_field = "images_table"

    def register(self, job_id: str, **fields: Any) -> None:
        """Record a new run job as ``accepted`` (before it is sent anywhere)."""
        item = self._accepted(job_id, fields)
        with_retries(lambda: self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)"))

    def register_started(self, job_id: str, event: Any, audit: Any, **fields: Any) -> None:
        """``register`` and ``audit.append(event)`` (the run's started event) in one transaction: both are
        durable, or neither, in one round trip instead of two. ``audit`` is the AuditStore; any other audit
        log (the in-memory one of unit tests) is written after the record."""
        put = getattr(audit, "transact_put", None)
        if put is None:
            self.register(job_id, **fields)
            audit.append(event)
            return
        client = self.table.meta.client
        items = [{"Put": {"TableName": self.table.name, "Item": self._accepted(job_id, fields),
                          "ConditionExpression": "attribute_not_exists(pk)"}}, put(event)]  # fmt: skip
        with_retries(lambda: client.transact_write_items(TransactItems=items))

    @staticmethod
    def _accepted(job_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        item = {**_key(job_id), **fields, "job_id": job_id, "state": ACCEPTED, "created_at": now_iso(),
                "expires_at": int(time.time() + KEEP_SECONDS)}  # fmt: skip
        return to_dynamo(item)

    def claim(self, job_id: str, worker_id: str) -> str:
        """``claimed`` (this worker may start it), ``taken`` (another copy got it, or it ended) or ``unknown``."""
        try:
            with_retries(lambda: self.table.update_item(
                Key=_key(job_id), UpdateExpression="SET #s = :running, worker = :w, claimed_at = :now",
                ConditionExpression="attribute_exists(pk) AND #s = :accepted", ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={":running": RUNNING, ":accepted": ACCEPTED, ":w": worker_id, ":now": now_iso()},
            ))  # fmt: skip
            return CLAIMED
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
        return TAKEN if self.get(job_id) is not None else UNKNOWN

    def release(self, job_id: str, worker_id: str) -> None:
        """Hand back a claim whose container never started: another attempt may take it."""
        try:
            with_retries(lambda: self.table.update_item(
                Key=_key(job_id), UpdateExpression="SET #s = :accepted REMOVE worker, claimed_at",
                ConditionExpression="#s = :running AND worker = :w", ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={":running": RUNNING, ":accepted": ACCEPTED, ":w": worker_id},
            ))  # fmt: skip
        except ClientError as error:
            if not is_conditional_failure(error):
                raise

    def finish(self, job_id: str, result: dict[str, Any]) -> bool:
        """Record the run's outcome; False when it already had one (the first outcome stands)."""
        try:
            with_retries(lambda: self.table.update_item(
                Key=_key(job_id), UpdateExpression="SET #s = :done, #r = :result, finished_at = :now",
                ConditionExpression="attribute_exists(pk) AND #s <> :done", ExpressionAttributeNames={"#s": "state", "#r": "result"},
                ExpressionAttributeValues={":done": DONE, ":result": to_dynamo(result), ":now": now_iso()},
            ))  # fmt: skip
            return True
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            return False

    def finish_with_event(self, job_id: str, result: dict[str, Any], event_put: dict[str, Any]) -> bool:
        """``finish`` and the run's end event (``event_put``: AuditStore.transact_put) in one transaction, so the
        record never says done without its audit event; False when the run already had an outcome."""
        update = {"Update": {
            "TableName": self.table.name, "Key": _key(job_id),
            "UpdateExpression": "SET #s = :done, #r = :result, finished_at = :now",
            "ConditionExpression": "attribute_exists(pk) AND #s <> :done", "ExpressionAttributeNames": {"#s": "state", "#r": "result"},
            "ExpressionAttributeValues": {":done": DONE, ":result": to_dynamo(result), ":now": now_iso()},
        }}  # fmt: skip
        client = self.table.meta.client
        try:
            with_retries(lambda: client.transact_write_items(TransactItems=[update, event_put]))
            return True
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return False  # the first outcome stands
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                return self.finish(job_id, result)  # its end event is stored already: the record alone
            raise

    def get(self, job_id: str) -> dict[str, Any] | None:
        response = with_retries(lambda: self.table.get_item(Key=_key(job_id), ConsistentRead=True))
        item = response.get("Item")
        return None if item is None else {k: v for k, v in from_dynamo(item).items() if k not in ("pk", "sk")}
