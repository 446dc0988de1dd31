"""Admin review decisions the Scan step honours (rules table, their own key space).

* advisory ignores: ``pk = ignore#<ADVISORY-ID>`` — accept one advisory until a date;
* code approvals: ``pk = code-approval#<skill_id>``, ``sk = <version>`` — accept
  the HIGH findings of one skill version (and, only when it says
  ``releases_malicious``, lift the block of its CRITICAL ones).
Neither is ever deleted through the API; an ignore simply expires.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Key

from chalicelib.governance.timeutil import now_iso
from chalicelib.scanning.policy import AdvisoryIgnore
from chalicelib.store.dynamo import TableStore, from_dynamo, to_dynamo, with_retries


class ReviewStore(TableStore):
    settings_field = "rules_table"

    def add_ignore(self, ignore: AdvisoryIgnore) -> None:
        item = {"pk": f"ignore#{ignore.advisory_id.upper()}", "sk": f"ignore#{now_iso()}",
                "gsi1pk": "ignores", "gsi1sk": ignore.expires_at.isoformat(), **ignore.model_dump(mode="json")}  # fmt: skip
        with_retries(lambda: self.table.put_item(Item=to_dynamo(item)))

    def ignores(self) -> list[AdvisoryIgnore]:
        response = with_retries(lambda: self.table.query(IndexName="gsi1", KeyConditionExpression=Key("gsi1pk").eq("ignores")))
        fields = AdvisoryIgnore.model_fields
        return [AdvisoryIgnore(**{k: v for k, v in from_dynamo(i).items() if k in fields}) for i in response.get("Items", [])]

    def approve_code(self, skill_id: str, version: str, *, reason: str, approved_by: str,
                     releases_malicious: bool = False) -> dict[str, Any]:  # fmt: skip
        """``releases_malicious``: the admin also lifts the block of CRITICAL (malicious) findings of this version."""
        item = {"pk": f"code-approval#{skill_id}", "sk": version, "skill_id": skill_id, "version": version,
                "reason": reason, "approved_by": approved_by, "approved_at": now_iso(),
                "releases_malicious": bool(releases_malicious)}  # fmt: skip
        with_retries(lambda: self.table.put_item(Item=item))
        return {k: v for k, v in item.items() if k not in ("pk", "sk")}

    def code_approval(self, skill_id: str, version: str) -> dict[str, Any] | None:
        response = with_retries(lambda: self.table.get_item(Key={"pk": f"code-approval#{skill_id}", "sk": version}, ConsistentRead=True))
        item = response.get("Item")
        return None if item is None else {k: v for k, v in from_dynamo(item).items() if k not in ("pk", "sk")}


def parse_expiry(value: str) -> datetime:
    from datetime import UTC

    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
