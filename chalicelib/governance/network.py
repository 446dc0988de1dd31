"""Network rules: which agents' runs of a skill may reach which hosts (plain data, no I/O).

Hosts are governed like packages. An approval names a host pattern
(``api.example.com`` or ``*.example.com``), its ports and a minimum
maturity; a ban names a host pattern (every port) and a reason. A declared
host is allowed for an agent when an active approval covers it (every one
of its ports), the agent's maturity is at least the approval's, and no
active ban overlaps it. A ban beats any approval. STUDENT agents never get
network access.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.errors import BadRequest
from chalicelib.governance.maturity import Maturity
from chalicelib.governance.timeutil import now_iso
from chalicelib.skills.network import DEFAULT_PORTS, HostPattern, parse_host_entry, patterns_from_strings

RuleKind = Literal["network_approval", "network_ban"]


class NetworkRule(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule_id: str
    kind: RuleKind
    host: str
    ports: tuple[int, ...] = DEFAULT_PORTS
    min_maturity: Maturity = Maturity.AUTONOMOUS  # approvals only
    reason: str = ""  # bans only
    created_by: str
    created_at: str = Field(default_factory=now_iso)
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def pattern(self) -> HostPattern:
        return HostPattern(host=self.host, ports=self.ports)

    @classmethod
    def new(cls, kind: RuleKind, host: object, ports: object, created_by: str, *, min_maturity: object = None,
            reason: str = "") -> NetworkRule:  # fmt: skip
        pattern, problem = parse_host_entry(host)
        if pattern is None:
            raise BadRequest(f"host {problem}", field="host")
        chosen = pattern.ports
        if ports is not None:
            if not isinstance(ports, list) or not ports or not all(isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in ports):
                raise BadRequest("ports must be a non-empty list of port numbers (1-65535)", field="ports")
            chosen = tuple(sorted(set(ports)))
        if kind == "network_ban":
            if not isinstance(reason, str) or not reason.strip():
                raise BadRequest("a ban needs a reason", field="reason")
            return cls(rule_id="netban-" + secrets.token_hex(8), kind=kind, host=pattern.host, ports=tuple(range(1, 65536))
                       if ports is None else chosen, reason=reason.strip()[:2000], created_by=created_by)  # fmt: skip
        if min_maturity is None:
            raise BadRequest("min_maturity is required", field="min_maturity")
        maturity = Maturity.parse(min_maturity)
        if maturity == Maturity.STUDENT:
            raise BadRequest("STUDENT agents never get network access; approve for INTERN or above", field="min_maturity")
        return cls(rule_id="netok-" + secrets.token_hex(8), kind=kind, host=pattern.host, ports=chosen,
                   min_maturity=maturity, created_by=created_by)  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        if self.kind == "network_ban":
            data.pop("min_maturity")
            if len(self.ports) == 65535:
                data["ports"] = "all"
        return data


class HostDecision(BaseModel):
    allowed: list[str] = Field(default_factory=list)
    denied: list[dict[str, str]] = Field(default_factory=list)  # {host, reason}


def _overlaps(ban: HostPattern, declared: HostPattern) -> bool:
    if not set(ban.ports) & set(declared.ports):
        return False
    return ban.covers(HostPattern(host=declared.host, ports=tuple(set(ban.ports) & set(declared.ports)))) or (
        declared.wildcard and declared.covers(HostPattern(host=ban.host, ports=tuple(set(ban.ports) & set(declared.ports))))
    )


def decide_hosts(maturity: Maturity | None, hosts: list[str], rules: list[NetworkRule]) -> HostDecision:
    """Every declared host allowed or denied with its reason (``maturity`` None: unknown agent)."""
    decision = HostDecision()
    active = [rule for rule in rules if rule.active]
    for entry, declared in zip(hosts, patterns_from_strings(hosts), strict=True):
        reason = None
        ban = next((r for r in active if r.kind == "network_ban" and _overlaps(r.pattern, declared)), None)
        if ban is not None:
            reason = f"banned ({ban.host}): {ban.reason}"
        elif maturity is None:
            reason = "unknown agent"
        elif maturity == Maturity.STUDENT:
            reason = "STUDENT agents never get network access"
        else:
            covering = [r for r in active if r.kind == "network_approval" and r.pattern.covers(declared)]
            if not covering:
                reason = "not approved for this skill; an admin approves it with POST /api/network/approve"
            elif not any(maturity.rank >= r.min_maturity.rank for r in covering):
                lowest = min(covering, key=lambda r: r.min_maturity.rank).min_maturity.value
                reason = f"approved only for {lowest} agents and above (this agent is {maturity.value})"
        if reason is None:
            decision.allowed.append(entry)
        else:
            decision.denied.append({"host": entry, "reason": reason})
    return decision


class NetworkChecker:
    """The run's permission check for hosts, with the rules cached for ``ttl`` seconds per process
    and dropped whenever this process changes a rule (as the package decision cache is)."""

    def __init__(self, load_rules: Callable[[], list[NetworkRule]], maturity_of: Callable[[str], Maturity | None],
                 ttl: float = 60.0):  # fmt: skip
        self._load, self._maturity_of, self._ttl = load_rules, maturity_of, ttl
        self._cached: tuple[float, list[NetworkRule]] | None = None

    def rules(self) -> list[NetworkRule]:
        cached = self._cached
        if cached is None or time.monotonic() - cached[0] > self._ttl:
            cached = self._cached = (time.monotonic(), self._load())
        return cached[1]

    def rules_changed(self) -> None:
        self._cached = None

    def check(self, agent_id: str, hosts: list[str]) -> HostDecision:
        if not hosts:
            return HostDecision()
        return decide_hosts(self._maturity_of(agent_id), hosts, self.rules())


#: how a skill record's ``waiting_for`` names a host (package names cannot contain ':')
HOST_PREFIX = "network:"


def import_check(hosts: list[str], rules: list[NetworkRule]) -> tuple[list[str], list[str]]:
    """At import: (problem lines for banned hosts, ``waiting_for`` entries of hosts no approval covers)."""
    active = [rule for rule in rules if rule.active]
    banned, waiting = [], []
    for entry, declared in zip(hosts, patterns_from_strings(hosts), strict=True):
        ban = next((r for r in active if r.kind == "network_ban" and _overlaps(r.pattern, declared)), None)
        if ban is not None:
            banned.append(f"host {entry} is banned ({ban.host}): {ban.reason}")
        elif not any(r.kind == "network_approval" and r.pattern.covers(declared) for r in active):
            waiting.append(HOST_PREFIX + entry)
    return banned, waiting
