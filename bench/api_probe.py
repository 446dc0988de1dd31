"""Where an API request's milliseconds go: the AWS calls it makes, and what moto itself costs per call.

Used by bench/bench_api_path.py. The local stack runs moto and the API in the benchmark's own process, so
both sides of every AWS call can be timed here:

* ``Endpoint.make_request`` (botocore) is the whole call as the API sees it: serialising, the HTTP round
  trip to moto's server, parsing the answer;
* moto's ``BaseResponse.call_action`` is the part moto's server spends on the operation itself (its
  backend, under the stack's DynamoDB lock).

Only calls made by the API's request threads are counted (Chalice's local server runs each request in a
``process_request_thread``); the pollers' and scheduler's calls are not the request's.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

from bench.common import summary


PROBE_HEADER = "X-Skillharbor-Bench-Probe"


def _request_thread() -> bool:
    return "process_request_thread" in threading.current_thread().name


class AwsCalls:
    """Counts and times the AWS calls of API requests, per labelled request."""

    def __init__(self) -> None:
        self.label = ""
        self._lock = threading.Lock()
        self._current: list[tuple[str, float]] = []
        self._moto_ms: list[float] = []
        self.per_request: dict[str, list[list[tuple[str, float]]]] = defaultdict(list)
        self.moto_share: dict[str, list[float]] = defaultdict(list)

    @contextlib.contextmanager
    def installed(self) -> Iterator[AwsCalls]:
        from botocore.endpoint import Endpoint
        from moto.core.responses import BaseResponse

        make_request, call_action = Endpoint.make_request, BaseResponse.call_action
        probe = self

        def timed_request(endpoint: Any, operation_model: Any, request_dict: Any) -> Any:
            if not _request_thread():
                return make_request(endpoint, operation_model, request_dict)
            request_dict.setdefault("headers", {})[PROBE_HEADER] = "1"  # so moto's side knows it is ours
            start = time.perf_counter()
            try:
                return make_request(endpoint, operation_model, request_dict)
            finally:
                with probe._lock:
                    probe._current.append((f"{endpoint._endpoint_prefix}.{operation_model.name}", (time.perf_counter() - start) * 1000))

        def timed_action(response: Any) -> Any:
            if PROBE_HEADER not in (getattr(response, "headers", None) or {}):
                return call_action(response)
            start = time.perf_counter()
            try:
                return call_action(response)
            finally:
                with probe._lock:
                    probe._moto_ms.append((time.perf_counter() - start) * 1000)

        Endpoint.make_request, BaseResponse.call_action = timed_request, timed_action
        try:
            yield self
        finally:
            Endpoint.make_request, BaseResponse.call_action = make_request, call_action

    def begin(self, label: str) -> None:
        with self._lock:
            self.label, self._current, self._moto_ms = label, [], []

    def end(self) -> None:
        with self._lock:
            self.per_request[self.label].append(self._current)
            self.moto_share[self.label].append(sum(self._moto_ms))
            self._current, self._moto_ms = [], []

    def summaries(self, keep: int) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for label, requests in self.per_request.items():
            requests = requests[-keep:]
            by_operation: dict[str, list[float]] = defaultdict(list)
            counts: Counter[str] = Counter()
            for calls in requests:
                for operation, ms in calls:
                    by_operation[operation].append(ms)
                    counts[operation] += 1
            n = max(1, len(requests))
            out[label] = {
                "requests": len(requests),
                "calls_per_request": round(sum(len(c) for c in requests) / n, 2),
                "aws_ms_per_request": summary([sum(ms for _, ms in calls) for calls in requests]),
                "moto_server_ms_per_request": summary(self.moto_share[label][-keep:]),
                "operations": {op: {"per_request": round(counts[op] / n, 2), "p50_ms": summary(v)["p50_ms"]}
                               for op, v in sorted(by_operation.items())},  # fmt: skip
            }
        return out


def moto_call_cost(rounds: int = 50) -> dict[str, Any]:
    """One GetItem against the stack's moto server from a bare client, end to end and inside moto."""
    from moto.core.responses import BaseResponse

    from chalicelib.settings import get_settings
    import boto3

    settings = get_settings()
    client = boto3.client("dynamodb", region_name=settings.region, endpoint_url=settings.aws_endpoint_url)
    client.meta.events.register("before-sign.dynamodb.GetItem", lambda request, **_: request.headers.__setitem__(PROBE_HEADER, "1"))
    table = get_settings().images_table
    inside: list[float] = []
    call_action = BaseResponse.call_action

    def timed(response: Any) -> Any:
        if PROBE_HEADER not in (getattr(response, "headers", None) or {}):  # the worker's and pollers' calls
            return call_action(response)
        start = time.perf_counter()
        try:
            return call_action(response)
        finally:
            inside.append((time.perf_counter() - start) * 1000)

    BaseResponse.call_action = timed
    total: list[float] = []
    try:
        for _ in range(rounds + 3):
            start = time.perf_counter()
            client.get_item(TableName=table, Key={"pk": {"S": "bench#absent"}, "sk": {"S": "x"}}, ConsistentRead=True)
            total.append((time.perf_counter() - start) * 1000)
    finally:
        BaseResponse.call_action = call_action
    return {"get_item_end_to_end": summary(total[3:]), "get_item_inside_moto": summary(inside[3:]),
            "note": "a bare client with nothing else running in the API; the difference is botocore and the HTTP hop"}  # fmt: skip
