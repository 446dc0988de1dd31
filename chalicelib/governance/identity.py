"""Who is asking: principals (API keys with a role), agents, and the rules
that keep a key from acting as someone else. Plain Python, no I/O: key
lookups go through the small ``KeyLookup`` protocol."""

from __future__ import annotations

import hmac
import re
from enum import Enum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chalicelib.errors import BadRequest, Forbidden, Unauthorized
from chalicelib.governance.enums import parse_member
from chalicelib.governance.keys import hash_api_key, key_id_of, verify_api_key
from chalicelib.governance.maturity import Maturity
from chalicelib.governance.timeutil import now_iso

_AGENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
BOOTSTRAP_ADMIN_KEY_ID = "bootstrap-admin"
#: a shorter bootstrap key could be guessed; Settings refuses it at start-up and authenticate never accepts it
BOOTSTRAP_KEY_MIN_LENGTH = 32
# who owns skills: a team several keys publish for, or one key (and the keys that replaced it by rotation)
_OWNER_ID_RE = re.compile(r"^(team:[a-z0-9][a-z0-9._-]{0,63}|key:(?:[0-9a-f]{16}|bootstrap-admin))$")


def validate_owner_id(owner_id: object) -> str:
    """``owner_id`` unchanged when it is ``team:<name>`` or ``key:<key id>``; BadRequest otherwise."""
    if not isinstance(owner_id, str) or not _OWNER_ID_RE.match(owner_id):
        raise BadRequest(
            "an owner is team:<name> (1-64 lower-case letters, digits, '.', '_' or '-') or key:<key id>; "
            f"got {str(owner_id)[:80]!r}",
            field="owner",
        )
    return owner_id


def validate_agent_id(agent_id: object) -> str:
    """``agent_id`` unchanged when valid; BadRequest saying what is allowed otherwise.

    1-64 characters: letters, digits, '.', '_' or '-', starting with a letter or
    digit (safe inside DynamoDB keys, URLs, container labels and log lines).
    """
    if not isinstance(agent_id, str) or not _AGENT_ID_RE.match(agent_id):
        raise BadRequest(
            "agent_id must be 1-64 characters of letters, digits, '.', '_' or '-', "
            f"starting with a letter or digit; got {agent_id!r}",
            field="agent_id",
        )
    return agent_id


class Role(str, Enum):
    ADMIN = "admin"
    PUBLISHER = "publisher"  # imports skills, requests approvals
    AGENT = "agent"  # acts as exactly one agent

    @classmethod
    def parse(cls, value: object) -> Role:
        return parse_member(cls, value, what="role", field="role")

    def __str__(self) -> str:
        return self.value


