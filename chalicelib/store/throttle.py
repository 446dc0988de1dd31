"""The throttle's state in DynamoDB (resolver table), shared by every API instance.

Items (``pk`` / ``sk``), each with ``expires_at`` (epoch seconds, the table's
TTL attribute; reads check it too, since TTL deletes late):

* ``rate#<action>#<key id>`` / ``<window>``: ``uses``, added to only while
  below the limit (one conditional ``UpdateItem``);
* ``slot#<action>#<key id>`` / ``<n>``: ``lease_id``, written only when the
  slot is absent or its lease expired (conditional ``PutItem``), deleted on
  release only by the lease that holds it.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from chalicelib.store.dynamo import TableStore, is_conditional_failure, with_retries


class DynamoThrottleStore(TableStore):
    settings_field = "resolver_table"

    def count_use(self, scope: str, window: int, limit: int, expires_at: float) -> bool:
        try:
            with_retries(
                lambda: self.table.update_item(
                    Key={"pk": f"rate#{scope}", "sk": str(window)},
                    UpdateExpression="ADD #uses :one SET expires_at = :expires",
                    ConditionExpression="attribute_not_exists(#uses) OR #uses < :limit",
                    ExpressionAttributeNames={"#uses": "uses"},
                    ExpressionAttributeValues={":one": 1, ":limit": limit, ":expires": int(expires_at)},
                )
            )
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise
        return True

    def take_slot(self, scope: str, slots: int, lease_id: str, now: float, lease_until: float) -> bool:
        for slot in range(slots):
            try:
                with_retries(
                    lambda slot=slot: self.table.put_item(
                        Item={"pk": f"slot#{scope}", "sk": str(slot), "lease_id": lease_id, "expires_at": int(lease_until) + 1},
                        ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                        ExpressionAttributeValues={":now": int(now)},
                    )
                )
            except ClientError as error:
                if is_conditional_failure(error):
                    continue
                raise
            return True
        return False

    def release_slot(self, scope: str, lease_id: str) -> None:
        # which slot the lease holds is not kept: a query of the few slots finds it
        response = with_retries(
            lambda: self.table.query(
                KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": f"slot#{scope}"}, ConsistentRead=True
            )
        )
        for item in response.get("Items", []):
            if item.get("lease_id") != lease_id:
                continue
            try:
                with_retries(
                    lambda item=item: self.table.delete_item(
                        Key={"pk": item["pk"], "sk": item["sk"]},
                        ConditionExpression="lease_id = :lease",
                        ExpressionAttributeValues={":lease": lease_id},
                    )
                )
            except ClientError as error:
                if not is_conditional_failure(error):
                    raise
