"""Shared DynamoDB plumbing for the store adapters.

Every table has string keys ``pk``/``sk`` and up to three generic global
secondary indexes ``gsi1``..``gsi3`` (keys ``gsiNpk``/``gsiNsk``), declared in
``infra/resources.json``; each adapter decides what it puts in them.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from chalicelib.errors import TransientError
from chalicelib.settings import get_settings
from chalicelib.store import aws

T = TypeVar("T")

_TRANSIENT_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
}

def table(name: str) -> Any:
    """The boto3 Table for ``name`` under the current settings' endpoint."""
    return aws.resource("dynamodb").Table(name)


def is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def with_retries(call: Callable[[], T], *, attempts: int = 5, base_delay: float = 0.05,
                 transient: Callable[[ClientError], bool] | None = None) -> T:  # fmt: skip
    """Run ``call``, retrying throttling and transient service errors with jittered backoff.

    botocore already retries once per its own policy; this outer loop covers
    the cases it gives up on, and turns a final failure into TransientError so
    the state machine's Retry clause sees a name it knows. ``transient``: which
    other errors are worth another attempt.
    """
    for attempt in range(attempts):
        try:
            return call()
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code not in _TRANSIENT_CODES and not (transient is not None and transient(error)):
                raise
            if attempt == attempts - 1:
                raise TransientError(f"DynamoDB kept failing with {code}") from error
            time.sleep(base_delay * (2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def to_dynamo(value: Any) -> Any:
    """Plain JSON-ish data → what DynamoDB accepts (floats become Decimal, empty strings kept)."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [to_dynamo(v) for v in value]
    return value


def from_dynamo(value: Any) -> Any:
    """DynamoDB data → plain JSON-ish data (Decimal becomes int or float)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, set, tuple)):
        return [from_dynamo(v) for v in value]
    return value


def set_expression(fields: dict[Any, Any]) -> dict[str, Any]:
    """``update_item`` keyword arguments that SET every field (names escaped).

    A key may be a path, a tuple of names (``("steps", "scan")``): it sets that member of a map attribute,
    leaving its other members as they are, with no read of the item first."""
    names: dict[str, str] = {}
    assignments, values = [], {}
    for i, (field, value) in enumerate(fields.items()):
        parts = field if isinstance(field, tuple) else (field,)
        path = []
        for j, part in enumerate(parts):
            names[f"#f{i}_{j}"] = part
            path.append(f"#f{i}_{j}")
        assignments.append(f"{'.'.join(path)} = :v{i}")
        values[f":v{i}"] = to_dynamo(value)
    return {"UpdateExpression": "SET " + ", ".join(assignments), "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values}  # fmt: skip


#: why an item of a cancelled transaction failed, when trying again may succeed
_TRANSIENT_CANCELLATIONS = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}


def transact_write(client: Any, items: list[dict[str, Any]]) -> None:
    """TransactWriteItems, retried like ``with_retries`` and also when it was cancelled for a conflict or
    throttling (DynamoDB names those only in the cancellation reasons). Every attempt carries the same
    ClientRequestToken, so an attempt whose commit landed but whose answer was lost is not applied twice
    (its conditional puts would otherwise cancel the retry)."""
    token = uuid.uuid4().hex
    with_retries(lambda: client.transact_write_items(TransactItems=items, ClientRequestToken=token),
                 transient=lambda error: bool(set(filter(None, cancellation_codes(error))) & _TRANSIENT_CANCELLATIONS))  # fmt: skip


def cancellation_codes(error: ClientError) -> list[str]:
    """Per item of a cancelled TransactWriteItems call, why it failed (``None`` for the items that did not)."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return []
    return [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]


class TableStore:
    """Base of the adapters: the boto3 Table named by one settings field, bound on first use.

    Binding once matters: settings and a boto3 Table cost milliseconds to build,
    which every call would otherwise pay.
    """

    settings_field: str = ""

    def __init__(self, table_name: str | None = None) -> None:
        self._table_name = table_name
        self._bound: Any = None

    @property
    def table(self) -> Any:
        bound = self._bound
        if bound is None:
            bound = self._bound = table(self._table_name or getattr(get_settings(), self.settings_field))
        return bound

    def put_new(self, item: dict[str, Any]) -> bool:
        """Write ``item`` unless an item with its key exists (one conditional put): False when one did."""
        try:
            with_retries(lambda: self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)"))
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise
        return True
