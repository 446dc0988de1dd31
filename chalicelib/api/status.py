"""GET /api/health, by caller: ``ok``/``degraded`` for anyone, each part's state for admins.

Without a key (load balancers, uptime checks) the answer is the status word
alone, reused for a few seconds: the full probe costs about a dozen AWS calls
and names tables, queues, worker hosts and error texts, which only admins
need. An admin key gets the full report (api/health.py), fresh; any other key
gets the status word, and a key that is not accepted is named as such (a health
check must not fail because of a stale key).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from chalicelib.api.auth import principal_from_header
from chalicelib.api.health import stack_health
from chalicelib.api.http import json_response, route
from chalicelib.api.responses import HealthAnswer
from chalicelib.errors import Unauthorized
from chalicelib.governance.identity import Role

#: how long an unauthenticated answer is reused (the probe behind it costs ~11 AWS calls)
SUMMARY_CACHE_SECONDS = 5.0

_lock = threading.Lock()
_cached: tuple[float, str] | None = None  # (monotonic expiry, status)


def _remember(status: str) -> None:
    global _cached
    _cached = (time.monotonic() + SUMMARY_CACHE_SECONDS, status)


def summary_status() -> str:
    """``ok`` or ``degraded``, probed at most once per SUMMARY_CACHE_SECONDS per process."""
    with _lock:  # one probe at a time: a burst of checks at expiry costs one probe, not one each
        cached = _cached
        if cached is not None and time.monotonic() < cached[0]:
            return cached[1]
        status = str(stack_health()["status"])
        _remember(status)
        return status


def forget_cached_status() -> None:
    global _cached
    _cached = None


def register(app: Any) -> None:
    @route(app, "/api/health", methods=["GET"], response=HealthAnswer)
    def health() -> Any:
        header = (app.current_request.headers or {}).get("authorization")
        detail = "each part's state is shown to admin keys"
        try:
            caller = principal_from_header(header) if header else None
        except Unauthorized as error:
            caller, detail = None, f"the key was not accepted ({error.message}); {detail}"
        if caller is not None and caller.role is Role.ADMIN:
            report = stack_health()
            _remember(report["status"])
            return json_response(report, 200 if report["status"] == "ok" else 503)
        status = summary_status()
        return json_response({"status": status, "detail": detail}, 200 if status == "ok" else 503)
