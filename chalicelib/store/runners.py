"""The runner fleet: one item per worker in the images table, rewritten by its heartbeat.

Items ``pk = runner#heartbeat``, ``sk = <worker id>`` (the same items
``GET /api/health`` counts): the worker's direct endpoint, the runtimes it
offers, its run slots and how many are free, the images it holds and the
warm pool keys it has ready, when it was last seen and how often it beats.
A worker not seen for ``GONE_AFTER_BEATS`` heartbeats is listed as gone; one
that stopped cleanly says so at once. ``expires_at`` lets DynamoDB's TTL
drop the items of workers long gone.
"""

from __future__ import annotations

import time
from typing import Any

from boto3.dynamodb.conditions import Key

from chalicelib.store.dynamo import TableStore, from_dynamo, to_dynamo, with_retries
from chalicelib.governance.timeutil import now_iso

PK = "runner#heartbeat"
#: heartbeats a worker may miss before it is listed as gone
GONE_AFTER_BEATS = 3
#: how long the item of a gone worker stays listed
KEEP_GONE_SECONDS = 3600

UP, GONE, STOPPED = "up", "gone", "stopped"


class RunnerFleet(TableStore):
    settings_field = "images_table"

    def beat(self, worker_id: str, *, heartbeat_seconds: float, **detail: Any) -> None:
        """Register or refresh ``worker_id`` (``detail``: endpoint, runtimes, slots, free_slots, images, warm, ...)."""
        now = time.time()
        item = {"pk": PK, "sk": worker_id, **detail, "worker_id": worker_id, "seen_at": now_iso(), "seen_epoch": now,
                "heartbeat_seconds": float(heartbeat_seconds), "stopped": False, "expires_at": int(now + KEEP_GONE_SECONDS)}  # fmt: skip
        with_retries(lambda: self.table.put_item(Item=to_dynamo(item)))

    def leave(self, worker_id: str) -> None:
        """The worker stopped cleanly: listed as stopped at once, and never routed to."""
        with_retries(lambda: self.table.update_item(
            Key={"pk": PK, "sk": worker_id}, UpdateExpression="SET stopped = :t, free_slots = :zero",
            ExpressionAttributeValues={":t": True, ":zero": 0}))  # fmt: skip

    def members(self, now: float | None = None) -> list[dict[str, Any]]:
        """Every worker seen in the last hour, newest first, each with ``state`` (up, gone, stopped) and ``age_seconds``."""
        now = time.time() if now is None else now
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(PK)}
        while True:
            response = with_retries(lambda: self.table.query(**kwargs))
            items += [from_dynamo(i) for i in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        members = []
        for item in items:
            seen = float(item.get("seen_epoch") or 0)
            if now - seen > KEEP_GONE_SECONDS:
                continue
            age = max(0.0, now - seen)
            beat = float(item.get("heartbeat_seconds") or 15.0)
            state = STOPPED if item.get("stopped") else GONE if age > GONE_AFTER_BEATS * beat else UP
            member = {k: v for k, v in item.items() if k not in ("pk", "sk", "expires_at", "stopped")}
            members.append({**member, "worker_id": item["sk"], "state": state, "age_seconds": round(age, 1)})
        return sorted(members, key=lambda m: (m["state"] != UP, m["age_seconds"]))
