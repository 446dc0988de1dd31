"""The combined scan: statuses, reasons and what needs an admin approval."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.packages.pins import Pin
from chalicelib.scanning.models import AuditResult
from chalicelib.scanning.policy import AdvisoryIgnore
from chalicelib.scanning.scanner import ScanReport, Scanner
from chalicelib.scanning.vulnerabilities import OfflineOsvService

NOW = datetime(2026, 11, 22, tzinfo=timezone.utc)


def pin(name: str, version: str, direct: bool = True) -> Pin:
    return Pin(name=name, version=version, sha256="0" * 64, direct=direct)


@pytest.fixture
def scanner(snapshot_db, popular) -> Scanner:
    return Scanner(OfflineOsvService(database=snapshot_db), popular)


def test_vulnerable_requests_is_blocked_with_advisories_and_fix(scanner):
    report = scanner.scan([pin("requests", "2.19.0"), pin("idna", "3.10", direct=False)], now=NOW)
    assert report.status == "blocked"
    assert any(
        line.startswith("requests 2.19.0: PYSEC-2018-28 (")
        and "GHSA-x84v-xcm2-53pg" in line
        and line.endswith("fixed in 2.20.0")
        for line in report.reasons
    )
    assert not report.needs_approval.required


def test_current_requests_passes(scanner):
    report = scanner.scan([pin("requests", "2.32.4"), pin("urllib3", "2.2.3", direct=False)], now=NOW)
    assert report.status == "passed"
    assert report.findings == () and report.reasons == ()


def test_ignored_advisories_pass_but_are_listed(scanner):
    ignores = [
        AdvisoryIgnore(advisory_id=a, reason="accepted risk", expires_at=NOW + timedelta(days=7), created_by="admin")
        for a in ("PYSEC-2018-28", "CVE-2023-32681")
    ]
    report = scanner.scan([pin("requests", "2.19.0")], ignores=ignores, now=NOW)
    assert report.status == "passed"
    assert all(f.ignored for f in report.findings)
    assert any("ignored until" in line for line in report.reasons)
    # a week later the ignores have expired
    assert scanner.scan([pin("requests", "2.19.0")], ignores=ignores, now=NOW + timedelta(days=8)).status == "blocked"


def test_typosquat_needs_approval_without_blocking(scanner):
    report = scanner.scan([pin("reqeusts", "1.0")], now=NOW)
    assert report.status == "passed"
    assert report.needs_approval.typosquats == ("reqeusts",)
    assert report.typosquats[0].target == "requests"
    assert any("likely typosquat of requests" in line for line in report.reasons)


def test_direct_names_can_be_given_explicitly(scanner):
    report = scanner.scan([pin("urllib3", "2.2.3", direct=False)], direct_names=["urlib3", "python-dateutils"], now=NOW)
    assert {m.target for m in report.typosquats} == {"urllib3", "python-dateutil"}


def test_high_code_findings_need_approval(scanner):
    code = "import subprocess\nsubprocess.Popen('echo hi', shell=True)\n"
    report = scanner.scan([pin("requests", "2.32.4")], code=code, now=NOW)
    assert report.status == "passed"
    assert [f.test_id for f in report.needs_approval.code] == ["B602"]
    assert any("B602 HIGH" in line and "approval" in line for line in report.reasons)
    assert {f.severity for f in report.code_findings} >= {"HIGH", "LOW"}


def test_failing_service_is_scan_unavailable(scanner, tmp_path):
    broken = Scanner(OfflineOsvService(tmp_path / "no-db"))
    report = broken.scan([pin("requests", "2.32.4")], now=NOW)
    assert report.status == "scan_unavailable"
    assert report.unaudited[0].package == "requests"

    class Exploding:
        name = "exploding"

        def audit(self, pins) -> AuditResult:
            raise RuntimeError("kaboom")

    report = Scanner(Exploding()).scan([pin("six", "1.16.0")], now=NOW)
    assert report.status == "scan_unavailable"
    assert "kaboom" in report.unaudited[0].reason


def test_report_round_trips_as_json(scanner):
    ignores = [
        AdvisoryIgnore(advisory_id="PYSEC-2018-28", reason="r", expires_at=NOW + timedelta(days=1), created_by="a")
    ]
    pins = [pin("requests", "2.19.0"), pin("reqeusts", "1.0")]
    report = scanner.scan(pins, code="import os\nos.system('x')\n", ignores=ignores, now=NOW)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["status"] == "blocked"
    assert data["needs_approval"]["typosquats"] == ["reqeusts"]
    assert data["scanned_at"].startswith("2026-11-22")
    assert ScanReport.model_validate(data) == report
