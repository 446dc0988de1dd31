"""Isolation rules: which container runtime (tier) a run gets, from what is known about it.

An admin rule is ``{"match": {...}, "runtime": "runsc" | "runc"}``. Its match
may name any of:

* ``maturity``: the agent's maturity (STUDENT, INTERN, SUPERVISED, AUTONOMOUS);
* ``skill_id``: one skill (an admin override per skill);
* ``finding``: what the scan found in the skill version: ``high_code`` (a HIGH
  severity finding in its code, approved by an admin or it would not run),
  ``code`` (any code finding), ``vulnerability`` (a known vulnerability in its
  packages that an admin chose to ignore) or ``behaviour`` (a finding of the
  behaviour check in the sandbox);
* ``egress``: ``true`` for skills that reach hosts outside the sandbox, ``false``
  for those that do not.

Every field a rule names must hold for the run; an empty match holds for
every run. The most specific matching rule wins: one naming ``skill_id``
beats any that does not, then the one naming more fields. Between equally
specific rules the stricter tier (runsc) wins, then the newest rule. No
matching rule: runc.

No rule ships by default: a host without gVisor must run everything it ran
before. docs/DEPLOYMENT.md lists the recommended rules (STUDENT and INTERN
agents, HIGH code findings, behaviour findings and egress → runsc).
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chalicelib.errors import BadRequest
from chalicelib.governance.maturity import Maturity
from chalicelib.governance.timeutil import now_iso
from chalicelib.runner.spec import DEFAULT_RUNTIME, Runtime

FINDINGS = ("high_code", "code", "vulnerability", "behaviour")
_SKILL_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
#: tier order for ties between equally specific rules: the stricter one wins
_STRICTNESS = {Runtime.RUNC: 0, Runtime.RUNSC: 1}


class IsolationMatch(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    maturity: Maturity | None = Field(default=None, strict=False)  # its name as a string
    skill_id: str | None = None
    finding: str | None = None
    egress: bool | None = None

    @field_validator("skill_id")
    @classmethod
    def _skill_id(cls, value: str | None) -> str | None:
        if value is not None and not _SKILL_ID.match(value):
            raise ValueError(f"invalid skill id {value!r}: lowercase letters, digits and '-', at most 64 characters")
        return value

    @field_validator("finding")
    @classmethod
    def _finding(cls, value: str | None) -> str | None:
        if value is not None and value not in FINDINGS:
            raise ValueError(f"unknown finding {value!r}: one of {', '.join(FINDINGS)}")
        return value

    def fields(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class RunFacts(BaseModel):
    """What is known about one run when its tier is chosen."""

    model_config = ConfigDict(frozen=True)

    maturity: Maturity | None = None
    skill_id: str
    findings: frozenset[str] = frozenset()
    egress: bool = False

    @classmethod
    def of(cls, skill_id: str, maturity: Maturity | None, record: dict[str, Any]) -> RunFacts:
        """The facts of a skill version's ``record`` (as the skills store keeps it) for an agent."""
        scan = record.get("scan") or {}
        code = scan.get("code_findings") or []
        findings = set()
        if code:
            findings.add("code")
        if any(str(f.get("severity", "")).upper() == "HIGH" for f in code):
            findings.add("high_code")
        if scan.get("findings"):
            findings.add("vulnerability")
        if scan.get("behaviour_findings") or (record.get("behaviour") or {}).get("findings"):
            findings.add("behaviour")
        egress = bool(record.get("egress_hosts") or record.get("egress"))
        return cls(maturity=maturity, skill_id=skill_id, findings=frozenset(findings), egress=egress)


class IsolationRule(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule_id: str = Field(default_factory=lambda: "iso-" + secrets.token_hex(8))
    match: IsolationMatch = Field(default_factory=IsolationMatch)
    runtime: Runtime
    created_by: str = "system"
    created_at: str = Field(default_factory=now_iso)
    note: str | None = None

    def matches(self, facts: RunFacts) -> bool:
        m = self.match
        return (
            (m.maturity is None or m.maturity == facts.maturity)
            and (m.skill_id is None or m.skill_id == facts.skill_id)
            and (m.finding is None or m.finding in facts.findings)
            and (m.egress is None or m.egress == facts.egress)
        )

    def specificity(self) -> tuple[int, int]:
        fields = self.match.fields()
        return (1 if "skill_id" in fields else 0, len(fields))

    def to_json(self) -> dict[str, Any]:
        return {**self.model_dump(mode="json"), "match": self.match.fields()}


class Choice(BaseModel):
    """The tier of one run and the rule that chose it (None: no rule matched, the default)."""

    model_config = ConfigDict(frozen=True)

    runtime: Runtime = DEFAULT_RUNTIME
    rule_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"runtime": self.runtime.value, "isolation_rule": self.rule_id}


def choose(rules: list[IsolationRule], facts: RunFacts) -> Choice:
    matching = [r for r in rules if r.matches(facts)]
    if not matching:
        return Choice()
    best = max(matching, key=lambda r: (r.specificity(), _STRICTNESS[r.runtime], r.created_at, r.rule_id))
    return Choice(runtime=best.runtime, rule_id=best.rule_id)


def rule_from_request(body: Any, *, actor: str) -> IsolationRule:
    """An admin's ``POST /api/isolation/rules`` body → a rule, or BadRequest naming every problem."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object with 'match' and 'runtime'")
    unknown = set(body) - {"match", "runtime", "note"}
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(sorted(unknown))} (expected match, runtime, note)")
    if "runtime" not in body:
        raise BadRequest(f"runtime is required: one of {', '.join(r.value for r in Runtime)}")
    match = body.get("match", {})
    if not isinstance(match, dict):
        raise BadRequest("match must be a JSON object with any of maturity, skill_id, finding, egress")
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 500):
        raise BadRequest("note must be a string of at most 500 characters")
    try:
        return IsolationRule(match=IsolationMatch.model_validate(match), runtime=body["runtime"], created_by=actor, note=note)
    except ValidationError as error:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'rule'}: {e['msg']}" for e in error.errors()]
        raise BadRequest("invalid isolation rule: " + "; ".join(problems), problems=problems) from None


def rule_from_dict(data: dict[str, Any]) -> IsolationRule:
    return IsolationRule.model_validate(data)
