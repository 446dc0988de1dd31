"""Vulnerability services: offline db service, pip-audit (fail closed), combining services."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from chalicelib.errors import ScanUnavailable
from chalicelib.packages.pins import Pin
from chalicelib.scanning.models import AuditResult, UnauditedPin, VulnerabilityFinding
from chalicelib.scanning.scanner import Scanner
from chalicelib.scanning.vulnerabilities import (
    CombinedService,
    OfflineOsvService,
    PipAuditService,
    VulnerabilityService,
    make_vulnerability_service,
)

UNREACHABLE = "http://127.0.0.1:9"  # discard port: nothing listens, connections are refused


def pin(name: str, version: str, direct: bool = True) -> Pin:
    return Pin(name=name, version=version, sha256="0" * 64, direct=direct)


# --- offline ---------------------------------------------------------------------------


def test_offline_service_finds_requests_advisories(snapshot_db):
    service = OfflineOsvService(database=snapshot_db)
    assert isinstance(service, VulnerabilityService)
    result = service.audit([pin("requests", "2.19.0"), pin("requests", "2.32.4")])
    assert result.complete
    assert {f.version for f in result.findings} == {"2.19.0"}
    assert "PYSEC-2018-28" in {f.id for f in result.findings}


def test_offline_service_without_database_leaves_every_pin_unaudited(tmp_path):
    result = OfflineOsvService(tmp_path / "missing-db").audit([pin("requests", "2.32.4"), pin("six", "1.16.0")])
    assert not result.complete
    assert [u.package for u in result.unaudited] == ["requests", "six"]
    assert "does not exist" in result.unaudited[0].reason


def test_offline_service_not_configured_is_unaudited():
    result = OfflineOsvService(None).audit([pin("requests", "2.32.4")])
    assert "no advisory database is configured" in result.unaudited[0].reason


def test_offline_service_flags_uncomparable_versions(snapshot_db):
    result = OfflineOsvService(database=snapshot_db).audit([SimpleNamespace(name="requests", version="latest")])
    assert result.unaudited and "PEP 440" in result.unaudited[0].reason


# --- pip-audit, with a fake subprocess -------------------------------------------------------


class FakeRun:
    """Stands in for subprocess.run: writes the given report to pip-audit's -o file."""

    def __init__(
        self, report: dict | None = None, returncode: int = 0, stderr: str = "", raises: Exception | None = None
    ):
        self.report, self.returncode, self.stderr, self.raises = report, returncode, stderr, raises
        self.calls: list[list[str]] = []
        self.requirements = ""

    def __call__(self, cmd, **kwargs):
        self.calls.append(cmd)
        self.requirements = Path(cmd[cmd.index("-r") + 1]).read_text()
        if self.raises:
            raise self.raises
        if self.report is not None:
            Path(cmd[cmd.index("-o") + 1]).write_text(json.dumps(self.report))
        return subprocess.CompletedProcess(cmd, self.returncode, "", self.stderr)


def test_pip_audit_command_audits_exact_pins_without_pip():
    fake = FakeRun({"dependencies": [{"name": "six", "version": "1.16.0", "vulns": []}], "fixes": []})
    result = PipAuditService("osv", runner=fake).audit([pin("Six", "1.16.0")])
    assert result.complete and not result.findings
    cmd = fake.calls[0]
    for flag in ("--no-deps", "--disable-pip", "-f"):
        assert flag in cmd
    assert cmd[cmd.index("-s") + 1] == "osv"
    assert fake.requirements == "six==1.16.0\n"


def test_pip_audit_findings_are_parsed_with_lowest_fix_above_pin():
    report = {
        "dependencies": [
            {
                "name": "requests",
                "version": "2.19.0",
                "vulns": [
                    {
                        "id": "PYSEC-2018-28",
                        "fix_versions": ["2.20.0", "2.19.1rc0", "1.0"],
                        "aliases": ["GHSA-x84v-xcm2-53pg"],
                        "description": "leaks Authorization",
                    }
                ],
            }
        ],
        "fixes": [],
    }
    result = PipAuditService(runner=FakeRun(report, returncode=1)).audit([pin("requests", "2.19.0")])
    assert result.complete
    (finding,) = result.findings
    assert finding.id == "PYSEC-2018-28"
    assert finding.fixed_in == "2.19.1rc0"
    assert finding.source == "pip-audit:pypi"


def test_skipped_package_is_unaudited_not_passed():
    # pip-audit prints "No known vulnerabilities found" and exits 0 in this case
    report = {
        "dependencies": [
            {"name": "six", "version": "1.16.0", "vulns": []},
            {
                "name": "private-pkg",
                "skip_reason": "Dependency not found on PyPI and could not be audited: private-pkg (1.0)",
            },
        ],
        "fixes": [],
    }
    result = PipAuditService(runner=FakeRun(report)).audit([pin("six", "1.16.0"), pin("private-pkg", "1.0")])
    assert [u.package for u in result.unaudited] == ["private-pkg"]
    assert "could not be audited" in result.unaudited[0].reason


def test_package_missing_from_report_is_unaudited():
    report = {"dependencies": [{"name": "six", "version": "1.16.0", "vulns": []}], "fixes": []}
    result = PipAuditService(runner=FakeRun(report)).audit([pin("six", "1.16.0"), pin("idna", "3.7")])
    assert [u.package for u in result.unaudited] == ["idna"]


def test_other_version_audited_is_unaudited():
    report = {"dependencies": [{"name": "six", "version": "1.17.0", "vulns": []}], "fixes": []}
    result = PipAuditService(runner=FakeRun(report)).audit([pin("six", "1.16.0")])
    assert "instead of" in result.unaudited[0].reason


