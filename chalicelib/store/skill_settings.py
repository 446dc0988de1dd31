"""Per-skill settings that outlive versions (images table, ``pk = skill-settings#<skill_id>``): today
``allow_snippets`` (may agents send code to run against the skill; None: every agent but STUDENT ones)."""

from __future__ import annotations

from typing import Any

from chalicelib.governance.timeutil import now_iso
from chalicelib.store.dynamo import TableStore, from_dynamo, to_dynamo, with_retries


def _key(skill_id: str) -> dict[str, str]:
    return {"pk": f"skill-settings#{skill_id}", "sk": "settings"}


class SkillSettingsStore(TableStore):
    settings_field = "images_table"

    def get(self, skill_id: str) -> dict[str, Any]:
        item = with_retries(lambda: self.table.get_item(Key=_key(skill_id))).get("Item")
        return {} if item is None else {k: v for k, v in from_dynamo(item).items() if k not in ("pk", "sk")}

    def put(self, skill_id: str, *, actor: str, **fields: Any) -> dict[str, Any]:
        item = {**_key(skill_id), **self.get(skill_id), **fields, "skill_id": skill_id, "updated_by": actor, "updated_at": now_iso()}
        with_retries(lambda: self.table.put_item(Item=to_dynamo(item)))
        return {k: v for k, v in item.items() if k not in ("pk", "sk")}
