"""The isolation rules as a use case: admins add, list and remove them; every run asks which tier it gets."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chalicelib.governance.audit import ISOLATION_RULE_ADD, ISOLATION_RULE_REMOVE, OK, audit_event
from chalicelib.governance.isolation import Choice, IsolationRule, RunFacts, choose, rule_from_request
from chalicelib.governance.ports import AgentRepository, AuditLog, IsolationRulesRepository
from chalicelib.governance.read_cache import ReadCache


class IsolationPolicy:
    def __init__(self, rules: IsolationRulesRepository, agents: AgentRepository, audit_log: AuditLog | None = None, *,
                 cache_seconds: float = 0.0, clock: Callable[[], float] = time.monotonic):  # fmt: skip
        """``cache_seconds``: how long this process reuses the rule list it read (governance/read_cache.py);
        a rule added or removed here applies to the next run at once."""
        self.rules, self.agents, self.audit_log = rules, agents, audit_log
        self._cached: ReadCache[list[IsolationRule]] = ReadCache(cache_seconds, clock=clock)

    def add(self, body: Any, *, actor: str) -> IsolationRule:
        rule = self.rules.put(rule_from_request(body, actor=actor))
        self._cached.clear()
        self._audit(ISOLATION_RULE_ADD, actor, rule)
        return rule

    def list(self) -> list[IsolationRule]:
        return self.rules.list()

    def remove(self, rule_id: str, *, actor: str) -> IsolationRule:
        try:
            rule = self.rules.delete(rule_id)
        finally:
            self._cached.clear()
        self._audit(ISOLATION_RULE_REMOVE, actor, rule)
        return rule

    def choose(self, skill_id: str, agent_id: str | None, record: dict[str, Any]) -> Choice:
        """The tier of a run of ``record`` (a skill version) for ``agent_id``."""
        rules = self._cached.get("rules", self.rules.list)
        if not rules:
            return Choice()
        agent = self.agents.get_agent(agent_id) if agent_id else None
        facts = RunFacts.of(skill_id, agent.maturity if agent else None, record)
        return choose(rules, facts)

    def _audit(self, action: str, actor: str, rule: IsolationRule) -> None:
        if self.audit_log is not None:
            self.audit_log.append(audit_event(action, actor=actor, outcome=OK, skill_id=rule.match.skill_id,
                                              detail={"rule": rule.to_json()}))  # fmt: skip