class Principal(BaseModel):
    """The holder of one API key. The key's hash is kept by the store, not here."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    role: Role
    name: str
    agent_id: str | None = None  # set exactly for agent keys
    #: the identity the skills this key publishes belong to (``team:<name>``, or ``key:<id>`` of the key it
    #: replaced); None: the key itself
    owner_id: str | None = None
    created_at: str = Field(default_factory=now_iso)
    revoked_at: str | None = None

    @field_validator("role", mode="before")
    @classmethod
    def _role(cls, value: object) -> Role:
        return Role.parse(value)

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: object) -> str:
        text = value.strip() if isinstance(value, str) else ""
        if not text or len(text) > 200:
            raise BadRequest("name must be 1-200 characters", field="name")
        return text

    @field_validator("owner_id")
    @classmethod
    def _owner_id(cls, value: str | None) -> str | None:
        return None if value is None else validate_owner_id(value)

    @model_validator(mode="after")
    def _agent_keys_name_their_agent(self) -> Principal:
        if self.role is Role.AGENT:
            validate_agent_id(self.agent_id)
        elif self.agent_id is not None:
            raise BadRequest(f"only agent keys carry an agent_id (role is {self.role})", field="agent_id")
        return self

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def publisher_id(self) -> str:
        """The owner identity of what this key publishes: its team, or the key (kept across rotations)."""
        return self.owner_id or f"key:{self.key_id}"

    @property
    def actor(self) -> str:
        """How audit events name this principal, e.g. ``admin:ops-laptop`` or ``agent:bot-7``."""
        return f"{self.role.value}:{self.agent_id if self.role is Role.AGENT else self.name}"


class Agent(BaseModel):
    """An agent and its maturity; ``version`` guards conditional updates."""

    model_config = ConfigDict(frozen=True)

    agent_id: str
    maturity: Maturity
    created_at: str = Field(default_factory=now_iso)
    updated_at: str = Field(default_factory=now_iso)
    version: int = 1

    @field_validator("agent_id", mode="before")
    @classmethod
    def _agent_id(cls, value: object) -> str:
        return validate_agent_id(value)

    @field_validator("maturity", mode="before")
    @classmethod
    def _maturity(cls, value: object) -> Maturity:
        return Maturity.parse(value)


class StoredKey(BaseModel):
    """A principal together with the hash of its key, as the store keeps them."""

    model_config = ConfigDict(frozen=True)

    principal: Principal
    key_hash: str


class KeyLookup(Protocol):
    def get_key(self, key_id: str) -> StoredKey | None: ...

    def is_retired_bootstrap_key(self, key_hash: str) -> bool:
        """Whether an admin retired the bootstrap key with this hash."""
        ...


def usable_bootstrap_key(bootstrap_admin_key: str | None) -> str | None:
    """The configured bootstrap key when it is long enough to be one; None otherwise."""
    if bootstrap_admin_key and len(bootstrap_admin_key.strip()) >= BOOTSTRAP_KEY_MIN_LENGTH:
        return bootstrap_admin_key.strip()
    return None


def authenticate(api_key: str | None, keys: KeyLookup, *, bootstrap_admin_key: str | None = None) -> Principal:
    """The active principal owning ``api_key``; Unauthorized (401) otherwise.

    The key id is read from the key itself, the stored hash fetched by id and
    compared in constant time. ``bootstrap_admin_key`` (settings.admin_key)
    is accepted as an admin so that a fresh deployment can create its first keys,
    until an admin retires it (then it is refused although still configured).
    """
    if not api_key or not isinstance(api_key, str):
        raise Unauthorized("an API key is required (Authorization: Bearer <key>)")
    api_key = api_key.strip()
    bootstrap = usable_bootstrap_key(bootstrap_admin_key)
    if bootstrap and hmac.compare_digest(hash_api_key(api_key), hash_api_key(bootstrap)):
        if keys.is_retired_bootstrap_key(hash_api_key(bootstrap)):
            raise Unauthorized("this bootstrap admin key has been retired; use an admin key")
        return bootstrap_principal()
    key_id = key_id_of(api_key)
    stored = keys.get_key(key_id) if key_id else None
    if stored is None or not verify_api_key(api_key, stored.key_hash):
        raise Unauthorized("unknown API key")
    if not stored.principal.active:
        raise Unauthorized("this API key has been revoked")
    return stored.principal


def bootstrap_principal() -> Principal:
    return Principal(key_id=BOOTSTRAP_ADMIN_KEY_ID, role=Role.ADMIN, name="bootstrap admin")


def require_role(principal: Principal, *roles: Role) -> Principal:
    """``principal`` when its role is one of ``roles``; Forbidden (403) otherwise."""
    if principal.role not in roles:
        allowed = " or ".join(r.value for r in roles)
        raise Forbidden(f"this operation needs a key with role {allowed}; this key's role is {principal.role.value}")
    return principal


def acting_agent_id(principal: Principal, requested_agent_id: str | None) -> str | None:
    """The agent a request may act as or read about.

    Agent keys act only as their own agent: naming another one is Forbidden,
    naming none means their own. Admin (and publisher) keys may name any
    agent; they get ``None`` back when they name none (meaning "all").
    """
    if requested_agent_id is not None and requested_agent_id != "":
        validate_agent_id(requested_agent_id)
    else:
        requested_agent_id = None
    if principal.role is Role.AGENT:
        if requested_agent_id is not None and requested_agent_id != principal.agent_id:
            raise Forbidden(f"an agent key for {principal.agent_id!r} cannot act as agent {requested_agent_id!r}")
        return principal.agent_id
    return requested_agent_id
