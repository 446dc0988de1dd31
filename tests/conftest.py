"""Shared test set-up: no real AWS credentials or endpoints leak into tests."""

from __future__ import annotations

import os

import pytest

from chalicelib.local.moto_locks import serialise_dynamodb

# Several tests drive moto from threads (the stack's worker, the API server,
# concurrency tests); give its DynamoDB backend the atomicity real DynamoDB has.
serialise_dynamodb()

_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(autouse=True)
def _isolated_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in _AWS_ENV.items():
        monkeypatch.setenv(name, value)
    # the import's behaviour check needs a runner worker; tests that have one turn it on
    monkeypatch.setenv("SKILLHARBOR_BEHAVIOUR_CHECK", "off")
    for name in list(os.environ):
        if name in ("AWS_ENDPOINT_URL", "SKILLHARBOR_AWS_ENDPOINT_URL", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
