"""pip's failure output → one line a user can act on.

pip's raw output never leaves the server: it may quote anything pip saw, so
it goes to the server log (redacted) and the caller gets a line built from
what is known to be safe: the validated requirement, the index's file list
and the names and versions pip reports in a conflict, each reduced to
printable ASCII and bounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from chalicelib.packages.index import IndexUnavailable, PackageIndex, explain_unavailable
from chalicelib.packages.pins import TargetPlatform
from chalicelib.packages.targets import describe

_NETWORK_SIGNS = (
    "Max retries exceeded", "Temporary failure in name resolution", "Connection refused", "timed out",
    "Network is unreachable", "ConnectTimeout", "ReadTimeout", "SSLError", "ProxyError",
)  # fmt: skip
_NO_MATCH = re.compile(r"No matching distribution found for (?P<req>[^\n]+)")
_NOT_SATISFIED = re.compile(r"Could not find a version that satisfies the requirement (?P<req>\S+)(?: \(from (?!versions:)(?P<by>[^)\n]+)\))?")
_CONFLICT_CAUSE = re.compile(r"^\s+(The user requested \S+.*|\S+ \S+ depends on \S+.*)$")
_MAX_PART = 160


@dataclass(frozen=True)
class Explanation:
    summary: str
    transient: bool = False
    details: dict[str, Any] = field(default_factory=dict)


def _safe(text: str, limit: int = _MAX_PART) -> str:
    """Printable ASCII, one line, bounded."""
    cleaned = "".join(c if " " <= c <= "~" else "?" for c in text.strip())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def _requirement(text: str) -> Requirement | None:
    try:
        return Requirement(text.strip().rstrip("."))
    except InvalidRequirement:
        return None


def explain(stderr: str, platform: TargetPlatform, index: PackageIndex | None, *, index_host: str = "") -> Explanation:
    """``index_host`` (host[:port], never credentials) names the index in a network failure."""
    target = describe(platform)
    if any(sign in stderr for sign in _NETWORK_SIGNS):
        where = f": {index_host} did not answer" if index_host else ""
        return Explanation(f"package index unreachable{where}", transient=True)
    if "ResolutionImpossible" in stderr or "conflicting dependencies" in stderr:
        causes = [_safe(m.group(1)) for line in stderr.splitlines() if (m := _CONFLICT_CAUSE.match(line))]
        if causes:
            return Explanation(f"the requirements conflict on {target}: " + "; ".join(causes[:4]), details={"conflict": causes[:8]})
        return Explanation(f"the requirements conflict on {target}")
    match = _NOT_SATISFIED.search(stderr) or _NO_MATCH.search(stderr)
    requirement = _requirement(match.group("req")) if match else None
    if requirement is None:
        return Explanation(f"the requirements cannot be resolved for {target}")
    needed_by = match.groupdict().get("by") if match else None
    wanted = f"{requirement.name}{requirement.specifier}"
    suffix = f" (needed by {_safe(needed_by, 80)})" if needed_by else ""
    details: dict[str, Any] = {"requirement": _safe(wanted)}
    line = None
    if index is not None:
        try:
            line = explain_unavailable(requirement.name, requirement.specifier, index.files(requirement.name), platform)
        except IndexUnavailable:
            pass  # the generic line below still names the requirement and the target
    if line is None:
        line = f"pip found no usable release of {wanted} for {target}"
    return Explanation(_safe(line, 300) + suffix, details=details)
