"""Key life cycle: issue, list, rotate and revoke API keys, and retire the bootstrap admin key.

Part of :class:`~chalicelib.governance.service.GovernanceService` (a mixin: it
uses the service's principals repository and audit log). Every change is an
audit event naming the caller; a key's secret is returned once and never stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from chalicelib.errors import BadRequest, Conflict, Forbidden, NotFound
from chalicelib.governance import audit as events
from chalicelib.governance.audit import audit_event
from chalicelib.governance.identity import (
    BOOTSTRAP_ADMIN_KEY_ID,
    Principal,
    Role,
    require_role,
    usable_bootstrap_key,
    validate_agent_id,
)
from chalicelib.governance.keys import generate_api_key, hash_api_key
from chalicelib.governance.ports import AuditLog, PrincipalsRepository
from chalicelib.governance.timeutil import now_iso


class IssuedKey(NamedTuple):
    principal: Principal
    api_key: str  # shown once


class KeyAdministration:
    principals: PrincipalsRepository
    audit_log: AuditLog
    bootstrap_admin_key: str | Callable[[], str | None] | None

    def create_key(
        self, caller: Principal, role: Role | str, name: str, *, team: str | None = None, agent_id: str | None = None
    ) -> IssuedKey:
        """Admin: an admin or publisher key (optionally publishing for ``team``), or a further key for an
        existing agent (after its key was revoked, say)."""
        require_role(caller, Role.ADMIN)
        wanted = Role.parse(role)
        if wanted is Role.AGENT:
            if not agent_id:
                raise BadRequest("an agent key names its agent: agent_id is required (or use POST /api/agents)",
                                 field="agent_id")  # fmt: skip
            if self.principals.get_agent(validate_agent_id(agent_id)) is None:
                raise NotFound(f"no agent {agent_id!r}; register it with POST /api/agents")
            if team:
                raise BadRequest("agent keys do not publish skills: team is for admin and publisher keys", field="team")
            return self._issue_key(caller, wanted, name=name, agent_id=agent_id)
        if agent_id:
            raise BadRequest(f"only agent keys carry an agent_id (role is {wanted.value})", field="agent_id")
        return self._issue_key(caller, wanted, name=name, owner_id=f"team:{team}" if team else None)

    def list_keys(self, caller: Principal, *, agent_id: str | None = None, include_revoked: bool = True) -> list[Principal]:
        """Admin: every key (or one agent's); an agent key: its agent's keys; a publisher key: itself."""
        if caller.role is Role.ADMIN:
            return self.principals.list_keys(agent_id=validate_agent_id(agent_id) if agent_id else None,
                                             include_revoked=include_revoked)  # fmt: skip
        if caller.role is Role.AGENT:
            if agent_id and agent_id != caller.agent_id:
                raise Forbidden(f"an agent key for {caller.agent_id!r} cannot list the keys of agent {agent_id!r}")
            return self.principals.list_keys(agent_id=caller.agent_id, include_revoked=include_revoked)
        stored = self.principals.get_key(caller.key_id)
        return [stored.principal] if stored and (include_revoked or stored.principal.active) else []

    def rotate_key(self, caller: Principal, key_id: str) -> tuple[IssuedKey, Principal]:
        """Replace a key: a new secret for the same role, name, agent and owner identity; the old key is
        revoked in the same write. Any key may rotate itself; an admin may rotate any key.

        Returns the new key and the revoked old principal.
        """
        if key_id == BOOTSTRAP_ADMIN_KEY_ID:
            raise Conflict("the bootstrap admin key lives in the deployment's environment and cannot be rotated here: "
                           "create an admin key, then retire the bootstrap key (DELETE /api/keys/bootstrap-admin)")  # fmt: skip
        if not re.fullmatch(r"[0-9a-f]{16}", key_id or ""):
            raise BadRequest(f"{key_id[:40]!r} is not a key id (16 hex digits, the part after shk_ in the key)", field="key_id")
        if caller.role is not Role.ADMIN and caller.key_id != key_id:
            raise Forbidden("a key may rotate only itself; an admin key may rotate any key")
        stored = self.principals.get_key(key_id)
        if stored is None:
            raise NotFound(f"no key {key_id}")
        old = stored.principal
        if not old.active:
            raise Conflict(f"key {key_id} is revoked; an admin issues a new one with POST /api/keys")
        material = generate_api_key()
        new = Principal(key_id=material.key_id, role=old.role, name=old.name, agent_id=old.agent_id,
                        owner_id=old.publisher_id if old.role is not Role.AGENT else None)  # fmt: skip
        revoked = self.principals.rotate_key(key_id, new, material.key_hash)
        self.audit_log.append(audit_event(
            events.KEY_ROTATE, actor=caller.actor, agent_id=old.agent_id,
            detail={"key_id": key_id, "new_key_id": new.key_id, "role": old.role.value, "name": old.name},
        ))  # fmt: skip
        return IssuedKey(principal=new, api_key=material.api_key), revoked

    def revoke_key(self, caller: Principal, key_id: str) -> Principal:
        """Admin: revoke any key (``bootstrap-admin``: retire the bootstrap key). NotFound/Conflict from the store."""
        require_role(caller, Role.ADMIN)
        if key_id == BOOTSTRAP_ADMIN_KEY_ID:
            return self.retire_bootstrap_key(caller)
        stored = self.principals.get_key(key_id)
        if stored is not None and stored.principal.role is Role.ADMIN and stored.principal.active:
            self._keep_an_admin(excluding=key_id)
        principal = self.principals.revoke_key(key_id)
        self._append_key_event(events.KEY_REVOKE, caller, principal)
        return principal

    def retire_bootstrap_key(self, caller: Principal) -> Principal:
        """Admin: refuse the configured bootstrap key from now on (it may stay in the environment).

        Only once another admin key exists, so that the deployment keeps an admin.
        """
        require_role(caller, Role.ADMIN)
        bootstrap = usable_bootstrap_key(self._bootstrap_key())
        if bootstrap is None:
            raise NotFound("no bootstrap admin key is configured (SKILLHARBOR_ADMIN_KEY)")
        if not self.principals.list_keys(role=Role.ADMIN, include_revoked=False):
            raise Conflict("create another admin key first (POST /api/keys with role admin): "
                           "retiring the bootstrap key would leave no admin")  # fmt: skip
        if not self.principals.retire_bootstrap_key(hash_api_key(bootstrap), retired_by=caller.actor):
            raise Conflict("the bootstrap admin key is already retired")
        retired = Principal(key_id=BOOTSTRAP_ADMIN_KEY_ID, role=Role.ADMIN, name="bootstrap admin", revoked_at=now_iso())
        self._append_key_event(events.KEY_REVOKE, caller, retired, bootstrap=True)
        return retired

    # --- helpers --------------------------------------------------------------------------

    def _bootstrap_key(self) -> str | None:
        key = self.bootstrap_admin_key
        return key() if callable(key) else key

    def _keep_an_admin(self, *, excluding: str) -> None:
        """Conflict when revoking ``excluding`` would leave no way in as an admin."""
        bootstrap = usable_bootstrap_key(self._bootstrap_key())
        if bootstrap is not None and not self.principals.is_retired_bootstrap_key(hash_api_key(bootstrap)):
            return
        others = [p for p in self.principals.list_keys(role=Role.ADMIN, include_revoked=False) if p.key_id != excluding]
        if not others:
            raise Conflict(f"key {excluding} is the last admin key and the bootstrap key is retired or unset: "
                           "create another admin key before revoking it")  # fmt: skip

    def _issue_key(
        self, caller: Principal, role: Role, *, name: str, agent_id: str | None = None, owner_id: str | None = None
    ) -> IssuedKey:
        material = generate_api_key()
        principal = Principal(key_id=material.key_id, role=role, name=name, agent_id=agent_id, owner_id=owner_id)
        self.principals.put_key(principal, material.key_hash)
        detail = {"key_id": principal.key_id, "role": role.value, "name": name}
        if owner_id:
            detail["owner"] = owner_id
        self.audit_log.append(audit_event(events.KEY_CREATE, actor=caller.actor, agent_id=agent_id, detail=detail))
        return IssuedKey(principal=principal, api_key=material.api_key)

    def _append_key_event(self, action: str, caller: Principal, principal: Principal, **detail: object) -> None:
        self.audit_log.append(audit_event(
            action, actor=caller.actor, agent_id=principal.agent_id,
            detail={"key_id": principal.key_id, "role": principal.role.value, **detail},
        ))  # fmt: skip
