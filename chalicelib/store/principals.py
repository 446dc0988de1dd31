"""Agents and API keys in DynamoDB (table: settings.principals_table).

Items:

* agent: ``pk = agent#<agent_id>``, ``sk = agent``, with a ``version`` number
  that every maturity change checks and increments (optimistic locking);
  ``gsi1 = ("agents", <agent_id>)`` lists agents.
* key: ``pk = key#<key_id>``, ``sk = key``, holding the principal and the
  sha256 of the key (never the key); ``gsi1 = ("keys", "<created_at>#<key_id>")``
  lists keys, ``gsi2 = ("keyhash#<hash>", "key")`` finds a key by hash,
  ``gsi3 = ("agentkeys#<agent_id>", "<created_at>#<key_id>")`` lists an agent's keys.
* retired bootstrap key: ``pk = bootstrap#<sha256 of the key>``, ``sk = retired``: that
  SKILLHARBOR_ADMIN_KEY is refused from then on, even while it is still configured.

Authentication reads a key by the id embedded in it (a strongly consistent
GetItem), so a revoked key is refused by the next read; the API reuses a read for
``record_cache_seconds`` (governance/key_cache.py). The hash index is only
eventually consistent and serves look-ups by hash.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from chalicelib.errors import Conflict, NotFound, TransientError
from chalicelib.governance.identity import Agent, Principal, Role, StoredKey
from chalicelib.governance.maturity import Maturity
from chalicelib.governance.timeutil import now_iso
from chalicelib.store.dynamo import TableStore, from_dynamo, is_conditional_failure, to_dynamo, with_retries

_KEY_FIELDS = ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk", "item_type", "key_hash")
_MATURITY_ATTEMPTS = 8


def _strip_keys(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in from_dynamo(item).items() if k not in _KEY_FIELDS}


class PrincipalsStore(TableStore):
    """DynamoDB implementation of ``governance.ports.PrincipalsRepository``."""

    settings_field = "principals_table"

    # --- agents -------------------------------------------------------------------

    def create_agent(self, agent: Agent) -> Agent:
        item = to_dynamo(agent.model_dump(mode="json"))
        item.update(pk=f"agent#{agent.agent_id}", sk="agent", item_type="agent", gsi1pk="agents", gsi1sk=agent.agent_id)
        if not self.put_new(item):
            raise Conflict(f"agent {agent.agent_id!r} already exists")
        return agent

    def get_agent(self, agent_id: str) -> Agent | None:
        response = with_retries(
            lambda: self.table.get_item(Key={"pk": f"agent#{agent_id}", "sk": "agent"}, ConsistentRead=True)
        )
        item = response.get("Item")
        return Agent.model_validate(_strip_keys(item)) if item else None

    def list_agents(self) -> list[Agent]:
        items = self._query(IndexName="gsi1", KeyConditionExpression=Key("gsi1pk").eq("agents"))
        return [Agent.model_validate(_strip_keys(item)) for item in items]

    def update_maturity(
        self, agent_id: str, maturity: Maturity | str, *, expected_version: int | None = None
    ) -> Agent:
        level = Maturity.parse(maturity)
        attempts = 1 if expected_version is not None else _MATURITY_ATTEMPTS
        for _ in range(attempts):
            version = expected_version
            if version is None:
                current = self.get_agent(agent_id)
                if current is None:
                    raise NotFound(f"no agent {agent_id!r}")
                version = current.version
            try:
                response = with_retries(
                    lambda: self.table.update_item(
                        Key={"pk": f"agent#{agent_id}", "sk": "agent"},
                        UpdateExpression="SET maturity = :maturity, updated_at = :now, version = :next",
                        ConditionExpression="attribute_exists(pk) AND version = :expected",
                        ExpressionAttributeValues={
                            ":maturity": level.value,
                            ":now": now_iso(),
                            ":next": version + 1,
                            ":expected": version,
                        },
                        ReturnValues="ALL_NEW",
                    )
                )
            except ClientError as error:
                if not is_conditional_failure(error):
                    raise
                continue  # someone else changed the agent: re-read and try again (or give up below)
            return Agent.model_validate(_strip_keys(response["Attributes"]))
        current = self.get_agent(agent_id)
        if current is None:
            raise NotFound(f"no agent {agent_id!r}")
        if expected_version is not None:
            raise Conflict(
                f"agent {agent_id!r} changed meanwhile (version {current.version}, expected {expected_version})"
            )
        raise TransientError(f"agent {agent_id!r} kept changing; maturity not updated, try again")

    # --- keys ---------------------------------------------------------------------

    def put_key(self, principal: Principal, key_hash: str) -> None:
        item = _key_item(principal, key_hash)
        if not self.put_new(item):
            raise Conflict(f"key {principal.key_id} already exists")

    def get_key(self, key_id: str) -> StoredKey | None:
        response = with_retries(
            lambda: self.table.get_item(Key={"pk": f"key#{key_id}", "sk": "key"}, ConsistentRead=True)
        )
        item = response.get("Item")
        return _stored_key(item) if item else None

    def find_key_by_hash(self, key_hash: str) -> StoredKey | None:
        items = self._query(IndexName="gsi2", KeyConditionExpression=Key("gsi2pk").eq(f"keyhash#{key_hash}"), limit=1)
        return _stored_key(items[0]) if items else None

    def revoke_key(self, key_id: str, *, revoked_at: str | None = None) -> Principal:
        try:
            response = with_retries(
                lambda: self.table.update_item(
                    Key={"pk": f"key#{key_id}", "sk": "key"},
                    UpdateExpression="SET revoked_at = :at",
                    ConditionExpression="attribute_exists(pk) AND attribute_not_exists(revoked_at)",
                    ExpressionAttributeValues={":at": revoked_at or now_iso()},
                    ReturnValues="ALL_NEW",
                )
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            if self.get_key(key_id) is None:
                raise NotFound(f"no key {key_id}") from None
            raise Conflict(f"key {key_id} is already revoked") from None
        return Principal.model_validate(_strip_keys(response["Attributes"]))

    def rotate_key(self, old_key_id: str, new: Principal, new_key_hash: str) -> Principal:
        """One transaction: the new key appears exactly when the old one is revoked."""
        name = self.table.name
        try:
            with_retries(lambda: self.table.meta.client.transact_write_items(TransactItems=[
                {"Put": {"TableName": name, "Item": _key_item(new, new_key_hash),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Update": {"TableName": name, "Key": {"pk": f"key#{old_key_id}", "sk": "key"},
                            "UpdateExpression": "SET revoked_at = :at",
                            "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(revoked_at)",
                            "ExpressionAttributeValues": {":at": new.created_at}}},
            ]))  # fmt: skip
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" not in reasons:
                raise TransientError(f"key rotation was cancelled ({', '.join(map(str, reasons))}); try again") from None
            if self.get_key(old_key_id) is None:
                raise NotFound(f"no key {old_key_id}") from None
            raise Conflict(f"key {old_key_id} is already revoked (rotated or revoked meanwhile)") from None
        stored = self.get_key(old_key_id)
        assert stored is not None  # it was just updated in the transaction
        return stored.principal

    def retire_bootstrap_key(self, key_hash: str, *, retired_by: str) -> bool:
        item = {"pk": f"bootstrap#{key_hash}", "sk": "retired", "item_type": "retired_bootstrap",
                "retired_at": now_iso(), "retired_by": retired_by}  # fmt: skip
        return self.put_new(item)

    def is_retired_bootstrap_key(self, key_hash: str) -> bool:
        response = with_retries(
            lambda: self.table.get_item(Key={"pk": f"bootstrap#{key_hash}", "sk": "retired"}, ConsistentRead=True)
        )
        return "Item" in response

    def list_keys(
        self, *, role: Role | str | None = None, agent_id: str | None = None, include_revoked: bool = True
    ) -> list[Principal]:
        if agent_id:
            items = self._query(IndexName="gsi3", KeyConditionExpression=Key("gsi3pk").eq(f"agentkeys#{agent_id}"))
        else:
            items = self._query(IndexName="gsi1", KeyConditionExpression=Key("gsi1pk").eq("keys"))
        wanted = Role.parse(role) if role else None
        principals = [Principal.model_validate(_strip_keys(item)) for item in items]
        return [
            p for p in principals if (wanted is None or p.role is wanted) and (include_revoked or p.active)
        ]

    # --- plumbing -------------------------------------------------------------------

    def _query(self, *, limit: int | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            response = with_retries(lambda: self.table.query(**kwargs))
            found.extend(response.get("Items", []))
            if limit is not None and len(found) >= limit:
                return found[:limit]
            start = response.get("LastEvaluatedKey")
            if not start:
                return found
            kwargs["ExclusiveStartKey"] = start


def _key_item(principal: Principal, key_hash: str) -> dict[str, Any]:
    item = to_dynamo(principal.model_dump(mode="json"))
    order = f"{principal.created_at}#{principal.key_id}"
    item.update(
        pk=f"key#{principal.key_id}",
        sk="key",
        item_type="key",
        key_hash=key_hash,
        gsi1pk="keys",
        gsi1sk=order,
        gsi2pk=f"keyhash#{key_hash}",
        gsi2sk="key",
    )
    if principal.agent_id:
        item.update(gsi3pk=f"agentkeys#{principal.agent_id}", gsi3sk=order)
    return item


def _stored_key(item: dict[str, Any]) -> StoredKey:
    return StoredKey(principal=Principal.model_validate(_strip_keys(item)), key_hash=str(item["key_hash"]))
