"""Process-wide service instances for the handlers (built lazily, once).

Stores read their settings on every call, so holding them is safe; holding
them keeps per-process caches (resolution, permission decisions) warm.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from chalicelib.errors import BadRequest
from chalicelib.governance.isolation_policy import IsolationPolicy
from chalicelib.governance.service import GovernanceService
from chalicelib.governance.throttle import Throttle
from chalicelib.workflow.commands import CommandService
from chalicelib.workflow.execution import ExecutionService
from chalicelib.workflow.imports import ImportService
from chalicelib.workflow.package_sets import PackageSetService

_SKILL_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_IMPORT_ID = re.compile(r"^imp-[0-9a-f]{20}$")


@functools.cache
def import_service() -> ImportService:
    from chalicelib.scanning.typosquats import load_popular_names
    from chalicelib.store.network_rules import NetworkRulesStore

    governance = governance_service()
    return ImportService(
        rules=governance.rules,
        audit_log=governance.audit_log,
        is_flagged_typosquat=lambda name: load_popular_names().check(name) is not None,
        network_rules=NetworkRulesStore().list,
    )


def rescan_service() -> Any:
    from chalicelib.workflow.rescan import RescanService

    imports = import_service()
    return RescanService(imports, imports.skills, governance_service().audit_log)


def code_approvals() -> Any:
    from chalicelib.workflow.code_approval import CodeApprovals

    return CodeApprovals(import_service(), rescan_service(), record_event)


def valid_skill_id(skill_id: str) -> str:
    if not _SKILL_ID.match(skill_id or ""):
        raise BadRequest(f"invalid skill id {skill_id!r}: lowercase letters, digits and '-', at most 64 characters")
    return skill_id


def valid_import_id(import_id: str) -> str:
    if not _IMPORT_ID.match(import_id or ""):
        raise BadRequest(f"invalid import id {import_id!r}: expected imp- followed by 20 hex digits")
    return import_id


@functools.cache
def governance_service() -> GovernanceService:
    from chalicelib.governance.cache import DecisionCache, PermissionChecker
    from chalicelib.scanning.typosquats import load_popular_names
    from chalicelib.store.audit import AuditStore
    from chalicelib.store.principals import PrincipalsStore
    from chalicelib.store.rules import RulesStore

    from chalicelib.governance.key_cache import CachedKeys
    from chalicelib.settings import get_settings

    # authentication reads keys through this cache (revocations here apply at once, elsewhere within the ttl)
    rules, principals = RulesStore(), CachedKeys(PrincipalsStore(), get_settings().record_cache_seconds)
    checker = PermissionChecker(
        principals,
        rules,
        DecisionCache.from_settings(),
        # the popular-names index is built on first use (about a second), then cached
        is_flagged_typosquat=lambda name: load_popular_names().check(name) is not None,
    )
    # read per call: the bootstrap key may be retired, and tests change the environment
    return GovernanceService(rules, principals, AuditStore(), checker, bootstrap_admin_key=lambda: get_settings().admin_key)


def record_event(action: str, *, actor: str, **fields: object) -> None:
    """Append one audit event through the process's audit log."""
    from chalicelib.governance.audit import audit_event

    governance_service().audit_log.append(audit_event(action, actor=actor, **fields))
    from chalicelib.api.refusals import note_recorded

    note_recorded(action)  # a view's own audit of a refusal is not repeated by audited_refusals


@functools.cache
def network_governance() -> Any:
    """Host rules and the run's host check (governance/network_service.py)."""
    from chalicelib.governance.network_service import NetworkGovernance
    from chalicelib.settings import get_settings
    from chalicelib.store.network_rules import NetworkRulesStore

    governance = governance_service()
    return NetworkGovernance(NetworkRulesStore(), governance.principals, governance.audit_log,
                             cache_ttl=float(get_settings().package_cache_ttl))  # fmt: skip


@functools.cache
def secret_broker() -> Any:
    """Brokered secrets (governance/secret_service.py): values in Secrets Manager, bindings in the rules table."""
    from chalicelib.governance.secret_service import SecretBroker
    from chalicelib.store.secrets import SecretBindingsStore, SecretValues

    return SecretBroker(SecretBindingsStore(), SecretValues(), governance_service().audit_log)


def reset_services() -> None:
    """Forget process-wide services (tests switch mocks and settings)."""
    network_governance.cache_clear()
    secret_broker.cache_clear()
    import_service.cache_clear()
    command_service.cache_clear()
    governance_service.cache_clear()
    execution_service.cache_clear()
    throttle.cache_clear()
    package_set_service.cache_clear()
    isolation_policy.cache_clear()


@functools.cache
def throttle() -> Throttle:
    """Per-key limits on resolutions and builds, counted in DynamoDB so every instance sees the same uses."""
    from chalicelib.store.throttle import DynamoThrottleStore

    return Throttle(DynamoThrottleStore())


@functools.cache
def package_set_service() -> PackageSetService:
    return PackageSetService(import_service(), execution_service(), throttle(), record_event)


@functools.cache
def execution_service() -> ExecutionService:
    governance = governance_service()
    service = import_service()
    return ExecutionService(service.skills, service.blobs, service.images, governance.checker, audit=governance.audit_log,
                            isolation=isolation_policy(), network=network_governance(), secrets=secret_broker())


@functools.cache
def isolation_policy() -> IsolationPolicy:
    from chalicelib.settings import get_settings
    from chalicelib.store.isolation import IsolationRulesStore

    governance = governance_service()
    return IsolationPolicy(IsolationRulesStore(), governance.principals, governance.audit_log,
                           cache_seconds=get_settings().record_cache_seconds)  # fmt: skip


@functools.cache
def command_service() -> CommandService:
    from chalicelib.store.skill_settings import SkillSettingsStore
    from chalicelib.store.workspaces import WorkspaceStore

    return CommandService(execution_service(), WorkspaceStore(), SkillSettingsStore(), governance_service().principals)
