"""Secret values in AWS Secrets Manager (moto locally); bindings in the rules table.

Binding items: ``pk = secretbind#<skill_id>``, ``sk = <binding_id>``; they
hold the Secrets Manager name, never the value.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key

from chalicelib.errors import NotFound
from chalicelib.governance.secrets import SecretBinding
from chalicelib.store import aws
from chalicelib.store.dynamo import TableStore, from_dynamo, to_dynamo, with_retries


class SecretValues:
    def _sm(self) -> Any:
        return aws.client("secretsmanager")

    def put(self, name: str, value: str) -> None:
        self._sm().create_secret(Name=name, SecretString=value)

    def get(self, name: str) -> str:
        return str(self._sm().get_secret_value(SecretId=name)["SecretString"])

    def delete(self, name: str) -> None:
        self._sm().delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


class SecretBindingsStore(TableStore):
    settings_field = "rules_table"

    def put(self, binding: SecretBinding) -> SecretBinding:
        item = to_dynamo(binding.model_dump(mode="json"))
        item.update(pk=f"secretbind#{binding.skill_id}", sk=binding.binding_id, item_type="secret_binding")
        with_retries(lambda: self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)"))
        return binding

    def for_skill(self, skill_id: str) -> list[SecretBinding]:
        found = with_retries(lambda: self.table.query(KeyConditionExpression=Key("pk").eq(f"secretbind#{skill_id}"), ConsistentRead=True))
        return [SecretBinding.model_validate({k: v for k, v in from_dynamo(i).items() if k not in ("pk", "sk", "item_type")})
                for i in found.get("Items", [])]  # fmt: skip

    def delete(self, skill_id: str, binding_id: str) -> SecretBinding:
        binding = next((b for b in self.for_skill(skill_id) if b.binding_id == binding_id), None)
        if binding is None:
            raise NotFound(f"no secret binding {binding_id} for skill {skill_id}")
        with_retries(lambda: self.table.delete_item(Key={"pk": f"secretbind#{skill_id}", "sk": binding_id}))
        return binding
