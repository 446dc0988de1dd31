"""Managed images (the images table), and the runner workers' heartbeats.

Items: ``pk = image#<tag>`` (one per managed image: pins, base, sizes,
last use); ``gsi1`` lists them (``gsi1pk = images``, ``gsi1sk = <last_used>``).
The same table holds the base image's platform (store/platform.py), job
results (store/results.py), run records (store/runs.py) and workspaces.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.governance.timeutil import now_iso
from chalicelib.store.dynamo import TableStore, from_dynamo, is_conditional_failure, set_expression, to_dynamo, with_retries

_KEYS = ("pk", "sk", "gsi1pk", "gsi1sk")


def _clean(item: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if item is None else {k: v for k, v in from_dynamo(item).items() if k not in _KEYS}


class ImageStore(TableStore):
    settings_field = "images_table"

    # --- images ---------------------------------------------------------------

    def record_image(self, tag: str, **fields: Any) -> None:
        now = now_iso()
        fields.setdefault("last_used", now)
        update = set_expression(dict(fields, tag=tag, gsi1pk="images", gsi1sk=fields["last_used"], updated_at=now))
        update["UpdateExpression"] += ", created_at = if_not_exists(created_at, :now)"
        update["ExpressionAttributeValues"][":now"] = now
        with_retries(lambda: self.table.update_item(Key={"pk": f"image#{tag}", "sk": "image"}, **update))

    def touch(self, tag: str) -> None:
        """Mark the image used now (cleanup keeps recently used images)."""
        now = now_iso()
        try:
            with_retries(
                lambda: self.table.update_item(
                    Key={"pk": f"image#{tag}", "sk": "image"},
                    ConditionExpression="attribute_exists(pk)",
                    **set_expression({"last_used": now, "gsi1sk": now}),
                )
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise

    def get_image(self, tag: str) -> dict[str, Any] | None:
        response = with_retries(lambda: self.table.get_item(Key={"pk": f"image#{tag}", "sk": "image"}, ConsistentRead=True))
        return _clean(response.get("Item"))

    def list_images(self) -> list[dict[str, Any]]:
        from boto3.dynamodb.conditions import Key

        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"IndexName": "gsi1", "KeyConditionExpression": Key("gsi1pk").eq("images"), "ScanIndexForward": False}
        while True:
            response = with_retries(lambda: self.table.query(**kwargs))
            items += [i for i in (_clean(x) for x in response.get("Items", [])) if i]
            if "LastEvaluatedKey" not in response:
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def forget_image(self, tag: str) -> None:
        with_retries(lambda: self.table.delete_item(Key={"pk": f"image#{tag}", "sk": "image"}))

    def forget_registry_digest(self, tag: str, digest: str) -> None:
        """The registry no longer holds ``tag`` at ``digest``: later workers rebuild it from the pins.

        Only that digest is dropped: a worker that pushed a rebuild since has recorded another one."""
        try:
            with_retries(lambda: self.table.update_item(
                Key={"pk": f"image#{tag}", "sk": "image"}, ConditionExpression="registry_digest = :digest",
                UpdateExpression="REMOVE registry_digest, registry_delete_error, registry_delete_failed_at",
                ExpressionAttributeValues={":digest": digest},
            ))  # fmt: skip
        except ClientError as error:
            if not is_conditional_failure(error):
                raise

    def note_registry_trouble(self, tag: str, error: str) -> None:
        """The cleanup could not delete the image from the registry: said on the record, retried next round."""
        try:
            with_retries(lambda: self.table.update_item(
                Key={"pk": f"image#{tag}", "sk": "image"}, ConditionExpression="attribute_exists(pk)",
                **set_expression({"registry_delete_error": error[:500], "registry_delete_failed_at": now_iso()}),
            ))  # fmt: skip
        except ClientError as failure:
            if not is_conditional_failure(failure):
                raise

    # --- runner heartbeats -------------------------------------------------------

    def heartbeat(self, worker_id: str, **detail: Any) -> None:
        item = {"pk": "runner#heartbeat", "sk": worker_id, "seen_at": now_iso(), **detail}
        with_retries(lambda: self.table.put_item(Item=to_dynamo(item)))

    def runners(self) -> list[dict[str, Any]]:
        from boto3.dynamodb.conditions import Key

        response = with_retries(lambda: self.table.query(KeyConditionExpression=Key("pk").eq("runner#heartbeat")))
        return [dict(_clean(i) or {}, worker_id=i["sk"]) for i in response.get("Items", [])]
