"""Parsing of names, versions, specifiers, maturities, rules and requests."""

from __future__ import annotations

import pytest

from chalicelib.errors import BadRequest
from chalicelib.governance.maturity import Maturity
from chalicelib.governance.rules import (
    Approval,
    ApprovalRequest,
    Ban,
    RequestStatus,
    normalize_package_name,
    normalize_specifier,
    parse_exact_version,
    request_id_for,
    rule_from_dict,
)


def test_maturity_order_and_parsing():
    assert Maturity.STUDENT < Maturity.INTERN < Maturity.SUPERVISED < Maturity.AUTONOMOUS
    assert min([Maturity.AUTONOMOUS, Maturity.INTERN]) is Maturity.INTERN
    assert Maturity.parse(" supervised ") is Maturity.SUPERVISED
    with pytest.raises(BadRequest, match="unknown maturity 'EXPERT'; expected one of STUDENT, INTERN"):
        Maturity.parse("EXPERT")


@pytest.mark.parametrize(("raw", "normalized"), [("NumPy", "numpy"), ("typing_extensions", "typing-extensions"), ("zope.interface", "zope-interface")])
def test_package_names_are_pep503_normalized(raw, normalized):
    assert normalize_package_name(raw) == normalized


@pytest.mark.parametrize("bad", ["", "  ", "-numpy", "num py", "numpy==1.0", "a" * 300])
def test_bad_package_names_are_rejected(bad):
    with pytest.raises(BadRequest, match="package_name"):
        normalize_package_name(bad)


@pytest.mark.parametrize(("raw", "exact"), [("1.26.4", "1.26.4"), ("==1.26.4", "1.26.4"), (" == 1.26.04 ", "1.26.4"), ("2.0rc1", "2.0rc1")])
def test_exact_versions(raw, exact):
    assert parse_exact_version(raw) == exact


@pytest.mark.parametrize(("raw", "normalized"), [("", ""), (None, ""), ("1.26.4", "==1.26.4"), ("<2, >=1.26", "<2,>=1.26"), (">=1.26,<2", "<2,>=1.26"), ("~=1.4", "~=1.4")])
def test_specifiers_are_normalized(raw, normalized):
    assert normalize_specifier(raw) == normalized


def test_bad_specifier_says_what_was_expected():
    with pytest.raises(BadRequest, match="not a PEP 440 version specifier"):
        normalize_specifier("=>1")


def test_rules_round_trip_through_dicts():
    approval = Approval.new("NumPy", "1.26.4", "intern", created_by="admin:ops")
    ban = Ban.new("reqeusts", None, "typosquat of requests", created_by="admin:ops")
    assert approval.package == "numpy" and approval.specifier == "==1.26.4" and approval.min_maturity is Maturity.INTERN
    assert rule_from_dict(approval.model_dump(mode="json")) == approval
    assert rule_from_dict(ban.model_dump(mode="json")) == ban
    assert approval.rule_id.startswith("apr_") and ban.rule_id.startswith("ban_")


def test_a_ban_needs_a_reason():
    with pytest.raises(BadRequest, match="reason is required"):
        Ban.new("numpy", "", "  ", created_by="admin:ops")


def test_requests_validate_version_and_status():
    request = ApprovalRequest(package="NumPy", version="1.26.4", reason="need it", requested_by="agent:bot")
    assert request.status is RequestStatus.PENDING and request.package == "numpy"
    with pytest.raises(BadRequest, match="PEP 440"):
        ApprovalRequest(package="numpy", version="one", requested_by="agent:bot")
    with pytest.raises(BadRequest, match="unknown request status"):
        RequestStatus.parse("maybe")


def test_deterministic_request_ids():
    assert request_id_for("skill-1", "numpy") == request_id_for("skill-1", "numpy") != request_id_for("skill-2", "numpy")
