"""A transaction of several writes (store/dynamo.py transact_write): retried when DynamoDB cancels it for a
conflict or throttling, with one idempotency token for every attempt."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from chalicelib.errors import TransientError
from chalicelib.store.dynamo import set_expression, transact_write


def _cancelled(*codes: str) -> ClientError:
    return ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                        "CancellationReasons": [{"Code": code} for code in codes]}, "TransactWriteItems")  # fmt: skip


class Client:
    def __init__(self, *failures: ClientError):
        self.failures, self.tokens = list(failures), []

    def transact_write_items(self, *, TransactItems, ClientRequestToken):  # noqa: N803 (botocore's names)
        self.tokens.append(ClientRequestToken)
        if self.failures:
            raise self.failures.pop(0)
        return {}


def test_a_transaction_cancelled_by_a_conflict_is_tried_again_with_the_same_token():
    client = Client(_cancelled("None", "TransactionConflict"), _cancelled("ThrottlingError", "None"))
    transact_write(client, [{"Put": {}}, {"Put": {}}])
    assert len(client.tokens) == 3 and len(set(client.tokens)) == 1


def test_a_failed_condition_is_not_tried_again():
    client = Client(_cancelled("ConditionalCheckFailed", "None"))
    with pytest.raises(ClientError):
        transact_write(client, [{"Update": {}}, {"Put": {}}])
    assert len(client.tokens) == 1


def test_a_conflict_that_lasts_becomes_a_transient_error(monkeypatch):
    monkeypatch.setattr("chalicelib.store.dynamo.time.sleep", lambda _seconds: None)
    client = Client(*[_cancelled("TransactionConflict")] * 5)
    with pytest.raises(TransientError):
        transact_write(client, [{"Put": {}}])


def test_a_path_sets_one_member_of_a_map():
    update = set_expression({("steps", "scan"): {"status": "passed"}, "status": "ready"})
    assert update["UpdateExpression"] == "SET #f0_0.#f0_1 = :v0, #f1_0 = :v1"
    assert update["ExpressionAttributeNames"] == {"#f0_0": "steps", "#f0_1": "scan", "#f1_0": "status"}
