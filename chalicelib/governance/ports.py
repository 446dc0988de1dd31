"""The store interfaces the governance domain talks to.

DynamoDB adapters live in ``chalicelib/store/{rules,principals,audit}.py``;
in-memory fakes with the same behaviour live in ``governance/memory.py``.
"""

from __future__ import annotations

from typing import Protocol

from chalicelib.governance.audit import AuditEvent, AuditPage
from chalicelib.governance.identity import Agent, Principal, Role, StoredKey
from chalicelib.governance.isolation import IsolationRule
from chalicelib.governance.maturity import Maturity
from chalicelib.governance.rules import ApprovalRequest, RequestStatus, Rule, RuleSet


class RulesRepository(Protocol):
    def put_rule(self, rule: Rule) -> Rule:
        """Store a new approval or ban (Conflict if its rule_id exists)."""
        ...

    def get_rule(self, rule_id: str) -> Rule | None: ...

    def rules_for(self, package: str, *, include_revoked: bool = False) -> RuleSet:
        """Every (active) rule of one package, read consistently."""
        ...

    def list_rules(self, *, package: str | None = None, include_revoked: bool = False) -> list[Rule]:
        """All rules, by package then creation time."""
        ...

    def revoke_rule(self, rule_id: str, *, revoked_by: str, revoked_at: str | None = None) -> Rule:
        """Mark a rule revoked: NotFound if unknown, Conflict if already revoked."""
        ...

    def create_request(self, request: ApprovalRequest) -> ApprovalRequest:
        """Store a request; when its request_id already exists, return the stored one (idempotent)."""
        ...

    def get_request(self, request_id: str) -> ApprovalRequest | None: ...

    def list_requests(
        self,
        status: RequestStatus | str | None = None,
        *,
        package: str | None = None,
        agent_id: str | None = None,
        limit: int | None = 500,
    ) -> list[ApprovalRequest]:
        """Requests, newest first, by status and/or package or agent (indexes, not scans);
        ``limit`` None reads to the end."""
        ...

    def decide_request(
        self,
        request_id: str,
        status: RequestStatus | str,
        *,
        decided_by: str,
        decided_at: str | None = None,
        reason: str | None = None,
    ) -> ApprovalRequest:
        """pending → approved/rejected: NotFound if unknown, Conflict if no longer pending."""
        ...


class AgentRepository(Protocol):
    def create_agent(self, agent: Agent) -> Agent:
        """Conflict if the agent exists."""
        ...

    def get_agent(self, agent_id: str) -> Agent | None: ...

    def list_agents(self) -> list[Agent]: ...

    def update_maturity(
        self, agent_id: str, maturity: Maturity | str, *, expected_version: int | None = None
    ) -> Agent:
        """Set the maturity with a version check. With ``expected_version``: one attempt,
        Conflict if it moved; without: re-read and retry. NotFound if unknown."""
        ...


class KeyRepository(Protocol):
    def put_key(self, principal: Principal, key_hash: str) -> None:
        """Conflict if the key id exists (hashes of 256-bit random keys do not collide)."""
        ...

    def get_key(self, key_id: str) -> StoredKey | None: ...

    def find_key_by_hash(self, key_hash: str) -> StoredKey | None: ...

    def revoke_key(self, key_id: str, *, revoked_at: str | None = None) -> Principal:
        """NotFound if unknown, Conflict if already revoked."""
        ...

    def rotate_key(self, old_key_id: str, new: Principal, new_key_hash: str) -> Principal:
        """Store ``new`` and revoke ``old_key_id`` at once (both or neither): the revoked old principal.
        NotFound if the old key is unknown, Conflict if it is already revoked."""
        ...

    def retire_bootstrap_key(self, key_hash: str, *, retired_by: str) -> bool:
        """Refuse the bootstrap key with this hash from now on; False if it already was."""
        ...

    def is_retired_bootstrap_key(self, key_hash: str) -> bool: ...

    def list_keys(
        self, *, role: Role | str | None = None, agent_id: str | None = None, include_revoked: bool = True
    ) -> list[Principal]: ...


class PrincipalsRepository(AgentRepository, KeyRepository, Protocol):
    """Agents and keys share one table."""


class AuditLog(Protocol):
    def append(self, event: AuditEvent) -> AuditEvent:
        """Append once: appending the same event (id and time) again changes nothing."""
        ...

    def query(
        self,
        *,
        agent_id: str | None = None,
        skill_id: str | None = None,
        action: str | None = None,
        since: str | None = None,
        until: str | None = None,
        outcomes: tuple[str, ...] | None = None,
        limit: int | str | None = None,
        next_token: str | None = None,
    ) -> AuditPage:
        """Events newest first, filtered by every given field (``since`` and ``until`` inclusive, ``outcomes``
        any of), paginated."""
        ...


class IsolationRulesRepository(Protocol):
    """Isolation rules (``governance/isolation.py``)."""

    def put(self, rule: IsolationRule) -> IsolationRule:
        """Store a new rule; Conflict if its id exists."""
        ...

    def get(self, rule_id: str) -> IsolationRule | None: ...

    def list(self) -> list[IsolationRule]: ...

    def delete(self, rule_id: str) -> IsolationRule:
        """Remove a rule and return it; NotFound if there is none."""
        ...
