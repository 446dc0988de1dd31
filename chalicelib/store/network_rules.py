"""Network rules in DynamoDB (the rules table): ``pk = netrules``, ``sk = rule#<created_at>#<rule_id>``.

One partition: an admin keeps tens of host rules, not thousands, and every
run check reads them all (cached, ``governance/network.py``). Every rule is
its own item written with ``attribute_not_exists``; a revoke is a conditional
update, so concurrent revokes have one winner.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from chalicelib.errors import Conflict, NotFound
from chalicelib.governance.network import NetworkRule
from chalicelib.governance.timeutil import now_iso
from chalicelib.store.dynamo import TableStore, from_dynamo, is_conditional_failure, to_dynamo, with_retries

_PK = "netrules"
_KEYS = ("pk", "sk", "item_type")


def _rule(item: dict[str, Any]) -> NetworkRule:
    data = {k: v for k, v in from_dynamo(item).items() if k not in _KEYS}
    data["ports"] = tuple(int(p) for p in data.get("ports") or ())
    return NetworkRule.model_validate(data)


class NetworkRulesStore(TableStore):
    settings_field = "rules_table"

    def put(self, rule: NetworkRule) -> NetworkRule:
        item = to_dynamo(rule.model_dump(mode="json"))
        item.update(pk=_PK, sk=f"rule#{rule.created_at}#{rule.rule_id}", item_type="network_rule")
        if not self.put_new(item):
            raise Conflict(f"rule {rule.rule_id} already exists")
        return rule

    def list(self, *, include_revoked: bool = False) -> list[NetworkRule]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(_PK), "ConsistentRead": True}
        while True:
            page = with_retries(lambda: self.table.query(**kwargs))
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        rules = [_rule(item) for item in items]
        return [r for r in rules if include_revoked or r.active]

    def revoke(self, rule_id: str, *, revoked_by: str) -> NetworkRule:
        rule = next((r for r in self.list(include_revoked=True) if r.rule_id == rule_id), None)
        if rule is None:
            raise NotFound(f"no network rule {rule_id}")
        try:
            response = with_retries(lambda: self.table.update_item(
                Key={"pk": _PK, "sk": f"rule#{rule.created_at}#{rule_id}"},
                UpdateExpression="SET revoked_at = :at, revoked_by = :by",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(revoked_at)",
                ExpressionAttributeValues={":at": now_iso(), ":by": revoked_by}, ReturnValues="ALL_NEW"))  # fmt: skip
        except ClientError as error:
            if is_conditional_failure(error):
                raise Conflict(f"network rule {rule_id} is already revoked") from None
            raise
        return _rule({k: v for k, v in response["Attributes"].items() if k != "revoked_by"})
