"""Accepting requirements on import: the publisher's (or an admin's) answer to the undeclared imports.

The skill is not edited: the accepted requirements are merged into the parsed skill's requirements
with the source ``override``, and from there go through resolve, check and scan like declared ones.
Who may do this is the upload's own rule (the skill's owner or an admin, governance/ownership.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.requirements import Requirement

from chalicelib.errors import BadRequest
from chalicelib.skills.import_names import provides
from chalicelib.skills.model import ParsedSkill
from chalicelib.skills.requirements import DeclaredRequirement, merge_requirements, parse_requirement_string

MAX_OVERRIDE_REQUIREMENTS = 50  # as for requirement lists in other API requests


@dataclass(frozen=True)
class RequirementOverride:
    """What the import request adds: requirement strings, and/or every proposed requirement."""

    requirements: tuple[str, ...] = ()
    accept_proposed: bool = False

    @classmethod
    def from_request(cls, requirements: str | None, accept_proposed: str | bool | None) -> RequirementOverride | None:
        """From the API's query parameters (``requirements``: PEP 508 strings separated by commas or
        newlines; ``accept_proposed``: true/false). None when neither is given."""
        if isinstance(accept_proposed, str):
            if accept_proposed.strip().lower() not in ("true", "false", "1", "0", ""):
                raise BadRequest(f"accept_proposed must be true or false, got {accept_proposed!r}")
            accept_proposed = accept_proposed.strip().lower() in ("true", "1")
        texts = tuple(part.strip() for part in (requirements or "").replace("\n", ",").split(",") if part.strip())
        if len(texts) > MAX_OVERRIDE_REQUIREMENTS:
            raise BadRequest(f"requirements lists {len(texts)} entries; at most {MAX_OVERRIDE_REQUIREMENTS} are accepted")
        if not texts and not accept_proposed:
            return None
        return cls(texts, bool(accept_proposed))

    def to_state(self) -> dict[str, object]:
        return {"requirements": list(self.requirements), "accept_proposed": self.accept_proposed}

    @classmethod
    def from_state(cls, value: dict[str, object] | None) -> RequirementOverride | None:
        if not value:
            return None
        return cls(tuple(value.get("requirements") or ()), bool(value.get("accept_proposed")))  # type: ignore[arg-type]


def accept_requirements(parsed: ParsedSkill, override: RequirementOverride | None) -> ParsedSkill:
    """The parsed skill with the override's requirements merged in; a 400 listing every bad entry."""
    if override is None:
        return parsed
    accepted: list[DeclaredRequirement] = []
    problems: list[str] = []
    for index, text in enumerate(override.requirements):
        more, bad = parse_requirement_string(text, where=f"requirements override [{index}]", source="override")
        accepted += more
        problems += bad
    if problems:
        raise BadRequest(f"the requirements override is not valid: {'; '.join(problems[:3])}", problems=problems)
    if override.accept_proposed:
        for text in parsed.proposed_requirements:
            accepted += parse_requirement_string(text, where="proposed", source="override")[0]
    existing = [
        DeclaredRequirement(text, Requirement(text), source, "declared")  # type: ignore[arg-type]
        for text in parsed.requirements
        for source in parsed.requirement_sources.get(text, ["metadata"])
    ]
    requirements, sources = merge_requirements(existing + accepted)
    names = [Requirement(text).name for text in requirements]
    undeclared = [
        dict(entry, accepted=any(provides(name, entry["import"]) for name in names)) for entry in parsed.undeclared_imports
    ]
    still_proposed = sorted({e["distribution"] for e in undeclared if e.get("distribution") and not e["accepted"]})
    return parsed.model_copy(update={
        "requirements": requirements, "requirement_sources": sources, "undeclared_imports": undeclared,
        "proposed_requirements": still_proposed, "accepted_requirements": sorted(a.normalized for a in accepted),
    })  # fmt: skip
