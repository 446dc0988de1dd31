"""The one seam between moto and the Chalice app.

Moto runs state machines for real (``execute_state_machine``), but its
Lambda backends either need Docker or merely echo the payload, so a task
would "succeed" without running. This module routes moto's Lambda ``invoke``
to the Chalice app's function of the same name, in process, and reports an
exception the way Lambda does (``X-Amz-Function-Error: Unhandled`` and an
``{errorType, errorMessage}`` payload), so the ASL's Retry and Catch clauses
see the project's error names.

It also shares, across tasks, the boto3 client moto's state machine otherwise builds for every
Lambda task (``boto_client_for`` in its ``lambda_eval_utils``: a tenth of an import's wall time).

It patches one method on moto's two Lambda backends; ``moto`` is pinned in
requirements-dev.txt and tests/integration/test_lambda_seam.py fails loudly if
an upgrade changes that method's signature or the invoke path.
"""

from __future__ import annotations

import json
import logging
import threading
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from moto.awslambda.exceptions import UnknownFunctionException
from moto.awslambda.models import LambdaBackend
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.config import default_user_config

log = logging.getLogger("skillharbor.local.lambda")

Handler = Callable[[Any, Any], Any]

_routes: dict[str, Handler] = {}
_lock = threading.Lock()
_originals: dict[type, Callable[..., Any]] = {}


class LocalLambdaContext:
    """The parts of Lambda's context object the handlers use."""

    def __init__(self, function_name: str, timeout_ms: int = 900_000):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{function_name}"
        self.memory_limit_in_mb = 1024
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline_ms = timeout_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._deadline_ms


def function_name_of(function_name_or_arn: str) -> str:
    """``arn:aws:lambda:r:a:function:NAME[:qualifier]`` or ``NAME`` → ``NAME``."""
    if function_name_or_arn.startswith("arn:"):
        return function_name_or_arn.split(":")[6]
    return function_name_or_arn


def register(function_name: str, handler: Handler) -> None:
    with _lock:
        _routes[function_name] = handler


def register_app(app: Any, *, name_prefix: str) -> list[str]:
    """Route ``<name_prefix><name>`` to every pure Lambda function of a Chalice app."""
    names = []
    for name, handler in app.handler_map.items():
        register(f"{name_prefix}{name}", handler)
        names.append(f"{name_prefix}{name}")
    return names


def invoke_routed(function_name: str, body: Any, response_headers: dict[str, str]) -> bytes:
    name = function_name_of(function_name)
    with _lock:
        handler = _routes.get(name)
    if handler is None:
        raise UnknownFunctionException(function_name)
    raw = body.decode() if isinstance(body, bytes) else (body or "{}")
    try:
        event = json.loads(raw) if raw else {}
    except ValueError:
        event = raw
    try:
        result = handler(event, LocalLambdaContext(name))
    except Exception as error:  # reported to the state machine like Lambda does
        log.info("function %s raised %s: %s", name, type(error).__name__, error)
        response_headers["x-amz-function-error"] = "Unhandled"
        payload = {
            "errorType": type(error).__name__,
            "errorMessage": str(error),
            "stackTrace": traceback.format_exception(error)[-8:],
        }
        return json.dumps(payload).encode()
    return json.dumps(result, default=str).encode()


def _patched_invoke(self: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any) -> Any:
    return invoke_routed(function_name, body, response_headers)


_clients: dict[tuple[str, str, str], Any] = {}
_original_client_for: list[Callable[..., Any]] = []  # moto's boto_client_for while patched
_task_sender: list[Callable[..., Any]] = []  # the before-send handler the shared clients get (see send_tasks_through)


def send_tasks_through(sender: Callable[..., Any] | None) -> None:
    """Give the state machine's shared clients ``sender`` as their ``before-send`` handler (None: HTTP).

    The local stack's moto runs in the same process as the pipeline functions, so a task's Lambda invoke
    can be answered in the calling thread like the API's own calls (local/moto_server.py), instead of a
    round trip through the socket and the server's HTTP parsing for every state."""
    with _lock:
        _task_sender[:] = [sender] if sender is not None else []
        _clients.clear()


def _shared_client(region: str, service: str, state_credentials: Any = None) -> Any:
    """moto's ``boto_client_for``, building a client once per region, service and port, not once per task.

    moto's state machine builds a new boto3 client for every Lambda task it runs (5 to 10 ms, and a new
    connection, each): an import runs six tasks. Those clients take fixed local credentials whatever the
    state's, so sharing one (boto3 clients are thread-safe) changes nothing but the time. In-process
    mocking (``mock_aws``) keeps moto's own behaviour: its clients have no endpoint to share."""
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port

    build = _original_client_for[0]
    if botocore_stubber.enabled:
        return build(region=region, service=service, state_credentials=state_credentials)
    key = (region, service, str(moto_server_port()))
    with _lock:
        client = _clients.get(key)
    if client is None:
        client = build(region=region, service=service, state_credentials=state_credentials)
        with _lock:
            if _task_sender:
                client.meta.events.register("before-send", _task_sender[0])
            client = _clients.setdefault(key, client)
    return client


def _lambda_eval_utils() -> Any:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    return lambda_eval_utils


def install() -> None:
    """Patch moto (idempotent) and let it execute state machines."""
    for backend in (LambdaBackend, LambdaSimpleBackend):
        if backend not in _originals:
            _originals[backend] = backend.__dict__["invoke"]
            backend.invoke = _patched_invoke  # type: ignore[method-assign]
    if not _original_client_for:
        utils = _lambda_eval_utils()
        _original_client_for.append(utils.boto_client_for)
        utils.boto_client_for = _shared_client
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    default_user_config.setdefault("lambda", {})["use_docker"] = False


def uninstall() -> None:
    for backend, original in _originals.items():
        backend.invoke = original  # type: ignore[method-assign]
    _originals.clear()
    if _original_client_for:
        _lambda_eval_utils().boto_client_for = _original_client_for.pop()
    with _lock:
        _clients.clear()
        _task_sender.clear()
        _routes.clear()


STATE_MACHINE_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
