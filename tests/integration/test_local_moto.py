"""The local stack's moto: transactions stay atomic with the item-level undo log, and the keep-alive server
answers many calls over one connection and lets go of them when it stops."""

from __future__ import annotations

import socket

import boto3
import botocore.config
import botocore.exceptions
import pytest
from moto import mock_aws

from chalicelib.local.moto_server import KeepAliveMotoServer


def _tables(client) -> None:
    client.create_table(TableName="plain", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    client.create_table(TableName="ranged", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST")  # fmt: skip


def _everything(client) -> dict[str, list]:
    return {name: sorted((str(i),) for i in client.scan(TableName=name)["Items"]) for name in ("plain", "ranged")}


@mock_aws
def test_a_failed_transaction_leaves_every_item_as_it_was():
    client = boto3.client("dynamodb", region_name="us-east-1")
    _tables(client)
    client.put_item(TableName="plain", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    client.put_item(TableName="ranged", Item={"pk": {"S": "x"}, "sk": {"S": "1"}, "v": {"S": "old"}})
    before = _everything(client)
    with pytest.raises(botocore.exceptions.ClientError) as failed:
        client.transact_write_items(TransactItems=[
            {"Update": {"TableName": "plain", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET n = :n",
                        "ExpressionAttributeValues": {":n": {"N": "2"}}}},
            {"Put": {"TableName": "ranged", "Item": {"pk": {"S": "x"}, "sk": {"S": "2"}, "v": {"S": "new"}}}},
            {"Put": {"TableName": "ranged", "Item": {"pk": {"S": "y"}, "sk": {"S": "1"}}}},
            {"Delete": {"TableName": "ranged", "Key": {"pk": {"S": "x"}, "sk": {"S": "1"}}}},
            {"Put": {"TableName": "plain", "Item": {"pk": {"S": "b"}}, "ConditionExpression": "attribute_exists(pk)"}},
        ])  # fmt: skip
    assert failed.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _everything(client) == before
    assert "Item" not in client.get_item(TableName="ranged", Key={"pk": {"S": "y"}, "sk": {"S": "1"}})


@mock_aws
def test_a_transaction_that_succeeds_applies_every_operation():
    client = boto3.client("dynamodb", region_name="us-east-1")
    _tables(client)
    client.put_item(TableName="plain", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    client.transact_write_items(TransactItems=[
        {"Update": {"TableName": "plain", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET n = :n",
                    "ExpressionAttributeValues": {":n": {"N": "2"}}}},
        {"Put": {"TableName": "ranged", "Item": {"pk": {"S": "x"}, "sk": {"S": "1"}}, "ConditionExpression": "attribute_not_exists(pk)"}},
    ])  # fmt: skip
    assert client.get_item(TableName="plain", Key={"pk": {"S": "a"}})["Item"]["n"] == {"N": "2"}
    assert "Item" in client.get_item(TableName="ranged", Key={"pk": {"S": "x"}, "sk": {"S": "1"}})


@mock_aws
def test_a_transaction_naming_one_item_twice_is_refused_and_changes_nothing():
    client = boto3.client("dynamodb", region_name="us-east-1")
    _tables(client)
    client.put_item(TableName="plain", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    before = _everything(client)
    with pytest.raises(botocore.exceptions.ClientError):
        client.transact_write_items(TransactItems=[
            {"Put": {"TableName": "plain", "Item": {"pk": {"S": "a"}, "n": {"N": "5"}}}},
            {"Delete": {"TableName": "plain", "Key": {"pk": {"S": "a"}}}},
        ])  # fmt: skip
    assert _everything(client) == before


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_keep_alive_server_serves_calls_on_one_connection_and_closes_it_on_stop():
    server = KeepAliveMotoServer("127.0.0.1", _free_port())
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=f"http://{host}:{port}",
                          aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip
    try:
        client.create_bucket(Bucket="keep-alive")
        body = b"x" * (3 * 1024 * 1024)  # larger than one read: the body is read to its end, not into the next request
        client.put_object(Bucket="keep-alive", Key="big", Body=body)
        assert client.get_object(Bucket="keep-alive", Key="big")["Body"].read() == body
        assert client.head_object(Bucket="keep-alive", Key="big")["ContentLength"] == len(body)
        with pytest.raises(botocore.exceptions.ClientError):
            client.get_object(Bucket="keep-alive", Key="absent")
        assert [o["Key"] for o in client.list_objects_v2(Bucket="keep-alive")["Contents"]] == ["big"]
        pool = next(iter(client._endpoint.http_session._manager.pools._container.values()))
        assert pool.num_connections == 1  # every call above went over the same connection
    finally:
        server.stop()
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        boto3.client("s3", region_name="us-east-1", endpoint_url=f"http://{host}:{port}", aws_access_key_id="local",
                     aws_secret_access_key="local", config=botocore.config.Config(retries={"max_attempts": 1})).list_buckets()  # fmt: skip
    with pytest.raises((botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError)):
        client.list_buckets()  # the connection it held open was closed too


def test_calls_in_the_servers_own_process_are_answered_without_a_socket():
    server = KeepAliveMotoServer("127.0.0.1", _free_port())
    server.start()
    host, port = server.get_host_and_port()
    accepted: list[object] = []
    original = server._server.process_request
    server._server.process_request = lambda request, address: (accepted.append(address), original(request, address))
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=f"http://{host}:{port}",
                          aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip
    client.meta.events.register("before-send", server.send)
    try:
        _tables(client)
        client.put_item(TableName="plain", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
        assert client.get_item(TableName="plain", Key={"pk": {"S": "a"}})["Item"]["n"] == {"N": "1"}
        with pytest.raises(client.exceptions.ResourceNotFoundException):  # moto's errors, parsed by botocore as over HTTP
            client.get_item(TableName="absent", Key={"pk": {"S": "a"}})
        assert accepted == []
        other = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{_free_port()}",
                             aws_access_key_id="local", aws_secret_access_key="local",
                             config=botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=1))  # fmt: skip
        other.meta.events.register("before-send", server.send)
        with pytest.raises(botocore.exceptions.EndpointConnectionError):  # another endpoint: over HTTP, as sent
            other.list_tables()
    finally:
        server.stop()
    with pytest.raises((botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError)):
        client.list_tables()  # stopped: nothing answers in process any more


def test_the_server_routes_each_service_by_a_remembered_lookup(monkeypatch):
    """Calls to two services over HTTP reach the right backends, and a repeated host does not list moto again."""
    from moto import backends

    server = KeepAliveMotoServer(port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        listings = []
        original = backends.list_of_moto_modules
        monkeypatch.setattr(backends, "list_of_moto_modules", lambda: listings.append(1) or original())
        keys = {"region_name": "us-east-1", "aws_access_key_id": "k", "aws_secret_access_key": "s"}
        dynamodb = boto3.client("dynamodb", endpoint_url=url, **keys)
        sqs = boto3.client("sqs", endpoint_url=url, **keys)
        dynamodb.create_table(TableName="routed", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
        queue = sqs.create_queue(QueueName="routed")["QueueUrl"]
        for n in range(5):
            dynamodb.put_item(TableName="routed", Item={"pk": {"S": str(n)}})
            sqs.send_message(QueueUrl=queue, MessageBody=str(n))
        assert len(dynamodb.scan(TableName="routed")["Items"]) == 5
        assert sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"]["ApproximateNumberOfMessages"] == "5"
        assert len(listings) <= 4  # once per host it was asked about (the endpoint, then each service's host)
    finally:
        server.stop()
