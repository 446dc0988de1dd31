"""What the runner's base image really is (item ``pk = base#platform`` in the images table).

A worker records it when it starts; resolution pins wheels for it (its CPython version and
manylinux tag), and falls back to the settings' platform until a worker has said.

With a shared registry, the base image pushed by the first worker that had it is recorded here too
(``pk = base#registry``, one item per registry, tag and harness layer key): a worker lacking the base
pulls it by that digest instead of building it (runner/shared_base.py).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.governance.timeutil import now_iso
from chalicelib.packages.pins import TargetPlatform
from chalicelib.store.dynamo import TableStore, from_dynamo, is_conditional_failure, to_dynamo, with_retries

_KEY = {"pk": "base#platform", "sk": "base"}


class PlatformStore(TableStore):
    settings_field = "images_table"

    def record(self, base_tag: str, base_image_id: str, platform: TargetPlatform) -> None:
        item = {**_KEY, "base_tag": base_tag, "base_image_id": base_image_id, "platform": platform.model_dump(),
                "updated_at": now_iso()}  # fmt: skip
        with_retries(lambda: self.table.put_item(Item=to_dynamo(item)))

    def get(self) -> TargetPlatform | None:
        response = with_retries(lambda: self.table.get_item(Key=_KEY))
        item = response.get("Item")
        return TargetPlatform(**from_dynamo(item["platform"])) if item else None

    # --- the base image in the shared registry ------------------------------------

    def base_digest(self, registry: str, tag: str, layer_key: str) -> dict[str, Any] | None:
        """The pushed base image (``digest``, ``image_id``) for this registry, tag and layer key, if any."""
        response = with_retries(lambda: self.table.get_item(Key=_base_key(registry, tag, layer_key), ConsistentRead=True))
        item = response.get("Item")
        return {k: v for k, v in from_dynamo(item).items() if k not in ("pk", "sk")} if item else None

    def record_base_digest(self, registry: str, tag: str, layer_key: str, *, digest: str, image_id: str,
                           replace: bool = False) -> bool:  # fmt: skip
        """Record the pushed base; without ``replace`` the first worker's record stays. True when written."""
        item = {**_base_key(registry, tag, layer_key), "digest": digest, "image_id": image_id, "recorded_at": now_iso()}
        condition = {} if replace else {"ConditionExpression": "attribute_not_exists(pk)"}
        try:
            with_retries(lambda: self.table.put_item(Item=to_dynamo(item), **condition))
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise
        return True


def _base_key(registry: str, tag: str, layer_key: str) -> dict[str, str]:
    return {"pk": "base#registry", "sk": f"{registry}#{tag}#{layer_key}"}
