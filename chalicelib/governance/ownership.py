"""Who may publish a skill: its owner, the identity a publisher publishes as, and the inbox's prefix map.

A skill id belongs to one owner: ``team:<name>`` (every key an admin issued
for that team) or ``key:<key id>`` (one key, and the keys that replaced it by
rotation). The first publish of a new skill id claims it with a conditional
write, so of two publishers racing for a new id exactly one becomes its
owner. From then on only the owner or an admin may publish versions; anyone
else is refused without being told who the owner is. Uploads to the S3 inbox
carry no key: an admin maps inbox prefixes (folders) to owners, and an upload
under no mapped prefix is refused.

Plain Python over small repository protocols (DynamoDB adapters: store/owners.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.errors import BadRequest, Conflict, Forbidden, NotFound
from chalicelib.governance.audit import DENIED, INBOX_MAP, SKILL_IMPORT, SKILL_OWNER, audit_event
from chalicelib.governance.identity import BOOTSTRAP_ADMIN_KEY_ID, Principal, Role, StoredKey, require_role, validate_owner_id
from chalicelib.governance.ports import AuditLog
from chalicelib.governance.timeutil import now_iso

#: how many folders an inbox prefix may have (an upload's key is matched against its first ones)
MAX_PREFIX_DEPTH = 8
MAX_PREFIX_LENGTH = 512
ROOT_PREFIX = "/"  # how the API and the CLI name the whole bucket


class Publisher(BaseModel):
    """Who an upload is published as: the owner identity it may claim or must match, and whether it is an admin."""

    model_config = ConfigDict(frozen=True)

    owner_id: str
    admin: bool = False
    actor: str

    @field_validator("owner_id")
    @classmethod
    def _owner(cls, value: str) -> str:
        return validate_owner_id(value)

    @classmethod
    def of(cls, principal: Principal) -> Publisher:
        return cls(owner_id=principal.publisher_id, admin=principal.role is Role.ADMIN, actor=principal.actor)

    @classmethod
    def from_state(cls, data: Any) -> Publisher:
        """The publisher an import's state carries; Forbidden when it carries none (fail closed)."""
        if not isinstance(data, dict):
            raise Forbidden("this import names no publisher, so it may not publish a skill")
        return cls.model_validate(data)


class SkillOwner(BaseModel):
    model_config = ConfigDict(frozen=True)

    skill_id: str
    owner_id: str
    assigned_by: str
    assigned_at: str = Field(default_factory=now_iso)
    via: str = "first_publish"  # or "admin"
    import_id: str | None = None


class InboxPrefix(BaseModel):
    model_config = ConfigDict(frozen=True)

    prefix: str  # "" is the whole bucket (shown as "/")
    owner_id: str
    mapped_by: str
    mapped_at: str = Field(default_factory=now_iso)

    def to_json(self) -> dict[str, Any]:
        return {**self.model_dump(mode="json"), "prefix": self.prefix or ROOT_PREFIX}


class OwnerRepository(Protocol):
    def get_owner(self, skill_id: str) -> SkillOwner | None: ...

    def claim_owner(self, owner: SkillOwner) -> tuple[SkillOwner, bool]:
        """Store ``owner`` unless the skill has one: (the stored owner, whether this call stored it)."""
        ...

    def set_owner(self, owner: SkillOwner, *, expected_owner_id: str | None = None) -> SkillOwner | None:
        """Replace the owner (Conflict when ``expected_owner_id`` no longer holds); the previous one."""
        ...


class InboxPrefixRepository(Protocol):
    def put_prefix(self, mapping: InboxPrefix) -> InboxPrefix | None:
        """Create or replace a mapping; the previous one."""
        ...

    def get_prefix(self, prefix: str) -> InboxPrefix | None: ...

    def delete_prefix(self, prefix: str) -> InboxPrefix:
        """NotFound when the prefix is not mapped."""
        ...

    def list_prefixes(self) -> list[InboxPrefix]: ...


