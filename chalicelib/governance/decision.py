"""The permission decision for (agent, package, version): a pure function.

In order, the first that applies decides:

1. unknown agent → denied;
2. STUDENT → denied ("STUDENT agents cannot execute Python packages");
3. an active ban whose specifier contains the version → denied for everyone,
   with the ban's reason;
4. no active approval containing the version → denied, saying how to
   request one;
5. otherwise ``maturity_required`` is the lowest ``min_maturity`` among the
   matching approvals and the agent is allowed iff its maturity is at least that.

``maturity_required`` describes the rules, not the agent: it is the lowest
maturity that the package version is approved for (also reported when the
agent is unknown or a STUDENT), and ``None`` when no agent could use it
(banned or not approved).

Typosquats: when the scanner flags a package as a possible typosquat of a
popular one, the caller passes ``requires_explicit_approval=True``. Then an
approval counts only when its specifier is a single ``==V`` (or ``===V``)
clause naming this exact version: approvals for "all versions", ranges and
wildcards do not count, so a look-alike name is never let through by a
broad approval given without looking at it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from chalicelib.governance.identity import Agent
from chalicelib.governance.maturity import Maturity
from chalicelib.governance.rules import (
    RuleSet,
    names_exact_version,
    normalize_package_name,
    parse_exact_version,
)

STUDENT_REASON = "STUDENT agents cannot execute Python packages"
REQUEST_ENDPOINT = "POST /api/packages/request"


class Decision(BaseModel):
    """The answer of ``GET /api/packages/check``: ``{allowed, maturity_required, reason}``."""

    model_config = ConfigDict(frozen=True)

    allowed: bool
    maturity_required: Maturity | None
    reason: str

    def to_json(self) -> dict:
        return {
            "allowed": self.allowed,
            "maturity_required": self.maturity_required.value if self.maturity_required else None,
            "reason": self.reason,
        }


def decide(
    agent: Agent | None,
    package: str,
    version: str,
    rules: RuleSet,
    *,
    requires_explicit_approval: bool = False,
    agent_id: str | None = None,
) -> Decision:
    """Decide whether ``agent`` may use ``package`` at exact ``version`` under ``rules``.

    ``package`` is normalized (PEP 503) and ``version`` parsed as an exact
    version (BadRequest otherwise). ``agent_id`` only names an unknown agent
    in the reason. ``rules`` should be the RuleSet of this package; revoked
    rules and rules of other packages in it are ignored.
    """
    package = normalize_package_name(package)
    version = parse_exact_version(version)
    what = f"{package} {version}"

    ban = next(
        (b for b in rules.bans if b.active and b.package == package and b.contains(version)),
        None,
    )
    matching = [
        a
        for a in rules.approvals
        if a.active
        and a.package == package
        and a.contains(version)
        and (not requires_explicit_approval or names_exact_version(a.specifier, version))
    ]
    required = min((a.min_maturity for a in matching), default=None) if ban is None else None

    if agent is None:
        name = f" {agent_id!r}" if agent_id else ""
        return Decision(
            allowed=False,
            maturity_required=required,
            reason=f"unknown agent{name}; an admin registers agents with POST /api/agents",
        )
    if agent.maturity is Maturity.STUDENT:
        return Decision(allowed=False, maturity_required=required, reason=STUDENT_REASON)
    if ban is not None:
        return Decision(allowed=False, maturity_required=None, reason=f"{what} is banned: {ban.reason}")
    if required is None:
        if requires_explicit_approval:
            reason = (
                f"{package} is flagged as a possible typosquat and {version} has no approval naming it "
                f"exactly (=={version}); request one with {REQUEST_ENDPOINT}"
            )
        else:
            reason = f"no approval for {what}; request one with {REQUEST_ENDPOINT}"
        return Decision(allowed=False, maturity_required=None, reason=reason)
    if agent.maturity >= required:
        return Decision(
            allowed=True,
            maturity_required=required,
            reason=f"{what} is approved for {required.value} and above; agent is {agent.maturity.value}",
        )
    return Decision(
        allowed=False,
        maturity_required=required,
        reason=f"{what} requires maturity {required.value} or above; agent is {agent.maturity.value}",
    )


def decide_before_resolution(
    agent: Agent | None,
    package: str,
    specifier: str,
    rules: RuleSet,
    *,
    requires_explicit_approval: bool = False,
    agent_id: str | None = None,
) -> Decision:
    """Whether ``agent`` could be allowed ``package`` within ``specifier``, before anything is resolved.

    A request that cannot succeed should cost no resolution. An exact pin
    (``==V`` or ``===V``) is decided as :func:`decide` would decide it;
    otherwise the agent must be known and not a STUDENT, no ban may cover
    every version, and some approval must admit the agent's maturity. The
    resolved version is decided exactly afterwards (``allowed`` here is
    "worth resolving", not permission).
    """
    package = normalize_package_name(package)
    clauses = [c.strip() for c in specifier.split(",") if c.strip()]
    if len(clauses) == 1 and clauses[0].startswith("==") and "*" not in clauses[0]:
        version = clauses[0].lstrip("=").strip()
        return decide(agent, package, version, rules, requires_explicit_approval=requires_explicit_approval, agent_id=agent_id)
    if agent is None or agent.maturity is Maturity.STUDENT:
        return decide(agent, package, "0", RuleSet.of(package, []), agent_id=agent_id)  # the same reasons, no version
    ban = next((b for b in rules.active_bans if b.package == package and not b.specifier), None)
    if ban is not None:
        return Decision(allowed=False, maturity_required=None, reason=f"{package} is banned: {ban.reason}")
    approvals = [
        a for a in rules.active_approvals
        if a.package == package and (not requires_explicit_approval or _names_one_version(a.specifier))
    ]  # fmt: skip
    required = min((a.min_maturity for a in approvals), default=None)
    if required is None:
        exact = " naming an exact version" if requires_explicit_approval else ""
        return Decision(allowed=False, maturity_required=None,
                        reason=f"no approval{exact} for {package}; request one with {REQUEST_ENDPOINT}")  # fmt: skip
    if agent.maturity < required:
        return Decision(allowed=False, maturity_required=required,
                        reason=f"{package} requires maturity {required.value} or above; agent is {agent.maturity.value}")  # fmt: skip
    return Decision(allowed=True, maturity_required=required,
                    reason=f"{package} is approved for {required.value} and above; the resolved version is checked next")  # fmt: skip


def _names_one_version(specifier: str) -> bool:
    return specifier.startswith("==") and "," not in specifier and "*" not in specifier
