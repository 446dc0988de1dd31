"""The shared resolution cache in DynamoDB (resolver table).

One item per resolved requirement set: ``pk`` = ``resolution#<key>``,
``sk`` = ``-``, the pins as JSON text (a string, so floats and empty values
survive unchanged) and ``expires_at`` (the table's TTL attribute; an item
past it is treated as absent, since TTL deletes late).
"""

from __future__ import annotations

import json
import time
from typing import Any

from chalicelib.store.dynamo import TableStore, with_retries

#: DynamoDB items stop at 400 KB; a closure larger than this is not cached (it still resolves)
_MAX_PINS_BYTES = 300 * 1024


class DynamoResolutionCache(TableStore):
    settings_field = "resolver_table"

    def get(self, key: str) -> list[dict[str, Any]] | None:
        item = with_retries(lambda: self.table.get_item(Key={"pk": f"resolution#{key}", "sk": "-"})).get("Item")
        if not item or float(item.get("expires_at", 0)) <= time.time():
            return None
        return json.loads(item["pins"])

    def put(self, key: str, pins: list[dict[str, Any]], ttl_seconds: float) -> None:
        text = json.dumps(pins, separators=(",", ":"))
        if ttl_seconds <= 0 or len(text) > _MAX_PINS_BYTES:
            return
        item = {"pk": f"resolution#{key}", "sk": "-", "pins": text, "expires_at": int(time.time() + ttl_seconds)}
        with_retries(lambda: self.table.put_item(Item=item))
