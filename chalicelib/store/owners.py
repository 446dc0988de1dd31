"""Skill owners and the inbox's prefix map in DynamoDB.

* owner: skills table, ``pk = owner#<skill_id>``, ``sk = owner`` (apart from the
  versions, whose ``pk`` is the bare skill id). The first publish claims it with
  ``attribute_not_exists``, so two publishers racing for a new skill id cannot
  both become its owner; an admin's transfer may be conditional on the current owner.
* inbox prefix: principals table, ``pk = inbox#<prefix>``, ``sk = prefix``,
  ``gsi1 = ("inboxprefixes", <prefix>)`` lists them.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from chalicelib.errors import NotFound
from chalicelib.governance.ownership import InboxPrefix, SkillOwner, conflict_if_changed
from chalicelib.store.dynamo import TableStore, from_dynamo, is_conditional_failure, to_dynamo, with_retries

_KEY_FIELDS = ("pk", "sk", "gsi1pk", "gsi1sk", "item_type")


def _clean(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in from_dynamo(item).items() if k not in _KEY_FIELDS}


class SkillOwnerStore(TableStore):
    settings_field = "skills_table"

    @staticmethod
    def _key(skill_id: str) -> dict[str, str]:
        return {"pk": f"owner#{skill_id}", "sk": "owner"}

    def get_owner(self, skill_id: str) -> SkillOwner | None:
        response = with_retries(lambda: self.table.get_item(Key=self._key(skill_id), ConsistentRead=True))
        item = response.get("Item")
        return SkillOwner.model_validate(_clean(item)) if item else None

    def claim_owner(self, owner: SkillOwner) -> tuple[SkillOwner, bool]:
        item = {**to_dynamo(owner.model_dump(mode="json")), **self._key(owner.skill_id), "item_type": "owner"}
        if not self.put_new(item):
            current = self.get_owner(owner.skill_id)
            assert current is not None  # owners are replaced, never deleted
            return current, False
        return owner, True

    def set_owner(self, owner: SkillOwner, *, expected_owner_id: str | None = None) -> SkillOwner | None:
        item = {**to_dynamo(owner.model_dump(mode="json")), **self._key(owner.skill_id), "item_type": "owner"}
        condition: dict[str, Any] = {}
        if expected_owner_id is not None:
            condition = {"ConditionExpression": "owner_id = :expected",
                         "ExpressionAttributeValues": {":expected": expected_owner_id}}  # fmt: skip
        try:
            response = with_retries(lambda: self.table.put_item(Item=item, ReturnValues="ALL_OLD", **condition))
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            conflict_if_changed(self.get_owner(owner.skill_id), expected_owner_id, owner.skill_id)
            raise  # pragma: no cover - the condition failed, so the check above raised
        previous = response.get("Attributes")
        return SkillOwner.model_validate(_clean(previous)) if previous else None


class InboxPrefixStore(TableStore):
    settings_field = "principals_table"

    @staticmethod
    def _key(prefix: str) -> dict[str, str]:
        return {"pk": f"inbox#{prefix}", "sk": "prefix"}

    def put_prefix(self, mapping: InboxPrefix) -> InboxPrefix | None:
        item = {**to_dynamo(mapping.model_dump(mode="json")), **self._key(mapping.prefix), "item_type": "inbox_prefix",
                "gsi1pk": "inboxprefixes", "gsi1sk": mapping.prefix or "/"}  # fmt: skip
        response = with_retries(lambda: self.table.put_item(Item=item, ReturnValues="ALL_OLD"))
        previous = response.get("Attributes")
        return InboxPrefix.model_validate(_clean(previous)) if previous else None

    def get_prefix(self, prefix: str) -> InboxPrefix | None:
        response = with_retries(lambda: self.table.get_item(Key=self._key(prefix), ConsistentRead=True))
        item = response.get("Item")
        return InboxPrefix.model_validate(_clean(item)) if item else None

    def delete_prefix(self, prefix: str) -> InboxPrefix:
        response = with_retries(lambda: self.table.delete_item(Key=self._key(prefix), ReturnValues="ALL_OLD"))
        previous = response.get("Attributes")
        if not previous:
            raise NotFound(f"inbox prefix {prefix or '/'!r} is not mapped")
        return InboxPrefix.model_validate(_clean(previous))

    def list_prefixes(self) -> list[InboxPrefix]:
        kwargs: dict[str, Any] = {"IndexName": "gsi1", "KeyConditionExpression": Key("gsi1pk").eq("inboxprefixes")}
        found: list[InboxPrefix] = []
        while True:
            response = with_retries(lambda: self.table.query(**kwargs))
            found.extend(InboxPrefix.model_validate(_clean(i)) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return found
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
