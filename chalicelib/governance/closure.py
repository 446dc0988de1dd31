"""The pipeline's Check: the rules applied to a whole resolved closure (plain Python).

* a ban on any pin, direct or transitive, blocks the skill for everyone;
* a direct requirement whose pinned version no approval covers leaves the
  skill pending approval (a package that an extra the skill chose brings in,
  like PySocks for ``requests[socks]``, counts as direct: ``Pin.via_extra``) (a flagged typosquat needs an approval naming its
  exact version, see ``decision.names_exact_version``);
* per-agent maturity is not decided here: it is checked at each execution.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from chalicelib.governance.rules import RuleSet, names_exact_version
from chalicelib.packages.pins import Pin


@dataclass
class ClosureCheck:
    banned: list[dict[str, str]] = field(default_factory=list)  # {package, version, reason}
    unapproved: list[dict[str, str]] = field(default_factory=list)  # {package, version, why}

    @property
    def status(self) -> str:
        if self.banned:
            return "blocked"
        return "pending_approval" if self.unapproved else "passed"

    def to_json(self) -> dict[str, object]:
        return {"status": self.status, "banned": self.banned, "unapproved": self.unapproved}


def check_closure(
    pins: Iterable[Pin],
    rules_for: Callable[[str], RuleSet],
    *,
    is_flagged_typosquat: Callable[[str], bool] = lambda _name: False,
) -> ClosureCheck:
    outcome = ClosureCheck()
    for pin in pins:
        rules = rules_for(pin.name)
        ban = next((b for b in rules.active_bans if b.contains(pin.version)), None)
        if ban is not None:
            outcome.banned.append({"package": pin.name, "version": pin.version, "reason": ban.reason})
            continue
        if not pin.direct:
            continue
        flagged = is_flagged_typosquat(pin.name)
        approvals = [a for a in rules.active_approvals if a.contains(pin.version)]
        if flagged:
            approvals = [a for a in approvals if names_exact_version(a.specifier, pin.version)]
        if not approvals:
            why = (
                f"{pin.name} looks like a typosquat of a popular package: it needs an approval naming =={pin.version}"
                if flagged
                else f"no approval covers {pin.name} {pin.version}"
            ) + (f" (the extra {pin.via_extra} asks for it)" if pin.via_extra else "")
            outcome.unapproved.append({"package": pin.name, "version": pin.version, "why": why})
    return outcome