@pytest.mark.parametrize(
    ("fake", "expected"),
    [
        (
            FakeRun(None, returncode=1, stderr="WARNING: x\nrequests.exceptions.ConnectionError: boom\n"),
            "ConnectionError: boom",
        ),
        (FakeRun({"dependencies": []}, returncode=2, stderr="usage error"), "exit 2"),
        (FakeRun(raises=subprocess.TimeoutExpired("pip-audit", 5)), "timed out"),
        (FakeRun(raises=FileNotFoundError("no python")), "could not be started"),
    ],
)
def test_service_failures_leave_every_pin_unaudited(fake, expected):
    result = PipAuditService(runner=fake, timeout_seconds=5).audit([pin("six", "1.16.0"), pin("idna", "3.7")])
    assert len(result.unaudited) == 2
    assert expected in result.unaudited[0].reason
    assert not result.findings


def test_invalid_pins_are_refused_before_running():
    fake = FakeRun({"dependencies": [], "fixes": []})
    result = PipAuditService(runner=fake).audit([SimpleNamespace(name="evil", version="1.0\n--index-url http://x")])
    assert fake.calls == []
    assert "not a valid PEP 440 version" in result.unaudited[0].reason


def test_unknown_pip_audit_service_is_rejected():
    with pytest.raises(ValueError, match="pypi"):
        PipAuditService("nvd")


# --- pip-audit for real, against an unreachable service -----------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("service", ["pypi", "osv"])
def test_unreachable_online_service_gives_scan_unavailable(service, snapshot_db, tmp_path):
    proxy = {
        "HTTPS_PROXY": UNREACHABLE,
        "https_proxy": UNREACHABLE,
        "HTTP_PROXY": UNREACHABLE,
        "http_proxy": UNREACHABLE,
        "NO_PROXY": "",
        "no_proxy": "",
    }
    online = PipAuditService(service, env=proxy, timeout_seconds=60, request_timeout_seconds=5, cache_dir=tmp_path)
    result = online.audit([pin("requests", "2.32.4")])
    assert [u.package for u in result.unaudited] == ["requests"]
    assert f"pip-audit:{service} failed" in result.unaudited[0].reason

    # the whole scan of a package with no known advisory still does not pass
    combined = CombinedService([OfflineOsvService(database=snapshot_db), online])
    report = Scanner(combined).scan([pin("requests", "2.32.4")], now=None)
    assert report.status == "scan_unavailable"
    assert any("could not be audited" in line for line in report.reasons)


# --- combining --------------------------------------------------------------------------------


class Static:
    def __init__(self, name: str, result: AuditResult):
        self.name, self.result = name, result

    def audit(self, pins):
        return self.result


def test_combined_service_merges_the_same_advisory_and_keeps_unaudited():
    common = {"package": "requests", "version": "2.19.0"}
    a = VulnerabilityFinding(
        **common, id="PYSEC-2018-28", aliases=("CVE-2018-18074",), fixed_in="2.20.0", source="osv-offline"
    )
    b = VulnerabilityFinding(
        **common, id="GHSA-x84v-xcm2-53pg", aliases=("PYSEC-2018-28",), fixed_in="2.20.0", source="pip-audit:osv"
    )
    c = VulnerabilityFinding(**common, id="GHSA-new", source="pip-audit:osv")

    online = AuditResult(findings=(b, c), unaudited=(UnauditedPin(package="six", version="1.0", reason="skipped"),))
    result = CombinedService([Static("x", AuditResult(findings=(a,))), Static("y", online)]).audit([])
    assert len(result.findings) == 2
    merged = result.findings[0]
    assert merged.id == "PYSEC-2018-28"
    assert set(merged.aliases) == {"CVE-2018-18074", "GHSA-x84v-xcm2-53pg"}
    assert merged.source == "osv-offline+pip-audit:osv"
    assert [u.package for u in result.unaudited] == ["six"]


def test_make_service_from_settings(tmp_path, advisory_db_path):
    settings = SimpleNamespace(
        advisory_db=advisory_db_path, cache_dir=tmp_path, vulnerability_service="offline", scan_timeout_seconds=30
    )
    assert make_vulnerability_service(settings).name == "osv-offline"
    settings.vulnerability_service = "pypi"
    assert make_vulnerability_service(settings).name == "osv-offline+pip-audit:pypi"
    settings.vulnerability_service = "magic"
    with pytest.raises(ScanUnavailable, match="magic"):
        make_vulnerability_service(settings)


def test_pip_audit_gets_the_allow_listed_environment(monkeypatch, tmp_path):
    """No credential or skillharbor secret reaches pip-audit's process, and its error line is redacted on the record."""
    from chalicelib.scanning.vulnerabilities import PipAuditService

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-value-0123")
    monkeypatch.setenv("SKILLHARBOR_ADMIN_KEY", "shk_admin_secret-value-0123")
    seen = {}

    def run(command, **kwargs):
        seen.update(kwargs["env"])
        return subprocess.CompletedProcess(command, 2, "", "ProxyError: http://user:hunter2-pass@proxy.example:3128 refused\n")

    online = PipAuditService("pypi", env={"HTTPS_PROXY": "http://proxy.example:3128"}, runner=run, cache_dir=tmp_path)
    result = online.audit([pin("requests", "2.32.4")])
    assert seen["HTTPS_PROXY"] == "http://proxy.example:3128" and Path(seen["HOME"]).name == "home"
    assert not any(name.startswith(("AWS_", "SKILLHARBOR_", "PIP_")) for name in seen)
    reason = result.unaudited[0].reason
    assert "hunter2-pass" not in reason and "[redacted]" in reason
