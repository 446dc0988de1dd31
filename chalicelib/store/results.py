"""Outcomes of build, cleanup and removal jobs, read by whoever asked (items in the images table).

Item ``pk = result#<job_id>``, ``sk = result``. Run jobs keep their outcome in their run record
(store/runs.py) instead.
"""

from __future__ import annotations

from typing import Any

from chalicelib.governance.timeutil import now_iso
from chalicelib.store.dynamo import TableStore, from_dynamo, to_dynamo, with_retries


class ResultStore(TableStore):
    settings_field = "images_table"

    def put(self, job_id: str, result: dict[str, Any]) -> None:
        item = {"pk": f"result#{job_id}", "sk": "result", "result": result, "finished_at": now_iso()}
        with_retries(lambda: self.table.put_item(Item=to_dynamo(item)))

    def get(self, job_id: str) -> dict[str, Any] | None:
        response = with_retries(lambda: self.table.get_item(Key={"pk": f"result#{job_id}", "sk": "result"}, ConsistentRead=True))
        item = response.get("Item")
        return from_dynamo(item["result"]) if item else None
