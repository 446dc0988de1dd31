"""Governance use cases: what the HTTP API and the pipeline call.

Each method checks the caller's role, writes through the repositories,
invalidates this process's decision cache at once, and appends an audit
event naming the caller. The API layer only parses requests and maps errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from chalicelib.errors import BadRequest, Conflict, Forbidden, NotFound
from chalicelib.governance import audit as events
from chalicelib.governance.audit import AuditPage, audit_event
from chalicelib.governance.cache import PermissionChecker
from chalicelib.governance.decision import Decision
from chalicelib.governance.identity import (
    Agent,
    Principal,
    Role,
    acting_agent_id,
    require_role,
    validate_agent_id,
)
from chalicelib.governance.key_admin import IssuedKey, KeyAdministration
from chalicelib.governance.maturity import Maturity
from chalicelib.governance.ports import AuditLog, PrincipalsRepository, RulesRepository
from chalicelib.governance.rules import (
    Approval,
    ApprovalRequest,
    Ban,
    RequestStatus,
    Rule,
    normalize_package_name,
    normalize_specifier,
    parse_exact_version,
    specifier_contains,
)


class ApproveResult(NamedTuple):
    approval: Approval
    fulfilled: list[ApprovalRequest]  # pending requests this approval answered (now "approved")


class GovernanceService(KeyAdministration):
    def __init__(
        self,
        rules: RulesRepository,
        principals: PrincipalsRepository,
        audit_log: AuditLog,
        checker: PermissionChecker | None = None,
        *,
        bootstrap_admin_key: str | Callable[[], str | None] | None = None,
    ) -> None:
        self.rules = rules
        self.principals = principals
        self.audit_log = audit_log
        self.checker = checker if checker is not None else PermissionChecker(principals, rules)
        self.bootstrap_admin_key = bootstrap_admin_key

    # --- identity ---------------------------------------------------------------------

    def create_agent(self, caller: Principal, agent_id: str, maturity: Maturity | str) -> tuple[Agent, IssuedKey]:
        """Admin: register an agent and issue its key (Conflict if it exists)."""
        require_role(caller, Role.ADMIN)
        agent = Agent(agent_id=validate_agent_id(agent_id), maturity=Maturity.parse(maturity))
        self.principals.create_agent(agent)
        self.checker.agent_changed(agent.agent_id)  # an "unknown agent" denial may be cached
        issued = self._issue_key(caller, Role.AGENT, name=f"agent {agent.agent_id}", agent_id=agent.agent_id)
        self._append(events.AGENT_CREATE, caller, agent_id=agent.agent_id, detail={"maturity": agent.maturity.value})
        return agent, issued

    def get_agent(self, caller: Principal, agent_id: str) -> Agent:
        """Admin: any agent; agent key: only itself. NotFound if unknown."""
        scoped = acting_agent_id(caller, agent_id)
        if caller.role is Role.PUBLISHER:
            raise Forbidden("publisher keys cannot read agents")
        agent = self.principals.get_agent(scoped or agent_id)
        if agent is None:
            raise NotFound(f"no agent {agent_id!r}")
        return agent

    def update_maturity(
        self, caller: Principal, agent_id: str, maturity: Maturity | str, *, expected_version: int | None = None
    ) -> Agent:
        """Admin: change an agent's maturity (conditional on its version)."""
        require_role(caller, Role.ADMIN)
        validate_agent_id(agent_id)
        level = Maturity.parse(maturity)
        before = self.principals.get_agent(agent_id)
        agent = self.principals.update_maturity(agent_id, level, expected_version=expected_version)
        self.checker.agent_changed(agent_id)
        self._append(
            events.AGENT_UPDATE,
            caller,
            agent_id=agent_id,
            detail={"maturity": agent.maturity.value, "previous": before.maturity.value if before else None},
        )
        return agent

    # --- decisions --------------------------------------------------------------------

    def check(self, caller: Principal, agent_id: str | None, package: str, version: str) -> Decision:
        """The permission decision (cached), audited as ``package.check``.

        Agent keys check only themselves (naming another agent is Forbidden);
        other keys must name the agent.
        """
        scoped = acting_agent_id(caller, agent_id)
        if not scoped:
            raise BadRequest("agent_id is required", field="agent_id")
        name = normalize_package_name(package)
        exact = parse_exact_version(version)
        decision = self.checker.check(scoped, name, exact)
        self._append(
            events.PACKAGE_CHECK,
            caller,
            agent_id=scoped,
            package=name,
            outcome=events.ALLOWED if decision.allowed else events.DENIED,
            detail={"version": exact, **decision.to_json()},
        )
        return decision

    # --- rules ------------------------------------------------------------------------

    def request(
        self,
        caller: Principal,
        package: str,
        version: str,
        reason: str,
        *,
        agent_id: str | None = None,
        skill_id: str | None = None,
        request_id: str | None = None,
    ) -> ApprovalRequest:
        """Any key: ask for an approval (agent keys only for themselves).

        Pass a deterministic ``request_id`` (``rules.request_id_for``) to make
        a retried call file one request.
        """
        scoped = acting_agent_id(caller, agent_id)
        fields = dict(
            package=package, version=version, reason=reason, requested_by=caller.actor, agent_id=scoped, skill_id=skill_id
        )
        if request_id:
            fields["request_id"] = request_id
        request = self.rules.create_request(ApprovalRequest(**fields))
        self._append(
            events.PACKAGE_REQUEST,
            caller,
            agent_id=scoped,
            skill_id=skill_id,
            package=request.package,
            outcome=events.PENDING,
            detail={"request_id": request.request_id, "version": request.version, "reason": request.reason},
        )
        covering = self._covering_approval(request) if request.status is RequestStatus.PENDING else None
        if covering is not None:  # nothing for an admin to decide: answer it now, saying which rule does
            try:
                request = self._decide(
                    None, request, RequestStatus.APPROVED, rule_id=covering.rule_id,
                    reason=f"already approved by rule {covering.rule_id} ({covering.specifier or 'all versions'}, "
                           f"{covering.min_maturity.value} and up)",
                )  # fmt: skip
            except Conflict:  # an admin decided it in the meantime
                request = self.rules.get_request(request.request_id) or request
        return request

    def _covering_approval(self, request: ApprovalRequest) -> Approval | None:
        """The approval that already lets the request's agent use that exact version, if any.

        Only then is there nothing left to decide: the same decision as a
        permission check (bans, STUDENT, typosquat rules included). Requests
        without an agent, or for a range, stay with the admins."""
        if not request.agent_id:
            return None
        try:
            version = parse_exact_version(request.version)
        except BadRequest:
            return None
        if not self.checker.check(request.agent_id, request.package, version).allowed:
            return None
        covering = [a for a in self.rules.rules_for(request.package).approvals if _covers(a, version)]
        return min(covering, key=lambda a: a.min_maturity.rank, default=None)  # the one that grants it

    def list_requests(self, caller: Principal, status: RequestStatus | str | None = None) -> list[ApprovalRequest]:
        """Admins and publishers see every request; an agent sees the ones that name it (an agent's own
        requests always do), read from the agent's index so that nobody else's requests crowd them out."""
        require_role(caller, Role.ADMIN, Role.PUBLISHER, Role.AGENT)
        if caller.role is Role.AGENT:
            return self.rules.list_requests(status, agent_id=caller.agent_id)
        return self.rules.list_requests(status)

    def approve(
        self, caller: Principal, package: str, specifier: str | None, min_maturity: Maturity | str
    ) -> ApproveResult:
        """Admin: approve ``package`` versions in ``specifier`` ('' = all) for ``min_maturity`` and up.

        Pending requests for versions the approval covers are marked approved.
        """
        require_role(caller, Role.ADMIN)
        approval = self.rules.put_rule(Approval.new(package, specifier, min_maturity, created_by=caller.actor))
        self.checker.rules_changed(approval.package)
        self._append(
            events.PACKAGE_APPROVE,
            caller,
            package=approval.package,
            detail={
                "rule_id": approval.rule_id,
                "specifier": approval.specifier,
                "min_maturity": approval.min_maturity.value,
            },
        )
        fulfilled = []
        for pending in self.rules.list_requests(RequestStatus.PENDING, package=approval.package, limit=None):
            if not _covers(approval, pending.version):
                continue
            try:
                fulfilled.append(self._decide(caller, pending, RequestStatus.APPROVED, rule_id=approval.rule_id))
            except Conflict:  # decided concurrently by someone else
                continue
        return ApproveResult(approval=approval, fulfilled=fulfilled)

    def reject_request(self, caller: Principal, request_id: str, reason: str = "") -> ApprovalRequest:
        """Admin: turn a pending request down, saying why (the requester sees the reason)."""
        require_role(caller, Role.ADMIN)
        request = self.rules.get_request(request_id)
        if request is None:
            raise NotFound(f"no approval request {request_id}")
        return self._decide(caller, request, RequestStatus.REJECTED, reason=reason or None)

    def ban(self, caller: Principal, package: str, specifier: str | None, reason: str) -> Ban:
        """Admin: deny ``package`` versions in ``specifier`` ('' = all) to every agent."""
        require_role(caller, Role.ADMIN)
        ban = self.rules.put_rule(Ban.new(package, specifier, reason, created_by=caller.actor))
        self.checker.rules_changed(ban.package)
        self._append(
            events.PACKAGE_BAN,
            caller,
            package=ban.package,
            detail={"rule_id": ban.rule_id, "specifier": ban.specifier, "reason": ban.reason},
        )
        return ban

    def revoke_rule(self, caller: Principal, rule_id: str) -> Rule:
        """Admin: revoke an approval or a ban (NotFound / Conflict when already revoked)."""
        require_role(caller, Role.ADMIN)
        rule = self.rules.revoke_rule(rule_id, revoked_by=caller.actor)
        self.checker.rules_changed(rule.package)
        self._append(events.RULE_REVOKE, caller, package=rule.package, detail={"rule_id": rule_id, "kind": rule.kind})
        return rule

    def list_rules(self, caller: Principal, *, package: str | None = None, include_revoked: bool = False) -> list[Rule]:
        require_role(caller, Role.ADMIN, Role.PUBLISHER)
        return self.rules.list_rules(package=package, include_revoked=include_revoked)

    # --- audit ------------------------------------------------------------------------

    def audit(
        self,
        caller: Principal,
        *,
        agent_id: str | None = None,
        skill_id: str | None = None,
        action: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | str | None = None,
        next_token: str | None = None,
    ) -> AuditPage:
        """Admin: every event; agent key: only its own agent's events; publisher: Forbidden."""
        if caller.role is Role.PUBLISHER:
            raise Forbidden("publisher keys cannot read the audit trail")
        scoped = acting_agent_id(caller, agent_id)
        return self.audit_log.query(
            agent_id=scoped, skill_id=skill_id, action=action, since=since, until=until, limit=limit, next_token=next_token
        )

    def runs(
        self,
        caller: Principal,
        *,
        agent_id: str | None = None,
        skill_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | str | None = None,
        next_token: str | None = None,
    ) -> AuditPage:
        """Runs that ended, newest first: each run's end event (``skill.execute`` ``ok``/``failed``).

        Admin: every agent's; agent key: its own; publisher: Forbidden (runs are the agents' business).
        """
        if caller.role is Role.PUBLISHER:
            raise Forbidden("publisher keys cannot list runs; an admin or agent key can")
        scoped = acting_agent_id(caller, agent_id)
        return self.audit_log.query(
            agent_id=scoped, skill_id=skill_id, action=events.SKILL_EXECUTE, outcomes=(events.OK, events.FAILED),
            since=since, until=until, limit=limit, next_token=next_token,
        )  # fmt: skip

    # --- helpers ----------------------------------------------------------------------

    def _decide(
        self, caller: Principal | None, request: ApprovalRequest, status: RequestStatus, *, rule_id: str | None = None,
        reason: str | None = None,
    ) -> ApprovalRequest:
        """``caller`` None: the system decides (a rule already answers the request)."""
        actor = caller.actor if caller is not None else events.SYSTEM_ACTOR
        decided = self.rules.decide_request(request.request_id, status, decided_by=actor, reason=reason)
        detail = {"request_id": request.request_id, "status": status.value}
        if rule_id:
            detail["rule_id"] = rule_id
        if reason:
            detail["reason"] = reason
        self.audit_log.append(audit_event(events.REQUEST_DECIDE, actor=actor, agent_id=request.agent_id,
                                          skill_id=request.skill_id, package=request.package, detail=detail))  # fmt: skip
        return decided

    def _append(self, action: str, caller: Principal, **fields: object) -> None:
        self.audit_log.append(audit_event(action, actor=caller.actor, **fields))


def _covers(approval: Approval, requested: str) -> bool:
    """Whether ``approval`` answers a request for ``requested`` (exact version, specifier or '')."""
    if not approval.specifier:
        return True
    try:
        return specifier_contains(approval.specifier, parse_exact_version(requested))
    except BadRequest:
        return normalize_specifier(requested) == approval.specifier
