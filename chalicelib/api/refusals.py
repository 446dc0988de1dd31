"""Every refusal of an authenticated request to run or build is audited, whatever refused it.

A view decorated with ``audited_refusals(app, action)`` leaves one audit event
when it answers an error after authentication: permission denied, not ready,
bad input, not found, rate limited (``denied``, 4xx) or a failure on the
platform's side (``failed``, 5xx). Unauthenticated calls are not audited here:
there is no actor to name (the API's access log has them). A refusal the
view (or the service it calls) already audited under the same action is
not audited twice.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
from typing import Any

from chalicelib.api.auth import principal_of
from chalicelib.errors import SkillharborError, Unauthorized
from chalicelib.governance.audit import DENIED, FAILED

log = logging.getLogger("skillharbor.api")

#: the actions audited while the current view runs (None outside audited views)
_recorded: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar("audited_actions", default=None)


def note_recorded(action: str) -> None:
    """Called for every audit event the API appends (services.record_event)."""
    recorded = _recorded.get()
    if recorded is not None:
        recorded.add(action)


def _claimed(request: Any, name: str) -> str | None:
    """A valid id from the JSON body's field ``name``, if there is one (the body may be what was wrong)."""
    from chalicelib.api.services import valid_skill_id
    from chalicelib.governance.identity import validate_agent_id

    try:
        body = json.loads(request.raw_body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None
    value = body.get(name) if isinstance(body, dict) else None
    try:
        return (validate_agent_id if name == "agent_id" else valid_skill_id)(value)  # type: ignore[arg-type]
    except SkillharborError:
        return None


def _record(app: Any, action: str, error: SkillharborError | None, skill_id: str | None, detail: dict[str, Any]) -> None:
    from chalicelib.api.services import record_event

    request = app.current_request
    try:
        caller = principal_of(request)
    except Unauthorized:
        return
    error = error or SkillharborError("internal error; see the service logs")  # what the API answered
    status, body = error.http_status, {"error": error.reason, "message": error.message[:500]}
    if error.problems:
        body["problems"] = [p[:300] for p in error.problems[:10]]
    agent_id = caller.agent_id or _claimed(request, "agent_id")
    try:
        record_event(action, actor=caller.actor, agent_id=agent_id, skill_id=skill_id or _claimed(request, "skill_id"),
                     outcome=DENIED if status < 500 else FAILED, detail={**detail, "status": status, **body})  # fmt: skip
    except Exception:  # the answer stands; the log keeps what the trail could not
        log.exception("could not audit a refused %s", action)


def audited_refusals(app: Any, action: str, **detail: Any) -> Any:
    """Audit ``action`` (with ``detail``) when the view answers an error; put it under ``route``."""

    def decorate(view: Any) -> Any:
        @functools.wraps(view)
        def audited(*args: Any, **kwargs: Any) -> Any:
            recorded: set[str] = set()
            token = _recorded.set(recorded)
            try:
                return view(*args, **kwargs)
            except SkillharborError as error:
                if action not in recorded:
                    _record(app, action, error, kwargs.get("skill_id"), detail)
                raise
            except Exception:
                if action not in recorded:
                    _record(app, action, None, kwargs.get("skill_id"), detail)
                raise
            finally:
                _recorded.reset(token)

        return audited

    return decorate
