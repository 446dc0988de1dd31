"""Starting imports (API uploads and inbox events) and the state machine's task functions.

Each task takes the execution state (a small JSON object: import id, source
location, skill id and version once known) and returns it, enriched. The
skill itself lives in DynamoDB (record) and S3 (source and parsed artefact),
so the state stays far below Step Functions' payload limit, and a failed step
leaves the record, its inputs and the reason behind.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.errors import BadRequest, Blocked, Forbidden, InvalidSkill, NotFound, ScanUnavailable, error_named
from chalicelib.governance.audit import (
    BLOCKED, DENIED, IMPORT_STEP, NETWORK_REQUEST, PACKAGE_REQUEST, PENDING, SKILL_IMPORT, SYSTEM_ACTOR, audit_event,
)  # fmt: skip
from chalicelib.governance.closure import check_closure
from chalicelib.governance.network import HOST_PREFIX
from chalicelib.governance.network import import_check as network_import_check
from chalicelib.governance.ownership import OwnershipService, Publisher
from chalicelib.governance.ports import AuditLog, RulesRepository
from chalicelib.governance.rules import ApprovalRequest, RequestStatus, request_id_for
from chalicelib.governance.timeutil import now_iso
from chalicelib.packages.pins import Pin, TargetPlatform
from chalicelib.packages.resolver import PipResolver
from chalicelib.settings import get_settings
from chalicelib.skills.model import ParsedSkill
from chalicelib.skills.parser import ParseLimits, parse_skill_md, parse_zip
from chalicelib.skills.proposals import RequirementOverride, accept_requirements
from chalicelib.scanning.malice.skill import read_upload
from chalicelib.scanning.sbom import build_sbom
from chalicelib.scanning.scanner import Scanner
from chalicelib.store.blobs import BlobStore
from chalicelib.store.reviews import ReviewStore
from chalicelib.store.images import ImageStore
from chalicelib.store.platform import PlatformStore
from chalicelib.store.skills import DynamoImportStore, DynamoSkillRegistry
from chalicelib.store.stepfunctions import StepFunctionsOrchestrator
from chalicelib.workflow.inbox import INBOX_ACTOR, inbox_dedupe_key, inbox_publisher, refusal_reason
from chalicelib.workflow.ports import Orchestrator


@dataclass(frozen=True)
class SourceRef:
    bucket: str
    key: str
    version_id: str | None = None

    @property
    def is_zip(self) -> bool:
        return self.key.lower().endswith(".zip")

    def to_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "version_id": self.version_id}


def upload_order(moment: datetime, sequencer: str | None = None) -> str:
    """A string that sorts uploads in the order they happened.

    Events can arrive out of order, so "latest" follows the upload, not the
    import. S3's eventTime has millisecond precision; for two writes of the
    same key S3's ``sequencer`` (hex, compared after right-padding with
    zeros) breaks the tie."""
    order = moment.astimezone(UTC).isoformat(timespec="microseconds")
    return f"{order}#{sequencer.upper().ljust(32, '0')}" if sequencer else order


def _event_time(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)  # no usable eventTime: the time we saw the event is the best we know
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _dependency_graph(pins: list[Pin]) -> dict[str, tuple[str, ...]] | None:
    """The pins' edges; None (unknown) for pins resolved before edges were recorded."""
    if any(p.requires is None for p in pins):
        return None
    return {p.name: p.requires or () for p in pins}


def new_import_id() -> str:
    return "imp-" + secrets.token_hex(10)


def parse_source(data: bytes, *, is_zip: bool) -> ParsedSkill:
    limits = ParseLimits.from_settings(get_settings())
    return parse_zip(data, limits=limits) if is_zip else parse_skill_md(data, limits=limits)


