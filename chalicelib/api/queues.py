"""Dead-letter queues, seen from the API: how many messages sit there, and a peek at them.

A message the inbox handler or the runner worker cannot process is never
deleted; after ``maxReceiveCount`` receives SQS moves it to the source
queue's dead-letter queue. ``GET /api/queues/dead-letters`` shows each of
those queues without consuming anything (store/queues.py reads them).
"""

from __future__ import annotations

from typing import Any

from chalicelib.api.auth import require
from chalicelib.api.http import json_response, query_params, route
from chalicelib.api.responses import DeadLetters
from chalicelib.errors import BadRequest
from chalicelib.governance.identity import Role
from chalicelib.settings import get_settings
from chalicelib.store.queues import dead_letters as read_dead_letters

MAX_PEEK = 10
DEFAULT_PEEK = 5


def source_queues() -> dict[str, str]:
    """The queues whose dead letters are reported: purpose → queue URL."""
    settings = get_settings()
    return {name: url for name, url in (("inbox", settings.inbox_queue_url), ("runner", settings.runner_queue_url)) if url}


def dead_letter_report(peek: int = DEFAULT_PEEK) -> dict[str, Any]:
    """Every source queue's dead-letter queue: message counts and up to ``peek`` bodies each."""
    queues = read_dead_letters(source_queues(), peek)
    return {"queues": queues, "total": sum(q["messages"] for q in queues)}


def _peek_count(params: dict[str, str]) -> int:
    raw = params.get("peek")
    if raw is None or raw == "":
        return DEFAULT_PEEK
    if not raw.isdigit() or int(raw) > MAX_PEEK:
        raise BadRequest(f"peek must be an integer from 0 to {MAX_PEEK}; got {raw!r}")
    return int(raw)


def register(app: Any, authorizer: Any) -> None:
    @route(app, "/api/queues/dead-letters", methods=["GET"], response=DeadLetters, authorizer=authorizer)
    def dead_letters() -> Any:
        require(app.current_request, Role.ADMIN)
        return json_response(dead_letter_report(_peek_count(query_params(app.current_request))))
