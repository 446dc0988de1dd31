"""Isolation rules in DynamoDB, beside the package rules (table: settings.rules_table).

Items: ``pk = isolation#<rule_id>``, ``sk = isolation``;
``gsi1 = ("isolation_rules", "<created_at>#<rule_id>")`` lists them all.

Each rule is its own item written with ``attribute_not_exists``; a removal is
a conditional delete, so two admins removing one rule get one success and
one NotFound. The list is read through the index (eventually consistent),
then each listed item again with a consistent read, so a rule removed a
moment ago never chooses a tier.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from chalicelib.errors import Conflict, NotFound
from chalicelib.governance.isolation import IsolationRule, rule_from_dict
from chalicelib.store.dynamo import TableStore, from_dynamo, is_conditional_failure, to_dynamo, with_retries

_KEY_FIELDS = ("pk", "sk", "gsi1pk", "gsi1sk", "item_type")
_ALL = "isolation_rules"
_SK = "isolation"


def _key(rule_id: str) -> dict[str, str]:
    return {"pk": f"isolation#{rule_id}", "sk": _SK}


def _rule(item: dict[str, Any]) -> IsolationRule:
    return rule_from_dict({k: v for k, v in from_dynamo(item).items() if k not in _KEY_FIELDS})


class IsolationRulesStore(TableStore):
    """DynamoDB implementation of ``governance.ports.IsolationRulesRepository``."""

    settings_field = "rules_table"

    def put(self, rule: IsolationRule) -> IsolationRule:
        item = to_dynamo(rule.to_json())
        item.update(_key(rule.rule_id), item_type="isolation_rule", gsi1pk=_ALL, gsi1sk=f"{rule.created_at}#{rule.rule_id}")
        try:
            with_retries(lambda: self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)"))
        except ClientError as error:
            if is_conditional_failure(error):
                raise Conflict(f"isolation rule {rule.rule_id} already exists") from None
            raise
        return rule

    def get(self, rule_id: str) -> IsolationRule | None:
        item = with_retries(lambda: self.table.get_item(Key=_key(rule_id), ConsistentRead=True)).get("Item")
        return _rule(item) if item else None

    def list(self) -> list[IsolationRule]:
        rules = []
        kwargs: dict[str, Any] = {"IndexName": "gsi1", "KeyConditionExpression": Key("gsi1pk").eq(_ALL)}
        while True:
            response = with_retries(lambda: self.table.query(**kwargs))
            for listed in response.get("Items", []):
                rule = self.get(str(listed["rule_id"]))
                if rule is not None:
                    rules.append(rule)
            if not response.get("LastEvaluatedKey"):
                return rules
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def delete(self, rule_id: str) -> IsolationRule:
        try:
            response = with_retries(lambda: self.table.delete_item(
                Key=_key(rule_id), ConditionExpression="attribute_exists(pk)", ReturnValues="ALL_OLD"))  # fmt: skip
        except ClientError as error:
            if is_conditional_failure(error):
                raise NotFound(f"no isolation rule {rule_id}") from None
            raise
        return _rule(response["Attributes"])
