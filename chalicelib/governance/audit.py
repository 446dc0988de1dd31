"""Audit events: what happened, who did it, to which agent/skill/package.

Events are append-only. ``time`` is ISO 8601 UTC with microseconds in one
fixed-width form, so that string order is time order (the store sorts on it).
"""

from __future__ import annotations

import secrets
import threading
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.errors import BadRequest
from chalicelib.governance.timeutil import format_time, parse_time, utc_now

# --- actions -------------------------------------------------------------------
SKILL_IMPORT = "skill.import"
IMPORT_STEP = "import.step"
PACKAGE_CHECK = "package.check"
PACKAGE_REQUEST = "package.request"
PACKAGE_APPROVE = "package.approve"
PACKAGE_BAN = "package.ban"
RULE_REVOKE = "rule.revoke"
REQUEST_DECIDE = "request.decide"
KEY_CREATE = "key.create"
KEY_REVOKE = "key.revoke"
KEY_ROTATE = "key.rotate"
SKILL_OWNER = "skill.owner"  # a skill's owner claimed by a first publish, or assigned by an admin
INBOX_MAP = "inbox.map"  # an inbox prefix mapped to an owner, or unmapped
AGENT_CREATE = "agent.create"
AGENT_UPDATE = "agent.update"
SKILL_EXECUTE = "skill.execute"
IMAGE_REMOVE = "image.remove"
SCAN_IGNORE = "scan.ignore"
ISOLATION_RULE_ADD = "isolation.rule_add"
ISOLATION_RULE_REMOVE = "isolation.rule_remove"
NETWORK_APPROVE = "network.approve"  # a host pattern approved for a maturity and up
NETWORK_BAN = "network.ban"
NETWORK_REQUEST = "network.request"  # an import waits for a host approval
SECRET_BIND = "secret.bind"  # a secret stored and bound (the event never holds the value)
SECRET_UNBIND = "secret.unbind"
NETWORK_CONNECT = "network.connect"  # one connection through a run's egress proxy, allowed or denied
SKILL_RESCAN = "skill.rescan"  # a ready version scanned again after the rule pack or advisories changed

ACTIONS = frozenset(
    {
        SKILL_IMPORT,
        IMPORT_STEP,
        PACKAGE_CHECK,
        PACKAGE_REQUEST,
        PACKAGE_APPROVE,
        PACKAGE_BAN,
        RULE_REVOKE,
        REQUEST_DECIDE,
        KEY_CREATE,
        KEY_REVOKE,
        KEY_ROTATE,
        SKILL_OWNER,
        INBOX_MAP,
        AGENT_CREATE,
        AGENT_UPDATE,
        SKILL_EXECUTE,
        IMAGE_REMOVE,
        SCAN_IGNORE,
        ISOLATION_RULE_ADD,
        ISOLATION_RULE_REMOVE,
        NETWORK_APPROVE,
        NETWORK_BAN,
        NETWORK_REQUEST,
        SECRET_BIND,
        SECRET_UNBIND,
        NETWORK_CONNECT,
        SKILL_RESCAN,
    }
)

# --- outcomes ------------------------------------------------------------------
OK = "ok"  # a state change that happened
ALLOWED = "allowed"  # a permission decision that said yes
DENIED = "denied"  # a permission decision that said no, or a refused request
FAILED = "failed"  # an operation that raised
PENDING = "pending"  # waiting for someone (e.g. an import waiting for approvals)
BLOCKED = "blocked"  # policy stopped a skill
FLAGGED = "flagged"  # something needs a person's look, nothing was stopped (e.g. a re-scan found a vulnerability)

SYSTEM_ACTOR = "system"  # the pipeline, the scheduler, the runner


def new_event_id() -> str:
    return f"evt_{secrets.token_hex(10)}"


_last_time = utc_now()
_time_lock = threading.Lock()


def event_time() -> str:
    """Now, but strictly after the previous event of this process.

    Two events built within the same microsecond would otherwise sort by
    their random ids; nudging the later one by 1 µs keeps this process's
    events in the order they happened.
    """
    global _last_time
    with _time_lock:
        moment = utc_now()
        if moment <= _last_time:
            moment = _last_time + timedelta(microseconds=1)
        _last_time = moment
    return format_time(moment)


class AuditEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: str = Field(default_factory=new_event_id)
    time: str = Field(default_factory=event_time)
    action: str
    actor: str
    agent_id: str | None = None
    skill_id: str | None = None
    package: str | None = None
    outcome: str = OK
    detail: dict[str, Any] = Field(default_factory=dict)

    @field_validator("action")
    @classmethod
    def _action(cls, value: str) -> str:
        # Other areas may add actions; keep them dotted lower-case so filters stay predictable.
        if not value or value != value.strip().lower() or "." not in value or "#" in value:
            raise BadRequest(f"audit action {value!r} must look like 'noun.verb' in lower case", field="action")
        return value

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        return parse_time(value, field="time")  # canonical form, so that string order is time order

    @field_validator("actor")
    @classmethod
    def _actor(cls, value: str) -> str:
        if not value or not value.strip():
            raise BadRequest("audit actor is required", field="actor")
        return value.strip()

    @property
    def sort_key(self) -> str:
        """Time-ordered, unique: what the store sorts events on."""
        return f"{self.time}#{self.event_id}"

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def audit_event(
    action: str,
    *,
    actor: str,
    agent_id: str | None = None,
    skill_id: str | None = None,
    package: str | None = None,
    outcome: str = OK,
    detail: dict[str, Any] | None = None,
    event_id: str | None = None,
    time: str | None = None,
) -> AuditEvent:
    """Build an event; pass ``event_id`` (and ``time``) to make a retried append idempotent."""
    fields: dict[str, Any] = {
        "action": action,
        "actor": actor,
        "agent_id": agent_id,
        "skill_id": skill_id,
        "package": package,
        "outcome": outcome,
        "detail": dict(detail or {}),
    }
    if event_id is not None:
        fields["event_id"] = event_id
    if time is not None:
        fields["time"] = time
    return AuditEvent(**fields)


# --- queries -------------------------------------------------------------------

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


class AuditPage(BaseModel):
    """One page of events, newest first; ``next_token`` is None on the last page."""

    model_config = ConfigDict(frozen=True)

    events: tuple[AuditEvent, ...]
    next_token: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"events": [e.to_json() for e in self.events], "next_token": self.next_token}


def time_bounds(since: str | None, until: str | None) -> tuple[str | None, str | None]:
    """``since`` as the lowest event time, and a sort key just above every event at ``until`` (both
    inclusive); BadRequest when either is not ISO 8601 or ``until`` is before ``since``."""
    lower = parse_time(since, field="since") if since else None
    upper = parse_time(until, field="until") if until else None
    if lower is not None and upper is not None and upper < lower:
        raise BadRequest(f"until ({until}) is before since ({since})", field="until")
    # '~' sorts after '#' and every event id character, so "<until>#~" is above every event at `until`
    return lower, (f"{upper}#~" if upper else None)


def page_size(limit: int | str | None) -> int:
    """``limit`` as an int in 1..MAX_PAGE_SIZE (default DEFAULT_PAGE_SIZE); BadRequest otherwise."""
    if limit is None or limit == "":
        return DEFAULT_PAGE_SIZE
    try:
        value = int(limit)
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise BadRequest(f"limit must be an integer from 1 to {MAX_PAGE_SIZE}; got {limit!r}", field="limit")
    return value
