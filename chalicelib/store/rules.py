"""Package rules and approval requests in DynamoDB (table: settings.rules_table).

Items:

* rule (approval or ban): ``pk = pkg#<package>``, ``sk = rule#<rule_id>``;
  ``gsi1 = ("rules", "<package>#<created_at>#<rule_id>")`` lists every rule,
  ``gsi2 = ("ruleid#<rule_id>", "rule")`` finds a rule by id (for revoke).
* request: ``pk = req#<request_id>``, ``sk = request``;
  ``gsi1 = ("reqstatus#<status>", "<created_at>#<request_id>")`` lists by status,
  ``gsi2 = ("reqpkg#<package>", "<created_at>#<request_id>")`` lists by package,
  ``gsi3 = ("reqagent#<agent_id>", "<created_at>#<request_id>")`` lists the requests that name an agent
  (requests filed before this index existed lack it: ``backfill_agent_index`` adds it).

Races: every rule is its own item written with ``attribute_not_exists``, so
concurrent approvals and bans never overwrite each other; a revoke is a
conditional update (the rule exists and is not revoked yet), so concurrent
revokes of one rule have exactly one winner and a revoke never resurrects or
loses a rule. Reads of one package's rules are strongly consistent queries on
the base table.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from chalicelib.errors import Conflict, NotFound
from chalicelib.governance.rules import (
    ApprovalRequest,
    RequestStatus,
    Rule,
    RuleSet,
    decided_status,
    normalize_package_name,
    rule_from_dict,
)
from chalicelib.governance.timeutil import now_iso
from chalicelib.store.dynamo import TableStore, from_dynamo, is_conditional_failure, to_dynamo, with_retries

_KEY_FIELDS = ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk", "item_type")
_ALL_RULES = "rules"


def _strip_keys(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in from_dynamo(item).items() if k not in _KEY_FIELDS}


def _rule_item(rule: Rule) -> dict[str, Any]:
    item = to_dynamo(rule.model_dump(mode="json"))
    item.update(
        pk=f"pkg#{rule.package}",
        sk=f"rule#{rule.rule_id}",
        item_type="rule",
        gsi1pk=_ALL_RULES,
        gsi1sk=f"{rule.package}#{rule.created_at}#{rule.rule_id}",
        gsi2pk=f"ruleid#{rule.rule_id}",
        gsi2sk="rule",
    )
    return item


def _request_item(request: ApprovalRequest) -> dict[str, Any]:
    item = to_dynamo(request.model_dump(mode="json"))
    order = f"{request.created_at}#{request.request_id}"
    item.update(
        pk=f"req#{request.request_id}",
        sk="request",
        item_type="request",
        gsi1pk=f"reqstatus#{request.status.value}",
        gsi1sk=order,
        gsi2pk=f"reqpkg#{request.package}",
        gsi2sk=order,
    )
    if request.agent_id:
        item.update(gsi3pk=f"reqagent#{request.agent_id}", gsi3sk=order)
    return item


class RulesStore(TableStore):
    """DynamoDB implementation of ``governance.ports.RulesRepository``."""

    settings_field = "rules_table"

    # --- rules --------------------------------------------------------------------

    def put_rule(self, rule: Rule) -> Rule:
        item = _rule_item(rule)
        if not self.put_new(item):
            raise Conflict(f"rule {rule.rule_id} already exists")
        return rule

    def get_rule(self, rule_id: str) -> Rule | None:
        found = with_retries(
            lambda: self.table.query(IndexName="gsi2", KeyConditionExpression=Key("gsi2pk").eq(f"ruleid#{rule_id}"))
        )
        items = found.get("Items", [])
        if not items:
            return None
        # The index is eventually consistent; read the item itself for its current state.
        response = with_retries(
            lambda: self.table.get_item(Key={"pk": items[0]["pk"], "sk": items[0]["sk"]}, ConsistentRead=True)
        )
        item = response.get("Item")
        return rule_from_dict(_strip_keys(item)) if item else None

    def rules_for(self, package: str, *, include_revoked: bool = False) -> RuleSet:
        name = normalize_package_name(package)
        items = self._query(
            KeyConditionExpression=Key("pk").eq(f"pkg#{name}") & Key("sk").begins_with("rule#"),
            ConsistentRead=True,
        )
        rules = [rule_from_dict(_strip_keys(item)) for item in items]
        return RuleSet.of(name, [r for r in rules if include_revoked or r.active])

    def list_rules(self, *, package: str | None = None, include_revoked: bool = False) -> list[Rule]:
        condition = Key("gsi1pk").eq(_ALL_RULES)
        if package:
            condition = condition & Key("gsi1sk").begins_with(f"{normalize_package_name(package)}#")
        rules = [rule_from_dict(_strip_keys(item)) for item in self._query(IndexName="gsi1", KeyConditionExpression=condition)]
        return [r for r in rules if include_revoked or r.active]

    def revoke_rule(self, rule_id: str, *, revoked_by: str, revoked_at: str | None = None) -> Rule:
        rule = self.get_rule(rule_id)
        if rule is None:
            raise NotFound(f"no rule {rule_id}")
        try:
            response = with_retries(
                lambda: self.table.update_item(
                    Key={"pk": f"pkg#{rule.package}", "sk": f"rule#{rule_id}"},
                    UpdateExpression="SET revoked_at = :at, revoked_by = :by",
                    ConditionExpression="attribute_exists(pk) AND attribute_not_exists(revoked_at)",
                    ExpressionAttributeValues={":at": revoked_at or now_iso(), ":by": revoked_by},
                    ReturnValues="ALL_NEW",
                )
            )
        except ClientError as error:
            if is_conditional_failure(error):
                raise Conflict(f"rule {rule_id} is already revoked") from None
            raise
        return rule_from_dict(_strip_keys(response["Attributes"]))

    # --- approval requests ----------------------------------------------------------

    def create_request(self, request: ApprovalRequest) -> ApprovalRequest:
        item = _request_item(request)
        if not self.put_new(item):
            existing = self.get_request(request.request_id)
            if existing is None:  # pragma: no cover - the item cannot vanish: requests are never deleted
                raise Conflict(f"approval request {request.request_id} could not be stored")
            return existing
        return request

    def get_request(self, request_id: str) -> ApprovalRequest | None:
        response = with_retries(
            lambda: self.table.get_item(Key={"pk": f"req#{request_id}", "sk": "request"}, ConsistentRead=True)
        )
        item = response.get("Item")
        return ApprovalRequest.model_validate(_strip_keys(item)) if item else None

    def list_requests(
        self,
        status: RequestStatus | str | None = None,
        *,
        package: str | None = None,
        agent_id: str | None = None,
        limit: int | None = 500,
    ) -> list[ApprovalRequest]:
        """Newest first, read to the end of the index when ``limit`` is None.

        Each filter has its own index (agent, package, status), so a flood of
        requests by one agent or for one package never hides anyone else's.
        """
        wanted = RequestStatus.parse(status) if status else None
        status_filter = {"FilterExpression": Attr("status").eq(wanted.value)} if wanted is not None else {}
        if agent_id:
            items = self._query(
                IndexName="gsi3", KeyConditionExpression=Key("gsi3pk").eq(f"reqagent#{agent_id}"),
                ScanIndexForward=False, limit=limit, **status_filter,
            )  # fmt: skip
            if package:
                name = normalize_package_name(package)
                items = [i for i in items if i.get("package") == name]
        elif package:
            items = self._query(
                IndexName="gsi2", KeyConditionExpression=Key("gsi2pk").eq(f"reqpkg#{normalize_package_name(package)}"),
                ScanIndexForward=False, limit=limit, **status_filter,
            )  # fmt: skip
        else:
            statuses = [wanted] if wanted is not None else list(RequestStatus)
            items = []
            for each in statuses:
                items.extend(
                    self._query(
                        IndexName="gsi1",
                        KeyConditionExpression=Key("gsi1pk").eq(f"reqstatus#{each.value}"),
                        ScanIndexForward=False,
                        limit=limit,
                    )
                )
        requests = [ApprovalRequest.model_validate(_strip_keys(item)) for item in items]
        requests.sort(key=lambda r: (r.created_at, r.request_id), reverse=True)
        return requests if limit is None else requests[:limit]

    def backfill_agent_index(self) -> int:
        """Give requests stored before the agent index existed their index keys; how many were updated."""
        updated = 0
        for each in RequestStatus:
            for item in self._iter_query(IndexName="gsi1", KeyConditionExpression=Key("gsi1pk").eq(f"reqstatus#{each.value}")):
                if not item.get("agent_id") or item.get("gsi3pk"):
                    continue
                with_retries(lambda item=item: self.table.update_item(
                    Key={"pk": item["pk"], "sk": item["sk"]}, UpdateExpression="SET gsi3pk = :pk, gsi3sk = :sk",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeValues={":pk": f"reqagent#{item['agent_id']}", ":sk": item["gsi1sk"]},
                ))  # fmt: skip
                updated += 1
        return updated

    def decide_request(
        self,
        request_id: str,
        status: RequestStatus | str,
        *,
        decided_by: str,
        decided_at: str | None = None,
        reason: str | None = None,
    ) -> ApprovalRequest:
        new_status = decided_status(status)
        try:
            response = with_retries(
                lambda: self.table.update_item(
                    Key={"pk": f"req#{request_id}", "sk": "request"},
                    UpdateExpression="SET #status = :new, gsi1pk = :index, decided_by = :by, decided_at = :at, decision_reason = :why",
                    ConditionExpression="attribute_exists(pk) AND #status = :pending",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        ":new": new_status.value,
                        ":index": f"reqstatus#{new_status.value}",
                        ":by": decided_by,
                        ":at": decided_at or now_iso(),
                        ":why": reason,
                        ":pending": RequestStatus.PENDING.value,
                    },
                    ReturnValues="ALL_NEW",
                )
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            existing = self.get_request(request_id)
            if existing is None:
                raise NotFound(f"no approval request {request_id}") from None
            raise Conflict(f"approval request {request_id} is already {existing.status.value}") from None
        return ApprovalRequest.model_validate(_strip_keys(response["Attributes"]))

    # --- plumbing -------------------------------------------------------------------

    def _query(self, *, limit: int | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        return list(self._iter_query(limit=limit, **kwargs))

    def _iter_query(self, *, limit: int | None = None, **kwargs: Any) -> Iterator[dict[str, Any]]:
        count = 0
        while True:
            response = with_retries(lambda: self.table.query(**kwargs))
            for item in response.get("Items", []):
                yield item
                count += 1
                if limit is not None and count >= limit:
                    return
            start = response.get("LastEvaluatedKey")
            if not start:
                return
            kwargs["ExclusiveStartKey"] = start
