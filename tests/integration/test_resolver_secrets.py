"""Issue 11 item 1: no secret reaches a caller, a record or the audit trail through a requirement string.

The attack: pip expands ``${VAR}`` in requirement files, so ``numpy===${SKILLHARBOR_ADMIN_KEY}``
came back in pip's error text; a U+2028 inside a marker started a new line for pip. Every
spelling is sent through each public way in (pre-flight scan, seed install, API import of a
SKILL.md and of a zip with requirements.txt) and must be refused naming the entry, with no
secret value anywhere in what comes back or is stored.
"""

from __future__ import annotations

import json

import pytest
from chalice.test import Client

from api_support import Api, skill_md, skill_zip
from stack_support import ADMIN_KEY

SECRETS = {
    "SKILLHARBOR_RUNNER_SECRET": "runner-secret-0123456789abcdef",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-Zq81xKpQ0rT2vW5yB7nC",
    "AWS_SESSION_TOKEN": "aws-session-token-Fq9Lm2Np4Rt6Vx8",
}

# each hides an expansion or a second line; the first four are the issue's own
HOSTILE = [
    "numpy===${SKILLHARBOR_ADMIN_KEY}",
    "numpy===${SKILLHARBOR_RUNNER_SECRET}",
    "numpy===${AWS_SECRET_ACCESS_KEY}",
    'numpy; python_version > "3"\u2028numpy===${AWS_SESSION_TOKEN}',
    "numpy==${X}",
    "${SKILLHARBOR_ADMIN_KEY}",
    "numpy[${AWS_SECRET_ACCESS_KEY}]",
    "numpy; platform_release == '${SKILLHARBOR_ADMIN_KEY}'",
    "numpy===$SKILLHARBOR_ADMIN_KEY",
    "numpy===anything-at-all",
    "numpy\u2029--index-url http://127.0.0.1:9/simple",
    "numpy\x85-r /etc/passwd",
    "numpy\x0b--extra-index-url=http://127.0.0.1:9",
    "numpy\x0c-c /proc/self/environ",
    "numpy\x1c-r /proc/self/environ",
    "numpy\r-r /proc/self/environ",
    "numpy\n-r /proc/self/environ",
    "numpy\x00",
    "numpy\u200b==1.26.4",
    "numpy\u202e==1.26.4",
    "numpy\u00a0==1.26.4",
]


@pytest.fixture
def api(stack, monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    with Client(stack.app) as client:
        yield Api(client)


def _assert_no_secret(*documents: object) -> None:
    text = json.dumps(documents, default=str)
    for value in (ADMIN_KEY, *SECRETS.values()):
        assert value not in text, "a secret value reached the caller or a record"


def _assert_refused_per_item(status: int, body: dict, error: str, count: int) -> None:
    assert status == 400, body
    assert body["error"] == error, body
    assert len(body["problems"]) == count, body["problems"]
    for problem in body["problems"]:
        assert "\n" not in problem and "\u2028" not in problem, problem


def test_a_student_key_cannot_start_a_resolution_at_all(api):
    student = api.agent("student-1", "STUDENT")
    status, body = api.call("post", "/api/packages/scan", {"requirements": ["numpy===${SKILLHARBOR_ADMIN_KEY}"]}, key=student)
    assert status == 403 and body["error"] == "forbidden", body
    _assert_no_secret(body)


def test_every_spelling_is_refused_by_the_preflight_scan_with_a_problem_per_entry(api):
    publisher = api.key("publisher", "author")
    status, body = api.call("post", "/api/packages/scan", {"requirements": HOSTILE}, key=publisher)
    _assert_refused_per_item(status, body, "invalid_requirement", len(HOSTILE))
    problems = body["problems"]
    assert "'$' is not allowed" in problems[0] and "pip expands" in problems[0]
    assert "line break U+2028" in problems[3]
    assert "arbitrary equality '===anything-at-all'" in problems[9]
    assert "control character U+0000" in problems[17]
    assert "invisible formatting character U+200B" in problems[18]
    assert "non-ASCII character U+00A0" in problems[20]
    _assert_no_secret(body)


def test_every_spelling_is_refused_by_the_seed_install(api):
    agent = api.agent("intern-1", "INTERN")
    api.approve("numpy")
    for requirement in HOSTILE:
        status, body = api.call("post", "/api/packages/install", {"skill_id": "calc", "requirements": [requirement]}, key=agent)
        _assert_refused_per_item(status, body, "invalid_requirement", 1)
        _assert_no_secret(body)
    refusals = api.audit(action="package.install")  # nothing got as far as an install; each refusal is on record
    assert len(refusals) == len(HOSTILE) and {e["outcome"] for e in refusals} == {"denied"}
    _assert_no_secret(refusals)


def test_every_spelling_is_refused_by_an_import_and_nothing_is_kept(api):
    publisher = api.key("publisher", "author")
    status, body = api.upload(skill_md("Leaky", HOSTILE), key=publisher)
    _assert_refused_per_item(status, body, "invalid_skill", len(HOSTILE))
    _assert_no_secret(body)
    # requirements.txt inside a zip: U+2028 and friends stay inside the line (editors show one line there)
    text = "\n".join(r for r in HOSTILE if "\n" not in r and "\r" not in r) + "\n"
    status, body = api.upload(skill_zip("Leaky Zip", text), "application/zip", key=publisher)
    assert status == 400 and body["error"] == "invalid_skill", body
    assert all("requirements.txt line" in p for p in body["problems"])
    _assert_no_secret(body)
    assert api.call("get", "/api/skills/leaky")[0] == 404 and api.call("get", "/api/skills/leaky-zip")[0] == 404
    _assert_no_secret(api.call("get", "/api/skills")[1], api.audit())


def test_a_metadata_string_cannot_split_one_entry_into_several(api):
    skill = ("---\nname: Meta Split\ndescription: d\nmetadata:\n  requirements: \"numpy\\u2028numpy===${AWS_SECRET_ACCESS_KEY}\"\n"
             "---\n```python\ndef execute():\n    return 1\n```\n").encode()  # fmt: skip
    status, body = api.upload(skill)
    assert status == 400 and body["error"] == "invalid_skill", body
    assert any("U+2028" in p for p in body["problems"]), body["problems"]
    _assert_no_secret(body)
