"""The one place boto3 clients are made: cached per (service, region, endpoint, profile).

Every adapter in ``store/`` asks here, so a test that switches endpoints (moto
server, ``mock_aws``) forgets them all with one ``reset_clients()``. A client
costs milliseconds to build, which every call would otherwise pay.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.settings import get_settings

#: errors any AWS call may raise (a service answer, or no answer at all)
AwsError = (BotoCoreError, ClientError)

# per service: what its adapters need (S3 reads whole objects, DynamoDB retries throttling harder)
_CONFIGS: dict[str, Config | None] = {
    "dynamodb": Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30),
    "s3": Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=60),
    "stepfunctions": Config(retries={"mode": "standard"}),
}
#: the health probe: one attempt, short timeouts (a part that is away must not hold the answer)
_QUICK = Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=3)


def _config(service: str, quick: bool) -> Config | None:
    return _QUICK if quick else _CONFIGS.get(service)


#: a botocore ``before-send`` handler every client gets (the local stack answers its own moto in process), or None
_sender: Callable[..., Any] | None = None


def send_through(sender: Callable[..., Any] | None) -> None:
    """Give every client made from now on ``sender`` as its ``before-send`` handler (None: plain HTTP again).

    A handler answers a request itself (an ``AWSResponse``) or returns None to let it go over HTTP. The
    clients made so far are forgotten, so that none keeps the previous transport."""
    global _sender
    _sender = sender
    reset_clients()


def _routed(client: Any) -> Any:
    if _sender is not None:
        client.meta.events.register("before-send", _sender)
    return client


@functools.lru_cache(maxsize=32)
def _client(service: str, region: str, endpoint_url: str | None, quick: bool) -> Any:
    return _routed(boto3.client(service, region_name=region, endpoint_url=endpoint_url, config=_config(service, quick)))


@functools.lru_cache(maxsize=16)
def _resource(service: str, region: str, endpoint_url: str | None) -> Any:
    resource = boto3.resource(service, region_name=region, endpoint_url=endpoint_url, config=_config(service, False))
    _routed(resource.meta.client)
    return resource


def client(service: str, *, quick: bool = False) -> Any:
    """The boto3 client for ``service`` under the current settings' region and endpoint."""
    settings = get_settings()
    return _client(service, settings.region, settings.aws_endpoint_url, quick)


def resource(service: str) -> Any:
    settings = get_settings()
    return _resource(service, settings.region, settings.aws_endpoint_url)


def reset_clients() -> None:
    """Forget every cached client (tests switch endpoints and mocks)."""
    _client.cache_clear()
    _resource.cache_clear()


def error_code(error: Exception) -> str:
    """The service's error code of a ClientError ('' for anything else)."""
    return error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""


def own_session_client(service: str, *, region: str, endpoint_url: str | None) -> Any:
    """A client outside the stack's settings (the CLI, on a user's machine, with the user's credentials).

    The local stack (moto) takes any credentials and a fresh shell has none: against an explicit
    endpoint, placeholder credentials stand in rather than failing before the first call.
    """
    session = boto3.session.Session(region_name=region)
    if endpoint_url and session.get_credentials() is None:
        session = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=region)
    return session.client(service, endpoint_url=endpoint_url)
