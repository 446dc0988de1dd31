"""In-memory stores with the same behaviour as the DynamoDB adapters (for unit tests)."""

from __future__ import annotations

import base64
import binascii
import threading

from chalicelib.errors import BadRequest, Conflict, NotFound
from chalicelib.governance.audit import AuditEvent, AuditPage, page_size, time_bounds
from chalicelib.governance.identity import Agent, Principal, Role, StoredKey
from chalicelib.governance.isolation import IsolationRule
from chalicelib.governance.maturity import Maturity
from chalicelib.governance.rules import (
    ApprovalRequest,
    RequestStatus,
    Rule,
    RuleSet,
    decided_status,
    normalize_package_name,
)
from chalicelib.governance.timeutil import now_iso


class InMemoryRulesStore:
    def __init__(self) -> None:
        self._rules: dict[str, Rule] = {}
        self._requests: dict[str, ApprovalRequest] = {}
        self._lock = threading.Lock()

    def put_rule(self, rule: Rule) -> Rule:
        with self._lock:
            if rule.rule_id in self._rules:
                raise Conflict(f"rule {rule.rule_id} already exists")
            self._rules[rule.rule_id] = rule
        return rule

    def get_rule(self, rule_id: str) -> Rule | None:
        return self._rules.get(rule_id)

    def rules_for(self, package: str, *, include_revoked: bool = False) -> RuleSet:
        name = normalize_package_name(package)
        return RuleSet.of(name, self.list_rules(package=name, include_revoked=include_revoked))

    def list_rules(self, *, package: str | None = None, include_revoked: bool = False) -> list[Rule]:
        name = normalize_package_name(package) if package else None
        rules = [
            r
            for r in list(self._rules.values())
            if (name is None or r.package == name) and (include_revoked or r.active)
        ]
        return sorted(rules, key=lambda r: (r.package, r.created_at, r.rule_id))

    def revoke_rule(self, rule_id: str, *, revoked_by: str, revoked_at: str | None = None) -> Rule:
        with self._lock:
            rule = self._rules.get(rule_id)
            if rule is None:
                raise NotFound(f"no rule {rule_id}")
            if not rule.active:
                raise Conflict(f"rule {rule_id} is already revoked")
            revoked = rule.model_copy(update={"revoked_at": revoked_at or now_iso(), "revoked_by": revoked_by})
            self._rules[rule_id] = revoked
        return revoked

    def create_request(self, request: ApprovalRequest) -> ApprovalRequest:
        with self._lock:
            return self._requests.setdefault(request.request_id, request)

    def get_request(self, request_id: str) -> ApprovalRequest | None:
        return self._requests.get(request_id)

    def list_requests(
        self,
        status: RequestStatus | str | None = None,
        *,
        package: str | None = None,
        agent_id: str | None = None,
        limit: int | None = 500,
    ) -> list[ApprovalRequest]:
        wanted = RequestStatus.parse(status) if status else None
        name = normalize_package_name(package) if package else None
        found = [
            r
            for r in list(self._requests.values())
            if (wanted is None or r.status is wanted) and (name is None or r.package == name)
            and (agent_id is None or r.agent_id == agent_id)
        ]
        found.sort(key=lambda r: (r.created_at, r.request_id), reverse=True)
        return found if limit is None else found[:limit]

    def decide_request(
        self,
        request_id: str,
        status: RequestStatus | str,
        *,
        decided_by: str,
        decided_at: str | None = None,
        reason: str | None = None,
    ) -> ApprovalRequest:
        new_status = decided_status(status)
        with self._lock:
            request = self._requests.get(request_id)
            if request is None:
                raise NotFound(f"no approval request {request_id}")
            if request.status is not RequestStatus.PENDING:
                raise Conflict(f"approval request {request_id} is already {request.status.value}")
            decided = request.model_copy(
                update={"status": new_status, "decided_by": decided_by, "decided_at": decided_at or now_iso(),
                        "decision_reason": reason}
            )
            self._requests[request_id] = decided
        return decided


