"""moto's DynamoDB transactions at the cost of the items they touch, not of the tables they name.

Before every TransactWriteItems, moto deep-copies each table the transaction
names, whole, so that it can put the copy back if one of the operations fails.
A run writes two transactions into the images and audit tables (registered +
started event; its end record + end event), so on the local stack each run's
cost grew with every run before it: in a profile of steady executes through
the API, 46 % of the API process's CPU was that copy, and the sustained
benchmark's API CPU per run rose with the audit table.

Real DynamoDB's cost does not depend on the table's size. Here the undo log
holds a copy of just the items the transaction names (absent ones as absent),
taken before moto's own logic runs, and puts them back when it fails; moto's
whole-table copy is skipped for the duration. Everything runs under the
stack's DynamoDB lock (moto_locks.py), so no reader sees the transaction
half-applied, as before.
"""

from __future__ import annotations

import copy
import functools
import threading
from typing import Any

_MARK = "_skillharbor_item_level_undo"
_local = threading.local()


class _CopyWithoutTables:
    """The ``copy`` module as moto's DynamoDB backend sees it: inside a transaction, a table is not copied."""

    def __init__(self, table_type: type):
        self._table_type = table_type

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if getattr(_local, "transaction", False) and isinstance(value, self._table_type):
            return value  # the undo log below restores the items instead
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def install() -> None:
    """Replace moto's whole-table snapshot in TransactWriteItems with an item-level undo log (idempotent)."""
    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    if getattr(DynamoDBBackend, _MARK, False):
        return
    models.copy = _CopyWithoutTables(Table)  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = _with_undo_log(DynamoDBBackend.transact_write_items)  # type: ignore[method-assign]
    setattr(DynamoDBBackend, _MARK, True)


def _with_undo_log(transact: Any) -> Any:
    @functools.wraps(transact)
    def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
        undo = [_saved(backend, item) for item in transact_items]
        _local.transaction = True
        try:
            transact(backend, transact_items)
        except BaseException:
            for saved in reversed(undo):  # reversed: a key named twice gets its state from before the first
                if saved is not None:
                    _restore(*saved)
            raise
        finally:
            _local.transaction = False

    return transact_write_items


def _saved(backend: Any, transact_item: dict[str, Any]) -> tuple[Any, Any, Any, Any] | None:
    """(table, hash key, range key, a copy of the item or None when absent) for one operation; None when the
    operation names no table or no valid key (moto refuses it before writing anything of it)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    try:
        _, operation = next(iter(transact_item.items()))
        table = backend.tables.get(operation.get("TableName"))
        if table is None:
            return None
        attributes = operation.get("Key") or operation.get("Item") or {}
        hash_key = DynamoType(attributes[table.hash_key_attr])
        range_key = DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None
        current = table.get_item(hash_key, range_key)
    except Exception:  # malformed: nothing of this operation will be written
        return None
    return table, hash_key, range_key, copy.deepcopy(current)


def _restore(table: Any, hash_key: Any, range_key: Any, item: Any) -> None:
    """Put the item back as it was (or remove it when it did not exist), without a stream record."""
    if range_key is None:
        if item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item
        return
    if item is None:
        by_range = table.items.get(hash_key)
        if by_range is not None:
            by_range.pop(range_key, None)
            if not by_range:
                del table.items[hash_key]
    else:
        table.items[hash_key][range_key] = item