class ImportService:
    """Application service behind the API, the inbox poller and the task functions."""

    def __init__(
        self,
        skills: DynamoSkillRegistry | None = None,
        imports: DynamoImportStore | None = None,
        blobs: BlobStore | None = None,
        orchestrator: Orchestrator | None = None,
        resolver: PipResolver | None = None,
        images: ImageStore | None = None,
        rules: RulesRepository | None = None,
        audit_log: AuditLog | None = None,
        is_flagged_typosquat: Callable[[str], bool] | None = None,
        ownership: OwnershipService | None = None,
        network_rules: Callable[[], list[Any]] | None = None,
        platforms: PlatformStore | None = None,
    ):
        self._ownership = ownership
        self.network_rules = network_rules  # () -> the active host rules (governance/network.py); None: not governed
        self.images = images or ImageStore()
        self.platforms = platforms or PlatformStore()
        self.rules = rules
        self.audit_log = audit_log
        self.is_flagged_typosquat = is_flagged_typosquat or (lambda _name: False)
        self.reviews = ReviewStore()
        self._scanner: Scanner | None = None
        self.skills = skills or DynamoSkillRegistry()
        self.imports = imports or DynamoImportStore()
        self.blobs = blobs or BlobStore()
        self.orchestrator = orchestrator or StepFunctionsOrchestrator()
        self._resolver = resolver

    @property
    def resolver(self) -> PipResolver:
        if self._resolver is None:
            from chalicelib.redact import secret_values
            from chalicelib.store.resolutions import DynamoResolutionCache

            settings = get_settings()
            self._resolver = PipResolver(
                settings.index_url, timeout_seconds=settings.resolver_timeout_seconds, cache=DynamoResolutionCache(),
                cache_ttl_seconds=settings.resolution_cache_ttl_seconds, pip_cache_dir=Path(settings.cache_dir) / "pip-resolver",
                secret_values=secret_values,
            )  # fmt: skip
        return self._resolver

    @property
    def ownership(self) -> OwnershipService:
        if self._ownership is None:
            from chalicelib.store.owners import InboxPrefixStore, SkillOwnerStore
            from chalicelib.store.principals import PrincipalsStore

            self._ownership = OwnershipService(SkillOwnerStore(), InboxPrefixStore(), self.audit_log,
                                               has_versions=self.skills.has_versions, get_key=PrincipalsStore().get_key)  # fmt: skip
        return self._ownership

    # --- starting ---------------------------------------------------------

    def submit_upload(self, data: bytes, *, is_zip: bool, publisher: Publisher,
                      override: RequirementOverride | None = None) -> dict[str, Any]:  # fmt: skip
        """API upload: validate now (a 400 lists every problem; a 403 when the skill is someone else's),
        then import asynchronously. ``override`` adds requirements the skill did not declare; only whoever
        may publish the skill (its owner or an admin) gets this far."""
        parsed = parse_source(data, is_zip=is_zip)
        import_id = new_import_id()
        self.ownership.authorize_publish(parsed.skill_id, publisher, import_id=import_id)
        accepted = accept_requirements(parsed, override)  # a bad override is a 400 before anything starts
        settings = get_settings()
        key = f"uploads/{parsed.skill_id}/{parsed.version}.{'zip' if is_zip else 'md'}"
        version_id = self.blobs.put_bytes(settings.artifacts_bucket, key, data)
        source = SourceRef(settings.artifacts_bucket, key, version_id)
        known: dict[str, Any] = {"skill_id": parsed.skill_id, "version": parsed.version}
        if override is not None:
            known["requirements_override"] = override.to_state()
        self._start(import_id, source, publisher, upload_order(datetime.now(UTC)), **known)
        return {"skill_id": parsed.skill_id, "version": parsed.version, "import_id": import_id, "status": "importing",
                "requirements": accepted.requirements, "proposed_requirements": accepted.proposed_requirements,
                "undeclared_imports": accepted.undeclared_imports}  # fmt: skip

    def submit_s3_event(self, record: dict[str, Any]) -> str | None:
        """One S3 ObjectCreated record → one import, however often the event is delivered; an upload
        under no mapped inbox prefix ends at once as a failed import saying why."""
        s3 = record.get("s3") or {}
        bucket = (s3.get("bucket") or {}).get("name")
        obj = s3.get("object") or {}
        raw_key = obj.get("key")
        if not bucket or not raw_key:
            raise BadRequest("S3 event record without bucket name or object key")
        key = urllib.parse.unquote_plus(raw_key)
        if not (key.endswith("SKILL.md") or key.lower().endswith(".zip")):
            return None  # not a skill upload: the notification filter should not have sent it
        version_id = obj.get("versionId") or None
        # without versioning, eventTime tells a re-upload of the same bytes from a redelivered event
        identity = version_id or f"{obj.get('eTag', '')}:{obj.get('sequencer', '')}:{record.get('eventTime', '')}"
        dedupe_key = inbox_dedupe_key(bucket, key, identity)
        import_id = "imp-" + dedupe_key[:20]
        if self.imports.claim_event(dedupe_key, import_id) is not None:
            existing = self.imports.get(import_id)
            if existing is not None:
                return import_id  # duplicate delivery: that import already started
        uploaded = upload_order(_event_time(record.get("eventTime")), obj.get("sequencer"))
        source = SourceRef(bucket, key, version_id)
        inbox_bucket = get_settings().inbox_bucket
        mapping = self.ownership.inbox_mapping(key) if bucket == inbox_bucket else None
        if mapping is None:  # nobody may publish from there: say why, and keep the object
            self._refuse_upload(import_id, source, uploaded, refusal_reason(bucket, key, inbox_bucket))
            return import_id
        self._start(import_id, source, inbox_publisher(mapping), uploaded, inbox_prefix=mapping.to_json()["prefix"])
        return import_id

    def _refuse_upload(self, import_id: str, source: SourceRef, uploaded_at: str, reason: str) -> None:
        """An inbox upload nobody may publish: a failed import record saying why (the object stays in S3)."""
        self._audit(SKILL_IMPORT, actor=INBOX_ACTOR, outcome=DENIED,
                    detail={"import_id": import_id, "source": f"s3://{source.bucket}/{source.key}", "reason": reason})  # fmt: skip
        self.imports.create(
            {"import_id": import_id, "source": source.to_dict(), "submitted_by": INBOX_ACTOR, "status": "FAILED",
             "uploaded_at": uploaded_at, "failed_step": "inbox", "error_type": Forbidden.__name__, "reason": reason,
             "finished_at": now_iso()}
        )  # fmt: skip

    def _start(self, import_id: str, source: SourceRef, publisher: Publisher, uploaded_at: str, **known: Any) -> None:
        submitted_by = publisher.actor
        self._audit(SKILL_IMPORT, actor=submitted_by, skill_id=known.get("skill_id"), outcome="started",
                    detail={"import_id": import_id, "source": f"s3://{source.bucket}/{source.key}", "version": known.get("version"),
                            "publisher": publisher.owner_id})  # fmt: skip
        expected_arn = self.orchestrator.execution_arn(import_id)  # written now: no update after the start
        self.imports.create(
            {"import_id": import_id, "source": source.to_dict(), "submitted_by": submitted_by, "status": "RUNNING",
             "uploaded_at": uploaded_at, "execution_arn": expected_arn, **known}
        )  # fmt: skip
        state = {"import_id": import_id, "source": source.to_dict(), "submitted_by": submitted_by, "resume_at": "",
                 "uploaded_at": uploaded_at, "publisher": publisher.model_dump()}  # fmt: skip
        if known.get("requirements_override"):
            state["requirements_override"] = known["requirements_override"]
        arn = self.orchestrator.start(import_id, state)
        if arn != expected_arn:
            self.imports.update(import_id, execution_arn=arn)

    # --- task functions (the state machine's steps) ----------------------

    def parse_step(self, state: dict[str, Any]) -> dict[str, Any]:
        source = SourceRef(**state["source"])
        publisher = Publisher.from_state(state.get("publisher"))
        settings = get_settings()
        limit = settings.max_zip_bytes if source.is_zip else settings.max_skill_md_bytes
        data = self.blobs.get_bytes(source.bucket, source.key, source.version_id, max_bytes=limit)
        try:
            parsed = parse_source(data, is_zip=source.is_zip)
        except InvalidSkill as error:
            self._record_invalid(state, data, error, publisher)
            raise
        # again here: the owner may have changed since the upload, and inbox uploads are first seen now
        self.ownership.authorize_publish(parsed.skill_id, publisher, import_id=state["import_id"])
        parsed = accept_requirements(parsed, RequirementOverride.from_state(state.get("requirements_override")))
        record = parsed.to_record()
        artifact_key = f"skills/{parsed.skill_id}/{parsed.version}/skill.json"
        self.blobs.put_json(settings.artifacts_bucket, artifact_key, parsed.model_dump(mode="json"))
        for heavy in ("code", "files", "template"):
            record.pop(heavy, None)  # kept in the artefact: DynamoDB items stop at 400 KB
        self.skills.put_version(
            dict(
                record,
                status="importing",
                status_reason=None,
                error=None,
                pins=[],
                artifact_key=artifact_key,
                import_id=state["import_id"],
                uploaded_at=state.get("uploaded_at"),
                submitted_by=state.get("submitted_by"),
                source=source.to_dict(),
                steps={"parse": _step_ok(requirements=len(parsed.requirements), skill_type=parsed.skill_type)},
            )
        )
        self.imports.update(state["import_id"], skill_id=parsed.skill_id, version=parsed.version, current_step="resolve",
                            skill_type=parsed.skill_type, code_choice=parsed.code_choice)  # fmt: skip
        state = dict(state, skill_id=parsed.skill_id, version=parsed.version)
        self._step_event(state, "parse", "succeeded", version=parsed.version, requirements=parsed.requirements)
        return state

    def _record_invalid(self, state: dict[str, Any], data: bytes, error: InvalidSkill, publisher: Publisher) -> None:
        """Keep what we know of an invalid upload on a skill record, if it named itself and is the
        publisher's to write (else the import record alone keeps the reason)."""
        skill_id = error.details.get("skill_id")
        if not skill_id:
            return
        try:
            self.ownership.authorize_publish(skill_id, publisher, import_id=state["import_id"])
        except Forbidden:
            return
        version = error.details.get("version") or hashlib.sha256(data).hexdigest()
        self.skills.put_version(
            {
                "skill_id": skill_id,
                "version": version,
                "name": error.details.get("name") or skill_id,
                "requirements": error.details.get("requirements", []),
                "status": "failed",
                "status_reason": "invalid_skill",
                "error": {"step": "parse", "reason": str(error), "problems": error.problems},
                "import_id": state["import_id"],
                "submitted_by": state.get("submitted_by"),
                "uploaded_at": state.get("uploaded_at"),
                "source": state["source"],
                "steps": {"parse": _step_failed(str(error))},
            }
        )
        self.imports.update(state["import_id"], skill_id=skill_id, version=version)

    def target_platform(self) -> TargetPlatform:
        """The runner's base image as it reported itself; the settings until a runner has."""
        return self.platforms.get() or get_settings().target_platform

    def resolve_step(self, state: dict[str, Any]) -> dict[str, Any]:
        record = self._record(state)
        platform = self.target_platform()
        pins = self.resolver.resolve(list(record.get("requirements", [])), platform, log_id=state["import_id"])
        self.commit_step(
            state, version={"pins": [p.model_dump() for p in pins], "steps__resolve": _step_ok(pins=len(pins), platform=platform.key),
                            "platform": platform.key},
            import_fields={"current_step": "check"},
            events=(step_event(state, "resolve", "succeeded", pins=[f"{p.name}=={p.version}" for p in pins]),),
        )  # fmt: skip
        return dict(state, pin_count=len(pins))

    def check_step(self, state: dict[str, Any]) -> dict[str, Any]:
        """Governance over the closure: bans block; unapproved direct packages wait for an admin."""
        record = self._record(state)
        assert self.rules is not None, "ImportService needs the rules store for the Check step"
        outcome = check_closure(self.pins_of(record), self.rules.rules_for, is_flagged_typosquat=self.is_flagged_typosquat)
        steps = dict(record.get("steps", {}), check=_step_ok(**outcome.to_json()))
        banned_hosts, waiting_hosts = self._host_check(record)
        if outcome.banned or banned_hosts:
            steps["check"]["status"] = "failed"
            self.skills.update_version(state["skill_id"], state["version"], steps=steps)
            lines = [f"{b['package']} {b['version']} is banned: {b['reason']}" for b in outcome.banned] + banned_hosts
            raise Blocked("the skill needs banned packages or hosts", problems=lines, banned=outcome.banned)
        for entry in waiting_hosts:
            self._audit(NETWORK_REQUEST, skill_id=state["skill_id"], outcome=PENDING,
                        detail={"host": entry.removeprefix(HOST_PREFIX), "version": state["version"]})  # fmt: skip
        if outcome.unapproved or waiting_hosts:
            rejected = []
            for item in outcome.unapproved:
                request = ApprovalRequest(
                    request_id=request_id_for(state["skill_id"], state["version"], item["package"]),
                    package=item["package"], version=item["version"], skill_id=state["skill_id"],
                    reason=f"skill {state['skill_id']} needs it: {item['why']}", requested_by=SYSTEM_ACTOR,
                )  # fmt: skip
                filed = self.rules.create_request(request)  # the one already filed for this version, if any
                if filed.status is RequestStatus.REJECTED:
                    rejected.append(_rejection_line(filed))
                    continue
                self._audit(PACKAGE_REQUEST, skill_id=state["skill_id"], package=item["package"], outcome=PENDING,
                            detail={"request_id": request.request_id, "version": item["version"]})  # fmt: skip
            if rejected:  # an admin already said no for this skill version: waiting would be for ever
                steps["check"]["status"] = "failed"
                self.skills.update_version(state["skill_id"], state["version"], steps=steps)
                raise Blocked("an approval this skill needs was rejected", problems=rejected)
            steps["check"]["status"] = "waiting"
            waiting = sorted(i["package"] for i in outcome.unapproved) + waiting_hosts
            self.skills.update_version(
                state["skill_id"], state["version"], steps=steps, status="pending_approval",
                status_reason="waiting for approval of " + ", ".join(waiting), waiting_for=waiting,
            )  # fmt: skip
            self.imports.update(state["import_id"], status="PENDING_APPROVAL", current_step="check", waiting_for=waiting)
            self._step_event(state, "check", PENDING, waiting_for=waiting)
            return dict(state, pending_approval=True)
        self.commit_step(state, version={"steps__check": steps["check"], "waiting_for": []},
                         import_fields={"status": "RUNNING", "current_step": "install"},
                         events=(step_event(state, "check", "succeeded"),))  # fmt: skip
        return dict(state, pending_approval=False)

    def resume_waiting_for(self, package: str, *, actor: str) -> list[str]:
        """After an approval: restart at Check every import no longer waiting for anything."""
        resumed = []
        for summary in self.skills.list_latest():
            if summary.get("status") != "pending_approval" or package not in (summary.get("waiting_for") or []):
                continue
            record = self.skills.get_version(summary["skill_id"], summary["version"]) or {}
            assert self.rules is not None
            outcome = check_closure(self.pins_of(record), self.rules.rules_for, is_flagged_typosquat=self.is_flagged_typosquat)
            if outcome.unapproved and not outcome.banned:
                waiting = sorted(i["package"] for i in outcome.unapproved)
                self.skills.update_version(record["skill_id"], record["version"], waiting_for=waiting,
                                           status_reason="waiting for approval of " + ", ".join(waiting))  # fmt: skip
                continue
            resumed.append(self._resume(record, "check", detail={"after_approval_of": package, "by": actor}))
        return resumed

    def _host_check(self, record: dict[str, Any]) -> tuple[list[str], list[str]]:
        hosts = record.get("network") or []
        if not hosts or self.network_rules is None:
            return [], []
        return network_import_check(hosts, self.network_rules())

    def resume_waiting_for_hosts(self, *, actor: str) -> list[str]:
        """After a host approval: restart at Check every import no longer waiting for anything."""
        resumed = []
        for summary in self.skills.list_latest():
            waiting = summary.get("waiting_for") or []
            if summary.get("status") != "pending_approval" or not any(w.startswith(HOST_PREFIX) for w in waiting):
                continue
            record = self.skills.get_version(summary["skill_id"], summary["version"]) or {}
            still = [w for w in waiting if not w.startswith(HOST_PREFIX)] + self._host_check(record)[1]
            if still:
                self.skills.update_version(record["skill_id"], record["version"], waiting_for=still,
                                           status_reason="waiting for approval of " + ", ".join(still))  # fmt: skip
                continue
            resumed.append(self._resume(record, "check", detail={"after_network_approval": True, "by": actor}))
        return resumed

    def block_rejected(self, request: ApprovalRequest, *, actor: str) -> list[str]:
        """After a rejection: the import waiting for that request ends blocked, saying why."""
        blocked = []
        if not request.skill_id:
            return blocked
        for record in self.skills.versions(request.skill_id):
            if record.get("status") != "pending_approval" or request.package not in (record.get("waiting_for") or []):
                continue
            if request_id_for(record["skill_id"], record["version"], request.package) != request.request_id:
                continue
            reason = f"an approval this skill needs was rejected: {_rejection_line(request)}"
            steps = dict(record.get("steps", {}), check=_step_failed(reason))
            self.skills.update_version(record["skill_id"], record["version"], status="blocked", status_reason="blocked",
                                       steps=steps, error={"step": "check", "type": "Blocked", "reason": reason})  # fmt: skip
            if record.get("import_id"):
                self.imports.update(record["import_id"], status="FAILED", current_step=None, failed_step="check",
                                    error_type="Blocked", reason=reason, finished_at=now_iso())  # fmt: skip
            self._audit(IMPORT_STEP, skill_id=record["skill_id"], outcome=BLOCKED,
                        detail={"import_id": record.get("import_id"), "step": "check", "reason": reason, "by": actor})  # fmt: skip
            blocked.append(record.get("import_id") or record["version"])
        return blocked

    def _resume(self, record: dict[str, Any], step: str, *, detail: dict[str, Any]) -> str:
        """Start a new execution of the same import at ``step`` (the ASL's Start choice)."""
        import_id = record["import_id"]
        attempt = int(record.get("resumes", 0)) + 1
        self.skills.update_version(record["skill_id"], record["version"], status="importing", status_reason=None, resumes=attempt)
        self.imports.update(import_id, status="RUNNING", current_step=step, failed_step=None, reason=None)
        state = {"import_id": import_id, "skill_id": record["skill_id"], "version": record["version"],
                 "source": record.get("source"), "submitted_by": record.get("submitted_by"),
                 "pin_count": len(record.get("pins", [])), "resume_at": step}  # fmt: skip
        self.orchestrator.start(f"{import_id}-resume-{attempt}", state)
        self._audit(IMPORT_STEP, skill_id=record["skill_id"], outcome="resumed", detail={"import_id": import_id, "at": step, **detail})
        return import_id

    @property
    def scanner(self) -> Scanner:
        if self._scanner is None:
            self._scanner = Scanner.from_settings()
        return self._scanner

    def scan_step(self, state: dict[str, Any]) -> dict[str, Any]:
        """Vulnerabilities (fail closed), typosquats and the skill's code; stores the report and the SBOM."""
        record = self._record(state)
        settings = get_settings()
        pins = self.pins_of(record)
        report, summary, code_high = self.scan_record(record, state)
        code_approval = summary["code_approval"]
        released = bool(report.malicious and code_approval and code_approval.get("releases_malicious"))
        prefix = record["artifact_key"].rsplit("/", 1)[0]
        self.blobs.put_json(settings.artifacts_bucket, f"{prefix}/scan.json", report.to_dict())
        self.blobs.put_json(settings.artifacts_bucket, f"{prefix}/sbom.json", build_sbom(state["skill_id"], state["version"], pins, dependencies=_dependency_graph(pins)))
        step = _step_ok(status=report.status, findings=len(report.findings))
        if report.status != "passed" or (code_high and code_approval is None):
            step["status"] = "failed"
        version = {"scan": summary, "steps__scan": step, "scan_basis": self.scanner.basis()}
        refusal = self._scan_refusal(report, code_high, code_approval, released, state)
        if refusal is not None:
            self.skills.update_version(state["skill_id"], state["version"], **version)
            if report.malicious and not released:
                self._audit(IMPORT_STEP, skill_id=state["skill_id"], outcome=BLOCKED,
                            detail={"import_id": state["import_id"], "step": "scan", "malicious": list(report.malicious)})  # fmt: skip
            raise refusal
        self.commit_step(state, version=version, import_fields={"current_step": "install"},
                         events=(step_event(state, "scan", "succeeded", findings=len(report.findings), code_findings=len(report.code_findings)),))  # fmt: skip
        return state

    @staticmethod
    def _scan_refusal(report: Any, code_high: list[str], code_approval: Any, released: bool, state: dict[str, Any]) -> Exception | None:
        """Why the scan stops the import (malicious, unaudited, vulnerable, HIGH code unapproved), or None."""
        if report.malicious and not released:
            return Blocked("the skill is malicious (CRITICAL findings); only an admin's approval of this version with "
                           "release_malicious (and a reason) releases it", problems=[_malice_line(f) for f in report.malicious])  # fmt: skip
        if report.status == "scan_unavailable":
            return ScanUnavailable("some packages could not be audited: the scan fails closed", problems=list(report.reasons))
        if report.status == "blocked":
            return Blocked("known vulnerabilities", problems=list(report.reasons))
        if code_high and code_approval is None:
            return Blocked(
                "the skill's code has HIGH severity findings; an admin must approve this version "
                f"(POST /api/skills/{state['skill_id']}/approve-code)",
                problems=code_high,
            )
        return None

    def scan_record(self, record: dict[str, Any], state: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any], list[str]]:
        """Scan a skill version as the import does: (the report, the summary its record keeps, the HIGH code
        findings that need an admin's approval of the version). Also what the schedule's re-scan runs."""
        pins = self.pins_of(record)
        if "artifact_key" not in record:  # a package set (seed install): packages only
            report = self.scanner.scan(pins, ignores=self.reviews.ignores())
        else:
            artifact = self.blobs.get_json(get_settings().artifacts_bucket, record["artifact_key"])
            code = _code_of(artifact)
            # the admins' advisory ignores apply to the pins' vulnerabilities only: no pins, no lookup
            report = self.scanner.scan(pins, code=code or None, ignores=self.reviews.ignores() if pins else (),
                                       skill_files=self._skill_files(record, state or {}, artifact))  # fmt: skip
        code_high = [f.describe() for f in report.needs_approval.code]
        code_high += [_malice_line(f) for f in report.needs_approval.malice]
        code_approval = self.reviews.code_approval(record["skill_id"], record["version"]) if code_high or report.malicious else None
        summary = {
            "status": report.status, "reasons": list(report.reasons),
            "findings": [f.model_dump(mode="json") for f in report.findings],
            "unaudited": [u.model_dump(mode="json") for u in report.unaudited],
            "typosquats": [t.model_dump(mode="json") for t in report.typosquats],
            "code_findings": [f.model_dump(mode="json") for f in report.code_findings],
            "malice_findings": list(report.malice_findings), "malicious": bool(report.malicious),
            "code_approval": code_approval, "vulnerability_service": report.vulnerability_service,
            "advisory_db": report.advisory_db, "warnings": list(report.warnings),
        }  # fmt: skip
        return report, summary, code_high

    def _skill_files(self, record: dict[str, Any], state: dict[str, Any], artifact: dict[str, Any]) -> dict[str, bytes | str]:
        """The whole upload as it arrived (binaries, archives and __pycache__ included), for the rule pack;
        the parsed artifact's text files when the upload is no longer readable."""
        source = record.get("source") or state.get("source")
        if source:
            ref = SourceRef(**source)
            settings = get_settings()
            limit = settings.max_zip_bytes if ref.is_zip else settings.max_skill_md_bytes
            try:
                data = self.blobs.get_bytes(ref.bucket, ref.key, ref.version_id, max_bytes=limit)
            except Exception:  # the parsed files below are still scanned; nothing passes unscanned
                data = None
            if data is not None:
                return read_upload(data, is_zip=ref.is_zip)
        files: dict[str, bytes | str] = dict(artifact.get("files") or {})
        if artifact.get("template"):
            files["SKILL.md"] = artifact["template"]
        return files

    def resume_at_scan(self, record: dict[str, Any], *, actor: str) -> str:
        """After an admin approved the code of a blocked version: run Scan (and what follows) again."""
        return self._resume(record, "scan", detail={"after": "code approval", "by": actor})

    def _audit(self, action: str, *, actor: str = SYSTEM_ACTOR, **fields: Any) -> None:
        if self.audit_log is not None:
            self.audit_log.append(audit_event(action, actor=actor, **fields))

    def _step_event(self, state: dict[str, Any], step: str, outcome: str, **detail: Any) -> None:
        if self.audit_log is not None:
            self.audit_log.append(step_event(state, step, outcome, **detail))

    def commit_step(self, state: dict[str, Any], *, version: dict[str, Any], import_fields: dict[str, Any] | None = None,
                    events: tuple[Any, ...] = ()) -> None:  # fmt: skip
        """A step's writes in one transaction: ``version`` fields on the version's record (``steps__<step>``
        sets one step's entry), ``import_fields`` on the import record, and the step's audit events."""
        items = [self.skills.version_update(state["skill_id"], state["version"], **version)]
        if import_fields is not None:
            items.append(self.imports.import_update(state["import_id"], **import_fields))
        put = getattr(self.audit_log, "transact_put", None)
        if put is not None:
            items += [put(event) for event in events]
        try:
            self.skills.write_together(state["skill_id"], state["version"], items)
        except NotFound as error:  # as a step that reads the record first reports it
            raise InvalidSkill(f"skill {state['skill_id']} version {state['version']} has no record") from error
        if put is None and self.audit_log is not None:  # an audit log without transactions (unit tests' memory one)
            for event in events:
                self.audit_log.append(event)

    def finalize_step(self, state: dict[str, Any]) -> dict[str, Any]:
        image = state.get("image") or {}
        version: dict[str, Any] = {"status": "ready", "status_reason": None, "image_tag": image.get("image_tag")}
        events = []
        if image:  # the build's answer arrives with this step: record it first, so the steps read in order
            version["steps__install"] = _step_ok(image_tag=image.get("image_tag"), built=image.get("built"))
            events.append(step_event(state, "install", "succeeded", image_tag=image.get("image_tag"), built=image.get("built")))
        version["steps__finalize"] = _step_ok()
        events.append(step_event(state, "finalize", "ready"))
        self.commit_step(state, version=version, events=tuple(events),
                         import_fields={"status": "SUCCEEDED", "current_step": None, "finished_at": now_iso()})  # fmt: skip
        return dict(state, status="ready")

    def record_failure_step(self, state: dict[str, Any]) -> dict[str, Any]:
        """The Catch target: name the failing step and the reason on the import and the skill."""
        step = state.get("failed_step", "unknown")
        error_type, reason = _describe_error(state.get("error") or {})
        status, status_reason = _status_for(error_type)
        import_record = self.imports.get(state["import_id"]) or {}
        skill_id = state.get("skill_id") or import_record.get("skill_id")
        version = state.get("version") or import_record.get("version")
        if skill_id and version:
            record = self.skills.get_version(skill_id, version) or {}
            steps = dict(record.get("steps", {}), **{step: _step_failed(reason)})
            error = dict(record.get("error") or {}, step=step, reason=reason, type=error_type)
            self.skills.update_version(skill_id, version, status=status, status_reason=status_reason, error=error, steps=steps)
        self._step_event(dict(state, skill_id=skill_id), step, status, error_type=error_type, reason=reason[:2000])
        # the import's end state last: whoever polls it then finds the skill record final
        self.imports.update(
            state["import_id"],
            status="FAILED",
            failed_step=step,
            reason=reason,
            error_type=error_type,
            current_step=None,
            finished_at=now_iso(),
        )
        return dict(state, status=status, failed_step=step, reason=reason)

    def _record(self, state: dict[str, Any]) -> dict[str, Any]:
        record = self.skills.get_version(state["skill_id"], state["version"])
        if record is None:
            raise InvalidSkill(f"skill {state['skill_id']} version {state['version']} has no record")
        return record

    def pins_of(self, record: dict[str, Any]) -> list[Pin]:
        return [Pin(**p) for p in record.get("pins", [])]


