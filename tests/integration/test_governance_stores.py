"""The governance DynamoDB adapters against moto."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from moto import mock_aws

from chalicelib.errors import BadRequest, Conflict, NotFound, TransientError
from chalicelib.governance import audit as actions
from chalicelib.governance.audit import audit_event
from chalicelib.governance.cache import DecisionCache, PermissionChecker
from chalicelib.governance.identity import Agent, Principal, Role, authenticate
from chalicelib.governance.keys import generate_api_key
from chalicelib.governance.maturity import Maturity
from chalicelib.governance.rules import Approval, ApprovalRequest, Ban, RequestStatus
from chalicelib.local.provision import create_tables
from chalicelib.settings import get_settings
from chalicelib.store import aws as aws_clients
from chalicelib.store.audit import AuditStore
from chalicelib.store.principals import PrincipalsStore
from chalicelib.store.rules import RulesStore

TABLES = {
    "SKILLHARBOR_RULES_TABLE": "test-rules",
    "SKILLHARBOR_PRINCIPALS_TABLE": "test-principals",
    "SKILLHARBOR_AUDIT_TABLE": "test-audit",
}
TABLE_FIELDS = ("rules_table", "principals_table", "audit_table")


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("SKILLHARBOR_AWS_ENDPOINT_URL", raising=False)
    for key, value in TABLES.items():
        monkeypatch.setenv(key, value)
    aws_clients.reset_clients()
    with mock_aws():
        create_tables(boto3.client("dynamodb", region_name="us-east-1"), get_settings(), only=TABLE_FIELDS)
        yield
    aws_clients.reset_clients()


# --- rules -------------------------------------------------------------------------


def test_rules_round_trip_and_revoke(aws):
    store = RulesStore()
    approval = store.put_rule(Approval.new("NumPy", ">=1.26", "INTERN", created_by="admin:ops"))
    ban = store.put_rule(Ban.new("numpy", "<1.26.2", "CVE-2024-1", created_by="admin:ops"))
    store.put_rule(Approval.new("pandas", "", "SUPERVISED", created_by="admin:ops"))

    rules = store.rules_for("numpy")
    assert rules.approvals == (approval,) and rules.bans == (ban,)
    assert store.get_rule(ban.rule_id) == ban
    assert [r.package for r in store.list_rules()] == ["numpy", "numpy", "pandas"]
    assert len(store.list_rules(package="PANDAS")) == 1

    revoked = store.revoke_rule(ban.rule_id, revoked_by="admin:ops")
    assert revoked.revoked_by == "admin:ops" and revoked.revoked_at
    assert store.rules_for("numpy").bans == ()
    assert store.rules_for("numpy", include_revoked=True).bans == (revoked,)
    assert len(store.list_rules(include_revoked=True)) == 3 and len(store.list_rules()) == 2
    with pytest.raises(Conflict, match="already revoked"):
        store.revoke_rule(ban.rule_id, revoked_by="admin:ops")
    with pytest.raises(NotFound):
        store.revoke_rule("ban_unknown", revoked_by="admin:ops")
    with pytest.raises(Conflict):
        store.put_rule(approval)


def test_approval_requests(aws):
    store = RulesStore()
    first = store.create_request(
        ApprovalRequest(package="numpy", version="1.26.4", reason="skill", requested_by="publisher:ci",
                        skill_id="s1", request_id="req_fixed", created_at="2024-01-01T00:00:00.000000Z")
    )
    duplicate = store.create_request(
        ApprovalRequest(package="numpy", version="9", requested_by="someone-else", request_id="req_fixed")
    )
    assert duplicate == first  # idempotent: the stored request wins
    second = store.create_request(ApprovalRequest(package="pandas", version="2.2", requested_by="agent:bot", agent_id="bot"))

    assert [r.request_id for r in store.list_requests("pending")] == [second.request_id, "req_fixed"]
    assert [r.request_id for r in store.list_requests(package="NumPy")] == ["req_fixed"]
    assert store.list_requests("approved") == []

    approved = store.decide_request("req_fixed", "approved", decided_by="admin:ops")
    assert approved.status is RequestStatus.APPROVED and approved.decided_by == "admin:ops"
    assert [r.request_id for r in store.list_requests(RequestStatus.APPROVED)] == ["req_fixed"]
    assert [r.request_id for r in store.list_requests("pending")] == [second.request_id]
    assert store.list_requests("pending", package="numpy") == []
    with pytest.raises(Conflict, match="already approved"):
        store.decide_request("req_fixed", "rejected", decided_by="admin:ops")
    with pytest.raises(NotFound):
        store.decide_request("req_nope", "rejected", decided_by="admin:ops")
    with pytest.raises(BadRequest):
        store.decide_request(second.request_id, "pending", decided_by="admin:ops")
    assert len(store.list_requests()) == 2


def test_concurrent_approve_ban_revoke_lose_nothing(aws):
    store = RulesStore()
    seeded = [store.put_rule(Approval.new("numpy", f"=={i}.0", "INTERN", created_by="admin:seed")) for i in range(10)]
    created: list = []
    revoked: list[str] = []
    conflicts: list[str] = []
    record = threading.Lock()

    def writer(worker: int) -> None:
        for i in range(6):
            rule = (
                Approval.new("numpy", f">={worker}.{i}", "SUPERVISED", created_by=f"admin:{worker}")
                if i % 2
                else Ban.new("numpy", f"=={worker}.{i}", f"bad {worker}.{i}", created_by=f"admin:{worker}")
            )
            store.put_rule(rule)
            with record:
                created.append(rule)

    def revoker(worker: int) -> None:
        # two revokers race for every seeded rule
        for rule in seeded:
            try:
                store.revoke_rule(rule.rule_id, revoked_by=f"admin:r{worker}")
                with record:
                    revoked.append(rule.rule_id)
            except Conflict:
                with record:
                    conflicts.append(rule.rule_id)

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(writer, n) for n in range(4)] + [pool.submit(revoker, n) for n in range(2)]
        for future in futures:
            future.result()

    everything = store.rules_for("numpy", include_revoked=True)
    stored = {r.rule_id: r for r in everything.approvals + everything.bans}
    assert set(stored) == {r.rule_id for r in seeded} | {r.rule_id for r in created}  # nothing lost
    assert sorted(revoked) == sorted(r.rule_id for r in seeded)  # each seeded rule revoked exactly once
    assert sorted(conflicts) == sorted(revoked)  # ... and the other revoker was refused
    assert all(not stored[r.rule_id].active for r in seeded)
    assert all(stored[r.rule_id].active for r in created)
    active = store.rules_for("numpy")
    assert len(active.approvals) + len(active.bans) == len(created) == 24
    assert len(store.list_rules(package="numpy", include_revoked=True)) == 34


# --- principals --------------------------------------------------------------------


def test_agents_and_conditional_maturity_updates(aws):
    store = PrincipalsStore()
    agent = store.create_agent(Agent(agent_id="bot-1", maturity=Maturity.INTERN))
    assert store.get_agent("bot-1") == agent
    assert store.get_agent("nobody") is None
    with pytest.raises(Conflict, match="already exists"):
        store.create_agent(Agent(agent_id="bot-1", maturity=Maturity.AUTONOMOUS))

    updated = store.update_maturity("bot-1", "supervised")
    assert updated.maturity is Maturity.SUPERVISED and updated.version == 2
    again = store.update_maturity("bot-1", Maturity.AUTONOMOUS, expected_version=2)
    assert again.version == 3
    with pytest.raises(Conflict, match="changed meanwhile"):
        store.update_maturity("bot-1", Maturity.INTERN, expected_version=2)
    with pytest.raises(NotFound):
        store.update_maturity("ghost", Maturity.INTERN)
    with pytest.raises(NotFound):
        store.update_maturity("ghost", Maturity.INTERN, expected_version=1)
    store.create_agent(Agent(agent_id="bot-0", maturity=Maturity.STUDENT))
    assert [a.agent_id for a in store.list_agents()] == ["bot-0", "bot-1"]


def test_concurrent_maturity_changes_are_all_applied_in_turn(aws):
    store = PrincipalsStore()
    store.create_agent(Agent(agent_id="bot", maturity=Maturity.INTERN))
    levels = [Maturity.INTERN, Maturity.SUPERVISED, Maturity.AUTONOMOUS]

    def change(n: int):
        try:
            return store.update_maturity("bot", levels[n % 3])
        except TransientError:  # retries exhausted under heavy contention: reported, never silent
            return None

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = [r for r in pool.map(change, range(12)) if r is not None]
    final = store.get_agent("bot")
    versions = sorted(r.version for r in results)
    assert versions == list(range(2, 2 + len(results)))  # every applied change got its own version
    assert final.version == 1 + len(results)
    assert final.maturity is max(results, key=lambda r: r.version).maturity


def test_keys_lookup_revoke_and_list(aws):
    store = PrincipalsStore()
    admin_key, agent_key = generate_api_key(), generate_api_key()
    admin = Principal(key_id=admin_key.key_id, role=Role.ADMIN, name="ops", created_at="2024-01-01T00:00:00.000000Z")
    agent = Principal(key_id=agent_key.key_id, role=Role.AGENT, name="bot", agent_id="bot-1")
    store.put_key(admin, admin_key.key_hash)
    store.put_key(agent, agent_key.key_hash)
    with pytest.raises(Conflict):
        store.put_key(admin, admin_key.key_hash)

    stored = store.get_key(agent_key.key_id)
    assert stored.principal == agent and stored.key_hash == agent_key.key_hash
    assert store.find_key_by_hash(admin_key.key_hash).principal == admin
    assert store.find_key_by_hash("0" * 64) is None
    assert authenticate(agent_key.api_key, store) == agent
    assert [p.key_id for p in store.list_keys()] == [admin.key_id, agent.key_id]
    assert [p.key_id for p in store.list_keys(agent_id="bot-1")] == [agent.key_id]
    assert [p.key_id for p in store.list_keys(role="admin")] == [admin.key_id]

    revoked = store.revoke_key(agent_key.key_id)
    assert revoked.revoked_at
    assert store.list_keys(include_revoked=False) == [admin]
    with pytest.raises(Conflict):
        store.revoke_key(agent_key.key_id)
    with pytest.raises(NotFound):
        store.revoke_key("0123456789abcdef")
    from chalicelib.errors import Unauthorized

    with pytest.raises(Unauthorized, match="revoked"):
        authenticate(agent_key.api_key, store)


# --- audit -------------------------------------------------------------------------


def _event(n: int, day: str, **fields):
    fields.setdefault("actor", "admin:ops")
    return audit_event(
        fields.pop("action", actions.PACKAGE_CHECK),
        time=f"{day}T10:00:{n:02d}.000000Z",
        event_id=f"evt_{n:04d}",
        detail={"n": n},
        **fields,
    )


def test_audit_append_is_idempotent_and_never_overwrites(aws):
    store = AuditStore()
    event = _event(1, "2024-03-01", agent_id="bot")
    store.append(event)
    store.append(event.model_copy(update={"outcome": "tampered"}))
    page = store.query()
    assert [e.outcome for e in page.events] == ["ok"] and page.events[0] == event


def test_audit_queries_newest_first_across_days_with_filters_and_pages(aws):
    store = AuditStore()
    days = ["2024-03-01", "2024-03-02", "2024-03-05"]
    for n in range(30):
        store.append(
            _event(
                n,
                days[n // 10],
                agent_id="bot-a" if n % 2 else "bot-b",
                skill_id="skill-x" if n % 3 == 0 else None,
                package="numpy",
                action=actions.PACKAGE_CHECK if n % 5 else actions.PACKAGE_APPROVE,
            )
        )

    def walk(**filters):
        seen, token = [], None
        while True:
            page = store.query(limit=4, next_token=token, **filters)
            seen += [e.detail["n"] for e in page.events]
            token = page.next_token
            if token is None:
                return seen

    assert walk() == list(range(29, -1, -1))
    assert walk(agent_id="bot-a") == [n for n in range(29, -1, -1) if n % 2]
    assert walk(skill_id="skill-x") == [n for n in range(29, -1, -1) if n % 3 == 0]
    assert walk(action=actions.PACKAGE_APPROVE) == [25, 20, 15, 10, 5, 0]
    assert walk(agent_id="bot-b", action=actions.PACKAGE_APPROVE) == [20, 10, 0]
    assert walk(since="2024-03-02") == list(range(29, 9, -1))
    assert walk(agent_id="bot-a", since="2024-03-05T10:00:25Z") == [29, 27, 25]
    assert store.query(agent_id="nobody").events == ()

    first = store.query(agent_id="bot-a", limit=3)
    with pytest.raises(BadRequest, match="other filters"):
        store.query(agent_id="bot-b", next_token=first.next_token)
    with pytest.raises(BadRequest, match="next_token"):
        store.query(next_token="!!not-a-token!!")
    with pytest.raises(BadRequest, match="since"):
        store.query(since="yesterday")
    with pytest.raises(BadRequest, match="limit"):
        store.query(limit=5000)


def test_audit_until_bounds_the_newest_event_and_outcomes_filter_runs(aws):
    store = AuditStore()
    days = ["2024-03-01", "2024-03-02", "2024-03-05"]
    for n in range(30):
        store.append(_event(n, days[n // 10], agent_id="bot-a" if n % 2 else "bot-b", action=actions.SKILL_EXECUTE,
                            outcome=("started", "ok", "failed")[n % 3]))  # fmt: skip

    def walk(**filters):
        seen, token = [], None
        while True:
            page = store.query(limit=4, next_token=token, **filters)
            seen += [e.detail["n"] for e in page.events]
            token = page.next_token
            if token is None:
                return seen

    # until is inclusive: the event at exactly 2024-03-02T10:00:15Z is in
    assert walk(until="2024-03-02T10:00:15Z") == list(range(15, -1, -1))
    assert walk(since="2024-03-01T10:00:05Z", until="2024-03-02T10:00:12Z") == list(range(12, 4, -1))
    assert walk(agent_id="bot-a", until="2024-03-01") == []  # a date alone is its midnight
    assert walk(action=actions.SKILL_EXECUTE, outcomes=("ok", "failed"), until="2024-03-02T10:00:13Z") == [
        n for n in range(13, -1, -1) if n % 3]
    assert walk(agent_id="bot-b", outcomes=("failed",)) == [n for n in range(29, -1, -1) if n % 2 == 0 and n % 3 == 2]
    with pytest.raises(BadRequest, match="until .* is before since"):
        store.query(since="2024-03-05", until="2024-03-01")
    with pytest.raises(BadRequest, match="until"):
        store.query(until="tomorrow")
    runs = store.query(outcomes=("ok",), limit=2)
    with pytest.raises(BadRequest, match="other filters"):
        store.query(next_token=runs.next_token)


def test_audit_events_of_today_with_generated_times(aws):
    store = AuditStore()
    for i in range(3):
        store.append(audit_event(actions.SKILL_EXECUTE, actor="agent:bot", agent_id="bot", detail={"i": i, "ratio": 0.5}))
    page = AuditStore().query(agent_id="bot")  # a fresh store (another process) reads the same
    assert [e.detail["i"] for e in page.events] == [2, 1, 0]
    assert page.events[0].detail["ratio"] == 0.5


# --- the checker over real stores ----------------------------------------------------


def test_permission_checker_over_dynamodb(aws):
    rules, principals = RulesStore(), PrincipalsStore()
    principals.create_agent(Agent(agent_id="intern", maturity="INTERN"))
    checker = PermissionChecker(principals, rules, DecisionCache(ttl_seconds=60, max_size=100))
    assert "no approval for numpy 1.26.4" in checker.check("intern", "numpy", "1.26.4").reason
    rules.put_rule(Approval.new("numpy", "==1.26.4", "INTERN", created_by="admin:ops"))
    checker.rules_changed("numpy")
    decision = checker.check("intern", "numpy", "1.26.4")
    assert decision.allowed and decision.maturity_required is Maturity.INTERN
    rules.put_rule(Ban.new("numpy", "", "pulled by maintainers", created_by="admin:ops"))
    checker.rules_changed("numpy")
    assert "pulled by maintainers" in checker.check("intern", "numpy", "1.26.4").reason