def normalize_prefix(value: object) -> str:
    """An inbox prefix as stored: '' for the whole bucket, else folders ending in '/'; BadRequest otherwise."""
    if not isinstance(value, str) or not value:
        raise BadRequest("prefix is required: a folder of the inbox bucket ending in '/', or '/' for all of it",
                         field="prefix")  # fmt: skip
    if value == ROOT_PREFIX:
        return ""
    problem = None
    folders = value[:-1].split("/")
    if len(value.encode()) > MAX_PREFIX_LENGTH:
        problem = f"is longer than {MAX_PREFIX_LENGTH} bytes"
    elif any(ord(c) < 32 or ord(c) == 127 or c in "\u2028\u2029\\" for c in value):
        problem = "contains control characters or a backslash"
    elif not value.endswith("/"):
        problem = "must end with '/' (a folder, so that 'team-a/' does not also match 'team-ab/')"
    elif any(folder in ("", ".", "..") for folder in folders):
        problem = "has an empty, '.' or '..' folder"
    elif len(folders) > MAX_PREFIX_DEPTH:
        problem = f"has more than {MAX_PREFIX_DEPTH} folders"
    if problem:
        raise BadRequest(f"inbox prefix {value[:80]!r} {problem}", field="prefix")
    return value


def prefix_candidates(key: str) -> list[str]:
    """The prefixes that could map an object key, longest first ('' last)."""
    folders = key.split("/")[:-1][:MAX_PREFIX_DEPTH]
    return ["/".join(folders[:depth]) + "/" for depth in range(len(folders), 0, -1)] + [""]