class InMemoryPrincipalsStore:
    def __init__(self) -> None:
        self._agents: dict[str, Agent] = {}
        self._keys: dict[str, StoredKey] = {}
        self._retired_bootstrap: set[str] = set()
        self._lock = threading.Lock()

    # --- agents ---
    def create_agent(self, agent: Agent) -> Agent:
        with self._lock:
            if agent.agent_id in self._agents:
                raise Conflict(f"agent {agent.agent_id!r} already exists")
            self._agents[agent.agent_id] = agent
        return agent

    def get_agent(self, agent_id: str) -> Agent | None:
        return self._agents.get(agent_id)

    def list_agents(self) -> list[Agent]:
        return sorted(self._agents.values(), key=lambda a: a.agent_id)

    def update_maturity(
        self, agent_id: str, maturity: Maturity | str, *, expected_version: int | None = None
    ) -> Agent:
        level = Maturity.parse(maturity)
        with self._lock:
            agent = self._agents.get(agent_id)
            if agent is None:
                raise NotFound(f"no agent {agent_id!r}")
            if expected_version is not None and agent.version != expected_version:
                raise Conflict(
                    f"agent {agent_id!r} changed meanwhile (version {agent.version}, expected {expected_version})"
                )
            updated = agent.model_copy(
                update={"maturity": level, "updated_at": now_iso(), "version": agent.version + 1}
            )
            self._agents[agent_id] = updated
        return updated

    # --- keys ---
    def put_key(self, principal: Principal, key_hash: str) -> None:
        with self._lock:
            if principal.key_id in self._keys:
                raise Conflict(f"key {principal.key_id} already exists")
            self._keys[principal.key_id] = StoredKey(principal=principal, key_hash=key_hash)

    def get_key(self, key_id: str) -> StoredKey | None:
        return self._keys.get(key_id)

    def find_key_by_hash(self, key_hash: str) -> StoredKey | None:
        return next((k for k in list(self._keys.values()) if k.key_hash == key_hash), None)

    def revoke_key(self, key_id: str, *, revoked_at: str | None = None) -> Principal:
        with self._lock:
            stored = self._keys.get(key_id)
            if stored is None:
                raise NotFound(f"no key {key_id}")
            if not stored.principal.active:
                raise Conflict(f"key {key_id} is already revoked")
            principal = stored.principal.model_copy(update={"revoked_at": revoked_at or now_iso()})
            self._keys[key_id] = StoredKey(principal=principal, key_hash=stored.key_hash)
        return principal

    def rotate_key(self, old_key_id: str, new: Principal, new_key_hash: str) -> Principal:
        with self._lock:
            stored = self._keys.get(old_key_id)
            if stored is None:
                raise NotFound(f"no key {old_key_id}")
            if not stored.principal.active:
                raise Conflict(f"key {old_key_id} is already revoked")
            if new.key_id in self._keys:
                raise Conflict(f"key {new.key_id} already exists")
            old = stored.principal.model_copy(update={"revoked_at": new.created_at})
            self._keys[old_key_id] = StoredKey(principal=old, key_hash=stored.key_hash)
            self._keys[new.key_id] = StoredKey(principal=new, key_hash=new_key_hash)
        return old

    def retire_bootstrap_key(self, key_hash: str, *, retired_by: str) -> bool:
        with self._lock:
            if key_hash in self._retired_bootstrap:
                return False
            self._retired_bootstrap.add(key_hash)
        return True

    def is_retired_bootstrap_key(self, key_hash: str) -> bool:
        return key_hash in self._retired_bootstrap

    def list_keys(
        self, *, role: Role | str | None = None, agent_id: str | None = None, include_revoked: bool = True
    ) -> list[Principal]:
        wanted = Role.parse(role) if role else None
        found = [
            k.principal
            for k in list(self._keys.values())
            if (wanted is None or k.principal.role is wanted)
            and (agent_id is None or k.principal.agent_id == agent_id)
            and (include_revoked or k.principal.active)
        ]
        return sorted(found, key=lambda p: (p.created_at, p.key_id))


