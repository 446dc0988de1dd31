"""Isolation rules in DynamoDB, beside the package rules (table: settings.rules_table).

Items: ``pk = isolation``, ``sk = rule#<rule_id>``: every rule under one
partition key, so each run reads them all with one strongly consistent query
(a rule removed a moment ago never chooses a tier; there are a handful).

Each rule is its own item written with ``attribute_not_exists``; a removal is
a conditional delete, so two admins removing one rule get one success and
one NotFound.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from chalicelib.errors import Conflict, NotFound
from chalicelib.governance.isolation import IsolationRule, rule_from_dict
from chalicelib.store.dynamo import TableStore, from_dynamo, is_conditional_failure, to_dynamo, with_retries

_KEY_FIELDS = ("pk", "sk", "item_type")
_PK = "isolation"


def _key(rule_id: str) -> dict[str, str]:
    return {"pk": _PK, "sk": f"rule#{rule_id}"}


def _rule(item: dict[str, Any]) -> IsolationRule:
    return rule_from_dict({k: v for k, v in from_dynamo(item).items() if k not in _KEY_FIELDS})


class IsolationRulesStore(TableStore):
    """DynamoDB implementation of ``governance.ports.IsolationRulesRepository``."""

    settings_field = "rules_table"

    def put(self, rule: IsolationRule) -> IsolationRule:
        item = to_dynamo(rule.to_json())
        item.update(_key(rule.rule_id), item_type="isolation_rule")
        if not self.put_new(item):
            raise Conflict(f"isolation rule {rule.rule_id} already exists")
        return rule

    def get(self, rule_id: str) -> IsolationRule | None:
        item = with_retries(lambda: self.table.get_item(Key=_key(rule_id), ConsistentRead=True)).get("Item")
        return _rule(item) if item else None

    def list(self) -> list[IsolationRule]:
        rules = []
        kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(_PK) & Key("sk").begins_with("rule#"),
                                  "ConsistentRead": True}  # fmt: skip
        while True:
            response = with_retries(lambda: self.table.query(**kwargs))
            rules += [_rule(item) for item in response.get("Items", [])]
            if not response.get("LastEvaluatedKey"):
                return sorted(rules, key=lambda r: (r.created_at, r.rule_id))
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def delete(self, rule_id: str) -> IsolationRule:
        try:
            response = with_retries(lambda: self.table.delete_item(
                Key=_key(rule_id), ConditionExpression="attribute_exists(sk)", ReturnValues="ALL_OLD"))  # fmt: skip
        except ClientError as error:
            if is_conditional_failure(error):
                raise NotFound(f"no isolation rule {rule_id}") from None
            raise
        return _rule(response["Attributes"])