class OwnershipService:
    def __init__(
        self,
        owners: OwnerRepository,
        prefixes: InboxPrefixRepository,
        audit_log: AuditLog | None,
        *,
        has_versions: Callable[[str], bool],
        get_key: Callable[[str], StoredKey | None],
    ) -> None:
        self.owners, self.prefixes, self.audit_log = owners, prefixes, audit_log
        self.has_versions, self.get_key = has_versions, get_key

    # --- publishing -----------------------------------------------------------------------

    def authorize_publish(self, skill_id: str, publisher: Publisher, *, import_id: str | None = None) -> SkillOwner:
        """The skill's owner, claimed for ``publisher`` when the id is new; Forbidden when it may not publish."""
        owner = self.owners.get_owner(skill_id)
        if owner is None:
            if self.has_versions(skill_id) and not publisher.admin:
                self._refused(skill_id, publisher, import_id, None)
                raise Forbidden(f"skill {skill_id!r} was published before skills had owners; an admin assigns "
                                f"its owner (PUT /api/skills/{skill_id}/owner) or publishes it")  # fmt: skip
            owner, claimed = self.owners.claim_owner(
                SkillOwner(skill_id=skill_id, owner_id=publisher.owner_id, assigned_by=publisher.actor, import_id=import_id)
            )
            if claimed:
                self._audit(SKILL_OWNER, publisher.actor, skill_id=skill_id,
                            detail={"owner": owner.owner_id, "via": "first_publish", "import_id": import_id})  # fmt: skip
        if publisher.admin or owner.owner_id == publisher.owner_id:
            return owner
        self._refused(skill_id, publisher, import_id, owner)
        raise Forbidden(f"skill {skill_id!r} belongs to another publisher: only its owner or an admin may publish "
                        "new versions (rename your skill, or ask an admin to transfer it)")  # fmt: skip

    def may_publish(self, skill_id: str, publisher: Publisher) -> bool:
        """Whether ``publisher`` could publish ``skill_id``, without claiming it."""
        owner = self.owners.get_owner(skill_id)
        if publisher.admin:
            return True
        if owner is None:
            return not self.has_versions(skill_id)
        return owner.owner_id == publisher.owner_id

    def visible_owner(self, caller: Principal, skill_id: str) -> str | None:
        """The owner, for an admin or for the owner itself; None for everyone else (it is withheld)."""
        if caller.role is Role.AGENT:
            return None
        owner = self.owners.get_owner(skill_id)
        if owner is None or (caller.role is not Role.ADMIN and owner.owner_id != caller.publisher_id):
            return None
        return owner.owner_id

    # --- admin: owners ----------------------------------------------------------------------

    def owner(self, caller: Principal, skill_id: str) -> SkillOwner:
        require_role(caller, Role.ADMIN)
        owner = self.owners.get_owner(skill_id)
        if owner is None:
            raise NotFound(f"skill {skill_id!r} has no owner" + (" (published before skills had owners)"
                                                                   if self.has_versions(skill_id) else ""))  # fmt: skip
        return owner

    def transfer(
        self, caller: Principal, skill_id: str, owner_id: str, *, expected_owner_id: str | None = None
    ) -> tuple[SkillOwner, SkillOwner | None]:
        """Admin: assign the skill (also one not published yet) to ``owner_id``; (new owner, previous owner)."""
        require_role(caller, Role.ADMIN)
        self._check_owner_exists(owner_id)
        if expected_owner_id is not None:
            validate_owner_id(expected_owner_id)
        owner = SkillOwner(skill_id=skill_id, owner_id=owner_id, assigned_by=caller.actor, via="admin")
        previous = self.owners.set_owner(owner, expected_owner_id=expected_owner_id)
        self._audit(SKILL_OWNER, caller.actor, skill_id=skill_id,
                    detail={"owner": owner_id, "previous": previous.owner_id if previous else None, "via": "admin"})  # fmt: skip
        return owner, previous

    # --- admin: the inbox's prefix map ----------------------------------------------------

    def map_prefix(self, caller: Principal, prefix: str, owner_id: str) -> tuple[InboxPrefix, InboxPrefix | None]:
        require_role(caller, Role.ADMIN)
        mapping = InboxPrefix(prefix=normalize_prefix(prefix), owner_id=self._check_owner_exists(owner_id), mapped_by=caller.actor)
        previous = self.prefixes.put_prefix(mapping)
        self._audit(INBOX_MAP, caller.actor, detail={"prefix": mapping.to_json()["prefix"], "owner": owner_id,
                                                     "previous": previous.owner_id if previous else None})  # fmt: skip
        return mapping, previous

    def unmap_prefix(self, caller: Principal, prefix: str) -> InboxPrefix:
        require_role(caller, Role.ADMIN)
        removed = self.prefixes.delete_prefix(normalize_prefix(prefix))
        self._audit(INBOX_MAP, caller.actor, outcome="removed",
                    detail={"prefix": removed.to_json()["prefix"], "previous": removed.owner_id})  # fmt: skip
        return removed

    def list_prefixes(self, caller: Principal) -> list[InboxPrefix]:
        require_role(caller, Role.ADMIN)
        return sorted(self.prefixes.list_prefixes(), key=lambda m: m.prefix)

    def inbox_mapping(self, key: str) -> InboxPrefix | None:
        """The mapping of the longest mapped prefix of an uploaded object's key, if any."""
        for candidate in prefix_candidates(key):
            mapping = self.prefixes.get_prefix(candidate)
            if mapping is not None:
                return mapping
        return None

    # --- helpers ----------------------------------------------------------------------------

    def _check_owner_exists(self, owner_id: str) -> str:
        validate_owner_id(owner_id)
        kind, _, name = owner_id.partition(":")
        if kind == "key" and name != BOOTSTRAP_ADMIN_KEY_ID:
            stored = self.get_key(name)
            if stored is None:
                raise NotFound(f"no key {name}: an owner key:<id> names an existing admin or publisher key")
            if stored.principal.role is Role.AGENT:
                raise BadRequest(f"key {name} is an agent key; agents do not publish skills", field="owner")
        return owner_id

    def _refused(self, skill_id: str, publisher: Publisher, import_id: str | None, owner: SkillOwner | None) -> None:
        self._audit(SKILL_IMPORT, publisher.actor, skill_id=skill_id, outcome=DENIED,
                    detail={"import_id": import_id, "publisher": publisher.owner_id,
                            "owner": owner.owner_id if owner else None, "reason": "not the skill's owner"})  # fmt: skip

    def _audit(self, action: str, actor: str, **fields: Any) -> None:
        if self.audit_log is not None:
            self.audit_log.append(audit_event(action, actor=actor, **fields))


def conflict_if_changed(current: SkillOwner | None, expected_owner_id: str | None, skill_id: str) -> None:
    """Raise Conflict when a transfer's expectation no longer holds (shared by the adapters)."""
    if expected_owner_id is not None and (current is None or current.owner_id != expected_owner_id):
        raise Conflict(f"skill {skill_id!r} changed owner meanwhile; read it again and retry")