class InMemoryAuditLog:
    def __init__(self) -> None:
        self._events: dict[str, AuditEvent] = {}  # sort key -> event
        self._lock = threading.Lock()

    def append(self, event: AuditEvent) -> AuditEvent:
        with self._lock:
            return self._events.setdefault(event.sort_key, event)

    @property
    def events(self) -> list[AuditEvent]:
        """Everything, oldest first (for assertions)."""
        return [self._events[k] for k in sorted(self._events)]

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
        size = page_size(limit)
        lower, upper_key = time_bounds(since, until)
        after = _decode_token(next_token) if next_token else None
        selected = []
        for key in sorted(self._events, reverse=True):
            if (after is not None and key >= after) or (upper_key is not None and key >= upper_key):
                continue
            event = self._events[key]
            if lower is not None and event.time < lower:
                break
            if (
                (agent_id is None or event.agent_id == agent_id)
                and (skill_id is None or event.skill_id == skill_id)
                and (action is None or event.action == action)
                and (not outcomes or event.outcome in outcomes)
            ):
                selected.append(event)
                if len(selected) == size:
                    break
        token = _encode_token(selected[-1].sort_key) if len(selected) == size else None
        return AuditPage(events=tuple(selected), next_token=token)


def _encode_token(sort_key: str) -> str:
    return base64.urlsafe_b64encode(sort_key.encode()).decode()


def _decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest("next_token is not a token this API returned", field="next_token") from None


class InMemoryThrottleStore:
    """The throttle's counters and slots in one process (the DynamoDB adapter shares them across processes)."""

    def __init__(self) -> None:
        self._uses: dict[tuple[str, int], int] = {}
        self._slots: dict[tuple[str, int], tuple[str, float]] = {}  # (scope, slot) -> (lease_id, lease_until)
        self._lock = threading.Lock()

    def count_use(self, scope: str, window: int, limit: int, expires_at: float) -> bool:
        with self._lock:
            used = self._uses.get((scope, window), 0)
            if used >= limit:
                return False
            self._uses[(scope, window)] = used + 1
            return True

    def take_slot(self, scope: str, slots: int, lease_id: str, now: float, lease_until: float) -> bool:
        with self._lock:
            for slot in range(slots):
                held = self._slots.get((scope, slot))
                if held is None or held[1] < now:
                    self._slots[(scope, slot)] = (lease_id, lease_until)
                    return True
            return False

    def release_slot(self, scope: str, lease_id: str) -> None:
        with self._lock:
            for key, (held_by, _) in list(self._slots.items()):
                if key[0] == scope and held_by == lease_id:
                    del self._slots[key]


class InMemoryIsolationRulesStore:
    """The isolation rules (same behaviour as ``store/isolation.py``)."""

    def __init__(self) -> None:
        self._rules: dict[str, IsolationRule] = {}
        self._lock = threading.Lock()

    def put(self, rule: IsolationRule) -> IsolationRule:
        with self._lock:
            if rule.rule_id in self._rules:
                raise Conflict(f"isolation rule {rule.rule_id} already exists")
            self._rules[rule.rule_id] = rule
        return rule

    def get(self, rule_id: str) -> IsolationRule | None:
        return self._rules.get(rule_id)

    def list(self) -> list[IsolationRule]:
        with self._lock:
            return sorted(self._rules.values(), key=lambda r: (r.created_at, r.rule_id))

    def delete(self, rule_id: str) -> IsolationRule:
        with self._lock:
            if rule_id not in self._rules:
                raise NotFound(f"no isolation rule {rule_id}")
            return self._rules.pop(rule_id)
