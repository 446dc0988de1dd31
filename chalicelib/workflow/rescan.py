"""Re-checking ready skills when what their scan depends on changes (the schedule's re-scan).

Each ready version's record keeps the basis its last scan ran on (``scan_basis``: the rule pack and the
advisory database, scanning/basis.py). When the current basis differs, the version is scanned again
exactly as the import scans it, and the outcome is acted on at once:

* a CRITICAL finding (malicious) that no admin released blocks the version: its status becomes
  ``blocked``, so no run uses it from that moment (runs take the newest *ready* version);
* a known vulnerability, or a HIGH finding no admin approved, marks the version (``rescan.action`` is
  ``flagged``, with what is new) without stopping it: the skill's record says so and the audit trail has it;
* a scan that could not audit every package changes nothing (it is retried on the next pass).

Every re-scan is audited (``skill.rescan``) with its outcome.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from chalicelib.governance.audit import BLOCKED, FAILED, FLAGGED, OK, SKILL_RESCAN, SYSTEM_ACTOR, audit_event

log = logging.getLogger("skillharbor.rescan")
UNAVAILABLE = "unavailable"


def _finding_ids(summary: dict[str, Any]) -> set[str]:
    """Identities of a scan summary's findings, to tell what a re-scan found that the last scan did not."""
    ids = {f"vuln:{f.get('package')}:{f.get('version')}:{f.get('id')}" for f in summary.get("findings") or [] if not f.get("ignored")}
    ids |= {f"code:{f.get('rule_id') or f.get('test_id')}:{f.get('file')}:{f.get('line')}" for f in summary.get("code_findings") or []}
    ids |= {f"malice:{f.get('rule_id')}:{f.get('file')}:{f.get('line')}" for f in summary.get("malice_findings") or []}
    return ids


class RescanService:
    def __init__(self, imports: Any, skills: Any, audit_log: Any = None):
        self.imports, self.skills, self.audit_log = imports, skills, audit_log

    def run(self, *, limit: int, force: bool = False, actor: str = SYSTEM_ACTOR) -> dict[str, Any]:
        """Re-scan up to ``limit`` ready versions scanned under another basis (``force``: every ready one)."""
        basis = self.imports.scanner.basis()
        stale = [r for r in self.skills.versions_with_status("ready") if force or r.get("scan_basis") != basis]
        outcome: dict[str, Any] = {"basis": basis, "rescanned": 0, BLOCKED: [], FLAGGED: [], UNAVAILABLE: [],
                                   "remaining": max(0, len(stale) - limit)}  # fmt: skip
        for record in stale[:limit]:
            action = self._rescan(record, basis, actor)
            outcome["rescanned"] += 1
            if action != OK:
                outcome[action].append(f"{record['skill_id']}@{record['version'][:12]}")
        return outcome

    def rescan_version(self, record: dict[str, Any], *, actor: str) -> str:
        """Scan one version again now (after an admin's code approval, say); its action."""
        return self._rescan(record, self.imports.scanner.basis(), actor)

    @staticmethod
    def blocked_by_rescan(record: dict[str, Any]) -> bool:
        return record.get("status") == "blocked" and (record.get("rescan") or {}).get("action") == BLOCKED

    def _rescan(self, record: dict[str, Any], basis: str, actor: str) -> str:
        skill_id, version = record["skill_id"], record["version"]
        try:
            report, summary, code_high = self.imports.scan_record(record)
        except Exception as error:  # one broken record must not stop the others; the next pass retries it
            log.exception("re-scan of %s %s failed", skill_id, version)
            self._audit(skill_id, version, FAILED, actor, {"error": f"{type(error).__name__}: {error}"[:500]})
            return UNAVAILABLE
        if report.status == "scan_unavailable":
            self._audit(skill_id, version, FAILED, actor, {"reasons": list(report.reasons)[:20]})
            return UNAVAILABLE
        approval = summary.get("code_approval")
        released = bool(approval and approval.get("releases_malicious"))
        new = sorted(_finding_ids(summary) - _finding_ids(record.get("scan") or {}))
        now = datetime.now(UTC).isoformat(timespec="seconds")
        note: dict[str, Any] = {"at": now, "basis": basis, "status": report.status, "new_findings": new[:50],
                                "reasons": list(report.reasons)[:50], "malicious": bool(report.malicious)}  # fmt: skip
        fields: dict[str, Any] = {"scan_basis": basis}
        if report.malicious and not released:
            note["action"] = BLOCKED
            fields.update(status="blocked", blocked_reason="a re-scan found the skill malicious (CRITICAL findings); "
                          "an admin's approve-code with release_malicious releases it")  # fmt: skip
        elif report.status == "blocked" or (code_high and approval is None):
            note["action"] = FLAGGED
        else:
            note["action"] = OK
        if note["action"] != BLOCKED and record.get("status") == "blocked" and (record.get("rescan") or {}).get("action") == BLOCKED:
            fields.update(status="ready", blocked_reason=None)  # released by an admin (or the rules changed back)
        self.skills.update_version(skill_id, version, rescan=note, **fields)
        self._audit(skill_id, version, note["action"], actor,
                    {"basis": basis, "status": report.status, "new_findings": new[:20]})  # fmt: skip
        return note["action"]

    def _audit(self, skill_id: str, version: str, outcome: str, actor: str, detail: dict[str, Any]) -> None:
        if self.audit_log is not None:
            self.audit_log.append(audit_event(SKILL_RESCAN, actor=actor, skill_id=skill_id, outcome=outcome,
                                              detail={"version": version, **detail}))  # fmt: skip
