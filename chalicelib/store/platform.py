"""What the runner's base image really is (item ``pk = base#platform`` in the images table).

A worker records it when it starts; resolution pins wheels for it (its CPython version and
manylinux tag), and falls back to the settings' platform until a worker has said.
"""

from __future__ import annotations

from chalicelib.governance.timeutil import now_iso
from chalicelib.packages.pins import TargetPlatform
from chalicelib.store.dynamo import TableStore, from_dynamo, to_dynamo, with_retries

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
