"""Make moto's DynamoDB backend safe to share between threads.

Real DynamoDB applies each request atomically. moto's in-memory backend keeps
tables in plain dicts with no lock, so under the local stack's threaded server
(or threads in a test) a query can iterate a table while a put resizes it
("dictionary changed size during iteration"), and a conditional write can
interleave between its check and its write. Serialising the backend's
operations gives the local stack the guarantee the deployed one has. The
response handler is serialised too: it turns the live item the backend
returned into JSON, and a concurrent update of that item would otherwise
resize its attributes mid-conversion.

Only DynamoDB is wrapped: its operations never call back into moto, so one
lock cannot deadlock. (A lock around the whole server would: a Lambda invoke
runs our handler, which calls DynamoDB through the same server.)
"""

from __future__ import annotations

import functools
import inspect
import threading
from typing import Any

_LOCK = threading.RLock()
_MARK = "_skillharbor_serialised"


def serialise_dynamodb() -> None:
    """Wrap every DynamoDB backend operation, and each whole request, in one process-wide lock (idempotent)."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoDBBackend, _MARK, False):
        return
    from chalicelib.local import moto_transactions

    moto_transactions.install()  # before the wrapping below, so the lock covers its undo log too
    for name, member in list(vars(DynamoDBBackend).items()):
        if name.startswith("_") or not inspect.isfunction(member):
            continue
        setattr(DynamoDBBackend, name, _locked(member))
    DynamoHandler.call_action = _locked(DynamoHandler.call_action)
    setattr(DynamoDBBackend, _MARK, True)


def _locked(operation: Any) -> Any:
    @functools.wraps(operation)
    def serialised(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return operation(*args, **kwargs)

    return serialised