def step_event(state: dict[str, Any], step: str, outcome: str, **detail: Any) -> Any:
    """The audit event of one import step."""
    return audit_event(IMPORT_STEP, actor=SYSTEM_ACTOR, skill_id=state.get("skill_id"), outcome=outcome,
                       detail={"import_id": state["import_id"], "step": step, **detail})  # fmt: skip


def _malice_line(finding: dict[str, Any]) -> str:
    return (f"{finding['file']}:{finding['line']} {finding['rule_id']} {finding['severity']}: {finding['message']}: "
            f"{finding['matched']!r} (fix: {finding['fix']})")  # fmt: skip


def _code_of(artifact: dict[str, Any]) -> dict[str, str]:
    """Every Python source of a parsed skill, by file name, for code analysis."""
    sources = {path: text for path, text in (artifact.get("files") or {}).items() if path.endswith(".py")}
    if artifact.get("code"):
        sources[artifact.get("code_path") or "SKILL.md"] = artifact["code"]
    return sources


def _rejection_line(request: ApprovalRequest) -> str:
    why = f": {request.decision_reason}" if request.decision_reason else ""
    return f"{request.package} {request.version} was rejected by {request.decided_by or 'an admin'}{why}"


def _step_ok(**detail: Any) -> dict[str, Any]:
    return {"status": "succeeded", "at": now_iso(), **detail}


def _step_failed(reason: str) -> dict[str, Any]:
    return {"status": "failed", "at": now_iso(), "reason": reason}


def _describe_error(error: dict[str, Any]) -> tuple[str, str]:
    """(error type, readable reason) from a Catch's ``{Error, Cause}``."""
    error_type = error.get("Error", "Unknown")
    cause = error.get("Cause", "")
    try:
        parsed = json.loads(cause)
        reason = parsed.get("errorMessage") or cause
    except (TypeError, ValueError):
        reason = cause or error_type
    return error_type, str(reason)


def _status_for(error_type: str) -> tuple[str, str]:
    """(skill status, status reason) a failure of ``error_type`` leaves, as its error class declares."""
    cls = error_named(error_type)
    if cls is not None:
        return cls.record_status, cls.reason
    return "failed", "internal_error" if error_type.startswith(("States.", "Lambda.")) else error_type.lower()
