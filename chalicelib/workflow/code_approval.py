"""An admin's approval of a skill version's code: recorded, audited, and acted on at once.

A version the import's Scan step blocked for HIGH code findings resumes at Scan (the approval now lets
it through). One a re-scan blocked as malicious is scanned again, but only when the approval releases
malicious code (``releases_malicious``, with its reason); any other block is not the code's to lift.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.errors import Conflict, NotFound
from chalicelib.governance.audit import OK
from chalicelib.workflow.rescan import RescanService

APPROVE_CODE = "skill.approve_code"
Audit = Callable[..., None]  # record_event(action, actor=..., **fields)


class CodeApprovals:
    def __init__(self, imports: Any, rescans: RescanService, audit: Audit):
        self.imports, self.rescans, self.audit = imports, rescans, audit

    def approve(self, skill_id: str, version: str | None, *, reason: str, actor: str, release_malicious: bool) -> dict[str, Any]:
        """The approval, with the import it resumed (None when none was)."""
        skills = self.imports.skills
        record = skills.get_version(skill_id, version) if version else skills.latest(skill_id)
        if record is None:
            raise NotFound(f"no skill {skill_id!r}" + (f" at version {version}" if version else ""))
        approval = self.imports.reviews.approve_code(skill_id, record["version"], reason=reason, approved_by=actor,
                                                     releases_malicious=release_malicious)  # fmt: skip
        self.audit(APPROVE_CODE, actor=actor, skill_id=skill_id, outcome=OK,
                   detail={"version": record["version"], "reason": approval["reason"], "releases_malicious": release_malicious})  # fmt: skip
        resumed = None
        if self.rescans.blocked_by_rescan(record):
            if not release_malicious:
                raise Conflict(f"skill {skill_id} was blocked as malicious by a re-scan: only release_malicious (with a reason) releases it")
            self.rescans.rescan_version(record, actor=actor)  # scans again: the approval now releases it
        elif record.get("status") == "blocked" and (record.get("error") or {}).get("step") in ("scan", "behaviour"):
            resumed = self.imports.resume_at_scan(record, actor=actor)
        elif record.get("status") == "blocked":
            raise Conflict(f"skill {skill_id} is blocked by {record.get('error', {}).get('step')}, not by its code")
        return {**approval, "resumed_import": resumed}
