"""Admin use cases for network rules, and the run's host check (audited like package rules)."""

from __future__ import annotations

from typing import Any

from chalicelib.governance import audit as events
from chalicelib.governance.audit import audit_event
from chalicelib.governance.identity import Principal, Role, require_role
from chalicelib.governance.network import HostDecision, NetworkChecker, NetworkRule


class NetworkGovernance:
    def __init__(self, store: Any, principals: Any, audit_log: Any, *, cache_ttl: float = 60.0):
        self.store, self.principals, self.audit_log = store, principals, audit_log
        self.checker = NetworkChecker(store.list, self._maturity_of, ttl=cache_ttl)

    def _maturity_of(self, agent_id: str) -> Any:
        agent = self.principals.get_agent(agent_id)
        return agent.maturity if agent is not None else None

    def approve(self, caller: Principal, host: object, ports: object, min_maturity: object) -> NetworkRule:
        require_role(caller, Role.ADMIN)
        rule = self.store.put(NetworkRule.new("network_approval", host, ports, caller.actor, min_maturity=min_maturity))
        self.checker.rules_changed()
        self._append(events.NETWORK_APPROVE, caller, rule)
        return rule

    def ban(self, caller: Principal, host: object, ports: object, reason: str) -> NetworkRule:
        require_role(caller, Role.ADMIN)
        rule = self.store.put(NetworkRule.new("network_ban", host, ports, caller.actor, reason=reason))
        self.checker.rules_changed()
        self._append(events.NETWORK_BAN, caller, rule)
        return rule

    def revoke(self, caller: Principal, rule_id: str) -> NetworkRule:
        require_role(caller, Role.ADMIN)
        rule = self.store.revoke(rule_id, revoked_by=caller.actor)
        self.checker.rules_changed()
        self._append(events.RULE_REVOKE, caller, rule)
        return rule

    def list_rules(self, caller: Principal, *, include_revoked: bool = False) -> list[NetworkRule]:
        require_role(caller, Role.ADMIN)
        return list(self.store.list(include_revoked=include_revoked))

    def check(self, agent_id: str, hosts: list[str]) -> HostDecision:
        return self.checker.check(agent_id, hosts)

    def _append(self, action: str, caller: Principal, rule: NetworkRule) -> None:
        self.audit_log.append(audit_event(action, actor=caller.actor, detail=rule.to_json()))
