"""Admin use cases for brokered secrets, and what a run is granted (values never leave the stores here)."""

from __future__ import annotations

from typing import Any

from chalicelib.governance import audit as events
from chalicelib.governance.audit import audit_event
from chalicelib.governance.identity import Principal, Role, require_role
from chalicelib.governance.secrets import SecretBinding, applicable, check_value


class SecretBroker:
    def __init__(self, bindings: Any, values: Any, audit_log: Any):
        self.bindings, self.values, self.audit_log = bindings, values, audit_log

    def bind(self, caller: Principal, body: dict[str, Any]) -> SecretBinding:
        require_role(caller, Role.ADMIN)
        binding = SecretBinding.new(body.get("skill_id"), body.get("env_name"), body.get("hosts"), caller.actor,
                                    agent_id=body.get("agent_id"), mode=body.get("mode"), header=body.get("header"),
                                    format=body.get("format"))  # fmt: skip
        self.values.put(binding.secret_name, check_value(body.get("value"), binding.mode))
        self.bindings.put(binding)
        self.audit_log.append(audit_event(events.SECRET_BIND, actor=caller.actor, skill_id=binding.skill_id,
                                          agent_id=binding.agent_id, detail=binding.public()))  # fmt: skip
        return binding

    def list(self, caller: Principal, skill_id: str) -> list[SecretBinding]:
        require_role(caller, Role.ADMIN)
        return self.bindings.for_skill(skill_id)

    def unbind(self, caller: Principal, skill_id: str, binding_id: str) -> SecretBinding:
        require_role(caller, Role.ADMIN)
        binding = self.bindings.delete(skill_id, binding_id)
        self.values.delete(binding.secret_name)
        self.audit_log.append(audit_event(events.SECRET_UNBIND, actor=caller.actor, skill_id=skill_id, detail=binding.public()))
        return binding

    def for_run(self, skill_id: str, agent_id: str, approved_hosts: list[str]) -> list[dict[str, Any]]:
        """References (never values) of the secrets this run gets: the worker reads the values itself
        (``runner/run_secrets.py``: an environment variable, or a header its egress proxy adds)."""
        chosen = applicable(self.bindings.for_skill(skill_id), agent_id, approved_hosts) if approved_hosts else []
        return [{"secret_name": b.secret_name, "mode": b.mode.value, "env_name": b.env_name, "header": b.header,
                 "format": b.format, "hosts": b.hosts} for b in chosen]  # fmt: skip
