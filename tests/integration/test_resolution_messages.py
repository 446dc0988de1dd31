"""Issue 19 (and 11 item 1): a failed resolution answers one line a user acts on; pip's output stays in the server log.

``numpy==1.21.0`` has no wheel for the target CPython 3.11: the seed's own example. Against
PyPI, through the pre-flight scan and through an import.
"""

from __future__ import annotations

import json
import logging
import re

import pytest
from chalice.test import Client

from api_support import Api, skill_md

NO_WHEEL = "numpy 1.21.0 has no wheel for CPython 3.11 on manylinux_2_36_x86_64; the oldest release that has one is 1.23.2"
PIP_WORDS = ("ERROR:", "Could not find a version", "No matching distribution", "from versions:")


@pytest.fixture
def api(stack):
    with Client(stack.app) as client:
        yield Api(client)


def _assert_no_pip_output(document: object) -> None:
    text = json.dumps(document, default=str)
    for word in PIP_WORDS:
        assert word not in text, f"pip's output ({word!r}) reached a caller or a record"


def test_preflight_scan_says_which_release_to_use_in_one_line(api, caplog):
    caplog.set_level(logging.WARNING, logger="skillharbor.resolver")
    status, body = api.call("post", "/api/packages/scan", {"requirements": ["numpy==1.21.0"]})
    assert status == 422 and body["error"] == "resolution_failed", body
    match = re.fullmatch(re.escape(NO_WHEEL) + r" \(server log id (res-[0-9a-f]{16})\)", body["message"])
    assert match, body["message"]
    assert set(body["details"]) <= {"log_id", "platform", "requirement"} and body["details"]["log_id"] == match.group(1)
    assert "problems" not in body
    _assert_no_pip_output(body)
    # the detail went to the server log, under the id the caller was given
    logged = [r.getMessage() for r in caplog.records if match.group(1) in r.getMessage()]
    assert logged and "No matching distribution found for numpy==1.21.0" in logged[0]


def test_an_import_records_the_same_line_and_no_pip_output(api, stack):
    api.approve("numpy")
    status, accepted = api.upload(skill_md("Old Numpy", ["numpy==1.21.0"]))
    assert status == 202, accepted
    record = stack.wait_for_import(accepted["import_id"])
    assert record["status"] == "FAILED" and record["failed_step"] == "resolve", record
    assert record["reason"] == f"{NO_WHEEL} (server log id {accepted['import_id']})"
    skill = api.call("get", "/api/skills/old-numpy")[1]
    assert skill["error"]["reason"] == record["reason"] and "\n" not in skill["error"]["reason"]
    imported = api.call("get", f"/api/imports/{accepted['import_id']}")[1]
    trail = api.audit(skill_id="old-numpy")
    assert any(e["detail"].get("reason") == record["reason"] for e in trail)
    _assert_no_pip_output([skill, imported, trail])
