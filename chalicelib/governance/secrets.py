"""Brokered secrets: bindings of a stored secret to a skill (optionally one agent) and hosts (no I/O).

A binding names the secret (its value lives in Secrets Manager, never in a
record), the environment variable the skill's process sees, the skill, an
optional agent, and the hosts the value may be sent to. A run gets it only
when its skill version passed its checks, its agent is the bound one (or
the binding is for every agent), and every bound host is among the hosts
approved for this run; otherwise the run simply does not get it.
"""

from __future__ import annotations

import re
import secrets

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.errors import BadRequest
from chalicelib.governance.timeutil import now_iso
from chalicelib.skills.network import parse_host_entry, patterns_from_strings

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")
#: variables the harness sets or the interpreter reads: a secret must not replace them
RESERVED_NAMES = frozenset({"PATH", "HOME", "LANG", "PYTHONDONTWRITEBYTECODE", "PYTHONIOENCODING", "HTTP_PROXY", "HTTPS_PROXY",
                            "ALL_PROXY", "NO_PROXY", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "LD_PRELOAD", "LD_LIBRARY_PATH"})  # fmt: skip
MAX_SECRET_BYTES = 16 * 1024


class SecretBinding(BaseModel):
    model_config = ConfigDict(frozen=True)

    binding_id: str
    skill_id: str
    agent_id: str | None = None
    env_name: str
    hosts: list[str]
    secret_name: str  # the Secrets Manager name holding the value
    created_by: str
    created_at: str = Field(default_factory=now_iso)

    @classmethod
    def new(cls, skill_id: object, env_name: object, hosts: object, created_by: str, agent_id: object = None) -> SecretBinding:
        problems = []
        if not isinstance(skill_id, str) or not re.fullmatch(r"[a-z0-9-]{1,64}", skill_id):
            problems.append("skill_id must be a skill id (lower-case letters, digits and dashes)")
        if not isinstance(env_name, str) or not _ENV_NAME.match(env_name) or env_name in RESERVED_NAMES or env_name.startswith("SKILLHARBOR"):
            problems.append("env_name must be an upper-case environment variable name the runtime does not use itself")
        if agent_id is not None and (not isinstance(agent_id, str) or not agent_id.strip()):
            problems.append("agent_id must be an agent id, or left out for every agent")
        entries: list[str] = []
        if not isinstance(hosts, list) or not hosts:
            problems.append("hosts must list the hosts the secret may be sent to")
        else:
            for entry in hosts:
                pattern, problem = parse_host_entry(entry)
                if pattern is None:
                    problems.append(f"hosts: {problem}")
                else:
                    entries.append(str(entry).strip().lower())
        if problems:
            raise BadRequest("invalid secret binding: " + "; ".join(problems), problems=problems)
        binding_id = "sec-" + secrets.token_hex(8)
        return cls(binding_id=binding_id, skill_id=str(skill_id), agent_id=agent_id, env_name=str(env_name), hosts=entries,
                   secret_name=f"skillharbor/{skill_id}/{binding_id}", created_by=created_by)  # fmt: skip

    def public(self) -> dict[str, object]:
        return self.model_dump(mode="json")


def check_value(value: object) -> str:
    if not isinstance(value, str) or not value or len(value.encode()) > MAX_SECRET_BYTES:
        raise BadRequest(f"value must be a non-empty string of at most {MAX_SECRET_BYTES} bytes", field="value")
    if len(value) < 6:
        raise BadRequest("value must be at least 6 characters (shorter values cannot be redacted from output safely)", field="value")
    return value


def applicable(bindings: list[SecretBinding], agent_id: str, approved_hosts: list[str]) -> list[SecretBinding]:
    """The bindings a run of this agent gets, given the hosts approved for it."""
    approved = patterns_from_strings(approved_hosts)
    chosen = []
    for binding in bindings:
        if binding.agent_id not in (None, agent_id):
            continue
        if all(any(a.covers(b) for a in approved) for b in patterns_from_strings(binding.hosts)):
            chosen.append(binding)
    return chosen


def redact_values(text: str, values: list[str]) -> str:
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, "[redacted]")
    return text
