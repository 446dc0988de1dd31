"""Vulnerability policy: known advisories block; admin ignores apply until they expire."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from chalicelib.scanning.models import AuditResult, UnauditedPin, VulnerabilityFinding
from chalicelib.scanning.policy import AdvisoryIgnore, judge

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
FINDING = VulnerabilityFinding(
    package="requests",
    version="2.19.0",
    id="PYSEC-2018-28",
    aliases=("CVE-2018-18074", "GHSA-x84v-xcm2-53pg"),
    fixed_in="2.20.0",
)


def ignore(advisory_id: str = "PYSEC-2018-28", *, days: float = 30, package: str | None = None) -> AdvisoryIgnore:
    return AdvisoryIgnore(
        advisory_id=advisory_id,
        package=package,
        reason="not reachable from skills",
        expires_at=NOW + timedelta(days=days),
        created_by="admin-1",
    )


def test_any_known_vulnerability_blocks_by_default():
    verdict = judge(AuditResult(findings=(FINDING,)), [], NOW)
    assert verdict.status == "blocked"
    assert verdict.blocking[0].fixed_in == "2.20.0"
    assert "fixed in 2.20.0" in verdict.findings[0].describe()


def test_an_active_ignore_lets_the_scan_pass_and_is_recorded():
    verdict = judge(AuditResult(findings=(FINDING,)), [ignore()], NOW)
    assert verdict.status == "passed"
    judged = verdict.findings[0]
    assert judged.ignored and judged.ignore.created_by == "admin-1"
    assert "ignored until" in judged.describe()


@pytest.mark.parametrize("advisory_id", ["CVE-2018-18074", "ghsa-x84v-xcm2-53pg"])
def test_ignore_by_alias(advisory_id):
    assert judge(AuditResult(findings=(FINDING,)), [ignore(advisory_id)], NOW).status == "passed"


def test_expired_ignore_stops_applying():
    expired = ignore(days=-1)
    assert judge(AuditResult(findings=(FINDING,)), [expired], NOW).status == "blocked"
    # the same ignore applied the day before it expired
    assert judge(AuditResult(findings=(FINDING,)), [expired], NOW - timedelta(days=2)).status == "passed"


def test_ignore_expires_exactly_at_its_time():
    at_expiry = AdvisoryIgnore(advisory_id="PYSEC-2018-28", reason="r", expires_at=NOW, created_by="a")
    assert judge(AuditResult(findings=(FINDING,)), [at_expiry], NOW).status == "blocked"


def test_ignore_for_another_package_or_advisory_does_not_apply():
    assert judge(AuditResult(findings=(FINDING,)), [ignore(package="urllib3")], NOW).status == "blocked"
    assert judge(AuditResult(findings=(FINDING,)), [ignore("PYSEC-2099-1")], NOW).status == "blocked"
    assert judge(AuditResult(findings=(FINDING,)), [ignore(package="Requests")], NOW).status == "passed"


def test_naive_datetimes_are_utc():
    naive = AdvisoryIgnore(advisory_id="PYSEC-2018-28", reason="r", expires_at=datetime(2026, 12, 1), created_by="a")
    assert naive.expires_at.tzinfo is not None
    assert judge(AuditResult(findings=(FINDING,)), [naive], datetime(2026, 11, 30)).status == "passed"


def test_ignore_needs_reason_and_author():
    with pytest.raises(ValidationError):
        AdvisoryIgnore(advisory_id="X", reason="  ", expires_at=NOW, created_by="a")
    with pytest.raises(ValidationError):
        AdvisoryIgnore(advisory_id="X", reason="r", expires_at=NOW, created_by="")


def test_unaudited_pins_make_the_scan_unavailable():
    missing = UnauditedPin(package="six", version="1.16.0", reason="service down")
    assert judge(AuditResult(unaudited=(missing,)), [], NOW).status == "scan_unavailable"
    # a known vulnerability still blocks outright
    assert judge(AuditResult(findings=(FINDING,), unaudited=(missing,)), [], NOW).status == "blocked"
    # an ignore cannot make an unaudited pin pass
    assert judge(AuditResult(findings=(FINDING,), unaudited=(missing,)), [ignore()], NOW).status == "scan_unavailable"


def test_nothing_found_passes():
    assert judge(AuditResult(), [], NOW).status == "passed"
